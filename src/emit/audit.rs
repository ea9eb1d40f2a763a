//! The audit log: one JSON object per line for every BAN, UNBAN, GLOBAL_ANOMALY and
//! BASELINE_UPDATE, with the numbers behind it. Appended and flushed line by line so a crash
//! loses at most the line being written.
//!
//! bouncer runs as root and the audit log often sits in a directory others can write to (a log
//! directory, a shared volume): the file is opened with `O_NOFOLLOW`, so a symbolic link planted
//! at its path is refused instead of followed (appending to `/etc/passwd`…), and anything but a
//! regular file (a FIFO, a device) is refused too. A new file gets the mode the umask allows: it
//! says who was banned and why.

use super::sink::{Note, Sink};
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
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            // NONBLOCK: opening a planted FIFO fails (ENXIO) instead of hanging.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => std::io::Error::new(
                    e.kind(),
                    "is a symbolic link; refusing to follow it (give the real file's path)",
                ),
                Some(libc::ENXIO) => std::io::Error::new(e.kind(), "is not a regular file"),
                _ => e,
            })?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("is not a regular file"));
        }
        Ok(Audit { file })
    }

    pub fn write(&mut self, event: &Event, now: i64) -> std::io::Result<()> {
        self.write_value(&record(event, now))
    }

    fn write_value(&mut self, v: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_string(v).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }
}

/// The audit log as a sink: every event, what the firewall did or failed to do, Slack failures,
/// state-save failures. In a dry run each record says `"dry_run": true`.
pub struct AuditSink {
    audit: Audit,
    dry_run: bool,
    /// The last write error, said once.
    failing: Option<String>,
}

impl AuditSink {
    pub fn new(audit: Audit, dry_run: bool) -> AuditSink {
        AuditSink {
            audit,
            dry_run,
            failing: None,
        }
    }
}

impl Sink for AuditSink {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn note(&mut self, note: &Note, now: i64) {
        let at = format_time(now);
        let mut v = match note {
            Note::Core(e) => record(e, now),
            Note::Firewall(f) => {
                let mut v = serde_json::to_value(f).unwrap_or_default();
                v["event"] = json!("FIREWALL");
                v["at"] = json!(at);
                v
            }
            Note::Slack(s) => json!({
                "event": "SLACK_FAILED", "at": at, "error": s.error,
                "failed": s.failed, "dropped": s.dropped,
            }),
            Note::Crowdsec(c) => {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["event"] = json!("CROWDSEC");
                v["at"] = json!(at);
                v
            }
            Note::Input { name, note } => {
                json!({"event": "INPUT", "at": at, "input": name, "note": note})
            }
            Note::StateSave { error } => json!({"event": "STATE_SAVE", "at": at, "error": error}),
        };
        if self.dry_run {
            v["dry_run"] = json!(true);
        }
        match self.audit.write_value(&v) {
            Ok(()) => self.failing = None,
            Err(e) => {
                let e = e.to_string();
                if self.failing.as_ref() != Some(&e) {
                    eprintln!("bouncer: audit log: {e}");
                    self.failing = Some(e);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_is_refused_not_followed() {
        // Regression (issue 12, 14): --audit followed a symlink and appended to its target.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("passwd");
        std::fs::write(&target, "root:x:0:0\n").unwrap();
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Audit::open(&link).err().expect("a symlink must be refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");
        // A dangling one too (it would create the target).
        let dangling = dir.path().join("dangling.jsonl");
        std::os::unix::fs::symlink(dir.path().join("new"), &dangling).unwrap();
        assert!(Audit::open(&dangling).is_err());
        assert!(!dir.path().join("new").exists());
    }

    #[test]
    fn fifos_and_directories_are_refused_and_files_appended() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = Audit::open(&fifo).err().expect("a FIFO must be refused");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(Audit::open(dir.path()).is_err());
        let file = dir.path().join("audit.jsonl");
        std::fs::write(&file, "old\n").unwrap();
        let mut a = Audit::open(&file).unwrap();
        a.file.write_all(b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\nnew\n");
    }
}
