//! The audit log: one JSON object per line for every BAN, UNBAN, GLOBAL_ANOMALY and
//! BASELINE_UPDATE, with the numbers behind it. Appended and flushed line by line so a crash
//! loses at most the line being written.

use crate::detect::live::Event;
use crate::parse::format_time;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub struct Audit {
    file: File,
}

impl Audit {
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        Ok(Audit {
            file: OpenOptions::new().create(true).append(true).open(path)?,
        })
    }

    pub fn write(&mut self, event: &Event, now: i64) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&record(event, now)).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }
}

/// The audit record of an event at wall time `now`.
pub fn record(event: &Event, now: i64) -> Value {
    let at = format_time(now);
    match event {
        Event::Ban { ip, ban, decision } => json!({
            "event": "BAN", "at": at, "ip": ip,
            "log_time": format_time(decision.at),
            "rules": decision.rules, "reason": decision.reason,
            "window": decision.window, "measured": decision.measured, "limit": decision.limit,
            "decided_by": decision.decided_by, "checks": decision.checks,
            "requests_in_window": decision.requests_in_window, "window_secs": decision.window_secs,
            "rate_per_sec": decision.rate_per_sec, "error_share": decision.error_share,
            "baseline_mean": decision.baseline.mean, "baseline_std": decision.baseline.std,
            "z": decision.z, "multiplier": decision.multiplier,
            "strike": ban.strike,
            "duration_secs": ban.until.map(|u| u - ban.since),
            "until": ban.until.map(format_time),
        }),
        Event::Unban { ip, ban, why } => json!({
            "event": "UNBAN", "at": at, "ip": ip, "why": why,
            "banned_since": format_time(ban.since), "strike": ban.strike,
        }),
        Event::GlobalAnomaly { decision } => json!({
            "event": "GLOBAL_ANOMALY", "at": at, "log_time": format_time(decision.at),
            "rules": decision.rules, "requests_in_window": decision.requests_in_window,
            "rate_per_sec": decision.rate_per_sec,
            "baseline_mean": decision.baseline.mean, "baseline_std": decision.baseline.std,
            "z": decision.z, "multiplier": decision.multiplier,
            "top_ips": decision.top_ips,
        }),
        Event::BaselineUpdate { ip, site, in_force } => json!({
            "event": "BASELINE_UPDATE", "at": at, "per_ip": ip, "site": site,
            "in_force": in_force,
        }),
    }
}
