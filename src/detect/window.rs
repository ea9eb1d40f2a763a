//! Counters over time: what one client (or the whole site) sent in the last few seconds,
//! minutes, ten minutes, split by what the requests cost and say.
//!
//! Buckets are keyed by log time (a second, or a 10-second slot) and kept sorted, so a line
//! that arrives a little late (`follow`, Apache's request-start times) is counted in its own
//! second rather than re-timed into the newest one. Memory is bounded by the span of a window,
//! never by the number of requests.

use crate::parse::{Class, Request};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Requests in one bucket or window, by class. See [`crate::parse::Class`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Page requests: pages, API calls, form posts, probes.
    pub pages: u32,
    /// Asset requests: static files, `HEAD`, `304`, `206`.
    pub assets: u32,
    /// Page errors: 4xx/5xx on a page (an asset's 404 is not a probe).
    pub errors: u32,
    /// Of the page errors, `404`/`410`.
    pub not_found: u32,
}

impl Counts {
    pub fn of(req: &Request) -> Counts {
        let asset = req.class() == Class::Asset;
        let error = req.is_page_error();
        Counts {
            pages: !asset as u32,
            assets: asset as u32,
            errors: error as u32,
            not_found: (error && matches!(req.status, 404 | 410)) as u32,
        }
    }

    pub fn add(&mut self, o: &Counts) {
        self.pages += o.pages;
        self.assets += o.assets;
        self.errors += o.errors;
        self.not_found += o.not_found;
    }

    fn sub(&mut self, o: &Counts) {
        self.pages -= o.pages;
        self.assets -= o.assets;
        self.errors -= o.errors;
        self.not_found -= o.not_found;
    }

    pub fn requests(&self) -> u64 {
        self.pages as u64 + self.assets as u64
    }

    /// What the requests cost: a page is 1, an asset `asset_weight`.
    pub fn load(&self, asset_weight: f64) -> f64 {
        self.pages as f64 + asset_weight * self.assets as f64
    }

    /// Share of page errors among page requests (0 without pages).
    pub fn error_share(&self) -> f64 {
        if self.pages == 0 {
            0.0
        } else {
            self.errors as f64 / self.pages as f64
        }
    }
}

/// Buckets of [`Counts`] keyed by `time.div_euclid(grain)`, covering the last `span` keys, with
/// their running sum. The newest bucket is kept inline: nearly every request lands in it, and
/// touching the deque's heap memory on every request was the detection thread's costliest miss.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Buckets {
    /// Buckets before `head`, oldest first.
    older: VecDeque<(i64, Counts)>,
    head: Option<(i64, Counts)>,
    sum: Counts,
}

impl Buckets {
    /// Count `c` in bucket `key`. A key older than the newest bucket is inserted in order.
    /// Returns false when the key was the newest bucket's (nothing can have expired since the
    /// last call, unless the caller's clock moved).
    pub fn add(&mut self, key: i64, c: &Counts) -> bool {
        self.sum.add(c);
        match &mut self.head {
            Some((k, counts)) if *k == key => {
                counts.add(c);
                return false;
            }
            Some((k, _)) if *k > key => match self.older.binary_search_by_key(&key, |(k, _)| *k) {
                Ok(i) => self.older[i].1.add(c),
                Err(i) => self.older.insert(i, (key, *c)),
            },
            head => {
                if let Some(old) = head.replace((key, *c)) {
                    self.older.push_back(old);
                }
            }
        }
        true
    }

    /// Drop buckets with a key ≤ `oldest_excluded`.
    pub fn evict(&mut self, oldest_excluded: i64) {
        while let Some((k, c)) = self.older.front() {
            if *k > oldest_excluded {
                return;
            }
            let c = *c;
            self.sum.sub(&c);
            self.older.pop_front();
        }
        if let Some((k, c)) = self.head {
            if k <= oldest_excluded {
                self.sum.sub(&c);
                self.head = None;
            }
        }
    }

    /// Sum of all buckets kept.
    pub fn sum(&self) -> Counts {
        self.sum
    }

    /// Sum of the buckets with a key > `after`, walking from the newest (cheap for a short
    /// tail of a long window).
    pub fn sum_after(&self, after: i64) -> Counts {
        let mut s = Counts::default();
        if let Some((k, c)) = &self.head {
            if *k <= after {
                return s;
            }
            s.add(c);
        }
        for (k, c) in self.older.iter().rev() {
            if *k <= after {
                break;
            }
            s.add(c);
        }
        s
    }

    /// The newest key, if any bucket is kept.
    pub fn newest(&self) -> Option<i64> {
        self.head.map(|h| h.0)
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Buckets kept, oldest first (for tests and plots).
    pub fn iter(&self) -> impl Iterator<Item = &(i64, Counts)> {
        self.older.iter().chain(self.head.iter())
    }
}

/// Distinct keys (page paths) over a window, estimated from a 128-bit bitmap per bucket (linear
/// counting): 16 bytes per active 10-s slot of a client, whatever the number of requests. Exact
/// enough to tell a person's dozen pages from a crawler's hundreds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Distinct {
    slots: VecDeque<(i64, u128)>,
}

impl Distinct {
    pub fn add(&mut self, key: i64, hash: u64) {
        let bit = 1u128 << (hash % 128);
        match self.slots.back_mut() {
            Some((k, bits)) if *k == key => *bits |= bit,
            Some((k, _)) if *k > key => match self.slots.binary_search_by_key(&key, |(k, _)| *k) {
                Ok(i) => self.slots[i].1 |= bit,
                Err(i) => self.slots.insert(i, (key, bit)),
            },
            _ => self.slots.push_back((key, bit)),
        }
    }

    /// Drop buckets with a key ≤ `oldest_excluded`.
    pub fn evict(&mut self, oldest_excluded: i64) {
        while self
            .slots
            .front()
            .is_some_and(|(k, _)| *k <= oldest_excluded)
        {
            self.slots.pop_front();
        }
    }

    /// Estimated distinct keys in the buckets kept (at most ~620: 128 bits saturate).
    pub fn estimate(&self) -> f64 {
        let bits = self.slots.iter().fold(0u128, |a, (_, b)| a | b);
        let zeros = bits.count_zeros() as f64;
        if zeros == 0.0 {
            return 128.0 * (128f64).ln(); // saturated
        }
        -128.0 * (zeros / 128.0).ln()
    }
}

/// A small set of recently seen keys (user agents, error paths) with when each was last seen
/// and how often: the distinct ones in a window, in bounded memory. The last key is checked
/// first (a client's user agent rarely changes between requests).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recent {
    /// (key hash, last seen, hits since it entered the set)
    items: Vec<(u64, i64, u32)>,
    last: u32,
}

impl Recent {
    pub fn add(&mut self, key: u64, t: i64, cap: usize) {
        if let Some(it) = self.items.get_mut(self.last as usize) {
            if it.0 == key {
                it.1 = it.1.max(t);
                it.2 = it.2.saturating_add(1);
                return;
            }
        }
        if let Some(i) = self.items.iter().position(|it| it.0 == key) {
            let it = &mut self.items[i];
            it.1 = it.1.max(t);
            it.2 = it.2.saturating_add(1);
            self.last = i as u32;
            return;
        }
        if self.items.len() < cap {
            self.items.push((key, t, 1));
            self.last = (self.items.len() - 1) as u32;
        } else if let Some((i, _)) = self.items.iter().enumerate().min_by_key(|(_, it)| it.1) {
            // Full: the key seen longest ago makes room.
            self.items[i] = (key, t, 1);
            self.last = i as u32;
        }
    }

    /// Distinct keys seen after `since` with at least `min_hits` hits.
    pub fn count(&self, since: i64, min_hits: u32) -> u32 {
        self.items
            .iter()
            .filter(|it| it.1 > since && it.2 >= min_hits)
            .count() as u32
    }

    /// Forget keys last seen at or before `since`.
    pub fn forget_before(&mut self, since: i64) {
        self.items.retain(|it| it.1 > since);
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pages: u32, errors: u32) -> Counts {
        Counts {
            pages,
            errors,
            ..Default::default()
        }
    }

    #[test]
    fn buckets_slide_and_take_late_lines_in_their_own_second() {
        let mut b = Buckets::default();
        for t in 0..100 {
            b.add(t, &c(1, (t % 10 == 0) as u32));
        }
        b.evict(99 - 60);
        assert_eq!((b.sum().pages, b.sum().errors), (60, 6));
        assert_eq!(b.sum_after(89).pages, 10);
        // A line for second 95 arriving now counts in second 95: in the last 10 s, not in the
        // newest second.
        b.add(95, &c(1, 0));
        assert_eq!(b.sum_after(94).pages, 6);
        assert_eq!(b.sum_after(98).pages, 1);
        b.add(41, &c(1, 0));
        assert_eq!(b.sum().pages, 62);
        b.evict(41);
        assert_eq!(b.sum().pages, 59);
        b.evict(1000);
        assert!(b.is_empty());
        assert_eq!(b.sum(), Counts::default());
    }

    #[test]
    fn distinct_paths_are_estimated_within_a_few_percent() {
        for n in [1u64, 10, 40, 100, 300] {
            let mut d = Distinct::default();
            for i in 0..n {
                let h = crate::parse::key_hash(&format!("/page/{i}"));
                d.add(i as i64 % 60, h);
                d.add(i as i64 % 60, h); // repeats do not count
            }
            let e = d.estimate();
            assert!((e - n as f64).abs() <= 0.2 * n as f64 + 1.0, "{n}: {e}");
        }
        let mut d = Distinct::default();
        d.add(1, 7);
        d.add(5, 8);
        d.evict(1);
        assert!((d.estimate() - 1.0).abs() < 0.01);
    }

    #[test]
    fn recent_counts_distinct_keys_in_a_window() {
        let mut r = Recent::default();
        for t in 0..100 {
            r.add(t as u64 % 5, t, 4);
        }
        // Capped at 4 keys; the oldest makes room.
        assert_eq!(r.count(0, 1), 4);
        assert_eq!(r.count(97, 1), 2);
        assert_eq!(r.count(0, 30), 0);
        r.forget_before(97);
        assert_eq!(r.count(0, 1), 2);
    }
}
