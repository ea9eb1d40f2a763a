//! The model's properties, driven by log time alone (the detector has no other clock): learned
//! limits that decide, page assets and crowds spared, steady clients spared, floods banned on
//! the request that crosses the limit, low-and-slow scanning caught through the error surge.

use super::*;

const T0: i64 = 1_700_000_000 - 1_700_000_000 % 3600; // an hour boundary

fn req_full(ip: &str, t: i64, method: &str, path: &str, status: u16, ua: &str) -> Request {
    Request::new(ip.parse().unwrap(), t, method, path, status, 100, ua)
}

fn req(ip: &str, t: i64, status: u16) -> Request {
    req_full(ip, t, "GET", &format!("/p{}", t % 7), status, "test")
}

/// Settings for tests: decisions after a minute.
fn settings() -> DetectSettings {
    DetectSettings {
        warmup_secs: 60,
        ..Default::default()
    }
}

/// `clients` visitors from `from` for `minutes`: each loads a page and 10 assets once per
/// minute at its own second, and client c's busiest minute grows with c (one to four pages), so
/// the learned level has a spread.
fn background(d: &mut Detector, from: i64, minutes: i64, clients: u32) {
    for m in 0..minutes {
        for s in 0..60 {
            let t = from + m * 60 + s;
            for c in 0..clients {
                if (c as i64 * 7) % 60 != s {
                    continue;
                }
                let ip = format!("198.51.{}.{}", 100 + c / 250, c % 250 + 1);
                for p in 0..=(c % 4) {
                    d.observe(&req_full(
                        &ip,
                        t,
                        "GET",
                        &format!("/page{p}"),
                        200,
                        "visitor",
                    ));
                }
                for a in 0..10 {
                    d.observe(&req_full(
                        &ip,
                        t,
                        "GET",
                        &format!("/img/{a}.png"),
                        200,
                        "visitor",
                    ));
                }
            }
        }
    }
}

fn bans(d: &Detector) -> Vec<String> {
    d.decisions()
        .iter()
        .filter(|x| x.action == Action::Ban)
        .map(|x| x.ip.unwrap().to_string())
        .collect()
}

fn ban_of<'d>(d: &'d Detector, ip: &str) -> Option<&'d Decision> {
    d.decisions()
        .iter()
        .find(|x| x.ip.map(|i| i.to_string()).as_deref() == Some(ip))
}

/// `n` page requests from `ip` spread evenly over `secs` seconds starting at `from`.
fn pages(d: &mut Detector, ip: &str, from: i64, secs: i64, n: i64, status: u16, ua: &str) {
    for i in 0..n {
        let t = from + i * secs / n;
        d.observe(&req_full(
            ip,
            t,
            "GET",
            &format!("/x{}", i % 50),
            status,
            ua,
        ));
    }
}

#[test]
fn until_enough_clients_are_seen_the_limits_are_cautious() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    let lim = d.limits();
    assert!(lim.iter().all(|l| l.learned.is_none()), "{lim:?}");
    let limits: Vec<f64> = lim.iter().map(|l| l.limit).collect();
    assert_eq!(limits, [60.0, 120.0, 180.0], "the floors × 3");
}

#[test]
fn a_flood_is_banned_on_the_request_that_crosses_the_short_limit() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    // 100 requests in one second: the short limit (60, untrained) is crossed by the 61st.
    for _ in 0..100 {
        d.observe(&req("203.0.113.66", T0 + 300, 200));
    }
    assert_eq!(bans(&d), vec!["203.0.113.66"], "banned within the second");
    let b = &d.decisions()[0];
    assert_eq!(
        (b.window, b.at, b.requests_in_window),
        (Window::Short, T0 + 300, 61)
    );
    assert_eq!(
        b.decided_by,
        DecidedBy::Floor,
        "20 clients: too few to learn"
    );
    assert!(b.rules.contains(&Rule::Multiplier));
    assert!(b
        .checks
        .iter()
        .any(|c| c.rule == Rule::Zscore && c.note.contains("no own history")));
}

#[test]
fn nothing_is_decided_during_warmup() {
    let mut d = Detector::new(DetectSettings::default());
    for t in T0..T0 + 100 {
        for _ in 0..100 {
            d.observe(&req("203.0.113.66", t, 200));
        }
    }
    d.finish();
    assert!(d.decisions().is_empty());
}

#[test]
fn learned_limits_decide_once_there_are_enough_clients() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 70, 300); // more than an hour of 300 clients
    let lim = d.limits();
    // Busiest 10 s and minute of a client: 4 pages + 10 assets = 5.0 → level 5 → learned 30:
    // above the short floor (20), below the minute floor (40); ten visits in the long window:
    // level 50 → learned 300 > 60.
    assert!(lim.iter().all(|l| l.learned.is_some()), "{lim:?}");
    let by: Vec<_> = lim.iter().map(|l| l.decided_by).collect();
    assert_eq!(
        by,
        [DecidedBy::Learned, DecidedBy::Floor, DecidedBy::Learned],
        "{lim:?}"
    );
    assert!((lim[2].limit - 300.0).abs() < 1e-6, "{lim:?}");
    // With lower floors the learned limits decide, and a ban says so.
    let mut d = Detector::new(DetectSettings {
        short_floor: 5.0,
        minute_floor: 5.0,
        ..settings()
    });
    background(&mut d, T0, 70, 300);
    assert_eq!(d.limits()[1].decided_by, DecidedBy::Learned);
    assert!(
        (d.limits()[1].limit - 30.0).abs() < 1e-6,
        "{:?}",
        d.limits()
    );
    pages(&mut d, "203.0.113.1", T0 + 4200, 60, 40, 200, "bot");
    let b = ban_of(&d, "203.0.113.1").expect("40 pages a minute against a learned 30");
    assert_eq!(
        (b.decided_by, b.window),
        (DecidedBy::Learned, Window::Minute)
    );
    assert!(b.reason.contains("learned"), "{}", b.reason);
    assert_eq!(b.baseline.level, 5.0);
    assert!(bans(&d).len() == 1, "{:?}", bans(&d));
}

#[test]
fn a_page_view_with_its_assets_is_one_visit_not_a_flood() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    // A page and 170 images, 304s and a range request in 20 s: load 1 + 17.1.
    let ip = "203.0.113.20";
    d.observe(&req_full(ip, T0 + 300, "GET", "/shop", 200, "phone"));
    for i in 0..170 {
        let (path, status) = match i % 3 {
            0 => (format!("/img/{i}.jpg"), 200),
            1 => (format!("/img/{i}.webp"), 304),
            _ => ("/brochure.pdf".to_string(), 206),
        };
        d.observe(&req_full(
            ip,
            T0 + 300 + i / 9,
            "GET",
            &path,
            status,
            "phone",
        ));
    }
    // The same number of page requests is a flood.
    pages(&mut d, "203.0.113.21", T0 + 300, 20, 171, 200, "bot");
    d.finish();
    assert_eq!(bans(&d), vec!["203.0.113.21"]);
}

#[test]
fn error_surge_tightens_thresholds_to_70_percent() {
    // 50 page requests in 10 s: below the short limit 60, above 0.7 × 60 = 42.
    for (status, banned) in [(200, false), (404, true)] {
        let mut d = Detector::new(settings());
        background(&mut d, T0, 5, 20);
        pages(&mut d, "203.0.113.9", T0 + 300, 10, 50, status, "scanner");
        d.finish();
        assert_eq!(
            bans(&d).contains(&"203.0.113.9".to_string()),
            banned,
            "status {status}"
        );
        if banned {
            let b = &d.decisions()[0];
            assert!(b.rules.contains(&Rule::ErrorSurge));
            assert!((b.limit - 42.0).abs() < 1e-9, "{}", b.limit);
            assert!((b.multiplier_threshold - 4.2).abs() < 1e-9, "6 × 0.7");
            assert!((b.z_threshold - 2.1).abs() < 1e-9);
        }
    }
}

#[test]
fn low_and_slow_scanning_is_caught_by_the_long_window() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    // 60 requests a minute for 10 minutes, half of them 404s on distinct paths: never above
    // the short or minute limits, a surge over the long window (180 × 0.7 = 126).
    let ip = "203.0.113.40";
    for i in 0..600 {
        let t = T0 + 300 + i;
        let status = if i % 2 == 0 { 404 } else { 200 };
        d.observe(&req_full(
            ip,
            t,
            "GET",
            &format!("/probe{i}"),
            status,
            "scanner",
        ));
    }
    // The same pace without errors is a busy client, not a scan.
    pages(&mut d, "203.0.113.41", T0 + 300, 600, 600, 200, "client");
    d.finish();
    assert_eq!(bans(&d), vec![ip]);
    let b = &d.decisions()[0];
    assert_eq!(b.window, Window::Long);
    assert!(b.rules.contains(&Rule::ErrorSurge));
    assert!(
        b.at - (T0 + 300) < 240,
        "banned after {} s",
        b.at - T0 - 300
    );
}

#[test]
fn a_monitor_polling_one_missing_page_is_not_a_scan() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    // Every second for an hour, a 404 on the same path (a misconfigured monitor).
    for t in T0 + 300..T0 + 3900 {
        d.observe(&req_full(
            "203.0.113.50",
            t,
            "GET",
            "/health",
            404,
            "monitor",
        ));
    }
    d.finish();
    assert!(bans(&d).is_empty(), "{:#?}", d.decisions());
}

#[test]
fn a_crowd_behind_one_address_is_not_one_client_but_a_rotating_bot_is() {
    let crowd = |d: &mut Detector, ip: &str, status: u16| {
        // 40 user agents, each browsing: 200 page requests a minute in all, for 5 minutes.
        for i in 0..1000 {
            let t = T0 + 300 + i * 300 / 1000;
            let ua = format!("Mozilla/5.0 (Phone {}) Mobile", i % 40);
            d.observe(&req_full(
                ip,
                t,
                "GET",
                &format!("/p{}", i % 13),
                status,
                &ua,
            ));
        }
    };
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    crowd(&mut d, "203.0.113.60", 200);
    // The same stream with one agent is one client above the minute floor.
    pages(
        &mut d,
        "203.0.113.61",
        T0 + 300,
        300,
        1000,
        200,
        "okhttp/4.9",
    );
    // Rotating agents does not help a stream with errors.
    crowd(&mut d, "203.0.113.62", 403);
    d.finish();
    assert_eq!(bans(&d), vec!["203.0.113.61", "203.0.113.62"]);
    let rot = ban_of(&d, "203.0.113.62").unwrap();
    assert!(!rot.rules.contains(&Rule::Crowd));
    assert!(rot.checks.iter().any(|c| c.rule == Rule::Crowd && !c.fired));
}

#[test]
fn a_steady_client_is_not_banned_for_being_steady_but_a_jump_is() {
    // With a low minute limit, a client polling at 50/min for an hour is above the limit from
    // some point on (the limit is 40), but its own history says this is what it does.
    let s = DetectSettings {
        minute_floor: 40.0,
        short_floor: 40.0,
        untrained_factor: 1.0,
        ..settings()
    };
    let mut d = Detector::new(s);
    background(&mut d, T0, 5, 20);
    // Ramp from 20/min to 50/min over 30 minutes, then stay.
    for m in 0..60 {
        let n = (20 + m).min(50);
        pages(
            &mut d,
            "203.0.113.70",
            T0 + 300 + m * 60,
            60,
            n,
            200,
            "poller",
        );
        pages(
            &mut d,
            "203.0.113.71",
            T0 + 300 + m * 60,
            60,
            20,
            200,
            "poller2",
        );
    }
    // The second poller jumps from 20 to 80 a minute.
    pages(
        &mut d,
        "203.0.113.71",
        T0 + 300 + 3600,
        60,
        80,
        200,
        "poller2",
    );
    d.finish();
    assert_eq!(bans(&d), vec!["203.0.113.71"]);
    let b = ban_of(&d, "203.0.113.71").unwrap();
    assert!(b.rules.contains(&Rule::Zscore), "{:?}", b.rules);
    assert!(b.z > 3.0);
}

#[test]
fn one_ban_per_episode_and_a_new_episode_after_quiet() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    pages(&mut d, "203.0.113.7", T0 + 300, 10, 100, 200, "bot");
    pages(&mut d, "203.0.113.7", T0 + 400, 10, 100, 200, "bot"); // same episode
    pages(&mut d, "203.0.113.7", T0 + 1100, 10, 100, 200, "bot"); // quiet ≥ 600 s
    d.finish();
    assert_eq!(bans(&d), vec!["203.0.113.7", "203.0.113.7"]);
}

#[test]
fn banned_clients_do_not_feed_the_learned_levels() {
    let run = |flood: bool| {
        let mut d = Detector::new(settings());
        background(&mut d, T0, 10, 300);
        if flood {
            for c in 0..3 {
                pages(
                    &mut d,
                    &format!("203.0.113.{c}"),
                    T0 + 600,
                    10,
                    1000,
                    200,
                    "bot",
                );
            }
        }
        background(&mut d, T0 + 660, 60, 300);
        d.limits()
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn allowlist_loopback_and_private_ranges() {
    let flood = |d: &mut Detector, ip: &str| pages(d, ip, T0 + 300, 10, 200, 200, "bot");
    let s = DetectSettings {
        allowlist: vec!["203.0.113.0/24".parse().unwrap()],
        ..settings()
    };
    let mut d = Detector::new(s.clone());
    background(&mut d, T0, 5, 20);
    for ip in ["203.0.113.1", "127.0.0.1", "::1", "10.1.2.3", "2001:db8::9"] {
        flood(&mut d, ip);
    }
    d.finish();
    assert_eq!(bans(&d), vec!["10.1.2.3", "2001:db8::9"]); // private banned unless asked
    let mut d = Detector::new(DetectSettings {
        allow_private: true,
        ..s
    });
    background(&mut d, T0, 5, 20);
    flood(&mut d, "10.1.2.3");
    flood(&mut d, "fd00::1");
    d.finish();
    assert!(bans(&d).is_empty());
}

#[test]
fn a_broad_surge_alerts_and_one_busy_client_does_not() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 30, 60);
    // One client at 100 pages a minute: the per-client rules' business, not an alert.
    pages(&mut d, "203.0.113.80", T0 + 1800, 60, 100, 200, "busy");
    background(&mut d, T0 + 1860, 5, 60);
    // 300 new clients at 20 pages a minute each: none stands out, the site does.
    for c in 0..300 {
        let ip = format!("{}.{}", ["192.0.2", "198.18.0"][c / 150], c % 150 + 1);
        pages(&mut d, &ip, T0 + 2160, 60, 20, 200, "crowd");
    }
    background(&mut d, T0 + 2220, 5, 60);
    d.finish();
    let alerts: Vec<_> = d
        .decisions()
        .iter()
        .filter(|x| x.action == Action::Alert)
        .collect();
    assert_eq!(alerts.len(), 1, "{:#?}", alerts);
    assert!(alerts[0].at >= T0 + 2160 && alerts[0].at < T0 + 2220 + 60);
    assert!(!alerts[0].top_ips.is_empty());
    assert!(alerts[0].rules.contains(&Rule::GlobalZscore));
}

#[test]
fn late_lines_count_in_their_own_second_and_older_ones_are_left_out() {
    let mut d = Detector::new(settings());
    d.observe(&req("198.51.100.1", T0 + 100, 200));
    d.observe(&req("198.51.100.1", T0 + 50, 200)); // 50 s late: within the minute
    d.observe(&req("198.51.100.1", T0 + 10, 200)); // 90 s late: left out
    assert_eq!((d.stats().late, d.stats().requests), (1, 2));
    let st = &d.ips[&"198.51.100.1".parse().unwrap()];
    assert_eq!(
        st.secs.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![T0 + 50, T0 + 100]
    );
}

#[test]
fn state_round_trips_through_json() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 5, 20);
    let text = serde_json::to_string(&d).unwrap();
    let mut back: Detector = serde_json::from_str(&text).unwrap();
    for x in [&mut d, &mut back] {
        background(x, T0 + 300, 5, 20);
        pages(x, "203.0.113.1", T0 + 600, 10, 100, 200, "bot");
        x.finish();
    }
    assert_eq!(d.baselines(), back.baselines());
    assert_eq!(d.stats(), back.stats());
    assert_eq!(d.decisions(), back.decisions());
}

#[test]
fn top_k_is_bounded_and_keeps_heavy_hitters() {
    let mut k = TopK::default();
    let add = |k: &mut TopK, key: &str| k.add(crate::parse::key_hash(key), || key);
    for i in 0..10_000 {
        add(&mut k, &format!("/rare/{i}"));
        if i % 3 == 0 {
            add(&mut k, "/heavy");
        }
    }
    assert_eq!(k.top(1)[0].value, "/heavy");
    assert_eq!(k.top(1)[0].count, 3334);
    assert!(k.top(100).len() <= 24);
    for _ in 0..10 {
        add(&mut k, "/heavy");
    }
    assert_eq!(k.top(1)[0].count, 3344);
}

#[test]
fn status_counts_inline_and_beyond() {
    let mut s = StatusCounts::default();
    for code in [200, 200, 404, 301, 500, 500, 404, 418] {
        s.add(code);
    }
    let m = s.to_map();
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        [(200, 2), (301, 1), (404, 2), (418, 1), (500, 2)]
    );
}

#[test]
fn timeline_and_banned_ip_series_for_the_report() {
    let mut d = Detector::new(settings());
    background(&mut d, T0, 10, 20);
    pages(&mut d, "203.0.113.7", T0 + 600, 60, 300, 200, "bot");
    background(&mut d, T0 + 660, 5, 20);
    d.finish();
    let tl = d.timeline();
    assert_eq!(
        tl.len(),
        16,
        "one point per minute with traffic, the last one included"
    );
    assert_eq!(
        tl.iter().map(|p| p.requests as u64).sum::<u64>(),
        d.stats().requests
    );
    assert_eq!(
        tl[10].ip_mean, 120.0,
        "the minute limit in force (untrained floor)"
    );
    let series = d.ip_series(&"203.0.113.7".parse().unwrap()).unwrap();
    assert_eq!(series.iter().map(|p| p.requests).sum::<u32>(), 300);
    assert!(d.ip_series(&"198.51.100.1".parse().unwrap()).is_none());
}
