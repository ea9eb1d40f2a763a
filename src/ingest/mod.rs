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
pub mod reader;
pub mod tail;

use crate::parse::{self, Format, LineError, ParseOptions, Request};
use rayon::prelude::*;
use reader::LineReader;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many example errors per file are kept for the summary and report.
pub const ERROR_EXAMPLES: usize = 5;
const BATCH_LINES: usize = 16 * 1024;
/// Hard cap on requests held for reordering: past it the oldest is released early (and, if a
/// later line turns out older, counted as late). Keeps memory bounded on dense logs.
const MAX_PENDING: usize = 1 << 20;

/// Ingest settings, resolved before work starts.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Format,
    pub parse: ParseOptions,
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
}

/// A request waiting in a reorder buffer, ordered by (time, arrival).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub time: i64,
    pub seq: u64,
    pub req: Request,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(o.time, o.seq))
    }
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
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
            Source::Stdin => "<stdin>".to_string(),
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

/// One input being read: its reader, reorder buffer and report.
pub struct Stream {
    pub report: FileReport,
    reader: LineReader<Box<dyn Read + Send>>,
    format: Format,
    opts: Arc<IngestOptions>,
    /// Parsed requests not yet in the reorder buffer (they enter one by one, so what is released
    /// depends only on line order, never on batch boundaries).
    parsed: std::collections::VecDeque<Request>,
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    max_seen: Option<i64>,
    exhausted: bool,
    /// Release everything at the end (false in incremental runs: the tail waits for more lines).
    flush_at_end: bool,
    /// Offset just after the last *complete* line consumed (checkpoint).
    pub committed_offset: u64,
    /// Raw bytes read, shared with the progress bar.
    progress: Arc<AtomicU64>,
    progress_seen: u64,
    /// Number of the last line consumed.
    reader_line: u64,
}

impl Stream {
    /// Open a source, detect gzip and format. `resume` = (byte offset, line number, pending
    /// requests restored from a checkpoint).
    pub fn open(
        source: &Source,
        opts: Arc<IngestOptions>,
        resume: Option<(u64, u64, Vec<Pending>)>,
        flush_at_end: bool,
        progress: Arc<AtomicU64>,
    ) -> Result<Stream, InputError> {
        let name = source.name();
        let (offset, line_no, pending) = resume.unwrap_or((0, 0, Vec::new()));
        let raw: Box<dyn Read + Send> = match source {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(p) => {
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
        let mut decoded: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let format = match opts.format {
            Format::Auto => {
                // Sniff from the first decoded bytes, then hand them back to the reader.
                let mut first = vec![0u8; 64 * 1024];
                let n = read_up_to(&mut decoded, &mut first);
                first.truncate(n);
                let fmt = Format::sniff(&first);
                decoded = Box::new(io::Cursor::new(first).chain(decoded));
                fmt
            }
            f => f,
        };
        let format_name = match format {
            Format::Json => "json",
            _ => "combined",
        };
        let mut heap = BinaryHeap::new();
        let mut seq = 0;
        let mut max_seen = None;
        for p in pending {
            seq = seq.max(p.seq + 1);
            max_seen = Some(max_seen.map_or(p.time, |m: i64| m.max(p.time)));
            heap.push(Reverse(p));
        }
        Ok(Stream {
            report: FileReport {
                name,
                format: format_name.to_string(),
                gzip,
                resumed_at: offset,
                ..Default::default()
            },
            reader: LineReader::new(decoded, opts.max_line_bytes, line_no, offset),
            format,
            opts,
            parsed: std::collections::VecDeque::new(),
            heap,
            seq,
            max_seen,
            exhausted: false,
            flush_at_end,
            committed_offset: offset,
            progress,
            progress_seen: offset,
            reader_line: line_no,
        })
    }

    /// Line number of the last line consumed (for checkpoints).
    pub fn line_number(&self) -> u64 {
        self.reader_line
    }

    fn read_batch(&mut self) {
        let mut lines = Vec::with_capacity(BATCH_LINES);
        while lines.len() < BATCH_LINES {
            match self.reader.next_line() {
                Some(l) => lines.push(l),
                None => {
                    self.exhausted = true;
                    break;
                }
            }
        }
        if self.exhausted {
            if let Some(e) = self.reader.error.take() {
                let what = if self.report.gzip {
                    "truncated or corrupt gzip"
                } else {
                    "read error"
                };
                self.report.read_error =
                    Some(format!("{what} after line {}: {e}", self.reader_line));
            }
            // A last line without newline: analyze keeps it; an incremental run leaves it for
            // the next run, when it may be complete.
            if self.reader.partial_tail && !self.flush_at_end {
                if let Some(last) = lines.pop() {
                    self.report.notes.push(format!(
                        "line {} has no newline yet: left for the next run",
                        last.number
                    ));
                }
            }
        }
        let (fmt, opts) = (self.format, &self.opts);
        let parsed: Vec<Result<Request, LineError>> = lines
            .par_iter()
            .map(|l| match l.too_long {
                Some(n) => Err(LineError::TooLong(n, opts.max_line_bytes)),
                None => parse::parse_line(&l.bytes, fmt, &opts.parse),
            })
            .collect();
        for (line, result) in lines.iter().zip(parsed) {
            self.report.lines += 1;
            self.committed_offset = line.end_offset;
            self.reader_line = line.number;
            match result {
                Ok(req) => {
                    self.report.requests += 1;
                    self.parsed.push_back(req);
                }
                Err(e) => self.record_error(line.number, e),
            }
        }
        let raw = self.committed_offset;
        self.progress
            .fetch_add(raw.saturating_sub(self.progress_seen), Ordering::Relaxed);
        self.progress_seen = raw;
    }

    fn record_error(&mut self, line_no: u64, e: LineError) {
        self.report.parse_errors += 1;
        let kind = match &e {
            LineError::TooLong(..) => "line too long",
            LineError::InvalidUtf8 => "invalid UTF-8",
            LineError::Combined(_) => "not a combined/common line",
            LineError::Json(_) => "invalid JSON",
            LineError::MissingIp(_) => "no client address",
            LineError::MissingTime(_) => "no time",
            LineError::InvalidIp(_) => "invalid client address",
            LineError::InvalidTime(_) => "invalid time",
            LineError::InvalidStatus(_) => "invalid status",
        };
        *self.report.error_kinds.entry(kind.to_string()).or_insert(0) += 1;
        if self.report.error_examples.len() < ERROR_EXAMPLES {
            self.report
                .error_examples
                .push(format!("{}:{}: {}", self.report.name, line_no, e));
        }
    }

    /// Time of the next request this stream may release, reading more input as needed.
    fn head(&mut self) -> Option<i64> {
        loop {
            if let Some(Reverse(top)) = self.heap.peek() {
                let releasable = match self.max_seen {
                    Some(m) => top.time <= m - self.opts.reorder_secs,
                    None => true,
                };
                let full = self.heap.len() > MAX_PENDING;
                if releasable
                    || full
                    || (self.exhausted && self.parsed.is_empty() && self.flush_at_end)
                {
                    return Some(top.time);
                }
            }
            if let Some(req) = self.parsed.pop_front() {
                self.max_seen = Some(self.max_seen.map_or(req.time, |m| m.max(req.time)));
                self.heap.push(Reverse(Pending {
                    time: req.time,
                    seq: self.seq,
                    req,
                }));
                self.seq += 1;
                continue;
            }
            if self.exhausted {
                return None;
            }
            self.read_batch();
        }
    }

    fn pop(&mut self) -> Option<Request> {
        self.heap.pop().map(|Reverse(p)| p.req)
    }

    /// Requests read but not released (incremental runs carry them to the next run).
    pub fn pending(&self) -> Vec<Pending> {
        let mut v: Vec<Pending> = self.heap.iter().map(|Reverse(p)| p.clone()).collect();
        v.sort();
        v
    }
}

/// Several streams merged into one time-ordered sequence.
pub struct Merge {
    pub streams: Vec<Stream>,
}

impl Merge {
    /// The next request in time order across all inputs, or `None` when no stream can release.
    pub fn next_request(&mut self) -> Option<Request> {
        let mut best: Option<(i64, usize)> = None;
        for (i, s) in self.streams.iter_mut().enumerate() {
            if let Some(t) = s.head() {
                if best.is_none_or(|(bt, _)| t < bt) {
                    best = Some((t, i));
                }
            }
        }
        best.and_then(|(_, i)| self.streams[i].pop())
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
