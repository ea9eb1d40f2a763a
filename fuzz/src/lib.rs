//! bouncer's parse stage, detector, ingest (tail), decisions.json and follow's state formats,
//! compiled alone for the fuzz targets (see Cargo.toml for why), with the options the targets
//! share.

#[path = "../../src/parse/mod.rs"]
pub mod parse;

#[path = "../../src/detect/mod.rs"]
pub mod detect;

#[path = "../../src/ingest/mod.rs"]
pub mod ingest;

/// `decisions.json` and the ban lists derived from it.
pub mod emit;

/// `follow --state`'s bans.json and core.bin.
#[path = "../../src/cmd/follow/stored.rs"]
pub mod stored;

use parse::ParseOptions;

/// Options that reach every branch of the client choice: a trusted proxy range (so
/// X-Forwarded-For lists are walked) and a zone for zone-less times.
pub fn opts() -> ParseOptions {
    ParseOptions {
        trusted_proxies: vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        input_offset_secs: 3600,
        ..Default::default()
    }
}

/// What every parse result must satisfy, whatever the input: times in range, and an error
/// that can be shown.
pub fn check(r: &Result<parse::Request, parse::LineError>) {
    match r {
        Ok(req) => {
            assert!(
                (parse::MIN_TIME..parse::MAX_TIME).contains(&req.time),
                "{}",
                req.time
            );
            // The text bouncer writes for it is valid (and what export reads back).
            let t = parse::format_time(req.time);
            assert_eq!(parse::parse_any_time(&t), Some(req.time), "{t}");
            let _ = (req.path(), req.user_agent(), req.class());
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
}
