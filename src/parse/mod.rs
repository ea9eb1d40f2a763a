//! Parse: one log line → one [`Request`].
//!
//! Owns the line formats and the choice of the real client address: the common log format family
//! read without flags (`combined`), JSON with auto-mapped field names (nginx, Caddy, Traefik,
//! Matomo: `json`), the user's own nginx `log_format` / Apache `LogFormat` compiled once
//! (`log_format`), the wrappers a line arrives in (syslog, Docker `json-file`: `wrap`), and a
//! file's [`LineParser`], which knows which of these its lines use (`line_parser`). It never does
//! I/O and never drops a line silently: every line is either a `Request` or a [`LineError`] with a
//! reason that the caller counts and shows as `file:line: reason`.
//!
//! Invariant a newcomer could break: the client address only ever comes from the logged peer
//! address, or from `X-Forwarded-For` when the logged peer is a *trusted proxy*. Never trust XFF
//! otherwise — anyone can send that header.

mod combined;
mod json;
mod line_parser;
pub mod log_format;
pub mod nginx_conf;
mod time;
mod wrap;

pub use combined::{combined_fields, CombinedFields};
pub use json::{FieldMap, FieldName};
pub use line_parser::{Detection, Explained, LineParser, Spec};
pub use log_format::{FormatError, LogFormat};
pub use time::{format_time, parse_any_time, parse_time_local, TimeError, MAX_TIME, MIN_TIME};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One request as the detector sees it. Times are UNIX seconds of **log time**.
///
/// Made once per log line, millions of times a second, on the parse threads: it carries only what
/// detection reads. Path and user agent share one allocation (read them with [`Request::path`] and
/// [`Request::user_agent`]), and their [`key_hash`]es are computed here so the single detection
/// thread never hashes text. Method and referer are not kept: nothing after parsing reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RequestRepr", into = "RequestRepr")]
pub struct Request {
    pub ip: IpAddr,
    pub time: i64,
    pub status: u16,
    pub bytes: u64,
    /// path, user agent, back to back.
    text: Box<str>,
    /// End of the path in `text`.
    path_end: u32,
    path_hash: u64,
    agent_hash: u64,
    class: Class,
}

/// See [`Request::order_key`]: plain integers, cheap to compare (IPv4 as its mapped IPv6 bits,
/// which no parsed IPv6 address can be: those are normalised to IPv4).
pub type OrderKey = (i64, u128, u64, u64, u64, u64);

/// An address as the 128 bits of the canonical order (IPv4 as its mapped IPv6 address).
#[inline]
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// What a request costs the server, decided once on the parse threads from method, path and
/// status. Detection weighs the classes differently: a page view pulls in its assets, so a burst
/// of 100 images after one page is one visit, not 100 page views.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Everything else: pages, API calls, form posts, probes of paths that do not exist.
    #[default]
    Page,
    /// Cheap for the server and part of a page view: `HEAD`, `304 Not Modified`, `206 Partial
    /// Content` (range requests of one file), and static files by extension (`.css`, `.js`,
    /// images, fonts, media, `.pdf`), whatever their status.
    Asset,
}

impl Class {
    /// Static-file extensions (lowercase, without the dot) that make a request an asset.
    pub const ASSET_EXTENSIONS: &'static [&'static str] = &[
        "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif",
        "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "ogg", "ogv",
        "mp3", "m4a", "wav", "flac", "pdf",
    ];

    pub fn of(method: &str, path: &str, status: u16) -> Class {
        if method == "HEAD" || status == 304 || status == 206 || has_asset_extension(path) {
            Class::Asset
        } else {
            Class::Page
        }
    }
}

/// Whether the path (query and fragment ignored) ends in one of [`Class::ASSET_EXTENSIONS`].
/// On every request of a parse thread: one `memchr2` for the query, a look at the last six
/// bytes for the dot, and the extension compared as one integer.
fn has_asset_extension(path: &str) -> bool {
    let b = path.as_bytes();
    let b = &b[..memchr::memchr2(b'?', b'#', b).unwrap_or(b.len())];
    let tail = &b[b.len().saturating_sub(6)..];
    let Some(dot) = tail.iter().rposition(|&c| c == b'.') else {
        return false;
    };
    let ext = &tail[dot + 1..];
    if ext.is_empty() || ext.contains(&b'/') {
        return false;
    }
    let key = ext
        .iter()
        .fold(0u64, |k, c| k << 8 | c.to_ascii_lowercase() as u64);
    ASSET_KEYS.binary_search(&key).is_ok()
}

/// [`Class::ASSET_EXTENSIONS`] packed as big-endian integers (at most 5 bytes each), sorted.
const ASSET_KEYS: [u64; Class::ASSET_EXTENSIONS.len()] = {
    let mut keys = [0u64; Class::ASSET_EXTENSIONS.len()];
    let mut i = 0;
    while i < keys.len() {
        let e = Class::ASSET_EXTENSIONS[i].as_bytes();
        assert!(!e.is_empty() && e.len() <= 5);
        let mut j = 0;
        while j < e.len() {
            keys[i] = keys[i] << 8 | e[j] as u64;
            j += 1;
        }
        // Insertion sort, as a const evaluation can.
        let mut k = i;
        while k > 0 && keys[k - 1] > keys[k] {
            (keys[k - 1], keys[k]) = (keys[k], keys[k - 1]);
            k -= 1;
        }
        i += 1;
    }
    keys
};

/// A request as saved in checkpoints (the hashes are recomputed on load).
#[derive(Serialize, Deserialize)]
struct RequestRepr {
    ip: IpAddr,
    time: i64,
    status: u16,
    bytes: u64,
    path: String,
    user_agent: String,
    #[serde(default)]
    class: Class,
}

impl From<RequestRepr> for Request {
    fn from(r: RequestRepr) -> Request {
        Request::with_class(
            r.ip,
            r.time,
            &r.path,
            r.status,
            r.bytes,
            &r.user_agent,
            r.class,
        )
    }
}

impl From<Request> for RequestRepr {
    fn from(r: Request) -> RequestRepr {
        RequestRepr {
            ip: r.ip,
            time: r.time,
            status: r.status,
            bytes: r.bytes,
            path: r.path().to_string(),
            user_agent: r.user_agent().to_string(),
            class: r.class,
        }
    }
}

/// The hash that identifies a path or user agent in the detector's per-IP top lists. Fixed seed:
/// it is stored in saved state and must mean the same after a restart.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x006b_6f75_6e63_6572).hash_one(key)
}

impl Request {
    /// `method` is only read to classify the request (see [`Class`]); it is not kept.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ip: IpAddr,
        time: i64,
        method: &str,
        path: &str,
        status: u16,
        bytes: u64,
        user_agent: &str,
    ) -> Request {
        // Bound each field so the u32 offset can never overflow, whatever the line held.
        const MAX: usize = 1 << 20;
        let (p, u) = (cut(path, MAX), cut(user_agent, MAX));
        let mut text = String::with_capacity(p.len() + u.len());
        text.push_str(p);
        text.push_str(u);
        Request {
            ip,
            time,
            status,
            bytes,
            text: text.into_boxed_str(),
            path_end: p.len() as u32,
            path_hash: key_hash(p),
            agent_hash: key_hash(u),
            class: Class::of(method, p, status),
        }
    }

    /// A request whose class is already known (read back from a checkpoint or a sort run).
    pub fn with_class(
        ip: IpAddr,
        time: i64,
        path: &str,
        status: u16,
        bytes: u64,
        user_agent: &str,
        class: Class,
    ) -> Request {
        let mut req = Request::new(ip, time, "", path, status, bytes, user_agent);
        req.class = class;
        req
    }

    pub fn class(&self) -> Class {
        self.class
    }

    /// The canonical order of requests: by time, then by content. Every input path sorts by
    /// this key, so the same lines give the same sequence — and the same decisions — whatever
    /// the order of the files or of the lines within a second.
    pub fn order_key(&self) -> OrderKey {
        (
            self.time,
            ip_bits(self.ip),
            self.path_hash,
            self.agent_hash,
            (self.status as u64) << 8 | self.class as u64,
            self.bytes,
        )
    }

    /// `self.order_key().cmp(&o.order_key())`, computed lazily: requests of one second nearly
    /// always differ in their address, so the rest of the key is rarely looked at (sorting each
    /// second's requests is on the reader thread's hot path).
    #[inline]
    pub fn canonical_cmp(&self, o: &Request) -> std::cmp::Ordering {
        let ip = match (self.ip, o.ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a.to_bits().cmp(&b.to_bits()),
            (a, b) => ip_bits(a).cmp(&ip_bits(b)),
        };
        self.time
            .cmp(&o.time)
            .then(ip)
            .then_with(|| self.order_key().cmp(&o.order_key()))
    }

    pub fn path(&self) -> &str {
        &self.text[..self.path_end as usize]
    }

    pub fn user_agent(&self) -> &str {
        &self.text[self.path_end as usize..]
    }

    /// [`key_hash`] of [`Request::path`].
    pub fn path_hash(&self) -> u64 {
        self.path_hash
    }

    /// [`key_hash`] of [`Request::user_agent`].
    pub fn agent_hash(&self) -> u64 {
        self.agent_hash
    }

    /// 4xx and 5xx (including nginx's 499, client closed request) count as errors.
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    /// An error that says something about the client: a 4xx/5xx on a page, not on an asset (a
    /// missing `/favicon.ico` or a picture the visitor navigated away from is not a probe).
    pub fn is_page_error(&self) -> bool {
        self.status >= 400 && self.class == Class::Page
    }
}

/// The log line formats bouncer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect per file from its first lines, and read a file that mixes formats line by line.
    Auto,
    /// The common log format family: nginx/Apache combined and common, vhost_combined, a host
    /// or X-Forwarded-For list in front, syslog or Docker wrapped.
    Combined,
    /// JSON access logs (nginx escape=json or default escaping, Caddy, Traefik, Matomo).
    Json,
}

impl Format {
    /// Decide the format of a file from its first bytes, for a reader without a
    /// [`LineParser`]: `Json` for a JSON access log, `Auto` (every format, line by line) for
    /// anything else, since a first line cannot tell a combined file from one that mixes formats
    /// or wraps its lines in syslog or Docker records.
    pub fn sniff(first_bytes: &[u8]) -> Format {
        let first_line = first_bytes
            .split(|b| *b == b'\n')
            .find(|l| l.iter().any(|b| !b.is_ascii_whitespace()));
        match first_line {
            Some(l)
                if l.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
                    && wrap::docker(l).is_none() =>
            {
                Format::Json
            }
            _ => Format::Auto,
        }
    }
}

/// Why a line was not turned into a request. Shown to the user as `file:line: reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    /// Not an error: empty (or blank) lines are skipped, and counted apart.
    #[error("empty line")]
    Empty,
    #[error("line is {0} bytes, over the {1}-byte limit (--max-line-bytes)")]
    TooLong(usize, usize),
    #[error("not valid UTF-8 text")]
    InvalidUtf8,
    #[error("not a combined/common log line: {0}")]
    Combined(&'static str),
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("no client address field (tried {0})")]
    MissingIp(String),
    #[error("no time field (tried {0})")]
    MissingTime(String),
    #[error("invalid client address {0:?}")]
    InvalidIp(String),
    #[error("unreadable time {0:?}")]
    InvalidTime(String),
    #[error("time {0:?} is outside 1970–2099")]
    TimeOutOfRange(String),
    #[error("invalid status {0:?}")]
    InvalidStatus(String),
    #[error("does not match the log format: {0}")]
    Mismatch(String),
    #[error("{0}, not an access-log line")]
    NotAccessLog(&'static str),
}

impl LineError {
    /// The short reason counted per file (`error_kinds` in decisions.json).
    pub fn kind(&self) -> &'static str {
        match self {
            LineError::Empty => "empty line",
            LineError::TooLong(..) => "line too long",
            LineError::InvalidUtf8 => "invalid UTF-8",
            LineError::Combined(_) => "not a combined/common line",
            LineError::Json(_) => "invalid JSON",
            LineError::MissingIp(_) => "no client address",
            LineError::MissingTime(_) => "no time",
            LineError::InvalidIp(_) => "invalid client address",
            LineError::InvalidTime(_) => "invalid time",
            LineError::TimeOutOfRange(_) => "time out of range",
            LineError::InvalidStatus(_) => "invalid status",
            LineError::Mismatch(_) => "does not match the log format",
            LineError::NotAccessLog(_) => "not an access-log line",
        }
    }
}

/// The error for a time text that [`time`] did not accept.
pub(crate) fn time_error(text: &str, e: TimeError) -> LineError {
    match e {
        TimeError::Unreadable => LineError::InvalidTime(clip(text, 40)),
        TimeError::OutOfRange => LineError::TimeOutOfRange(clip(text, 40)),
    }
}

/// Everything `parse_line` needs besides the line: resolved once before work starts.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub fields: FieldMap,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies, load balancers).
    pub trusted_proxies: Vec<IpNet>,
    /// `--log-format`: the user's own format, used for every line instead of `--format`.
    pub log_format: Option<std::sync::Arc<LogFormat>>,
    /// `--input-tz`: times logged without a zone are this many seconds east of UTC.
    pub input_offset_secs: i32,
}

/// Parse one line (without its newline) in a known format, without a file's detection: `Auto`
/// tries every format bouncer knows, in a fixed order. A file's [`LineParser`] does the same
/// with the order learned from its first lines (and explains it).
pub fn parse_line(line: &[u8], format: Format, opts: &ParseOptions) -> Result<Request, LineError> {
    if opts.log_format.is_some() {
        return line_parser::parse_auto(line, opts);
    }
    let line = trim_line_end(line);
    let r = match format {
        // serde_json validates UTF-8 itself; doing it here too cost ~5% of a JSON run.
        Format::Json => json::parse(line, &opts.fields, opts),
        Format::Combined => match simdutf8::basic::from_utf8(line) {
            Ok(text) => combined::parse(text, opts),
            Err(_) => Err(LineError::InvalidUtf8),
        },
        Format::Auto => return line_parser::parse_auto(line, opts),
    };
    match r {
        Err(_) if is_blank(line) => Err(LineError::Empty),
        r => r,
    }
}

/// Empty, or only spaces, tabs and line ends.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\r' || line[end - 1] == b'\n') {
        end -= 1;
    }
    &line[..end]
}

/// Parse an address as logged: IPv4, IPv6, `[v6]`, IPv4-mapped IPv6 normalised to IPv4.
pub fn parse_ip(s: &str) -> Result<IpAddr, LineError> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    let ip: IpAddr = t.parse().map_err(|_| LineError::InvalidIp(clip(s, 64)))?;
    Ok(normalize_ip(ip))
}

/// `::ffff:1.2.3.4` → `1.2.3.4`, so one client is one key whatever the listener's family.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The real client: the logged peer, or — only when that peer is a trusted proxy — the
/// right-most untrusted hop of `X-Forwarded-For`.
pub(crate) fn client_ip(
    peer: IpAddr,
    xff: Option<&str>,
    trusted: &[IpNet],
) -> Result<IpAddr, LineError> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return Ok(peer);
    }
    let Some(xff) = xff else { return Ok(peer) };
    let mut client = peer;
    for hop in xff
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty() && *h != "-")
    {
        // A hop we cannot read ends the walk: everything left of it is unverifiable, so the
        // last hop we could read (a trusted proxy) is as far as we can honestly go.
        let Ok(ip) = parse_ip(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Ok(client)
}

/// Split `"GET /path HTTP/1.1"` into method and path. A request line that is not of that shape
/// (scanners send garbage) is kept whole as the path with method `-`: the line still counts.
pub(crate) fn split_request(request: &str) -> (&str, &str) {
    let b = request.as_bytes();
    if let Some(sp) = memchr::memchr(b' ', b) {
        let m = &b[..sp];
        if !m.is_empty() && m.len() <= 16 && m.iter().all(u8::is_ascii_uppercase) {
            let rest = &request[sp + 1..];
            let end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
            return (&request[..sp], &rest[..end]);
        }
    }
    ("-", request)
}

/// Cut a string to at most `max` bytes on a char boundary (for messages and bounded state).
pub fn clip(s: &str, max: usize) -> String {
    let head = cut(s, max);
    if head.len() == s.len() {
        s.to_string()
    } else {
        format!("{head}…")
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_formats() {
        assert_eq!(Format::sniff(b"\n  {\"a\":1}\n"), Format::Json);
        assert_eq!(Format::sniff(b"{\"log\":\"1.2.3.4 - -\"}"), Format::Auto);
        assert_eq!(Format::sniff(b"1.2.3.4 - - [x]"), Format::Auto);
        assert_eq!(Format::sniff(b""), Format::Auto);
    }

    #[test]
    fn ip_forms() {
        assert_eq!(parse_ip("1.2.3.4").unwrap().to_string(), "1.2.3.4");
        assert_eq!(parse_ip("::ffff:1.2.3.4").unwrap().to_string(), "1.2.3.4");
        assert_eq!(
            parse_ip("[2001:db8::1]").unwrap().to_string(),
            "2001:db8::1"
        );
        for bad in ["-", "unknown", "999.1.1.1", "", "1.2.3", "1.2.3.4.5"] {
            assert!(
                matches!(parse_ip(bad), Err(LineError::InvalidIp(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn xff_is_ignored_unless_peer_is_trusted() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let xff = Some("203.0.113.9, 10.0.0.1");
        assert_eq!(client_ip(peer, xff, &[]).unwrap(), peer);
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(peer, xff, &trusted).unwrap().to_string(),
            "203.0.113.9"
        );
        // A spoofed left-most entry is not believed: walk stops at the first untrusted hop.
        let xff = Some("1.1.1.1, 198.51.100.7, 10.0.0.1");
        assert_eq!(
            client_ip(peer, xff, &trusted).unwrap().to_string(),
            "198.51.100.7"
        );
        // Untrusted peer: header ignored entirely.
        let outsider: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(outsider, xff, &trusted).unwrap(), outsider);
        // Garbage hop: stop at the last readable one.
        let xff = Some("unknown, 10.0.0.1");
        assert_eq!(
            client_ip(peer, xff, &trusted).unwrap().to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(split_request("GET /a b HTTP/1.1"), ("GET", "/a"));
        assert_eq!(split_request("-"), ("-", "-"));
        assert_eq!(
            split_request("\\x16\\x03 garbage"),
            ("-", "\\x16\\x03 garbage")
        );
    }

    #[test]
    fn packed_text_fields_read_back() {
        let ip = "192.0.2.1".parse().unwrap();
        let r = Request::new(ip, 5, "GET", "/é", 200, 1, "ua");
        assert_eq!((r.path(), r.user_agent()), ("/é", "ua"));
        assert_eq!(
            (r.path_hash(), r.agent_hash()),
            (key_hash("/é"), key_hash("ua"))
        );
        let r = Request::new(ip, 5, "HEAD", "", 200, 1, "");
        assert_eq!((r.path(), r.user_agent()), ("", ""));
        assert_eq!(r.class(), Class::Asset);
        // Checkpoints store the text; the hashes come back the same.
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// The lazy comparison every sort and merge uses is exactly the order of the key.
    #[test]
    fn canonical_cmp_is_the_order_key() {
        let ips = [
            "10.0.0.1",
            "10.0.0.2",
            "::1",
            "2001:db8::1",
            "0.0.0.1",
            "::ffff:0:2",
        ];
        let mut reqs = Vec::new();
        for (n, ip) in ips.iter().enumerate() {
            for t in [5, 6] {
                for (path, status) in [("/a", 200), ("/b.css", 200), ("/a", 404)] {
                    for ua in ["x", "y"] {
                        let ip: IpAddr = ip.parse().unwrap();
                        reqs.push(Request::new(ip, t, "GET", path, status, n as u64 % 2, ua));
                    }
                }
            }
        }
        for a in &reqs {
            for b in &reqs {
                assert_eq!(a.canonical_cmp(b), a.order_key().cmp(&b.order_key()));
            }
        }
    }

    #[test]
    fn classes() {
        let c = |m, p, s| Class::of(m, p, s);
        assert_eq!(c("GET", "/", 200), Class::Page);
        assert_eq!(c("POST", "/api/metrics", 200), Class::Page);
        assert_eq!(c("GET", "/wp-login.php", 404), Class::Page);
        assert_eq!(c("GET", "/static/a.CSS?v=3", 200), Class::Asset);
        assert_eq!(c("GET", "/img/x.jpg#frag", 499), Class::Asset);
        assert_eq!(c("GET", "/favicon.ico", 404), Class::Asset);
        assert_eq!(c("HEAD", "/doc", 200), Class::Asset);
        assert_eq!(c("GET", "/doc.pdf", 206), Class::Asset);
        assert_eq!(c("GET", "/page", 304), Class::Asset);
        assert_eq!(c("GET", "/v1.2/users", 200), Class::Page);
        assert_eq!(c("GET", "/.png/x", 200), Class::Page);
        // The query and fragment never count, a dot there least of all.
        assert_eq!(c("GET", "/search.php?q=a.png", 200), Class::Page);
        assert_eq!(c("GET", "/x?f=/a.css", 200), Class::Page);
        assert_eq!(c("GET", "/a.tar.gz", 200), Class::Page);
        assert_eq!(c("GET", "/x.", 200), Class::Page);
        assert_eq!(c("GET", "/font.WOFF2", 200), Class::Asset);
        assert_eq!(c("GET", "/x.woff22", 200), Class::Page);
        assert_eq!(c("GET", "/x.pdf?download=1#p=2", 200), Class::Asset);
        for ext in Class::ASSET_EXTENSIONS {
            let upper = ext.to_ascii_uppercase();
            for (path, class) in [
                (format!("/f.{ext}"), Class::Asset),
                (format!("/f.{upper}"), Class::Asset),
                (format!("/f.{ext}x"), Class::Page),
            ] {
                assert_eq!(Class::of("GET", &path, 200), class, "{path}");
            }
        }
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("abc", 5), "abc");
    }
}
