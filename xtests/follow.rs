//! `follow` without a firewall: parity with `analyze`, live tailing, state, status, unban.
//! (The full end-to-end run with nginx, k6 and the kernel firewall is in follow_e2e.rs.)

use crate::common::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn replay(log: &Path, extra: &[&str]) -> Value {
    let r = run(bouncer().args(["follow", "--replay"]).args(extra).arg(log));
    assert_eq!(r.code, 0, "follow --replay failed:\n{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn replay_through_follow_decides_exactly_what_analyze_decides() {
    let dir = tempfile::tempdir().unwrap();
    // Same reorder tolerance on both sides. With 1 s, the mixture's scanner lines (up to 8 min
    // out of order) make both sort the whole input first: the same decisions again.
    for (tol, name) in [
        ("1800", "mixture.log"),
        ("1", "mixture.log"),
        ("1800", "mixture.jsonl"),
    ] {
        let a = analyze_ok(
            &[&fixture(name)],
            &dir.path().join(format!("a{tol}{name}")),
            &["--reorder-secs", tol],
        );
        let f = replay(&fixture(name), &["--reorder-secs", tol]);
        assert_eq!(banned(&a).len(), 4, "{name} {tol}");
        assert_eq!(
            f["decisions"], a["decisions"],
            "{name} with --reorder-secs {tol}"
        );
    }
}

struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, what: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what:?} not in {} after {timeout:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dry_run_follows_appends_bans_saves_state_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let state = dir.path().join("state");
    let audit = dir.path().join("audit.jsonl");
    std::fs::write(&log, "").unwrap();
    let stderr_path = dir.path().join("stderr.txt");
    let child = bouncer()
        .args(["follow", "--dry-run"])
        .arg("--state")
        .arg(&state)
        .arg("--audit")
        .arg(&audit)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut f = Follower(child);
    wait_for(&stderr_path, "following 1 file", Duration::from_secs(10));
    // Feed the real mixture as if it were being written now (log time is what counts).
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let mut out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for chunk in text.as_bytes().chunks(64 * 1024) {
        out.write_all(chunk).unwrap();
    }
    drop(out);
    for ip in ["192.236.195.162", "192.168.4.25"] {
        wait_for(&audit, &format!("\"ip\":\"{ip}\""), Duration::from_secs(20));
    }
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    let bans: Vec<Value> = audit_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "BAN")
        .collect();
    assert_eq!(bans.len(), 4, "{audit_text}");
    // (whether a record is written before warm-up ends depends on how much log arrives per
    // tick: the unit test in detect::live covers that)
    let updates: Vec<Value> = audit_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "BASELINE_UPDATE")
        .collect();
    assert!(
        updates.iter().any(|u| u["in_force"] == true),
        "{audit_text}"
    );
    // The flood is banned within its first second: no site-wide surge is left to alert on.
    assert!(!audit_text.contains("\"event\":\"GLOBAL_ANOMALY\""));
    for b in &bans {
        assert_eq!(b["strike"], 1);
        assert_eq!(b["duration_secs"], 600);
    }
    // status sees the bans through the state file.
    wait_for(
        &state.join("bans.json"),
        "192.168.4.25",
        Duration::from_secs(10),
    );
    let r = run(bouncer().args(["status", "--state"]).arg(&state));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);
    assert!(r.stderr.contains("follow is running"), "{}", r.stderr);
    // unban goes through the running follower.
    let r = run(bouncer()
        .args(["unban", "--state"])
        .arg(&state)
        .arg("192.168.4.25"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_for(&audit, "\"event\":\"UNBAN\"", Duration::from_secs(10));
    // SIGTERM: save and exit 0.
    let pid = f.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = f.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "follow did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&stderr_path).unwrap()
    );
    let r = run(bouncer().args(["status", "--state"]).arg(&state));
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    assert!(r.stderr.contains("not running"));
    // Restart from the checkpoint: nothing is re-read.
    let stderr2 = dir.path().join("stderr2.txt");
    let child = bouncer()
        .args(["follow", "--dry-run", "--state"])
        .arg(&state)
        .arg("--audit")
        .arg(&audit)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr2).unwrap())
        .spawn()
        .unwrap();
    let _f2 = Follower(child);
    wait_for(
        &stderr2,
        "3 active ban(s) restored",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let after = std::fs::read_to_string(&audit).unwrap();
    let new_bans = after
        .lines()
        .filter(|l| l.contains("\"event\":\"BAN\""))
        .count();
    assert_eq!(new_bans, 4, "a restart must not re-read and re-ban");
}
