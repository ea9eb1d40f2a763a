//! JSON access logs, with the field names people actually use mapped automatically: nginx JSON
//! `log_format`s, Matomo's (`date`, `length`, status as a string), Traefik's (`ClientHost`,
//! `StartUTC`, `DownstreamStatus`, …) and Caddy's (nested `request.client_ip`/`remote_ip`,
//! `request.headers.User-Agent`, `ts`).
//!
//! nginx writes JSON two ways: `escape=json` (valid JSON) and the default escaping, which writes
//! `"` `\` and non-ASCII bytes as `\xHH` — not valid JSON. A line that fails to parse is retried
//! once with `\xHH` rewritten, so both work without configuration.

use super::{
    client_ip, parse_ip, split_request,
    time::{any_time, TimeError},
    LineError, ParseOptions, Request,
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
    Method,
}

impl FieldName {
    pub const ALL: [FieldName; 9] = [
        FieldName::Ip,
        FieldName::Time,
        FieldName::Status,
        FieldName::Path,
        FieldName::Request,
        FieldName::Bytes,
        FieldName::UserAgent,
        FieldName::Xff,
        FieldName::Method,
    ];

    /// The JSON keys tried, in order, when the user did not name one with `--field`. A dotted
    /// key is a key of a nested object (Caddy's `request.remote_ip`).
    pub fn default_keys(self) -> &'static [&'static str] {
        match self {
            FieldName::Ip => &[
                "ip",
                "remote_addr",
                "source_ip",
                "client_ip",
                "clientip",
                "remote_ip",
                "ClientHost",
                "request.client_ip",
                "request.remote_ip",
            ],
            FieldName::Time => &[
                "time",
                "timestamp",
                "time_iso8601",
                "time_local",
                "msec",
                "ts",
                "date",
                "@timestamp",
                "StartUTC",
            ],
            FieldName::Status => &["status", "status_code", "DownstreamStatus"],
            FieldName::Path => &[
                "endpoint",
                "path",
                "uri",
                "request_uri",
                "RequestPath",
                "request.uri",
            ],
            FieldName::Request => &["request"],
            FieldName::Bytes => &[
                "bytes",
                "body_bytes_sent",
                "response_size",
                "length",
                "size",
                "bytes_sent",
                "DownstreamContentSize",
            ],
            FieldName::UserAgent => &[
                "ua",
                "user_agent",
                "http_user_agent",
                "request_User-Agent",
                "request.headers.User-Agent",
            ],
            FieldName::Xff => &[
                "http_x_forwarded_for",
                "xff",
                "request_X-Forwarded-For",
                "request.headers.X-Forwarded-For",
            ],
            FieldName::Method => &[
                "method",
                "request_method",
                "RequestMethod",
                "request.method",
            ],
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
            FieldName::Method => "method",
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

    /// The key that a preference number stands for (see [`FieldMap::classify`]).
    fn key_of(&self, field: FieldName, prio: u8) -> String {
        match prio {
            0 => self.tried(field),
            p => field
                .default_keys()
                .get(p as usize - 1)
                .map_or_else(String::new, |k| k.to_string()),
        }
    }

    /// The pinned keys, as `field=key` (for `bouncer formats`).
    pub fn pinned(&self) -> impl Iterator<Item = (FieldName, &str)> {
        self.overrides.iter().map(|(f, k)| (*f, k.as_str()))
    }
}

/// Parse one JSON line, reading fields through `map` (`opts.fields`, or the keys a JSON
/// `log_format` defines).
pub(super) fn parse(
    line: &[u8],
    map: &FieldMap,
    opts: &ParseOptions,
) -> Result<Request, LineError> {
    parse_used(line, map, opts).map(|(r, _)| r)
}

/// [`parse`], also returning which key fed each field (for `bouncer formats`).
pub(super) fn parse_keyed(
    line: &[u8],
    map: &FieldMap,
    opts: &ParseOptions,
) -> Result<(Request, Vec<(FieldName, String)>), LineError> {
    let (req, used) = parse_used(line, map, opts)?;
    let keys = FieldName::ALL
        .into_iter()
        .filter_map(|f| used[slot(f)].map(|p| (f, map.key_of(f, p))))
        .collect();
    Ok((req, keys))
}

fn parse_used(
    line: &[u8],
    map: &FieldMap,
    opts: &ParseOptions,
) -> Result<(Request, KeysUsed), LineError> {
    // nginx writes one flat object of strings and numbers per line: read that directly, and
    // leave everything else (escapes in a field we keep, nesting, anything unusual or invalid)
    // to serde_json, which also produces the error messages.
    if let Some(fields) = scan_flat(line, map) {
        return build(fields, map, opts);
    }
    match parse_fields(line, map) {
        Ok(fields) => build(fields, map, opts),
        Err(first) => {
            let fixed =
                unescape_nginx_default(line).ok_or_else(|| LineError::Json(first.to_string()))?;
            let fields =
                parse_fields(&fixed, map).map_err(|_| LineError::Json(first.to_string()))?;
            build(fields, map, opts)
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

/// Where in a line's JSON a key is: the top-level object, or one of the nested objects bouncer
/// reads (Caddy's `request` and `request.headers`). Everything else nested is skipped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Request,
    Headers,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Level::Top => "",
            Level::Request => "request.",
            Level::Headers => "request.headers.",
        }
    }

    /// The nested object a key opens, if bouncer reads inside it.
    fn child(self, key: &[u8]) -> Option<Level> {
        match (self, key) {
            (Level::Top, b"request") => Some(Level::Request),
            (Level::Request, b"headers") => Some(Level::Headers),
            _ => None,
        }
    }
}

impl FieldMap {
    /// Which field a top-level key feeds, and its preference (lower wins).
    fn classify(&self, key: &[u8]) -> Option<(FieldName, u8)> {
        self.classify_at(Level::Top, key)
    }

    fn classify_at(&self, level: Level, key: &[u8]) -> Option<(FieldName, u8)> {
        let prefix = level.prefix().as_bytes();
        let pinned = self.overrides.iter().find(|(_, k)| {
            let k = k.as_bytes();
            k.len() == prefix.len() + key.len() && k.starts_with(prefix) && k.ends_with(key)
        });
        if let Some((f, _)) = pinned {
            return Some((*f, 0));
        }
        let (f, prio) = match level {
            Level::Top => default_field(key)?,
            Level::Request | Level::Headers => default_nested(level, key)?,
        };
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
        b"remote_ip" => (Ip, 6),
        b"ClientHost" => (Ip, 7),
        b"time" => (Time, 1),
        b"timestamp" => (Time, 2),
        b"time_iso8601" => (Time, 3),
        b"time_local" => (Time, 4),
        b"msec" => (Time, 5),
        b"ts" => (Time, 6),
        b"date" => (Time, 7),
        b"@timestamp" => (Time, 8),
        b"StartUTC" => (Time, 9),
        b"status" => (Status, 1),
        b"status_code" => (Status, 2),
        b"DownstreamStatus" => (Status, 3),
        b"endpoint" => (Path, 1),
        b"path" => (Path, 2),
        b"uri" => (Path, 3),
        b"request_uri" => (Path, 4),
        b"RequestPath" => (Path, 5),
        b"request" => (Request, 1),
        b"bytes" => (Bytes, 1),
        b"body_bytes_sent" => (Bytes, 2),
        b"response_size" => (Bytes, 3),
        b"length" => (Bytes, 4),
        b"size" => (Bytes, 5),
        b"bytes_sent" => (Bytes, 6),
        b"DownstreamContentSize" => (Bytes, 7),
        b"ua" => (UserAgent, 1),
        b"user_agent" => (UserAgent, 2),
        b"http_user_agent" => (UserAgent, 3),
        b"request_User-Agent" => (UserAgent, 4),
        b"http_x_forwarded_for" => (Xff, 1),
        b"xff" => (Xff, 2),
        b"request_X-Forwarded-For" => (Xff, 3),
        b"method" => (Method, 1),
        b"request_method" => (Method, 2),
        b"RequestMethod" => (Method, 3),
        _ => return None,
    })
}

/// The nested keys of the default table (Caddy: `request.client_ip`, …).
fn default_nested(level: Level, key: &[u8]) -> Option<(FieldName, u8)> {
    use FieldName::*;
    Some(match (level, key) {
        (Level::Request, b"client_ip") => (Ip, 8),
        (Level::Request, b"remote_ip") => (Ip, 9),
        (Level::Request, b"uri") => (Path, 6),
        (Level::Request, b"method") => (Method, 4),
        (Level::Headers, b"User-Agent") => (UserAgent, 5),
        (Level::Headers, b"X-Forwarded-For") => (Xff, 4),
        _ => return None,
    })
}

struct LineSeed<'m>(&'m FieldMap);

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut fields = Fields::default();
        d.deserialize_map(ObjectVisitor {
            map: self.0,
            level: Level::Top,
            fields: &mut fields,
        })?;
        Ok(fields)
    }
}

/// Visits one object at `level`, offering the values of the keys it knows to `fields` and
/// descending into the nested objects bouncer reads.
struct ObjectVisitor<'m, 'f, 'de> {
    map: &'m FieldMap,
    level: Level,
    fields: &'f mut Fields<'de>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while let Some(key) = a.next_key::<Scalar<'de>>()? {
            let Scalar::Str(k) = &key else {
                a.next_value::<IgnoredAny>()?;
                continue;
            };
            let class = self.map.classify_at(self.level, k.as_bytes());
            let child = self.level.child(k.as_bytes());
            if class.is_none() && child.is_none() {
                a.next_value::<IgnoredAny>()?;
                continue;
            }
            a.next_value_seed(ValueSeed {
                map: self.map,
                fields: &mut *self.fields,
                class,
                child,
            })?;
        }
        Ok(())
    }
}

/// A value whose key bouncer knows: a scalar for its field, or a nested object to descend into.
struct ValueSeed<'m, 'f, 'de> {
    map: &'m FieldMap,
    fields: &'f mut Fields<'de>,
    class: Option<(FieldName, u8)>,
    child: Option<Level>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> ValueSeed<'_, '_, 'de> {
    fn offer(self, v: Scalar<'de>) {
        if let Some((field, prio)) = self.class {
            self.fields.offer(field, prio, v);
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.offer(Scalar::Str(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.offer(Scalar::Str(Cow::Owned(v.to_string())));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.offer(Scalar::Str(Cow::Owned(v)));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.offer(Scalar::Num(v as f64, Some(v)));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.offer(Scalar::Num(v as f64, u64::try_from(v).ok()));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.offer(Scalar::Num(v, None));
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.offer(Scalar::Other);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // null: absent
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    /// Header values are lists (Caddy: `"User-Agent":["curl/8"]`): the first string counts.
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        let first = a.next_element::<Scalar<'de>>()?;
        while a.next_element::<IgnoredAny>()?.is_some() {}
        match first {
            Some(v @ Scalar::Str(_)) => self.offer(v),
            _ => self.offer(Scalar::Other),
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        match self.child {
            Some(level) => ObjectVisitor {
                map: self.map,
                level,
                fields: self.fields,
            }
            .visit_map(a),
            None => {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                self.offer(Scalar::Other);
                Ok(())
            }
        }
    }
}

fn parse_fields<'a>(line: &'a [u8], map: &FieldMap) -> Result<Fields<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let fields = LineSeed(map).deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

/// Which key fed each field: its preference number in [`FieldMap::classify`] (`None`: absent).
type KeysUsed = [Option<u8>; FieldName::ALL.len()];

fn build(
    fields: Fields<'_>,
    map: &FieldMap,
    opts: &ParseOptions,
) -> Result<(Request, KeysUsed), LineError> {
    let get = |field: FieldName| fields.values[slot(field)].as_ref().map(|(_, v)| v);
    let text = |field: FieldName| get(field).and_then(Scalar::text);

    let peer = match get(FieldName::Ip) {
        Some(Scalar::Str(s)) => parse_ip(s)?,
        Some(other) => parse_ip(&other.text().unwrap_or_default())?,
        None => return Err(LineError::MissingIp(map.tried(FieldName::Ip))),
    };
    let time_value =
        get(FieldName::Time).ok_or_else(|| LineError::MissingTime(map.tried(FieldName::Time)))?;
    let time = match time_value {
        Scalar::Num(n, _) => super::time::epoch_from_number(*n),
        Scalar::Str(t) => any_time(t, opts.input_offset_secs),
        Scalar::Null | Scalar::Other => Err(TimeError::Unreadable),
    }
    .map_err(|e| super::time_error(&time_value.text().unwrap_or_default(), e))?;
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
    let method_field = text(FieldName::Method);
    let method = method_field.as_deref().unwrap_or(method);
    let xff = text(FieldName::Xff);
    let ip = client_ip(peer, xff.as_deref(), &opts.trusted_proxies)?;
    let req = Request::new(
        ip,
        time,
        method,
        path,
        status,
        bytes,
        text(FieldName::UserAgent).as_deref().unwrap_or(""),
    );
    let mut used: KeysUsed = [None; FieldName::ALL.len()];
    for f in FieldName::ALL {
        used[slot(f)] = fields.values[slot(f)].as_ref().map(|(p, _)| *p);
    }
    Ok((req, used))
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

    /// `"key":value`, with a dotted key as nested objects (`request.uri` → `"request":{"uri":…}`).
    fn kv(key: &str, value: &str) -> String {
        match key.split_once('.') {
            Some((head, rest)) => format!(r#""{head}":{{{}}}"#, kv(rest, value)),
            None => format!(r#""{key}":{value}"#),
        }
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
                let line = format!(
                    r#"{{{},{},"status":"404"}}"#,
                    kv(ip, r#""192.0.2.9""#),
                    kv(time, &tv)
                );
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
                p(&format!(r#"{{{base},{}}}"#, kv(k, r#""/login""#)))
                    .unwrap()
                    .path(),
                "/login"
            );
        }
        for k in FieldName::Bytes.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},{}}}"#, kv(k, r#""512""#)))
                    .unwrap()
                    .bytes,
                512
            );
        }
        for k in FieldName::Method.default_keys() {
            let line = format!(r#"{{{base},{},"path":"/doc"}}"#, kv(k, r#""HEAD""#));
            assert_eq!(
                p(&line).unwrap().class(),
                super::super::Class::Asset,
                "{line}"
            );
        }
        for k in FieldName::UserAgent.default_keys() {
            assert_eq!(
                p(&format!(r#"{{{base},{}}}"#, kv(k, r#"["curl/8"]"#)))
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
                let found = match k.rsplit_once('.') {
                    None => default_field(k.as_bytes()),
                    Some(("request", key)) => default_nested(Level::Request, key.as_bytes()),
                    Some(("request.headers", key)) => {
                        default_nested(Level::Headers, key.as_bytes())
                    }
                    Some(_) => None,
                };
                assert_eq!(found, Some((f, i as u8 + 1)), "{k}");
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
                r#"{{"remote_addr":"10.1.1.1","time":1689687856,{}}}"#,
                kv(k, r#""198.51.100.3, 10.2.2.2""#)
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
                .and_then(|f| build(f, &opts.fields, &opts))
                .map(|(r, _)| r);
            // (a declined line is parsed by serde_json in parse())
            if let Some(fields) = scan_flat(line.as_bytes(), &opts.fields) {
                let flat = build(fields, &opts.fields, &opts).map(|(r, _)| r);
                assert_eq!(flat, via_serde, "{line}");
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
