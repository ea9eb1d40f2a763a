//! The common log format family reader alone (host and X-Forwarded-For columns, zone-less times,
//! trusted-proxy walks) and its field splitter.
#![no_main]
use bouncer_fuzz::parse::{combined_fields, LineParser, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let opts = bouncer_fuzz::opts();
    let p = LineParser::fixed(Spec::Combined, &opts);
    bouncer_fuzz::check(&p.parse_line(line));
    if let Ok(text) = std::str::from_utf8(line) {
        if let Ok(f) = combined_fields(text) {
            let _ = (f.variant(), f.notes(), f.time_has_zone());
        }
    }
});
