//! The labelled evaluation (xtests/eval/run.py) as a test: real logs from strangers' servers and
//! labelled mixtures made from real lines, each with the property the detector must have.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn results() -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eval.json");
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/xtests/eval/run.py"))
        .args(["--bouncer", env!("CARGO_BIN_EXE_bouncer"), "--json"])
        .arg(&json)
        .output()
        .expect("python3 runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{table}");
    let v: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v.into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r))
        .collect()
}

fn num(r: &Value, key: &str) -> u64 {
    r[key].as_u64().unwrap_or_else(|| panic!("{key} in {r}"))
}

#[test]
fn labelled_evaluation_meets_its_targets() {
    let r = results();
    let case = |name: &str| {
        let c = &r[name];
        assert!(c.get("error").is_none(), "{name}: {c}");
        c
    };
    // Nobody is banned on the logs of benign sites and benign synthesized crowds.
    for name in [
        "ritajie-shop",
        "advertools",
        "quiet",
        "shop-page-visitors",
        "nat-crowd",
        "steady-monitors",
    ] {
        let c = case(name);
        assert_eq!(num(c, "bans"), 0, "{name}: {c}");
    }
    // Every labelled attacker is banned, and no benign client.
    for name in [
        "plemma",
        "sotm34-honeynet",
        "mixture",
        "rotating-ua-bot",
        "flood-in-background",
    ] {
        let c = case(name);
        assert_eq!(num(c, "found"), num(c, "attackers"), "{name}: {c}");
        assert_eq!(c["false_bans"].as_array().unwrap().len(), 0, "{name}: {c}");
    }
    // sotm34: more of its labelled scanners than the 2 the seed found.
    let s = case("sotm34-honeynet");
    assert!(num(s, "bans") > 2, "{s}");
    // A flood is banned within a second of log time; the mixture's flood by the learned levels.
    assert!(case("flood-in-background")["ttb_max"].as_f64().unwrap() <= 1.0);
    assert_eq!(
        num(case("mixture"), "decided_floor"),
        0,
        "{}",
        case("mixture")
    );
    // The low-and-slow campaign: most of its exits.
    let t = case("tor-campaign");
    assert!(num(t, "found") >= 6, "{t}");
    assert_eq!(t["false_bans"].as_array().unwrap().len(), 0, "{t}");
}
