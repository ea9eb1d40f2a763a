//! `--state`: re-running on a grown log reads only the new bytes and decides exactly what one run
//! over the whole log decides.

use crate::common::*;
use std::io::Write;
use std::path::Path;

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn parts(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let size = lines.len().div_ceil(n);
    lines
        .chunks(size)
        .map(|c| c.iter().map(|l| format!("{l}\n")).collect())
        .collect()
}

#[test]
fn three_appends_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = analyze_ok(&[&fixture("mixture.log")], &dir.path().join("whole"), &[]);
    let log = dir.path().join("access.log");
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let mut last = None;
    let mut offset = 0;
    for (i, part) in parts(3).iter().enumerate() {
        append(&log, part);
        let a = analyze_ok(
            &[&log],
            &dir.path().join(format!("run{i}")),
            &["--state", state_arg],
        );
        // Only the new bytes were read.
        assert_eq!(
            a["inputs"][0]["resumed_at"].as_u64(),
            Some(offset),
            "run {i}"
        );
        assert_eq!(
            a["inputs"][0]["lines"].as_u64(),
            Some(part.lines().count() as u64),
            "run {i}"
        );
        offset += part.len() as u64;
        last = Some(a);
    }
    let last = last.unwrap();
    assert_eq!(last["requests"], whole["requests"]);
    assert_eq!(last["lines"], whole["lines"]);
    assert_eq!(last["decisions"], whole["decisions"]);
    assert_eq!(banned(&last).len(), 4);
    // A run with nothing new changes nothing.
    let again = analyze_ok(&[&log], &dir.path().join("again"), &["--state", state_arg]);
    assert_eq!(again["inputs"][0]["lines"], 0);
    assert_eq!(again["decisions"], whole["decisions"]);
}

#[test]
fn rotation_between_runs_is_followed_by_inode() {
    let dir = tempfile::tempdir().unwrap();
    let whole = analyze_ok(&[&fixture("mixture.log")], &dir.path().join("whole"), &[]);
    let p = parts(2);
    let log = dir.path().join("access.log");
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    append(&log, &p[0][..p[0].len() / 2]); // cut mid-line: the partial line waits
    let first = analyze_ok(&[&log], &dir.path().join("r1"), &["--state", state_arg]);
    let notes = first["inputs"][0]["notes"].to_string();
    assert!(notes.contains("no newline yet"), "{notes}");
    append(&log, &p[0][p[0].len() / 2..]);
    // logrotate: rename, then nginx reopens a new access.log.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&log, &p[1]);
    let a = analyze_ok(
        &[&log, &rotated],
        &dir.path().join("r2"),
        &["--state", state_arg],
    );
    let notes = a["inputs"][1]["notes"].to_string();
    assert!(notes.contains("rotated from"), "{notes}");
    assert_eq!(a["requests"], whole["requests"]);
    assert_eq!(a["decisions"], whole["decisions"]);
}

#[test]
fn changed_settings_with_old_state_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    analyze_ok(
        &[&fixture("quiet.log")],
        &dir.path().join("a"),
        &["--state", s],
    );
    let r = run(bouncer()
        .args(["analyze", "--z-threshold", "4", "--state", s, "-q"])
        .arg(fixture("quiet.log"))
        .arg("--out")
        .arg(dir.path().join("b")));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("different detection settings"),
        "{}",
        r.stderr
    );
}
