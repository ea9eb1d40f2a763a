//! Firewall integration tests: render ban lists with
//! `bouncer::emit::rulesets`, load them into a throwaway network namespace
//! with the real tools (iptables-nft, ip6tables, ipset, nft) and check the
//! resulting state and real loopback packets.
//!
//! Needs root and `ip netns`. Without them every test prints `skipped:
//! <reason>` and passes, unless `CI=true`, where it fails instead. No traffic
//! leaves the namespace: only `lo` exists there.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use bouncer::emit::rulesets::{
    hook_rule, ip6tables, ipset, ipset_match_rule, iptables, nft, Ban, RulesetOptions,
};

// ---------------------------------------------------------------------------
// Reusable: process timeouts, root check, network-namespace guard.
// ---------------------------------------------------------------------------

/// Upper bound for any single helper command (not a timing assertion).
pub(crate) const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cmd` to completion, killing it after `timeout`. Output goes through
/// unnamed temp files, so a chatty child cannot block on a full pipe.
pub(crate) fn run_with_timeout(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Output {
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    cmd.stdout(Stdio::from(out.try_clone().expect("dup")))
        .stderr(Stdio::from(err.try_clone().expect("dup")))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("write stdin");
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        sleep(Duration::from_millis(20));
    };
    let read = |f: &mut File| {
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut v).expect("read");
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// `CI=true`: panic with the reason. Otherwise print `skipped: <reason>`.
pub(crate) fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("firewall test cannot run under CI=true: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Effective uid from /proc (std only).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A uniquely named network namespace (`bouncer-t-<pid>-<n>`) with `lo` up.
/// Drop kills whatever still runs inside it and deletes it, also on panic.
pub struct Netns {
    name: String,
}

impl Netns {
    /// The namespace, or `None` after [`skip_or_fail`] when the test cannot
    /// run here (not root, `ip netns add` failing, a needed tool missing).
    pub fn new_or_skip(tools: &[&str]) -> Option<Netns> {
        if effective_uid() != Some(0) {
            skip_or_fail("needs root for network namespaces");
            return None;
        }
        if let Some(t) = tools.iter().find(|t| !have(t)) {
            skip_or_fail(&format!("`{t}` not found in PATH"));
            return None;
        }
        let name = format!(
            "bouncer-t-{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let add = run_with_timeout(
            Command::new("ip").args(["netns", "add", &name]),
            None,
            CMD_TIMEOUT,
        );
        if !add.status.success() {
            skip_or_fail(&format!(
                "`ip netns add {name}` failed: {}",
                String::from_utf8_lossy(&add.stderr).trim()
            ));
            return None;
        }
        let ns = Netns { name };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <ns> <args...>` (not started).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` inside the namespace, bounded by [`CMD_TIMEOUT`].
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), None, CMD_TIMEOUT)
    }

    /// Like [`Netns::run`], asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} in {} failed ({}): {}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `text` to a temp file and runs `args... <file>`, asserting success.
    pub fn load(&self, args: &[&str], text: &str) -> String {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(text.as_bytes()).expect("write");
        f.flush().expect("flush");
        let path = f.path().to_str().expect("utf-8 temp path").to_owned();
        let mut all = args.to_vec();
        all.push(&path);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {}\n--- input ---\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only processes this test started can live in its private namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Kills and reaps a child process on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------
// Fixtures and firewall helpers.
// ---------------------------------------------------------------------------

const BANNED_V4: &str = "127.0.1.7";
const ALLOWED_V4: &str = "127.0.1.8";
const BANNED_V6: &str = "fd00:b0::7";
const ALLOWED_V6: &str = "fd00:b0::8";
const PORT: &str = "18080";

fn ban(ip: &str, comment: &str) -> Ban {
    Ban {
        ip: ip.parse().expect("test ip"),
        comment: comment.to_owned(),
        duration_secs: 3600,
    }
}

/// Mixed list: loopback sources used by the packet tests, documentation
/// ranges, a mapped address, a duplicate and a hostile comment.
fn bans() -> Vec<Ban> {
    vec![
        ban(BANNED_V4, "GET /wp-login.php x200"),
        ban("192.0.2.10", "x\"; rm -rf / # naïve ☃\n-A INPUT -j ACCEPT"),
        ban("::ffff:192.0.2.11", "mapped v4"),
        ban("198.51.100.99", "scanner"),
        ban(BANNED_V6, "v6 probe"),
        ban("2001:db8::dead", "it's `quoted` \\ too"),
        ban(BANNED_V4, "duplicate, first wins"),
    ]
}

fn expected(v6: bool) -> Vec<String> {
    let mut v: Vec<String> = match v6 {
        false => vec![BANNED_V4, "192.0.2.10", "192.0.2.11", "198.51.100.99"],
        true => vec![BANNED_V6, "2001:db8::dead"],
    }
    .into_iter()
    .map(String::from)
    .collect();
    v.sort();
    v
}

fn docker_opts() -> RulesetOptions {
    RulesetOptions {
        hook_chain: "DOCKER-USER".into(),
        ..RulesetOptions::default()
    }
}

/// `bin -C spec || bin -I spec`: the documented one-edge install.
fn ensure_rule(ns: &Netns, bin: &str, spec: &[String]) {
    let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
    let check = ns.run(&[&[bin, "-C"][..], &spec].concat());
    if !check.status.success() {
        ns.ok(&[&[bin, "-I"][..], &spec].concat());
    }
}

/// The documented iptables apply step: restore (ban chain only), then the hook.
fn apply_xtables(ns: &Netns, list: &[Ban], o: &RulesetOptions) {
    ns.load(&["iptables-restore", "--noflush"], &iptables(list, o));
    ns.load(&["ip6tables-restore", "--noflush"], &ip6tables(list, o));
    ensure_rule(ns, "iptables", &hook_rule(o));
    ensure_rule(ns, "ip6tables", &hook_rule(o));
}

fn apply_ipset(ns: &Netns, list: &[Ban], o: &RulesetOptions) {
    ns.load(&["ipset", "restore", "-file"], &ipset(list, o));
    ensure_rule(ns, "iptables", &ipset_match_rule(o, false));
    ensure_rule(ns, "ip6tables", &ipset_match_rule(o, true));
}

fn count_lines(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}

/// Sources of `-A <chain> -s <ip>/<len> ... -j DROP` lines, sorted.
fn drop_sources(save: &str, chain: &str) -> Vec<String> {
    let prefix = format!("-A {chain} -s ");
    let mut v: Vec<String> = save
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.ends_with(" -j DROP"))
        .filter_map(|l| l[prefix.len()..].split('/').next().map(String::from))
        .collect();
    v.sort();
    v
}

/// Every whitespace/comma separated token that parses as an address, sorted.
fn addresses_in(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{' || c == '}')
        .filter(|t| t.parse::<IpAddr>().is_ok())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// `ipset list <set>` members, sorted.
fn ipset_members(ns: &Netns, set: &str) -> Vec<String> {
    let list = ns.ok(&["ipset", "list", set]);
    let members = list.split("Members:\n").nth(1).unwrap_or("");
    let mut v: Vec<String> = members
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn assert_xtables_state(ns: &Netns, hook: &str, list_v4: &[String], list_v6: &[String]) {
    for (bin, want) in [("iptables", list_v4), ("ip6tables", list_v6)] {
        let save = ns.ok(&[bin, "-S"]);
        assert_eq!(
            count_lines(&save, &format!("-A {hook} -j BOUNCER")),
            1,
            "{bin}: exactly one jump from {hook}:\n{save}"
        );
        assert_eq!(
            save.matches("-j BOUNCER").count(),
            1,
            "{bin}: no other jump:\n{save}"
        );
        assert_eq!(drop_sources(&save, "BOUNCER"), want, "{bin}:\n{save}");
        let rules = save.lines().filter(|l| l.starts_with("-A BOUNCER")).count();
        assert_eq!(rules, want.len(), "{bin}: one rule per IP:\n{save}");
    }
}

// ---------------------------------------------------------------------------
// State tests.
// ---------------------------------------------------------------------------

#[test]
fn iptables_reload_twice_keeps_one_jump_and_one_rule_per_ip() {
    let Some(ns) = Netns::new_or_skip(&["iptables-restore", "ip6tables-restore"]) else {
        return;
    };
    let o = RulesetOptions::default();
    let list = bans();
    apply_xtables(&ns, &list, &o);
    apply_xtables(&ns, &list, &o);
    assert_xtables_state(&ns, "INPUT", &expected(false), &expected(true));

    // A bare restore (no hook step) never adds a jump either.
    ns.load(&["iptables-restore", "--noflush"], &iptables(&list, &o));
    ns.load(&["ip6tables-restore", "--noflush"], &ip6tables(&list, &o));
    assert_xtables_state(&ns, "INPUT", &expected(false), &expected(true));

    // The sanitised hostile comment survived as one quoted comment.
    let save = ns.ok(&["iptables", "-S", "BOUNCER"]);
    assert!(
        save.contains("--comment \"x_; rm -rf / # na_ve _ -A INPUT -j ACCEPT\""),
        "{save}"
    );

    // A reload with a different list is exact (old IPs gone).
    let smaller = [ban("192.0.2.10", "only"), ban("2001:db8::1", "only6")];
    apply_xtables(&ns, &smaller, &o);
    assert_xtables_state(
        &ns,
        "INPUT",
        &["192.0.2.10".into()],
        &["2001:db8::1".into()],
    );

    // An empty list loads and leaves an empty chain.
    apply_xtables(&ns, &[], &o);
    assert_xtables_state(&ns, "INPUT", &[], &[]);
}

#[test]
fn iptables_docker_user_hook_keeps_one_jump_and_foreign_rules() {
    let Some(ns) = Netns::new_or_skip(&["iptables-restore", "ip6tables-restore"]) else {
        return;
    };
    for bin in ["iptables", "ip6tables"] {
        ns.ok(&[bin, "-N", "DOCKER-USER"]);
        ns.ok(&[bin, "-A", "DOCKER-USER", "-j", "RETURN"]);
    }
    let o = docker_opts();
    apply_xtables(&ns, &bans(), &o);
    apply_xtables(&ns, &bans(), &o);
    assert_xtables_state(&ns, "DOCKER-USER", &expected(false), &expected(true));
    for bin in ["iptables", "ip6tables"] {
        let save = ns.ok(&[bin, "-S"]);
        assert_eq!(
            count_lines(&save, "-A DOCKER-USER -j RETURN"),
            1,
            "{bin}: foreign rule kept:\n{save}"
        );
        assert!(
            !save.lines().any(|l| l.starts_with("-A INPUT")),
            "{bin}: INPUT untouched:\n{save}"
        );
    }
}

#[test]
fn ipset_reload_twice_is_exact() {
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    let o = RulesetOptions::default();
    apply_ipset(&ns, &bans(), &o);
    apply_ipset(&ns, &bans(), &o);
    assert_eq!(ipset_members(&ns, "bouncer4"), expected(false));
    assert_eq!(ipset_members(&ns, "bouncer6"), expected(true));
    let mut names: Vec<String> = ns
        .ok(&["ipset", "list", "-n"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["bouncer4", "bouncer6"], "no temporary sets left");
    for (bin, set) in [("iptables", "bouncer4"), ("ip6tables", "bouncer6")] {
        let save = ns.ok(&[bin, "-S", "INPUT"]);
        let rule = format!("-A INPUT -m set --match-set {set} src -j DROP");
        assert_eq!(count_lines(&save, &rule), 1, "{bin}:\n{save}");
        assert_eq!(save.lines().filter(|l| l.starts_with("-A")).count(), 1);
    }

    // Exact reload: removed IPs disappear, also while the sets are referenced.
    apply_ipset(&ns, &[ban("192.0.2.10", "only")], &o);
    assert_eq!(ipset_members(&ns, "bouncer4"), ["192.0.2.10"]);
    assert!(ipset_members(&ns, "bouncer6").is_empty());
}

#[test]
fn nft_reload_twice_is_exact() {
    let Some(ns) = Netns::new_or_skip(&["nft"]) else {
        return;
    };
    let o = RulesetOptions::default();
    ns.load(&["nft", "-f"], &nft(&bans(), &o));
    ns.load(&["nft", "-f"], &nft(&bans(), &o));
    let ruleset = ns.ok(&["nft", "list", "ruleset"]);
    assert_eq!(
        ruleset.matches("table inet bouncer {").count(),
        1,
        "{ruleset}"
    );
    assert_eq!(
        ruleset.matches("table ").count(),
        1,
        "only our table:\n{ruleset}"
    );
    assert_eq!(ruleset.matches("hook input").count(), 1, "{ruleset}");
    let set4 = ns.ok(&["nft", "list", "set", "inet", "bouncer", "bouncer4"]);
    let set6 = ns.ok(&["nft", "list", "set", "inet", "bouncer", "bouncer6"]);
    assert_eq!(addresses_in(&set4), expected(false), "{set4}");
    assert_eq!(addresses_in(&set6), expected(true), "{set6}");

    // Exact reload with a smaller list, then an empty one.
    ns.load(&["nft", "-f"], &nft(&[ban("2001:db8::1", "x")], &o));
    let ruleset = ns.ok(&["nft", "list", "ruleset"]);
    assert_eq!(addresses_in(&ruleset), ["2001:db8::1"], "{ruleset}");
    ns.load(&["nft", "-f"], &nft(&[], &o));
    let ruleset = ns.ok(&["nft", "list", "ruleset"]);
    assert!(addresses_in(&ruleset).is_empty(), "{ruleset}");
    assert_eq!(ruleset.matches("table inet bouncer {").count(), 1);

    // DOCKER-USER maps to the forward hook.
    ns.load(&["nft", "-f"], &nft(&bans(), &docker_opts()));
    let ruleset = ns.ok(&["nft", "list", "ruleset"]);
    assert!(ruleset.contains("hook forward") && !ruleset.contains("hook input"));
}

// ---------------------------------------------------------------------------
// Packet tests: a dual-stack HTTP listener on lo inside the namespace.
// ---------------------------------------------------------------------------

/// A Python HTTP server bound to `[::]:PORT` (dual stack) inside `ns`.
fn start_listener(ns: &Netns) -> ChildGuard {
    for addr in [BANNED_V6, ALLOWED_V6] {
        ns.ok(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{addr}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
    }
    let child = ns
        .command(&["python3", "-m", "http.server", "--bind", "::", PORT])
        .current_dir(Path::new("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn listener");
    let guard = ChildGuard(child);
    let deadline = Instant::now() + CMD_TIMEOUT;
    while !(curl(ns, None, "127.0.0.1") == Some(0) && curl(ns, None, "::1") == Some(0)) {
        assert!(
            Instant::now() < deadline,
            "listener in {} never became ready",
            ns.name()
        );
        sleep(Duration::from_millis(100));
    }
    guard
}

/// curl exit code for `http://<dst>:PORT/` from source `src`.
fn curl(ns: &Netns, src: Option<&str>, dst: &str) -> Option<i32> {
    let url = if dst.contains(':') {
        format!("http://[{dst}]:{PORT}/")
    } else {
        format!("http://{dst}:{PORT}/")
    };
    let mut args = vec!["curl", "-sS", "-o", "/dev/null", "--max-time", "2"];
    if let Some(s) = src {
        args.extend(["--interface", s]);
    }
    args.push(&url);
    ns.run(&args).status.code()
}

/// Before: both sources reach the server. After `apply`: the banned sources
/// time out (curl 28, i.e. dropped, not refused or unbindable) and the
/// others still get through.
fn assert_ban_blocks(ns: &Netns, apply: impl FnOnce(&Netns)) {
    let _listener = start_listener(ns);
    let pairs = [
        (BANNED_V4, ALLOWED_V4, "127.0.0.1"),
        (BANNED_V6, ALLOWED_V6, "::1"),
    ];
    for (banned, allowed, dst) in pairs {
        assert_eq!(curl(ns, Some(banned), dst), Some(0), "baseline {banned}");
        assert_eq!(curl(ns, Some(allowed), dst), Some(0), "baseline {allowed}");
    }
    apply(ns);
    for (banned, allowed, dst) in pairs {
        assert_eq!(
            curl(ns, Some(banned), dst),
            Some(28),
            "{banned} must be dropped"
        );
        assert_eq!(curl(ns, Some(allowed), dst), Some(0), "{allowed} must pass");
    }
}

#[test]
fn iptables_ban_drops_packets() {
    let tools = ["iptables-restore", "ip6tables-restore", "python3", "curl"];
    let Some(ns) = Netns::new_or_skip(&tools) else {
        return;
    };
    assert_ban_blocks(&ns, |ns| {
        apply_xtables(ns, &bans(), &RulesetOptions::default());
    });
}

#[test]
fn ipset_ban_drops_packets() {
    let tools = ["ipset", "iptables", "ip6tables", "python3", "curl"];
    let Some(ns) = Netns::new_or_skip(&tools) else {
        return;
    };
    assert_ban_blocks(&ns, |ns| {
        apply_ipset(ns, &bans(), &RulesetOptions::default());
    });
}

#[test]
fn nft_ban_drops_packets() {
    let Some(ns) = Netns::new_or_skip(&["nft", "python3", "curl"]) else {
        return;
    };
    assert_ban_blocks(&ns, |ns| {
        ns.load(&["nft", "-f"], &nft(&bans(), &RulesetOptions::default()));
    });
}

// ---------------------------------------------------------------------------
// `bouncer follow --enforce` inside the namespace (issue 12: 1, 2, 3, 5, 19).
// `BOUNCER_E2E_BIN=PATH` runs these against another build (e.g. the one before a fix, to see
// them fail).
// ---------------------------------------------------------------------------

/// The four IPs `analyze` and `follow` ban in `fixtures/mixture.log` (see README).
const MIXTURE_BANS: [&str; 4] = [
    "192.168.4.25",
    "192.236.194.162",
    "192.236.195.112",
    "192.236.195.162",
];
/// The one IP `analyze` bans in the real Netsparker run.
const NETSPARKER_BAN: &str = "192.168.4.164";

fn bouncer_bin() -> String {
    std::env::var("BOUNCER_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bouncer").to_owned())
}

fn manifest(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Polls `cond` every 100 ms for up to `timeout`.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
}

/// `bouncer follow --enforce --reconcile-secs 1 ARGS… LOG` running inside `ns`, stderr to a
/// file. Killed on drop (the namespace's drop kills it too).
struct Follower {
    child: ChildGuard,
    stderr: std::path::PathBuf,
}

impl Follower {
    fn start(ns: &Netns, dir: &Path, name: &str, log: &Path, args: &[&str]) -> Follower {
        let stderr = dir.join(format!("{name}.stderr"));
        let file = File::create(&stderr).expect("stderr file");
        let bin = bouncer_bin();
        let log = log.to_str().expect("utf-8 path");
        let mut all = vec![bin.as_str(), "follow", "--enforce", "--reconcile-secs", "1"];
        all.extend(args);
        all.push(log);
        let child = ns
            .command(&all)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn bouncer follow");
        Follower {
            child: ChildGuard(child),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stderr contains `what`; panics with stderr otherwise.
    fn expect(&self, what: &str, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.stderr().contains(what)),
            "{what:?} not in follow's stderr after {timeout:?}:\n{}",
            self.stderr()
        );
    }

    /// SIGTERM and wait: bouncer saves and exits 0.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status();
        let done = wait_until(Duration::from_secs(10), || {
            matches!(self.child.0.try_wait(), Ok(Some(_)))
        });
        assert!(done, "follow did not stop on SIGTERM:\n{}", self.stderr());
        self.stderr()
    }
}

/// Firewall error lines follow printed.
/// The lines where follow says the kernel does not hold what it wants.
fn firewall_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("bouncer: FIREWALL FAILURE"))
        .collect()
}

/// Whether `ip` is dropped by the backend's set or chain (not whether it is hooked).
fn in_kernel(ns: &Netns, backend: &str, ip: &str) -> bool {
    let v6 = ip.contains(':');
    match backend {
        "ipset" => ns
            .run(&[
                "ipset",
                "test",
                if v6 { "bouncer6" } else { "bouncer4" },
                ip,
            ])
            .status
            .success(),
        _ => {
            // `run`, not `ok`: iptables-nft reading while bouncer commits may fail ("chain
            // `BOUNCER' … is incompatible"); callers poll.
            let out = ns.run(&[if v6 { "ip6tables" } else { "iptables" }, "-S", "BOUNCER"]);
            let save = String::from_utf8_lossy(&out.stdout);
            let prefix = format!("-A BOUNCER -s {ip}/{} ", if v6 { 128 } else { 32 });
            save.lines().any(|l| l.starts_with(&prefix))
        }
    }
}

/// Waits until every one of `ips` is in the kernel; panics with follow's stderr otherwise.
fn expect_in_kernel(ns: &Netns, backend: &str, ips: &[&str], f: &Follower, what: &str) {
    let all = || ips.iter().all(|ip| in_kernel(ns, backend, ip));
    assert!(
        wait_until(Duration::from_secs(20), all),
        "{what}: {backend}: not every one of {ips:?} is in the kernel; follow said:\n{}",
        f.stderr()
    );
}

/// The hook rule of `backend` in `chain` for one family, as `-S` prints it.
fn hook_line(backend: &str, chain: &str, v6: bool) -> String {
    match backend {
        "ipset" => format!(
            "-A {chain} -m set --match-set {} src -j DROP",
            if v6 { "bouncer6" } else { "bouncer4" }
        ),
        _ => format!("-A {chain} -j BOUNCER"),
    }
}

/// What Docker creates: `DOCKER-USER` with its RETURN rule, in iptables and, when Docker has
/// IPv6, in ip6tables.
fn docker_user(ns: &Netns, v6: bool) {
    let bins: &[&str] = if v6 {
        &["iptables", "ip6tables"]
    } else {
        &["iptables"]
    };
    for bin in bins {
        ns.ok(&[bin, "-N", "DOCKER-USER"]);
        ns.ok(&[bin, "-A", "DOCKER-USER", "-j", "RETURN"]);
    }
}

/// `bouncer analyze LOG --out DIR -q` on the host; returns DIR.
fn analyze_into(log: &Path, out: &Path) -> std::path::PathBuf {
    let r = run_with_timeout(
        Command::new(bouncer_bin())
            .args(["analyze", "-q", "--no-report", "--out"])
            .arg(out)
            .arg(log),
        None,
        CMD_TIMEOUT,
    );
    assert!(
        r.status.success(),
        "analyze {}: {}",
        log.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    out.to_owned()
}

#[test]
fn follow_on_a_docker_host_protects_host_services_and_published_ports() {
    // Regression (issue 12, 1): with DOCKER-USER present, follow hooked its set from
    // DOCKER-USER *instead of* INPUT, and a banned IP still got 200 from nginx on the host.
    // With Docker's IPv6 off, IPv6 is hooked from INPUT only, without an error.
    for (backend, docker_v6) in [
        ("ipset", true),
        ("iptables", true),
        ("ipset", false),
        ("iptables", false),
    ] {
        let tools = ["ipset", "iptables", "ip6tables", "python3", "curl"];
        let Some(ns) = Netns::new_or_skip(&tools) else {
            return;
        };
        docker_user(&ns, docker_v6);
        let listener = start_listener(&ns);
        let banned = MIXTURE_BANS[3];
        ns.ok(&["ip", "addr", "add", &format!("{banned}/32"), "dev", "lo"]);
        assert_eq!(curl(&ns, Some(banned), "127.0.0.1"), Some(0), "baseline");

        let dir = tempfile::tempdir().expect("tempdir");
        let f = Follower::start(
            &ns,
            dir.path(),
            backend,
            &manifest("fixtures/mixture.log"),
            &["--backend", backend, "--from-start"],
        );
        f.expect("(4 banned)", Duration::from_secs(20));
        for ip in MIXTURE_BANS {
            assert!(in_kernel(&ns, backend, ip), "{backend}: {ip}");
        }
        let v6_chains: &[&str] = if docker_v6 {
            &["INPUT", "DOCKER-USER"]
        } else {
            &["INPUT"]
        };
        for (bin, v6, chains) in [
            ("iptables", false, &["INPUT", "DOCKER-USER"][..]),
            ("ip6tables", true, v6_chains),
        ] {
            let save = ns.ok(&[bin, "-S"]);
            for chain in chains {
                let rule = hook_line(backend, chain, v6);
                assert_eq!(count_lines(&save, &rule), 1, "{backend} {bin}:\n{save}");
            }
            if chains.contains(&"DOCKER-USER") {
                let docker: Vec<&str> = save
                    .lines()
                    .filter(|l| l.starts_with("-A DOCKER-USER"))
                    .collect();
                assert_eq!(docker.len(), 2, "ours first, Docker's RETURN kept:\n{save}");
                assert_eq!(docker.last(), Some(&"-A DOCKER-USER -j RETURN"), "{save}");
            }
        }
        assert_eq!(
            curl(&ns, Some(banned), "127.0.0.1"),
            Some(28),
            "{backend}: {banned} must be dropped by the host's INPUT hook"
        );
        assert_eq!(curl(&ns, Some(ALLOWED_V4), "127.0.0.1"), Some(0));
        f.expect(
            &format!(
                "hooks: IPv4 from INPUT, DOCKER-USER; IPv6 from {}",
                v6_chains.join(", ")
            ),
            Duration::from_secs(5),
        );
        let stderr = f.stop();
        assert!(firewall_errors(&stderr).is_empty(), "{backend}:\n{stderr}");
        drop(listener);
    }
}

#[test]
fn ipv4_bans_land_when_every_ipv6_hook_fails() {
    // Regression (issue 12, 2): `ip6tables -I DOCKER-USER … No chain` (Docker without IPv6)
    // aborted every reconcile, so the IPv4 set stayed empty while BANs were logged.
    for backend in ["ipset", "iptables"] {
        let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
            return;
        };
        docker_user(&ns, false);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Follower::start(
            &ns,
            dir.path(),
            backend,
            &manifest("fixtures/mixture.log"),
            &[
                "--backend",
                backend,
                "--from-start",
                "--chain",
                "DOCKER-USER",
            ],
        );
        expect_in_kernel(
            &ns,
            backend,
            &MIXTURE_BANS,
            &f,
            "IPv4 bans with IPv6 failing",
        );
        let save = ns.ok(&["iptables", "-S", "DOCKER-USER"]);
        assert_eq!(
            count_lines(&save, &hook_line(backend, "DOCKER-USER", false)),
            1
        );
        f.expect("bouncer: FIREWALL FAILURE (IPv6)", Duration::from_secs(5));
        let stderr = f.stop();
        for line in firewall_errors(&stderr) {
            assert!(
                line.starts_with("bouncer: FIREWALL FAILURE (IPv6): "),
                "{line}"
            );
            assert!(line.contains("DOCKER-USER"), "{line}");
        }
        assert!(
            stderr.contains("hooks: IPv4 from DOCKER-USER; IPv6 not hooked"),
            "{stderr}"
        );
    }
}

#[test]
fn bans_ipset_and_follow_share_their_sets_in_either_order() {
    // Regression (issue 12, 3): after `ipset restore < bans.ipset`, follow failed every
    // reconcile ("set with the same name already exists"); the other way round, `ipset restore`
    // exited 1 and left `bouncer4_tmp` behind.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = analyze_into(
        &crate::common::real_log("scanner-netsparker.log"),
        &dir.path().join("out"),
    );
    let file = std::fs::read_to_string(out.join("bans.ipset")).expect("bans.ipset");
    let all: Vec<&str> = MIXTURE_BANS
        .iter()
        .copied()
        .chain([NETSPARKER_BAN])
        .collect();
    let set_names = |ns: &Netns| {
        let mut v: Vec<String> = ns
            .ok(&["ipset", "list", "-n"])
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };

    // The file first (as README says), then follow.
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    ns.load(&["ipset", "restore", "-file"], &file);
    ensure_rule(
        &ns,
        "iptables",
        &ipset_match_rule(&RulesetOptions::default(), false),
    );
    let f = Follower::start(
        &ns,
        dir.path(),
        "file-first",
        &manifest("fixtures/mixture.log"),
        &["--backend", "ipset", "--from-start"],
    );
    expect_in_kernel(&ns, "ipset", &MIXTURE_BANS, &f, "follow after bans.ipset");
    sleep(Duration::from_millis(2500)); // two more reconciles: the file's entry must stay
    for ip in &all {
        assert!(in_kernel(&ns, "ipset", ip), "file first: {ip}");
    }
    let stderr = f.stop();
    assert!(firewall_errors(&stderr).is_empty(), "file first:\n{stderr}");
    assert_eq!(set_names(&ns), ["bouncer4", "bouncer6"]);
    drop(ns);

    // follow first, then the file.
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    let f = Follower::start(
        &ns,
        dir.path(),
        "follow-first",
        &manifest("fixtures/mixture.log"),
        &["--backend", "ipset", "--from-start"],
    );
    f.expect("(4 banned)", Duration::from_secs(20));
    let load = run_with_timeout(
        &mut ns.command(&["ipset", "restore"]),
        Some(file.as_bytes()),
        CMD_TIMEOUT,
    );
    assert!(
        load.status.success(),
        "ipset restore after follow: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert_eq!(
        set_names(&ns),
        ["bouncer4", "bouncer6"],
        "no stray _tmp set"
    );
    assert!(in_kernel(&ns, "ipset", NETSPARKER_BAN));
    // The load replaced the set's content; follow puts its own bans back at its next reconcile.
    assert!(
        wait_until(Duration::from_secs(5), || all
            .iter()
            .all(|ip| in_kernel(&ns, "ipset", ip))),
        "follow's bans are back next to the file's:\n{}",
        ns.ok(&["ipset", "list"])
    );
    let stderr = f.stop();
    assert!(
        firewall_errors(&stderr).is_empty(),
        "follow first:\n{stderr}"
    );
}

#[test]
fn follow_removes_only_what_it_added() {
    // Regression (issue 12, 5): follow without --state emptied the set at start (bans of the
    // previous run, which it says the kernel keeps), and every reconcile removed an entry an
    // admin had added by hand.
    for backend in ["ipset", "iptables"] {
        let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Follower::start(
            &ns,
            dir.path(),
            &format!("{backend}-first"),
            &manifest("fixtures/mixture.log"),
            &["--backend", backend, "--from-start"],
        );
        first.expect("(4 banned)", Duration::from_secs(20));
        first.stop();

        // By hand, while nothing runs: one address in bouncer's own set or chain.
        let admin = "203.0.113.99";
        match backend {
            "ipset" => ns.ok(&["ipset", "add", "bouncer4", admin]),
            _ => ns.ok(&["iptables", "-A", "BOUNCER", "-s", admin, "-j", "DROP"]),
        };
        // A second run without state, on a log with no bans in it.
        let quiet = dir.path().join("empty.log");
        std::fs::write(&quiet, "").expect("empty log");
        let second = Follower::start(
            &ns,
            dir.path(),
            &format!("{backend}-second"),
            &quiet,
            &["--backend", backend],
        );
        second.expect("following 1 file(s)", Duration::from_secs(10));
        sleep(Duration::from_millis(3000)); // two reconciles
        for ip in MIXTURE_BANS.iter().chain([&admin]) {
            assert!(
                in_kernel(&ns, backend, ip),
                "{backend}: {ip} was removed by a follow that did not add it:\n{}",
                second.stderr()
            );
        }
        let stderr = second.stop();
        assert!(!stderr.contains("firewall: +0 -"), "{backend}:\n{stderr}");
        assert!(firewall_errors(&stderr).is_empty(), "{backend}:\n{stderr}");
    }
}

/// `decisions.json` of `fixtures/mixture.log` with the first ban lasting `secs` and the second
/// permanent (0); returns (path, the expiring IP, the permanent IP).
fn decisions_with_lengths(dir: &Path, secs: u64) -> (std::path::PathBuf, String, String) {
    let out = analyze_into(&manifest("fixtures/mixture.log"), &dir.join("lengths"));
    let path = out.join("decisions.json");
    let mut a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let mut ips = Vec::new();
    for d in a["decisions"].as_array_mut().expect("decisions") {
        if d["action"] == "ban" {
            d["duration_secs"] = match ips.len() {
                0 => secs.into(),
                1 => 0.into(),
                _ => 3600.into(),
            };
            ips.push(d["ip"].as_str().expect("ip").to_owned());
        }
    }
    std::fs::write(&path, serde_json::to_vec(&a).expect("json")).expect("write");
    (path, ips[0].clone(), ips[1].clone())
}

fn export(decisions: &Path, format: &str) -> String {
    let r = run_with_timeout(
        Command::new(bouncer_bin())
            .args(["export", "--format", format])
            .arg(decisions),
        None,
        CMD_TIMEOUT,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8(r.stdout).expect("utf-8")
}

#[test]
fn ban_lengths_expire_in_the_kernel() {
    // Regression (issue 12, 19): --ban-secs reached only the CSV; a loaded bans.ipset or
    // bans.nft banned forever.
    let Some(ns) = Netns::new_or_skip(&["ipset", "nft"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (decisions, short, permanent) = decisions_with_lengths(dir.path(), 2);
    ns.load(&["ipset", "restore", "-file"], &export(&decisions, "ipset"));
    ns.load(&["nft", "-f"], &export(&decisions, "nft"));
    let nft_has = |ip: &str| {
        let set = ns.ok(&["nft", "list", "set", "inet", "bouncer", "bouncer4"]);
        addresses_in(&set).iter().any(|a| a == ip)
    };
    assert!(in_kernel(&ns, "ipset", &short) && nft_has(&short), "loaded");
    assert!(
        wait_until(Duration::from_secs(8), || !in_kernel(&ns, "ipset", &short)
            && !nft_has(&short)),
        "a 2-s ban is still in the kernel:\n{}\n{}",
        ns.ok(&["ipset", "list", "bouncer4"]),
        ns.ok(&["nft", "list", "ruleset"])
    );
    assert!(
        in_kernel(&ns, "ipset", &permanent),
        "duration 0 is permanent"
    );
    assert!(nft_has(&permanent), "duration 0 is permanent");
    assert_eq!(
        ipset_members(&ns, "bouncer4").len(),
        MIXTURE_BANS.len() - 1,
        "the hour-long bans stay"
    );
}

#[test]
fn follow_adopts_sets_an_older_bouncer_made_and_refuses_foreign_ones() {
    use bouncer::emit::firewall::{self, Backend, Enforcer, Exec, HookPlan, Ownership};
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    // What analyze (maxelem 65536, comments) and follow (no comments) created before.
    ns.ok(&[
        "ipset", "create", "bouncer4", "hash:ip", "family", "inet", "maxelem", "65536", "comment",
    ]);
    ns.ok(&[
        "ipset", "create", "bouncer6", "hash:ip", "family", "inet6", "maxelem", "1048576",
    ]);
    let exec = Exec::wrapped(vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        ns.name().into(),
    ]);
    let fw = firewall::kernel(Backend::Ipset, RulesetOptions::default(), exec.clone());
    let mut e = Enforcer::new(fw, HookPlan::Auto, Ownership::Ours);
    let v4: IpAddr = BANNED_V4.parse().unwrap();
    let v6: IpAddr = BANNED_V6.parse().unwrap();
    let out = e.reconcile(&[v4, v6].into());
    assert!(out.is_ok(), "{out:?}");
    assert_eq!((out.v4.added, out.v6.added), (1, 1));
    assert!(in_kernel(&ns, "ipset", BANNED_V4) && in_kernel(&ns, "ipset", BANNED_V6));
    // Without comments in bouncer6, ownership comes from what this enforcer added.
    let out = e.reconcile(&Default::default());
    assert_eq!((out.removed(), out.is_ok()), (2, true), "{out:?}");
    assert!(ipset_members(&ns, "bouncer4").is_empty() && ipset_members(&ns, "bouncer6").is_empty());

    // A set of another type under bouncer's name is an error for that family only.
    ns.ok(&["ip6tables", "-F", "INPUT"]);
    ns.ok(&["ipset", "destroy", "bouncer6"]);
    ns.ok(&["ipset", "create", "bouncer6", "hash:net", "family", "inet6"]);
    let fw = firewall::kernel(Backend::Ipset, RulesetOptions::default(), exec);
    let mut e = Enforcer::new(fw, HookPlan::Auto, Ownership::Ours);
    let out = e.reconcile(&[v4, v6].into());
    assert_eq!(out.v4.added, 1);
    assert!(out.v4.errors.is_empty());
    assert!(
        out.v6.errors.len() == 1 && out.v6.errors[0].contains("exists as hash:net"),
        "{out:?}"
    );
}

/// The summary's apply block: (label, commands) in order, labels without the colon.
fn summary_apply(stdout: &str) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("apply (") || line.starts_with("   or (") {
            let (label, cmd) = line.split_at(18);
            groups.push((label.trim().trim_end_matches(':').into(), vec![cmd.into()]));
        } else if let (Some(g), true) = (groups.last_mut(), line.starts_with(&" ".repeat(18))) {
            g.1.push(line[18..].into());
        } else if !groups.is_empty() {
            break;
        }
    }
    groups
}

#[test]
fn analyze_summary_apply_commands_ban_both_families() {
    // Regression (issue 12, 20): the summary's `apply:` line had no hook line and nothing for
    // IPv6, so following it left IPv6 bans (and, without README, every ban) unenforced.
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables-restore", "ip6tables-restore", "nft"])
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // mixture.log with one flooder moved to IPv6.
    let v6 = "2001:db8::162";
    let log = dir.path().join("mixture-v6.log");
    let text = std::fs::read_to_string(manifest("fixtures/mixture.log")).expect("fixture");
    std::fs::write(&log, text.replace("192.236.195.162 ", &format!("{v6} "))).expect("write");
    let out = dir.path().join("out dir");
    let r = run_with_timeout(
        Command::new(bouncer_bin())
            .args(["analyze", "--no-report", "--out"])
            .arg(&out)
            .arg(&log),
        None,
        CMD_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let groups = summary_apply(&stdout);
    let labels: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        labels,
        ["apply (iptables)", "or (ipset)", "or (nft)"],
        "{stdout}"
    );
    let all = stdout.to_string();
    assert!(
        all.contains("ip6tables -C INPUT -j BOUNCER 2>/dev/null || ip6tables -I INPUT -j BOUNCER")
    );
    assert!(all.contains("--match-set bouncer6 src -j DROP"), "{stdout}");
    let v4 = MIXTURE_BANS[0];
    // Run each way exactly as printed (the shell is the operator's; the text is bouncer's).
    for (label, commands) in &groups {
        for cmd in commands {
            let r = ns.run(&["sh", "-c", cmd]);
            assert!(
                r.status.success(),
                "{label}: {cmd}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        let (dropped4, dropped6) = match label.as_str() {
            "apply (iptables)" => (
                in_kernel(&ns, "iptables", v4)
                    && ns.ok(&["iptables", "-S", "INPUT"]).contains("-j BOUNCER"),
                in_kernel(&ns, "iptables", v6)
                    && ns.ok(&["ip6tables", "-S", "INPUT"]).contains("-j BOUNCER"),
            ),
            "or (ipset)" => (
                in_kernel(&ns, "ipset", v4)
                    && ns.ok(&["iptables", "-S", "INPUT"]).contains("bouncer4"),
                in_kernel(&ns, "ipset", v6)
                    && ns.ok(&["ip6tables", "-S", "INPUT"]).contains("bouncer6"),
            ),
            _ => {
                let rules = ns.ok(&["nft", "list", "ruleset"]);
                (rules.contains(v4), rules.contains(v6))
            }
        };
        assert!(
            dropped4 && dropped6,
            "{label}: v4 {dropped4}, v6 {dropped6}"
        );
    }
}

#[test]
fn a_ban_that_ended_while_follow_was_stopped_is_lifted_at_restart() {
    // Owning only what it added must not orphan its own bans across a restart with --state.
    let Some(ns) = Netns::new_or_skip(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state = state.to_str().expect("utf-8");
    let log = dir.path().join("access.log");
    std::fs::copy(manifest("fixtures/mixture.log"), &log).expect("copy");
    let args = ["--from-start", "--state", state, "--ban-schedule", "3s"];
    let first = Follower::start(&ns, dir.path(), "first", &log, &args);
    expect_in_kernel(&ns, "ipset", &MIXTURE_BANS, &first, "first run");
    first.stop();
    sleep(Duration::from_secs(4)); // every ban ends while nothing runs
    let admin = "203.0.113.99";
    ns.ok(&["ipset", "add", "bouncer4", admin]);
    let second = Follower::start(&ns, dir.path(), "second", &log, &args);
    assert!(
        wait_until(Duration::from_secs(10), || MIXTURE_BANS
            .iter()
            .all(|ip| !in_kernel(&ns, "ipset", ip))),
        "ended bans still in the kernel:\n{}\n{}",
        ns.ok(&["ipset", "list", "bouncer4"]),
        second.stderr()
    );
    assert!(in_kernel(&ns, "ipset", admin), "not ours: kept");
    second.stop();
}
