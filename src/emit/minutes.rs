//! Per-(client, minute) aggregates: what `--parquet` writes and `--from-parquet` reads back. Fed
//! with the same requests as the detector, but independent of it: it neither reads nor changes
//! detection, and costs nothing when `--parquet` is off (it is not built).
//!
//! A row counts one client's requests in one UTC minute: requests, pages and assets
//! ([`crate::parse::Class`]), page errors, 4xx and 5xx, bytes, distinct paths, and the first and
//! last second it was seen. Those are the numbers the detector weighs (load = pages +
//! asset_weight × assets; page errors for the surge; distinct pages for breadth), so a fleet can
//! run detection over the rows of many nodes (`ingest::parquet`).
//!
//! Invariant: a minute is only closed once log time is `hold_secs` past its end, so a line up to
//! that late still counts in its own minute; a later line opens the minute again as a second row
//! (a reader sums rows of the same client and minute, as it does across nodes).

use crate::parse::{Class, Request};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// One client's traffic in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinuteRow {
    pub ip: Option<IpAddr>,
    /// Start of the minute, UNIX seconds (UTC).
    pub minute: i64,
    pub requests: u32,
    pub pages: u32,
    pub assets: u32,
    /// 4xx/5xx on pages: what the detector counts as errors.
    pub page_errors: u32,
    pub errors_4xx: u32,
    pub errors_5xx: u32,
    pub bytes: u64,
    pub distinct_paths: u32,
    /// First and last second with a request (UNIX seconds).
    pub first_sec: i64,
    pub last_sec: i64,
}

impl MinuteRow {
    /// Add `other` (same client and minute, another node or a late row): counts add up, distinct
    /// paths too (an upper bound: the nodes' path sets are not kept), the span widens.
    pub fn merge(&mut self, o: &MinuteRow) {
        self.requests += o.requests;
        self.pages += o.pages;
        self.assets += o.assets;
        self.page_errors += o.page_errors;
        self.errors_4xx += o.errors_4xx;
        self.errors_5xx += o.errors_5xx;
        self.bytes += o.bytes;
        self.distinct_paths += o.distinct_paths;
        self.first_sec = self.first_sec.min(o.first_sec);
        self.last_sec = self.last_sec.max(o.last_sec);
    }
}

/// The open rows of one minute, and the (row, path hash) pairs seen in it.
#[derive(Default)]
struct Open {
    index: HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    rows: Vec<MinuteRow>,
    paths: HashSet<(u32, u64), foldhash::fast::RandomState>,
}

/// The aggregator: feed requests (in about time order), take closed rows.
pub struct Minutes {
    open: BTreeMap<i64, Open>,
    closed: Vec<MinuteRow>,
    newest: i64,
    hold_secs: i64,
}

impl Minutes {
    /// `hold_secs`: how late a line may arrive and still count in its own minute.
    pub fn new(hold_secs: i64) -> Minutes {
        Minutes {
            open: BTreeMap::new(),
            closed: Vec::new(),
            newest: i64::MIN,
            hold_secs: hold_secs.max(0),
        }
    }

    pub fn observe(&mut self, r: &Request) {
        let minute = r.time.div_euclid(60) * 60;
        if r.time > self.newest {
            self.newest = r.time;
            if self
                .open
                .first_key_value()
                .is_some_and(|(m, _)| m + 60 + self.hold_secs <= r.time)
            {
                self.close_until(r.time);
            }
        }
        let open = self.open.entry(minute).or_default();
        let next = open.rows.len() as u32;
        let i = *open.index.entry(r.ip).or_insert(next);
        if i == next {
            open.rows.push(MinuteRow {
                ip: Some(r.ip),
                minute,
                first_sec: r.time,
                last_sec: r.time,
                ..Default::default()
            });
        }
        let row = &mut open.rows[i as usize];
        row.requests += 1;
        match r.class() {
            Class::Page => row.pages += 1,
            Class::Asset => row.assets += 1,
        }
        match r.status {
            400..=499 => row.errors_4xx += 1,
            500..=599 => row.errors_5xx += 1,
            _ => {}
        }
        row.page_errors += r.is_page_error() as u32;
        row.bytes += r.bytes;
        row.first_sec = row.first_sec.min(r.time);
        row.last_sec = row.last_sec.max(r.time);
        if open.paths.insert((i, r.path_hash())) {
            row.distinct_paths += 1;
        }
    }

    /// Close the minutes that ended `hold_secs` before log time `now`.
    pub fn close_until(&mut self, now: i64) {
        while let Some(entry) = self.open.first_entry() {
            if entry.key() + 60 + self.hold_secs > now {
                break;
            }
            let mut rows = entry.remove().rows;
            rows.sort_by_key(|r| r.ip);
            self.closed.extend(rows);
        }
    }

    /// Close everything (end of input, shutdown).
    pub fn close_all(&mut self) {
        self.close_until(i64::MAX - 120 - self.hold_secs);
    }

    /// The rows closed since the last call, by minute then client.
    pub fn take_closed(&mut self) -> Vec<MinuteRow> {
        std::mem::take(&mut self.closed)
    }

    /// Rows closed and waiting to be taken.
    pub fn closed_len(&self) -> usize {
        self.closed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: &str, t: i64, path: &str, status: u16, bytes: u64) -> Request {
        Request::new(ip.parse().unwrap(), t, "GET", path, status, bytes, "ua")
    }

    #[test]
    fn counts_one_client_minute() {
        let mut m = Minutes::new(0);
        let t0 = 1_700_000_040; // a minute boundary
        m.observe(&req("192.0.2.1", t0 + 1, "/", 200, 100));
        m.observe(&req("192.0.2.1", t0 + 5, "/a.css", 200, 10));
        m.observe(&req("192.0.2.1", t0 + 7, "/login", 401, 5));
        m.observe(&req("192.0.2.1", t0 + 59, "/login", 503, 5));
        m.observe(&req("192.0.2.2", t0 + 30, "/x.png", 404, 0));
        assert!(m.take_closed().is_empty(), "the minute is still open");
        m.observe(&req("192.0.2.3", t0 + 60, "/", 200, 1));
        let rows = m.take_closed();
        assert_eq!(rows.len(), 2);
        let a = rows[0];
        assert_eq!(a.ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            (a.minute, a.requests, a.pages, a.assets, a.page_errors),
            (t0, 4, 3, 1, 2)
        );
        assert_eq!((a.errors_4xx, a.errors_5xx, a.bytes), (1, 1, 120));
        assert_eq!(
            (a.distinct_paths, a.first_sec, a.last_sec),
            (3, t0 + 1, t0 + 59)
        );
        let b = rows[1];
        assert_eq!((b.assets, b.page_errors, b.errors_4xx), (1, 0, 1));
        m.close_all();
        assert_eq!(m.take_closed().len(), 1);
    }

    #[test]
    fn a_late_line_within_the_hold_counts_in_its_minute() {
        let mut m = Minutes::new(30);
        let t0 = 1_700_000_040;
        m.observe(&req("192.0.2.1", t0 + 10, "/", 200, 0));
        m.observe(&req("192.0.2.1", t0 + 80, "/", 200, 0));
        m.observe(&req("192.0.2.1", t0 + 50, "/", 200, 0)); // 30 s late
        m.observe(&req("192.0.2.1", t0 + 95, "/", 200, 0)); // closes t0
        let rows = m.take_closed();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requests, 2);
    }
}
