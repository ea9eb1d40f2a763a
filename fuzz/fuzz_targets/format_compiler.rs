//! The format compiler: any definition either compiles or is an error that shows its character;
//! a compiled format reads any line without panicking.
#![no_main]
use bouncer_fuzz::parse::{LineParser, LogFormat, Spec};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // definition NUL line
    let (def, line) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let def = String::from_utf8_lossy(def);
    match LogFormat::from_arg(&def) {
        Ok(f) => {
            let _ = f.describe();
            let opts = bouncer_fuzz::opts();
            let p = LineParser::fixed(Spec::LogFormats(vec![Arc::new(f)]), &opts);
            bouncer_fuzz::check(&p.parse_line(line));
            let _ = p.explain(line);
        }
        Err(e) => {
            assert!(e.at <= e.format.chars().count(), "{e:?}");
            let shown = e.to_string();
            assert!(shown.contains('^'), "{shown}");
        }
    }
});
