//! Formats: every real log in ../shared/data/wild reads without flags (the lines that do not are
//! named, with why); each format, built from its server's own definition, reads field by field,
//! detected and pasted as `--log-format`; Docker and syslog wrapping decide exactly what the bare
//! lines decide; `--nginx-conf` needs no other argument; a bad definition points at its character.

use crate::common::*;
use bouncer::parse::{LineParser, LogFormat, ParseOptions, Request, Spec};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Every file of ../shared/data/wild: (file, lines, requests, parse errors, empty lines,
/// detected format). Directories are rotated sets, read in one run each.
const WILD: &[(&str, u64, u64, u64, u64, &str)] = &[
    ("advertools-nginx-2021.log", 1000, 1000, 0, 0, "combined"),
    (
        "ritajie-shop-nginx-2018.log.gz",
        28699,
        28699,
        0,
        0,
        "combined",
    ),
    ("sotm34-honeynet-apache.log", 3554, 3554, 0, 0, "combined"),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log",
        1603,
        1603,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.1",
        1553,
        1553,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.2.gz",
        1731,
        1731,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.3.gz",
        1557,
        1557,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.4.gz",
        1582,
        1582,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.5.gz",
        1552,
        1552,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.6.gz",
        1566,
        1566,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.7.gz",
        1543,
        1543,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.8.gz",
        1623,
        1623,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.9.gz",
        1619,
        1619,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.10.gz",
        2765,
        2765,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.11.gz",
        1593,
        1593,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.12.gz",
        1532,
        1532,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.13.gz",
        1625,
        1625,
        0,
        0,
        "vhost_combined",
    ),
    (
        "dmjacas-vhost-2024/other_vhosts_access.log.14.gz",
        1626,
        1626,
        0,
        0,
        "vhost_combined",
    ),
    ("plemma-apache-2022/access.log", 0, 0, 0, 0, "-"),
    (
        "plemma-apache-2022/access.log.1",
        110,
        110,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.2.gz",
        375,
        375,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.3.gz",
        167,
        167,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.4.gz",
        710,
        710,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.5.gz",
        205,
        205,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.6.gz",
        48,
        48,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.7.gz",
        1294,
        1293,
        1,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.8.gz",
        164,
        164,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.9.gz",
        184,
        184,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.10.gz",
        274,
        274,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.11.gz",
        185,
        185,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.12.gz",
        119,
        119,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.13.gz",
        92,
        92,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/access.log.14.gz",
        217,
        217,
        0,
        0,
        "combined",
    ),
    (
        "plemma-apache-2022/other_vhosts_access.log",
        0,
        0,
        0,
        0,
        "-",
    ),
    (
        "probes/beats-apache-test-vhost.log",
        1,
        1,
        0,
        0,
        "vhost_combined without port",
    ),
    (
        "probes/beats-nginx-test-with-host.log",
        10,
        7,
        3,
        0,
        "vhost_combined without port (also vhost_combined)",
    ),
    (
        "probes/beats-nginx-test.log",
        7,
        7,
        0,
        0,
        "combined with X-Forwarded-For in front (also combined)",
    ),
    (
        "probes/crowdsec-apache-http-probing-common.log",
        77,
        77,
        0,
        0,
        "common",
    ),
    (
        "probes/crowdsec-http-dos-bypass-cache.log",
        356,
        356,
        0,
        0,
        "combined",
    ),
    (
        "probes/crowdsec-nginx-proxy-manager.log",
        14,
        12,
        2,
        0,
        "mixed: npm-proxy (6), npm-standard (5), combined (1)",
    ),
    (
        "probes/crowdsec-syslog-prefixed-nginx.log",
        10,
        9,
        0,
        1,
        "syslog (RFC 3164) + combined",
    ),
    (
        "probes/fail2ban-apache-badbots.log",
        4,
        4,
        0,
        0,
        "combined (also vhost_combined without port)",
    ),
    (
        "probes/fail2ban-apache-fakegooglebot.log",
        3,
        3,
        0,
        0,
        "combined with host after the time (also vhost_combined without port)",
    ),
    ("probes/fail2ban-apache-pass.log", 1, 1, 0, 0, "combined"),
    (
        "probes/fail2ban-nginx-bad-request.log",
        8,
        8,
        0,
        0,
        "combined",
    ),
    (
        "probes/fail2ban-nginx-botsearch.log",
        8,
        8,
        0,
        0,
        "combined",
    ),
    ("probes/fail2ban-php-url-fopen.log", 1, 1, 0, 0, "combined"),
    ("probes/fail2ban-traefik-auth.log", 6, 6, 0, 0, "combined"),
    ("probes/matomo-common.log", 1, 1, 0, 0, "common"),
    (
        "probes/matomo-common_vhost.log",
        1,
        1,
        0,
        0,
        "vhost_common without port",
    ),
    ("probes/matomo-ncsa_extended.log", 1, 1, 0, 0, "combined"),
    ("probes/matomo-nginx_json.log", 2, 2, 0, 0, "json"),
];

/// Every line of ../shared/data/wild that bouncer does not read, with its reason, and why that
/// is right: (file, line, reason shown, why).
const BROKEN: &[(&str, u64, &str, &str)] = &[
    (
        "probes/beats-nginx-test-with-host.log",
        8,
        "invalid client address \"unix:\"",
        "the request came through a unix socket: there is no client address to ban",
    ),
    (
        "probes/beats-nginx-test-with-host.log",
        9,
        "invalid client address \"localhost\"",
        "the client is logged as a name (`localhost`), not an address",
    ),
    (
        "probes/beats-nginx-test-with-host.log",
        10,
        "invalid client address \"localhost\"",
        "the address list is `localhost, localhost`: names, not addresses",
    ),
    (
        "probes/crowdsec-nginx-proxy-manager.log",
        5,
        "an nginx error-log line, not an access-log line",
        "CrowdSec's NPM test file mixes nginx error-log lines into the access log",
    ),
    (
        "probes/crowdsec-nginx-proxy-manager.log",
        6,
        "an nginx error-log line, not an access-log line",
        "the second error-log line",
    ),
    (
        "plemma-apache-2022/access.log.7.gz",
        1294,
        "not a combined/common log line: no status after \"request\"",
        "the archive's last line is cut after the request (`\"GET /robots.txt HTTP/1.1\" ` and nothing more)",
    ),
];

#[test]
fn every_wild_log_reads_without_flags_except_lines_that_are_really_broken() {
    let root = wild_log("");
    // The table covers every file there is (a new file must be added, with its counts).
    let mut on_disk = BTreeSet::new();
    for dir in ["", "probes", "dmjacas-vhost-2024", "plemma-apache-2022"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the wild logs live in ../shared/data/wild)",
                root.display()
            )
        }) {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if e.file_type().unwrap().is_file() && name != "SOURCES.md" {
                on_disk.insert(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    let listed: BTreeSet<String> = WILD.iter().map(|w| w.0.to_string()).collect();
    assert_eq!(on_disk, listed);

    // One run per rotated set (as SOURCES.md says to read them), one per other file.
    let mut runs: Vec<Vec<&str>> = Vec::new();
    for (name, ..) in WILD {
        let set = name
            .split_once('/')
            .map(|(d, _)| d)
            .filter(|d| *d != "probes");
        match runs
            .iter_mut()
            .find(|r| set.is_some() && r[0].split_once('/').map(|(d, _)| d) == set)
        {
            Some(r) => r.push(name),
            None => runs.push(vec![name]),
        }
    }
    let mut seen_errors = BTreeSet::new();
    for run_files in runs {
        let out = tempfile::tempdir().unwrap();
        let paths: Vec<_> = run_files.iter().map(|n| wild_log(n)).collect();
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let a = analyze_ok(&refs, out.path(), &[]);
        for input in a["inputs"].as_array().unwrap() {
            let full = input["name"].as_str().unwrap();
            let name = full
                .strip_prefix(root.to_str().unwrap())
                .unwrap()
                .trim_start_matches('/');
            let (_, lines, requests, errors, empty, format) =
                WILD.iter().find(|w| w.0 == name).unwrap();
            let got = (
                input["lines"].as_u64().unwrap(),
                input["requests"].as_u64().unwrap(),
                input["parse_errors"].as_u64().unwrap(),
                input["empty_lines"].as_u64().unwrap(),
                input["format"].as_str().unwrap(),
            );
            assert_eq!(
                got,
                (*lines, *requests, *errors, *empty, *format),
                "{name}: {input}"
            );
            for e in input["error_examples"].as_array().unwrap() {
                let e = e.as_str().unwrap().strip_prefix(full).unwrap();
                let known = BROKEN
                    .iter()
                    .find(|(f, line, reason, _)| *f == name && e == format!(":{line}: {reason}"));
                assert!(
                    known.is_some(),
                    "{name}{e}: a line bouncer should read, or a new broken line to name"
                );
                seen_errors.insert((name.to_string(), e.to_string()));
            }
        }
    }
    assert_eq!(seen_errors.len(), BROKEN.len(), "{seen_errors:?}");
}

/// The request every definition below writes: the Apache docs' example request, from a
/// documentation address, as HEAD (so the method must be read for the request to count as an
/// asset: `/index.html` with 200 is a page otherwise).
struct Want {
    ip: &'static str,
    time: i64,
    path: &'static str,
    status: u16,
    bytes: u64,
    agent: &'static str,
}

const WANT: Want = Want {
    ip: "203.0.113.7",
    time: 971_211_336, // 10/Oct/2000:13:55:36 -0700
    path: "/index.html",
    status: 200,
    bytes: 2326,
    agent: "Mozilla/4.08 [en] (Win98; I ;Nav)",
};

/// The values each variable writes for [`WANT`].
const VALUES: &[(&str, &str)] = &[
    // nginx
    ("$remote_addr", "203.0.113.7"),
    ("$proxy_add_x_forwarded_for", "203.0.113.7, 10.0.0.1"),
    ("$http_x_forwarded_for", "203.0.113.7"),
    ("$remote_user", "frank"),
    ("$time_local", "10/Oct/2000:13:55:36 -0700"),
    ("$time_iso8601", "2000-10-10T13:55:36-07:00"),
    ("$request_method", "HEAD"),
    ("$request_uri", "/index.html"),
    ("$request", "HEAD /index.html HTTP/1.0"),
    ("$status", "200"),
    ("$body_bytes_sent", "2326"),
    ("$http_referer", "http://www.example.com/start.html"),
    ("$http_user_agent", "Mozilla/4.08 [en] (Win98; I ;Nav)"),
    ("$host", "www.example.com"),
    ("$server_port", "443"),
    ("$upstream_cache_status", "MISS"),
    ("$upstream_status", "200"),
    ("$scheme", "https"),
    ("$gzip_ratio", "-"),
    ("$server", "10.0.0.15:8080"),
    // Apache
    ("%h", "203.0.113.7"),
    ("%l", "-"),
    ("%u", "frank"),
    ("%t", "[10/Oct/2000:13:55:36 -0700]"),
    ("%{%d/%b/%Y:%H:%M:%S}t", "10/Oct/2000:13:55:36"),
    ("%r", "HEAD /index.html HTTP/1.0"),
    ("%>s", "200"),
    ("%b", "2326"),
    ("%O", "2326"),
    ("%{Referer}i", "http://www.example.com/start.html"),
    ("%{User-agent}i", "Mozilla/4.08 [en] (Win98; I ;Nav)"),
    ("%{User-Agent}i", "Mozilla/4.08 [en] (Win98; I ;Nav)"),
    ("%v", "www.example.com"),
    ("%p", "443"),
];

/// A line as the server writes it: the format's variables replaced by [`VALUES`].
fn render(format: &str) -> String {
    let mut vars: Vec<&(&str, &str)> = VALUES.iter().collect();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len())); // `$request_uri` before `$request`
    let mut out = String::new();
    let mut rest = format;
    'outer: while !rest.is_empty() {
        for (k, v) in &vars {
            if let Some(r) = rest.strip_prefix(k) {
                out.push_str(v);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap();
        assert!(
            c != '$' && !(c == '%' && rest.len() > 1),
            "no value for {rest}"
        );
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn read(spec: Spec, line: &str, opts: &ParseOptions) -> (Request, String) {
    let (p, d) = LineParser::detect(spec, format!("{line}\n").as_bytes(), true, 1, opts);
    let r = p
        .parse_line(line.as_bytes())
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    (r, d.format)
}

/// `what` is the line (or says which): a format that does not log the agent (`common`) reads "".
fn check(r: &Request, what: &str) {
    let agent = if what.contains(WANT.agent) {
        WANT.agent
    } else {
        ""
    };
    assert_eq!(r.ip.to_string(), WANT.ip, "{what}: client");
    assert_eq!(r.time, WANT.time, "{what}: time");
    assert_eq!(r.path(), WANT.path, "{what}: path");
    assert_eq!(r.status, WANT.status, "{what}: status");
    assert_eq!(r.bytes, WANT.bytes, "{what}: bytes");
    assert_eq!(r.user_agent(), agent, "{what}: user agent");
    assert_eq!(
        r.class(),
        bouncer::parse::Class::Asset,
        "{what}: HEAD read as the method"
    );
}

#[test]
fn each_format_built_from_its_servers_definition_reads_field_by_field() {
    let trusting = ParseOptions {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..Default::default()
    };
    let west = ParseOptions {
        input_offset_secs: -7 * 3600,
        ..Default::default()
    };
    let plain = ParseOptions::default();
    // (definition as the server's config or docs write it, what auto-detection calls it, options)
    let cases: &[(&str, &str, &ParseOptions)] = &[
        // nginx docs, ngx_http_log_module: the predefined `combined`.
        (
            "log_format combined '$remote_addr - $remote_user [$time_local] '\n                    '\"$request\" $status $body_bytes_sent '\n                    '\"$http_referer\" \"$http_user_agent\"';",
            "combined",
            &plain,
        ),
        // Apache docs, mod_log_config: combined and common.
        (
            r#"LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"" combined"#,
            "combined",
            &plain,
        ),
        (r#"LogFormat "%h %l %u %t \"%r\" %>s %b" common"#, "common", &plain),
        // Debian's /etc/apache2/apache2.conf: other_vhosts_access.log.
        (
            r#"LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined"#,
            "vhost_combined",
            &plain,
        ),
        // Apache docs: the virtual-host common format (no port).
        (r#"LogFormat "%v %h %l %u %t \"%r\" %>s %b" vhost_common"#, "vhost_common without port", &plain),
        // nginx.org's packaged nginx.conf: `main`, with the X-Forwarded-For field after the agent.
        (
            "log_format  main  '$remote_addr - $remote_user [$time_local] \"$request\" '\n                      '$status $body_bytes_sent \"$http_referer\" '\n                      '\"$http_user_agent\" \"$http_x_forwarded_for\"';",
            "combined",
            &plain,
        ),
        // $host / $host:$server_port in front (Filebeat's nginx test-with-host format).
        (
            "log_format host '$host $remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';",
            "vhost_combined without port",
            &plain,
        ),
        (
            "log_format hostport '$host:$server_port $remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';",
            "vhost_combined",
            &plain,
        ),
        // The X-Forwarded-For list in front (nginx $proxy_add_x_forwarded_for): with the proxy
        // 10.0.0.1 trusted, the client is the hop left of it.
        (
            "log_format xff '$proxy_add_x_forwarded_for - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';",
            "combined with X-Forwarded-For in front",
            &trusting,
        ),
        // A time without zone (read in --input-tz, here -07:00).
        (
            r#"LogFormat "%h %l %u [%{%d/%b/%Y:%H:%M:%S}t] \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" nozone"#,
            "combined",
            &west,
        ),
        // Nginx Proxy Manager's own formats (docker/rootfs/etc/nginx/conf.d/include/log-proxy.conf).
        (
            r#"log_format proxy '[$time_local] $upstream_cache_status $upstream_status $status - $request_method $scheme $host "$request_uri" [Client $remote_addr] [Length $body_bytes_sent] [Gzip $gzip_ratio] [Sent-to $server] "$http_user_agent" "$http_referer"';"#,
            "npm-proxy",
            &plain,
        ),
        (
            r#"log_format standard '[$time_local] $status - $request_method $scheme $host "$request_uri" [Client $remote_addr] [Length $body_bytes_sent] [Gzip $gzip_ratio] "$http_user_agent" "$http_referer"';"#,
            "npm-standard",
            &plain,
        ),
    ];
    for (def, detected, opts) in cases {
        let f = LogFormat::from_arg(def).unwrap_or_else(|e| panic!("{def}: {e}"));
        let line = render(&f.source);
        // Without flags…
        let (r, name) = read(Spec::Auto, &line, opts);
        check(&r, &format!("auto: {line}"));
        assert_eq!(name, *detected, "{line}");
        // …and pasted as --log-format…
        let (r, _) = read(Spec::LogFormats(vec![Arc::new(f)]), &line, opts);
        check(&r, &format!("--log-format {def}: {line}"));
        // …and inside the wrappers it arrives in: syslog (`access_log syslog:…`) and Docker.
        let syslog = format!("<190>Oct 10 20:55:36 web nginx: {line}");
        let (r, name) = read(Spec::Auto, &syslog, opts);
        check(&r, &syslog);
        assert_eq!(name, format!("syslog (RFC 3164) + {detected}"));
        let docker = serde_json::json!({"log": format!("{line}\n"), "stream": "stdout", "time": "2000-10-10T20:55:36.1Z"}).to_string();
        let (r, name) = read(Spec::Auto, &docker, opts);
        check(&r, &docker);
        assert_eq!(name, format!("docker json-file + {detected}"));
    }
}

#[test]
fn json_access_logs_of_nginx_caddy_traefik_and_matomo() {
    let lines = [
        // nginx: the escape=json format README recommends, compiled from its definition.
        (
            serde_json::json!({"time_iso8601": "2000-10-10T13:55:36-07:00", "remote_addr": "203.0.113.7", "request": "HEAD /index.html HTTP/1.0", "status": 200, "body_bytes_sent": 2326, "http_referer": "-", "http_user_agent": WANT.agent, "http_x_forwarded_for": "-", "request_time": 0.001}),
            "json",
        ),
        // Caddy's access log (caddyserver.com/docs/logging): nested request, ts, size.
        (
            serde_json::json!({"level": "info", "ts": 971_211_336.524_102_4, "logger": "http.log.access.log0", "msg": "handled request", "request": {"remote_ip": "10.0.0.1", "remote_port": "41342", "client_ip": "203.0.113.7", "proto": "HTTP/1.0", "method": "HEAD", "host": "www.example.com", "uri": "/index.html", "headers": {"User-Agent": [WANT.agent], "Accept": ["*/*"]}}, "bytes_read": 0, "user_id": "", "duration": 0.000_929_675, "size": 2326, "status": 200, "resp_headers": {"Server": ["Caddy"]}}),
            "json (Caddy)",
        ),
        // Traefik's JSON access log (doc.traefik.io, access logs: fields), headers kept.
        (
            serde_json::json!({"ClientAddr": "203.0.113.7:54321", "ClientHost": "203.0.113.7", "ClientPort": "54321", "ClientUsername": "-", "DownstreamContentSize": 2326, "DownstreamStatus": 200, "Duration": 929_675, "RequestMethod": "HEAD", "RequestPath": "/index.html", "RequestProtocol": "HTTP/1.0", "StartUTC": "2000-10-10T20:55:36.123456789Z", "StartLocal": "2000-10-10T13:55:36.123456789-07:00", "request_User-Agent": WANT.agent, "level": "info", "msg": "", "time": "2000-10-10T20:55:36Z"}),
            "json (Traefik)",
        ),
        // Matomo's nginx JSON (its log-analytics test log): date, length, status as a string.
        (
            serde_json::json!({"idsite": 1, "ip": "203.0.113.7", "host": "www.example.com", "path": "/index.html", "status": "200", "referrer": "-", "user_agent": WANT.agent, "length": 2326, "generation_time_milli": 0.008, "date": "2000-10-10T13:55:36-07:00", "method": "HEAD"}),
            "json",
        ),
    ];
    for (v, detected) in lines {
        let line = v.to_string();
        let (r, name) = read(Spec::Auto, &line, &ParseOptions::default());
        check(&r, &line);
        assert_eq!(name, detected);
    }
    // The recommended nginx format, pasted as --log-format: its keys are read, in any order.
    let def = r#"log_format bouncer_json escape=json '{"time_iso8601":"$time_iso8601","remote_addr":"$remote_addr",' '"request":"$request","status":$status,"body_bytes_sent":$body_bytes_sent,' '"http_referer":"$http_referer","http_user_agent":"$http_user_agent",' '"http_x_forwarded_for":"$http_x_forwarded_for","request_time":$request_time}';"#;
    let f = Arc::new(LogFormat::from_arg(def).unwrap());
    let line = serde_json::json!({"http_user_agent": WANT.agent, "status": 200, "remote_addr": "203.0.113.7", "request": "HEAD /index.html HTTP/1.0", "time_iso8601": "2000-10-10T13:55:36-07:00", "body_bytes_sent": 2326}).to_string();
    let (r, name) = read(Spec::LogFormats(vec![f]), &line, &ParseOptions::default());
    check(&r, &line);
    assert_eq!(name, "bouncer_json");
}

/// `{"log":"<line>\n","stream":"stdout","time":…}` per line, as Docker's json-file driver writes.
fn docker_json_file(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let rec = serde_json::json!({
                "log": format!("{l}\n"),
                "stream": if i % 7 == 0 { "stderr" } else { "stdout" },
                "time": format!("2024-08-06T00:{:02}:{:02}.{:09}Z", i / 60 % 60, i % 60, i * 7919 % 1_000_000_000),
            });
            format!("{rec}\n")
        })
        .collect()
}

#[test]
fn docker_and_syslog_wrapped_logs_decide_what_the_bare_lines_decide() {
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bare = analyze_ok(&[&fixture("mixture.log")], &dir.path().join("bare"), &[]);
    assert!(!banned(&bare).is_empty());

    let docker = dir.path().join("nginx-json.log");
    std::fs::write(&docker, docker_json_file(&text)).unwrap();
    let a = analyze_ok(&[&docker], &dir.path().join("docker"), &[]);
    assert_eq!(a["inputs"][0]["format"], "docker json-file + combined");
    assert_eq!(
        (a["requests"].clone(), a["parse_errors"].clone()),
        (bare["requests"].clone(), 0.into())
    );
    assert_eq!(a["decisions"], bare["decisions"]);

    let syslog: String = text
        .lines()
        .map(|l| format!("May 17 10:05:03 web nginx[2869]: {l}\n"))
        .collect();
    let path = dir.path().join("syslog");
    std::fs::write(&path, syslog).unwrap();
    let a = analyze_ok(&[&path], &dir.path().join("syslog-out"), &[]);
    assert_eq!(a["inputs"][0]["format"], "syslog (RFC 3164) + combined");
    assert_eq!(a["decisions"], bare["decisions"]);
}

#[test]
fn nginx_conf_alone_finds_the_logs_and_their_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vhost = d.join("vhost.log");
    let json = d.join("api.jsonl");
    std::fs::create_dir(d.join("sites-enabled")).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "user www-data;\nevents {{ worker_connections 768; }}\nhttp {{\n    # ours\n    log_format vhost '$host:$server_port $remote_addr - $remote_user [$time_local] '\n                     '\"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';\n    log_format api escape=json '{{\"t\":\"$time_iso8601\",\"peer\":\"$remote_addr\",\"r\":\"$request\",\"s\":$status}}';\n    access_log {} vhost;\n    access_log syslog:server=unix:/dev/log;\n    include sites-enabled/*;\n}}\n",
            vhost.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("sites-enabled/api"),
        format!(
            "server {{\n  listen 80;\n  location / {{ access_log {} api buffer=16k; }}\n}}\n",
            json.display()
        ),
    )
    .unwrap();
    // The vhost log: the mixture with a host:port column, so its decisions are known.
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let with_host: String = text
        .lines()
        .map(|l| format!("example.com:443 {l}\n"))
        .collect();
    let cut = with_host[..with_host.len() / 2].rfind('\n').unwrap() + 1;
    std::fs::write(&vhost, &with_host[cut..]).unwrap();
    // Its rotation, given as an argument, gets its format too.
    let rotated = d.join("vhost.log.1");
    std::fs::write(&rotated, &with_host[..cut]).unwrap();
    std::fs::write(
        &json,
        "{\"t\":\"2015-05-17T10:05:03+00:00\",\"peer\":\"198.51.100.4\",\"r\":\"GET /api HTTP/1.1\",\"s\":200}\n",
    )
    .unwrap();
    let out = d.join("out");
    let r = run(bouncer()
        .arg("analyze")
        .arg("--nginx-conf")
        .arg(d.join("nginx.conf"))
        .arg(&rotated)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    assert!(
        r.stderr
            .contains("nginx.conf:9: access_log syslog:server=unix:/dev/log: sent to syslog"),
        "{}",
        r.stderr
    );
    let a = read_json(&out.join("decisions.json"));
    let formats: Vec<(String, String)> = a["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["format"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        formats,
        vec![
            (rotated.display().to_string(), "vhost".to_string()),
            (vhost.display().to_string(), "vhost".to_string()),
            (json.display().to_string(), "api".to_string()),
        ]
    );
    assert_eq!(a["parse_errors"], 0);
    let bare = analyze_ok(&[&fixture("mixture.log")], &d.join("bare"), &[]);
    assert_eq!(a["requests"], bare["requests"].as_u64().unwrap() + 1);
    assert_eq!(banned(&a), banned(&bare));
    // `bouncer formats --nginx-conf` shows the same.
    let r = run(bouncer()
        .arg("formats")
        .arg("--nginx-conf")
        .arg(d.join("nginx.conf")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("format: api"), "{}", r.stdout);
    assert!(r.stdout.contains("format: vhost"), "{}", r.stdout);
}

#[test]
fn formats_explains_the_detection_and_the_first_line() {
    let r = run(bouncer()
        .arg("formats")
        .arg(wild_log("dmjacas-vhost-2024/other_vhosts_access.log.2.gz"))
        .arg(wild_log("probes/crowdsec-nginx-proxy-manager.log")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "(gzip)\n  format: vhost_combined\n",
        "why: 256 of the first 256 non-empty lines read as vhost_combined (256)",
        "`neutralbank.app:443` before the client is a host:port (never taken as an address)",
        "format: mixed: npm-proxy (6), npm-standard (5), combined (1)",
        "not read: line 5: an nginx error-log line, not an access-log line",
    ] {
        assert!(r.stdout.contains(want), "lacks {want:?}:\n{}", r.stdout);
    }
    // The first line, field by field: as written, then as bouncer counts it.
    for (field, value) in [
        ("host", "neutralbank.app:443"),
        ("client (peer)", "200.25.27.118"),
        ("time", "04/Aug/2024:00:01:36 +0000"),
        ("time", "2024-08-04T00:01:36Z"),
        ("class", "page"),
        ("$remote_addr", "1.2.3.4"),
        ("$upstream_cache_status", "-"),
    ] {
        let row = r.stdout.lines().any(|l| {
            l.trim_start()
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim() == value)
        });
        assert!(row, "no row {field} = {value}:\n{}", r.stdout);
    }
    // Without files: the presets.
    let r = run(bouncer().arg("formats"));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("vhost_combined: Debian/Ubuntu Apache"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_malformed_log_format_points_at_the_offending_character() {
    let q = fixture("quiet.log");
    // (definition, message, index of the character it points at)
    for (def, shown, at) in [
        (
            "%h %l %u %t \"%r\" %>s %Q",
            "unknown Apache directive `%Q` (character 22)",
            21,
        ),
        (
            "$remote_addr - $ [$time_local]",
            "`$` must be followed by a variable name (character 16)",
            15,
        ),
        (
            "log_format x '$remote_addr [$time_local] \"$request\"",
            "cannot read the quoted format: unterminated quoted string (character 14)",
            13,
        ),
    ] {
        let r = run(bouncer()
            .arg("analyze")
            .arg("--log-format")
            .arg(def)
            .arg(&q));
        assert_eq!(r.code, 1, "{def}: {}", r.stderr);
        assert!(r.stderr.contains(shown), "{def}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines[1], format!("  {def}"), "{}", r.stderr);
        assert_eq!(lines[2], format!("  {}^", " ".repeat(at)), "{}", r.stderr);
    }
    // A good one, pasted with its config quoting, reads the file exactly as detection does.
    let dir = tempfile::tempdir().unwrap();
    let auto = analyze_ok(&[&q], &dir.path().join("auto"), &[]);
    let def = "log_format combined '$remote_addr - $remote_user [$time_local] ' '\"$request\" $status $body_bytes_sent ' '\"$http_referer\" \"$http_user_agent\"';";
    let pinned = analyze_ok(&[&q], &dir.path().join("pinned"), &["--log-format", def]);
    assert_eq!(pinned["inputs"][0]["format"], "combined");
    assert_eq!(pinned["decisions"], auto["decisions"]);
    assert_eq!(pinned["requests"], auto["requests"]);
}

#[test]
fn nginx_combined_pasted_decides_what_the_built_in_reader_decides_on_every_real_log() {
    let def = "log_format combined '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"';";
    let mut names: Vec<String> = std::fs::read_dir(real_log(""))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let dir = tempfile::tempdir().unwrap();
        let auto = analyze_ok(&[&real_log(&name)], &dir.path().join("auto"), &[]);
        let pinned = analyze_ok(
            &[&real_log(&name)],
            &dir.path().join("pinned"),
            &["--log-format", def],
        );
        for k in ["requests", "parse_errors", "decisions"] {
            assert_eq!(auto[k], pinned[k], "{name}: {k}");
        }
    }
}

#[test]
fn out_of_range_times_are_counted_errors_and_export_still_reads_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let mut text: String = std::fs::read_to_string(fixture("mixture.jsonl")).unwrap();
    for t in [
        "9999-12-31T23:59:60",
        "1969-12-31T23:59:59Z",
        "31/Dec/9999:23:59:60 +0000",
    ] {
        text.push_str(&format!(
            "{{\"remote_addr\":\"198.51.100.9\",\"time_iso8601\":\"{t}\",\"request\":\"GET / HTTP/1.1\",\"status\":\"200\"}}\n"
        ));
    }
    text.push_str("\n  \n"); // blank lines: skipped, not errors
    let path = dir.path().join("access.jsonl");
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    let a = analyze_ok(&[&path], &out, &[]);
    assert_eq!(a["parse_errors"], 3);
    assert_eq!(a["inputs"][0]["empty_lines"], 2);
    assert_eq!(a["inputs"][0]["error_kinds"]["time out of range"], 3);
    let examples = a["inputs"][0]["error_examples"].to_string();
    assert!(
        examples.contains(r#"time \"9999-12-31T23:59:60\" is outside 1970–2099"#),
        "{examples}"
    );
    assert!(
        a["last_time"].as_str().unwrap().starts_with("2015-"),
        "{}",
        a["last_time"]
    );
    for f in ["csv", "nft", "iptables"] {
        let r = run(bouncer()
            .args(["export", "--format", f])
            .arg(out.join("decisions.json")));
        assert_eq!(r.code, 0, "export {f}: {}", r.stderr);
    }
}
