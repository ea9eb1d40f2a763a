//! Tailing live logs for `follow`: new complete lines from several files, surviving rotation.
//!
//! Each poll reads what was appended since the last one. A partial last line waits for its
//! newline. Rotation is noticed by `stat`-ing the path:
//! - rename + create (logrotate's default), and delete + recreate: the path now names another
//!   inode. The old handle is drained to its end first, then the new file is read from the start.
//! - copytruncate: same inode, shorter than what was read. Read again from the start.
//!
//! Where each file was left is a [`Checkpoint`], so a restart re-reads nothing and misses nothing.

use super::checkpoint::{self, Checkpoint, Resume};
use super::reader::{Line, LineMeta, LineSource, Next};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Read at most this much per file per poll, so one busy file cannot starve the loop.
const MAX_READ_PER_POLL: usize = 8 << 20;

pub struct TailFile {
    pub path: PathBuf,
    file: Option<File>,
    dev: u64,
    inode: u64,
    /// Offset just after the last complete line handed out.
    offset: u64,
    /// Bytes of a line still waiting for its newline.
    partial: Vec<u8>,
    /// Bytes of an over-long line skipped so far (its head is kept in `partial`).
    skipping: usize,
    line_no: u64,
    /// Human notes: "rotated (new inode): reading from the start", …
    pub notes: Vec<String>,
}

/// Where to start a file that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

impl TailFile {
    /// Open `path` (which may not exist yet), resuming at its checkpoint if one matches.
    pub fn open(path: &Path, saved: &[Checkpoint], start: StartAt) -> io::Result<TailFile> {
        let mut t = TailFile {
            path: path.to_path_buf(),
            file: None,
            dev: 0,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
            skipping: 0,
            line_no: 0,
            notes: Vec::new(),
        };
        if !path.exists() {
            t.notes.push("does not exist yet: waiting for it".into());
            return Ok(t);
        }
        let (offset, line) = match checkpoint::plan(path, saved)? {
            Resume::At(c, note) => {
                t.notes.extend(note);
                (c.offset, c.line)
            }
            Resume::Skip(c) => (c.offset, c.line),
            Resume::Start(note) if !saved.is_empty() => {
                // Known state but this file is new or was replaced while we were down: read it all.
                t.notes.extend(note);
                (0, 0)
            }
            Resume::Start(_) => match start {
                StartAt::Beginning => (0, 0),
                StartAt::End => (std::fs::metadata(path)?.len(), 0),
            },
        };
        t.switch_to(offset, line)?;
        Ok(t)
    }

    fn switch_to(&mut self, offset: u64, line: u64) -> io::Result<()> {
        let mut f = File::open(&self.path)?;
        let (dev, inode, _) = checkpoint::identity(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        self.file = Some(f);
        self.dev = dev;
        self.inode = inode;
        self.offset = offset;
        self.line_no = line;
        self.partial.clear();
        self.skipping = 0;
        Ok(())
    }

    /// Append new complete lines to `out`.
    pub fn poll(&mut self, max_line: usize, out: &mut Vec<Line>) -> io::Result<()> {
        self.read_available(max_line, out)?;
        match checkpoint::identity(&self.path) {
            Ok((dev, inode, size)) => {
                if self.file.is_none() || (dev, inode) != (self.dev, self.inode) {
                    // Rotated or recreated: the old handle was drained above; take the new file.
                    if self.file.is_some() {
                        self.notes.push(
                            "rotated (new file at this path): reading it from the start".into(),
                        );
                    }
                    self.switch_to(0, 0)?;
                    self.read_available(max_line, out)?;
                } else if size < self.offset {
                    self.notes
                        .push("truncated in place (copytruncate): reading from the start".into());
                    self.switch_to(0, 0)?;
                    self.read_available(max_line, out)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {} // deleted: wait for it to come back
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn read_available(&mut self, max_line: usize, out: &mut Vec<Line>) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < MAX_READ_PER_POLL {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            let mut chunk = &buf[..n];
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
                self.line_no += 1;
                out.push(Line {
                    number: self.line_no,
                    end_offset: self.offset,
                    bytes: std::mem::take(&mut self.partial),
                    too_long,
                });
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
        Ok(())
    }

    /// Where this file was left (complete lines only). `None` until the file exists.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.file.as_ref()?;
        let mut c =
            checkpoint::make(&self.path, self.offset, self.line_no, false, Vec::new()).ok()?;
        if (c.dev, c.inode) != (self.dev, self.inode) {
            // The path moved on (rotation seen by stat but not yet drained): never resume by path.
            c = Checkpoint {
                dev: self.dev,
                inode: self.inode,
                fingerprint_len: u64::MAX,
                ..c
            };
        }
        Some(c)
    }
}

/// A live tail as a line source for a reader thread: lines as they are appended, `Idle` while
/// nothing is new, never `End`. A read error (permissions changed, a disk error) is a note and a
/// retry on the next poll, not the end of following.
pub struct TailSource {
    tail: TailFile,
    max_line: usize,
    queue: VecDeque<Line>,
    notes: Vec<String>,
    /// The last read error, so the same one is noted once.
    last_error: Option<String>,
    /// Where the file was left the last time every polled line had been handed out.
    handed_out: Option<Checkpoint>,
}

impl TailSource {
    pub fn new(tail: TailFile, max_line: usize) -> TailSource {
        let handed_out = tail.checkpoint();
        TailSource {
            tail,
            max_line,
            queue: VecDeque::new(),
            notes: Vec::new(),
            last_error: None,
            handed_out,
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
            Some(line) => {
                out.extend_from_slice(&line.bytes);
                if self.queue.is_empty() {
                    self.handed_out = self.tail.checkpoint();
                }
                Next::Line(LineMeta {
                    number: line.number,
                    end_offset: line.end_offset,
                    too_long: line.too_long,
                })
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

    fn checkpoint(&self) -> Option<Checkpoint> {
        // Lines polled but not yet handed out are not consumed: until the queue is empty again,
        // the checkpoint stays where it was (a restart may read them twice, never lose them).
        if self.queue.is_empty() {
            self.tail.checkpoint()
        } else {
            self.handed_out.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
            .write_all(s.as_bytes())
            .unwrap();
    }

    fn lines(t: &mut TailFile) -> Vec<String> {
        let mut out = Vec::new();
        t.poll(1024, &mut out).unwrap();
        out.into_iter()
            .map(|l| String::from_utf8(l.bytes).unwrap())
            .collect()
    }

    #[test]
    fn partial_lines_wait_and_rotations_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "old\n");
        let mut t = TailFile::open(&p, &[], StartAt::End).unwrap();
        assert!(lines(&mut t).is_empty(), "starts at the end");
        append(&p, "a\nb");
        assert_eq!(lines(&mut t), vec!["a"]);
        append(&p, "c\n");
        assert_eq!(lines(&mut t), vec!["bc"]);
        // rename + create, with a last line written to the old file after the rename
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&p, &rotated).unwrap();
        append(&rotated, "late-in-old\n");
        append(&p, "new1\n");
        assert_eq!(lines(&mut t), vec!["late-in-old", "new1"]);
        // copytruncate
        std::fs::copy(&p, &rotated).unwrap();
        std::fs::write(&p, "").unwrap();
        append(&p, "x\n");
        assert_eq!(lines(&mut t), vec!["x"]);
        // delete + recreate
        std::fs::remove_file(&p).unwrap();
        assert!(lines(&mut t).is_empty());
        append(&p, "fresh\n");
        assert_eq!(lines(&mut t), vec!["fresh"]);
        // restart from a checkpoint: nothing re-read, nothing missed
        let cp = t.checkpoint().unwrap();
        append(&p, "after\n");
        let mut t2 = TailFile::open(&p, &[cp], StartAt::End).unwrap();
        assert_eq!(lines(&mut t2), vec!["after"]);
    }

    #[test]
    fn missing_file_is_waited_for_and_long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("later.log");
        let mut t = TailFile::open(&p, &[], StartAt::End).unwrap();
        assert!(lines(&mut t).is_empty());
        let long = "y".repeat(5000);
        append(&p, &format!("first\n{long}\nlast\n"));
        let mut out = Vec::new();
        t.poll(1024, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].too_long, Some(5000));
        assert_eq!(out[1].bytes.len(), 1024);
        assert_eq!(out[2].bytes, b"last");
    }
}
