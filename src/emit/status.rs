//! `bouncer status`: what a follow is doing, for a human (a table) or a script (JSON). Pure:
//! the saved bans, the follower's last `status.json` (if any), whether it runs, and the wall
//! time in; text out. The bans come from the saved state (they are right also when follow is
//! not running); everything else from `status.json`.

use super::report::view::{duration, int};
use super::snapshot::Snapshot;
use crate::parse::format_time;
use serde::Serialize;
use std::fmt::Write;
use std::net::IpAddr;

/// One active ban as the state holds it.
#[derive(Debug, Clone, Serialize)]
pub struct SavedBan {
    pub ip: IpAddr,
    pub since: i64,
    pub until: Option<i64>,
    pub strike: u32,
    pub reason: String,
}

/// Events listed in the table.
const LAST_EVENTS: usize = 10;

/// The JSON for scripts: `running`, `pid`, `uptime_secs`, `bans` (the objects older versions
/// printed one per line), `status` (the last status.json, or null).
pub fn json(
    bans: &[SavedBan],
    status: Option<&Snapshot>,
    pid: Option<u32>,
    now: i64,
) -> serde_json::Value {
    let bans: Vec<serde_json::Value> = bans
        .iter()
        .map(|b| {
            serde_json::json!({
                "ip": b.ip, "since": format_time(b.since), "until": b.until.map(format_time),
                "remaining_secs": b.until.map(|u| (u - now).max(0)), "strike": b.strike,
                "reason": b.reason,
            })
        })
        .collect();
    serde_json::json!({
        "running": pid.is_some(),
        "pid": pid,
        "uptime_secs": status.filter(|_| pid.is_some()).map(|s| (now - s.started).max(0)),
        "bans": bans,
        "status": status,
    })
}

/// The table for humans.
pub fn table(bans: &[SavedBan], status: Option<&Snapshot>, pid: Option<u32>, now: i64) -> String {
    let mut o = String::new();
    let fresh = status.filter(|s| pid.is_some() && s.pid == pid.unwrap_or(0));
    match (pid, fresh) {
        (Some(p), Some(s)) => {
            let _ = writeln!(
                o,
                "follow:      running (pid {p}), up {}, bouncer {}; {}",
                duration(now - s.started),
                s.bouncer_version,
                if s.dry_run {
                    "DRY RUN (nothing enforced)"
                } else {
                    "enforcing"
                }
            );
            let _ = writeln!(
                o,
                "status as of {} ({} ago)",
                format_time(s.now),
                duration(now - s.now)
            );
        }
        (Some(p), None) => {
            let _ = writeln!(
                o,
                "follow:      running (pid {p}); no status.json from it yet"
            );
        }
        (None, _) => {
            let _ = writeln!(o, "follow:      NOT running");
            if let Some(s) = status {
                let _ = writeln!(
                    o,
                    "last status: {} ({} ago)",
                    format_time(s.now),
                    duration(now - s.now)
                );
            }
        }
    }
    if let Some(s) = status {
        let reasons: Vec<String> = {
            let mut by = std::collections::BTreeMap::<&str, u64>::new();
            for f in &s.inputs {
                for (k, n) in &f.error_kinds {
                    *by.entry(k).or_insert(0) += n;
                }
            }
            by.iter().map(|(k, n)| format!("{k}: {n}")).collect()
        };
        let _ = writeln!(
            o,
            "lines:       {} read ({:.0}/s), {} requests, {} parse errors{}, {} late",
            int(s.lines),
            s.lines_per_sec,
            int(s.requests),
            int(s.parse_errors),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            int(s.late)
        );
        let _ = writeln!(
            o,
            "log time:    {}; {}",
            s.log_now
                .map(format_time)
                .unwrap_or_else(|| "no line yet".into()),
            if s.warmed_up {
                "rules in force"
            } else {
                "warming up (no decisions yet)"
            }
        );
        let limits: Vec<String> = s
            .limits
            .iter()
            .map(|l| {
                format!(
                    "{} {:.1} ({})",
                    l.window.name(),
                    l.limit,
                    match l.decided_by {
                        crate::detect::DecidedBy::Learned => "learned",
                        crate::detect::DecidedBy::Floor => "floor",
                    }
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "limits:      per client, load per window: {}",
            limits.join(" · ")
        );
        if let Some(b) = s.clients {
            let _ = writeln!(
                o,
                "baselines:   clients: level {:.1}, median {:.1} ({} client-hours, {}){}",
                b.level,
                b.mean,
                b.samples,
                b.source,
                match s.site {
                    Some(site) => format!(
                        "; site: median {:.0} requests/min (± {:.0}){}",
                        site.mean,
                        site.std,
                        s.site_limit
                            .map(|l| format!(", alert above {l:.0}"))
                            .unwrap_or_default()
                    ),
                    None => String::new(),
                }
            );
        }
        let fw = match &s.firewall {
            None if s.dry_run => "dry run: nothing enforced".to_string(),
            None => "no report yet".to_string(),
            Some(f) => {
                let mut t = format!(
                    "{}; {} of {} bans in the kernel; hooks: {}; {} repair(s)",
                    f.describe,
                    f.in_kernel,
                    f.wanted,
                    if f.hooks.is_empty() { "-" } else { &f.hooks },
                    f.repairs
                );
                for (family, e) in &f.errors {
                    t += &format!("; FAILING ({family}): {e}");
                }
                t
            }
        };
        let _ = writeln!(o, "firewall:    {fw}");
        let slack = match &s.slack {
            None => "not configured".to_string(),
            Some(sl) => format!(
                "sent {}, failed {}, dropped {}{}",
                sl.sent,
                sl.failed,
                sl.dropped,
                sl.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ),
        };
        let _ = writeln!(o, "slack:       {slack}");
        if let Some(e) = &s.state_error {
            let _ = writeln!(o, "STATE NOT SAVED: {e}");
        }
    }
    let _ = writeln!(o, "\nactive bans: {}", bans.len());
    if !bans.is_empty() {
        let _ = writeln!(
            o,
            "  {:<39} {:>6}  {:<14} {:<20}  reason",
            "ip", "strike", "time left", "since"
        );
        let mut sorted: Vec<&SavedBan> = bans.iter().collect();
        sorted.sort_by_key(|b| std::cmp::Reverse(b.since));
        for b in sorted {
            let _ = writeln!(
                o,
                "  {:<39} {:>6}  {:<14} {:<20}  {}",
                b.ip.to_string(),
                b.strike,
                b.until
                    .map(|u| duration(u - now))
                    .unwrap_or_else(|| "permanent".into()),
                format_time(b.since),
                b.reason
            );
        }
    }
    if let Some(s) = status {
        if !s.recent.is_empty() {
            let _ = writeln!(o, "\nlast events:");
            for e in s.recent.iter().rev().take(LAST_EVENTS) {
                let _ = writeln!(o, "  {}  {:<8} {}", format_time(e.at), e.kind, e.text);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_says_running_or_not_and_lists_bans_with_time_left() {
        let bans = vec![SavedBan {
            ip: "198.18.1.7".parse().unwrap(),
            since: 1000,
            until: Some(1600),
            strike: 2,
            reason: "short window: load 70 > 60".into(),
        }];
        let s = Snapshot {
            pid: 42,
            started: 900,
            now: 1040,
            lines: 1234,
            lines_per_sec: 12.0,
            bouncer_version: "0.1.0".into(),
            ..Default::default()
        };
        let t = table(&bans, Some(&s), Some(42), 1042);
        assert!(t.contains("running (pid 42), up 2 min 22 s"), "{t}");
        assert!(t.contains("1\u{202f}234 read (12/s)"), "{t}");
        assert!(t.contains("198.18.1.7") && t.contains("9 min 18 s"), "{t}");
        let t = table(&bans, Some(&s), None, 1042);
        assert!(
            t.contains("NOT running") && t.contains("last status"),
            "{t}"
        );
        let j = json(&bans, Some(&s), None, 1042);
        assert_eq!(j["running"], false);
        assert_eq!(j["bans"][0]["remaining_secs"], 558);
        assert_eq!(j["status"]["lines"], 1234);
    }
}
