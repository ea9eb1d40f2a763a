//! The command line itself: help, version, completions, export round trips.

use crate::common::*;

#[test]
fn help_teaches_and_version_prints() {
    let r = run(bouncer().arg("--help"));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("Exit codes: 0 success, 1 usage"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("3 partial"), "{}", r.stdout);
    let r = run(bouncer().args(["analyze", "--help"]));
    assert_eq!(r.code, 0);
    for flag in [
        "--out",
        "--state",
        "--format",
        "--log-format",
        "--nginx-conf",
        "--input-tz",
        "--strict",
        "bouncer analyze --nginx-conf /etc/nginx/nginx.conf",
        "--field",
        "--trusted-proxy",
        "--allow-private",
        "--chain",
        "--z-threshold",
    ] {
        assert!(r.stdout.contains(flag), "analyze --help lacks {flag}");
    }
    let r = run(bouncer().arg("--version"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, concat!("bouncer ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef bouncer"),
        ("fish", "complete -c bouncer"),
    ] {
        let r = run(bouncer().args(["completions", shell]));
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains(marker), "{shell}");
    }
}

#[test]
fn export_reproduces_every_written_ban_list() {
    let dir = tempfile::tempdir().unwrap();
    analyze_ok(
        &[&fixture("mixture.log")],
        dir.path(),
        &["--chain", "DOCKER-USER"],
    );
    let decisions = dir.path().join("decisions.json");
    for (format, file) in [
        ("iptables", "bans.rules"),
        ("ip6tables", "bans6.rules"),
        ("ipset", "bans.ipset"),
        ("nft", "bans.nft"),
        ("csv", "decisions.csv"),
    ] {
        let r = run(bouncer()
            .args(["export", "--chain", "DOCKER-USER", "--format", format])
            .arg(&decisions));
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert_eq!(
            r.stdout,
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            "{format}"
        );
    }
    // A reviewed file: drop a ban, export again, the IP is gone.
    let mut a = read_json(&decisions);
    a["decisions"]
        .as_array_mut()
        .unwrap()
        .retain(|d| d["ip"] != "192.168.4.25");
    std::fs::write(&decisions, a.to_string()).unwrap();
    let r = run(bouncer()
        .args(["export", "--format", "iptables"])
        .arg(&decisions));
    assert!(!r.stdout.contains("192.168.4.25") && r.stdout.contains("192.236.195.162"));
    let r = run(bouncer()
        .args(["export", "--format", "nft"])
        .arg(dir.path().join("bans.rules")));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a bouncer decisions.json"),
        "{}",
        r.stderr
    );
}
