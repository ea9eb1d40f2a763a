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
    // Regression (issue 12, 18): `follow --help` showed analyze's 1800 s; follow uses 60 s.
    let help = |sub: &str| {
        let r = run(bin().args([sub, "--help"]));
        assert_eq!(r.code, 0);
        let at = r.stdout.find("--reorder-secs <").expect("--reorder-secs");
        r.stdout[at..]
            .lines()
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        help("follow").contains("[default: 60]"),
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
    // The four bans may reach the kernel over one reconcile or several: wait for the total.
    wait("(4 banned)");
    let members = ns.ok(&["ipset", "list", "bouncer4"]);
    assert!(members.contains("192.236.195.162"), "{members}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}:\n{}", read());
    assert!(!read().contains("firewall: IPv"), "{}", read());
    for f in [
        "var/lib/bouncer/bans.json",
        "var/lib/bouncer/core.bin",
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

/// compose.yaml's `command: [...]` of a service (a flow sequence of JSON strings).
fn compose_command(compose: &str, service: &str) -> Vec<String> {
    let start = compose
        .find(&format!("\n  {service}:\n"))
        .unwrap_or_else(|| panic!("service {service} in compose.yaml"));
    let line = compose[start..]
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("command: "))
        .expect("command: [...]");
    serde_json::from_str(line).expect("command as a one-line flow sequence of strings")
}

#[test]
fn compose_nginx_log_format_and_bouncer_command_work_in_a_namespace() {
    // Issue 12, item 22: compose.yaml's nginx logging (dist/nginx, dist/docker) and bouncer's
    // command, run for real: nginx with the same conf.d files, bouncer with the same arguments
    // (paths moved under a temp dir), a Docker-like DOCKER-USER in both families.
    use crate::firewall::Netns;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let format_conf = repo.join("dist/nginx/bouncer-log-format.conf");
    let format = std::fs::read_to_string(&format_conf).unwrap();
    let directive: Vec<&str> = format.lines().filter(|l| !l.starts_with('#')).collect();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(
        readme.contains(&directive.join("\n")),
        "README's log_format is dist/nginx/bouncer-log-format.conf's"
    );
    let compose = std::fs::read_to_string(repo.join("compose.yaml")).unwrap();
    for mount in [
        "./dist/nginx/bouncer-log-format.conf:/etc/nginx/conf.d/",
        "./dist/docker/nginx-access-log.conf:/etc/nginx/conf.d/",
    ] {
        assert!(compose.contains(mount), "{mount}");
    }
    let command = compose_command(&compose, "bouncer");
    assert_eq!(command[..2], ["follow", "--enforce"]);

    let Some(ns) = Netns::new_or_skip(&["nginx", "curl", "ipset", "iptables", "ip6tables"]) else {
        return;
    };
    for bin in ["iptables", "ip6tables"] {
        ns.ok(&[bin, "-N", "DOCKER-USER"]);
        ns.ok(&[bin, "-A", "DOCKER-USER", "-j", "RETURN"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let moved = |p: &str| {
        if p.starts_with("/state") || p.starts_with("/var/log/nginx-json") {
            format!("{d}{p}")
        } else {
            p.to_owned()
        }
    };
    std::fs::create_dir_all(dir.path().join("var/log/nginx-json")).unwrap();
    let access = std::fs::read_to_string(repo.join("dist/docker/nginx-access-log.conf")).unwrap();
    std::fs::write(
        dir.path().join("access.conf"),
        access.replace("/var/log/nginx-json", &format!("{d}/var/log/nginx-json")),
    )
    .unwrap();
    let conf = format!(
        "daemon off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{}}\nhttp {{\n  client_body_temp_path {d}/cb;\n  proxy_temp_path {d}/px;\n  \
         fastcgi_temp_path {d}/fc;\n  uwsgi_temp_path {d}/uw;\n  scgi_temp_path {d}/sc;\n  \
         include {};\n  include {d}/access.conf;\n  \
         server {{ listen 127.0.0.1:18081; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
        format_conf.display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let mut nginx = ns
        .command(&["nginx", "-c", &format!("{d}/nginx.conf")])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join("var/log/nginx-json/access.log");
    let mut ok = false;
    for _ in 0..50 {
        if ns
            .run(&["curl", "-sf", "http://127.0.0.1:18081/warmup"])
            .status
            .success()
        {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        ok,
        "nginx did not answer: {:?}",
        std::fs::read_to_string(dir.path().join("error.log"))
    );

    let mut args: Vec<String> = command.iter().map(|a| moved(a)).collect();
    args.extend(["--reconcile-secs".into(), "1".into()]);
    let stderr = dir.path().join("follow.stderr");
    let mut all = vec![bin().get_program().to_str().unwrap().to_owned()];
    all.extend(args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut follow = ns
        .command(&all)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
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
    wait("hooks: IPv4 from INPUT, DOCKER-USER; IPv6 from INPUT, DOCKER-USER");
    let requests = 20;
    for i in 0..requests {
        let r = ns.run(&[
            "curl",
            "-sf",
            "-A",
            "Mozilla/5.0 \"quoted\" \\ agent",
            "-H",
            "X-Forwarded-For: 203.0.113.7",
            &format!("http://127.0.0.1:18081/page/{i}?q=\"x\""),
        ]);
        assert!(r.status.success());
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    assert!(follow.wait().unwrap().success(), "{}", read());
    let _ = nginx.kill();
    let _ = nginx.wait();
    assert!(!read().contains("unparseable"), "{}", read());
    assert!(!read().contains("firewall: IPv"), "{}", read());
    assert!(dir.path().join("state/bans.json").exists());
    assert!(dir.path().join("state/core.bin").exists());

    let out = dir.path().join("out");
    let r = run(bin()
        .args(["analyze", "--no-report", "--out"])
        .arg(&out)
        .arg(&log));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let a = read_json(&out.join("decisions.json"));
    assert_eq!(
        a["requests"],
        requests + 1,
        "every request parsed, warm-up included"
    );
    assert_eq!(a["parse_errors"], 0);
    assert_eq!(a["inputs"][0]["format"], "json", "{}", a["inputs"][0]);
}

/// `name` in PATH or in python3's scripts directory (where pip puts a wheel's binary).
fn find_tool(name: &str) -> Option<std::path::PathBuf> {
    let in_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    in_path.or_else(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_path('scripts'))",
            ])
            .output()
            .ok()?;
        let p = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join(name);
        p.is_file().then_some(p)
    })
}

#[test]
fn dockerfile_and_compose_lint_clean_and_build_like_ci() {
    // Issue 12, item 22: no Docker engine runs here; lint what can be linted.
    use crate::firewall::skip_or_fail;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).unwrap();
    let ci = std::fs::read_to_string(repo.join(".ci/run")).unwrap();
    // The image builds with .ci/run's profile and lock: `cargo test --release --locked` there.
    assert!(ci.contains("cargo test --release --locked"));
    assert!(dockerfile.contains("RUN cargo build --release --locked"));
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "multi-stage");
    assert!(
        dockerfile.contains("\nUSER 10001:10001\n"),
        "non-root by default"
    );

    let Some(hadolint) = find_tool("hadolint") else {
        skip_or_fail(
            "hadolint not found (pip install --require-hashes -r dist/lint-requirements.txt)",
        );
        return;
    };
    let r = run(Command::new(hadolint).arg(repo.join("Dockerfile")));
    assert_eq!(r.code, 0, "hadolint:\n{}{}", r.stdout, r.stderr);

    let Some(compose) = find_tool("docker-compose") else {
        skip_or_fail("docker-compose not found (apt-get install docker-compose)");
        return;
    };
    let r =
        run(Command::new(compose)
            .current_dir(repo)
            .args(["-f", "compose.yaml", "config", "-q"]));
    assert_eq!(
        r.code, 0,
        "docker-compose config:\n{}{}",
        r.stdout, r.stderr
    );
}

#[test]
fn analyze_on_a_full_disk_replaces_no_output() {
    // Regression (issue 12, 12): each output was replaced as soon as it was written, so a disk
    // that filled up on the report left the new decisions.json and ban lists beside the
    // previous run's report. Every output is now staged before any is replaced.
    if !std::env::var("CI").is_ok_and(|v| v == "true") && !am_root() {
        eprintln!("skipped: needs root for a private tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A tmpfs in a private mount namespace: a first run with no bans, the disk filled to leave
    // room for the new decisions.json (14 kB) but not the new report (146 kB), a second run.
    // `list`: every file of the output directory (temp files included) with its checksum.
    let script = r#"set -e
d="$1"; bin="$2"; quiet="$3"; mixture="$4"
mount -t tmpfs -o size=2m tmpfs "$d"
"$bin" analyze -q --out "$d/out" "$quiet"
list() { ls -A "$d/out" | sort | while read -r f; do printf '%s ' "$f"; sha256sum < "$d/out/$f"; done; }
list > "$d/../before"
avail=$(df --output=avail -B1 "$d" | tail -1)
head -c $((avail - 48 * 1024)) /dev/zero > "$d/fill"
set +e
"$bin" analyze -q --out "$d/out" "$mixture" 2> "$d/../stderr"
echo "exit $?" > "$d/../code"
list > "$d/../after"
"#;
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let r = run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mnt)
        .arg(bin().get_program())
        .arg(fixture("quiet.log"))
        .arg(fixture("mixture.log")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let stderr = read("stderr");
    assert_eq!(read("code").trim(), "exit 2", "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    assert!(read("before").contains("report.html"), "{}", read("before"));
    assert_eq!(read("after"), read("before"), "outputs changed:\n{stderr}");
}

#[test]
fn follow_on_a_full_disk_keeps_deciding_retries_and_saves_when_space_returns() {
    // Regression (issue 12, 12 and 23): the first failed state save ended `follow` (exit 2):
    // no more bans, no expiries. It now keeps going from memory, says so, and retries.
    if !std::env::var("CI").is_ok_and(|v| v == "true") && !am_root() {
        eprintln!("skipped: needs root for a private tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The state directory on a 1 MiB tmpfs in a private mount namespace; the log outside it.
    // follow starts, the tmpfs is filled, the real mixture is appended (four bans), the disk
    // is freed again, follow is stopped. The script records what it saw at each step.
    let script = r#"set -u
d="$1"; bin="$2"; log="$3"; mixture="$4"; err="$5"
mount -t tmpfs -o size=1m tmpfs "$d" || exit 90
"$bin" follow --dry-run --state "$d/state" "$log" 2> "$err" &
pid=$!
waitfor() { i=0; until grep -q "$1" "$err"; do i=$((i+1)); [ $i -gt 300 ] && return 1; sleep 0.1; done; }
waitfor "following 1 file" || { kill $pid; exit 91; }
head -c 2M /dev/zero > "$d/fill" 2>/dev/null
cat "$mixture" >> "$log"
waitfor "STATE NOT SAVED" || { kill $pid; exit 92; }
waitfor "BAN 192.168.4.25" || { kill $pid; exit 93; }
kill -0 $pid || exit 94
rm "$d/fill"
waitfor "state saved again" || { kill $pid; exit 95; }
cp "$d/state/bans.json" "$d/../bans.json"
kill -TERM $pid
wait $pid
echo "exit $?" > "$d/../code"
"#;
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let err = dir.path().join("stderr");
    let r = run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mnt)
        .arg(bin().get_program())
        .arg(&log)
        .arg(fixture("mixture.log"))
        .arg(&err));
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(r.code, 0, "step {} failed:\n{}{stderr}", r.code, r.stderr);
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("code").trim(), "exit 0", "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    let bans = read("bans.json");
    for ip in ["192.236.195.162", "192.168.4.25"] {
        assert!(stderr.contains(&format!("BAN {ip}")), "{stderr}");
        assert!(
            bans.contains(ip),
            "{ip} not saved once space returned: {bans}"
        );
    }
}

#[test]
fn analyze_with_a_report_it_cannot_write_replaces_no_output() {
    // Regression (issue 12, 12), without a full disk: the report's directory is missing.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    analyze_ok(&[&fixture("quiet.log")], &out, &[]);
    let before = outputs(&out);
    let r = run(bin()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg("--report")
        .arg(dir.path().join("missing/report.html"))
        .arg(fixture("mixture.log")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was replaced"), "{}", r.stderr);
    assert_eq!(outputs(&out), before);
}

#[test]
fn analyze_removes_the_temp_files_of_a_killed_run() {
    // Regression (issue 12, 13): a `kill -9` during a write leaves `.bouncer-PID-…` temp files
    // in the output directory; the next run removes those of dead processes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dead = out.join(".bouncer-4194999-decisions.json.tmp");
    std::fs::write(&dead, vec![0u8; 4096]).unwrap();
    let mine = out.join("notes.txt");
    std::fs::write(&mine, "kept").unwrap();
    let r = run(bin()
        .args(["analyze", "-q", "--out"])
        .arg(&out)
        .arg(fixture("quiet.log")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!dead.exists(), "a dead run's temp file is left");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "kept");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".bouncer-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// Every file of `dir` with its contents.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn am_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
