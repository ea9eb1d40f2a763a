//! Detection over a file's first bytes (any bytes, cut or whole), then every line of them read
//! by the parser it built.
#![no_main]
use bouncer_fuzz::parse::{LineParser, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|sample: &[u8]| {
    let opts = bouncer_fuzz::opts();
    for whole in [true, false] {
        let (p, d) = LineParser::detect(Spec::Auto, sample, whole, 1, &opts);
        assert!(d.read <= d.sampled);
        let _ = (d.format.len(), p.order());
        for line in sample.split(|b| *b == b'\n') {
            bouncer_fuzz::check(&p.parse_line(line));
        }
    }
});
