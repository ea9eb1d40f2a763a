//! The terminal summary: what an operator reads first. Pure: `render(&Analysis) -> String`.

use super::rulesets::{apply_commands, RulesetOptions};
use super::Analysis;
use crate::detect::DecidedBy;
use std::fmt::Write;

/// `report`: where the HTML report was written, if it was. `rules`: the names the ban lists were
/// written with (for the commands that apply them).
pub fn render(
    a: &Analysis,
    top: usize,
    out_dir: Option<&str>,
    report: Option<&std::path::Path>,
    rules: &RulesetOptions,
) -> String {
    let mut s = String::new();
    let bans: Vec<_> = a.bans().collect();
    let alerts: Vec<_> = a.alerts().collect();
    let _ = writeln!(
        s,
        "bouncer {} — {} input(s)",
        a.bouncer_version,
        a.inputs.len()
    );
    for f in &a.inputs {
        let _ = writeln!(
            s,
            "  {} [{}{}]: {} lines, {} requests, {} parse errors{}",
            f.name,
            f.format,
            if f.gzip { ", gzip" } else { "" },
            f.lines,
            f.requests,
            f.parse_errors,
            match f.empty_lines {
                0 => String::new(),
                n => format!(", {n} empty lines skipped"),
            }
        );
        if let Some(why) = &f.failed {
            // The reason's first line; its examples follow as the file's error examples.
            let first = why.lines().next().unwrap_or(why);
            let _ = writeln!(s, "    NOT ANALYSED: {}", crate::parse::clip(first, 300));
        }
        for e in &f.error_examples {
            let _ = writeln!(s, "    {}", crate::parse::clip(e, 200));
        }
        if let Some(e) = &f.read_error {
            let _ = writeln!(s, "    warning: {e}");
        }
        for n in &f.notes {
            let _ = writeln!(s, "    note: {n}");
        }
    }
    let _ = writeln!(
        s,
        "lines {}  requests {}  parse errors {}  late {}  distinct IPs {}{}",
        a.lines,
        a.requests,
        a.parse_errors,
        a.late_requests,
        if a.distinct_ips_estimated { "≈" } else { "" },
        a.distinct_ips
    );
    if let (Some(f), Some(l)) = (&a.first_time, &a.last_time) {
        let _ = writeln!(s, "time span {f} → {l}");
    }
    if !a.limits.is_empty() {
        let parts: Vec<String> = a
            .limits
            .iter()
            .map(|l| {
                format!(
                    "{} {:.1} {}/{}s ({})",
                    l.window.name(),
                    l.limit,
                    l.window.measure(),
                    l.secs,
                    match (l.decided_by, l.learned) {
                        (DecidedBy::Learned, _) => format!("learned: the {:.1} level", l.level),
                        (DecidedBy::Floor, Some(x)) => format!("floor; learned {x:.1}"),
                        (DecidedBy::Floor, None) => "floor; too few clients yet".into(),
                    }
                )
            })
            .collect();
        let _ = writeln!(s, "per-client limits at the end: {}", parts.join(" · "));
    }
    if let Some(b) = &a.baseline_ip {
        let _ = writeln!(
            s,
            "learned from {} client-hours ({}); site page-error share {:.1}%",
            b.samples,
            b.source,
            b.error_share * 100.0
        );
    }
    if let Some(b) = &a.baseline_global {
        let _ = writeln!(
            s,
            "site requests per {}s: median {:.1} ± {:.1}; peak {} requests at {}",
            a.settings.window_secs,
            b.mean,
            b.std,
            a.peak_window_requests,
            a.peak_at.as_deref().unwrap_or("-")
        );
    }
    let (learned, floor) = a.bans_by_decider();
    let _ = writeln!(
        s,
        "bans: {} ({learned} by learned limits, {floor} by floors)  alerts: {}",
        bans.len(),
        alerts.len()
    );
    for d in bans.iter().take(top) {
        let ip = d.ip.map(|i| i.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "  BAN   {:<39} {}  {}",
            ip,
            crate::parse::format_time(d.at),
            d.reason
        );
    }
    if bans.len() > top {
        let _ = writeln!(s, "  … {} more bans in decisions.json", bans.len() - top);
    }
    for d in alerts.iter().take(top) {
        let _ = writeln!(
            s,
            "  ALERT {}  {}",
            crate::parse::format_time(d.at),
            d.reason
        );
    }
    if alerts.len() > top {
        let _ = writeln!(
            s,
            "  … {} more alerts in decisions.json",
            alerts.len() - top
        );
    }
    if let Some(dir) = out_dir {
        let in_dir = report.filter(|p| *p == std::path::Path::new(dir).join("report.html"));
        let _ = writeln!(
            s,
            "wrote {dir}/: decisions.json decisions.csv bans.rules bans6.rules bans.ipset bans.nft{}",
            if in_dir.is_some() { " report.html" } else { "" }
        );
        if let Some(p) = report.filter(|_| in_dir.is_none()) {
            let _ = writeln!(s, "wrote report: {}", p.display());
        }
        if !bans.is_empty() {
            let v6 = bans.iter().any(|d| d.ip.is_some_and(|ip| ip.is_ipv6()));
            let c = apply_commands(rules, dir, v6);
            for (label, commands) in [
                ("apply (iptables):", &c.iptables),
                ("   or (ipset):", &c.ipset),
                ("   or (nft):", &c.nft),
            ] {
                for (i, cmd) in commands.iter().enumerate() {
                    let _ = writeln!(s, "{:<18}{cmd}", if i == 0 { label } else { "" });
                }
            }
        }
    }
    s
}
