//! nginx JSON `log_format` lines, with the field names people actually use mapped automatically.
//!
//! nginx writes JSON two ways: `escape=json` (valid JSON) and the default escaping, which writes
//! `"` `\` and non-ASCII bytes as `\xHH` — not valid JSON. A line that fails to parse is retried
//! once with `\xHH` rewritten, so both work without configuration.

use super::{
    client_ip, parse_ip, split_request, time::parse_any_time, LineError, ParseOptions, Request,
};
use serde_json::{Map, Value};

/// The request fields bouncer reads from a JSON line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FieldName {
    Ip,
    Time,
    Status,
    Method,
    Path,
    Request,
    Bytes,
    UserAgent,
    Referer,
    Xff,
}

impl FieldName {
    pub const ALL: [FieldName; 10] = [
        FieldName::Ip,
        FieldName::Time,
        FieldName::Status,
        FieldName::Method,
        FieldName::Path,
        FieldName::Request,
        FieldName::Bytes,
        FieldName::UserAgent,
        FieldName::Referer,
        FieldName::Xff,
    ];

    /// The JSON keys tried, in order, when the user did not name one with `--field`.
    pub fn default_keys(self) -> &'static [&'static str] {
        match self {
            FieldName::Ip => &["ip", "remote_addr", "source_ip", "client_ip", "clientip"],
            FieldName::Time => &[
                "time",
                "timestamp",
                "time_iso8601",
                "time_local",
                "msec",
                "ts",
            ],
            FieldName::Status => &["status"],
            FieldName::Method => &["method", "request_method"],
            FieldName::Path => &["endpoint", "path", "uri", "request_uri"],
            FieldName::Request => &["request"],
            FieldName::Bytes => &["bytes", "body_bytes_sent", "response_size"],
            FieldName::UserAgent => &["ua", "user_agent", "http_user_agent"],
            FieldName::Referer => &["referer", "http_referer"],
            FieldName::Xff => &["http_x_forwarded_for", "xff"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldName::Ip => "ip",
            FieldName::Time => "time",
            FieldName::Status => "status",
            FieldName::Method => "method",
            FieldName::Path => "path",
            FieldName::Request => "request",
            FieldName::Bytes => "bytes",
            FieldName::UserAgent => "user-agent",
            FieldName::Referer => "referer",
            FieldName::Xff => "xff",
        }
    }

    pub fn from_name(s: &str) -> Option<FieldName> {
        FieldName::ALL
            .into_iter()
            .find(|f| f.name() == s || f.name().replace('-', "_") == s)
    }
}

/// Which JSON keys feed which field. Default: every common variant; `--field ip=client` pins one.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    overrides: Vec<(FieldName, String)>,
}

impl FieldMap {
    pub fn set(&mut self, field: FieldName, key: String) {
        self.overrides.retain(|(f, _)| *f != field);
        self.overrides.push((field, key));
    }

    fn lookup<'a>(&self, obj: &'a Map<String, Value>, field: FieldName) -> Option<&'a Value> {
        if let Some((_, key)) = self.overrides.iter().find(|(f, _)| *f == field) {
            return obj.get(key).filter(|v| !v.is_null());
        }
        field
            .default_keys()
            .iter()
            .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
    }

    fn tried(&self, field: FieldName) -> String {
        match self.overrides.iter().find(|(f, _)| *f == field) {
            Some((_, key)) => key.clone(),
            None => field.default_keys().join("|"),
        }
    }
}

pub(super) fn parse(line: &[u8], opts: &ParseOptions) -> Result<Request, LineError> {
    let obj: Map<String, Value> = match serde_json::from_slice(line) {
        Ok(o) => o,
        Err(first) => {
            let fixed =
                unescape_nginx_default(line).ok_or_else(|| LineError::Json(first.to_string()))?;
            serde_json::from_slice(&fixed).map_err(|_| LineError::Json(first.to_string()))?
        }
    };
    let f = &opts.fields;
    let text = |field| f.lookup(&obj, field).map(value_text);

    let peer = text(FieldName::Ip).ok_or_else(|| LineError::MissingIp(f.tried(FieldName::Ip)))?;
    let peer = parse_ip(&peer)?;
    let time_value = f
        .lookup(&obj, FieldName::Time)
        .ok_or_else(|| LineError::MissingTime(f.tried(FieldName::Time)))?;
    let time = match time_value {
        Value::Number(n) => n.as_f64().and_then(super::time::epoch_from_number),
        other => parse_any_time(&value_text(other)),
    }
    .ok_or_else(|| LineError::InvalidTime(super::clip(&value_text(time_value), 40)))?;
    let status = match f.lookup(&obj, FieldName::Status) {
        None => 0,
        Some(v) => {
            let s = value_text(v);
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|s| *s < 1000)
                .ok_or(LineError::InvalidStatus(super::clip(&s, 16)))?
        }
    };
    let (req_method, req_path) = match text(FieldName::Request) {
        Some(r) => split_request(&r),
        None => ("-".to_string(), String::new()),
    };
    let method = text(FieldName::Method).unwrap_or(req_method);
    let path = text(FieldName::Path).unwrap_or(req_path);
    let bytes = text(FieldName::Bytes)
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(0);
    let xff = text(FieldName::Xff);
    let ip = client_ip(peer, xff.as_deref(), &opts.trusted_proxies)?;
    Ok(Request {
        ip,
        time,
        method,
        path,
        status,
        bytes,
        user_agent: text(FieldName::UserAgent).unwrap_or_default(),
        referer: text(FieldName::Referer).unwrap_or_default(),
    })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rewrite nginx's default `\xHH` escapes into something JSON accepts: `\x22` → `\"`,
/// `\x5C` → `\\`, other control bytes → `\u00HH`, bytes ≥ 0x80 back to raw bytes (then read as
/// UTF-8, lossily). Returns `None` when there is nothing to rewrite.
fn unescape_nginx_default(line: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(line, b"\\x")?;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
            if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                match h << 4 | l {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    c if c < 0x20 || c == 0x7f => {
                        out.extend_from_slice(format!("\\u{c:04x}").as_bytes())
                    }
                    c => out.push(c),
                }
                i += 4;
                continue;
            }
        }
        if line[i] == b'\\' && i + 1 < line.len() {
            out.extend_from_slice(&line[i..i + 2]);
            i += 2;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::{parse_line, Format, LineError, ParseOptions};
    use super::*;

    fn p(line: &str) -> Result<Request, LineError> {
        parse_line(line.as_bytes(), Format::Json, &ParseOptions::default())
    }

    #[test]
    fn every_field_name_variant_maps() {
        for ip in FieldName::Ip.default_keys() {
            for time in FieldName::Time.default_keys() {
                let tv = match *time {
                    "msec" => "\"1689687856.120\"".to_string(),
                    "ts" => "1689687856".to_string(),
                    "time_local" => "\"18/Jul/2023:13:44:16 +0000\"".to_string(),
                    _ => "\"2023-07-18T13:44:16+00:00\"".to_string(),
                };
                let line = format!(r#"{{"{ip}":"192.0.2.9","{time}":{tv},"status":"404"}}"#);
                let r = p(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(
                    (r.ip.to_string().as_str(), r.time, r.status),
                    ("192.0.2.9", 1_689_687_856, 404),
                    "{line}"
                );
            }
        }
        let base = r#""ip":"192.0.2.9","time":1689687856"#;
        for m in FieldName::Method.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{m}":"POST"}}"#)).unwrap().method,
                "POST"
            );
        }
        for k in FieldName::Path.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{k}":"/login"}}"#)).unwrap().path,
                "/login"
            );
        }
        for k in FieldName::Bytes.default_keys() {
            assert_eq!(p(&format!(r#"{{{base},"{k}":"512"}}"#)).unwrap().bytes, 512);
        }
        for k in FieldName::UserAgent.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{k}":"curl/8"}}"#))
                    .unwrap()
                    .user_agent,
                "curl/8"
            );
        }
        for k in FieldName::Referer.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{k}":"http://x/"}}"#))
                    .unwrap()
                    .referer,
                "http://x/"
            );
        }
        let r = p(&format!(
            r#"{{{base},"request":"DELETE /a?b=1 HTTP/1.1","status":200}}"#
        ))
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.status),
            ("DELETE", "/a?b=1", 200)
        );
    }

    #[test]
    fn xff_keys_for_trusted_proxy() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let opts = ParseOptions {
            trusted_proxies: trusted,
            ..Default::default()
        };
        for k in FieldName::Xff.default_keys() {
            let line = format!(
                r#"{{"remote_addr":"10.1.1.1","time":1689687856,"{k}":"198.51.100.3, 10.2.2.2"}}"#
            );
            let r = parse_line(line.as_bytes(), Format::Json, &opts).unwrap();
            assert_eq!(r.ip.to_string(), "198.51.100.3");
        }
    }

    #[test]
    fn field_override() {
        let mut opts = ParseOptions::default();
        opts.fields.set(FieldName::Ip, "peer".into());
        opts.fields.set(FieldName::Time, "when".into());
        let line = br#"{"peer":"2001:db8::1","ip":"192.0.2.1","when":"2023-07-18T13:44:16Z"}"#;
        let r = parse_line(line, Format::Json, &opts).unwrap();
        assert_eq!(r.ip.to_string(), "2001:db8::1");
        let err = parse_line(br#"{"ip":"192.0.2.1","when":1}"#, Format::Json, &opts).unwrap_err();
        assert_eq!(err, LineError::MissingIp("peer".into()));
    }

    #[test]
    fn nginx_default_escaping() {
        let line = r#"{"remote_addr":"192.0.2.1","time_local":"18/Jul/2023:13:44:16 +0000","request":"GET /a\x22b HTTP/1.1","http_user_agent":"caf\xC3\xA9 \x5C","status":"200"}"#;
        let r = p(line).unwrap();
        assert_eq!(r.path, "/a\"b");
        assert_eq!(r.user_agent, "café \\");
    }

    #[test]
    fn escape_json_unicode_and_ipv6() {
        let line = r#"{"remote_addr":"::ffff:192.0.2.1","time":"2023-07-18T13:44:16Z","uri":"/\u003cscript\u003e","ua":"\u0000x"}"#;
        let r = p(line).unwrap();
        assert_eq!(r.ip.to_string(), "192.0.2.1");
        assert_eq!(r.path, "/<script>");
    }

    #[test]
    fn bad_json_lines() {
        assert!(matches!(p("{not json"), Err(LineError::Json(_))));
        assert!(matches!(p("[1,2]"), Err(LineError::Json(_))));
        assert!(matches!(p(r#"{"time":1}"#), Err(LineError::MissingIp(_))));
        assert!(matches!(
            p(r#"{"ip":"1.2.3.4"}"#),
            Err(LineError::MissingTime(_))
        ));
        assert!(matches!(
            p(r#"{"ip":"-","time":1}"#),
            Err(LineError::InvalidIp(_))
        ));
        assert!(matches!(
            p(r#"{"ip":"unknown","time":1}"#),
            Err(LineError::InvalidIp(_))
        ));
        assert!(matches!(
            p(r#"{"ip":"1.2.3.4","time":"soon"}"#),
            Err(LineError::InvalidTime(_))
        ));
        assert!(matches!(
            p(r#"{"ip":"1.2.3.4","time":1,"status":"OK"}"#),
            Err(LineError::InvalidStatus(_))
        ));
        // Unknown fields are fine.
        assert!(p(r#"{"ip":"1.2.3.4","time":1,"upstream":"x","extra":{"a":[1]}}"#).is_ok());
    }
}
