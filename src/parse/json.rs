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
    Path,
    Request,
    Bytes,
    UserAgent,
    Xff,
}

impl FieldName {
    pub const ALL: [FieldName; 8] = [
        FieldName::Ip,
        FieldName::Time,
        FieldName::Status,
        FieldName::Path,
        FieldName::Request,
        FieldName::Bytes,
        FieldName::UserAgent,
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
            FieldName::Path => &["endpoint", "path", "uri", "request_uri"],
            FieldName::Request => &["request"],
            FieldName::Bytes => &["bytes", "body_bytes_sent", "response_size"],
            FieldName::UserAgent => &["ua", "user_agent", "http_user_agent"],
            FieldName::Xff => &["http_x_forwarded_for", "xff"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldName::Ip => "ip",
            FieldName::Time => "time",
            FieldName::Status => "status",
            FieldName::Path => "path",
            FieldName::Request => "request",
            FieldName::Bytes => "bytes",
            FieldName::UserAgent => "user-agent",
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
    // nginx writes one flat object of strings and numbers per line: read that directly, and
    // leave everything else (escapes in a field we keep, nesting, anything unusual or invalid)
    // to serde_json, which also produces the error messages.
    if let Some(fields) = scan_flat(line, &opts.fields) {
        return build(fields, opts);
    }
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

/// The fast path: a flat JSON object whose kept string values have no escapes. `None` means
/// "not sure": the caller parses the line with serde_json instead, so this never decides that a
/// line is bad, and whatever it accepts, serde_json reads the same.
fn scan_flat<'a>(line: &'a [u8], map: &FieldMap) -> Option<Fields<'a>> {
    // One UTF-8 check of the whole line (SIMD) instead of one per field; every slice below
    // starts and ends next to an ASCII `"` or delimiter, so it is on a char boundary.
    let text = simdutf8::basic::from_utf8(line).ok()?;
    let mut fields = Fields::default();
    let n = line.len();
    let ws = |i: &mut usize| {
        while *i < n && matches!(line[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if line.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    ws(&mut i);
    if line.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            // key
            if line.get(i) != Some(&b'"') {
                return None;
            }
            let k0 = i + 1;
            let k1 = k0 + memchr::memchr2(b'"', b'\\', &line[k0..])?;
            if line[k1] != b'"' {
                return None;
            }
            let key = &line[k0..k1];
            i = k1 + 1;
            ws(&mut i);
            if line.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            ws(&mut i);
            let slot_prio = map.classify(key);
            // value
            let value = match *line.get(i)? {
                b'"' => {
                    let v0 = i + 1;
                    let mut j = v0;
                    let mut escaped = false;
                    loop {
                        j += memchr::memchr2(b'"', b'\\', &line[j..])?;
                        if line[j] == b'"' {
                            break;
                        }
                        escaped = true;
                        j += 2; // the escape and the character it escapes
                        if j > n {
                            return None;
                        }
                    }
                    i = j + 1;
                    if slot_prio.is_none() {
                        Scalar::Other
                    } else if escaped {
                        return None; // unescaping is serde_json's job
                    } else {
                        Scalar::Str(Cow::Borrowed(text.get(v0..j)?))
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let v0 = i;
                    while i < n && matches!(line[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        i += 1;
                    }
                    let text = text.get(v0..i)?;
                    match text.parse::<u64>() {
                        Ok(u) => Scalar::Num(u as f64, Some(u)),
                        Err(_) => match text.parse::<i64>() {
                            Ok(v) => Scalar::Num(v as f64, None),
                            Err(_) => Scalar::Num(text.parse::<f64>().ok()?, None),
                        },
                    }
                }
                b'n' if line[i..].starts_with(b"null") => {
                    i += 4;
                    Scalar::Null
                }
                b't' if line[i..].starts_with(b"true") => {
                    i += 4;
                    Scalar::Other
                }
                b'f' if line[i..].starts_with(b"false") => {
                    i += 5;
                    Scalar::Other
                }
                _ => return None, // nested values, garbage
            };
            if let Some((field, prio)) = slot_prio {
                fields.offer(field, prio, value);
            }
            ws(&mut i);
            match line.get(i) {
                Some(b',') => {
                    i += 1;
                    ws(&mut i);
                }
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    ws(&mut i);
    (i == n).then_some(fields)
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
#[derive(Default)]
struct Fields<'a> {
    values: [Option<(u8, Scalar<'a>)>; FieldName::ALL.len()],
}

impl<'a> Fields<'a> {
    /// Keep `v` for `field` unless a more preferred key already gave one. `null` counts as absent.
    #[inline(always)]
    fn offer(&mut self, field: FieldName, prio: u8, v: Scalar<'a>) {
        if matches!(v, Scalar::Null) {
            return;
        }
        let cell = &mut self.values[slot(field)];
        if cell.as_ref().is_none_or(|(p, _)| prio < *p) {
            *cell = Some((prio, v));
        }
    }
}

/// A field's index in [`Fields`]: its declaration order, which is also `FieldName::ALL`'s.
fn slot(f: FieldName) -> usize {
    f as usize
}

impl FieldMap {
    /// Which field a key feeds, and its preference (lower wins).
    fn classify(&self, key: &[u8]) -> Option<(FieldName, u8)> {
        if let Some((f, _)) = self.overrides.iter().find(|(_, k)| k.as_bytes() == key) {
            return Some((*f, 0));
        }
        let (f, prio) = default_field(key)?;
        (!self.overrides.iter().any(|(o, _)| *o == f)).then_some((f, prio))
    }
}

/// The default key table (`FieldName::default_keys`, tested equal) as one match: the per-key
/// hot path.
fn default_field(key: &[u8]) -> Option<(FieldName, u8)> {
    use FieldName::*;
    Some(match key {
        b"ip" => (Ip, 1),
        b"remote_addr" => (Ip, 2),
        b"source_ip" => (Ip, 3),
        b"client_ip" => (Ip, 4),
        b"clientip" => (Ip, 5),
        b"time" => (Time, 1),
        b"timestamp" => (Time, 2),
        b"time_iso8601" => (Time, 3),
        b"time_local" => (Time, 4),
        b"msec" => (Time, 5),
        b"ts" => (Time, 6),
        b"status" => (Status, 1),
        b"endpoint" => (Path, 1),
        b"path" => (Path, 2),
        b"uri" => (Path, 3),
        b"request_uri" => (Path, 4),
        b"request" => (Request, 1),
        b"bytes" => (Bytes, 1),
        b"body_bytes_sent" => (Bytes, 2),
        b"response_size" => (Bytes, 3),
        b"ua" => (UserAgent, 1),
        b"user_agent" => (UserAgent, 2),
        b"http_user_agent" => (UserAgent, 3),
        b"http_x_forwarded_for" => (Xff, 1),
        b"xff" => (Xff, 2),
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
                let mut fields = Fields::default();
                while let Some(key) = a.next_key::<Scalar<'de>>()? {
                    let classified = match &key {
                        Scalar::Str(k) => self.0.classify(k.as_bytes()),
                        _ => None,
                    };
                    let Some((field, prio)) = classified else {
                        a.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    fields.offer(field, prio, a.next_value()?);
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

    let peer = match get(FieldName::Ip) {
        Some(Scalar::Str(s)) => parse_ip(s)?,
        Some(other) => parse_ip(&other.text().unwrap_or_default())?,
        None => return Err(LineError::MissingIp(f.tried(FieldName::Ip))),
    };
    let time_value =
        get(FieldName::Time).ok_or_else(|| LineError::MissingTime(f.tried(FieldName::Time)))?;
    let time = match time_value {
        Scalar::Num(n, _) => super::time::epoch_from_number(*n),
        Scalar::Str(t) => parse_any_time(t),
        Scalar::Null | Scalar::Other => None,
    }
    .ok_or_else(|| {
        LineError::InvalidTime(super::clip(&time_value.text().unwrap_or_default(), 40))
    })?;
    let status = match get(FieldName::Status) {
        None => 0,
        Some(Scalar::Num(_, Some(u))) if *u < 1000 => *u as u16,
        Some(v) => {
            let s = v.text().unwrap_or_default();
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|s| *s < 1000)
                .ok_or_else(|| LineError::InvalidStatus(super::clip(&s, 16)))?
        }
    };
    let bytes = match get(FieldName::Bytes) {
        Some(Scalar::Num(_, Some(u))) => *u,
        Some(Scalar::Str(b)) => b.trim().parse().unwrap_or(0),
        _ => 0,
    };
    let path = text(FieldName::Path);
    let request = text(FieldName::Request);
    let (method, path) = match (&path, &request) {
        (Some(p), Some(r)) => (split_request(r).0, p.as_ref()),
        (Some(p), None) => ("-", p.as_ref()),
        (None, Some(r)) => split_request(r),
        (None, None) => ("-", ""),
    };
    let xff = text(FieldName::Xff);
    let ip = client_ip(peer, xff.as_deref(), &opts.trusted_proxies)?;
    Ok(Request::new(
        ip,
        time,
        method,
        path,
        status,
        bytes,
        text(FieldName::UserAgent).as_deref().unwrap_or(""),
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
        let r = p(&format!(
            r#"{{{base},"request":"DELETE /a?b=1 HTTP/1.1","status":200}}"#
        ))
        .unwrap();
        assert_eq!((r.path(), r.status), ("/a?b=1", 200));
    }

    #[test]
    fn slots_follow_the_declaration_order() {
        for (i, f) in FieldName::ALL.into_iter().enumerate() {
            assert_eq!(slot(f), i);
        }
    }

    #[test]
    fn default_key_table_matches_the_documented_lists() {
        for f in FieldName::ALL {
            for (i, k) in f.default_keys().iter().enumerate() {
                assert_eq!(default_field(k.as_bytes()), Some((f, i as u8 + 1)), "{k}");
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

    /// Whatever the flat scanner accepts, serde_json reads the same; what it declines goes to
    /// serde_json, so every line gets the same result either way.
    #[test]
    fn flat_scanner_agrees_with_serde() {
        let lines: &[&str] = &[
            r#"{"time_local":"17/May/2015:00:00:00 +0000","remote_addr":"194.150.186.133","request":"GET /a.gif HTTP/1.1","status":200,"body_bytes_sent":8095,"http_referer":"http://x/","http_user_agent":"Mozilla/5.0"}"#,
            r#" { "ip" : "2001:db8::1" , "ts" : 1689687856.5 , "status" : "404" , "uri" : "/é" } "#,
            r#"{"ip":"192.0.2.1","time":1689687856,"ua":"a \"quoted\" agent"}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"referer":"skipped \"escape\" \\","path":"/p"}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"extra":{"nested":[1,2]},"path":"/p"}"#,
            r#"{"ip":"192.0.2.1","remote_addr":"198.51.100.1","time":-5,"bytes":"12","ok":true,"no":false,"n":null}"#,
            r#"{"ip":null,"remote_addr":"198.51.100.1","time":"2023-07-18T13:44:16Z","status":1e2}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"status":200}trailing"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"status":200"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"status":20x}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"path":"/unterminated}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"k\u0065y":"v"}"#,
            r#"{}"#,
            r#"{"ip":"192.0.2.1","time":1689687856,}"#,
            r#"["ip"]"#,
            r#"{"ip":"192.0.2.1","time":1689687856,"path":"/\"}"#,
        ];
        let opts = ParseOptions::default();
        for line in lines {
            let via_serde = parse_fields(line.as_bytes(), &opts.fields)
                .map_err(|e| LineError::Json(e.to_string()))
                .and_then(|f| build(f, &opts));
            // (a declined line is parsed by serde_json in parse())
            if let Some(fields) = scan_flat(line.as_bytes(), &opts.fields) {
                assert_eq!(build(fields, &opts), via_serde, "{line}");
            }
        }
        // The common nginx line takes the fast path.
        assert!(scan_flat(lines[0].as_bytes(), &opts.fields).is_some());
        assert!(scan_flat(lines[1].as_bytes(), &opts.fields).is_some());
        assert!(scan_flat(lines[3].as_bytes(), &opts.fields).is_some());
        assert!(scan_flat(lines[2].as_bytes(), &opts.fields).is_none());
        assert!(scan_flat(lines[4].as_bytes(), &opts.fields).is_none());
    }
}
