//! The console as a sink: what `follow` prints on stderr. Every ban, unban and alert; what the
//! kernel really did (a ban is "enforced" only once the firewall worker put it there, and a
//! failure to enforce is said loudly, once per new error); Slack failures (at most one line a
//! minute); input news; and a status line every minute and on SIGUSR1. In a dry run every line
//! says so.

use super::sink::{FirewallNote, Note, Sink};
use super::snapshot::Snapshot;
use crate::detect::live::Event;
use crate::parse::format_time;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Seconds between status lines.
pub const STATUS_EVERY_SECS: i64 = 60;

pub struct ConsoleSink {
    dry_run: bool,
    /// Set by SIGUSR1: print the status line now.
    usr1: Arc<AtomicBool>,
    last_status: i64,
    last_slack: Option<i64>,
}

impl ConsoleSink {
    pub fn new(dry_run: bool, usr1: Arc<AtomicBool>, now: i64) -> ConsoleSink {
        ConsoleSink {
            dry_run,
            usr1,
            last_status: now,
            last_slack: None,
        }
    }

    fn mark(&self) -> &'static str {
        if self.dry_run {
            " (dry run: not enforced)"
        } else {
            ""
        }
    }
}

impl Sink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }

    fn note(&mut self, note: &Note, now: i64) {
        match note {
            Note::Core(Event::Ban { ip, ban, decision }) => eprintln!(
                "bouncer: BAN {ip}{} strike {} until {}: {}",
                self.mark(),
                ban.strike,
                ban.until
                    .map(format_time)
                    .unwrap_or_else(|| "permanent".into()),
                decision.reason
            ),
            Note::Core(Event::Unban { ip, why, .. }) => {
                eprintln!("bouncer: UNBAN {ip} ({why:?}){}", self.mark())
            }
            Note::Core(Event::GlobalAnomaly { decision }) => {
                eprintln!("bouncer: SITE-WIDE ALERT {}", decision.reason)
            }
            Note::Core(Event::BaselineUpdate { .. }) => {}
            Note::Firewall(f) => match f {
                FirewallNote::Applied {
                    added,
                    removed,
                    banned,
                } => eprintln!(
                    "bouncer: firewall{}: +{} -{} ({banned} banned){}",
                    self.mark(),
                    added.len(),
                    removed.len(),
                    if added.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; enforced: {}",
                            added
                                .iter()
                                .map(|ip| ip.to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    }
                ),
                FirewallNote::Repaired { restored } => eprintln!(
                    "bouncer: firewall: {restored} ban(s) were missing from the kernel (flushed?) and are back"
                ),
                FirewallNote::Failed {
                    family,
                    error,
                    missing,
                } => eprintln!(
                    "bouncer: FIREWALL FAILURE ({family}): {missing} ban(s) bouncer believes active are NOT enforced: {error}"
                ),
                FirewallNote::Recovered { family } => {
                    eprintln!("bouncer: firewall ({family}): working again")
                }
                FirewallNote::Hooks { hooks } => eprintln!("bouncer: firewall: hooks: {hooks}"),
            },
            Note::Slack(s) => {
                if self.last_slack.is_none_or(|t| now - t >= 60) {
                    self.last_slack = Some(now);
                    eprintln!(
                        "bouncer: Slack: {} (failed {}, dropped {} so far)",
                        s.error, s.failed, s.dropped
                    );
                }
            }
            Note::Input { name, note } => eprintln!("bouncer: {name}: {note}"),
            Note::StateSave { error: Some(e) } => eprintln!(
                "bouncer: STATE NOT SAVED: {e} (bans stay enforced from memory; retrying)"
            ),
            Note::StateSave { error: None } => eprintln!("bouncer: state saved again"),
        }
    }

    fn snapshot(&mut self, s: &Snapshot) {
        let asked = self.usr1.swap(false, Ordering::Relaxed);
        if !asked && s.now - self.last_status < STATUS_EVERY_SECS {
            return;
        }
        self.last_status = s.now;
        eprintln!("bouncer: status: {}", status_line(s));
    }
}

/// One line of counters: what `follow` prints every minute and on SIGUSR1.
pub fn status_line(s: &Snapshot) -> String {
    let enforced = s.bans.iter().filter(|b| b.enforced).count();
    let limits: Vec<String> = s
        .limits
        .iter()
        .map(|l| format!("{} {:.0}", l.window.name(), l.limit))
        .collect();
    let fw = match &s.firewall {
        Some(f) if !f.errors.is_empty() => format!("; FIREWALL FAILING ({})", f.errors.len()),
        _ => String::new(),
    };
    let slack = match &s.slack {
        Some(sl) => format!(
            "; slack sent {} failed {} dropped {}",
            sl.sent, sl.failed, sl.dropped
        ),
        None => String::new(),
    };
    let errors: Vec<String> = {
        let mut by = std::collections::BTreeMap::<&str, u64>::new();
        for f in &s.inputs {
            for (k, n) in &f.error_kinds {
                *by.entry(k).or_insert(0) += n;
            }
        }
        by.iter().map(|(k, n)| format!("{k}: {n}")).collect()
    };
    let repairs = s
        .firewall
        .as_ref()
        .map(|f| format!("; {} firewall repair(s)", f.repairs))
        .unwrap_or_default();
    format!(
        "{} lines ({:.0}/s), {} requests, {} parse errors{}, {} late; log time {}; {}; limits {}; {} ban(s){}; since start {} ban(s), {} unban(s), {} alert(s){repairs}{}{fw}{slack}",
        s.lines,
        s.lines_per_sec,
        s.requests,
        s.parse_errors,
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join(", "))
        },
        s.late,
        s.log_now.map(format_time).unwrap_or_else(|| "-".into()),
        if s.warmed_up { "rules in force" } else { "warming up" },
        limits.join(" / "),
        s.bans.len(),
        if s.dry_run {
            " (dry run)".to_string()
        } else {
            format!(", {enforced} in the kernel")
        },
        s.bans_total,
        s.unbans_total,
        s.alerts_total,
        s.state_error
            .as_ref()
            .map(|e| format!("; STATE NOT SAVED: {e}"))
            .unwrap_or_default(),
    )
}
