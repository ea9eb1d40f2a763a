//! `analyze --from-parquet`: the per-(client, minute) aggregates of many nodes
//! ([`crate::emit::parquet`]) as a source of requests for the one detector.
//!
//! Rows of the same client and minute (from several nodes, or a minute one node wrote twice) are
//! added up, then each merged row becomes that many requests, spread evenly from its first to its
//! last second, with its pages, assets, page errors, 4xx/5xx and bytes. What the rows do not
//! hold is made up in the plainest way, and detection over them loses it:
//! - **timing within a minute**: a burst inside a busy minute is spread over the minute (the
//!   short window sees an average, unless the burst was the whole minute: first = last second);
//! - **paths**: row `k`'s requests cycle through `distinct_paths` made-up paths, unique per node
//!   and minute, so breadth (distinct pages in the long window) is the sum of the minutes'
//!   counts, an upper bound; top paths in the report are those made-up names;
//! - **user agents**: none, so the crowd allowance (many agents behind one NAT) never applies.
//!
//! The minute and long windows (60 s, 600 s) are whole minutes, so their counts are exact.

use crate::emit::minutes::MinuteRow;
use crate::emit::parquet::read_minutes;
use crate::ingest::FileReport;
use crate::parse::{Class, Request};
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The minute files a pattern names: a file, a directory (everything under it), or a glob where
/// `*` matches within one path component and `**` any number of them (`fleet/**`,
/// `fleet/host=web-*/**`). Only `minutes-*.parquet` files are taken; sorted.
pub fn minute_files(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let wild = parts
        .iter()
        .position(|p| p.contains('*'))
        .unwrap_or(parts.len());
    let base = match parts[..wild].join("/") {
        s if s.is_empty() && pattern.starts_with('/') => "/".to_string(),
        s if s.is_empty() => ".".to_string(),
        s => s,
    };
    let rest: Vec<&str> = parts[wild..].to_vec();
    let base = PathBuf::from(base);
    let meta =
        std::fs::metadata(&base).with_context(|| format!("{}: cannot open", base.display()))?;
    let mut out = Vec::new();
    if meta.is_file() && rest.is_empty() {
        out.push(base);
    } else {
        walk(&base, &base, &rest, &mut out)?;
    }
    out.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("minutes-") && n.ends_with(".parquet"))
    });
    out.sort();
    if out.is_empty() {
        return Err(anyhow!(
            "{pattern}: no minutes-*.parquet file (written by `--parquet`) matches"
        ));
    }
    Ok(out)
}

fn walk(base: &Path, dir: &Path, rest: &[&str], out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    for e in entries {
        let e = e?;
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_symlink() {
            continue; // never leave the tree the pattern names
        }
        if ft.is_dir() {
            walk(base, &path, rest, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let comps: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let comps: Vec<&str> = comps.iter().map(String::as_str).collect();
            if rest.is_empty() || glob_match(rest, &comps) {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// `pattern` components against path components: `**` any number, `*` within one.
fn glob_match(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob_match(&pattern[1..], path) || (!path.is_empty() && glob_match(pattern, &path[1..]))
        }
        (Some(p), Some(c)) => {
            component_match(p.as_bytes(), c.as_bytes()) && glob_match(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn component_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| component_match(&p[1..], &s[i..])),
        Some(c) => s.first() == Some(c) && component_match(&p[1..], &s[1..]),
    }
}

/// The rows of every file, merged by (minute, client), in time order; one report per file.
pub fn load(files: &[PathBuf]) -> anyhow::Result<(Vec<MinuteRow>, Vec<FileReport>)> {
    let mut merged: BTreeMap<(i64, IpAddr), MinuteRow> = BTreeMap::new();
    let mut reports = Vec::new();
    for f in files {
        let rows = read_minutes(f)?;
        let node = node_of(f);
        reports.push(FileReport {
            name: f.display().to_string(),
            format: format!("parquet minute aggregates (node {node})"),
            lines: rows.len() as u64,
            requests: rows.iter().map(|r| r.requests as u64).sum(),
            ..Default::default()
        });
        for r in rows {
            let Some(ip) = r.ip else { continue };
            merged
                .entry((r.minute, ip))
                .and_modify(|m| m.merge(&r))
                .or_insert(r);
        }
    }
    Ok((merged.into_values().collect(), reports))
}

/// The node a file belongs to, from its `host=` directory.
fn node_of(path: &Path) -> String {
    path.components()
        .filter_map(|c| c.as_os_str().to_str()?.strip_prefix("host="))
        .next_back()
        .unwrap_or("?")
        .to_string()
}

/// The requests of one merged row (see the module docs for what is made up).
pub fn requests_of(r: &MinuteRow) -> Vec<Request> {
    let Some(ip) = r.ip else { return Vec::new() };
    let n = r.requests as u64;
    if n == 0 {
        return Vec::new();
    }
    let span = (r.last_sec - r.first_sec).max(0) as u64;
    let pages = (r.pages as u64).min(n);
    let page_errors = (r.page_errors as u64).min(pages);
    let (mut e4, mut e5) = (r.errors_4xx as u64, r.errors_5xx as u64);
    let paths = (r.distinct_paths as u64).max(1);
    let mut out = Vec::with_capacity(n as usize);
    let mut page_i = 0u64;
    for i in 0..n {
        // First and last second as written, the others evenly between.
        let t = r.first_sec + (i * span).checked_div(n - 1).unwrap_or(0) as i64;
        // Pages spread evenly among the requests, page errors evenly among the pages.
        let is_page = (i + 1) * pages / n > i * pages / n;
        let status = if is_page {
            let err =
                (page_i + 1) * page_errors / pages.max(1) > page_i * page_errors / pages.max(1);
            page_i += 1;
            match err {
                true if e4 > 0 => {
                    e4 -= 1;
                    404
                }
                true if e5 > 0 => {
                    e5 -= 1;
                    500
                }
                _ => 200,
            }
        } else {
            200
        };
        let class = if is_page { Class::Page } else { Class::Asset };
        let bytes = r.bytes / n + u64::from(i < r.bytes % n);
        let path = format!("/~aggregate/{}/{}", r.minute, i % paths);
        out.push(Request::with_class(ip, t, &path, status, bytes, "", class));
    }
    // What is left of the 4xx/5xx after the page errors belongs to assets.
    for req in out.iter_mut().filter(|q| q.class() == Class::Asset) {
        if e4 > 0 {
            req.status = 404;
            e4 -= 1;
        } else if e5 > 0 {
            req.status = 500;
            e5 -= 1;
        } else {
            break;
        }
    }
    out
}

/// Feed the requests of `rows` (in time order) to `each`, a minute at a time, each minute's
/// requests in the canonical order.
pub fn replay(rows: &[MinuteRow], mut each: impl FnMut(&Request)) {
    let mut i = 0;
    while i < rows.len() {
        let minute = rows[i].minute;
        let mut batch = Vec::new();
        while i < rows.len() && rows[i].minute == minute {
            batch.extend(requests_of(&rows[i]));
            i += 1;
        }
        batch.sort_by_key(Request::order_key);
        for r in &batch {
            each(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::minutes::Minutes;

    #[test]
    fn globs() {
        let m = |p: &str, s: &str| {
            let p: Vec<&str> = p.split('/').collect();
            let s: Vec<&str> = s.split('/').collect();
            glob_match(&p, &s)
        };
        assert!(m("**", "host=a/date=2015-05-17/minutes-1.parquet"));
        assert!(m("host=*/**", "host=a/date=x/minutes-1.parquet"));
        assert!(m("**/minutes-*.parquet", "host=a/date=x/minutes-1.parquet"));
        assert!(!m("host=b*/**", "host=a/date=x/minutes-1.parquet"));
        assert!(!m("*", "host=a/minutes-1.parquet"));
    }

    /// Aggregating the made-up requests of a row gives the row back.
    #[test]
    fn a_row_replays_into_its_own_counts() {
        let row = MinuteRow {
            ip: Some("192.0.2.9".parse().unwrap()),
            minute: 1_431_820_800,
            requests: 37,
            pages: 20,
            assets: 17,
            page_errors: 9,
            errors_4xx: 11,
            errors_5xx: 3,
            bytes: 12_345,
            distinct_paths: 6,
            first_sec: 1_431_820_805,
            last_sec: 1_431_820_850,
        };
        let mut m = Minutes::new(0);
        for r in requests_of(&row) {
            m.observe(&r);
        }
        m.close_all();
        let back = m.take_closed();
        assert_eq!(back, vec![row]);
    }
}
