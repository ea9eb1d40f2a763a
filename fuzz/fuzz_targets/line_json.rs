//! The JSON reader (flat fast path, serde_json with nested Caddy objects, nginx's default
//! escaping retried), with the default keys and with pinned ones.
#![no_main]
use bouncer_fuzz::parse::{FieldName, LineParser, Spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let mut opts = bouncer_fuzz::opts();
    let p = LineParser::fixed(Spec::Json, &opts);
    bouncer_fuzz::check(&p.parse_line(line));
    let _ = p.explain(line);
    opts.fields.set(FieldName::Ip, "request.remote_ip".into());
    opts.fields.set(FieldName::Time, "t".into());
    let p = LineParser::fixed(Spec::Json, &opts);
    bouncer_fuzz::check(&p.parse_line(line));
});
