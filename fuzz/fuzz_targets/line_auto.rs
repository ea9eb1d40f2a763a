//! Every format bouncer knows, on any line: the auto chain (combined family, JSON, NPM, each bare
//! and inside syslog and Docker records), its explanation, and the reader without a file parser.
#![no_main]
use bouncer_fuzz::parse::{parse_line, Format, LineParser, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let opts = bouncer_fuzz::opts();
    let p = LineParser::fixed(Spec::Auto, &opts);
    let r = p.parse_line(line);
    bouncer_fuzz::check(&r);
    // `bouncer formats` explains a line exactly as it is read.
    match (p.explain(line), &r) {
        (Ok(e), Ok(req)) => assert_eq!(&e.request, req),
        (Err(a), Err(b)) => assert_eq!(&a, b),
        (a, b) => panic!("explain {a:?} but parse {b:?}"),
    }
    for f in [Format::Auto, Format::Combined, Format::Json] {
        bouncer_fuzz::check(&parse_line(line, f, &opts));
    }
    let _ = Format::sniff(line);
});
