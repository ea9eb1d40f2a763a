//! Windows, baselines and rules, driven by log time alone (the detector has no other clock).

use super::*;

const T0: i64 = 1_700_000_000 - 1_700_000_000 % 3600; // an hour boundary

fn req(ip: &str, t: i64, status: u16) -> Request {
    Request::new(
        ip.parse().unwrap(),
        t,
        "GET",
        &format!("/p{}", t % 7),
        status,
        100,
        "test",
    )
}

/// `clients` normal clients, each making `per_min` requests per minute, for `minutes`.
fn background(d: &mut Detector, from: i64, minutes: i64, clients: u32, per_min: i64) {
    for m in 0..minutes {
        for s in 0..60 {
            let t = from + m * 60 + s;
            for c in 0..clients {
                if (s + c as i64 * 7) % (60 / per_min) == 0 {
                    d.observe(&req(
                        &format!("198.51.100.{}", c + 1),
                        t,
                        if s % 29 == 0 { 404 } else { 200 },
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

#[test]
fn window_counts_slide_with_log_time() {
    let mut w = Window::default();
    for t in 0..100 {
        w.add(t, t % 10 == 0);
    }
    w.evict(99, 60);
    assert_eq!((w.requests, w.errors), (60, 6));
    w.evict(200, 60);
    assert_eq!((w.requests, w.buckets.len()), (0, 0));
}

#[test]
fn flood_is_banned_and_normal_clients_are_not() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 10, 40, 6);
    // One client goes to 10 requests/s for 30 s: 300 in the window.
    for t in T0 + 600..T0 + 630 {
        for _ in 0..10 {
            d.observe(&req("203.0.113.66", t, 200));
        }
        d.observe(&req("198.51.100.1", t, 200));
    }
    background(&mut d, T0 + 630, 5, 40, 6);
    d.finish();
    assert_eq!(bans(&d), vec!["203.0.113.66"]);
    let ban = &d.decisions()[0];
    assert!(
        ban.rules.contains(&"multiplier".to_string()),
        "{:?}",
        ban.rules
    );
    // Banned when the window first crossed 5 × the floored mean (25 → 125 requests).
    assert_eq!(ban.requests_in_window, 130);
    assert_eq!(ban.at, T0 + 612);
    assert_eq!(ban.baseline.mean, 25.0);
    assert!(ban.baseline.mean_learned < 25.0);
    assert!(ban.top_paths.iter().map(|p| p.count).sum::<u64>() <= ban.requests_total);
}

#[test]
fn nothing_is_decided_during_warmup() {
    let mut d = Detector::new(DetectSettings::default());
    for t in T0..T0 + 100 {
        for _ in 0..20 {
            d.observe(&req("203.0.113.66", t, 200));
        }
    }
    d.finish();
    assert!(d.decisions().is_empty());
}

#[test]
fn below_min_requests_nothing_is_banned_even_with_a_tiny_baseline() {
    let s = DetectSettings {
        ip_mean_floor: 0.1,
        ip_std_floor: 0.1,
        ..Default::default()
    };
    let mut d = Detector::new(s);
    background(&mut d, T0, 10, 5, 1);
    for t in T0 + 600..T0 + 629 {
        d.observe(&req("203.0.113.5", t, 200)); // 29 requests < min_requests 30
    }
    d.finish();
    assert!(bans(&d).is_empty());
}

#[test]
fn error_surge_tightens_thresholds_to_70_percent() {
    // 100 requests: 4× the floored mean. Not banned with 200s (limit 5×), banned with 401s (3.5×).
    for (status, banned) in [(200, false), (401, true)] {
        let mut d = Detector::new(DetectSettings::default());
        background(&mut d, T0, 10, 40, 6);
        for i in 0..100 {
            d.observe(&req("203.0.113.9", T0 + 600 + i / 2, status));
        }
        background(&mut d, T0 + 650, 3, 40, 6);
        d.finish();
        assert_eq!(
            bans(&d).contains(&"203.0.113.9".to_string()),
            banned,
            "status {status}"
        );
        if banned {
            let b = &d.decisions()[0];
            assert!(b.rules.contains(&"error_surge".to_string()));
            assert!(
                (b.multiplier_threshold - 3.5).abs() < 1e-9 && (b.z_threshold - 2.1).abs() < 1e-9
            );
        }
    }
}

#[test]
fn one_ban_per_episode_and_a_new_episode_after_quiet() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 10, 20, 6);
    let burst = |d: &mut Detector, from: i64| {
        for t in from..from + 60 {
            for _ in 0..5 {
                d.observe(&req("203.0.113.7", t, 200));
            }
        }
    };
    burst(&mut d, T0 + 600);
    burst(&mut d, T0 + 700); // same episode (quiet < 600 s)
    background(&mut d, T0 + 760, 15, 20, 6);
    burst(&mut d, T0 + 1700); // quiet > 600 s: new episode
    d.finish();
    let b = bans(&d);
    assert_eq!(b, vec!["203.0.113.7", "203.0.113.7"]);
}

#[test]
fn banned_traffic_does_not_poison_the_baseline() {
    let mut d = Detector::new(DetectSettings {
        ip_mean_floor: 1.0,
        ip_std_floor: 1.0,
        ..Default::default()
    });
    background(&mut d, T0, 10, 20, 6);
    for t in T0 + 600..T0 + 1200 {
        for _ in 0..10 {
            d.observe(&req("203.0.113.8", t, 200));
        }
        if t % 10 == 0 {
            d.observe(&req("198.51.100.1", t, 200));
        }
    }
    d.finish();
    let (ip_base, _) = d.baselines();
    // Flooder excluded: the learned per-IP mean stays near the background's 6/min.
    assert!(ip_base.unwrap().mean_learned < 10.0, "{:?}", ip_base);
}

#[test]
fn allowlist_loopback_and_private_ranges() {
    let flood = |d: &mut Detector, ip: &str| {
        for t in T0 + 600..T0 + 660 {
            for _ in 0..10 {
                d.observe(&req(ip, t, 200));
            }
        }
    };
    let s = DetectSettings {
        allowlist: vec!["203.0.113.0/24".parse().unwrap()],
        ..Default::default()
    };
    let mut d = Detector::new(s.clone());
    background(&mut d, T0, 10, 20, 6);
    for ip in ["203.0.113.1", "127.0.0.1", "::1", "10.1.2.3", "2001:db8::9"] {
        flood(&mut d, ip);
    }
    d.finish();
    assert_eq!(bans(&d), vec!["10.1.2.3", "2001:db8::9"]); // private banned unless asked
    let mut d = Detector::new(DetectSettings {
        allow_private: true,
        ..s
    });
    background(&mut d, T0, 10, 20, 6);
    flood(&mut d, "10.1.2.3");
    flood(&mut d, "fd00::1");
    d.finish();
    assert!(bans(&d).is_empty());
}

#[test]
fn site_wide_spike_alerts_with_top_contributors() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 15, 40, 6); // 240/min site-wide
    for t in T0 + 900..T0 + 960 {
        for c in 0..100 {
            // 100 new clients at 30/min each: none stands out, the site does.
            if t % 2 == 0 {
                d.observe(&req(&format!("192.0.2.{}", c + 1), t, 200));
            }
        }
    }
    background(&mut d, T0 + 960, 3, 40, 6);
    d.finish();
    let alerts: Vec<_> = d
        .decisions()
        .iter()
        .filter(|x| x.action == Action::Alert)
        .collect();
    assert_eq!(alerts.len(), 1, "{:#?}", d.decisions());
    assert!(bans(&d).is_empty());
    assert!(!alerts[0].top_ips.is_empty());
    assert!(alerts[0].rules.iter().any(|r| r.starts_with("global_")));
}

#[test]
fn advance_to_evaluates_without_a_new_request() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 10, 20, 6);
    for _ in 0..200 {
        d.observe(&req("203.0.113.3", T0 + 600, 200));
    }
    assert!(bans(&d).is_empty()); // second still open
    d.advance_to(T0 + 601); // a tick, as follow does every wall-clock second
    assert_eq!(bans(&d), vec!["203.0.113.3"]);
}

#[test]
fn late_requests_count_in_the_open_second() {
    let mut d = Detector::new(DetectSettings::default());
    d.observe(&req("198.51.100.1", T0 + 10, 200));
    d.observe(&req("198.51.100.1", T0, 200));
    assert_eq!(d.stats().late, 1);
    assert_eq!(d.stats().requests, 2);
}

#[test]
fn state_round_trips_through_json() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 5, 10, 6);
    let text = serde_json::to_string(&d).unwrap();
    let mut back: Detector = serde_json::from_str(&text).unwrap();
    background(&mut d, T0 + 300, 5, 10, 6);
    background(&mut back, T0 + 300, 5, 10, 6);
    d.finish();
    back.finish();
    assert_eq!(d.baselines(), back.baselines());
    assert_eq!(d.stats(), back.stats());
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
    assert!(k.keys.len() <= TopK::CAP);
    assert_eq!(k.top(1)[0].value, "/heavy");
    assert_eq!(k.top(1)[0].count, 3334);
    // Repeats of the last key are counted inline and show in the top list at once.
    for _ in 0..10 {
        add(&mut k, "/heavy");
    }
    assert_eq!(k.top(1)[0].count, 3344);
    // A replaced slot inherits the evicted count; long keys are clipped.
    let long = "x".repeat(2 * TopK::MAX_KEY);
    add(&mut k, &long);
    let top = k.top(TopK::CAP);
    let clipped = top.iter().find(|c| c.value.starts_with('x')).unwrap();
    assert_eq!(clipped.value, format!("{}…", &long[..TopK::MAX_KEY]));
    assert!(clipped.count > 1);
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
fn window_counts_the_last_window_secs() {
    let mut w = Window::default();
    for (t, e) in [
        (10, false),
        (10, true),
        (11, false),
        (15, true),
        (15, false),
    ] {
        w.add(t, e);
    }
    assert_eq!((w.requests, w.errors, w.newest()), (5, 2, Some(15)));
    w.evict(15, 5); // keeps (10, 15]
    assert_eq!((w.requests, w.errors), (3, 1));
    w.evict(19, 5); // keeps (14, 19]
    assert_eq!((w.requests, w.errors), (2, 1));
    w.evict(20, 5); // nothing left
    assert_eq!((w.requests, w.errors, w.newest()), (0, 0, None));
    w.add(30, true);
    assert_eq!((w.requests, w.errors, w.newest()), (1, 1, Some(30)));
}

#[test]
fn timeline_and_banned_ip_series_for_the_report() {
    let mut d = Detector::new(DetectSettings::default());
    background(&mut d, T0, 10, 20, 6);
    for t in T0 + 600..T0 + 660 {
        for _ in 0..5 {
            d.observe(&req("203.0.113.7", t, 200));
        }
    }
    background(&mut d, T0 + 660, 5, 20, 6);
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
    assert_eq!(tl[10].requests, 300); // the flood's minute (background resumes at minute 11)
    assert!(tl[10].ip_mean >= 25.0 && tl[0].ip_mean == 0.0);
    let series = d.ip_series(&"203.0.113.7".parse().unwrap()).unwrap();
    assert_eq!(series.iter().map(|p| p.requests).sum::<u32>(), 300);
    assert!(d.ip_series(&"198.51.100.1".parse().unwrap()).is_none());
}
