//! Compiled formats on any line: every preset (nginx, Apache, Debian, NPM, Traefik) and formats
//! whose fields end by shape (fixed times, digits, brackets, adjacent variables, lists).
#![no_main]
use bouncer_fuzz::parse::log_format::PRESETS;
use bouncer_fuzz::parse::{LineParser, LogFormat, Spec};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

static FORMATS: LazyLock<Vec<LineParser>> = LazyLock::new(|| {
    let extra = [
        r#"%h %l %u [%{%d/%b/%Y:%H:%M:%S}t] "%m %U%q %H" %>s %b %{sec}t %D"#,
        r#"$time_iso8601 $proxy_add_x_forwarded_for "$request_method $scheme://$host$request_uri" $status ${request_time}s "$http_user_agent" $upstream_addr"#,
        r#"escape=json '$msec $remote_addr "$request" $status "$http_user_agent" $http_x_forwarded_for'"#,
        r#"log_format j escape=json '{"t":"$time_iso8601","ip":"$remote_addr","r":"$request","s":$status}';"#,
    ];
    let opts = bouncer_fuzz::opts();
    PRESETS
        .iter()
        .map(|(name, _, _)| *name)
        .chain(extra)
        .map(|def| {
            let f = LogFormat::from_arg(def).expect("compiles");
            LineParser::fixed(Spec::LogFormats(vec![Arc::new(f)]), &opts)
        })
        .collect()
});

fuzz_target!(|line: &[u8]| {
    for p in FORMATS.iter() {
        bouncer_fuzz::check(&p.parse_line(line));
    }
});
