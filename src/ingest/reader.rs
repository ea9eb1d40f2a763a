//! Byte sources → batches of lines, with bounded memory whatever the input holds.
//!
//! A line longer than `max_line_bytes` is not buffered: its head is kept for the error message and
//! the rest skipped up to the next newline. A read error mid-stream (a truncated `.gz`) ends the
//! source after every complete line before it was delivered; the error is reported, not fatal.

use std::io::{self, Read};

/// One line of input: 1-based line number, byte offset of its end (after the newline) in the
/// *raw* stream, and its bytes (without the newline). `too_long` holds the real length when the
/// line was cut.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: u64,
    pub end_offset: u64,
    pub bytes: Vec<u8>,
    pub too_long: Option<usize>,
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    max_line: usize,
    line_no: u64,
    offset: u64,
    /// A read error that ended the stream (e.g. "unexpected end of gzip stream").
    pub error: Option<io::Error>,
    /// Bytes after the last newline at EOF (a partial last line), delivered as a line.
    pub partial_tail: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, max_line: usize, first_line_no: u64, start_offset: u64) -> Self {
        LineReader {
            inner,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
            eof: false,
            max_line,
            line_no: first_line_no,
            offset: start_offset,
            error: None,
            partial_tail: false,
        }
    }

    /// Read more into the (drained) buffer; false at the end of the source.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        debug_assert_eq!(
            self.start, self.end,
            "fill is called with the buffer drained"
        );
        (self.start, self.end) = (0, 0);
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// Next line, or `None` at the end of the source.
    pub fn next_line(&mut self) -> Option<Line> {
        let mut bytes = Vec::new();
        let m = self.next_line_into(&mut bytes)?;
        Some(Line {
            number: m.number,
            end_offset: m.end_offset,
            bytes,
            too_long: m.too_long,
        })
    }

    /// Next line appended to `out` (no allocation per line: batches share one buffer). At most
    /// `max_line` bytes are appended; `too_long` tells the real length of a cut line.
    pub fn next_line_into(&mut self, out: &mut Vec<u8>) -> Option<LineMeta> {
        let mut len = 0usize; // bytes of this line so far, kept or skipped
        loop {
            // Take what the buffer holds of the line: keep up to `max_line` bytes, skip the rest.
            let avail = &self.buf[self.start..self.end];
            let newline = memchr::memchr(b'\n', avail);
            let part = newline.unwrap_or(avail.len());
            let keep = part.min(self.max_line.saturating_sub(len));
            out.extend_from_slice(&avail[..keep]);
            len += part;
            let consumed = newline.map_or(part, |i| i + 1);
            self.start += consumed;
            self.offset += consumed as u64;
            if newline.is_some() {
                return Some(self.meta(len));
            }
            if !self.fill() {
                if len == 0 {
                    return None;
                }
                // Last line without a newline.
                self.partial_tail = true;
                return Some(self.meta(len));
            }
        }
    }

    fn meta(&mut self, len: usize) -> LineMeta {
        self.line_no += 1;
        LineMeta {
            number: self.line_no,
            end_offset: self.offset,
            too_long: (len > self.max_line).then_some(len),
        }
    }
}

/// What a line source has next.
#[derive(Debug)]
pub enum Next {
    Line(LineMeta),
    /// Nothing now (a live tail): ask again later.
    Idle,
    /// The source ended.
    End,
}

/// Where a reader thread gets its lines: a finite reader (file, gzip, stdin) or a live tail
/// ([`super::tail::TailSource`]). One reader thread parses and releases what any source gives.
pub trait LineSource: Send {
    /// The next line appended to `out` (at most `max_line` bytes of it).
    fn next_line_into(&mut self, out: &mut Vec<u8>) -> Next;
    /// Whether the next call may wait for input (a reader thread sends what it has first).
    fn would_block(&self) -> bool {
        false
    }
    /// The last line delivered had no newline (the source ended mid-line).
    fn partial_tail(&self) -> bool {
        false
    }
    /// A read error that ended the source.
    fn take_error(&mut self) -> Option<io::Error> {
        None
    }
    /// Notes for the file's report ("rotated: …").
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Where a live tail was left (lines handed out only).
    fn checkpoint(&self) -> Option<super::tail::TailCheckpoint> {
        None
    }
}

impl<R: Read + Send> LineSource for LineReader<R> {
    fn next_line_into(&mut self, out: &mut Vec<u8>) -> Next {
        match LineReader::next_line_into(self, out) {
            Some(m) => Next::Line(m),
            None => Next::End,
        }
    }

    fn would_block(&self) -> bool {
        self.start == self.end && !self.eof
    }

    fn partial_tail(&self) -> bool {
        self.partial_tail
    }

    fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

/// Where a line was, without its bytes.
#[derive(Debug, Clone, Copy)]
pub struct LineMeta {
    pub number: u64,
    pub end_offset: u64,
    pub too_long: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max, 0, 0);
        std::iter::from_fn(|| r.next_line()).collect()
    }

    #[test]
    fn splits_lines_and_tracks_offsets() {
        let v = lines(b"a\nbb\r\nccc", 100);
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].number, v[0].end_offset, v[0].bytes.as_slice()),
            (1, 2, &b"a"[..])
        );
        assert_eq!(v[1].end_offset, 6);
        assert_eq!((v[2].bytes.as_slice(), v[2].end_offset), (&b"ccc"[..], 9));
    }

    #[test]
    fn huge_line_is_cut_not_buffered_and_neighbours_survive() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
        input.extend_from_slice(b"\nlast\n");
        let v = lines(&input, 64 * 1024);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].bytes, b"first");
        assert_eq!(v[1].too_long, Some(10 * 1024 * 1024));
        assert_eq!(v[1].bytes.len(), 64 * 1024);
        assert_eq!(v[2].bytes, b"last");
        assert_eq!(v[2].number, 3);
    }

    #[test]
    fn empty_input() {
        assert!(lines(b"", 10).is_empty());
    }

    /// A source that hands out 3 bytes per read: every line crosses reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_reads_are_the_same_lines() {
        let input = b"12345678\n123456789\n\nabcdefghijklmnop\nxy";
        let mut r = LineReader::new(Trickle(input), 8, 0, 0);
        let got: Vec<(Vec<u8>, Option<usize>, u64)> = std::iter::from_fn(|| r.next_line())
            .map(|l| (l.bytes, l.too_long, l.end_offset))
            .collect();
        let want: Vec<(Vec<u8>, Option<usize>, u64)> = vec![
            (b"12345678".to_vec(), None, 9),     // exactly the limit: kept whole
            (b"12345678".to_vec(), Some(9), 19), // one over: cut, real length told
            (b"".to_vec(), None, 20),
            (b"abcdefgh".to_vec(), Some(16), 37),
            (b"xy".to_vec(), None, 39), // last line without a newline
        ];
        assert_eq!(got, want);
        assert!(r.partial_tail);
        let whole: Vec<(Vec<u8>, Option<usize>, u64)> = lines(input, 8)
            .into_iter()
            .map(|l| (l.bytes, l.too_long, l.end_offset))
            .collect();
        assert_eq!(whole, want);
    }
}
