//! What the detector decides, and why. This is the stable schema of `decisions.json` (documented
//! in README): add fields, never rename or remove them. Rule and window names are types here so
//! that the report, Slack and the audit log render the checks the detector ran instead of
//! recomputing thresholds; serde keeps them plain strings in the JSON.

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

/// The rules of the model. A decision lists the ones that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The client's load is above `multiplier_threshold` × the learned level (or the floor).
    Multiplier,
    /// The client's load is `z_threshold` standard deviations above its own history.
    Zscore,
    /// The client's page-error share is a surge: thresholds tightened (× `error_surge_factor`).
    ErrorSurge,
    /// Many user agents and no errors behind one address: limits scaled by √agents.
    Crowd,
    /// Many distinct pages in the long window (crawling, scanning): the long window applies
    /// without an error surge.
    Breadth,
    /// Site-wide load above `global_multiplier_threshold` × its median…
    GlobalMultiplier,
    /// …and `global_z_threshold` robust standard deviations above it.
    GlobalZscore,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Multiplier => "multiplier",
            Rule::Zscore => "zscore",
            Rule::ErrorSurge => "error_surge",
            Rule::Crowd => "crowd",
            Rule::Breadth => "breadth",
            Rule::GlobalMultiplier => "global_multiplier",
            Rule::GlobalZscore => "global_zscore",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The time scale a decision was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// `short_secs` (10 s): floods.
    Short,
    /// `window_secs` (60 s): scrapers, brute force, fast scans.
    Minute,
    /// `long_secs` (600 s): low-and-slow scanning (only with an error surge or breadth).
    Long,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Short, Window::Minute, Window::Long];

    pub fn name(self) -> &'static str {
        match self {
            Window::Short => "short",
            Window::Minute => "minute",
            Window::Long => "long",
        }
    }

    /// What the window's rule measures.
    pub fn measure(self) -> &'static str {
        "load"
    }
}

/// Whether a limit came from what was learned or from the safety-net floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    /// `multiplier_threshold` × the learned level was above the floor.
    #[default]
    Learned,
    /// The floor was higher (or too few clients to learn from).
    Floor,
}

/// One check the detector ran for a decision, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub rule: Rule,
    /// What was measured (load, page errors, z, agents, error share).
    pub value: f64,
    /// What it was compared with.
    pub limit: f64,
    pub fired: bool,
    /// The arithmetic, for a human.
    pub note: String,
}

/// The baseline a decision was measured against, as it was at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineSnapshot {
    /// Per client: median of the clients' busiest windows (a typical client). Site: median load
    /// per minute.
    pub mean: f64,
    /// Robust spread: per client (high − median) / 2.326; site: 1.4826 × MAD.
    pub std: f64,
    /// The same numbers before any floor (kept for the schema; floors now apply to limits).
    pub mean_learned: f64,
    pub std_learned: f64,
    /// Page-error share of the site's traffic.
    pub error_share: f64,
    /// `rolling` (recent hours) or `hour_slot` (pooled with the same hour on previous days).
    pub source: BaselineSource,
    /// Client-hours (per client) or minutes (site) behind the numbers.
    pub samples: u64,
    /// Per client: the `quantile` of the clients' busiest windows (the learned level).
    #[serde(default)]
    pub level: f64,
    #[serde(default)]
    pub quantile: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    #[default]
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
    /// Rules that fired: `multiplier`, `zscore`, `error_surge`, `crowd` (IP);
    /// `global_multiplier`, `global_zscore` (site).
    pub rules: Vec<Rule>,
    /// One line a human can read.
    pub reason: String,
    /// The window the decision was made on, and its length.
    #[serde(default = "default_window")]
    pub window: Window,
    pub window_secs: u32,
    /// Requests (pages + assets) in that window.
    pub requests_in_window: u64,
    pub rate_per_sec: f64,
    /// Page-error share in that window.
    pub error_share: f64,
    pub baseline: BaselineSnapshot,
    /// z-score against the client's own history (0 without one).
    pub z: f64,
    /// The measure as a multiple of the learned level.
    pub multiplier: f64,
    /// Thresholds in force (tightened by `error_surge`, raised by `crowd`).
    pub z_threshold: f64,
    pub multiplier_threshold: f64,
    /// What the window's rule measured (load, or page errors for the long window) and the
    /// limit it crossed, with the floor and which one decided.
    #[serde(default)]
    pub measured: f64,
    #[serde(default)]
    pub limit: f64,
    #[serde(default)]
    pub floor: f64,
    #[serde(default)]
    pub decided_by: DecidedBy,
    /// Every check run for this decision.
    #[serde(default)]
    pub checks: Vec<Check>,
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
    /// Suggested ban length, seconds (used by the exports; edit before `bouncer export`; missing
    /// or 0 = permanent).
    #[serde(default)]
    pub duration_secs: u64,
}

impl Decision {
    /// The rules that fired, joined by `sep` (`multiplier+error_surge`).
    pub fn rules_text(&self, sep: &str) -> String {
        self.rules
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(sep)
    }

    pub fn fired(&self, rule: Rule) -> bool {
        self.rules.contains(&rule)
    }
}

fn default_window() -> Window {
    Window::Minute
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
