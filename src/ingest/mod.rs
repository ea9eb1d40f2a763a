//! Ingest: files, `.gz` archives and stdin → one time-ordered stream of [`Request`]s.
//!
//! Owns opening inputs (gzip detected by magic bytes, never by name), reading lines with bounded
//! memory, parsing them in parallel batches (rayon), per-file reorder buffers (lines out of order
//! by up to `reorder_secs` are put back in order), and the k-way merge of several files (a rotated
//! set given in any order). Every line ends up as a request or as a counted, explained error in
//! that file's [`FileReport`]; nothing is dropped silently.
//!
//! Invariant: memory is bounded by the reorder window and the batch size, never by file size.

pub mod checkpoint;
// `--from-parquet` needs polars' reader; the fuzz crate compiles ingest without it.
#[cfg(not(fuzzing))]
pub mod parquet;
pub mod reader;
pub mod reorder;
pub mod sort;
pub mod tail;

pub use reorder::{Pending, Reorder};

use crate::parse::{
    Detection, Format, LineError, LineParser, LogFormat, ParseOptions, Request, Spec,
};
use rayon::prelude::*;
use reader::{LineReader, LineSource, Next};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many example errors per file are kept for the summary and report.
pub const ERROR_EXAMPLES: usize = 5;
const BATCH_LINES: usize = 16 * 1024;

/// Ingest settings, resolved before work starts.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Format,
    pub parse: ParseOptions,
    /// Formats of particular files (`--nginx-conf`: each `access_log` path with its
    /// `log_format`); a rotation of such a file (`PATH.1`, `PATH.2.gz`) gets the same.
    pub file_formats: Vec<(PathBuf, Vec<Arc<LogFormat>>)>,
    /// Lines up to this much older than the newest line seen are put back in order.
    pub reorder_secs: i64,
    pub max_line_bytes: usize,
}

/// What happened to one input. Also serialised into `decisions.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    pub name: String,
    pub format: String,
    pub gzip: bool,
    /// Lines read in this run (after any checkpoint).
    pub lines: u64,
    pub requests: u64,
    pub parse_errors: u64,
    /// Empty (or blank) lines: skipped, not errors.
    #[serde(default)]
    pub empty_lines: u64,
    /// Error reason → count.
    pub error_kinds: BTreeMap<String, u64>,
    /// The first few errors as `file:line: reason`.
    pub error_examples: Vec<String>,
    /// Set when the input ended early (truncated gzip, read error).
    pub read_error: Option<String>,
    /// Byte offset this run started from (incremental runs).
    pub resumed_at: u64,
    /// Notes such as "rotated: read from the start".
    pub notes: Vec<String>,
    /// Requests that arrived after a later second had already left the reorder buffer (more
    /// than `reorder_secs` late): `analyze` then sorts the whole input.
    #[serde(default)]
    pub out_of_order: u64,
    /// Why this input was not analysed (unreadable, or not one line could be read): the run is
    /// partial (exit 3).
    #[serde(default)]
    pub failed: Option<String>,
}

impl IngestOptions {
    /// What the user said about the format of this input.
    pub fn spec_for(&self, source: &Source) -> Spec {
        if let Source::File(p) = source {
            if let Some((_, formats)) = self
                .file_formats
                .iter()
                .find(|(q, _)| is_log_or_rotation(q, p))
            {
                return Spec::LogFormats(formats.clone());
            }
        }
        if let Some(f) = &self.parse.log_format {
            return Spec::LogFormats(vec![f.clone()]);
        }
        match self.format {
            Format::Auto => Spec::Auto,
            Format::Combined => Spec::Combined,
            Format::Json => Spec::Json,
        }
    }
}

/// `file` is `log`, or one of its rotations: `log.1`, `log.2.gz`, `log-20240801`, `log-20240801.gz`
/// (logrotate's numbered and `dateext` names), in the same directory.
pub fn is_log_or_rotation(log: &Path, file: &Path) -> bool {
    let dir = |p: &Path| {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
    };
    let (Some(log_name), Some(name)) = (
        log.file_name().and_then(|n| n.to_str()),
        file.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    is_rotation_name(log_name, name) && dir(log) == dir(file)
}

/// `name` is `log_name` or one of its rotations' names: `.1`, `.2.gz`, `-20240801`, `-20240801.gz`.
pub fn is_rotation_name(log_name: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(log_name) else {
        return false;
    };
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    rest.is_empty()
        || rest
            .strip_prefix('.')
            .or_else(|| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
    /// What was read from stdin, kept in a temporary file to read it again (sorting).
    Spool(PathBuf),
}

impl Source {
    pub fn from_arg(arg: &Path) -> Source {
        if arg.as_os_str() == "-" {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::Stdin | Source::Spool(_) => "<stdin>".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Errors that stop a run before or while reading (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot open: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path}: cannot seek to checkpoint offset {offset}: {source}")]
    Seek {
        path: String,
        offset: u64,
        source: io::Error,
    },
}

/// One input being read. Its reader thread reads lines, parses them in parallel batches, puts
/// them back in time order (the [`Reorder`] rule) and counts errors; the detection thread only
/// takes the released requests, in order, a batch at a time.
pub struct Stream {
    pub report: FileReport,
    /// Released batches from this input's reader thread.
    batches: std::sync::mpsc::Receiver<Batch>,
    /// Spent batches go back to the reader thread to be freed there, off the detection thread.
    recycle: std::sync::mpsc::SyncSender<Vec<Request>>,
    /// The batch being consumed, and the index of its next request.
    current: Vec<Request>,
    pos: usize,
    exhausted: bool,
    /// Offset just after the last *complete* line consumed (checkpoint).
    pub committed_offset: u64,
    /// Number of the last line consumed.
    reader_line: u64,
    /// Requests read but not released when the input ended (incremental runs).
    pending: Vec<Pending>,
}

impl Stream {
    /// Open a source, detect gzip and format. `resume` = (byte offset, line number, pending
    /// requests restored from a checkpoint). With `spool`, what is read from stdin is also
    /// written there, so it can be read again.
    pub fn open(
        source: &Source,
        opts: Arc<IngestOptions>,
        resume: Option<(u64, u64, Vec<Pending>)>,
        flush_at_end: bool,
        progress: Arc<AtomicU64>,
        spool: Option<File>,
    ) -> Result<Stream, InputError> {
        let name = source.name();
        let (offset, line_no, pending) = resume.unwrap_or((0, 0, Vec::new()));
        let (decoded, gzip) = open_decoded(source, offset, spool)?;
        let (sample, whole, decoded) = read_sample(decoded);
        let (parser, detection) = LineParser::detect(
            opts.spec_for(source),
            &sample,
            whole,
            line_no + 1,
            &opts.parse,
        );
        let report = FileReport {
            name,
            format: detection.format.clone(),
            gzip,
            resumed_at: offset,
            notes: detection.notes.clone(),
            ..Default::default()
        };
        let worker = Worker {
            reader: Box::new(LineReader::new(
                decoded,
                opts.max_line_bytes,
                line_no,
                offset,
            )),
            parser: Some(parser),
            spec: opts.spec_for(source),
            reorder: Reorder::from_pending(pending),
            opts,
            // An archive is never appended to: nothing of it needs to wait for a next run.
            release: Release::Reorder {
                flush_at_end: flush_at_end || gzip,
            },
            progress,
            progress_seen: offset,
            report: report.clone(),
            committed_offset: offset,
            line: line_no,
            stop: Default::default(),
            buffers: Buffers::default(),
        };
        let (tx, batches) = std::sync::mpsc::sync_channel::<Batch>(2);
        let recycle = worker.spawn(move |b| tx.send(b).is_ok());
        Ok(Stream {
            report,
            batches,
            recycle,
            current: Vec::new(),
            pos: 0,
            exhausted: false,
            committed_offset: offset,
            reader_line: line_no,
            pending: Vec::new(),
        })
    }

    /// Line number of the last line consumed (for checkpoints).
    pub fn line_number(&self) -> u64 {
        self.reader_line
    }

    /// The next request this stream releases, waiting for its reader as needed.
    fn head(&mut self) -> Option<&Request> {
        loop {
            if self.pos < self.current.len() {
                return self.current.get(self.pos);
            }
            if self.exhausted {
                return None;
            }
            let Ok(batch) = self.batches.recv() else {
                self.exhausted = true; // the reader thread is gone (it only stops after a last batch)
                return None;
            };
            let spent = std::mem::replace(&mut self.current, batch.released);
            self.pos = 0;
            // Freed by the reader thread (or here, if it is not keeping up).
            let _ = self.recycle.try_send(spent);
            if let Some(end) = batch.end {
                self.exhausted = true;
                // The reader's report is the file's; keep the notes added here since `open`.
                let notes = std::mem::take(&mut self.report.notes);
                self.report = end.report;
                self.report.notes.splice(0..0, notes);
                self.committed_offset = end.committed_offset;
                self.reader_line = end.line;
                self.pending = end.pending;
            }
        }
    }

    /// The head [`Stream::head`] loaded, without loading.
    fn peek(&self) -> Option<&Request> {
        self.current.get(self.pos)
    }

    fn pop(&mut self) -> Option<&Request> {
        let r = self.current.get(self.pos)?;
        self.pos += 1;
        Some(r)
    }

    /// Requests read but not released (incremental runs carry them to the next run). Known once
    /// the stream is exhausted.
    pub fn pending(&self) -> Vec<Pending> {
        self.pending.clone()
    }
}

/// A live input of `follow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveSource {
    /// A file, tailed through rotations (it may not exist yet).
    Tail(PathBuf),
    /// Standard input until it ends (`docker logs -f nginx 2>&1 | bouncer follow -`).
    Stdin,
}

impl LiveSource {
    pub fn from_arg(arg: &Path) -> LiveSource {
        if arg.as_os_str() == "-" {
            LiveSource::Stdin
        } else {
            LiveSource::Tail(arg.to_path_buf())
        }
    }

    pub fn name(&self) -> String {
        match self {
            LiveSource::Stdin => "<stdin>".to_string(),
            LiveSource::Tail(p) => p.display().to_string(),
        }
    }
}

/// `follow`'s inputs: each read by a reader thread of its own — the same parsing, format
/// detection and error accounting as `analyze`'s files — releasing requests at once, all into
/// one queue the loop waits on.
pub struct LiveInputs {
    rx: std::sync::mpsc::Receiver<(usize, Batch)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Per input: its report and where it was left, as of the last batch taken.
    pub reports: Vec<FileReport>,
    pub checkpoints: Vec<Option<tail::TailCheckpoint>>,
    /// Inputs that ended (stdin closed).
    pub ended: Vec<bool>,
    /// Notes already handed out, per input.
    notes_out: Vec<usize>,
    /// Tests only (`BOUNCER_TAP=FILE`): every request taken, as `input ip time path`, so a test
    /// can check that each line was seen exactly once.
    tap: Option<File>,
}

impl LiveInputs {
    /// Start a reader thread per input. A file with a checkpoint in `saved` resumes there; one
    /// without starts at `start` (its end, unless `--from-start`).
    pub fn open(
        sources: &[LiveSource],
        opts: Arc<IngestOptions>,
        saved: &[tail::TailCheckpoint],
        start: tail::StartAt,
    ) -> Result<LiveInputs, InputError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Batch)>(64);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut reports = Vec::new();
        let mut checkpoints = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let name = src.name();
            let (reader, spec, notes): (Box<dyn LineSource>, Spec, Vec<String>) = match src {
                LiveSource::Tail(p) => {
                    let mine = saved.iter().find(|c| c.path == name);
                    let t = tail::TailFile::open(p, mine, start).map_err(|e| InputError::Open {
                        path: name.clone(),
                        source: e,
                    })?;
                    let notes = t.notes.clone();
                    let spec = opts.spec_for(&Source::File(p.clone()));
                    let source = tail::TailSource::new(t, opts.max_line_bytes);
                    (Box::new(source), spec, notes)
                }
                LiveSource::Stdin => {
                    let r = LineReader::new(io::stdin(), opts.max_line_bytes, 0, 0);
                    (Box::new(r), opts.spec_for(&Source::Stdin), Vec::new())
                }
            };
            let report = FileReport {
                name,
                format: "detected on the first lines".into(),
                notes,
                ..Default::default()
            };
            checkpoints.push(reader.checkpoint());
            let worker = Worker {
                reader,
                parser: None,
                spec,
                reorder: Reorder::default(),
                opts: opts.clone(),
                release: Release::Immediately,
                progress: Arc::new(AtomicU64::new(0)),
                progress_seen: 0,
                report: report.clone(),
                committed_offset: 0,
                line: 0,
                stop: stop.clone(),
                buffers: Buffers::default(),
            };
            let tx = tx.clone();
            // Spent batches are freed on this side: a live batch is small.
            drop(worker.spawn(move |b| tx.send((i, b)).is_ok()));
            reports.push(report);
        }
        let n = sources.len();
        Ok(LiveInputs {
            rx,
            stop,
            reports,
            checkpoints,
            ended: vec![false; n],
            notes_out: vec![0; n],
            tap: std::env::var_os("BOUNCER_TAP").and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
            }),
        })
    }

    /// Wait up to `timeout` for requests from any input: (input, requests). `None` when nothing
    /// came (or every input ended).
    pub fn recv(&mut self, timeout: std::time::Duration) -> Option<(usize, Vec<Request>)> {
        let (i, batch) = self.rx.recv_timeout(timeout).ok()?;
        if let Some(live) = batch.live {
            self.reports[i] = live.report;
            if live.checkpoint.is_some() {
                self.checkpoints[i] = live.checkpoint;
            }
        }
        if batch.end.is_some() {
            self.ended[i] = true;
        }
        if let Some(tap) = &mut self.tap {
            use std::io::Write;
            let mut text = String::new();
            for r in &batch.released {
                text.push_str(&format!("{i} {} {} {}\n", r.ip, r.time, r.path()));
            }
            let _ = tap.write_all(text.as_bytes());
        }
        Some((i, batch.released))
    }

    /// Notes of the inputs not handed out yet: (input name, note).
    pub fn take_notes(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (r, seen) in self.reports.iter().zip(&mut self.notes_out) {
            for n in r.notes.iter().skip(*seen) {
                out.push((r.name.clone(), n.clone()));
            }
            *seen = r.notes.len();
        }
        out
    }

    /// Ask every reader thread to stop (it sends its last batch when it next has nothing).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Bytes of each input looked at to decide its format.
const SAMPLE_BYTES: usize = 64 * 1024;

/// An input opened (at `offset`) and decoded (gzip by its magic bytes), and whether it was gzip.
/// With `spool`, what is read from stdin is also written there, so it can be read again.
fn open_decoded(
    source: &Source,
    offset: u64,
    spool: Option<File>,
) -> Result<(Box<dyn Read + Send>, bool), InputError> {
    let name = source.name();
    let raw: Box<dyn Read + Send> = match source {
        Source::Stdin => match spool {
            Some(file) => Box::new(Tee {
                inner: io::stdin(),
                spool: io::BufWriter::with_capacity(1 << 20, file),
            }),
            None => Box::new(io::stdin()),
        },
        Source::File(p) | Source::Spool(p) => {
            let mut f = File::open(p).map_err(|e| InputError::Open {
                path: name.clone(),
                source: e,
            })?;
            if offset > 0 {
                use std::io::Seek;
                f.seek(io::SeekFrom::Start(offset))
                    .map_err(|e| InputError::Seek {
                        path: name.clone(),
                        offset,
                        source: e,
                    })?;
            }
            Box::new(f)
        }
    };
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let head = buffered.fill_buf().map_err(|e| InputError::Open {
        path: name.clone(),
        source: e,
    })?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        (Box::new(flate2::read::MultiGzDecoder::new(buffered)), true)
    } else {
        (Box::new(buffered), false)
    })
}

/// The first decoded bytes (for format detection), whether they are the whole input, and the
/// reader with those bytes handed back.
fn read_sample(mut decoded: Box<dyn Read + Send>) -> (Vec<u8>, bool, Box<dyn Read + Send>) {
    let mut first = vec![0u8; SAMPLE_BYTES];
    let n = read_up_to(&mut decoded, &mut first);
    first.truncate(n);
    let whole = n < SAMPLE_BYTES;
    let again = io::Cursor::new(first.clone()).chain(decoded);
    (first, whole, Box::new(again))
}

/// What `bouncer formats` shows about an input: its parser and what detection found.
pub struct Inspection {
    pub gzip: bool,
    pub parser: LineParser,
    pub detection: Detection,
}

/// Open an input and detect its format, reading only its first bytes.
pub fn inspect(source: &Source, opts: &IngestOptions) -> Result<Inspection, InputError> {
    let (decoded, gzip) = open_decoded(source, 0, None)?;
    let (sample, whole, _) = read_sample(decoded);
    let (parser, detection) =
        LineParser::detect(opts.spec_for(source), &sample, whole, 1, &opts.parse);
    Ok(Inspection {
        gzip,
        parser,
        detection,
    })
}

/// Several streams merged into one time-ordered sequence.
pub struct Merge {
    pub streams: Vec<Stream>,
}

impl Merge {
    /// The next request in canonical order ([`Request::order_key`]) across all inputs, or
    /// `None` when no stream can release.
    pub fn next_request(&mut self) -> Option<&Request> {
        if self.streams.len() == 1 {
            let only = &mut self.streams[0];
            only.head()?;
            return only.pop();
        }
        for s in &mut self.streams {
            s.head(); // loads the next batch where one is due
        }
        let mut best: Option<(usize, &Request)> = None;
        for (i, s) in self.streams.iter().enumerate() {
            if let Some(r) = s.peek() {
                if best.is_none_or(|(_, b)| r.canonical_cmp(b).is_lt()) {
                    best = Some((i, r));
                }
            }
        }
        let i = best.map(|(i, _)| i)?;
        self.streams[i].pop()
    }
}

/// Requests released by a reader thread.
pub struct Batch {
    released: Vec<Request>,
    /// Set on the last batch: no batch follows.
    end: Option<End>,
    /// Live tails: the file's report so far and where it was left, after these requests.
    live: Option<LiveUpdate>,
}

/// How far a live input has got: its report and its checkpoint.
#[derive(Debug, Clone)]
pub struct LiveUpdate {
    pub report: FileReport,
    pub checkpoint: Option<tail::TailCheckpoint>,
}

/// What a reader thread knows when its input ends.
struct End {
    /// The file's report, with the counts, errors and notes of the lines it read.
    report: FileReport,
    committed_offset: u64,
    line: u64,
    /// What it still holds for reordering (empty unless the run keeps a tail for the next one).
    pending: Vec<Pending>,
}

/// How a reader thread lets requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Finite inputs: through the reorder buffer (`reorder_secs`); everything at the end when
    /// the input is complete (not in incremental runs, where the tail waits for more lines).
    Reorder { flush_at_end: bool },
    /// Live tails: at once, in line order. The detector counts a line up to its tolerance late
    /// in its own second, so holding lines back would only delay bans.
    Immediately,
}

/// How long a reader thread waits before asking an idle live source again.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// A reader thread's state: read lines from any [`LineSource`], parse a batch at a time in
/// parallel (rayon, lines in one shared buffer), release them (reorder or at once), count.
/// Runs on its own thread, handing batches over a short queue, so reading, parsing and
/// reordering overlap detection.
struct Worker {
    reader: Box<dyn LineSource>,
    /// The parser, or what to detect it from (a live tail's format is decided on its first
    /// lines, which may come long after it was opened).
    parser: Option<LineParser>,
    spec: Spec,
    opts: Arc<IngestOptions>,
    reorder: Reorder,
    release: Release,
    /// Raw bytes read, shared with the progress bar.
    progress: Arc<AtomicU64>,
    progress_seen: u64,
    report: FileReport,
    committed_offset: u64,
    line: u64,
    /// Set to stop a live worker (it then sends its last batch).
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Buffers kept from batch to batch: fresh multi-megabyte buffers per batch cost page
    /// faults (the allocator hands large blocks back to the kernel and gets them zeroed again).
    buffers: Buffers,
}

/// See [`Worker::buffers`].
#[derive(Default)]
struct Buffers {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize, reader::LineMeta)>,
    results: Vec<Result<Request, LineError>>,
    /// A spent batch sent back by the consumer, emptied, to carry the next one.
    released: Option<Vec<Request>>,
}

impl Worker {
    /// Run on a thread of its own, handing each batch to `send` (false: nobody listens, stop).
    fn spawn(
        mut self,
        mut send: impl FnMut(Batch) -> bool + Send + 'static,
    ) -> std::sync::mpsc::SyncSender<Vec<Request>> {
        let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Vec<Request>>(4);
        let work = move || loop {
            // Spent batches are freed here, and one is kept to carry the next batch.
            while let Ok(mut spent) = recycle_rx.try_recv() {
                spent.clear();
                self.buffers.released = Some(spent);
            }
            let (released, last) = self.next_batch();
            let end = last.then(|| End {
                report: self.report.clone(),
                committed_offset: self.committed_offset,
                line: self.line,
                pending: self.reorder.pending(),
            });
            let live = (self.release == Release::Immediately).then(|| LiveUpdate {
                report: self.report.clone(),
                checkpoint: self.reader.checkpoint(),
            });
            if !send(Batch {
                released,
                end,
                live,
            }) || last
            {
                return; // receiver gone, or done
            }
        };
        std::thread::Builder::new()
            .name("bouncer-read".into())
            .spawn(work)
            .expect("spawn reader thread");
        recycle_tx
    }

    /// Read and parse up to `BATCH_LINES` lines (a live source: what it has now, waiting while
    /// it has nothing); returns the requests released, and whether the input ended.
    fn next_batch(&mut self) -> (Vec<Request>, bool) {
        let mut buf = std::mem::take(&mut self.buffers.bytes);
        buf.clear();
        buf.reserve(BATCH_LINES * 256);
        let mut spans = std::mem::take(&mut self.buffers.spans);
        spans.clear();
        spans.reserve(BATCH_LINES);
        let mut last = false;
        while spans.len() < BATCH_LINES {
            if !spans.is_empty() && self.reader.would_block() {
                break; // send what is here before waiting for more
            }
            let from = buf.len();
            match self.reader.next_line_into(&mut buf) {
                Next::Line(meta) => spans.push((from, buf.len(), meta)),
                Next::Idle if spans.is_empty() => {
                    if self.stop.load(Ordering::Relaxed) {
                        last = true;
                        break;
                    }
                    self.report.notes.extend(self.reader.take_notes());
                    std::thread::sleep(IDLE_POLL);
                }
                Next::Idle => break,
                Next::End => {
                    last = true;
                    break;
                }
            }
        }
        self.report.notes.extend(self.reader.take_notes());
        let flush_at_end = match self.release {
            Release::Reorder { flush_at_end } => flush_at_end,
            Release::Immediately => true,
        };
        if last && self.reader.partial_tail() && !flush_at_end {
            // An incremental run leaves a partial last line for the next run.
            if let Some((_, _, m)) = spans.pop() {
                self.report.notes.push(format!(
                    "line {} has no newline yet: left for the next run",
                    m.number
                ));
            }
        }
        if self.parser.is_none() && !spans.is_empty() {
            // A live tail's first lines: decide its format on them.
            let mut sample = Vec::new();
            for (a, b, _) in spans.iter().take(200) {
                sample.extend_from_slice(&buf[*a..*b]);
                sample.push(b'\n');
            }
            let (parser, detection) = LineParser::detect(
                self.spec.clone(),
                &sample,
                true,
                spans[0].2.number,
                &self.opts.parse,
            );
            self.report.format = detection.format.clone();
            self.report.notes.extend(detection.notes.clone());
            self.parser = Some(parser);
        }
        let (opts, parser) = (&self.opts, &self.parser);
        let mut results = std::mem::take(&mut self.buffers.results);
        spans
            .par_iter()
            .map(|(a, b, m)| match (m.too_long, parser) {
                (Some(n), _) => Err(LineError::TooLong(n, opts.max_line_bytes)),
                (None, Some(p)) => p.parse_line(&buf[*a..*b]),
                (None, None) => unreachable!("a parser exists once there are lines"),
            })
            .collect_into_vec(&mut results);
        let mut released = self.buffers.released.take().unwrap_or_default();
        released.reserve(results.len());
        let reorder_secs = self.opts.reorder_secs;
        for ((_, _, meta), result) in spans.iter().zip(results.drain(..)) {
            self.report.lines += 1;
            self.committed_offset = meta.end_offset;
            self.line = meta.number;
            match result {
                Ok(req) => {
                    self.report.requests += 1;
                    match self.release {
                        Release::Immediately => released.push(req),
                        Release::Reorder { .. } => {
                            if self.reorder.push_release(req, reorder_secs, &mut released) {
                                self.report.out_of_order += 1;
                            }
                        }
                    }
                }
                Err(LineError::Empty) => self.report.empty_lines += 1,
                Err(e) => record_error(&mut self.report, meta.number, e),
            }
        }
        if last {
            if flush_at_end {
                self.reorder.release(reorder_secs, &mut released, true);
            }
            if let Some(e) = self.reader.take_error() {
                let what = if self.report.gzip {
                    "truncated or corrupt gzip"
                } else {
                    "read error"
                };
                self.report.read_error = Some(format!("{what} after line {}: {e}", self.line));
            }
        }
        self.progress.fetch_add(
            self.committed_offset.saturating_sub(self.progress_seen),
            Ordering::Relaxed,
        );
        self.progress_seen = self.committed_offset;
        self.buffers = Buffers {
            bytes: buf,
            spans,
            results,
            released: self.buffers.released.take(),
        };
        (released, last)
    }
}

/// A reader that also writes what it reads to a spool file. A spool that cannot be written is an
/// input error: stdin could not be read again, so nothing is silently lost.
struct Tee<R> {
    inner: R,
    spool: io::BufWriter<File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        use std::io::Write;
        self.spool.write_all(&buf[..n]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot keep a copy of stdin to sort it: {e}"),
            )
        })?;
        if n == 0 {
            self.spool.flush()?;
        }
        Ok(n)
    }
}

fn record_error(report: &mut FileReport, line_no: u64, e: LineError) {
    report.parse_errors += 1;
    *report.error_kinds.entry(e.kind().to_string()).or_insert(0) += 1;
    if report.error_examples.len() < ERROR_EXAMPLES {
        report
            .error_examples
            .push(format!("{}:{}: {}", report.name, line_no, e));
    }
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The error will surface again on the real read and be reported there.
            Err(_) => break,
        }
    }
    n
}
