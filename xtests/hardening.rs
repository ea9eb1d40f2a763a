//! Regression tests for the hardening items of issue 12 that need the real binary but no
//! firewall: file modes under a strict umask, secrets kept out of config errors, edge values on
//! the command line. (Firewall and namespace cases are in firewall.rs.)
//!
//! `BOUNCER_E2E_BIN=PATH` runs them against another build.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    match std::env::var_os("BOUNCER_E2E_BIN") {
        Some(p) => Command::new(p),
        None => bouncer(),
    }
}

/// Permission bits of every file under `dir`, by path.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            v.extend(modes(&e.path()));
        } else {
            v.push((
                e.path().display().to_string(),
                m.permissions().mode() & 0o777,
            ));
        }
    }
    v
}

#[test]
fn outputs_and_state_respect_a_strict_umask() {
    // Regression (issue 12, 15): write_atomic forced 0644 on everything under `umask 077`,
    // including state.json and decisions.json (who was banned and why).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 077 && exec \"$@\"", "sh"])
        .arg(bin().get_program())
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg("--state")
        .arg(&state)
        .arg(fixture("mixture.log"));
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<(String, u32)> = modes(&out).into_iter().chain(modes(&state)).collect();
    assert!(files.len() >= 8, "{files:?}");
    for (path, mode) in files {
        assert_eq!(mode, 0o600, "{path}: {mode:o}");
    }
}

#[test]
fn config_errors_never_print_the_slack_webhook() {
    // Regression (issue 12, 16): a misplaced or unquoted slack_webhook was echoed to stderr in
    // toml's parse error (it shows the offending line).
    let hook = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in [
        format!("[follow]\nslack_webhook = {hook}\n"),
        format!("[detect]\nslack_webhook = \"{hook}\"\n"),
        format!("[follow]\naudit = \"/var/log/a\"\nreconcile_secs = \"{hook}\"\n"),
        format!("[output]\nchain = \"{hook}\"\n"),
    ]
    .iter()
    .enumerate()
    {
        let cfg = dir.path().join(format!("bouncer{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let r = run(bin()
            .arg("--config")
            .arg(&cfg)
            .args(["status", "--state"])
            .arg(dir.path()));
        assert_eq!(r.code, 1, "{text}: {}", r.stderr);
        assert!(
            !r.stderr.contains("hooks.slack.com"),
            "{text}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("XXXXXXXX"), "{text}: {}", r.stderr);
        assert!(!r.stdout.contains("hooks.slack.com"));
        assert!(
            r.stderr.contains(&format!("bouncer{i}.toml")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_ban_schedule_too_long_to_represent_is_refused() {
    // Regression (issue 12, 18): `--ban-schedule 9223372036854775807s` was accepted and
    // overflowed into an instant unban.
    let r = run(bin()
        .args([
            "follow",
            "--replay",
            "--ban-schedule",
            "9223372036854775807s",
        ])
        .arg(fixture("mixture.log")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("longer than 100 years"), "{}", r.stderr);
}

#[test]
fn tz_takes_a_negative_offset_as_documented() {
    // Regression (issue 12, 18): `--tz -0530` (README, --help) was parsed as a flag.
    let dir = tempfile::tempdir().unwrap();
    let r = run(bin()
        .args(["analyze", "-q", "--tz", "-0530", "--out"])
        .arg(dir.path())
        .arg(fixture("mixture.log")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("-05:30"), "report in UTC-05:30");
}

#[test]
fn follow_help_shows_follows_reorder_default() {
    // Regression (issue 12, 18): `follow --help` showed analyze's 1800 s; follow uses 1 s.
    let help = |sub: &str| {
        let r = run(bin().args([sub, "--help"]));
        assert_eq!(r.code, 0);
        let at = r.stdout.find("--reorder-secs").expect("--reorder-secs");
        r.stdout[at..]
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        help("follow").contains("[default: 1]"),
        "{}",
        help("follow")
    );
    assert!(
        help("analyze").contains("[default: 1800]"),
        "{}",
        help("analyze")
    );
}
