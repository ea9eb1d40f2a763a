//! Slack alerts: incoming-webhook messages (Block Kit with a plain-text fallback), sent from their
//! own thread through a bounded queue, so a slow or dead webhook never delays detection or
//! enforcement. A full queue drops the message and counts it. The webhook URL is a secret: it
//! is never printed or logged, only its host.

use crate::detect::live::{Event, UnbanReason};
use crate::parse::format_time;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const QUEUE: usize = 256;
const RETRIES: u32 = 3;

/// Counters shared with the main loop (status line, audit, dashboard, metrics).
#[derive(Debug, Default)]
pub struct SlackStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    /// Why the last message failed (an HTTP status or a connection error; never the URL).
    pub last_error: std::sync::Mutex<Option<String>>,
}

pub struct Slack {
    tx: Option<SyncSender<Value>>,
    worker: Option<JoinHandle<()>>,
    pub stats: Arc<SlackStats>,
    /// Log time of the last site-wide alert sent (at most one a minute).
    last_global: Option<i64>,
}

impl Slack {
    /// Start the sender thread for `url` (from `BOUNCER_SLACK_WEBHOOK` or the config file).
    pub fn start(url: String) -> Result<Slack, String> {
        let parsed = reqwest::Url::parse(&url)
            .map_err(|_| "the Slack webhook is not a valid URL".to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("the Slack webhook must be an http(s) URL".into());
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let (tx, rx) = sync_channel::<Value>(QUEUE);
        let stats = Arc::new(SlackStats::default());
        let st = stats.clone();
        let worker = std::thread::Builder::new()
            .name("slack".into())
            .spawn(move || {
                for msg in rx {
                    let mut delay = Duration::from_millis(500);
                    let mut ok = false;
                    let mut error = None;
                    for attempt in 0..RETRIES {
                        match client.post(url.as_str()).json(&msg).send() {
                            Ok(r) if r.status().is_success() => {
                                ok = true;
                                break;
                            }
                            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                                error = Some(format!("HTTP {}", r.status()));
                            }
                            Ok(r) => {
                                // 4xx other than 429: retrying will not help
                                error = Some(format!("HTTP {}", r.status()));
                                break;
                            }
                            // Without the URL: it is a secret.
                            Err(e) => error = Some(connection_error(&e)),
                        }
                        if attempt + 1 < RETRIES {
                            std::thread::sleep(delay);
                            delay *= 2;
                        }
                    }
                    let counter = if ok { &st.sent } else { &st.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let (false, Some(e)) = (ok, error) {
                        *st.last_error.lock().expect("slack stats") = Some(e);
                    }
                }
            })
            .map_err(|e| format!("cannot start the Slack thread: {e}"))?;
        Ok(Slack {
            tx: Some(tx),
            worker: Some(worker),
            stats,
            last_global: None,
        })
    }

    /// Queue the message for an event, if it is one we announce, with `tag` added to its text
    /// ("[dry run]", "not enforced: …"). Never blocks.
    pub fn notify(&mut self, event: &Event, log_time: i64, tag: &str) {
        let msg = match event {
            Event::GlobalAnomaly { .. } => {
                if self.last_global.is_some_and(|t| log_time - t < 60) {
                    return; // cooldown: at most one site-wide alert a minute
                }
                self.last_global = Some(log_time);
                message(event, tag)
            }
            Event::BaselineUpdate { .. } => return,
            _ => message(event, tag),
        };
        let Some(msg) = msg else { return };
        self.send(msg);
    }

    /// Queue a message of our own (a firewall failure). Never blocks.
    pub fn send(&mut self, msg: Value) {
        if let Some(tx) = &self.tx {
            match tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Let queued messages go out for at most `wait`, then stop (shutdown).
    pub fn shutdown(mut self, wait: Duration) {
        drop(self.tx.take());
        super::sink::join_within(self.worker.take(), wait);
    }
}

/// A plain-text message (a firewall failure).
pub fn plain(text: &str) -> Value {
    let t = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    json!({"text": t, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": t}}]})
}

/// What went wrong with a request, in words that hold nothing of its URL (Slack's holds the
/// webhook's secret; the CrowdSec client uses it too).
pub(super) fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

/// A connection error without the URL (which holds the webhook's secret).
fn connection_error(e: &reqwest::Error) -> String {
    let what = failure_kind(e);
    match e.url().and_then(|u| u.host_str()) {
        Some(host) => format!("{what} ({host})"),
        None => what.to_string(),
    }
}

/// Slack as a sink. With `--enforce`, a BAN is announced once the kernel holds it (or, if the
/// firewall fails, as decided but NOT enforced); in a dry run only with `--slack-in-dry-run`,
/// each message marked as a dry run. Failures come back as notes (rate-limited by the console).
pub struct SlackSink {
    slack: Option<Slack>,
    stats: Arc<SlackStats>,
    dry_run: bool,
    /// Bans decided, waiting for the kernel.
    pending: std::collections::BTreeMap<std::net::IpAddr, (Event, i64)>,
    seen: (u64, u64),
}

impl SlackSink {
    pub fn new(slack: Slack, dry_run: bool) -> SlackSink {
        SlackSink {
            stats: slack.stats.clone(),
            slack: Some(slack),
            dry_run,
            pending: Default::default(),
            seen: (0, 0),
        }
    }
}

impl super::sink::Sink for SlackSink {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn note(&mut self, note: &super::sink::Note, now: i64) {
        use super::sink::{FirewallNote, Note};
        let Some(slack) = self.slack.as_mut() else {
            return;
        };
        let dry = if self.dry_run {
            "dry run: not enforced"
        } else {
            ""
        };
        match note {
            Note::Core(e @ Event::Ban { ip, .. }) if !self.dry_run => {
                self.pending.insert(*ip, (e.clone(), now));
            }
            Note::Core(e @ Event::GlobalAnomaly { decision }) => slack.notify(e, decision.at, ""),
            Note::Core(e) => slack.notify(e, now, dry),
            Note::Firewall(FirewallNote::Applied { added, .. }) => {
                for ip in added {
                    if let Some((e, at)) = self.pending.remove(ip) {
                        slack.notify(&e, at, "enforced");
                    }
                }
            }
            Note::Firewall(FirewallNote::Failed { family, error, .. }) => {
                let stuck: Vec<std::net::IpAddr> = self
                    .pending
                    .keys()
                    .filter(|ip| super::firewall::Family::of(ip).to_string() == *family)
                    .copied()
                    .collect();
                for ip in stuck {
                    if let Some((e, at)) = self.pending.remove(&ip) {
                        slack.notify(
                            &e,
                            at,
                            &format!("NOT enforced: the {family} firewall fails"),
                        );
                    }
                }
                slack.send(plain(&format!(
                    ":warning: bouncer FIREWALL FAILURE ({family}): bans bouncer believes active are not in the kernel: {error}"
                )));
            }
            _ => {}
        }
    }

    fn report(&self, snapshot: &mut super::snapshot::Snapshot) {
        snapshot.slack = Some(super::snapshot::SlackStatus {
            sent: self.stats.sent.load(Ordering::Relaxed),
            failed: self.stats.failed.load(Ordering::Relaxed),
            dropped: self.stats.dropped.load(Ordering::Relaxed),
            last_error: self.stats.last_error.lock().expect("slack stats").clone(),
        });
    }

    fn take_notes(&mut self) -> Vec<super::sink::Note> {
        let now = (
            self.stats.failed.load(Ordering::Relaxed),
            self.stats.dropped.load(Ordering::Relaxed),
        );
        if now == self.seen {
            return Vec::new();
        }
        self.seen = now;
        let error = self
            .stats
            .last_error
            .lock()
            .expect("slack stats")
            .clone()
            .unwrap_or_else(|| "queue full: message dropped".into());
        vec![super::sink::Note::Slack(super::sink::SlackNote {
            error,
            failed: now.0,
            dropped: now.1,
        })]
    }

    fn shutdown(&mut self, grace: Duration) {
        if let Some(s) = self.slack.take() {
            s.shutdown(grace);
        }
    }
}

fn duration_text(secs: Option<i64>) -> String {
    match secs {
        None => "permanent".into(),
        Some(s) if s % 3600 == 0 => format!("{}h", s / 3600),
        Some(s) if s % 60 == 0 => format!("{}m", s / 60),
        Some(s) => format!("{s}s"),
    }
}

/// The Slack payload for an event: `text` for notifications and old clients, `blocks` for
/// the rest. Log-derived text never goes in (only IPs and numbers), so nothing needs escaping
/// beyond Slack's `&`, `<`, `>`.
pub fn message(event: &Event, tag: &str) -> Option<Value> {
    let (text, fields) = match event {
        Event::Ban { ip, ban, decision } => (
            format!(
                ":no_entry: BAN {ip} — {} window: {} {:.1} in {} s > limit {:.1} ({}), rules {}, {} (strike {})",
                decision.window.name(),
                decision.window.measure(),
                decision.measured,
                decision.window_secs,
                decision.limit,
                match decision.decided_by {
                    crate::detect::DecidedBy::Learned => "learned",
                    crate::detect::DecidedBy::Floor => "floor",
                },
                decision.rules_text("+"),
                duration_text(ban.until.map(|u| u - ban.since)),
                ban.strike
            ),
            vec![
                ("IP", ip.to_string()),
                ("Rate", format!("{:.1} req/s ({} in {} s)", decision.rate_per_sec, decision.requests_in_window, decision.window_secs)),
                ("Limit", format!("{:.1} ({} window; level {:.1} of {} client-hours)", decision.limit, decision.window.name(), decision.baseline.level, decision.baseline.samples)),
                ("Score", format!("{:.1}× the level, z {:.1}, errors {:.0}%", decision.multiplier, decision.z, decision.error_share * 100.0)),
                ("Rule", decision.rules_text(", ")),
                ("Ban", format!("{} (strike {})", duration_text(ban.until.map(|u| u - ban.since)), ban.strike)),
            ],
        ),
        Event::Unban { ip, ban, why } => (
            format!(
                ":white_check_mark: UNBAN {ip} ({}) after {}",
                match why {
                    UnbanReason::Expired => "expired",
                    UnbanReason::Manual => "manual",
                },
                format_time(ban.since)
            ),
            vec![("IP", ip.to_string()), ("Strike", ban.strike.to_string())],
        ),
        Event::GlobalAnomaly { decision } => {
            let top: Vec<String> = decision.top_ips.iter().take(5).map(|c| format!("{} ({})", c.value, c.count)).collect();
            (
                format!(
                    ":rotating_light: GLOBAL ANOMALY {} requests in {} s ({:.1}/s) vs baseline {:.1} per {} s (z {:.1}); top: {}",
                    decision.requests_in_window,
                    decision.window_secs,
                    decision.rate_per_sec,
                    decision.baseline.mean,
                    decision.window_secs,
                    decision.z,
                    top.join(", ")
                ),
                vec![
                    ("Rate", format!("{:.1} req/s", decision.rate_per_sec)),
                    ("Baseline", format!("{:.1} ± {:.1} per {} s", decision.baseline.mean, decision.baseline.std, decision.window_secs)),
                    ("Top IPs", top.join("\n")),
                ],
            )
        }
        Event::BaselineUpdate { .. } => return None,
    };
    let text = if tag.is_empty() {
        text
    } else {
        format!("{text} — {tag}")
    };
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Some(json!({
        "text": esc(&text),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": esc(&text)}},
            {"type": "section", "fields": fields.iter().map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{}*\n{}", k, esc(v))})).collect::<Vec<_>>()}
        ]
    }))
}
