//! What the template sees: an [`Analysis`] turned into display-ready rows, with every number
//! already formatted, so the templates only lay things out (and an overriding template gets the
//! same numbers, formatted the same way).
//!
//! Log-derived strings (paths, user agents, error examples, file names) are passed through as
//! plain strings and escaped by minijinja's HTML auto-escaping; only the SVG fields, built from
//! numbers by [`figures`](super::figures), are marked safe in the template.

use super::figures;
use super::plots::PlotError;
use super::zone::Zone;
use super::ReportOptions;
use crate::detect::{Count, DecidedBy, Decision, DetectSettings, Rule};
use crate::emit::rulesets::{self, shell_quote};
use crate::emit::{bans_of, Analysis};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Banned IPs that get a full section with a plot; the rest are rows in one table.
pub const DEFAULT_PLOT_LIMIT: usize = 50;
/// Offenders named in the summary.
const WORST: usize = 5;

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: String,
    pub zone: String,
    pub span: Option<Span>,
    pub inputs: Vec<Input>,
    pub totals: Totals,
    pub changed_settings: Vec<Setting>,
    pub summary: Summary,
    pub timeline: Option<TimelineView>,
    pub ips: Vec<IpSection>,
    pub more_ips: Vec<IpRow>,
    pub plot_limit: usize,
    pub alerts: Vec<AlertView>,
    pub ban_list: BanList,
    pub parse_errors: Vec<ErrorKind>,
    pub error_examples: Vec<String>,
    pub settings: Vec<Setting>,
}

#[derive(Debug, Serialize)]
pub struct Span {
    pub from: String,
    pub to: String,
    pub duration: String,
}

#[derive(Debug, Serialize)]
pub struct Input {
    pub name: String,
    pub format: String,
    pub gzip: bool,
    pub lines: String,
    pub requests: String,
    pub parse_errors: String,
    pub has_errors: bool,
    pub read_error: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub lines: String,
    pub requests: String,
    pub parse_errors: String,
    pub late: String,
    pub distinct_ips: String,
}

#[derive(Debug, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub default: String,
    pub changed: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub banned_ips: usize,
    pub bans: usize,
    pub alerts: usize,
    pub verdict: String,
    pub worst: Vec<Offender>,
    pub peak: Option<Peak>,
}

#[derive(Debug, Serialize)]
pub struct Offender {
    pub ip: String,
    pub anchor: String,
    pub score: String,
    pub window: String,
    pub rate: String,
    pub error_share: String,
    pub requests_total: String,
    pub at: String,
    pub rules: String,
}

#[derive(Debug, Serialize)]
pub struct Peak {
    pub rate: String,
    pub requests: String,
    pub window_secs: u32,
    pub at: String,
    pub baseline_rate: Option<String>,
    pub ratio: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TimelineView {
    pub traffic_svg: String,
    pub errors_svg: String,
    pub log_scale: bool,
    /// Set when each point is the busiest minute of a longer bucket.
    pub grouped: Option<String>,
    pub error_bucket: String,
    pub k: String,
    pub mean_floor: String,
}

#[derive(Debug, Serialize)]
pub struct IpSection {
    pub rank: usize,
    pub ip: String,
    pub anchor: String,
    pub score: String,
    pub requests_total: String,
    pub first_seen: String,
    pub last_seen: String,
    pub active_for: String,
    pub bans: Vec<BanView>,
    pub plot_svg: Option<String>,
    pub top_paths: Vec<CountRow>,
    pub user_agents: Vec<CountRow>,
    pub status: Vec<StatusRow>,
}

#[derive(Debug, Serialize)]
pub struct BanView {
    pub at: String,
    pub rules: Vec<String>,
    pub reason: String,
    pub window_secs: u32,
    pub requests_in_window: String,
    pub rate: String,
    pub baseline: String,
    pub checks: Vec<Check>,
}

/// One rule of the decision, with its arithmetic.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub fired: bool,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct CountRow {
    pub value: String,
    pub count: String,
    pub pct: String,
    pub width: String,
}

#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub code: u16,
    pub class: &'static str,
    pub count: String,
    pub pct: String,
    pub width: String,
}

#[derive(Debug, Serialize)]
pub struct IpRow {
    pub rank: usize,
    pub ip: String,
    pub at: String,
    pub rules: String,
    pub requests_in_window: String,
    pub rate: String,
    pub multiplier: String,
    pub z: String,
    pub error_share: String,
    pub requests_total: String,
}

#[derive(Debug, Serialize)]
pub struct AlertView {
    pub from: String,
    pub to: String,
    pub duration: String,
    pub requests_in_window: String,
    pub window_secs: u32,
    pub rate: String,
    pub baseline: String,
    pub z: String,
    pub multiplier: String,
    pub error_share: String,
    pub rules: Vec<String>,
    pub top_ips: Vec<Contributor>,
}

#[derive(Debug, Serialize)]
pub struct Contributor {
    pub ip: String,
    pub count: String,
    pub banned: bool,
    pub anchor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BanList {
    pub count: usize,
    pub v4: usize,
    pub v6: usize,
    pub dir: String,
    pub ips: Vec<String>,
    pub ban_secs: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub title: String,
    pub note: String,
    pub commands: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ErrorKind {
    pub file: String,
    pub kind: String,
    pub count: String,
}

/// Build the template context (and the plots) for an analysis.
pub fn build(a: &Analysis, o: &ReportOptions) -> Result<Report, PlotError> {
    let zone = &o.zone;
    let when = |t: i64| zone.datetime(t);
    let span = first_last(a).map(|(f, l)| Span {
        from: when(f),
        to: when(l),
        duration: duration(l - f),
    });

    // Group ban decisions by IP; score = the highest multiplier of its bans.
    let mut by_ip: BTreeMap<IpAddr, Vec<&Decision>> = BTreeMap::new();
    for d in a.bans() {
        if let Some(ip) = d.ip {
            by_ip.entry(ip).or_default().push(d);
        }
    }
    let mut ranked: Vec<(IpAddr, Vec<&Decision>, f64)> = by_ip
        .into_iter()
        .map(|(ip, ds)| {
            let score = ds.iter().map(|d| d.multiplier).fold(f64::MIN, f64::max);
            (ip, ds, score)
        })
        .collect();
    ranked.sort_by(|x, y| {
        y.2.total_cmp(&x.2)
            .then(x.1[0].at.cmp(&y.1[0].at))
            .then(x.0.cmp(&y.0))
    });
    let banned: BTreeSet<IpAddr> = ranked.iter().map(|r| r.0).collect();

    let mut ips = Vec::new();
    let mut more_ips = Vec::new();
    for (i, (ip, ds, score)) in ranked.iter().enumerate() {
        if i < o.plot_limit {
            ips.push(ip_section(a, i + 1, ip, ds, *score, o)?);
        } else {
            let d = ds[0];
            more_ips.push(IpRow {
                rank: i + 1,
                ip: ip.to_string(),
                at: when(d.at),
                rules: d
                    .rules
                    .iter()
                    .map(|r| rule_label(r))
                    .collect::<Vec<_>>()
                    .join(", "),
                requests_in_window: int(d.requests_in_window),
                rate: rate(d.rate_per_sec),
                multiplier: format!("{:.1}×", d.multiplier),
                z: format!("{:.1}", d.z),
                error_share: pct(d.error_share),
                requests_total: int(d.requests_total),
            });
        }
    }

    let alerts: Vec<AlertView> = a
        .alerts()
        .map(|d| AlertView {
            from: when(d.at - i64::from(d.window_secs)),
            to: when(d.last_seen),
            duration: duration(d.last_seen - d.at + i64::from(d.window_secs)),
            requests_in_window: int(d.requests_in_window),
            window_secs: d.window_secs,
            rate: rate(d.rate_per_sec),
            baseline: format!(
                "{:.0} ± {:.0} per {} s",
                d.baseline.mean, d.baseline.std, d.window_secs
            ),
            z: format!("{:.1}", d.z),
            multiplier: format!("{:.1}×", d.multiplier),
            error_share: pct(d.error_share),
            rules: d.rules.iter().map(|r| rule_label(r).to_string()).collect(),
            top_ips: d
                .top_ips
                .iter()
                .map(|c| Contributor {
                    ip: c.value.to_string(),
                    count: int(c.count),
                    banned: banned.contains(&c.value),
                    anchor: banned.contains(&c.value).then(|| anchor(&c.value)),
                })
                .collect(),
        })
        .collect();

    let bans_count = a.bans().count();
    let verdict = match (ranked.len(), alerts.len()) {
        (0, 0) => "No IP was banned and no site-wide anomaly was found.".to_string(),
        (0, n) => format!(
            "No IP was banned. {} site-wide {} found (see below): traffic rose, but no single client stood out.",
            n,
            plural(n, "anomaly was", "anomalies were")
        ),
        (b, n) => format!(
            "{} {} banned{}{}.",
            b,
            plural(b, "IP", "IPs"),
            if bans_count > b {
                format!(" ({bans_count} ban decisions: some IPs came back after a quiet spell)")
            } else {
                String::new()
            },
            if n > 0 {
                format!("; {n} site-wide {}", plural(n, "anomaly", "anomalies"))
            } else {
                String::new()
            }
        ),
    };
    let worst = ranked
        .iter()
        .take(WORST)
        .map(|(ip, ds, score)| {
            let d = ds[0];
            Offender {
                ip: ip.to_string(),
                anchor: anchor(ip),
                score: format!("{score:.1}×"),
                window: format!("{} in {} s", int(d.requests_in_window), d.window_secs),
                rate: rate(d.rate_per_sec),
                error_share: pct(d.error_share),
                requests_total: int(d.requests_total),
                at: when(d.at),
                rules: d
                    .rules
                    .iter()
                    .map(|r| rule_label(r))
                    .collect::<Vec<_>>()
                    .join(" + "),
            }
        })
        .collect();
    let w = a.settings.window_secs.max(1);
    let peak = a
        .peak_at
        .as_deref()
        .and_then(crate::parse::parse_any_time)
        .map(|t| {
            let peak_rate = a.peak_window_requests as f64 / f64::from(w);
            let base = a
                .baseline_global
                .map(|b| b.mean / f64::from(w))
                .filter(|b| *b > 0.0);
            Peak {
                rate: rate(peak_rate),
                requests: int(a.peak_window_requests),
                window_secs: w,
                at: when(t),
                baseline_rate: base.map(rate),
                ratio: base.map(|b| format!("{:.0}×", peak_rate / b)),
            }
        });

    let timeline = figures::timeline(a, zone)?.map(|t| TimelineView {
        traffic_svg: t.traffic_svg,
        errors_svg: t.errors_svg,
        log_scale: t.log_scale,
        grouped: (t.bucket_secs > i64::from(w)).then(|| duration(t.bucket_secs)),
        error_bucket: figures::bucket_name(t.error_bucket_secs),
        k: num(a.settings.global_z_threshold),
        mean_floor: format!(
            "{} × the median and ≥ {} requests per {} s",
            num(a.settings.global_multiplier_threshold),
            a.settings.global_min_requests,
            w
        ),
    });

    let settings = settings_rows(&a.settings);
    let changed_settings = settings
        .iter()
        .filter(|s| s.changed)
        .map(|s| Setting {
            name: s.name.clone(),
            value: s.value.clone(),
            default: s.default.clone(),
            changed: true,
        })
        .collect();

    let mut parse_errors = Vec::new();
    let mut error_examples = Vec::new();
    for f in &a.inputs {
        for (kind, n) in &f.error_kinds {
            if *n > 0 {
                parse_errors.push(ErrorKind {
                    file: f.name.clone(),
                    kind: kind.clone(),
                    count: int(*n),
                });
            }
        }
        error_examples.extend(f.error_examples.iter().map(|e| crate::parse::clip(e, 400)));
    }

    Ok(Report {
        version: a.bouncer_version.clone(),
        zone: zone.name(),
        span,
        inputs: a
            .inputs
            .iter()
            .map(|f| Input {
                name: f.name.clone(),
                format: f.format.clone(),
                gzip: f.gzip,
                lines: int(f.lines),
                requests: int(f.requests),
                parse_errors: int(f.parse_errors),
                has_errors: f.parse_errors > 0,
                read_error: f.read_error.clone().or_else(|| f.failed.clone()),
                notes: f.notes.clone(),
            })
            .collect(),
        totals: Totals {
            lines: int(a.lines),
            requests: int(a.requests),
            parse_errors: int(a.parse_errors),
            late: int(a.late_requests),
            distinct_ips: if a.distinct_ips_estimated {
                format!("≈{}", int(a.distinct_ips))
            } else {
                int(a.distinct_ips)
            },
        },
        changed_settings,
        summary: Summary {
            banned_ips: ranked.len(),
            bans: bans_count,
            alerts: alerts.len(),
            verdict,
            worst,
            peak,
        },
        timeline,
        ips,
        more_ips,
        plot_limit: o.plot_limit,
        alerts,
        ban_list: ban_list(a, o),
        parse_errors,
        error_examples,
        settings,
    })
}

fn first_last(a: &Analysis) -> Option<(i64, i64)> {
    let f = crate::parse::parse_any_time(a.first_time.as_deref()?)?;
    let l = crate::parse::parse_any_time(a.last_time.as_deref()?)?;
    Some((f, l))
}

fn ip_section(
    a: &Analysis,
    rank: usize,
    ip: &IpAddr,
    ds: &[&Decision],
    score: f64,
    o: &ReportOptions,
) -> Result<IpSection, PlotError> {
    let zone = &o.zone;
    // Paths, agents and statuses were counted up to the decision; the last ban has the most.
    let last = ds[ds.len() - 1];
    let status_total: u64 = last.status_mix.values().sum();
    let path_total = status_total.max(1);
    let max_path = last
        .top_paths
        .iter()
        .map(|c| c.count)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_ua = last
        .user_agents
        .iter()
        .map(|c| c.count)
        .max()
        .unwrap_or(1)
        .max(1);
    Ok(IpSection {
        rank,
        ip: ip.to_string(),
        anchor: anchor(ip),
        score: format!("{score:.1}×"),
        requests_total: int(last.requests_total),
        first_seen: zone.datetime(last.first_seen),
        last_seen: zone.datetime(last.last_seen),
        active_for: duration(last.last_seen - last.first_seen),
        bans: ds.iter().map(|d| ban_view(d, zone)).collect(),
        plot_svg: figures::ip_rate(a, ip, ds, zone)?,
        top_paths: count_rows(&last.top_paths, path_total, max_path),
        user_agents: count_rows(&last.user_agents, path_total, max_ua),
        status: status_rows(&last.status_mix),
    })
}

/// Paths or user agents as rows: share of `total` requests, bar width against the largest.
pub fn count_rows(counts: &[Count<String>], total: u64, max: u64) -> Vec<CountRow> {
    counts
        .iter()
        .map(|c| CountRow {
            value: crate::parse::clip(&c.value, 300),
            count: int(c.count),
            pct: pct(c.count as f64 / total.max(1) as f64),
            width: format!("{:.0}", 100.0 * c.count as f64 / max.max(1) as f64),
        })
        .collect()
}

/// Status codes as rows, with their class (2xx…5xx) and share.
pub fn status_rows(mix: &BTreeMap<u16, u64>) -> Vec<StatusRow> {
    let total: u64 = mix.values().sum();
    mix.iter()
        .map(|(code, n)| StatusRow {
            code: *code,
            class: match code / 100 {
                2 => "s2",
                3 => "s3",
                4 => "s4",
                5 => "s5",
                _ => "sx",
            },
            count: int(*n),
            pct: pct(*n as f64 / total.max(1) as f64),
            width: format!("{:.2}", 100.0 * *n as f64 / total.max(1) as f64),
        })
        .collect()
}

/// One decision as the report shows it: the checks the detector ran, with their arithmetic.
pub fn ban_view(d: &Decision, zone: &Zone) -> BanView {
    let b = &d.baseline;
    // The checks the detector ran, as it ran them: nothing is recomputed here.
    let mut checks: Vec<Check> = d
        .checks
        .iter()
        .map(|c| Check {
            name: rule_label(&c.rule).into(),
            fired: c.fired,
            text: c.note.clone(),
        })
        .collect();
    checks.push(Check {
        name: "decided by".into(),
        fired: d.decided_by == DecidedBy::Learned,
        text: match d.decided_by {
            DecidedBy::Learned => format!(
                "the learned level: {} × {:.1} ≥ the floor {}",
                num(d.multiplier_threshold),
                b.level,
                num(d.floor)
            ),
            DecidedBy::Floor => format!(
                "the floor {} (the learned limit was lower, or too few clients to learn from)",
                num(d.floor)
            ),
        },
    });
    BanView {
        at: zone.datetime(d.at),
        rules: d.rules.iter().map(|r| rule_label(r).to_string()).collect(),
        reason: d.reason.clone(),
        window_secs: d.window_secs,
        requests_in_window: int(d.requests_in_window),
        rate: rate(d.rate_per_sec),
        baseline: format!(
            "{} window: limit {:.1} ({}); learned level {:.1} = the {} of {} client-hours' busiest {} s (median {:.1}, {}); site page-error share {}",
            d.window.name(),
            d.limit,
            match d.decided_by {
                DecidedBy::Learned => "learned",
                DecidedBy::Floor => "floor",
            },
            b.level,
            pct(b.quantile),
            int(b.samples),
            d.window_secs,
            b.mean,
            b.source,
            pct(b.error_share)
        ),
        checks,
    }
}

fn ban_list(a: &Analysis, o: &ReportOptions) -> BanList {
    let bans = bans_of(&a.decisions);
    let mut ips: Vec<IpAddr> = bans.iter().map(|b| b.ip).collect();
    ips.sort();
    let v6 = ips.iter().filter(|i| i.is_ipv6()).count();
    let v4 = ips.len() - v6;
    let r = &o.rules;
    let commands = rulesets::apply_commands(r, "", v6 > 0);
    let mut steps = Vec::new();
    steps.push(Step {
        title: "iptables".into(),
        note: format!(
            "Refills chain {} with one DROP per IP; the jump from {} is added only if missing. Safe to run again.",
            rulesets::hook_rule(r).last().cloned().unwrap_or_default(),
            rulesets::hook_rule(r).first().cloned().unwrap_or_default()
        ),
        commands: commands.iptables,
    });
    steps.push(Step {
        title: "ipset (or instead of iptables)".into(),
        note: "Fills the sets atomically (temporary set + swap), then one match rule per family; \
               entries expire after their ban length."
            .into(),
        commands: commands.ipset,
    });
    steps.push(Step {
        title: "nftables (or instead of both)".into(),
        note:
            "One atomic transaction in bouncer's own table; loading it again replaces it exactly; \
             elements expire after their ban length."
                .into(),
        commands: commands.nft,
    });
    steps.push(Step {
        title: "CrowdSec".into(),
        note: "Imports one decision per IP with its duration.".into(),
        commands: vec!["cscli decisions import -i decisions.csv".into()],
    });
    BanList {
        count: ips.len(),
        v4,
        v6,
        dir: shell_quote(&o.out_dir),
        ips: ips.iter().map(|i| i.to_string()).collect(),
        ban_secs: duration(a.settings.ban_secs as i64),
        steps,
    }
}

/// Every setting with its default, in the struct's order.
fn settings_rows(s: &DetectSettings) -> Vec<Setting> {
    let cur = serde_json::to_value(s).unwrap_or_default();
    let def = serde_json::to_value(DetectSettings::default()).unwrap_or_default();
    let (Some(cur), Some(def)) = (cur.as_object(), def.as_object()) else {
        return Vec::new();
    };
    cur.iter()
        .map(|(k, v)| {
            let d = def.get(k).cloned().unwrap_or_default();
            Setting {
                name: k.clone(),
                value: json_text(v),
                default: json_text(&d),
                changed: *v != d,
            }
        })
        .collect()
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) if a.is_empty() => "none".into(),
        serde_json::Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(", "),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn anchor(ip: &IpAddr) -> String {
    format!("ip-{}", ip.to_string().replace([':', '.'], "-"))
}

fn rule_label(r: &Rule) -> &'static str {
    match r {
        Rule::Zscore | Rule::GlobalZscore => "z-score",
        Rule::Multiplier | Rule::GlobalMultiplier => "multiplier",
        Rule::ErrorSurge => "error surge",
        Rule::Crowd => "crowd",
        Rule::Breadth => "breadth",
    }
}

fn plural<'s>(n: usize, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `1 234 567` (narrow no-break spaces).
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
    out
}

/// `5.6/s`, `0.42/s`.
pub fn rate(r: f64) -> String {
    let s = if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    };
    format!("{s}/s")
}

/// `59%`, `1.3%`, `100%`.
pub fn pct(f: f64) -> String {
    let p = f * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `3 s`, `8 min`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s % 60 == 0 => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 if s % 3600 < 60 => format!("{} h", s / 3600),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ if s % 86400 < 3600 => format!("{} d", s / 86400),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(int(42), "42");
        assert_eq!(rate(5.566), "5.6/s");
        assert_eq!(rate(0.4167), "0.42/s");
        assert_eq!(pct(0.5914), "59%");
        assert_eq!(pct(0.0133), "1.3%");
        assert_eq!(duration(3), "3 s");
        assert_eq!(duration(480), "8 min");
        assert_eq!(duration(86_148), "23 h 55 min");
        assert_eq!(duration(4 * 3600), "4 h");
        assert_eq!(shell_quote("bouncer-out"), "bouncer-out");
        assert_eq!(shell_quote("my dir"), "'my dir'");
    }

    #[test]
    fn settings_rows_flag_only_changed_values() {
        let s = DetectSettings {
            window_secs: 30,
            ..DetectSettings::default()
        };
        let rows = settings_rows(&s);
        let changed: Vec<_> = rows.iter().filter(|r| r.changed).collect();
        assert_eq!(changed.len(), 1);
        assert_eq!(
            (
                changed[0].name.as_str(),
                changed[0].value.as_str(),
                changed[0].default.as_str()
            ),
            ("window_secs", "30", "60")
        );
    }
}
