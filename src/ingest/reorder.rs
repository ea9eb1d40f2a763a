//! The one reorder buffer and its release rule, for every finite input (`analyze`, `follow
//! --replay`): lines up to `reorder_secs` older than the newest one seen are put back in time
//! order, and within a second in the canonical order of [`Request::order_key`], so the order of
//! lines within a second, or of files, never changes a decision. Live tails do not hold lines
//! back (the detector counts a late line in its own second, see `detect`), so they do not use it.
//!
//! Invariant: memory is bounded by `reorder_secs` of log and by [`MAX_PENDING`] requests (plus
//! one second's); past the cap the oldest second leaves early, and a line that then turns out
//! older is counted out of order (so `analyze` sorts the whole input).

use crate::parse::Request;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Hard cap on requests held for reordering: past it the oldest is released early (and, if a
/// later line turns out older, counted as out of order). Keeps memory bounded on dense logs.
pub const MAX_PENDING: usize = 1 << 20;

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

/// A reorder buffer: requests leave in time order, and within a second in the canonical order
/// of [`Request::order_key`] (so the order of lines within a second, or of files, never changes
/// a decision). Log times are whole seconds, so requests wait in per-second lists, kept in a
/// deque sorted by second: a request for the newest second (nearly every one, in a real log) is
/// one push at the back, and a second leaves whole, sorted once, in one move. Releasing is the
/// caller's rule (`analyze`: `reorder_secs` older than the newest seen).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reorder {
    by_second: VecDeque<Second>,
    len: usize,
    newest: Option<i64>,
    /// Time of the last request released: an older one arriving now is out of order.
    #[serde(default)]
    released_upto: Option<i64>,
    /// Emptied lists kept for reuse (one allocation per second otherwise).
    #[serde(skip)]
    spare: Vec<Vec<Request>>,
}

/// The requests of one second, in arrival order until the second leaves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Second {
    time: i64,
    queue: Vec<Request>,
}

impl Reorder {
    pub fn from_pending(mut pending: Vec<Pending>) -> Reorder {
        pending.sort();
        let mut r = Reorder::default();
        for p in pending {
            r.push(p.req);
        }
        r
    }

    pub fn push(&mut self, req: Request) {
        let t = req.time;
        self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        self.len += 1;
        match self.by_second.back_mut() {
            Some(sec) if sec.time == t => sec.queue.push(req),
            Some(sec) if sec.time > t => {
                // Out of order: find its second (binary search over at most `reorder_secs`).
                match self.by_second.binary_search_by_key(&t, |s| s.time) {
                    Ok(i) => self.by_second[i].queue.push(req),
                    Err(i) => {
                        let sec = self.new_second(t, req);
                        self.by_second.insert(i, sec);
                    }
                }
            }
            _ => {
                let sec = self.new_second(t, req);
                self.by_second.push_back(sec);
            }
        }
    }

    fn new_second(&mut self, time: i64, req: Request) -> Second {
        let mut queue = self.spare.pop().unwrap_or_default();
        queue.push(req);
        Second { time, queue }
    }

    /// Newest log time pushed so far.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Time of the oldest request waiting.
    pub fn peek_time(&self) -> Option<i64> {
        self.by_second.front().map(|s| s.time)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue `req` and move into `out` every request the release rule lets go: those
    /// `reorder_secs` older than the newest seen (all of them with `all`), or the oldest second
    /// while over [`MAX_PENDING`]. Returns whether `req` arrived after a later second had
    /// already been released (more than `reorder_secs` late: out of order).
    pub fn push_release(
        &mut self,
        req: Request,
        reorder_secs: i64,
        out: &mut Vec<Request>,
    ) -> bool {
        let late = self.released_upto.is_some_and(|r| req.time < r);
        self.push(req);
        self.release(reorder_secs, out, false);
        late
    }

    /// Move into `out` what the release rule lets go (see [`Reorder::push_release`]): whole
    /// seconds, each in canonical order.
    pub fn release(&mut self, reorder_secs: i64, out: &mut Vec<Request>, all: bool) {
        while let Some(top) = self.peek_time() {
            let releasable = self.newest.is_none_or(|m| top <= m - reorder_secs);
            if !(all || releasable || self.len > MAX_PENDING) {
                break;
            }
            self.released_upto = Some(self.released_upto.map_or(top, |r| r.max(top)));
            let Some(mut sec) = self.by_second.pop_front() else {
                break;
            };
            sec.queue.sort_unstable_by(Request::canonical_cmp);
            self.len -= sec.queue.len();
            out.append(&mut sec.queue);
            if self.spare.len() < 64 {
                self.spare.push(sec.queue);
            }
        }
    }

    /// Everything waiting, oldest first (for checkpoints).
    pub fn pending(&self) -> Vec<Pending> {
        self.by_second
            .iter()
            .flat_map(|s| s.queue.iter())
            .enumerate()
            .map(|(seq, req)| Pending {
                time: req.time,
                seq: seq as u64,
                req: req.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: &str, t: i64, path: &str) -> Request {
        Request::new(ip.parse().unwrap(), t, "GET", path, 200, 0, "ua")
    }

    fn keys(v: &[Request]) -> Vec<(i64, String, String)> {
        v.iter()
            .map(|r| (r.time, r.ip.to_string(), r.path().to_string()))
            .collect()
    }

    /// Whatever the arrival order within the tolerance, requests leave in time order and, within
    /// a second, in canonical order; a line later than the tolerance is reported.
    #[test]
    fn seconds_leave_whole_in_canonical_order() {
        let arrivals = [
            req("10.0.0.9", 100, "/b"),
            req("10.0.0.1", 100, "/z"),
            req("10.0.0.5", 101, "/a"),
            req("10.0.0.1", 99, "/late-but-within"),
            req("10.0.0.1", 100, "/a"),
            req("10.0.0.2", 110, "/x"),
        ];
        let mut sorted: Vec<Request> = arrivals.to_vec();
        sorted.sort_by_key(Request::order_key);
        let mut forward = (Reorder::default(), Vec::new());
        let mut backward = (Reorder::default(), Vec::new());
        for r in &arrivals {
            assert!(!forward.0.push_release(r.clone(), 5, &mut forward.1));
        }
        for r in arrivals.iter().rev() {
            assert!(!backward.0.push_release(r.clone(), 20, &mut backward.1));
        }
        // 99..=101 are 5 s older than 110: released; 110 waits.
        assert_eq!(keys(&forward.1), keys(&sorted[..5]));
        assert_eq!(forward.0.len(), 1);
        forward.0.release(5, &mut forward.1, true);
        backward.0.release(20, &mut backward.1, true);
        assert_eq!(keys(&forward.1), keys(&sorted));
        assert_eq!(keys(&backward.1), keys(&sorted));
        assert!(forward.0.is_empty());
        // A second older than one already released is out of order.
        let mut out = Vec::new();
        let mut r = Reorder::default();
        r.push_release(req("10.0.0.1", 200, "/"), 5, &mut out);
        r.push_release(req("10.0.0.1", 210, "/"), 5, &mut out);
        assert!(r.push_release(req("10.0.0.1", 199, "/"), 5, &mut out));
    }
}
