//! `follow --listen`: the real binary serving its live view on loopback, read over real HTTP:
//! the dashboard, `/metrics` (checked by `promtool check metrics`), the JSON API, the event
//! stream; refusals (non-loopback without a token, a short token, POST, a DNS name in `Host`),
//! the token (bearer and basic, 401 without); and, in headless Chromium driven by
//! `xtests/browser/dashboard.js`, that the report test's hostile log lines stay text.
//!
//! Needs `promtool` (Debian's `prometheus`), and for the browser test `node` with
//! `npm ci --prefix xtests/browser` and `chromium`; each prints `skipped: …` without them and
//! fails instead under `CI=true`. The namespace test with nginx, k6, Prometheus and the kernel
//! firewall is in `follow_e2e.rs`.

use crate::common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip_or_fail(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cannot run under CI=true: {reason}"
    );
    println!("skipped: {reason}");
}

/// A `follow --dry-run` with `--listen`, killed on drop; `url` is what it says it serves.
struct Follow {
    child: Child,
    pub url: String,
    stderr: PathBuf,
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn follow(dir: &Path, log: &Path, extra: &[&str]) -> Follow {
    let stderr = dir.join("follow.err");
    let child = bouncer()
        .args([
            "follow",
            "--dry-run",
            "--from-start",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("bouncer starts");
    // Killed and reaped on drop, also when the announcement never comes.
    let mut f = Follow {
        child,
        url: String::new(),
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&f.stderr).unwrap_or_default();
        if let Some(i) = text.find("live view on http://") {
            let rest = &text[i + "live view on ".len()..];
            f.url = rest.split_whitespace().next().unwrap().to_string();
            return f;
        }
        assert!(Instant::now() < deadline, "no live view announced:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = client().get(url).send().expect("request");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.text().unwrap_or_default(), headers)
}

/// Polls `/api/state` until `cond` holds on it.
fn wait_state(
    url: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body, _) = get(&format!("{url}api/state"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dashboard_metrics_api_and_stream_serve_what_follow_published() {
    let dir = tempfile::tempdir().unwrap();
    let f = follow(dir.path(), &fixture("mixture.log"), &[]);
    let url = f.url.clone();
    let st = wait_state(&url, "4 bans and every line read", |v| {
        v["status"]["bans"].as_array().is_some_and(|b| b.len() == 4) && v["status"]["lines"] == 4273
    });
    assert!(st["history_minutes"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));

    // The page: complete without script, with the strict CSP and the bans linked to their view.
    let (code, html, h) = get(&url);
    assert_eq!(code, 200);
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    for ip in [
        "192.236.195.162",
        "192.236.194.162",
        "192.236.195.112",
        "192.168.4.25",
    ] {
        assert!(
            html.contains(&format!("href=\"&#x2f;ip&#x2f;{ip}\"")),
            "{ip} linked"
        );
    }
    assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"3\"></noscript>"));
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "nothing inline"
    );
    let (code, js, h) = get(&format!("{url}static/live.js"));
    assert_eq!(
        (code, h["content-type"].to_str().unwrap()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(
        js.contains("EventSource") && !js.contains("innerHTML"),
        "text only"
    );

    // One IP: its decision, with the report's pieces.
    let (code, page, _) = get(&format!("{url}ip/192.168.4.25"));
    assert_eq!(code, 200);
    assert!(
        page.contains("long window") && page.contains("decided by"),
        "checks shown"
    );
    let (_, api, _) = get(&format!("{url}api/ip/192.168.4.25"));
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["decision"]["window"], "long");
    assert_eq!(get(&format!("{url}ip/not-an-ip")).0, 404);
    let (_, ev, _) = get(&format!("{url}api/events"));
    let ev: serde_json::Value = serde_json::from_str(&ev).unwrap();
    assert_eq!(
        ev.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "BAN")
            .count(),
        4
    );

    // /metrics: the lines read, the bans by rule and window; promtool accepts it.
    let (code, metrics, h) = get(&format!("{url}metrics"));
    assert_eq!(code, 200);
    assert_eq!(
        h["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(metrics.contains("bouncer_lines_total{file=\""), "{metrics}");
    assert!(metrics.contains("mixture.log\"} 4273\n"), "{metrics}");
    let bans: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("bouncer_bans_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(bans, 4, "{metrics}");
    for name in [
        "bouncer_build_info{version=",
        "bouncer_detection_latency_seconds_count 4",
        "bouncer_tick_duration_seconds_bucket",
        "bouncer_baseline_limit{window=\"short\"}",
        "bouncer_bans_active 4",
        "bouncer_late_lines_total",
    ] {
        assert!(metrics.contains(name), "{name}: {metrics}");
    }
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut p) => {
            use std::io::Write;
            p.stdin
                .take()
                .unwrap()
                .write_all(metrics.as_bytes())
                .unwrap();
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => skip_or_fail("promtool not installed (apt-get install prometheus)"),
    }

    // The event stream: a view within a second or two.
    let mut r = client().get(format!("{url}api/stream")).send().unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut first = String::new();
    BufReader::new(&mut r).read_line(&mut first).unwrap();
    assert!(first.starts_with("data: {\"kind\":\"site\""), "{first}");

    // Read-only, and no answer to a DNS name without a token.
    let r = client().post(&url).body("x").send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let r = client()
        .get(&url)
        .header("Host", "rebound.example")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    drop(f);
}

#[test]
fn listen_needs_a_token_off_loopback_and_then_asks_every_request_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let r = run(bouncer()
        .args(["follow", "--dry-run", "--listen", "0.0.0.0:9180"])
        .arg(&log));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a loopback address") && r.stderr.contains("--listen-token FILE"),
        "{}",
        r.stderr
    );
    // The same from the config file ([follow] listen).
    let cfg = dir.path().join("bouncer.toml");
    std::fs::write(&cfg, "[follow]\nlisten = \"[::]:9180\"\n").unwrap();
    let r = run(bouncer()
        .arg("--config")
        .arg(&cfg)
        .args(["follow", "--dry-run"])
        .arg(&log));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--listen [::]:9180: not a loopback address"),
        "{}",
        r.stderr
    );
    let short = dir.path().join("short.token");
    std::fs::write(&short, "abc\n").unwrap();
    let r = run(bouncer()
        .args([
            "follow",
            "--dry-run",
            "--listen",
            "0.0.0.0:9180",
            "--listen-token",
        ])
        .arg(&short)
        .arg(&log));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("shorter than 16"), "{}", r.stderr);
    assert!(!r.stderr.contains("abc"), "the token is never printed");

    let token = "k3y-0123456789abcdef";
    let tf = dir.path().join("listen.token");
    std::fs::write(&tf, format!("{token}\n")).unwrap();
    let f = follow(dir.path(), &log, &["--listen-token", tf.to_str().unwrap()]);
    let stderr = std::fs::read_to_string(&f.stderr).unwrap();
    assert!(
        stderr.contains("token required") && !stderr.contains(token),
        "{stderr}"
    );
    let c = client();
    let r = c.get(format!("{}metrics", f.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let r = c
        .get(format!("{}metrics", f.url))
        .bearer_auth("wrong-0123456789abcdef")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(format!("{}metrics", f.url))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(f.url.clone())
        .basic_auth("me", Some(token))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c.get(format!("{}api/stream", f.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401, "the stream too");
}

/// `node xtests/browser/dashboard.js URL`, or `None` after saying why it cannot run.
pub(crate) fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("xtests/browser/dashboard.js");
    let modules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("xtests/browser/node_modules/playwright-core");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let chromium = Path::new("/usr/bin/chromium").is_file();
    if !node || !modules.is_dir() || !chromium {
        skip_or_fail(&format!(
            "{test}: needs node, chromium and `npm ci --prefix xtests/browser` (node {node}, playwright-core {}, chromium {chromium})",
            modules.is_dir()
        ));
        return None;
    }
    Some(script)
}

/// Runs the browser driver with `commands` and returns its JSON lines.
fn drive(script: &Path, url: &str, commands: &str) -> Vec<serde_json::Value> {
    let mut p = Command::new("node")
        .arg(script)
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    {
        use std::io::Write;
        let mut stdin = p.stdin.take().unwrap();
        stdin.write_all(commands.as_bytes()).unwrap();
    }
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut stdout = p.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    while p.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = p.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out.push_str(&reader.join().unwrap());
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn hostile_log_lines_stay_text_in_the_dashboard_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::report::hostile_log(dir.path());
    let f = follow(dir.path(), &log, &[]);
    wait_state(&f.url, "the attackers banned", |v| {
        v["status"]["bans"].as_array().is_some_and(|b| b.len() >= 3)
    });
    let Some(script) = browser_or_skip("hostile_log_lines_stay_text_in_the_dashboard_in_chromium")
    else {
        return;
    };
    let shot = dir.path().join("ip.png");
    let cmds = format!(
        "audit\nip 192.236.195.162 {}\nip 192.168.4.25 {}\nquit\n",
        shot.display(),
        shot.display()
    );
    let events = drive(&script, &f.url, &cmds);
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .collect::<Vec<_>>()
    };
    assert!(!of("ready").is_empty(), "{events:?}");
    assert!(of("ran").is_empty(), "a payload ran: {:?}", of("ran"));
    assert!(of("error").is_empty(), "{:?}", of("error"));
    let audit = of("audit");
    assert_eq!(audit.len(), 1, "{events:?}");
    assert_eq!(audit[0]["bad"], serde_json::json!([]), "{:?}", audit[0]);
    let ips = of("ip");
    assert_eq!(ips.len(), 2, "{events:?}");
    let mut texts = Vec::new();
    for v in &ips {
        assert_eq!(v["bad"], serde_json::json!([]), "{v}");
        assert!(!v["title"].as_str().unwrap().contains("PWNED"), "{v}");
        for k in ["agents", "paths"] {
            texts.extend(
                v[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string()),
            );
        }
    }
    // The payloads are there, as text a person can read.
    for p in crate::report::PAYLOADS {
        assert!(
            texts.iter().any(|t| t.contains(p)),
            "{p} not shown as text: {texts:?}"
        );
    }
}
