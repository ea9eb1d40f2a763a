//! Regression tests for the hardening items of issue 12 that need the real binary but no
//! firewall: file modes under a strict umask, secrets kept out of config errors, edge values on
//! the command line. (Firewall and namespace cases are in firewall.rs.)
//!
//! `BOUNCER_E2E_BIN=PATH` runs them against another build.

use crate::common::*;
use std::io::Write;
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

/// The unit's `KEY=` lines' values, in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn systemd_unit_verifies_and_its_exec_start_runs_in_a_read_only_sandbox() {
    // Regression (issue 12, 21): `ReadWritePaths=/run/xtables.lock` stops the unit (226/
    // NAMESPACE) where iptables-nft never created that file, and the legacy iptables lock under
    // ProtectSystem=strict needs it writable.
    use crate::firewall::{skip_or_fail, Netns};
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/bouncer-follow.service"),
    )
    .unwrap();
    let rw = unit_values(&unit, "ReadWritePaths").join(" ");
    assert!(rw.split(' ').any(|p| p == "-/run/xtables.lock"), "{rw}");
    assert!(unit_values(&unit, "ExecStartPre").contains(&"+/usr/bin/touch /run/xtables.lock"));
    let exec_start = unit_values(&unit, "ExecStart");
    let args: Vec<&str> = exec_start[0].split_whitespace().collect();
    assert_eq!(
        args[0], "/usr/local/bin/bouncer",
        "where README installs it"
    );

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_or_fail("systemd-analyze not found (apt-get install systemd)");
        return;
    }
    // verify, with ExecStart pointing at this build (README installs it at /usr/local/bin).
    let bin_path = bin().get_program().to_owned();
    let bin_path = bin_path.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("bouncer-follow.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/bouncer", bin_path)).unwrap();
    let r = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (0, ""),
        "systemd-analyze verify"
    );

    // ExecStart as written (paths moved under a temp root) in a sandbox like the unit's:
    // everything read-only but the state and log directories (ProtectSystem=strict +
    // ReadWritePaths), UMask=0077, the capability bounding set, no new privileges. systemd-run
    // needs systemd as PID 1, which these machines lack; this is the nearest we can run.
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables", "unshare", "setpriv"])
    else {
        return;
    };
    let root = dir.path().join("root");
    let moved: Vec<String> = args[1..]
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(p) => root.join(p).display().to_string(),
            None => a.to_string(),
        })
        .collect();
    for d in ["var/lib/bouncer", "var/log/bouncer", "var/log/nginx"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let log = root.join("var/log/nginx/access.log");
    std::fs::write(&log, "").unwrap();
    let caps = unit_values(&unit, "CapabilityBoundingSet")[0]
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",");
    let script = r#"set -e
rw="$1"; caps="$2"; shift 2
mount --make-rprivate /
mount --bind "$rw" "$rw"
awk '{print $5}' /proc/self/mountinfo | while read -r m; do
  case "$m" in /proc*|/sys*|/dev*|"$rw") ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac
done
if touch /etc/.bouncer-sandbox-probe 2>/dev/null; then echo "sandbox: / is writable" >&2; exit 9; fi
umask 0077
exec setpriv --bounding-set="-all,$caps" --no-new-privs "$@""#;
    let stderr = dir.path().join("follow.stderr");
    let mut cmd = ns.command(&["unshare", "-m", "sh", "-c", script, "sh"]);
    cmd.arg(&root)
        .arg(&caps)
        .arg(bin_path)
        .args(&moved)
        .arg("--reconcile-secs")
        .arg("1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = cmd.spawn().unwrap();
    let read = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let wait = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !read().contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what:?} not in:\n{}",
                read()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait("following 1 file(s)");
    let mixture = std::fs::read(fixture("mixture.log")).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&mixture)
        .unwrap();
    wait("firewall: +4 -0");
    let members = ns.ok(&["ipset", "list", "bouncer4"]);
    assert!(members.contains("192.236.195.162"), "{members}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}:\n{}", read());
    assert!(!read().contains("firewall: IPv"), "{}", read());
    for f in [
        "var/lib/bouncer/follow-state.json",
        "var/log/bouncer/audit.jsonl",
    ] {
        let m = std::fs::metadata(root.join(f)).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o777,
            0o600,
            "{f} under UMask=0077"
        );
    }
}
