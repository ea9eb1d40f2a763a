//! `bouncer analyze` on real logs: labelled mixtures, format equivalence, rotated sets, stdin.

use crate::common::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

#[test]
fn mixture_bans_every_attacker_and_no_background_ip() {
    let out = tempfile::tempdir().unwrap();
    let a = analyze_ok(&[&fixture("mixture.log")], out.path(), &[]);
    let labels = labels();
    let banned: BTreeSet<String> = banned(&a).into_iter().collect();
    let attackers: BTreeSet<String> = strings(&labels["attackers"]).into_iter().collect();
    assert_eq!(
        banned, attackers,
        "bans must be exactly the labelled attackers"
    );
    let background: BTreeSet<String> = strings(&labels["background_ips"]).into_iter().collect();
    assert!(banned.is_disjoint(&background));
    // Every decision explains itself.
    for d in decisions_of(&a, "ban") {
        for key in [
            "rules",
            "reason",
            "requests_in_window",
            "baseline",
            "z",
            "multiplier",
            "error_share",
            "first_seen",
            "last_seen",
            "top_paths",
            "status_mix",
            "at",
            "window",
            "measured",
            "limit",
            "decided_by",
            "checks",
        ] {
            assert!(!d[key].is_null(), "ban lacks {key}: {d}");
        }
        assert!(d["baseline"]["level"].as_f64().unwrap() > 0.0);
        assert!(d["measured"].as_f64() > d["limit"].as_f64(), "{d}");
    }
    // The flood is banned within its first second (short window), so no surge of unbanned
    // clients is left for a site-wide alert.
    for ip in ["192.236.195.162", "192.236.195.112", "192.236.194.162"] {
        let d = decisions_of(&a, "ban")
            .into_iter()
            .find(|d| d["ip"] == ip)
            .unwrap();
        assert_eq!(d["window"], "short", "{d}");
    }
    assert!(decisions_of(&a, "alert").is_empty());
    assert_eq!(a["parse_errors"], 0);
    assert_eq!(a["requests"], 4273);
    // The ban lists carry exactly the banned IPs.
    let rules = std::fs::read_to_string(out.path().join("bans.rules")).unwrap();
    for ip in &attackers {
        assert_eq!(
            rules.matches(&format!("-s {ip}/32 ")).count(),
            1,
            "{ip} in bans.rules:\n{rules}"
        );
    }
    let csv = std::fs::read_to_string(out.path().join("decisions.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("duration,reason,scope,type,value"));
    assert_eq!(csv.lines().count(), 1 + attackers.len());
}

#[test]
fn json_conversion_of_the_mixture_gives_the_same_decisions() {
    let (o1, o2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let combined = analyze_ok(&[&fixture("mixture.log")], o1.path(), &[]);
    let json = analyze_ok(&[&fixture("mixture.jsonl")], o2.path(), &[]);
    assert_eq!(json["inputs"][0]["format"], "json");
    assert_eq!(json["parse_errors"], 0);
    assert_eq!(combined["decisions"], json["decisions"]);
}

#[test]
fn alternative_json_field_names_are_mapped() {
    let out = tempfile::tempdir().unwrap();
    let a = analyze_ok(&[&fixture("mixture-alt-fields.jsonl")], out.path(), &[]);
    assert_eq!(
        (a["requests"].as_u64(), a["parse_errors"].as_u64()),
        (Some(1000), Some(0))
    );
    // Same first 1000 lines in combined format, via stdin: same time span and IP count.
    let head: String = std::fs::read_to_string(fixture("mixture.log"))
        .unwrap()
        .lines()
        .take(1000)
        .map(|l| format!("{l}\n"))
        .collect();
    let out2 = tempfile::tempdir().unwrap();
    let b = analyze_stdin(head.as_bytes(), out2.path());
    for k in [
        "requests",
        "distinct_ips",
        "first_time",
        "last_time",
        "decisions",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
}

#[test]
fn quiet_background_bans_nobody() {
    let out = tempfile::tempdir().unwrap();
    let a = analyze_ok(&[&fixture("quiet.log")], out.path(), &[]);
    assert!(banned(&a).is_empty(), "{:?}", banned(&a));
    assert_eq!(a["requests"], 2822);
}

#[test]
fn hackers_log_gz_low_and_slow_bots_are_not_rate_anomalies() {
    // hackers-access.log: 520 spam-registration/login bots, the busiest 150 requests over 5 days.
    // No IP comes near a rate anomaly, so bouncer (a rate detector) bans nobody — see README.
    let out = tempfile::tempdir().unwrap();
    let a = analyze_ok(&[&fixture("hackers.log.gz")], out.path(), &[]);
    assert_eq!(a["inputs"][0]["gzip"], true);
    assert_eq!(
        (a["requests"].as_u64(), a["parse_errors"].as_u64()),
        (Some(3456), Some(0))
    );
    assert_eq!(a["distinct_ips"], 520);
    assert!(banned(&a).is_empty());
}

#[test]
fn stdin_gives_the_same_decisions_as_the_file() {
    let out = tempfile::tempdir().unwrap();
    let file = analyze_ok(&[&fixture("mixture.log")], out.path(), &[]);
    let out2 = tempfile::tempdir().unwrap();
    let stdin = analyze_stdin(&std::fs::read(fixture("mixture.log")).unwrap(), out2.path());
    assert_eq!(stdin["inputs"][0]["name"], "<stdin>");
    assert_eq!(file["decisions"], stdin["decisions"]);
}

#[test]
fn rotated_set_in_any_order_with_gzip_archive_equals_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let third = lines.len() / 3;
    let part = |r: std::ops::Range<usize>| {
        lines[r]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    // Oldest part compressed, named without .gz on purpose: gzip is detected by content.
    let oldest = dir.path().join("access.log.2");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&oldest).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(part(0..third).as_bytes()).unwrap();
    gz.finish().unwrap();
    let middle = dir.path().join("access.log.1");
    std::fs::write(&middle, part(third..2 * third)).unwrap();
    let newest = dir.path().join("access.log");
    std::fs::write(&newest, part(2 * third..lines.len())).unwrap();
    let out = tempfile::tempdir().unwrap();
    let whole = analyze_ok(&[&fixture("mixture.log")], out.path(), &[]);
    let out2 = tempfile::tempdir().unwrap();
    let set = analyze_ok(&[&newest, &oldest, &middle], out2.path(), &[]);
    assert_eq!(set["inputs"][1]["gzip"], true);
    assert_eq!(set["requests"], whole["requests"]);
    assert_eq!(set["decisions"], whole["decisions"]);
}

#[test]
fn every_real_log_plain_gzipped_and_as_json() {
    // The done-when of the analyze issue: every real log in ../shared runs in every form.
    let real = real_log("");
    let mut names: Vec<String> = std::fs::read_dir(&real)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the real logs live in ../shared/data/real)",
                real.display()
            )
        })
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let src = real_log(&name);
        let dir = tempfile::tempdir().unwrap();
        let plain = analyze_ok(&[&src], &dir.path().join("plain"), &[]);
        let lines = std::fs::read_to_string(&src).unwrap().lines().count() as u64;
        assert_eq!(plain["lines"].as_u64(), Some(lines), "{name}");
        assert_eq!(
            plain["parse_errors"], 0,
            "{name}: {}",
            plain["inputs"][0]["error_examples"]
        );
        // gzipped
        let gz_path = dir.path().join(format!("{name}.gz"));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz_path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(&std::fs::read(&src).unwrap()).unwrap();
        gz.finish().unwrap();
        let gzipped = analyze_ok(&[&gz_path], &dir.path().join("gz"), &[]);
        assert_eq!(plain["decisions"], gzipped["decisions"], "{name} gz");
        // converted to nginx JSON (escape=json) with the library's own request type
        let json_path = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&json_path, to_nginx_json(&src)).unwrap();
        let json = analyze_ok(&[&json_path], &dir.path().join("json"), &[]);
        assert_eq!(json["parse_errors"], 0, "{name} json");
        assert_eq!(plain["decisions"], json["decisions"], "{name} json");
        eprintln!(
            "{name}: {} requests, {} bans, {} alerts",
            plain["requests"],
            banned(&plain).len(),
            decisions_of(&plain, "alert").len()
        );
    }
}

/// Combined → nginx JSON lines as `log_format … escape=json` writes them.
fn to_nginx_json(src: &Path) -> String {
    use bouncer::parse::{combined_fields, format_time, parse_time_local};
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let f = combined_fields(line).unwrap();
        let v = serde_json::json!({
            "time_iso8601": format_time(parse_time_local(f.time_local).unwrap()),
            "remote_addr": f.peer,
            "request": f.request,
            "status": f.status.to_string(),
            "body_bytes_sent": f.bytes,
            "http_referer": f.referer.unwrap_or("-"),
            "http_user_agent": f.user_agent.unwrap_or("-"),
            "request_time": "0.001",
        });
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

pub fn analyze_stdin(input: &[u8], out: &Path) -> serde_json::Value {
    let mut child = bouncer()
        .args(["analyze", "-", "-q", "--out"])
        .arg(out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_json(&out.join("decisions.json"))
}
