//! Shared helpers: run the real binary, find fixtures and the real logs in ../shared.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bouncer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bouncer"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A real log from ../shared/data/real (next to the repository).
pub fn real_log(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/real")
        .join(name)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("bouncer runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `bouncer analyze ARGS… --out OUT -q`; panics with stderr unless it exits 0.
pub fn analyze_ok(args: &[&Path], out: &Path, extra: &[&str]) -> Value {
    let r = run(bouncer()
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(extra));
    assert_eq!(r.code, 0, "analyze {args:?} failed:\n{}", r.stderr);
    read_json(&out.join("decisions.json"))
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("valid JSON")
}

/// Banned IPs, in decision order.
pub fn banned(analysis: &Value) -> Vec<String> {
    decisions_of(analysis, "ban")
        .iter()
        .map(|d| d["ip"].as_str().unwrap().to_string())
        .collect()
}

pub fn decisions_of<'a>(analysis: &'a Value, action: &str) -> Vec<&'a Value> {
    analysis["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == action)
        .collect()
}

pub fn labels() -> Value {
    read_json(&fixture("mixture.labels.json"))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// A log from ../shared/data/wild (harder real logs from strangers' servers).
pub fn wild_log(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/wild")
        .join(name)
}
