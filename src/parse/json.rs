//! nginx JSON `log_format` lines, with the field names people actually use mapped automatically.
//!
//! nginx writes JSON two ways: `escape=json` (valid JSON) and the default escaping, which writes
//! `"` `\` and non-ASCII bytes as `\xHH` — not valid JSON. A line that fails to parse is retried
//! once with `\xHH` rewritten, so both work without configuration.

use super::{
    client_ip, parse_ip, split_request, time::parse_any_time, LineError, ParseOptions, Request,
};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

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

    fn tried(&self, field: FieldName) -> String {
        match self.overrides.iter().find(|(f, _)| *f == field) {
            Some((_, key)) => key.clone(),
            None => field.default_keys().join("|"),
        }
    }
}

pub(super) fn parse(line: &[u8], opts: &ParseOptions) -> Result<Request, LineError> {
    match parse_fields(line, &opts.fields) {
        Ok(fields) => build(fields, opts),
        Err(first) => {
            let fixed =
                unescape_nginx_default(line).ok_or_else(|| LineError::Json(first.to_string()))?;
            let fields = parse_fields(&fixed, &opts.fields)
                .map_err(|_| LineError::Json(first.to_string()))?;
            build(fields, opts)
        }
    }
}

/// A JSON value as far as bouncer cares: text (borrowed from the line when it has no escapes),
/// a number, or something to ignore.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(f64, Option<u64>),
    Null,
    Other,
}

impl Scalar<'_> {
    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Scalar::Str(s) => Some(Cow::Borrowed(s)),
            Scalar::Num(_, Some(u)) => Some(Cow::Owned(u.to_string())),
            Scalar::Num(f, None) => Some(Cow::Owned(f.to_string())),
            Scalar::Null | Scalar::Other => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v as f64, Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v as f64, u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Num(v, None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The mapped fields of one line; for each, the value of the most preferred key present.
struct Fields<'a> {
    values: [Option<(u8, Scalar<'a>)>; 10],
}

fn slot(f: FieldName) -> usize {
    FieldName::ALL.iter().position(|x| *x == f).unwrap_or(0)
}

impl FieldMap {
    /// Which field a key feeds, and its preference (lower wins).
    fn classify(&self, key: &str) -> Option<(FieldName, u8)> {
        if let Some((f, _)) = self.overrides.iter().find(|(_, k)| k == key) {
            return Some((*f, 0));
        }
        let (f, prio) = default_field(key)?;
        (!self.overrides.iter().any(|(o, _)| *o == f)).then_some((f, prio))
    }
}

/// The default key table (`FieldName::default_keys`, tested equal) as one match: the per-key
/// hot path.
fn default_field(key: &str) -> Option<(FieldName, u8)> {
    use FieldName::*;
    Some(match key {
        "ip" => (Ip, 1),
        "remote_addr" => (Ip, 2),
        "source_ip" => (Ip, 3),
        "client_ip" => (Ip, 4),
        "clientip" => (Ip, 5),
        "time" => (Time, 1),
        "timestamp" => (Time, 2),
        "time_iso8601" => (Time, 3),
        "time_local" => (Time, 4),
        "msec" => (Time, 5),
        "ts" => (Time, 6),
        "status" => (Status, 1),
        "method" => (Method, 1),
        "request_method" => (Method, 2),
        "endpoint" => (Path, 1),
        "path" => (Path, 2),
        "uri" => (Path, 3),
        "request_uri" => (Path, 4),
        "request" => (Request, 1),
        "bytes" => (Bytes, 1),
        "body_bytes_sent" => (Bytes, 2),
        "response_size" => (Bytes, 3),
        "ua" => (UserAgent, 1),
        "user_agent" => (UserAgent, 2),
        "http_user_agent" => (UserAgent, 3),
        "referer" => (Referer, 1),
        "http_referer" => (Referer, 2),
        "http_x_forwarded_for" => (Xff, 1),
        "xff" => (Xff, 2),
        _ => return None,
    })
}

struct LineSeed<'m>(&'m FieldMap);

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'m>(&'m FieldMap);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields {
                    values: Default::default(),
                };
                while let Some(key) = a.next_key::<Scalar<'de>>()? {
                    let classified = match &key {
                        Scalar::Str(k) => self.0.classify(k),
                        _ => None,
                    };
                    let Some((field, prio)) = classified else {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let v: Scalar<'de> = a.next_value()?;
                    if matches!(v, Scalar::Null) {
                        continue;
                    }
                    let cell = &mut fields.values[slot(field)];
                    if cell.as_ref().is_none_or(|(p, _)| prio < *p) {
                        *cell = Some((prio, v));
                    }
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V(self.0))
    }
}

fn parse_fields<'a>(line: &'a [u8], map: &FieldMap) -> Result<Fields<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let fields = LineSeed(map).deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

fn build(fields: Fields<'_>, opts: &ParseOptions) -> Result<Request, LineError> {
    let f = &opts.fields;
    let get = |field: FieldName| fields.values[slot(field)].as_ref().map(|(_, v)| v);
    let text = |field: FieldName| get(field).and_then(Scalar::text);

    let peer = text(FieldName::Ip).ok_or_else(|| LineError::MissingIp(f.tried(FieldName::Ip)))?;
    let peer = parse_ip(&peer)?;
    let time_value =
        get(FieldName::Time).ok_or_else(|| LineError::MissingTime(f.tried(FieldName::Time)))?;
    let time = match time_value {
        Scalar::Num(n, _) => super::time::epoch_from_number(*n),
        other => other.text().and_then(|t| parse_any_time(&t)),
    }
    .ok_or_else(|| {
        LineError::InvalidTime(super::clip(&time_value.text().unwrap_or_default(), 40))
    })?;
    let status = match text(FieldName::Status) {
        None => 0,
        Some(s) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|s| *s < 1000)
            .ok_or_else(|| LineError::InvalidStatus(super::clip(&s, 16)))?,
    };
    let request = text(FieldName::Request);
    let (req_method, req_path) = match &request {
        Some(r) => split_request(r),
        None => ("-", ""),
    };
    let method = text(FieldName::Method);
    let path = text(FieldName::Path);
    let bytes = text(FieldName::Bytes)
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or(0);
    let xff = text(FieldName::Xff);
    let ip = client_ip(peer, xff.as_deref(), &opts.trusted_proxies)?;
    Ok(Request::new(
        ip,
        time,
        method.as_deref().unwrap_or(req_method),
        path.as_deref().unwrap_or(req_path),
        status,
        bytes,
        text(FieldName::UserAgent).as_deref().unwrap_or(""),
        text(FieldName::Referer).as_deref().unwrap_or(""),
    ))
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
                p(&format!(r#"{{{base},"{m}":"POST"}}"#)).unwrap().method(),
                "POST"
            );
        }
        for k in FieldName::Path.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{k}":"/login"}}"#)).unwrap().path(),
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
                    .user_agent(),
                "curl/8"
            );
        }
        for k in FieldName::Referer.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},"{k}":"http://x/"}}"#))
                    .unwrap()
                    .referer(),
                "http://x/"
            );
        }
        let r = p(&format!(
            r#"{{{base},"request":"DELETE /a?b=1 HTTP/1.1","status":200}}"#
        ))
        .unwrap();
        assert_eq!((r.method(), r.path(), r.status), ("DELETE", "/a?b=1", 200));
    }

    #[test]
    fn default_key_table_matches_the_documented_lists() {
        for f in FieldName::ALL {
            for (i, k) in f.default_keys().iter().enumerate() {
                assert_eq!(default_field(k), Some((f, i as u8 + 1)), "{k}");
            }
        }
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
        assert_eq!(r.path(), "/a\"b");
        assert_eq!(r.user_agent(), "café \\");
    }

    #[test]
    fn escape_json_unicode_and_ipv6() {
        let line = r#"{"remote_addr":"::ffff:192.0.2.1","time":"2023-07-18T13:44:16Z","uri":"/\u003cscript\u003e","ua":"\u0000x"}"#;
        let r = p(line).unwrap();
        assert_eq!(r.ip.to_string(), "192.0.2.1");
        assert_eq!(r.path(), "/<script>");
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
