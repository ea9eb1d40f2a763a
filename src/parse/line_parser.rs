//! A file's parser: the formats its lines may be in, in the order to try them.
//!
//! Every line is read by the first format that reads it; the order only decides speed and which
//! error a line that no format reads gets (the first format's that claimed it). Detection reads
//! the first lines of a file and puts the formats they use first, so a plain file pays for one
//! format per line, and a file that mixes formats line by line (Nginx Proxy Manager writes two,
//! plus combined lines of its default site) is read without configuration. Formats bouncer was
//! not told about stay at the end as fallbacks only in auto mode; `--format` and `--log-format`
//! pin the format, and only the wrappers (syslog, Docker) are still recognised around it.
//!
//! [`LineParser::parse_line`] takes `&self` and holds no per-line state, so the parse threads
//! share one, and a `follow` loop can call it per line.

use super::json::FieldMap;
use super::log_format::LogFormat;
use super::wrap::{self, Syslog};
use super::{
    combined, format_time, is_blank, json, trim_line_end, FieldName, LineError, ParseOptions,
    Request,
};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

/// Which formats a file may use, as the user said (`--format`, `--log-format`, `--nginx-conf`).
#[derive(Debug, Clone)]
pub enum Spec {
    /// Everything bouncer knows, ordered by what the file's first lines use.
    Auto,
    /// The common log format family (combined, common, vhost_combined, …).
    Combined,
    /// JSON lines with auto-mapped keys.
    Json,
    /// The user's own format(s); several when one file gets lines of several.
    LogFormats(Vec<Arc<LogFormat>>),
}

#[derive(Debug, Clone)]
enum Inner {
    Clf,
    Json,
    Format(Arc<LogFormat>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    Plain,
    Docker,
    Syslog,
}

#[derive(Debug, Clone)]
struct Candidate {
    wrap: Wrap,
    inner: Inner,
}

impl Candidate {
    fn name(&self) -> String {
        let inner = match &self.inner {
            Inner::Clf => "combined family".to_string(),
            Inner::Json => "json".to_string(),
            Inner::Format(f) => f.name.clone(),
        };
        match self.wrap {
            Wrap::Plain => inner,
            Wrap::Docker => format!("docker json-file + {inner}"),
            Wrap::Syslog => format!("syslog + {inner}"),
        }
    }
}

/// The outcome of one format on one line.
enum Attempt {
    Read(Request),
    /// The line is of this format's shape, but broken.
    Failed(LineError),
    /// Not this format at all: the error, if no format reads the line, is another's.
    NotMine,
}

/// A line read field by field (for `bouncer formats`).
#[derive(Debug, Clone)]
pub struct Explained {
    /// The format that read it (`vhost_combined`, `syslog (RFC 3164) + combined`, `npm-proxy`, …).
    pub format: String,
    /// What a reader should know about its shape.
    pub notes: Vec<String>,
    /// The line's own fields, as written: (name, text).
    pub fields: Vec<(String, String)>,
    pub request: Request,
    /// The time had no zone (read in `--input-tz`).
    pub zoneless: bool,
}

/// What detection found in a file's first lines.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// Short name for the file report: the format of the first lines, or `mixed: …`.
    pub format: String,
    /// Non-empty lines looked at, and how many of them some format read.
    pub sampled: usize,
    pub read: usize,
    /// Formats of the sampled lines, most used first.
    pub by_format: Vec<(String, usize)>,
    /// The first line read, with its line number.
    pub first: Option<(u64, Explained)>,
    /// The first lines no format read, with their numbers.
    pub unread: Vec<(u64, LineError)>,
    /// For the file report (zone-less times, mixed formats).
    pub notes: Vec<String>,
    /// Formats tried after the detected ones, in order.
    pub fallbacks: Vec<String>,
}

/// Lines detection looks at, at most.
pub const SAMPLE_LINES: usize = 256;

/// The NPM presets, compiled once (they are in every auto chain).
static NPM: LazyLock<[Arc<LogFormat>; 2]> = LazyLock::new(|| {
    ["npm-proxy", "npm-standard"].map(|n| Arc::new(LogFormat::preset(n).expect("preset")))
});

/// The auto chain in its default order (for [`super::parse_line`] without a file).
static AUTO: LazyLock<Vec<Candidate>> = LazyLock::new(|| chain_for(&Spec::Auto));

fn chain_for(spec: &Spec) -> Vec<Candidate> {
    let inners: Vec<Inner> = match spec {
        Spec::Auto => vec![
            Inner::Clf,
            Inner::Json,
            Inner::Format(NPM[0].clone()),
            Inner::Format(NPM[1].clone()),
        ],
        Spec::Combined => vec![Inner::Clf],
        Spec::Json => vec![Inner::Json],
        Spec::LogFormats(fs) => fs.iter().map(|f| Inner::Format(f.clone())).collect(),
    };
    [Wrap::Plain, Wrap::Docker, Wrap::Syslog]
        .into_iter()
        .flat_map(|wrap| {
            inners.iter().map(move |inner| Candidate {
                wrap,
                inner: inner.clone(),
            })
        })
        .collect()
}

/// A file's parser.
#[derive(Debug, Clone)]
pub struct LineParser {
    chain: Vec<Candidate>,
    opts: ParseOptions,
}

impl LineParser {
    /// The formats of `spec` in their default order, without looking at any line.
    pub fn fixed(spec: Spec, opts: &ParseOptions) -> LineParser {
        LineParser {
            chain: chain_for(&spec),
            opts: opts.clone(),
        }
    }

    /// Look at a file's first bytes (`whole`: they are the whole file, so the last line is
    /// complete) and order the formats of `spec` by what its lines use. `first_line` is the
    /// number of the sample's first line (after a checkpoint, not 1).
    pub fn detect(
        spec: Spec,
        sample: &[u8],
        whole: bool,
        first_line: u64,
        opts: &ParseOptions,
    ) -> (LineParser, Detection) {
        let mut parser = LineParser::fixed(spec.clone(), opts);
        let mut lines: Vec<&[u8]> = sample.split(|b| *b == b'\n').collect();
        if !whole || lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop(); // cut mid-line, or the empty piece after the final newline
        }
        let mut d = Detection::default();
        let mut hits = vec![0usize; parser.chain.len()];
        let mut zoneless = false;
        // (candidate, variant, lines)
        let mut variants: Vec<(usize, String, usize)> = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            let line = trim_line_end(line);
            if is_blank(line) {
                continue;
            }
            if d.sampled == SAMPLE_LINES {
                break;
            }
            d.sampled += 1;
            let number = first_line + n as u64;
            match parser.explain_at(line) {
                Ok((i, e)) => {
                    d.read += 1;
                    hits[i] += 1;
                    zoneless |= e.zoneless;
                    match variants
                        .iter_mut()
                        .find(|(c, v, _)| *c == i && *v == e.format)
                    {
                        Some((_, _, count)) => *count += 1,
                        None => variants.push((i, e.format.clone(), 1)),
                    }
                    if d.first.is_none() {
                        d.first = Some((number, e));
                    }
                }
                Err(e) => {
                    if d.unread.len() < 5 {
                        d.unread.push((number, e));
                    }
                }
            }
        }
        // Most used first; the others keep their default order as fallbacks.
        let mut order: Vec<usize> = (0..parser.chain.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(hits[*i]));
        d.fallbacks = order
            .iter()
            .filter(|i| hits[**i] == 0)
            .map(|i| parser.chain[*i].name())
            .collect();
        parser.chain = order.iter().map(|i| parser.chain[*i].clone()).collect();
        variants.sort_by_key(|(_, _, c)| std::cmp::Reverse(*c));
        let formats_used = hits.iter().filter(|h| **h > 0).count();
        d.format = match variants.as_slice() {
            [] if d.sampled == 0 => "-".into(),
            [] => match spec {
                Spec::Auto => "unknown".into(),
                _ => parser.chain[0].name(),
            },
            [(_, one, _)] => one.clone(),
            // One format whose lines vary (some with an X-Forwarded-For list in front, …).
            [(_, top, _), rest @ ..] if formats_used == 1 => format!(
                "{top} (also {})",
                rest.iter()
                    .map(|(_, v, _)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            more => format!(
                "mixed: {}",
                more.iter()
                    .map(|(_, v, c)| format!("{v} ({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if formats_used > 1 {
            d.notes.push(format!(
                "formats mixed line by line in the first {} lines: {}",
                d.sampled,
                variants
                    .iter()
                    .map(|(_, v, c)| format!("{v} ×{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if zoneless {
            d.notes.push(format!(
                "times without a zone are read as {} (--input-tz)",
                offset_name(opts.input_offset_secs)
            ));
        }
        d.by_format = variants.into_iter().map(|(_, v, c)| (v, c)).collect();
        (parser, d)
    }

    /// Read one line (without its newline). Blank lines are [`LineError::Empty`]: skipped, and
    /// counted apart from errors by the caller.
    pub fn parse_line(&self, line: &[u8]) -> Result<Request, LineError> {
        let line = trim_line_end(line);
        // Nearly every line is in the file's first format: try it inline, the rest out of line.
        match self.chain.first().map(|c| attempt(c, line, &self.opts)) {
            Some(Attempt::Read(r)) => Ok(r),
            Some(Attempt::Failed(e)) => parse_rest(&self.chain[1..], line, &self.opts, Some(e)),
            Some(Attempt::NotMine) => parse_rest(&self.chain[1..], line, &self.opts, None),
            None => Err(failure(line, None)),
        }
    }

    /// Read one line and say how (`bouncer formats`).
    pub fn explain(&self, line: &[u8]) -> Result<Explained, LineError> {
        self.explain_at(trim_line_end(line)).map(|(_, e)| e)
    }

    fn explain_at(&self, line: &[u8]) -> Result<(usize, Explained), LineError> {
        let mut first_err = None;
        for (i, c) in self.chain.iter().enumerate() {
            match explain_one(c, line, &self.opts) {
                Some(Ok(e)) => return Ok((i, e)),
                Some(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                None => {}
            }
        }
        Err(failure(line, first_err))
    }

    /// The formats in the order they are tried.
    pub fn order(&self) -> Vec<String> {
        self.chain.iter().map(Candidate::name).collect()
    }
}

/// `UTC`, `UTC+02:00`.
pub fn offset_name(secs: i32) -> String {
    if secs == 0 {
        return "UTC".into();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

/// Every format of `chain` in order; the first that reads the line wins.
fn parse_chain(
    chain: &[Candidate],
    line: &[u8],
    opts: &ParseOptions,
) -> Result<Request, LineError> {
    parse_rest(chain, line, opts, None)
}

/// [`parse_chain`] after formats that did not read the line (`first_err`: the first error).
#[cold]
#[inline(never)]
fn parse_rest(
    chain: &[Candidate],
    line: &[u8],
    opts: &ParseOptions,
    mut first_err: Option<LineError>,
) -> Result<Request, LineError> {
    for c in chain {
        match attempt(c, line, opts) {
            Attempt::Read(r) => return Ok(r),
            Attempt::Failed(e) => {
                first_err.get_or_insert(e);
            }
            Attempt::NotMine => {}
        }
    }
    Err(failure(line, first_err))
}

/// The error of a line no format read: blank lines and error-log lines say so; otherwise the
/// first format that claimed the line says what is wrong with it.
fn failure(line: &[u8], first_err: Option<LineError>) -> LineError {
    if is_blank(line) {
        return LineError::Empty;
    }
    if let Some(kind) = wrap::error_log_kind(line) {
        return LineError::NotAccessLog(kind);
    }
    first_err.unwrap_or_else(|| match simdutf8::basic::from_utf8(line) {
        Err(_) => LineError::InvalidUtf8,
        Ok(_) => LineError::Mismatch("no format bouncer knows reads this line".into()),
    })
}

/// [`super::parse_line`] for `Format::Auto` and `--log-format` without a file parser.
pub(super) fn parse_auto(line: &[u8], opts: &ParseOptions) -> Result<Request, LineError> {
    let line = trim_line_end(line);
    match &opts.log_format {
        Some(f) => {
            let inner = Inner::Format(f.clone());
            let chain = [Wrap::Plain, Wrap::Docker, Wrap::Syslog].map(|wrap| Candidate {
                wrap,
                inner: inner.clone(),
            });
            parse_chain(&chain, line, opts)
        }
        None => parse_chain(&AUTO, line, opts),
    }
}

#[inline]
fn attempt(c: &Candidate, line: &[u8], opts: &ParseOptions) -> Attempt {
    match c.wrap {
        Wrap::Plain => attempt_inner(&c.inner, line, opts),
        Wrap::Docker => match wrap::docker(line) {
            None => Attempt::NotMine,
            Some(Err(e)) => Attempt::Failed(LineError::Mismatch(e.into())),
            Some(Ok(text)) => attempt_inner(&c.inner, text.as_bytes(), opts),
        },
        Wrap::Syslog => match unwrap_syslog(line) {
            None => Attempt::NotMine,
            Some((msg, _)) => attempt_inner(&c.inner, msg.as_bytes(), opts),
        },
    }
}

fn unwrap_syslog(line: &[u8]) -> Option<(&str, Syslog)> {
    wrap::syslog(simdutf8::basic::from_utf8(line).ok()?)
}

fn starts_json(line: &[u8]) -> bool {
    line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[inline]
fn attempt_inner(inner: &Inner, line: &[u8], opts: &ParseOptions) -> Attempt {
    let done = |r: Result<Request, LineError>| match r {
        Ok(r) => Attempt::Read(r),
        Err(e) => Attempt::Failed(e),
    };
    match inner {
        Inner::Clf => match simdutf8::basic::from_utf8(line) {
            Ok(text) => done(combined::parse(text, opts)),
            Err(_) => Attempt::Failed(LineError::InvalidUtf8),
        },
        Inner::Json if !starts_json(line) => Attempt::NotMine,
        // serde_json validates UTF-8 itself; doing it here too cost ~5% of a JSON run.
        Inner::Json => done(json::parse(line, &opts.fields, opts)),
        Inner::Format(f) if !f.claims(line) => Attempt::NotMine,
        Inner::Format(f) => match f.json_fields() {
            Some(map) => done(json::parse(line, map, opts)),
            None => match simdutf8::basic::from_utf8(line) {
                Ok(text) => done(f.parse_text(text, opts)),
                Err(_) => Attempt::Failed(LineError::InvalidUtf8),
            },
        },
    }
}

/// [`attempt`] with the detail `bouncer formats` shows. `None`: not this format.
fn explain_one(
    c: &Candidate,
    line: &[u8],
    opts: &ParseOptions,
) -> Option<Result<Explained, LineError>> {
    let (inner_line, prefix): (Cow<'_, [u8]>, Option<String>) = match c.wrap {
        Wrap::Plain => (Cow::Borrowed(line), None),
        Wrap::Docker => match wrap::docker(line)? {
            Err(e) => return Some(Err(LineError::Mismatch(e.into()))),
            Ok(text) => (
                Cow::Owned(text.into_owned().into_bytes()),
                Some("docker json-file".to_string()),
            ),
        },
        Wrap::Syslog => {
            let (msg, flavour) = unwrap_syslog(line)?;
            (
                Cow::Borrowed(msg.as_bytes()),
                Some(flavour.name().to_string()),
            )
        }
    };
    let mut e = match explain_inner(&c.inner, &inner_line, opts)? {
        Ok(e) => e,
        Err(err) => return Some(Err(err)),
    };
    if let Some(p) = prefix {
        e.format = format!("{p} + {}", e.format);
        e.notes
            .insert(0, format!("the access-log line is wrapped in {p}"));
    }
    Some(Ok(e))
}

fn explain_inner(
    inner: &Inner,
    line: &[u8],
    opts: &ParseOptions,
) -> Option<Result<Explained, LineError>> {
    let text = || simdutf8::basic::from_utf8(line).map_err(|_| LineError::InvalidUtf8);
    match inner {
        Inner::Clf => Some(text().and_then(|t| {
            let (request, f) = combined::parse_fields(t, opts)?;
            let mut fields = vec![];
            let mut put = |k: &str, v: Option<&str>| {
                if let Some(v) = v {
                    fields.push((k.to_string(), v.to_string()));
                }
            };
            put("host", f.host);
            put("x-forwarded-for (in front)", f.xff_front);
            put("client (peer)", Some(f.peer));
            put("time", Some(f.time_local));
            put("host (after the time)", f.vhost_after_time);
            put("request", Some(f.request));
            put("status", Some(&f.status.to_string()));
            put("bytes", Some(f.bytes));
            put("referer", f.referer);
            put("user agent", f.user_agent);
            put("x-forwarded-for", f.xff);
            Ok(Explained {
                format: f.variant().to_string(),
                notes: f.notes(),
                zoneless: !f.time_has_zone(),
                fields,
                request,
            })
        })),
        Inner::Json if !starts_json(line) => None,
        Inner::Json => Some(explain_json(line, &opts.fields, opts, None)),
        Inner::Format(f) if !f.claims(line) => None,
        Inner::Format(f) => Some(match f.json_fields() {
            Some(map) => explain_json(line, map, opts, Some(&f.name)),
            None => text().and_then(|t| {
                let request = f.parse_text(t, opts)?;
                let fields: Vec<(String, String)> = f
                    .fields_of(t)
                    .into_iter()
                    .map(|(k, v)| (k, v.to_string()))
                    .collect();
                let zoneless = fields.iter().any(|(k, v)| {
                    (k == "$time_local" && v.len() < 26)
                        || (k.starts_with("%{") && k.ends_with("}t") && !k.contains("%z"))
                });
                Ok(Explained {
                    format: f.name.clone(),
                    notes: vec![format!("{} format: {}", dialect_name(f), f.describe())],
                    fields,
                    request,
                    zoneless,
                })
            }),
        }),
    }
}

fn dialect_name(f: &LogFormat) -> &'static str {
    match f.dialect {
        super::log_format::Dialect::Nginx => "nginx",
        super::log_format::Dialect::Apache => "Apache",
    }
}

fn explain_json(
    line: &[u8],
    map: &FieldMap,
    opts: &ParseOptions,
    name: Option<&str>,
) -> Result<Explained, LineError> {
    let (request, keys) = json::parse_keyed(line, map, opts)?;
    let key = |f: FieldName| keys.iter().find(|(k, _)| *k == f).map(|(_, v)| v.as_str());
    let flavour = match key(FieldName::Ip) {
        _ if name.is_some() => name.unwrap_or_default().to_string(),
        Some(k) if k.starts_with("request.") => "json (Caddy)".into(),
        Some("ClientHost") => "json (Traefik)".into(),
        _ => "json".into(),
    };
    let zoneless = json_time_text(line, key(FieldName::Time)).is_some_and(|t| naive_iso(&t));
    Ok(Explained {
        format: flavour,
        notes: vec![format!(
            "keys: {}",
            keys.iter()
                .map(|(f, k)| format!("{}←\"{k}\"", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )],
        fields: keys
            .iter()
            .map(|(f, k)| (f.name().to_string(), format!("\"{k}\"")))
            .collect(),
        request,
        zoneless,
    })
}

/// The text of a top-level string key (for the zone note only).
fn json_time_text(line: &[u8], key: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get(key?)?.as_str().map(str::to_string)
}

/// An ISO-8601 date-time without a zone (`2023-07-18T13:44:16`, `2023-07-18 13:44:16.5`).
fn naive_iso(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b' ')
        && !t[10..].contains(['Z', 'z', '+'])
        && !t[10..].contains('-')
}

impl Explained {
    /// The request as bouncer counts it: (name, value) rows for `bouncer formats`.
    pub fn request_rows(&self) -> Vec<(&'static str, String)> {
        let r = &self.request;
        vec![
            ("client", r.ip.to_string()),
            ("time", format_time(r.time)),
            ("path", r.path().to_string()),
            ("status", r.status.to_string()),
            ("bytes", r.bytes.to_string()),
            ("user agent", r.user_agent().to_string()),
            (
                "class",
                match r.class() {
                    super::Class::Page => "page".into(),
                    super::Class::Asset => "asset (HEAD, 304, 206 or a static file)".into(),
                },
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(sample: &str) -> (LineParser, Detection) {
        LineParser::detect(
            Spec::Auto,
            sample.as_bytes(),
            true,
            1,
            &ParseOptions::default(),
        )
    }

    #[test]
    fn plain_files_put_their_format_first() {
        let (p, d) = auto(
            "1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua\"\n\n",
        );
        assert_eq!((d.format.as_str(), d.sampled, d.read), ("combined", 1, 1));
        assert_eq!(p.order()[0], "combined family");
        assert_eq!(p.parse_line(b"  \r"), Err(LineError::Empty));
        let (p, d) = auto("{\"ip\":\"192.0.2.1\",\"time\":1689687856}\n");
        assert_eq!((d.format.as_str(), p.order()[0].as_str()), ("json", "json"));
        // A bad line in a JSON file gets the JSON reader's reason.
        assert!(matches!(p.parse_line(b"{\"ip\":"), Err(LineError::Json(_))));
        assert!(matches!(
            p.parse_line(b"2022/01/24 16:33:06 [error] 334#334: *338 no"),
            Err(LineError::NotAccessLog(_))
        ));
    }

    #[test]
    fn mixed_files_are_read_line_by_line() {
        let sample = concat!(
            "[24/Jan/2022:16:51:02 +0000] - 404 404 - GET http openresty.local \"/sdfdsf\" [Client 1.2.3.4] [Length 192] [Gzip 3.10] [Sent-to openresty] \"UA\" \"-\"\n",
            "1.2.3.4 - - [24/Jan/2022:16:22:14 +0000] \"GET /d93rfgxd.axd HTTP/1.1\" 404 552 \"-\" \"UA\"\n",
            "[24/Jan/2022:13:40:19 +0000] 444 - GET https 4.3.2.1 \"/.env\" [Client 207.32.219.89] [Length 0] [Gzip -] \"UA\" \"-\"\n",
            "[24/Jan/2022:16:50:41 +0000] - 304 304 - GET http openresty.local \"/\" [Client 1.2.3.4] [Length 0] [Gzip -] [Sent-to openresty] \"UA\" \"-\"\n",
            "2022/01/24 16:33:06 [error] 334#334: *338 user \"toto\": password mismatch, client: 1.2.3.4\n",
        );
        let (p, d) = auto(sample);
        assert_eq!(
            d.format,
            "mixed: npm-proxy (2), combined (1), npm-standard (1)"
        );
        assert_eq!((d.sampled, d.read), (5, 4));
        assert_eq!(d.unread[0].0, 5);
        assert!(matches!(d.unread[0].1, LineError::NotAccessLog(_)));
        assert_eq!(
            p.order()[..3],
            ["npm-proxy", "combined family", "npm-standard"]
        );
        let r = p
            .parse_line(sample.lines().nth(2).unwrap().as_bytes())
            .unwrap();
        assert_eq!(
            (r.ip.to_string().as_str(), r.status),
            ("207.32.219.89", 444)
        );
    }

    #[test]
    fn wrapped_lines() {
        let line = r#"1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#;
        let docker = format!(
            "{{\"log\":{},\"stream\":\"stdout\",\"time\":\"2023-07-18T13:44:16.5Z\"}}\n",
            serde_json::to_string(&format!("{line}\n")).unwrap()
        );
        let (p, d) = auto(&docker);
        assert_eq!(d.format, "docker json-file + combined");
        assert_eq!(
            p.parse_line(docker.trim_end().as_bytes()),
            auto(line).0.parse_line(line.as_bytes())
        );
        let syslog = format!("<190>Jul 18 13:44:16 web nginx: {line}\n");
        let (_, d) = auto(&syslog);
        assert_eq!(d.format, "syslog (RFC 3164) + combined");
        // A pinned format is still found inside its wrapper.
        let spec = Spec::LogFormats(vec![Arc::new(LogFormat::preset("combined").unwrap())]);
        let (p, d) = LineParser::detect(spec, syslog.as_bytes(), true, 1, &ParseOptions::default());
        assert_eq!(d.format, "syslog (RFC 3164) + combined");
        assert!(p.parse_line(syslog.trim_end().as_bytes()).is_ok());
    }

    #[test]
    fn zoneless_times_are_noted() {
        let opts = ParseOptions {
            input_offset_secs: -5 * 3600,
            ..Default::default()
        };
        let (_, d) = LineParser::detect(
            Spec::Auto,
            b"192.0.2.12 - u [27/Jun/2013:11:55:44] \"GET / HTTP/1.1\" 200 266 \"-\" \"ua\"\n",
            true,
            1,
            &opts,
        );
        assert_eq!(
            d.notes,
            vec!["times without a zone are read as UTC-05:00 (--input-tz)"]
        );
        let (_, d) = auto("{\"ip\":\"192.0.2.1\",\"date\":\"2023-07-18T13:44:16\"}\n");
        assert_eq!(
            d.notes,
            vec!["times without a zone are read as UTC (--input-tz)"]
        );
    }

    #[test]
    fn a_cut_sample_drops_its_partial_last_line() {
        let (_, d) = LineParser::detect(
            Spec::Auto,
            b"1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] \"GET / HTTP/1.1\" 200 1\n1.2.3.4 - - [18/J",
            false,
            7,
            &ParseOptions::default(),
        );
        assert_eq!((d.sampled, d.first.map(|(n, _)| n)), (1, Some(7)));
    }
}
