//! What a running `follow` knows, as of its last tick: counters, inputs, learned limits, active
//! bans, recent events, the firewall and Slack. Built by the loop, completed by the sinks
//! ([`super::sink::Sink::report`]), published to every sink on each tick. It is what
//! `bouncer status`, the dashboard and `/metrics` show, and it is written to
//! `status.json` in the state directory.

use crate::detect::{BaselineSnapshot, WindowLimit};
use crate::ingest::FileReport;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub bouncer_version: String,
    pub pid: u32,
    /// Wall time (UNIX seconds) when follow started, and now.
    pub started: i64,
    pub now: i64,
    /// Nothing is enforced (no `--enforce`).
    pub dry_run: bool,
    pub inputs: Vec<FileReport>,
    pub lines: u64,
    pub requests: u64,
    pub parse_errors: u64,
    /// Lines more than the tolerance late, left out of detection.
    pub late: u64,
    /// Lines read per second, over the last 10 s.
    pub lines_per_sec: f64,
    /// The log time the detector has reached.
    pub log_now: Option<i64>,
    /// Warm-up over: the rules are in force.
    pub warmed_up: bool,
    /// Per-client limits by window, and the baselines behind them.
    pub limits: Vec<WindowLimit>,
    pub clients: Option<BaselineSnapshot>,
    pub site: Option<BaselineSnapshot>,
    pub bans: Vec<BanStatus>,
    pub bans_total: u64,
    pub unbans_total: u64,
    pub alerts_total: u64,
    /// The last events, newest last.
    pub recent: VecDeque<Recent>,
    /// Requests per wall second over the last 15 minutes (oldest first).
    pub per_second: Vec<(i64, u32)>,
    pub firewall: Option<FirewallStatus>,
    pub slack: Option<SlackStatus>,
    /// The last state save failed (full disk…): enforcing from memory.
    pub state_error: Option<String>,
    /// Requests per minute window above which the site-wide rule can fire (`None` until the
    /// site baseline is learned).
    #[serde(default)]
    pub site_limit: Option<f64>,
    /// Wall time the loop's previous full tick took (decisions, notes, sinks, state save).
    #[serde(default)]
    pub tick_secs: f64,
}

/// One active ban.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BanStatus {
    pub ip: IpAddr,
    pub since: i64,
    /// `None`: permanent.
    pub until: Option<i64>,
    pub strike: u32,
    pub reason: String,
    /// The kernel holds it (always false in a dry run).
    pub enforced: bool,
}

/// A recent event, for humans.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recent {
    pub at: i64,
    /// BAN, UNBAN, ALERT, FIREWALL, SLACK, INPUT, STATE.
    pub kind: String,
    pub text: String,
}

/// What the kernel holds, as the firewall worker last saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FirewallStatus {
    /// How bans are enforced ("ipset sets bouncer4/bouncer6…").
    pub describe: String,
    /// Where the sets are hooked from ("IPv4 from INPUT, DOCKER-USER; IPv6 from INPUT").
    pub hooks: String,
    /// Bans bouncer wants, and how many of them the kernel holds.
    pub wanted: usize,
    pub in_kernel: usize,
    /// Per family, the last error (none: healthy).
    pub errors: Vec<(String, String)>,
    pub repairs: u64,
    /// Wall time of the last reconcile.
    pub last_reconcile: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlackStatus {
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
}

/// How many recent events a snapshot keeps.
pub const RECENT: usize = 100;

impl Snapshot {
    pub fn push_recent(&mut self, at: i64, kind: &str, text: String) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            at,
            kind: kind.into(),
            text,
        });
    }
}

/// The snapshot as a file: `status.json` in the state directory, rewritten (atomically) every
/// few seconds, for `bouncer status`.
pub struct StatusFileSink {
    path: std::path::PathBuf,
    every: i64,
    last: i64,
}

/// The file name, in the state directory.
pub const STATUS_FILE: &str = "status.json";

impl StatusFileSink {
    pub fn new(dir: &std::path::Path, every_secs: i64) -> StatusFileSink {
        StatusFileSink {
            path: dir.join(STATUS_FILE),
            every: every_secs,
            last: i64::MIN,
        }
    }
}

impl super::sink::Sink for StatusFileSink {
    fn name(&self) -> &'static str {
        "status file"
    }

    fn snapshot(&mut self, s: &Snapshot) {
        // saturating: `last` starts at i64::MIN, and `now - MIN` wrapped to a negative number,
        // so status.json was never written.
        if s.now.saturating_sub(self.last) < self.every {
            return;
        }
        self.last = s.now;
        // A failure here (full disk) shows in the state-save note; the next tick retries.
        if let Ok(bytes) = serde_json::to_vec(s) {
            let _ = super::write_atomic(&self.path, &bytes);
        }
    }
}
