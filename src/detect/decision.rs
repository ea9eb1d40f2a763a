//! What the detector decides, and why. This is the stable schema of `decisions.json` (documented
//! in README): add fields, never rename or remove them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Block this IP.
    Ban,
    /// Site-wide anomaly: tell a human, block nobody by itself.
    Alert,
}

/// The baseline a decision was measured against, as it was at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineSnapshot {
    /// Mean requests per window (after the floor).
    pub mean: f64,
    /// Standard deviation of requests per window (after the floor).
    pub std: f64,
    /// Learned values before the floors were applied.
    pub mean_learned: f64,
    pub std_learned: f64,
    /// Share of 4xx/5xx responses in the baseline traffic.
    pub error_share: f64,
    /// `rolling` (last `baseline_secs`) or `hour_slot` (same hour on previous days).
    pub source: BaselineSource,
    /// Number of samples behind the numbers (per-IP windows, or site-wide windows).
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    Rolling,
    HourSlot,
}

impl std::fmt::Display for BaselineSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BaselineSource::Rolling => "rolling",
            BaselineSource::HourSlot => "hour_slot",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count<K> {
    pub value: K,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// The banned IP; `null` for a site-wide alert.
    pub ip: Option<IpAddr>,
    /// Log time of the decision (UTC, RFC 3339).
    #[serde(with = "rfc3339")]
    pub at: i64,
    /// Rules that fired: `zscore`, `multiplier`, `error_surge` (IP); `global_zscore`,
    /// `global_multiplier` (site).
    pub rules: Vec<String>,
    /// One line a human can read.
    pub reason: String,
    pub window_secs: u32,
    pub requests_in_window: u64,
    pub rate_per_sec: f64,
    pub error_share: f64,
    pub baseline: BaselineSnapshot,
    pub z: f64,
    pub multiplier: f64,
    /// Thresholds in force (already tightened when `error_surge` fired).
    pub z_threshold: f64,
    pub multiplier_threshold: f64,
    /// Requests from this IP (or the site) in the whole input.
    pub requests_total: u64,
    #[serde(with = "rfc3339")]
    pub first_seen: i64,
    #[serde(with = "rfc3339")]
    pub last_seen: i64,
    pub top_paths: Vec<Count<String>>,
    /// Status code → requests.
    pub status_mix: BTreeMap<u16, u64>,
    pub user_agents: Vec<Count<String>>,
    /// For alerts: the IPs contributing most to the window.
    pub top_ips: Vec<Count<IpAddr>>,
    /// Suggested ban length, seconds (used by the exports; edit before `bouncer export`).
    pub duration_secs: u64,
}

mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::parse::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        crate::parse::parse_any_time(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a time: {text:?}")))
    }
}
