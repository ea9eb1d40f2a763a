//! Tailing live logs for `follow`: every line of a file, once, through rotations, lag and
//! restarts.
//!
//! A followed path is read as a sequence of files, oldest first (each a `Reader`):
//! - the file now at the path (`Role::Current`);
//! - files rotated away from the path that may still be written to (`Role::Draining`): nginx
//!   writes to the renamed file until it reopens its logs, and to a deleted one until then too.
//!   Such a file is read to its end however far behind `follow` is, and kept open until it has
//!   been quiet at its end for [`DRAIN_GRACE`];
//! - rotated files that are complete (`Role::Finite`): a copytruncate copy, a gzip archive, a
//!   rotation that came and went while `follow` lagged or was stopped. Read to the end, closed.
//!
//! Newer files wait until the older ones are read to their end, so lines come out in file order.
//!
//! Rotation kinds, noticed by `stat`-ing the path and the open file on every poll:
//! - rename + create, delete + recreate, nginx-style reopen: the path names another inode (or
//!   none for a while). The old file goes on being read (draining); rotated siblings that were
//!   never seen (`PATH.1`, `PATH.2.gz`, `PATH-20240801`: several rotations while `follow` lagged)
//!   are read next; then the new file from its start.
//! - copytruncate: the same inode, shorter than what was read, or with other first bytes
//!   (truncated and refilled past the old offset between two polls; checked after every read,
//!   before its bytes are used). The rest of the old content is read from the copy (the sibling,
//!   gzip or not, that starts with the old first bytes), then the file again from its start.
//!
//! Files are recognised by content, a hash of their first KiB ([`Fingerprint`]), and by
//! dev/inode where that survives (a rename). Where each open file was left, and which files were
//! read to their end, is a [`TailCheckpoint`]: a restart resumes each file where it was left,
//! wherever it was renamed to and even compressed, then reads the rotations it missed (siblings
//! not known and changed since the checkpoint), then the file at the path.
//!
//! Invariant: a line is handed out once, and a checkpoint only counts lines handed out
//! ([`TailSource`] tells the tail which lines left), so a restart neither loses nor repeats one.

use super::checkpoint::{self, Checkpoint};
use super::reader::{Line, LineMeta, LineSource, Next};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read at most this much per poll, so a reader thread hands out what it has now and then.
const MAX_READ_PER_POLL: usize = 8 << 20;
const CHUNK: usize = 64 << 10;
/// Bytes of a file's start that identify it.
pub const HEAD_BYTES: usize = 1024;
/// A rotated file that has been quiet at its end this long is closed.
pub const DRAIN_GRACE: Duration = Duration::from_secs(60);
/// Fingerprints of files read to their end kept (the rotations logrotate keeps, with margin).
const KNOWN_KEPT: usize = 64;
/// A sibling changed this long before a checkpoint may still hold lines not read then.
const SINCE_MARGIN_SECS: i64 = 60;
/// Files open at once per path (a follower far behind a fast rotator); more wait their turn.
const MAX_READERS: usize = 32;

/// A file's identity by content: the hash of its first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u64,
    pub hash: u64,
}

impl Fingerprint {
    pub fn of(head: &[u8]) -> Fingerprint {
        Fingerprint {
            len: head.len() as u64,
            hash: checkpoint::fnv(head),
        }
    }

    /// Whether a file starting with `head` is this one (grown, renamed, copied or compressed).
    pub fn matches(&self, head: &[u8]) -> bool {
        self.len > 0
            && head.len() as u64 >= self.len
            && checkpoint::fnv(&head[..self.len as usize]) == self.hash
    }
}

/// Where a followed path was left: each file still being read (oldest first; `offset` is after
/// the last line handed out) and the fingerprints of files already read to their end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailCheckpoint {
    /// The followed path, as given.
    pub path: String,
    pub files: Vec<Checkpoint>,
    pub known: Vec<Fingerprint>,
    /// Wall time of the checkpoint (UNIX seconds): an unknown sibling changed after it was
    /// written while `follow` was not reading.
    pub at: i64,
}

impl TailCheckpoint {
    /// A checkpoint of an older state (one file, no history).
    pub fn from_file(c: Checkpoint) -> TailCheckpoint {
        TailCheckpoint {
            path: c.path.clone(),
            files: vec![c],
            known: Vec::new(),
            at: unix_now(),
        }
    }
}

/// Where to start a file that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Current,
    /// Rotated away; last new byte (or the rotation) at `active`.
    Draining {
        active: Instant,
    },
    Finite,
}

enum Body {
    Plain(Arc<File>),
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<At>>>),
}

/// Sequential reads through `pread`: several readers share one descriptor, none moves it.
struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A file opened and recognised: identity, first (decoded) bytes, when it last changed.
struct Opened {
    path: PathBuf,
    file: Arc<File>,
    dev: u64,
    inode: u64,
    gzip: bool,
    size: u64,
    mtime: i64,
    head: Vec<u8>,
}

impl Opened {
    fn open(path: &Path) -> io::Result<Opened> {
        let file = File::open(path)?;
        let m = file.metadata()?;
        if !m.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let file = Arc::new(file);
        let mut magic = [0u8; 2];
        let gzip = file.read_at(&mut magic, 0)? == 2 && magic == [0x1f, 0x8b];
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let mut src: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(At {
                file: file.clone(),
                pos: 0,
            })))
        } else {
            Box::new(At {
                file: file.clone(),
                pos: 0,
            })
        };
        // A corrupt archive gives what decodes before the damage.
        let _ = (&mut src).take(HEAD_BYTES as u64).read_to_end(&mut head);
        Ok(Opened {
            path: path.to_path_buf(),
            dev: m.dev(),
            inode: m.ino(),
            gzip,
            size: m.len(),
            mtime: m.mtime(),
            head,
            file,
        })
    }

    /// A reader of this file from `offset` (decoded bytes for gzip); `None` when the file is
    /// shorter than that.
    fn reader(self, id: u64, offset: u64, line: u64, role: Role) -> io::Result<Option<Reader>> {
        let body = if self.gzip {
            let mut d = flate2::read::MultiGzDecoder::new(BufReader::new(At {
                file: self.file.clone(),
                pos: 0,
            }));
            let skipped = io::copy(&mut (&mut d).take(offset), &mut io::sink())?;
            if skipped < offset {
                return Ok(None);
            }
            Body::Gzip(Box::new(d))
        } else {
            if self.size < offset {
                return Ok(None);
            }
            Body::Plain(self.file.clone())
        };
        Ok(Some(Reader {
            id,
            name: self.path,
            body,
            dev: self.dev,
            inode: self.inode,
            gzip: self.gzip,
            role,
            read_pos: offset,
            offset,
            line,
            partial: Vec::new(),
            skipping: 0,
            head: self.head,
            consumed: (offset, line),
            at_end: false,
            broken: None,
        }))
    }
}

/// One file being read.
struct Reader {
    id: u64,
    /// Where it was found (for notes).
    name: PathBuf,
    body: Body,
    dev: u64,
    inode: u64,
    gzip: bool,
    role: Role,
    /// Bytes read (decoded, for gzip).
    read_pos: u64,
    /// Just after the last complete line read, and that line's number.
    offset: u64,
    line: u64,
    /// Bytes of a line still waiting for its newline (at most `max_line`); of an over-long line,
    /// the bytes skipped so far.
    partial: Vec<u8>,
    skipping: usize,
    /// The file's first bytes (up to `HEAD_BYTES`): what identifies it.
    head: Vec<u8>,
    /// Offset and number of the last line handed out.
    consumed: (u64, u64),
    /// The last read found nothing more.
    at_end: bool,
    /// An archive that cannot be decoded further: read up to there, then closed (with a note).
    broken: Option<String>,
}

/// The current file was truncated or rewritten under us.
struct Rewritten;

impl Reader {
    /// Read up to `budget` bytes of complete lines into `out`.
    fn read_some(
        &mut self,
        max_line: usize,
        budget: &mut usize,
        buf: &mut [u8],
        out: &mut Vec<(u64, Line)>,
    ) -> io::Result<Result<(), Rewritten>> {
        // Any plain file may have been truncated (a copytruncate, then a rename, while we
        // were paused); only what comes from the copy is immutable.
        let plain = matches!(self.body, Body::Plain(_)) && self.role != Role::Finite;
        if let (true, Body::Plain(f)) = (plain, &self.body) {
            if f.metadata()?.len() < self.read_pos {
                return Ok(Err(Rewritten));
            }
        }
        self.at_end = false;
        while *budget > 0 {
            let want = buf.len().min(*budget);
            let n = match &mut self.body {
                Body::Plain(f) => match f.read_at(&mut buf[..want], self.read_pos) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                },
                Body::Gzip(d) => match d.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // A damaged archive never gets better: end it here, say so.
                        self.broken = Some(format!(
                            "{}: cannot decode past line {}: {e}",
                            self.name.display(),
                            self.line
                        ));
                        self.partial.clear();
                        self.skipping = 0;
                        self.at_end = true;
                        break;
                    }
                },
            };
            if n == 0 {
                self.at_end = true;
                break;
            }
            if plain && self.read_pos > 0 && !self.head_unchanged()? {
                // Truncated and refilled (copytruncate) since the last read: these bytes are
                // the new content at an old offset, not a continuation.
                return Ok(Err(Rewritten));
            }
            if let Role::Draining { active } = &mut self.role {
                *active = Instant::now();
            }
            *budget = budget.saturating_sub(n);
            self.take(&buf[..n], max_line, out);
        }
        Ok(Ok(()))
    }

    /// Whether the file still starts with the bytes it started with.
    fn head_unchanged(&self) -> io::Result<bool> {
        let Body::Plain(f) = &self.body else {
            return Ok(true);
        };
        if self.head.is_empty() {
            return Ok(true);
        }
        let mut now = vec![0u8; self.head.len()];
        let mut got = 0;
        while got < now.len() {
            match f.read_at(&mut now[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got == now.len() && now == self.head)
    }

    /// Split read bytes into lines.
    fn take(&mut self, bytes: &[u8], max_line: usize, out: &mut Vec<(u64, Line)>) {
        // The head grows from bytes read (and checked), never from a later look at the file.
        let (from, have) = (self.read_pos, self.head.len() as u64);
        if have < HEAD_BYTES as u64 && have >= from && have < from + bytes.len() as u64 {
            let end = (HEAD_BYTES as u64 - from).min(bytes.len() as u64);
            self.head
                .extend_from_slice(&bytes[(have - from) as usize..end as usize]);
        }
        self.read_pos += bytes.len() as u64;
        let mut chunk = bytes;
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let consumed = self.partial.len() + self.skipping + i + 1;
            let too_long = if self.skipping > 0 || self.partial.len() + i > max_line {
                let keep = max_line.saturating_sub(self.partial.len()).min(i);
                self.partial.extend_from_slice(&chunk[..keep]);
                Some(self.skipping + self.partial.len() + (i - keep))
            } else {
                self.partial.extend_from_slice(&chunk[..i]);
                None
            };
            self.offset += consumed as u64;
            self.line += 1;
            out.push((
                self.id,
                Line {
                    number: self.line,
                    end_offset: self.offset,
                    bytes: std::mem::take(&mut self.partial),
                    too_long,
                },
            ));
            self.skipping = 0;
            chunk = &chunk[i + 1..];
        }
        let room = max_line.saturating_sub(self.partial.len());
        if chunk.len() > room {
            self.partial.extend_from_slice(&chunk[..room]);
            self.skipping += chunk.len() - room;
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    /// Read from the start again (the file was truncated in place).
    fn restart(&mut self) {
        self.read_pos = 0;
        self.offset = 0;
        self.line = 0;
        self.partial.clear();
        self.skipping = 0;
        self.head.clear();
        self.consumed = (0, 0);
        self.at_end = false;
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            path: self.name.display().to_string(),
            dev: self.dev,
            inode: self.inode,
            offset: self.consumed.0,
            line: self.consumed.1,
            size: self.read_pos,
            fingerprint: checkpoint::fnv(&self.head),
            fingerprint_len: self.head.len() as u64,
            gzip: self.gzip,
            pending: Vec::new(),
        }
    }

    /// All read, all handed out, and nothing more will come (or nothing came for the grace).
    fn finished(&self, now: Instant) -> bool {
        let done = self.at_end && self.partial.is_empty() && self.consumed.0 == self.offset;
        done && match self.role {
            Role::Current => false,
            Role::Finite => true,
            Role::Draining { active } => now.duration_since(active) >= DRAIN_GRACE,
        }
    }
}

/// A followed path: the files it is read from, and what is known of its rotations.
pub struct TailFile {
    pub path: PathBuf,
    /// Oldest first; a `Current` reader is last.
    readers: Vec<Reader>,
    known: VecDeque<Fingerprint>,
    /// Siblings not changed since this wall time (UNIX seconds) are not rotations we missed.
    since: i64,
    next_id: u64,
    /// Human notes: "rotated: …", "truncated in place: …", …
    pub notes: Vec<String>,
    buf: Vec<u8>,
}

impl TailFile {
    /// Follow `path` (which may not exist yet), resuming where `saved` left it; without a
    /// checkpoint, from `start`.
    pub fn open(
        path: &Path,
        saved: Option<&TailCheckpoint>,
        start: StartAt,
    ) -> io::Result<TailFile> {
        let mut t = TailFile {
            path: path.to_path_buf(),
            readers: Vec::new(),
            known: saved
                .map(|s| s.known.iter().copied().collect())
                .unwrap_or_default(),
            since: saved.map_or(unix_now(), |s| s.at.saturating_sub(SINCE_MARGIN_SECS)),
            next_id: 0,
            notes: Vec::new(),
            buf: Vec::new(),
        };
        let mut candidates = t.candidates();
        let Some(saved) = saved else {
            // First run: what is there now is history, not ours to read (except the path
            // itself with --from-start).
            let mut old: Vec<&Opened> = candidates.iter().filter(|o| o.path != path).collect();
            old.sort_by_key(|o| std::cmp::Reverse(o.mtime));
            for o in old.into_iter().take(KNOWN_KEPT).rev() {
                t.remember(&o.head);
            }
            match candidates.into_iter().find(|o| o.path == path) {
                Some(o) => {
                    let offset = match start {
                        StartAt::Beginning => 0,
                        StartAt::End if o.gzip => u64::MAX,
                        StartAt::End => o.size,
                    };
                    if offset == u64::MAX {
                        return Err(io::Error::other(
                            "is compressed: follow reads plain files (give the live log)",
                        ));
                    }
                    let id = t.id();
                    if let Some(r) = o.reader(id, offset, 0, Role::Current)? {
                        t.readers.push(r);
                    }
                }
                None if path.exists() => {
                    Opened::open(path)?; // the reason it cannot be read
                }
                None => t.notes.push("does not exist yet: waiting for it".into()),
            }
            return Ok(t);
        };
        for c in &saved.files {
            t.resume(c, &mut candidates)?;
        }
        t.read_missed(&mut candidates)?;
        if let Some(i) = candidates.iter().position(|o| o.path == path) {
            let o = candidates.swap_remove(i);
            if !t.is_open(&o) {
                t.notes
                    .push("new since the last run: reading it from the start".into());
                let id = t.id();
                if let Some(r) = o.reader(id, 0, 0, Role::Current)? {
                    t.readers.push(r);
                }
            }
        }
        // The file at the path is the newest: read last.
        if let Some(i) = t.readers.iter().position(|r| r.role == Role::Current) {
            let r = t.readers.remove(i);
            t.readers.push(r);
        }
        Ok(t)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The path and its rotated siblings, opened (what cannot be opened is left out).
    fn candidates(&self) -> Vec<Opened> {
        let mut v: Vec<Opened> = rotated_siblings(&self.path)
            .iter()
            .filter_map(|p| Opened::open(p).ok())
            .collect();
        if let Ok(o) = Opened::open(&self.path) {
            v.push(o);
        }
        v
    }

    fn remember(&mut self, head: &[u8]) {
        if head.is_empty() {
            return;
        }
        let fp = Fingerprint::of(head);
        if self.known.contains(&fp) {
            return;
        }
        if self.known.len() == KNOWN_KEPT {
            self.known.pop_front();
        }
        self.known.push_back(fp);
    }

    /// Whether a file is one of those being read.
    fn is_open(&self, o: &Opened) -> bool {
        self.readers.iter().any(|r| {
            (!o.gzip && !r.gzip && (r.dev, r.inode) == (o.dev, o.inode))
                || Fingerprint::of(&r.head).matches(&o.head)
        })
    }

    /// Whether a file was read (or is being read, or was history when following began).
    fn is_known(&self, o: &Opened) -> bool {
        self.is_open(o) || self.known.iter().any(|k| k.matches(&o.head))
    }

    /// Open the file a saved checkpoint names, wherever it is now, where it was left.
    fn resume(&mut self, c: &Checkpoint, candidates: &mut Vec<Opened>) -> io::Result<()> {
        let fp = Fingerprint {
            len: c.fingerprint_len,
            hash: c.fingerprint,
        };
        let same_inode = |o: &Opened| {
            !o.gzip
                && (o.dev, o.inode) == (c.dev, c.inode)
                && (fp.matches(&o.head) || c.fingerprint_len == 0)
        };
        let same_content = |o: &Opened| fp.matches(&o.head);
        let found = candidates
            .iter()
            .position(same_inode)
            .map(|i| (i, true))
            .or_else(|| candidates.iter().position(same_content).map(|i| (i, false)));
        let lost = format!(
            "{}: the file left at byte {} (line {}) is gone: lines written to it after that may be lost",
            c.path, c.offset, c.line
        );
        let Some((i, by_inode)) = found else {
            self.notes.push(lost);
            return Ok(());
        };
        let o = candidates.swap_remove(i);
        let role = match (by_inode, o.path == self.path) {
            (true, true) => Role::Current,
            (true, false) => Role::Draining {
                active: Instant::now(),
            },
            (false, _) => Role::Finite,
        };
        if o.path != self.path {
            self.notes.push(format!(
                "rotated to {} since the last run: reading the rest from byte {}",
                o.path.display(),
                c.offset
            ));
        }
        let id = self.id();
        match o.reader(id, c.offset, c.line, role) {
            Ok(Some(r)) => self.readers.push(r),
            Ok(None) => self.notes.push(lost),
            Err(e) => self.notes.push(format!("{lost} ({e})")),
        }
        Ok(())
    }

    /// Rotated siblings never read that changed since following began: rotations that came
    /// and went while `follow` lagged or was stopped. Opened as readers, oldest first.
    fn read_missed(&mut self, candidates: &mut Vec<Opened>) -> io::Result<()> {
        let mut missed: Vec<Opened> = Vec::new();
        for o in std::mem::take(candidates) {
            let missed_one = o.path != self.path
                && !o.head.is_empty()
                && o.mtime >= self.since
                && !self.is_known(&o)
                && !missed
                    .iter()
                    .any(|m| Fingerprint::of(&m.head).matches(&o.head));
            if missed_one {
                missed.push(o);
            } else {
                candidates.push(o);
            }
        }
        // Oldest first; a plain file and its archive are one file (the plain one is read).
        missed.sort_by_key(|o| (o.mtime, o.gzip));
        for o in missed {
            if self.readers.len() >= MAX_READERS {
                break; // read at the next rotation check, once older files are closed
            }
            self.notes.push(format!(
                "{}: a rotation not seen yet: reading it whole",
                o.path.display()
            ));
            let role = if o.gzip {
                Role::Finite
            } else {
                Role::Draining {
                    active: Instant::now(),
                }
            };
            let id = self.id();
            let name = o.path.clone();
            let r = match o.reader(id, 0, 0, role) {
                Ok(r) => r,
                Err(e) => {
                    self.notes
                        .push(format!("{}: cannot read: {e}", name.display()));
                    None
                }
            };
            if let Some(r) = r {
                let at = self
                    .readers
                    .iter()
                    .position(|r| r.role == Role::Current)
                    .unwrap_or(self.readers.len());
                self.readers.insert(at, r);
            }
        }
        Ok(())
    }

    /// A new file at the path (or the first one): the old one drains, missed rotations are
    /// read, then the new one from its start.
    fn check_path(&mut self) -> io::Result<()> {
        let m = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()), // gone: wait
            Err(e) => return Err(e),
        };
        let id = (m.dev(), m.ino());
        let current = self.readers.iter().find(|r| r.role == Role::Current);
        if current.is_some_and(|c| (c.dev, c.inode) == id)
            || self
                .readers
                .iter()
                .any(|r| (r.dev, r.inode) == id && !r.gzip)
        {
            return Ok(());
        }
        let had_current = current.is_some();
        for r in &mut self.readers {
            if r.role == Role::Current {
                r.role = Role::Draining {
                    active: Instant::now(),
                };
            }
        }
        let mut candidates = self.candidates();
        self.read_missed(&mut candidates)?;
        let Some(o) = candidates.into_iter().find(|o| o.path == self.path) else {
            // Gone again (next poll), or there but unreadable: say why.
            return match Opened::open(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        };
        if o.gzip {
            return Err(io::Error::other(
                "is compressed: follow reads plain files (give the live log)",
            ));
        }
        if had_current {
            self.notes
                .push("rotated: the old file is read to its end, then the new one".into());
        }
        let id = self.id();
        if let Some(r) = o.reader(id, 0, 0, Role::Current)? {
            self.readers.push(r);
        }
        Ok(())
    }

    /// The reader at `i` was truncated in place: read the rest of the old content from its
    /// copy, then the file from the start.
    fn recover_copytruncate(&mut self, i: usize) -> io::Result<()> {
        let old_head = self.readers[i].head.clone();
        let (offset, line) = (self.readers[i].offset, self.readers[i].line);
        // The old content goes on in the copy: it keeps the reader's id and what was handed out
        // of it (lines of it may still wait to be handed out); the file read again from its
        // start is a new stream with an id of its own.
        let (old_id, handed_out) = (self.readers[i].id, self.readers[i].consumed);
        let fp = Fingerprint::of(&old_head);
        let inode = (self.readers[i].dev, self.readers[i].inode);
        let mut copies: Vec<Opened> = rotated_siblings(&self.path)
            .iter()
            .filter_map(|p| Opened::open(p).ok())
            .filter(|o| fp.matches(&o.head) && (o.gzip || (o.dev, o.inode) != inode))
            .collect();
        copies.sort_by_key(|o| std::cmp::Reverse((o.mtime, !o.gzip)));
        let mut recovered = None;
        for o in copies {
            let name = o.path.clone();
            if let Ok(Some(mut r)) = o.reader(old_id, offset, line, Role::Finite) {
                r.consumed = handed_out;
                recovered = Some((r, name));
                break;
            }
        }
        self.remember(&old_head);
        self.readers[i].restart();
        self.readers[i].id = self.id();
        match recovered {
            Some((r, name)) => {
                self.notes.push(format!(
                    "truncated in place (copytruncate): the rest is read from {}, then the file from its start",
                    name.display()
                ));
                self.readers.insert(i, r);
            }
            None if offset > 0 => self.notes.push(format!(
                "truncated in place and no rotated copy starts like it: lines after byte {offset} (line {line}) may be lost; reading from the start"
            )),
            None => {}
        }
        Ok(())
    }

    /// New complete lines, each with the id of the file it came from.
    pub fn poll(&mut self, max_line: usize, out: &mut Vec<(u64, Line)>) -> io::Result<()> {
        self.check_path()?;
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK];
        }
        let mut budget = MAX_READ_PER_POLL;
        let mut i = 0;
        while i < self.readers.len() && budget > 0 {
            let mut buf = std::mem::take(&mut self.buf);
            let r = self.readers[i].read_some(max_line, &mut budget, &mut buf, out);
            self.buf = buf;
            if r?.is_err() {
                self.recover_copytruncate(i)?;
                continue; // from the copy, if there is one
            }
            if let Some(e) = self.readers[i].broken.take() {
                self.notes.push(e);
            }
            i += 1;
        }
        let now = Instant::now();
        let mut closed = Vec::new();
        self.readers.retain(|r| {
            let done = r.finished(now);
            if done {
                closed.push(r.head.clone());
            }
            !done
        });
        for h in closed {
            self.remember(&h);
        }
        Ok(())
    }

    /// Lines up to `meta` of file `id` were handed out.
    pub fn consumed(&mut self, id: u64, meta: &LineMeta) {
        if let Some(r) = self.readers.iter_mut().find(|r| r.id == id) {
            r.consumed = (meta.end_offset, meta.number);
        }
    }

    /// Where every file was left (lines handed out only) and what was read before.
    pub fn checkpoint(&self) -> TailCheckpoint {
        TailCheckpoint {
            path: self.path.display().to_string(),
            files: self.readers.iter().map(Reader::checkpoint).collect(),
            known: self.known.iter().copied().collect(),
            at: unix_now(),
        }
    }

    /// Files open now (for tests and notes).
    pub fn open_files(&self) -> usize {
        self.readers.len()
    }
}

/// `log`'s rotated siblings in its directory (`log.1`, `log.2.gz`, `log-20240801`…), not `log`.
pub fn rotated_siblings(log: &Path) -> Vec<PathBuf> {
    let Some(name) = log.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n != name && super::is_rotation_name(name, n))
        })
        .map(|e| dir.join(e.file_name()))
        .collect();
    v.sort();
    v
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A live tail as a line source for a reader thread: lines as they are appended, `Idle` while
/// nothing is new, never `End`. A read error (permissions changed, a disk error) is a note and a
/// retry on the next poll, not the end of following.
pub struct TailSource {
    tail: TailFile,
    max_line: usize,
    queue: VecDeque<(u64, Line)>,
    notes: Vec<String>,
    /// The last read error, so the same one is noted once.
    last_error: Option<String>,
}

impl TailSource {
    pub fn new(tail: TailFile, max_line: usize) -> TailSource {
        TailSource {
            tail,
            max_line,
            queue: VecDeque::new(),
            notes: Vec::new(),
            last_error: None,
        }
    }
}

impl LineSource for TailSource {
    fn next_line_into(&mut self, out: &mut Vec<u8>) -> Next {
        if self.queue.is_empty() {
            let mut lines = Vec::new();
            match self.tail.poll(self.max_line, &mut lines) {
                Ok(()) => self.last_error = None,
                Err(e) => {
                    let e = e.to_string();
                    if self.last_error.as_ref() != Some(&e) {
                        self.notes.push(format!("cannot read: {e} (retrying)"));
                        self.last_error = Some(e);
                    }
                }
            }
            self.notes.append(&mut self.tail.notes);
            self.queue.extend(lines);
        }
        match self.queue.pop_front() {
            Some((id, line)) => {
                out.extend_from_slice(&line.bytes);
                let meta = LineMeta {
                    number: line.number,
                    end_offset: line.end_offset,
                    too_long: line.too_long,
                };
                self.tail.consumed(id, &meta);
                Next::Line(meta)
            }
            None => Next::Idle,
        }
    }

    fn would_block(&self) -> bool {
        self.queue.is_empty()
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn checkpoint(&self) -> Option<TailCheckpoint> {
        Some(self.tail.checkpoint())
    }
}

#[cfg(test)]
mod tests;
