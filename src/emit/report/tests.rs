use super::*;
use crate::detect::decision::BaselineSource;
use crate::detect::{
    Action, BaselineSnapshot, Check, Count, DecidedBy, Decision, DetectSettings, Rule, SeriesPoint,
    TimelinePoint, Window,
};
use crate::ingest::FileReport;
use std::collections::BTreeMap;
use std::net::IpAddr;

const T0: i64 = 1_431_856_800; // 2015-05-17T10:00:00Z
const HOSTILE: &str =
    "/\"><script>document.title='pwned'</script><img src=x onerror=alert(1)></svg>";

fn baseline() -> BaselineSnapshot {
    BaselineSnapshot {
        mean: 25.0,
        std: 35.0,
        mean_learned: 4.0,
        std_learned: 8.0,
        error_share: 0.01,
        source: BaselineSource::Rolling,
        samples: 18,
        level: 24.0,
        quantile: 0.99,
    }
}

fn ban(ip: &str, at: i64, multiplier: f64) -> Decision {
    Decision {
        action: Action::Ban,
        ip: Some(ip.parse().unwrap()),
        at,
        rules: vec![Rule::Multiplier, Rule::ErrorSurge],
        reason: format!("{HOSTILE} reason"),
        window: Window::Minute,
        window_secs: 60,
        requests_in_window: 334,
        rate_per_sec: 334.0 / 60.0,
        error_share: 1.0,
        baseline: baseline(),
        z: 8.8,
        multiplier,
        z_threshold: 2.1,
        multiplier_threshold: 3.5,
        measured: 334.0,
        limit: 84.0,
        floor: 120.0,
        decided_by: DecidedBy::Floor,
        checks: vec![
            Check {
                rule: Rule::Multiplier,
                value: 334.0,
                limit: 84.0,
                fired: true,
                note: format!("load 334.0 in 60 s > 84.0 {HOSTILE}"),
            },
            Check {
                rule: Rule::ErrorSurge,
                value: 1.0,
                limit: 0.15,
                fired: true,
                note: "100% page errors".into(),
            },
        ],
        requests_total: 655,
        first_seen: at - 2,
        last_seen: at + 2,
        top_paths: vec![Count {
            value: HOSTILE.into(),
            count: 334,
        }],
        status_mix: BTreeMap::from([(499, 330), (200, 4)]),
        user_agents: vec![Count {
            value: "javascript:alert(1)".into(),
            count: 334,
        }],
        top_ips: vec![],
        duration_secs: 14400,
    }
}

fn analysis(decisions: Vec<Decision>) -> Analysis {
    let timeline: Vec<TimelinePoint> = (0..600)
        .map(|i| TimelinePoint {
            t: T0 + i * 60,
            requests: if i == 400 { 900 } else { 3 + (i % 5) as u32 },
            errors: if i == 400 { 880 } else { (i % 2) as u32 },
            ip_mean: if i > 2 { 25.0 } else { 0.0 },
            ip_std: if i > 2 { 35.0 } else { 0.0 },
            site_mean: if i > 2 { 60.0 } else { 0.0 },
            site_std: if i > 2 { 60.0 } else { 0.0 },
        })
        .filter(|p| p.t != T0 + 60 * 100) // a period without traffic
        .collect();
    let mut ip_series = BTreeMap::new();
    for d in &decisions {
        if let Some(ip) = d.ip {
            ip_series.insert(
                ip,
                vec![
                    SeriesPoint {
                        t: T0 + 399 * 60,
                        requests: 2,
                        errors: 0,
                        pages: 2,
                        load: 2.0,
                    },
                    SeriesPoint {
                        t: T0 + 400 * 60,
                        requests: 655,
                        errors: 650,
                        pages: 655,
                        load: 655.0,
                    },
                ],
            );
        }
    }
    Analysis {
        schema_version: 1,
        bouncer_version: "0.1.0".into(),
        inputs: vec![FileReport {
            name: format!("access{HOSTILE}.log"),
            format: "combined".into(),
            lines: 3000,
            requests: 2999,
            parse_errors: 1,
            error_kinds: BTreeMap::from([("invalid client address".to_string(), 1)]),
            error_examples: vec![format!("access.log:17: invalid client address {HOSTILE}")],
            ..Default::default()
        }],
        lines: 3000,
        requests: 2999,
        parse_errors: 1,
        late_requests: 0,
        distinct_ips: 40,
        distinct_ips_estimated: false,
        first_time: Some("2015-05-17T10:00:00Z".into()),
        last_time: Some("2015-05-17T19:59:59Z".into()),
        peak_window_requests: 900,
        peak_at: Some("2015-05-17T16:40:30Z".into()),
        baseline_ip: Some(baseline()),
        baseline_global: Some(BaselineSnapshot {
            mean: 60.0,
            std: 60.0,
            mean_learned: 5.0,
            ..baseline()
        }),
        limits: Vec::new(),
        settings: DetectSettings::default(),
        decisions,
        timeline,
        ip_series,
    }
}

fn render_default(a: &Analysis) -> String {
    render(a, &ReportOptions::default()).unwrap()
}

#[test]
fn log_strings_are_escaped_everywhere() {
    let html = render_default(&analysis(vec![ban("192.0.2.1", T0 + 400 * 60 + 17, 13.4)]));
    assert!(!html.contains("<script"), "raw <script> in the report");
    assert!(!html.contains("<img"), "raw <img> in the report");
    assert!(html.contains("&lt;script&gt;document.title="));
    assert!(html.contains("javascript:alert(1)"), "shown as text");
    assert!(!html.contains("href=\"javascript"));
    // The only SVG roots are the plots bouncer drew.
    assert_eq!(html.matches("<svg").count(), 3);
    assert_eq!(html.matches("</svg>").count(), 3);
}

#[test]
fn sections_come_in_order_with_counts() {
    let a = analysis(vec![
        ban("192.0.2.1", T0 + 400 * 60 + 17, 4.0),
        ban("192.0.2.2", T0 + 400 * 60 + 18, 13.4),
    ]);
    let html = render_default(&a);
    let ids = [
        "id=\"header\"",
        "id=\"summary\"",
        "id=\"timeline\"",
        "id=\"banned\"",
        "id=\"anomalies\"",
        "id=\"apply\"",
        "id=\"appendix\"",
    ];
    let pos: Vec<usize> = ids.iter().map(|i| html.find(i).expect(i)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    assert!(html.contains("2 IPs banned"));
    // Highest score first.
    assert!(html.find("id=\"ip-192-0-2-2\"").unwrap() < html.find("id=\"ip-192-0-2-1\"").unwrap());
    for cmd in [
        "iptables-restore --noflush &lt; bans.rules",
        "ipset restore &lt; bans.ipset",
        "nft -f bans.nft",
        "cscli decisions import -i decisions.csv",
    ] {
        assert!(html.contains(cmd), "{cmd}");
    }
}

#[test]
fn no_bans_says_so_without_empty_plots() {
    let html = render_default(&analysis(vec![]));
    assert!(html.contains("No IP was banned and no site-wide anomaly was found."));
    assert!(html.contains("Nothing to apply"));
    // Only the two site-wide plots; no per-IP plot.
    assert_eq!(html.matches("<svg").count(), 2);
}

#[test]
fn beyond_the_plot_limit_ips_are_table_rows() {
    let bans: Vec<Decision> = (1..=5)
        .map(|i| {
            ban(
                &format!("198.51.100.{i}"),
                T0 + 400 * 60 + i,
                3.0 + i as f64,
            )
        })
        .collect();
    let o = ReportOptions {
        plot_limit: 2,
        ..ReportOptions::default()
    };
    let html = render(&analysis(bans), &o).unwrap();
    assert_eq!(html.matches("class=\"ipcard\"").count(), 2);
    assert!(html.contains("The other 3 banned IPs"));
    assert_eq!(html.matches("<svg").count(), 2 + 2);
}

#[test]
fn zone_and_changed_settings_show_in_the_header() {
    let mut a = analysis(vec![]);
    a.settings.window_secs = 30;
    let o = ReportOptions {
        zone: Zone::parse("+02:00").unwrap(),
        ..ReportOptions::default()
    };
    let html = render(&a, &o).unwrap();
    assert!(html.contains("2015-05-17 12:00:00 → 2015-05-17 21:59:59"));
    assert!(html.contains("UTC+02:00"));
    assert!(html.contains("<code>window_secs = 30</code>"));
}

#[test]
fn overridden_templates_replace_embedded_ones_and_still_escape() {
    let o = ReportOptions {
        templates: Templates::default().with("report.html", "<p>{{ inputs[0].name }}</p>"),
        ..ReportOptions::default()
    };
    let html = render(&analysis(vec![]), &o).unwrap();
    assert!(html.starts_with("<p>access"));
    assert!(!html.contains("<script"));
    let dir = tempfile::tempdir().unwrap();
    assert!(Templates::load_dir(dir.path()).is_err());
    std::fs::write(dir.path().join("report.css"), "body{}").unwrap();
    let t = Templates::load_dir(dir.path()).unwrap();
    assert_eq!(t.source("report.css", ""), "body{}");
    assert_eq!(t.source("report.html", "embedded"), "embedded");
}

#[test]
fn empty_analysis_renders() {
    let mut a = analysis(vec![]);
    a.timeline.clear();
    a.first_time = None;
    a.last_time = None;
    a.peak_at = None;
    let html = render_default(&a);
    assert!(html.contains("no traffic to plot"));
    assert_eq!(html.matches("<svg").count(), 0);
}

#[test]
fn ipv6_bans_get_ip6tables_commands() {
    let html = render_default(&analysis(vec![ban("2001:db8::1", T0 + 400 * 60, 9.0)]));
    assert!(html.contains("ip6tables-restore --noflush &lt; bans6.rules"));
    assert!(html.contains("id=\"ip-2001-db8--1\""));
    let _: IpAddr = "2001:db8::1".parse().unwrap();
}
