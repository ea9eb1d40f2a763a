//! `bouncer export`: any bytes as a reviewed decisions.json → every ban list. Never a panic;
//! every list line that names an address names one that parses (no text of the file reaches
//! a rule unquoted).
#![no_main]
use bouncer_fuzz::emit::decisions::{bans_of, read};
use bouncer_fuzz::emit::rulesets::{self, RulesetOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(analysis) = read(data) else {
        return;
    };
    let bans = bans_of(&analysis.decisions);
    let opts = RulesetOptions::default();
    for text in [
        rulesets::iptables(&bans, &opts),
        rulesets::ip6tables(&bans, &opts),
        rulesets::nft(&bans, &opts),
        rulesets::crowdsec_csv(&bans),
    ] {
        let _ = text.len();
    }
    for line in rulesets::ipset(&bans, &opts).lines() {
        if let Some(rest) = line.strip_prefix("add ") {
            let ip = rest.split_whitespace().nth(1).unwrap_or("");
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{line}");
        }
    }
    // What reads back writes back the same.
    let json = serde_json::to_vec(&analysis).expect("serialises");
    let again = read(&json).expect("reads back");
    assert_eq!(serde_json::to_vec(&again).unwrap(), json);
});
