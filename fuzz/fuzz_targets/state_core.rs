//! `follow --state`'s core.bin (the detector and the inputs' checkpoints, bincode): any bytes.
//! Never a panic, never an allocation the bytes do not pay for (lengths are bounded by the
//! reader); a core that reads back drives the live core for a while.
#![no_main]
use bouncer_fuzz::stored::parse_core;
use bouncer_fuzz::detect::bans::BanBook;
use bouncer_fuzz::detect::live::Live;
use bouncer_fuzz::parse::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = parse_core(data, data.len() as u64) else {
        return;
    };
    if c.core.detector.settings().validate().is_err() {
        return; // follow refuses such settings before it builds a detector
    }
    let _ = c.inputs.len();
    let mut live = Live::from_core(c.core, BanBook::default());
    let t = live.detector.stats().last_time.unwrap_or(1_431_820_800);
    if !(0..4_102_444_800).contains(&t) {
        return;
    }
    for i in 0..50 {
        let r = Request::new(
            std::net::IpAddr::from([198, 51, 100, (i % 7) as u8]),
            t + i / 10,
            "GET",
            "/x",
            if i % 3 == 0 { 404 } else { 200 },
            10,
            "fuzz",
        );
        live.push(&r, (t + i) * 1000);
    }
    let _ = live.tick((t + 120) * 1000);
});
