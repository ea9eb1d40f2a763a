//! What the pages show: the hub's state turned into display-ready views (every number already
//! formatted, as the report's `view` does), rendered by minijinja into the page a browser first
//! gets, and sent as JSON on the event stream for the page's script to put in place.
//!
//! One view, two renderings: the templates (`reports/live/*.html`) mark each value with
//! `data-k` (text), `data-list` (rows, from a `<template>`), `data-chart` (a plot), and
//! `reports/live/live.js` fills the same places from the same JSON with `textContent` and
//! numeric attributes only. Plots are SVG drawn from numbers: their geometry is computed here,
//! once, for both.
//!
//! Log-derived strings (paths, user agents, reasons, file names, input notes) stay plain strings
//! here; minijinja escapes them (the templates are `*.html`: auto-escaping on) and the script
//! never parses them as HTML.

use super::hub::{HubState, Minute, Which};
use crate::detect::{DecidedBy, Decision, DetectSettings};
use crate::emit::report::plots::{format_number, time_ticks, YScale};
use crate::emit::report::view::{
    ban_view, count_rows, duration, int, pct, status_rows, CountRow, StatusRow,
};
use crate::emit::report::Zone;
use crate::emit::snapshot::Snapshot;
use serde::Serialize;
use std::net::IpAddr;

/// Rows shown in the bans table and the events list.
const BAN_ROWS: usize = 200;
const EVENT_ROWS: usize = 50;

/// The templates, compiled into the binary.
const TEMPLATES: [(&str, &str); 3] = [
    ("base.html", include_str!("../../reports/live/base.html")),
    ("site.html", include_str!("../../reports/live/site.html")),
    ("ip.html", include_str!("../../reports/live/ip.html")),
];

/// Requests per second over the last `secs` complete seconds.
pub fn requests_per_sec(s: &Snapshot, secs: i64) -> f64 {
    let from = s.now - secs;
    let n: u64 = s
        .per_second
        .iter()
        .rev()
        .take_while(|(t, _)| *t >= from)
        .filter(|(t, _)| *t < s.now)
        .map(|(_, n)| u64::from(*n))
        .sum();
    n as f64 / secs.max(1) as f64
}

#[derive(Debug, Serialize)]
pub struct SiteView {
    pub kind: &'static str,
    pub now: String,
    pub running: String,
    pub mode: String,
    pub mode_cls: &'static str,
    pub warm: String,
    pub warm_cls: &'static str,
    pub log_time: String,
    pub lines: String,
    pub lines_per_sec: String,
    pub requests: String,
    pub requests_per_sec: String,
    pub parse_errors: String,
    pub errors_by_reason: String,
    pub late: String,
    pub limits: Vec<LimitRow>,
    pub site_baseline: String,
    pub client_baseline: String,
    pub chart15: Chart,
    pub chart24: Chart,
    pub chart24_title: String,
    pub bans_active: String,
    pub bans_more: String,
    pub bans_total: String,
    pub unbans_total: String,
    pub alerts_total: String,
    pub bans: Vec<BanRow>,
    pub events: Vec<EventRow>,
    pub inputs: Vec<InputRow>,
    pub firewall: String,
    pub firewall_cls: &'static str,
    pub slack: String,
    pub slack_cls: &'static str,
    pub state: String,
    pub state_cls: &'static str,
}

#[derive(Debug, Serialize)]
pub struct LimitRow {
    pub window: String,
    pub limit: String,
    pub per_sec: String,
    pub level: String,
    pub decided_by: String,
}

#[derive(Debug, Serialize)]
pub struct BanRow {
    pub ip: String,
    pub href: String,
    pub since: String,
    pub left: String,
    pub strike: String,
    pub reason: String,
    pub enforced: String,
    pub cls: &'static str,
}

#[derive(Debug, Serialize)]
pub struct EventRow {
    pub at: String,
    pub kind: String,
    pub cls: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct InputRow {
    pub name: String,
    pub format: String,
    pub lines: String,
    pub requests: String,
    pub errors: String,
    pub notes: String,
}

/// A plot: polyline/polygon points in a `W`×`H` box, and its ticks.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub rate: String,
    pub band: String,
    pub mean: String,
    pub alert: String,
    pub limit: String,
    pub yticks: Vec<Tick>,
    pub xticks: Vec<Tick>,
    pub empty: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Position along the axis, in the plot box.
    pub at: String,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct IpView {
    pub kind: &'static str,
    pub now: String,
    pub ip: String,
    pub status: String,
    pub status_cls: &'static str,
    pub known: bool,
    pub at: String,
    pub reason: String,
    pub rules: String,
    pub window: String,
    pub rate: String,
    pub requests_in_window: String,
    pub baseline: String,
    pub requests_total: String,
    pub seen: String,
    pub bars: Vec<Bar>,
    pub checks: Vec<CheckRow>,
    pub top_paths: Vec<CountRow>,
    pub user_agents: Vec<CountRow>,
    pub status_mix: Vec<StatusRow>,
}

/// One check's measure against its limit, as two bars (widths in % of the larger).
#[derive(Debug, Serialize)]
pub struct Bar {
    pub label: String,
    pub value: String,
    pub limit: String,
    pub w_value: String,
    pub w_limit: String,
    pub cls: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CheckRow {
    pub name: String,
    pub fired: String,
    pub text: String,
    pub cls: &'static str,
}

fn zone() -> Zone {
    Zone::utc()
}

/// The dashboard's view of the hub's state.
pub fn site(st: &HubState, settings: &DetectSettings) -> SiteView {
    let s = &*st.snapshot;
    let z = zone();
    let now = s.now;
    let w = f64::from(settings.window_secs.max(1));
    let uptime = if s.started > 0 { now - s.started } else { 0 };
    let warm_samples = s.clients.map_or(0, |b| b.samples);
    let floors = s.limits.iter().all(|l| l.decided_by == DecidedBy::Floor);
    let (warm, warm_cls) = if s.now == 0 {
        ("starting".to_string(), "warn")
    } else if !s.warmed_up {
        (
            format!(
                "warming up: no decisions before {} of log time (the limits are the floors × {} until the baseline holds {} client-hours)",
                duration(i64::from(settings.warmup_secs)),
                format_number(settings.untrained_factor),
                settings.min_clients
            ),
            "warn",
        )
    } else if floors {
        (
            format!(
                "rules in force; limits at their floors ({} client-hours learned, {} needed to learn limits)",
                int(warm_samples),
                settings.min_clients
            ),
            "ok",
        )
    } else {
        (
            format!(
                "rules in force; limits learned from {} client-hours",
                int(warm_samples)
            ),
            "ok",
        )
    };
    let mut bans: Vec<&crate::emit::snapshot::BanStatus> = s.bans.iter().collect();
    bans.sort_by(|a, b| b.since.cmp(&a.since).then(a.ip.cmp(&b.ip)));
    let ban_rows: Vec<BanRow> = bans
        .iter()
        .take(BAN_ROWS)
        .map(|b| BanRow {
            ip: b.ip.to_string(),
            href: format!("/ip/{}", b.ip),
            since: z.datetime(b.since),
            left: match b.until {
                Some(u) => duration(u - now),
                None => "permanent".into(),
            },
            strike: b.strike.to_string(),
            reason: b.reason.clone(),
            enforced: if s.dry_run {
                "dry run".into()
            } else if b.enforced {
                "in the kernel".into()
            } else {
                "pending".into()
            },
            cls: if s.dry_run || b.enforced { "" } else { "warn" },
        })
        .collect();
    let errors_by_reason = {
        let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
        for f in &s.inputs {
            for (k, n) in &f.error_kinds {
                *by.entry(k.as_str()).or_insert(0) += n;
            }
        }
        if by.is_empty() {
            "none".to_string()
        } else {
            by.iter()
                .map(|(k, n)| format!("{k}: {}", int(*n)))
                .collect::<Vec<_>>()
                .join(" · ")
        }
    };
    let (firewall, firewall_cls) = match &s.firewall {
        None if s.dry_run => (
            "dry run: nothing is enforced (add --enforce)".to_string(),
            "warn",
        ),
        None => ("not started yet".to_string(), ""),
        Some(f) => {
            let mut t = format!(
                "{}; {} of {} bans in the kernel; {} repair(s)",
                f.describe,
                f.in_kernel,
                f.wanted,
                int(f.repairs)
            );
            if !f.hooks.is_empty() {
                t += &format!("; hooks: {}", f.hooks);
            }
            if let Some(r) = f.last_reconcile {
                t += &format!("; checked {} ago", duration(now - r));
            }
            for (family, e) in &f.errors {
                t += &format!("; FAILING ({family}): {e}");
            }
            (t, if f.errors.is_empty() { "ok" } else { "bad" })
        }
    };
    let (slack, slack_cls) = match &s.slack {
        None => ("not configured".to_string(), ""),
        Some(sl) => {
            let mut t = format!(
                "sent {}, failed {}, dropped {}",
                sl.sent, sl.failed, sl.dropped
            );
            if let Some(e) = &sl.last_error {
                t += &format!("; last error: {e}");
            }
            (
                t,
                if sl.failed + sl.dropped > 0 {
                    "warn"
                } else {
                    "ok"
                },
            )
        }
    };
    let (state, state_cls) = match &s.state_error {
        Some(e) => (format!("NOT SAVED: {e} (bans enforced from memory)"), "bad"),
        None => (String::new(), ""),
    };
    let history_from = (s.started - s.started.rem_euclid(60)).max(now - 86_400);
    let span24 = (now - history_from).max(900);
    SiteView {
        kind: "site",
        now: z.datetime(now),
        running: format!(
            "bouncer {} · pid {} · up {} (since {})",
            s.bouncer_version,
            s.pid,
            duration(uptime),
            z.datetime(s.started)
        ),
        mode: if s.dry_run {
            "DRY RUN: nothing is enforced".into()
        } else {
            "enforcing".into()
        },
        mode_cls: if s.dry_run { "warn" } else { "ok" },
        warm,
        warm_cls,
        log_time: s
            .log_now
            .map(|t| z.datetime(t))
            .unwrap_or_else(|| "no line yet".into()),
        lines: int(s.lines),
        lines_per_sec: format!("{:.0}", s.lines_per_sec),
        requests: int(s.requests),
        requests_per_sec: format_number(requests_per_sec(s, 10)),
        parse_errors: int(s.parse_errors),
        errors_by_reason,
        late: int(s.late),
        limits: s
            .limits
            .iter()
            .map(|l| LimitRow {
                window: format!("{} ({})", l.window.name(), duration(i64::from(l.secs))),
                limit: format_number(l.limit),
                per_sec: format_number(l.limit / f64::from(l.secs.max(1))),
                level: format_number(l.level),
                decided_by: match l.decided_by {
                    DecidedBy::Learned => "learned".into(),
                    DecidedBy::Floor => "floor".into(),
                },
            })
            .collect(),
        site_baseline: match s.site {
            Some(b) => format!(
                "median {}/s (± {}), alert above {}/s; from {} minutes ({})",
                format_number(b.mean / w),
                format_number(b.std / w),
                s.site_limit
                    .map(|l| format_number(l / w))
                    .unwrap_or_else(|| "-".into()),
                int(b.samples),
                b.source
            ),
            None => "not learned yet".into(),
        },
        client_baseline: match s.clients {
            Some(b) => format!(
                "typical busiest minute {} (median); level {} = the {} of {} client-hours ({})",
                format_number(b.mean),
                format_number(b.level),
                pct(b.quantile),
                int(b.samples),
                b.source
            ),
            None => "not learned yet".into(),
        },
        chart15: chart_15m(s, &st.history, settings),
        chart24: chart_history(s, &st.history, settings, history_from, span24),
        chart24_title: format!("requests/s, per minute, since {}", z.datetime(history_from)),
        bans_active: int(s.bans.len() as u64),
        bans_more: if s.bans.len() > BAN_ROWS {
            format!(
                "and {} more (see /api/state)",
                int((s.bans.len() - BAN_ROWS) as u64)
            )
        } else {
            String::new()
        },
        bans_total: int(s.bans_total),
        unbans_total: int(s.unbans_total),
        alerts_total: int(s.alerts_total),
        bans: ban_rows,
        events: s
            .recent
            .iter()
            .rev()
            .take(EVENT_ROWS)
            .map(|e| EventRow {
                at: z.datetime(e.at),
                kind: e.kind.clone(),
                cls: e.kind.to_ascii_lowercase(),
                text: e.text.clone(),
            })
            .collect(),
        inputs: s
            .inputs
            .iter()
            .map(|f| InputRow {
                name: f.name.clone(),
                format: f.format.clone(),
                lines: int(f.lines),
                requests: int(f.requests),
                errors: int(f.parse_errors),
                notes: f.notes.join("; "),
            })
            .collect(),
        firewall,
        firewall_cls,
        slack,
        slack_cls,
        state,
        state_cls,
    }
}

/// One IP's view: its ban, and the decision behind it with the report's pieces.
pub fn ip(st: &HubState, ip: &IpAddr) -> IpView {
    let s = &*st.snapshot;
    let z = zone();
    let ban = s.bans.iter().find(|b| b.ip == *ip);
    let d: Option<&Decision> = st.decisions.get(ip).map(|d| &**d);
    let (status, status_cls) = match ban {
        Some(b) => (
            format!(
                "banned since {} (strike {}), {}; {}",
                z.datetime(b.since),
                b.strike,
                match b.until {
                    Some(u) => format!("{} left", duration(u - s.now)),
                    None => "permanent".into(),
                },
                if s.dry_run {
                    "dry run: not enforced"
                } else if b.enforced {
                    "in the kernel"
                } else {
                    "not in the kernel yet"
                }
            ),
            "bad",
        ),
        None if d.is_some() => ("not banned now (the ban below ended)".into(), "ok"),
        None => ("no ban of this address is known to this follow".into(), ""),
    };
    let mut v = IpView {
        kind: "ip",
        now: z.datetime(s.now),
        ip: ip.to_string(),
        status,
        status_cls,
        known: d.is_some(),
        at: String::new(),
        reason: ban.map(|b| b.reason.clone()).unwrap_or_default(),
        rules: String::new(),
        window: String::new(),
        rate: String::new(),
        requests_in_window: String::new(),
        baseline: String::new(),
        requests_total: String::new(),
        seen: String::new(),
        bars: Vec::new(),
        checks: Vec::new(),
        top_paths: Vec::new(),
        user_agents: Vec::new(),
        status_mix: Vec::new(),
    };
    let Some(d) = d else {
        return v;
    };
    let b = ban_view(d, &z);
    let total: u64 = d.status_mix.values().sum();
    let max_path = d.top_paths.iter().map(|c| c.count).max().unwrap_or(1);
    let max_ua = d.user_agents.iter().map(|c| c.count).max().unwrap_or(1);
    v.at = b.at;
    v.reason = b.reason;
    v.rules = b.rules.join(", ");
    v.window = format!(
        "{} window ({})",
        d.window.name(),
        duration(i64::from(d.window_secs))
    );
    v.rate = b.rate;
    v.requests_in_window = b.requests_in_window;
    v.baseline = b.baseline;
    v.requests_total = int(d.requests_total);
    v.seen = format!("{} → {}", z.datetime(d.first_seen), z.datetime(d.last_seen));
    // Its rate against its threshold: each check's measure against its limit, as the detector
    // computed them (nothing is recomputed here).
    v.bars = d
        .checks
        .iter()
        .filter(|c| c.limit > 0.0 && c.value.is_finite() && c.limit.is_finite())
        .map(|c| {
            let top = c.value.max(c.limit).max(1e-9);
            Bar {
                label: c.rule.name().replace('_', " "),
                value: format_number(c.value),
                limit: format_number(c.limit),
                w_value: format!("{:.1}", 100.0 * c.value.max(0.0) / top),
                w_limit: format!("{:.1}", 100.0 * c.limit / top),
                cls: if c.fired { "fired" } else { "" },
            }
        })
        .collect();
    v.checks = b
        .checks
        .into_iter()
        .map(|c| CheckRow {
            cls: if c.fired { "fired" } else { "" },
            fired: if c.fired { "yes".into() } else { "no".into() },
            name: c.name,
            text: c.text,
        })
        .collect();
    v.top_paths = count_rows(&d.top_paths, total, max_path);
    v.user_agents = count_rows(&d.user_agents, total, max_ua);
    v.status_mix = status_rows(&d.status_mix);
    v
}

/// The page for `which`, as HTML.
pub fn page(st: &HubState, settings: &DetectSettings, which: &Which) -> String {
    let mut env = minijinja::Environment::new();
    // `*.html`: HTML auto-escaping for every `{{ … }}` (said explicitly, as in the report).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, src) in TEMPLATES {
        if let Err(e) = env.add_template(name, src) {
            return format!("template error: {e}");
        }
    }
    let rendered = match which {
        Which::Site => env.get_template("site.html").and_then(|t| {
            t.render(minijinja::context! { v => site(st, settings), stream => "/api/stream" })
        }),
        Which::Ip(ip) => env.get_template("ip.html").and_then(|t| {
            t.render(minijinja::context! { v => self::ip(st, ip), stream => format!("/api/stream?ip={ip}") })
        }),
    };
    rendered.unwrap_or_else(|e| format!("template error: {e:#}"))
}

/// The view for `which`, as JSON for the page's script.
pub fn json(st: &HubState, settings: &DetectSettings, which: &Which) -> String {
    let r = match which {
        Which::Site => serde_json::to_string(&site(st, settings)),
        Which::Ip(ip) => serde_json::to_string(&self::ip(st, ip)),
    };
    r.unwrap_or_else(|_| "{}".into())
}

// ---------------------------------------------------------------------------------------------
// Plots.

/// The plot box (viewBox `0 0 W H`) and the plot area inside it.
pub const W: f64 = 900.0;
pub const H: f64 = 220.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// The levels in force at one time (per second), from the minute it falls in.
#[derive(Clone, Copy, Default)]
struct Levels {
    mean: Option<f64>,
    std: Option<f64>,
    alert: Option<f64>,
    limit: Option<f64>,
}

fn levels_of(m: &Minute, w: f64) -> Levels {
    Levels {
        mean: m.site_mean.map(|v| v / w),
        std: m.site_std.map(|v| v / w),
        alert: m.site_limit.map(|v| v / w),
        limit: m.client_limit.map(|v| v / w),
    }
}

/// The last 15 minutes, second by second (the current second, still filling, left out).
fn chart_15m(
    s: &Snapshot,
    history: &std::collections::VecDeque<Minute>,
    set: &DetectSettings,
) -> Chart {
    let w = f64::from(set.window_secs.max(1));
    let t1 = s.now;
    let t0 = t1 - 900;
    let mut per = s.per_second.iter().peekable();
    let mut points = Vec::with_capacity(900);
    let mut hist = history.iter().peekable();
    let mut lv = Levels::default();
    for t in t0..t1 {
        let mut n = 0;
        while let Some((pt, pn)) = per.peek() {
            if *pt < t {
                per.next();
            } else {
                if *pt == t {
                    n = *pn;
                }
                break;
            }
        }
        while let Some(m) = hist.peek() {
            if m.t + 60 <= t {
                hist.next();
            } else {
                if m.t <= t {
                    lv = levels_of(m, w);
                }
                break;
            }
        }
        if s.started > 0 && t < s.started {
            continue;
        }
        points.push((t, f64::from(n), lv));
    }
    chart(t0, t1, &points, set.global_z_threshold, None)
}

/// Per minute (average requests/s) from `t0`, over `span` seconds.
fn chart_history(
    s: &Snapshot,
    history: &std::collections::VecDeque<Minute>,
    set: &DetectSettings,
    t0: i64,
    span: i64,
) -> Chart {
    let w = f64::from(set.window_secs.max(1));
    let current = s.now - s.now.rem_euclid(60);
    let points: Vec<(i64, f64, Levels)> = history
        .iter()
        .filter(|m| m.t >= t0 && m.t < current)
        .map(|m| (m.t, m.requests as f64 / 60.0, levels_of(m, w)))
        .collect();
    chart(t0, t0 + span, &points, set.global_z_threshold, Some(60))
}

/// `step`: each point holds for that many seconds (drawn as a step, so a single minute shows).
fn chart(t0: i64, t1: i64, points: &[(i64, f64, Levels)], k: f64, step: Option<i64>) -> Chart {
    let stepped: Vec<(i64, f64, Levels)>;
    let points = match step {
        Some(secs) => {
            stepped = points
                .iter()
                .flat_map(|&(t, v, l)| [(t, v, l), ((t + secs).min(t1), v, l)])
                .collect();
            &stepped[..]
        }
        None => points,
    };
    let band_hi = |l: &Levels| Some(l.mean? + k * l.std?);
    let max = points
        .iter()
        .flat_map(|(_, v, l)| [Some(*v), band_hi(l), l.alert])
        .flatten()
        .fold(0.0, f64::max);
    let y = YScale::linear(max);
    let span = (t1 - t0).max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |t: i64| LEFT + pw * (t - t0) as f64 / span;
    let py = |v: f64| TOP + ph * (1.0 - (y.map(v) - y.lo) / (y.hi - y.lo));
    let pts = |it: &mut dyn Iterator<Item = (i64, f64)>| -> String {
        let mut out = String::new();
        for (t, v) in it {
            if !out.is_empty() {
                out.push(' ');
            }
            out += &format!("{:.1},{:.1}", px(t), py(v));
        }
        out
    };
    let rate = pts(&mut points.iter().map(|(t, v, _)| (*t, *v)));
    let mean = pts(&mut points.iter().filter_map(|(t, _, l)| Some((*t, l.mean?))));
    let alert = pts(&mut points.iter().filter_map(|(t, _, l)| Some((*t, l.alert?))));
    let limit = pts(&mut points.iter().filter_map(|(t, _, l)| Some((*t, l.limit?))));
    let upper: Vec<(i64, f64)> = points
        .iter()
        .filter_map(|(t, _, l)| Some((*t, band_hi(l)?)))
        .collect();
    let lower: Vec<(i64, f64)> = points
        .iter()
        .filter_map(|(t, _, l)| Some((*t, (l.mean? - k * l.std?).max(0.0))))
        .rev()
        .collect();
    let band = if upper.is_empty() {
        String::new()
    } else {
        pts(&mut upper.into_iter().chain(lower))
    };
    let yticks = y
        .ticks()
        .into_iter()
        .map(|v| Tick {
            at: format!("{:.1}", py(v)),
            label: y.label(v),
        })
        .collect();
    let z = zone();
    let (times, step) = time_ticks(t0, t1, &z, 8);
    let fmt = if step >= 86_400 { "%b %d" } else { "%H:%M" };
    let xticks = times
        .into_iter()
        .map(|t| Tick {
            at: format!("{:.1}", px(t)),
            label: z.format(t, fmt),
        })
        .collect();
    Chart {
        empty: if points.iter().all(|(_, v, _)| *v == 0.0) {
            "no requests yet".into()
        } else {
            String::new()
        },
        rate,
        band,
        mean,
        alert,
        limit,
        yticks,
        xticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::live::Event;
    use crate::emit::snapshot::{BanStatus, Snapshot};
    use std::sync::Arc;

    const HOSTILE: &str = "<script>document.title='PWNED1'</script>\"><img src=x onerror=alert(1)>";

    fn state_with_hostile_ban() -> HubState {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let mut d: Decision = serde_json::from_value(serde_json::json!({
            "action": "ban", "ip": "203.0.113.9", "at": "2026-01-01T00:00:00Z",
            "rules": ["multiplier"], "reason": HOSTILE, "window": "short", "window_secs": 10,
            "requests_in_window": 100, "rate_per_sec": 10.0, "error_share": 0.0,
            "baseline": {"mean": 1.0, "std": 1.0, "mean_learned": 1.0, "std_learned": 1.0,
                         "error_share": 0.0, "source": "rolling", "samples": 1},
            "z": 0.0, "multiplier": 10.0, "z_threshold": 3.0, "multiplier_threshold": 6.0,
            "requests_total": 100, "first_seen": "2026-01-01T00:00:00Z",
            "last_seen": "2026-01-01T00:00:00Z",
            "top_paths": [{"value": HOSTILE, "count": 100}], "status_mix": {"200": 100},
            "user_agents": [{"value": HOSTILE, "count": 100}], "top_ips": []
        }))
        .unwrap();
        d.checks.push(crate::detect::Check {
            rule: crate::detect::Rule::Multiplier,
            value: 100.0,
            limit: 60.0,
            fired: true,
            note: "load 100 > 60".into(),
        });
        let _ = Event::GlobalAnomaly {
            decision: Box::new(d.clone()),
        };
        let snapshot = Snapshot {
            now: 1_767_225_610,
            started: 1_767_225_000,
            bans: vec![BanStatus {
                ip,
                since: 1_767_225_600,
                until: Some(1_767_226_200),
                strike: 1,
                reason: HOSTILE.into(),
                enforced: true,
            }],
            per_second: vec![(1_767_225_600, 100)],
            ..Default::default()
        };
        let mut st = super::super::hub::tests_state();
        st.snapshot = Arc::new(snapshot);
        st.decisions.insert(ip, Arc::new(d));
        st
    }

    #[test]
    fn hostile_strings_are_escaped_in_pages_and_plain_in_json() {
        let st = state_with_hostile_ban();
        let set = DetectSettings::default();
        for which in [Which::Site, Which::Ip("203.0.113.9".parse().unwrap())] {
            let html = page(&st, &set, &which);
            assert!(!html.contains("<script>document"), "{which:?}");
            assert!(!html.contains("<img src=x"), "{which:?}");
            assert!(
                html.contains("&lt;script&gt;document.title="),
                "{which:?}: shown as text"
            );
            assert!(!html.contains("template error"), "{html}");
            // No inline script or style: the CSP forbids them.
            assert!(
                !html.contains("<script>") && !html.contains("style="),
                "{which:?}"
            );
            let json: serde_json::Value = serde_json::from_str(&json(&st, &set, &which)).unwrap();
            assert!(
                json.to_string().contains("PWNED1"),
                "JSON carries the text as is"
            );
        }
        let ip = self::ip(&st, &"203.0.113.9".parse().unwrap());
        assert_eq!(ip.bars.len(), 1);
        assert_eq!(
            (ip.bars[0].w_value.as_str(), ip.bars[0].w_limit.as_str()),
            ("100.0", "60.0")
        );
        assert!(ip.status.contains("in the kernel"), "{}", ip.status);
    }

    #[test]
    fn the_quarter_hour_plot_has_a_point_per_second_since_start() {
        let st = state_with_hostile_ban();
        let v = site(&st, &DetectSettings::default());
        // Started 610 s before now: 610 points, the current second left out.
        assert_eq!(v.chart15.rate.split(' ').count(), 610);
        assert!(!v.chart15.yticks.is_empty() && !v.chart15.xticks.is_empty());
        assert_eq!(v.bans.len(), 1);
        assert_eq!(v.bans[0].href, "/ip/203.0.113.9");
        assert_eq!(v.bans[0].left, "9 min 50 s");
    }

    #[test]
    fn a_single_minute_of_history_is_drawn_as_a_step() {
        let mut st = state_with_hostile_ban();
        let m = st.snapshot.started - st.snapshot.started.rem_euclid(60);
        st.history.push_back(Minute {
            t: m,
            requests: 600,
            peak: 20,
            site_mean: Some(300.0),
            site_std: Some(30.0),
            site_limit: Some(900.0),
            client_limit: Some(120.0),
        });
        let v = site(&st, &DetectSettings::default());
        assert_eq!(v.chart24.rate.split(' ').count(), 2, "{}", v.chart24.rate);
        // The band is a polygon: upper edge then lower edge, two points each.
        assert_eq!(v.chart24.band.split(' ').count(), 4, "{}", v.chart24.band);
    }
}
