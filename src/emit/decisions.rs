//! `decisions.json`: the [`Analysis`] `analyze` writes and `export` reads back (any bytes: a
//! reviewed file may come from anywhere), and the ban list entries derived from it.
//!
//! Free of polars and of the renderers: the fuzz targets (fuzz/) compile this module, with
//! `rulesets`, `detect`, `ingest` and `parse`, on their own.

use super::rulesets::Ban;
use crate::detect::{
    Action, BaselineSnapshot, Decision, DetectSettings, SeriesPoint, TimelinePoint, WindowLimit,
};
use crate::ingest::FileReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Version of the `decisions.json` schema. Bumped only for incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run found: the content of `decisions.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub schema_version: u32,
    pub bouncer_version: String,
    pub inputs: Vec<FileReport>,
    pub lines: u64,
    pub requests: u64,
    pub parse_errors: u64,
    /// Requests later than the reorder tolerance, counted in the second they arrived.
    pub late_requests: u64,
    pub distinct_ips: u64,
    /// `distinct_ips` is an estimate (±1 %): more than 100 000 clients were seen.
    #[serde(default)]
    pub distinct_ips_estimated: bool,
    /// First and last log time (RFC 3339), null when nothing was read.
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// Busiest site-wide window: requests and when.
    pub peak_window_requests: u64,
    pub peak_at: Option<String>,
    /// Baselines in force at the end of the input (floors applied).
    pub baseline_ip: Option<BaselineSnapshot>,
    pub baseline_global: Option<BaselineSnapshot>,
    /// Per-client limits in force at the end of the input, by window.
    #[serde(default)]
    pub limits: Vec<WindowLimit>,
    pub settings: DetectSettings,
    pub decisions: Vec<Decision>,
    /// Site-wide traffic per window period, for the report (not written to decisions.json).
    #[serde(skip)]
    pub timeline: Vec<TimelinePoint>,
    /// Per-period requests of each banned IP, for the report (not written to decisions.json).
    #[serde(skip)]
    pub ip_series: BTreeMap<IpAddr, Vec<SeriesPoint>>,
}

impl Analysis {
    pub fn bans(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.action == Action::Ban)
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.action == Action::Alert)
    }

    /// Bans whose limit was learned, and bans whose limit was a floor.
    pub fn bans_by_decider(&self) -> (usize, usize) {
        let learned = self
            .bans()
            .filter(|d| d.decided_by == crate::detect::DecidedBy::Learned)
            .count();
        (learned, self.bans().count() - learned)
    }
}

/// Ban list entries from decisions: one per IP (its first ban), with a short comment saying why.
pub fn bans_of(decisions: &[Decision]) -> Vec<Ban> {
    let mut seen = std::collections::HashSet::new();
    decisions
        .iter()
        .filter(|d| d.action == Action::Ban)
        .filter_map(|d| d.ip.map(|ip| (ip, d)))
        .filter(|(ip, _)| seen.insert(*ip))
        .map(|(ip, d)| Ban {
            ip,
            comment: format!(
                "bouncer {} {}: {} req/{}s {:.0}x {}",
                crate::parse::format_time(d.at),
                d.rules_text("+"),
                d.requests_in_window,
                d.window_secs,
                d.multiplier,
                if d.fired(crate::detect::Rule::ErrorSurge) {
                    "errors"
                } else {
                    ""
                }
            )
            .trim_end()
            .to_string(),
            duration_secs: d.duration_secs,
        })
        .collect()
}

/// A `decisions.json` (its bytes) read back.
pub fn read(bytes: &[u8]) -> Result<Analysis, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod float_tests {
    /// A learned level written into decisions.json reads back as the same float (the fuzzer
    /// found `229.42322907217329` read as `229.4232290721733` without serde_json's
    /// `float_roundtrip`).
    #[test]
    fn floats_read_back_exactly() {
        let x: f64 = 229.423_229_072_173_29;
        let text = serde_json::to_string(&x).unwrap();
        let back: f64 = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_bits(), x.to_bits(), "{text}");
    }
}
