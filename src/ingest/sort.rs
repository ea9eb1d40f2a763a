//! Sorting a whole input by time, in bounded memory: what `analyze` does when its input is not in
//! time order beyond the reorder tolerance (`zcat access.log* | bouncer analyze -` in the shell's
//! glob order, a file whose blocks were shuffled). Requests are collected up to a memory budget,
//! sorted in the canonical order ([`Request::order_key`]) and spilled to temporary files as
//! sorted runs; reading merges the runs. The result is the same sequence whatever the input
//! order, so the decisions are too.

use super::{IngestOptions, Merge, Source, Stream};
use crate::parse::{Class, OrderKey, Request};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Read `inputs` (again), sort every request by time in `budget` bytes of memory (the rest in
/// sorted runs on disk) and hand them to `each` in canonical order. Returns the streams, for
/// their reports (each out-of-order input gets a note saying it was sorted), and what sorting
/// took.
pub fn sorted_pass(
    inputs: &[Source],
    opts: &Arc<IngestOptions>,
    budget: usize,
    mut each: impl FnMut(&Request),
) -> anyhow::Result<(Vec<Stream>, SortStats)> {
    let progress = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for src in inputs {
        streams.push(Stream::open(
            src,
            opts.clone(),
            None,
            true,
            progress.clone(),
            None,
        )?);
    }
    let mut merge = Merge { streams };
    let mut sorter = ExternalSort::new(budget);
    while let Some(req) = merge.next_request() {
        sorter.push(req.clone())?;
    }
    let (mut sorted, stats) = sorter.finish()?;
    while let Some(req) = sorted.next_request()? {
        each(&req);
    }
    let how = match stats.spilled_runs {
        0 => "in memory".to_string(),
        n => format!("{n} sorted runs on disk (--sort-memory)"),
    };
    for s in &mut merge.streams {
        if s.report.out_of_order > 0 {
            s.report.notes.push(format!(
                "not in time order: {} requests arrived more than {} s after later ones; all {} requests were sorted by time ({how}) before detection",
                s.report.out_of_order, opts.reorder_secs, stats.requests
            ));
        }
    }
    Ok((merge.streams, stats))
}

/// Bytes a request takes in memory, roughly: the struct, its text and allocator overhead.
fn footprint(r: &Request) -> usize {
    std::mem::size_of::<Request>() + r.path().len() + r.user_agent().len() + 16
}

/// Collects requests, then yields them sorted.
pub struct ExternalSort {
    budget: usize,
    buf: Vec<Request>,
    bytes: usize,
    runs: Vec<File>,
    total: u64,
}

/// What sorting took, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortStats {
    pub requests: u64,
    /// Sorted runs written to temporary files (0: everything fit in memory).
    pub spilled_runs: usize,
}

impl ExternalSort {
    /// Keep at most about `budget` bytes of requests in memory before spilling a run.
    pub fn new(budget: usize) -> ExternalSort {
        ExternalSort {
            budget: budget.max(64 << 10),
            buf: Vec::new(),
            bytes: 0,
            runs: Vec::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, req: Request) -> io::Result<()> {
        self.bytes += footprint(&req);
        self.buf.push(req);
        self.total += 1;
        if self.bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable_by(Request::canonical_cmp);
        // An unnamed temporary file: gone when closed, whatever happens to the process.
        let file = tempfile::tempfile()?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        for r in self.buf.drain(..) {
            encode(&r, &mut w)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(0))?;
        self.runs.push(file);
        self.bytes = 0;
        Ok(())
    }

    /// The requests in canonical order.
    pub fn finish(mut self) -> io::Result<(Sorted, SortStats)> {
        if !self.runs.is_empty() && !self.buf.is_empty() {
            self.spill()?;
        }
        let stats = SortStats {
            requests: self.total,
            spilled_runs: self.runs.len(),
        };
        self.buf.sort_unstable_by(Request::canonical_cmp);
        let mut runs: Vec<Run> = self
            .runs
            .into_iter()
            .map(|f| Run {
                r: BufReader::with_capacity(1 << 20, f),
            })
            .collect();
        let mut heads = BinaryHeap::new();
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(req) = run.next()? {
                heads.push(Reverse(Head(req.order_key(), i, req)));
            }
        }
        Ok((
            Sorted {
                memory: std::mem::take(&mut self.buf).into_iter(),
                runs,
                heads,
            },
            stats,
        ))
    }
}

/// A run's next request, ordered by its key (ties: the run index).
struct Head(OrderKey, usize, Request);

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

struct Run {
    r: BufReader<File>,
}

impl Run {
    fn next(&mut self) -> io::Result<Option<Request>> {
        decode(&mut self.r)
    }
}

/// Sorted requests: from memory when nothing was spilled, else merged from the runs.
pub struct Sorted {
    memory: std::vec::IntoIter<Request>,
    runs: Vec<Run>,
    heads: BinaryHeap<Reverse<Head>>,
}

impl Sorted {
    pub fn next_request(&mut self) -> io::Result<Option<Request>> {
        if self.runs.is_empty() {
            return Ok(self.memory.next());
        }
        let Some(Reverse(Head(_, i, req))) = self.heads.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.runs[i].next()? {
            self.heads.push(Reverse(Head(next.order_key(), i, next)));
        }
        Ok(Some(req))
    }
}

fn encode(r: &Request, w: &mut impl Write) -> io::Result<()> {
    w.write_all(&r.time.to_le_bytes())?;
    match r.ip {
        IpAddr::V4(a) => {
            w.write_all(&[4])?;
            w.write_all(&a.octets())?;
        }
        IpAddr::V6(a) => {
            w.write_all(&[6])?;
            w.write_all(&a.octets())?;
        }
    }
    w.write_all(&r.status.to_le_bytes())?;
    w.write_all(&r.bytes.to_le_bytes())?;
    w.write_all(&[r.class() as u8])?;
    for text in [r.path(), r.user_agent()] {
        w.write_all(&(text.len() as u32).to_le_bytes())?;
        w.write_all(text.as_bytes())?;
    }
    Ok(())
}

fn decode(r: &mut impl Read) -> io::Result<Option<Request>> {
    let mut time = [0u8; 8];
    match r.read_exact(&mut time) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    let ip = match tag[0] {
        4 => {
            let mut a = [0u8; 4];
            r.read_exact(&mut a)?;
            IpAddr::from(a)
        }
        6 => {
            let mut a = [0u8; 16];
            r.read_exact(&mut a)?;
            IpAddr::from(a)
        }
        t => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sort run: bad address tag {t}"),
            ))
        }
    };
    let mut status = [0u8; 2];
    r.read_exact(&mut status)?;
    let mut bytes = [0u8; 8];
    r.read_exact(&mut bytes)?;
    let mut class = [0u8; 1];
    r.read_exact(&mut class)?;
    let mut texts = [String::new(), String::new()];
    for t in &mut texts {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let mut b = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut b)?;
        *t = String::from_utf8(b)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "sort run: bad text"))?;
    }
    let class = if class[0] == Class::Asset as u8 {
        Class::Asset
    } else {
        Class::Page
    };
    Ok(Some(Request::with_class(
        ip,
        i64::from_le_bytes(time),
        &texts[0],
        u16::from_le_bytes(status),
        u64::from_le_bytes(bytes),
        &texts[1],
        class,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: u32, t: i64) -> Request {
        let ip = IpAddr::from([203, 0, 113, (i % 7) as u8]);
        let method = if i.is_multiple_of(5) { "HEAD" } else { "GET" };
        Request::new(
            ip,
            t,
            method,
            &format!("/p{}", i % 11),
            200,
            i as u64,
            "ua é",
        )
    }

    /// The same requests in two orders, with and without spilling: one sequence.
    #[test]
    fn any_order_any_budget_same_sequence() {
        let reqs: Vec<Request> = (0..5000)
            .map(|i| req(i, 1000 + ((i * 7919) % 600) as i64))
            .collect();
        let mut expected = reqs.clone();
        expected.sort_by_key(Request::order_key);
        for (budget, reverse) in [(1 << 30, false), (64 << 10, true), (16 << 10, false)] {
            let mut s = ExternalSort::new(budget);
            s.budget = budget; // below the floor of `new`: several runs
            let input: Vec<Request> = if reverse {
                reqs.iter().rev().cloned().collect()
            } else {
                reqs.clone()
            };
            for r in input {
                s.push(r).unwrap();
            }
            let (mut sorted, stats) = s.finish().unwrap();
            assert_eq!(stats.requests, 5000);
            assert_eq!(stats.spilled_runs > 0, budget < 1 << 30, "{stats:?}");
            let mut got = Vec::new();
            while let Some(r) = sorted.next_request().unwrap() {
                got.push(r);
            }
            assert_eq!(got, expected);
        }
    }
}
