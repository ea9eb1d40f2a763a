//! Bad input never panics and never costs a good line: each case gets a message and a counter.

use crate::common::*;
use std::io::Write;

/// 200 real lines from the mixture, with every kind of garbage between them.
#[test]
fn garbage_between_real_lines_is_counted_and_good_lines_survive() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let good: Vec<&str> = real.lines().take(200).collect();
    let mut data: Vec<u8> = Vec::new();
    let garbage: Vec<Vec<u8>> = vec![
        b"192.0.2.1 this is not a log line".to_vec(),
        br#"- - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#.to_vec(),
        br#"unknown - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#.to_vec(),
        br#"999.1.1.1 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#.to_vec(),
        b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /\xff\xfe HTTP/1.1\" 200 1 \"-\" \"ua\"".to_vec(),
        vec![0u8, 1, 2, 3, 0xde, 0xad, 0xbe, 0xef, 0x80, 0x00],
        std::iter::repeat_n(b'A', 10 * 1024 * 1024).collect(),
        br#"83.149.9.216 - - [31/Foo/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#.to_vec(),
    ];
    for (i, line) in good.iter().enumerate() {
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        if i % 25 == 0 {
            data.extend_from_slice(&garbage[(i / 25) % garbage.len()]);
            data.push(b'\n');
        }
    }
    let path = dir.path().join("dirty.log");
    std::fs::write(&path, &data).unwrap();
    let r = run(bouncer()
        .arg("analyze")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let a = read_json(&dir.path().join("out/decisions.json"));
    assert_eq!(a["requests"], 200, "every good line survives");
    assert_eq!(a["parse_errors"], 8);
    let kinds = &a["inputs"][0]["error_kinds"];
    for k in [
        "invalid client address",
        "invalid UTF-8",
        "line too long",
        "invalid time",
        "not a combined/common line",
    ] {
        assert!(
            kinds[k].as_u64().unwrap_or(0) >= 1,
            "{k} missing in {kinds}"
        );
    }
    // The summary shows the first errors as file:line: reason.
    let name = path.display().to_string();
    assert!(r.stdout.contains(&format!("{name}:2: ")), "{}", r.stdout);
    assert!(r.stdout.contains("parse errors 8"), "{}", r.stdout);
}

#[test]
fn truncated_gzip_keeps_the_lines_before_the_cut_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("quiet.log")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let full = gz.finish().unwrap();
    let path = dir.path().join("access.log.3.gz");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let r = run(bouncer()
        .arg("analyze")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let a = read_json(&dir.path().join("out/decisions.json"));
    let input = &a["inputs"][0];
    assert!(
        input["read_error"]
            .as_str()
            .unwrap()
            .contains("truncated or corrupt gzip"),
        "{input}"
    );
    let requests = a["requests"].as_u64().unwrap();
    assert!(requests > 500 && requests < 2822, "{requests}");
    // Everything before the cut parsed; at most the one line cut in half is an error.
    assert!(a["parse_errors"].as_u64().unwrap() <= 1);
    assert!(
        r.stdout.contains("warning: truncated or corrupt gzip"),
        "{}",
        r.stdout
    );
}

#[test]
fn missing_file_empty_file_and_garbage_only_file_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("nope.log");
    let r = run(bouncer()
        .arg("analyze")
        .arg(&missing)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains(&format!("{}: cannot open", missing.display())),
        "{}",
        r.stderr
    );

    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let r = run(bouncer().arg("analyze").arg(&empty).arg("--out").arg(&out));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no requests"), "{}", r.stderr);
    // …but an empty file next to a real one (just rotated) is fine, and noted.
    let r = run(bouncer()
        .arg("analyze")
        .arg(&empty)
        .arg(fixture("quiet.log"))
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("note: empty"), "{}", r.stdout);

    // One bad file never sinks a run: the garbage file is reported, the good one analysed, and
    // the exit code says "partial" (3)…
    let junk = dir.path().join("junk.log");
    std::fs::write(&junk, b"hello\nworld\n\x00\x01\x02\n").unwrap();
    let r = run(bouncer()
        .arg("analyze")
        .arg(&junk)
        .arg(fixture("quiet.log"))
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 3, "{}", r.stderr);
    for text in [&r.stderr, &r.stdout] {
        assert!(
            text.contains(&format!("{}: no parseable line in 3 lines", junk.display())),
            "{text}"
        );
        assert!(text.contains(&format!("{}:1: ", junk.display())), "{text}");
    }
    assert!(
        r.stderr.starts_with("bouncer: partial: 1 of 2 inputs"),
        "{}",
        r.stderr
    );
    let a = read_json(&out.join("decisions.json"));
    assert_eq!(a["requests"], 2822);
    assert!(a["inputs"][0]["failed"]
        .as_str()
        .unwrap()
        .contains("no parseable line"));
    assert!(a["inputs"][1]["failed"].is_null());
    // …unless --strict: then nothing is written and the run fails as an input error.
    let strict_out = dir.path().join("strict");
    let r = run(bouncer()
        .arg("analyze")
        .arg(&junk)
        .arg(fixture("quiet.log"))
        .arg("--strict")
        .arg("--out")
        .arg(&strict_out));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("no parseable line in 3 lines"),
        "{}",
        r.stderr
    );
    assert!(!strict_out.exists());
    // A missing file next to a good one: the same.
    let r = run(bouncer()
        .arg("analyze")
        .arg(&missing)
        .arg(fixture("quiet.log"))
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("NOT ANALYSED: {}: cannot open", missing.display())),
        "{}",
        r.stdout
    );
    let r = run(bouncer()
        .arg("analyze")
        .arg(&missing)
        .arg(fixture("quiet.log"))
        .arg("--strict")
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 2, "{}", r.stderr);

    let r = run(bouncer()
        .arg("analyze")
        .arg(dir.path())
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
}

#[test]
fn json_with_unknown_fields_nulls_and_default_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::new();
    for i in 0..50 {
        data.push_str(&format!(
            "{{\"remote_addr\":\"203.0.113.{}\",\"time_local\":\"17/May/2015:10:{:02}:00 +0000\",\"request\":\"GET /a\\x22b HTTP/1.1\",\"status\":\"200\",\"upstream_addr\":null,\"geo\":{{\"cc\":\"NZ\"}},\"http_user_agent\":\"caf\\xC3\\xA9\"}}\n",
            i % 7,
            i
        ));
    }
    data.push_str("{\"remote_addr\":\"203.0.113.1\"\n"); // truncated JSON
    let path = dir.path().join("access.json");
    std::fs::write(&path, data).unwrap();
    let a = analyze_ok(&[&path], &dir.path().join("out"), &[]);
    assert_eq!(
        (a["requests"].as_u64(), a["parse_errors"].as_u64()),
        (Some(50), Some(1))
    );
    assert_eq!(a["inputs"][0]["error_kinds"]["invalid JSON"], 1);
}

#[test]
fn usage_and_config_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let q = fixture("quiet.log");
    for args in [
        vec!["analyze"],
        vec!["analyze", "--bogus", q.to_str().unwrap()],
        vec!["analyze", "--allow", "not-a-cidr", q.to_str().unwrap()],
        vec!["analyze", "--field", "colour=c", q.to_str().unwrap()],
        vec!["analyze", "--z-threshold", "-1", q.to_str().unwrap()],
        vec!["analyze", "--chain", "INPUT;reboot", q.to_str().unwrap()],
        vec!["analyze", "-", "-"],
    ] {
        let r = run(bouncer().args(&args).arg("--out").arg(dir.path()));
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty());
    }
    let cfg = dir.path().join("bouncer.toml");
    std::fs::write(&cfg, "[detect]\nz_treshold = 2.5\n").unwrap();
    let r = run(bouncer().arg("--config").arg(&cfg).arg("analyze").arg(&q));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("z_treshold") && r.stderr.contains("bouncer.toml"),
        "{}",
        r.stderr
    );
}
