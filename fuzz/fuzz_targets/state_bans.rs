//! `follow --state`'s bans.json (read by follow, `status`, `unban`): any bytes. Never a panic;
//! what reads back writes back the same.
#![no_main]
use bouncer_fuzz::stored::parse_bans;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = parse_bans(data) {
        let again = serde_json::to_vec(&b).expect("serialises");
        let b2 = parse_bans(&again).expect("reads back");
        assert_eq!(serde_json::to_vec(&b2).unwrap(), again);
        let _ = b.bans.active().len();
    }
});
