//! The user's own format: an nginx `log_format` or Apache `LogFormat` definition, pasted as it is
//! in the server's config, compiled once into a line parser.
//!
//! A format is literal text and variables. Compiling turns it into segments: a literal must
//! match where it stands; a variable's value runs to where the next literal starts. Where that
//! is not the first occurrence (raw quotes in a scanner's request line, `, ` inside an address
//! list), the next variable's shape decides: `"$request" $status` ends at the first `" ` that
//! is followed by three digits. Each variable has a role (client, time, request, …, or nothing
//! bouncer reads), so a line costs a few `memchr`s and one slice per variable: no regex, no
//! allocation unless an `escape=json` value holds an escape.
//!
//! A JSON-shaped format (`'{"ip":"$remote_addr",…}'`) compiles to the JSON reader with the keys
//! it names, so key order and escapes are read as JSON. A definition bouncer cannot read is an
//! error that points at the character: a bad format fails before any work starts.

use super::json::FieldMap;
use super::{client_ip, parse_ip, split_request, FieldName, LineError, ParseOptions, Request};
use std::borrow::Cow;
use std::fmt;

/// Built-in formats, usable by name (`--log-format vhost_combined`): (name, definition, what it
/// is). Each definition is the server's own, as its documentation or packaging ships it.
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "combined",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#,
        "nginx's predefined `combined` (= Apache's combined)",
    ),
    (
        "common",
        r#"%h %l %u %t "%r" %>s %b"#,
        "Apache's `common` (NCSA Common Log Format)",
    ),
    (
        "vhost_combined",
        r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#,
        "Debian/Ubuntu Apache `vhost_combined` (other_vhosts_access.log)",
    ),
    (
        "vhost_common",
        r#"%v %h %l %u %t "%r" %>s %b"#,
        "Apache docs' virtual-host common format",
    ),
    (
        "nginx-main",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#,
        "the `main` format of nginx.org's packaged nginx.conf",
    ),
    (
        "npm-proxy",
        r#"[$time_local] $upstream_cache_status $upstream_status $status - $request_method $scheme $host "$request_uri" [Client $remote_addr] [Length $body_bytes_sent] [Gzip $gzip_ratio] [Sent-to $server] "$http_user_agent" "$http_referer""#,
        "Nginx Proxy Manager's `proxy` format (proxy hosts)",
    ),
    (
        "npm-standard",
        r#"[$time_local] $status - $request_method $scheme $host "$request_uri" [Client $remote_addr] [Length $body_bytes_sent] [Gzip $gzip_ratio] "$http_user_agent" "$http_referer""#,
        "Nginx Proxy Manager's `standard` format (redirections, 404 hosts, default site)",
    ),
    (
        "traefik-clf",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $requests "$router" "$server_url" ${duration}ms"#,
        "Traefik's access log in its default common log format",
    ),
];

/// A format definition bouncer cannot compile, with the character it stumbled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The format (after its config quoting was removed).
    pub format: String,
    /// Index of the offending character (in chars).
    pub at: usize,
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show at most ~70 characters around the offending one, and point at it.
        let chars: Vec<char> = self.format.chars().collect();
        let from = self.at.saturating_sub(40);
        let to = (from + 70).min(chars.len());
        let shown: String = chars[from..to]
            .iter()
            .map(|c| if c.is_control() { ' ' } else { *c })
            .collect();
        let lead = if from > 0 { "…" } else { "" };
        let trail = if to < chars.len() { "…" } else { "" };
        let pad = " ".repeat(self.at - from + lead.chars().count());
        write!(
            f,
            "{} (character {}):\n  {lead}{shown}{trail}\n  {pad}^",
            self.message,
            self.at + 1
        )
    }
}

impl std::error::Error for FormatError {}

/// Which server's syntax a format is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `$variable`
    Nginx,
    /// `%directive`
    Apache,
}

/// How values were escaped when written (decides which quotes are inside a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// nginx's default: `"` `\` and non-printable bytes as `\xHH` (values are kept as written).
    Default,
    /// nginx `escape=json`: `\"`, `\\`, `\uXXXX`, … (values are unescaped).
    Json,
    /// nginx `escape=none`: nothing escaped.
    None,
    /// Apache: `\"`, `\\`, `\xhh` (values are kept as written).
    Apache,
}

/// A compiled format.
#[derive(Debug, Clone)]
pub struct LogFormat {
    /// The preset or `log_format` name, or `--log-format`.
    pub name: String,
    /// The format string, as compiled (config quoting removed).
    pub source: String,
    pub dialect: Dialect,
    pub escape: Escape,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Text(Text),
    Json(FieldMap),
}

/// What bouncer does with a variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The logged peer (`$remote_addr`, `%a`, `%h`).
    Peer,
    /// A comma list ending in the peer (`$proxy_add_x_forwarded_for`).
    PeerList,
    /// X-Forwarded-For-like hops, believed only from trusted proxies.
    Xff,
    Time(TimeKind),
    Request,
    Method,
    Path,
    /// A query string that may follow the path with nothing between (`%U%q`, `$uri$is_args$args`).
    PathTail,
    Status,
    Bytes,
    UserAgent,
    Skip,
}

impl Role {
    /// Where a role's value is kept while a line is read.
    fn slot(self) -> Option<usize> {
        Some(match self {
            Role::Peer => 0,
            Role::PeerList => 1,
            Role::Xff => 2,
            Role::Time(_) => 3,
            Role::Request => 4,
            Role::Method => 5,
            Role::Path => 6,
            Role::Status => 7,
            Role::Bytes => 8,
            Role::UserAgent => 9,
            Role::PathTail | Role::Skip => return None,
        })
    }

    fn field(self) -> Option<FieldName> {
        Some(match self {
            Role::Peer => FieldName::Ip,
            Role::Xff => FieldName::Xff,
            Role::Time(_) => FieldName::Time,
            Role::Request => FieldName::Request,
            Role::Method => FieldName::Method,
            Role::Path => FieldName::Path,
            Role::Status => FieldName::Status,
            Role::Bytes => FieldName::Bytes,
            Role::UserAgent => FieldName::UserAgent,
            Role::PeerList | Role::PathTail | Role::Skip => return None,
        })
    }
}

const SLOTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeKind {
    /// `18/Jul/2023:13:44:16 +0000`
    Local,
    /// Apache `%t`: `[18/Jul/2023:13:44:16 +0000]`
    Bracketed,
    /// `2023-07-18T13:44:16+00:00`, or any other form `any_time` reads.
    Iso8601,
    /// Seconds, maybe with a fraction (`$msec`, `%{sec}t`).
    Secs,
    Millis,
    Micros,
    /// Apache `%{FORMAT}t`: strftime, index into `Text::strftime`.
    Strftime,
}

/// How a value's end is found, besides the literal after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Runs to the next literal (the first occurrence the next variable's shape accepts).
    Free,
    /// Like `Free`, but `, ` (and ` : ` of upstream lists) never ends it.
    List,
    /// Exactly this many bytes.
    Fixed(usize),
    /// ASCII digits.
    Digits,
    /// `[…]`.
    Bracketed,
}

/// What a value must start with, checked when the variable before it looks for its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Any,
    Digit,
    DigitOrDash,
    /// Three digits, then no digit (a status).
    Status,
    Bracket,
}

#[derive(Debug, Clone)]
struct Var {
    name: String,
    role: Role,
    shape: Shape,
    start: Start,
    /// Position in the source (chars), for errors.
    at: usize,
}

#[derive(Debug, Clone)]
enum Seg {
    Lit(Box<[u8]>),
    /// One variable, or several written with nothing between them (captured together).
    Field {
        role: Role,
        shape: Shape,
        start: Start,
        /// Members of a group (`$host$request_uri`): the path starts at the first `/`.
        path_from_slash: bool,
        names: String,
        /// How a free value's end is found (set once the segments are known).
        look: Look,
    },
}

/// Why a field did not match (see [`Text::miss`]).
#[derive(Debug, Clone, Copy)]
enum Miss {
    Short,
    NotNumber,
    NoBracket,
    NoClose,
    Lit,
}

/// What follows a field: nothing (it runs to the end of the line), or a literal, itself
/// followed by a value that must start as `Some(start)`, or by nothing (`None`: the literal is
/// the format's last text, so it ends the line or is followed by a space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Eol,
    Lit(Option<Start>),
}

/// `b` starts with `lit`: a byte loop, as literals are a few bytes (a `memcmp` call costs more).
#[inline]
fn starts(b: &[u8], lit: &[u8]) -> bool {
    b.len() >= lit.len() && b.iter().zip(lit).all(|(x, y)| x == y)
}

#[derive(Debug, Clone)]
struct Text {
    segs: Vec<Seg>,
    time: TimeKind,
    strftime: String,
    /// Index of the last segment that matters: nothing after it needs reading.
    last_needed: usize,
}

impl LogFormat {
    /// A preset by name.
    pub fn preset(name: &str) -> Option<LogFormat> {
        let (n, def, _) = PRESETS.iter().find(|(n, _, _)| *n == name)?;
        Some(LogFormat::compile(n, def, None).expect("presets compile (tested)"))
    }

    /// What `--log-format` was given: a preset name, or a definition pasted from a server's
    /// config (`log_format NAME [escape=…] '…' '…';`, `LogFormat "…" NAME`, the quoted
    /// string(s) alone, or the bare format).
    pub fn from_arg(arg: &str) -> Result<LogFormat, FormatError> {
        let t = arg.trim();
        if let Some(p) = LogFormat::preset(t) {
            return Ok(p);
        }
        let t = t.strip_suffix(';').unwrap_or(t).trim_end();
        let words = |text: &str| -> Result<Vec<String>, FormatError> {
            let fail = |at: usize, message: String| FormatError {
                format: text.to_string(),
                at: char_at(text, at.min(text.len())),
                message,
            };
            let d = super::nginx_conf::directives("--log-format", &format!("{text};")).map_err(
                |e| {
                    fail(
                        e.offset,
                        format!("cannot read the quoted format: {}", e.message),
                    )
                },
            )?;
            match d.as_slice() {
                [one] => Ok(one.words.clone()),
                _ => Err(fail(0, "expected one format definition".into())),
            }
        };
        let first_word = t.split_whitespace().next().unwrap_or("");
        let (name, escape, format) = if first_word == "log_format" {
            let w = words(t)?;
            let mut rest = &w[2.min(w.len())..];
            let mut escape = None;
            if let Some(e) = rest.first().and_then(|x| x.strip_prefix("escape=")) {
                escape = Some(e.to_string());
                rest = &rest[1..];
            }
            let name = w.get(1).cloned().unwrap_or_else(|| "--log-format".into());
            (name, escape, rest.concat())
        } else if first_word == "LogFormat" {
            let w = words(t)?;
            let format = w.get(1).cloned().unwrap_or_default();
            let name = w.get(2).cloned().unwrap_or_else(|| "--log-format".into());
            (name, None, format)
        } else if first_word.starts_with("escape=") || t.starts_with('\'') || t.starts_with('"') {
            let mut w = words(t)?;
            let mut escape = None;
            if let Some(e) = w
                .first()
                .and_then(|x| x.strip_prefix("escape="))
                .map(str::to_string)
            {
                escape = Some(e);
                w.remove(0);
            }
            ("--log-format".to_string(), escape, w.concat())
        } else {
            // Typed on a command line: `\"` stands for a quote, as in the config it came from.
            ("--log-format".to_string(), None, unbackslash(t))
        };
        LogFormat::compile(&name, &format, escape.as_deref())
    }

    /// Compile a format string (config quoting already removed). `escape`: nginx's `escape=`.
    pub fn compile(
        name: &str,
        format: &str,
        escape: Option<&str>,
    ) -> Result<LogFormat, FormatError> {
        let err = |at: usize, message: String| FormatError {
            format: format.to_string(),
            at,
            message,
        };
        if format.trim().is_empty() {
            return Err(err(0, "the format is empty".into()));
        }
        let dialect = dialect_of(format);
        let escape = match (dialect, escape) {
            (Dialect::Apache, None) => Escape::Apache,
            (Dialect::Apache, Some(e)) => {
                return Err(err(
                    0,
                    format!("escape={e} is an nginx setting, but this is an Apache format"),
                ))
            }
            (Dialect::Nginx, None | Some("default")) => Escape::Default,
            (Dialect::Nginx, Some("json")) => Escape::Json,
            (Dialect::Nginx, Some("none")) => Escape::None,
            (Dialect::Nginx, Some(e)) => {
                return Err(err(
                    0,
                    format!("escape={e}: expected escape=default, escape=json or escape=none"),
                ))
            }
        };
        let pieces = match dialect {
            Dialect::Nginx => lex_nginx(format)?,
            Dialect::Apache => lex_apache(format)?,
        };
        let kind = if is_json_shaped(format) {
            Kind::Json(json_keys(format, dialect)?)
        } else {
            Kind::Text(Text::build(format, pieces)?)
        };
        Ok(LogFormat {
            name: name.to_string(),
            source: format.to_string(),
            dialect,
            escape,
            kind,
        })
    }

    /// The JSON keys a JSON-shaped format names (`None`: a text format).
    pub fn json_fields(&self) -> Option<&FieldMap> {
        match &self.kind {
            Kind::Json(m) => Some(m),
            Kind::Text(_) => None,
        }
    }

    /// Whether a line could be of this format at all (its leading literal, if it has one, is
    /// there). Cheap: used to pick among formats on a line-by-line basis.
    pub fn claims(&self, line: &[u8]) -> bool {
        match &self.kind {
            Kind::Text(t) => match t.segs.first() {
                Some(Seg::Lit(l)) => line.starts_with(l),
                _ => true,
            },
            Kind::Json(_) => line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        }
    }

    /// Read one line (without its newline) of a text format.
    pub(super) fn parse_text(&self, line: &str, opts: &ParseOptions) -> Result<Request, LineError> {
        let Kind::Text(t) = &self.kind else {
            return Err(LineError::Mismatch("a JSON format reads JSON lines".into()));
        };
        let caps = t.capture(line)?;
        self.build(t, &caps, opts)
    }

    /// The variables of a text format and the text each captured from `line` (for
    /// `bouncer formats`).
    pub fn fields_of<'a>(&self, line: &'a str) -> Vec<(String, &'a str)> {
        let Kind::Text(t) = &self.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let _ = t.walk(line, |seg, value| {
            if let Seg::Field { names, .. } = seg {
                out.push((names.clone(), value));
            }
        });
        out
    }

    fn build(
        &self,
        t: &Text,
        caps: &[Option<&str>; SLOTS],
        opts: &ParseOptions,
    ) -> Result<Request, LineError> {
        let slot = |r: Role| r.slot().and_then(|s| caps[s]);
        let (peer_text, list_xff) = match (slot(Role::Peer), slot(Role::PeerList)) {
            (Some(p), _) => (p, None),
            (None, Some(list)) => match list.rfind(',') {
                Some(c) => (list[c + 1..].trim(), Some(&list[..c])),
                None => (list.trim(), None),
            },
            (None, None) => return Err(LineError::MissingIp(format!("the format {}", self.name))),
        };
        let peer = parse_ip(peer_text)?;
        let xff = slot(Role::Xff)
            .filter(|x| !x.is_empty() && *x != "-")
            .or(list_xff);
        let ip = client_ip(peer, xff, &opts.trusted_proxies)?;
        let time_text = slot(Role::Time(t.time)).unwrap_or("");
        let time = t
            .time(time_text, opts.input_offset_secs)
            .map_err(|e| super::time_error(time_text, e))?;
        let status = match slot(Role::Status) {
            None => 0,
            Some(s) => s
                .parse::<u16>()
                .ok()
                .filter(|s| *s < 1000)
                .ok_or_else(|| LineError::InvalidStatus(super::clip(s, 16)))?,
        };
        let bytes = slot(Role::Bytes).and_then(|b| b.parse().ok()).unwrap_or(0);
        let request = slot(Role::Request).map(|r| self.value(r));
        let (req_method, req_path) = match &request {
            Some(r) => split_request(r),
            None => ("-", ""),
        };
        let method = slot(Role::Method).map(|m| self.value(m));
        let path = slot(Role::Path).map(|p| self.value(p));
        let agent = slot(Role::UserAgent).map(|a| self.value(a));
        Ok(Request::new(
            ip,
            time,
            method.as_deref().unwrap_or(req_method),
            path.as_deref().unwrap_or(req_path),
            status,
            bytes,
            agent.as_deref().unwrap_or(""),
        ))
    }

    /// A text value as bouncer keeps it: `escape=json` values unescaped, others as written (like
    /// the built-in combined reader, so a format and its preset decide the same).
    fn value<'a>(&self, v: &'a str) -> Cow<'a, str> {
        if self.escape == Escape::Json && v.contains('\\') {
            Cow::Owned(unescape_json(v))
        } else {
            Cow::Borrowed(v)
        }
    }

    /// A one-line description of which variables feed what (for `bouncer formats`).
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Json(m) => {
                let keys: Vec<String> = m
                    .pinned()
                    .map(|(f, k)| format!("{}←\"{k}\"", f.name()))
                    .collect();
                format!("JSON, keys {}", keys.join(", "))
            }
            Kind::Text(t) => {
                let read: Vec<String> = t
                    .segs
                    .iter()
                    .filter_map(|s| match s {
                        Seg::Field { role, names, .. } if *role != Role::Skip => {
                            Some(format!("{}←{names}", role_name(*role)))
                        }
                        _ => None,
                    })
                    .collect();
                read.join(", ")
            }
        }
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Peer => "client",
        Role::PeerList => "client (last of list)",
        Role::Xff => "xff",
        Role::Time(_) => "time",
        Role::Request => "request",
        Role::Method => "method",
        Role::Path | Role::PathTail => "path",
        Role::Status => "status",
        Role::Bytes => "bytes",
        Role::UserAgent => "user agent",
        Role::Skip => "-",
    }
}

/// nginx if it has `$name`, Apache if it has `%x`; whichever comes first when both do.
fn dialect_of(format: &str) -> Dialect {
    let b = format.as_bytes();
    for (i, c) in b.iter().enumerate() {
        let next = b.get(i + 1).copied().unwrap_or(0);
        match c {
            b'$' if next == b'{' || next == b'_' || next.is_ascii_alphabetic() => {
                return Dialect::Nginx
            }
            b'%' if next == b'{' || next == b'>' || next == b'<' || next.is_ascii_alphabetic() => {
                return Dialect::Apache
            }
            _ => {}
        }
    }
    Dialect::Nginx
}

/// The config escapes of a format typed without its quotes: `\"` → `"`, `\\` → `\`, `\n`,
/// `\t`.
fn unbackslash(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A piece of a format: literal text, or a variable.
#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// The index (in chars) of the char at or before byte offset `byte`.
fn char_at(format: &str, byte: usize) -> usize {
    format.char_indices().take_while(|(i, _)| *i < byte).count()
}

fn lex_nginx(format: &str) -> Result<Vec<Piece>, FormatError> {
    let b = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let ch = format[i..].chars().next().expect("in bounds");
            lit.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let at = char_at(format, i);
        let (name, end) = if b.get(i + 1) == Some(&b'{') {
            let close = b[i + 2..]
                .iter()
                .position(|c| *c == b'}')
                .ok_or_else(|| FormatError {
                    format: format.to_string(),
                    at,
                    message: "`${` is not closed by `}`".into(),
                })?;
            (&format[i + 2..i + 2 + close], i + 3 + close)
        } else {
            let len = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            (&format[i + 1..i + 1 + len], i + 1 + len)
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(FormatError {
                format: format.to_string(),
                at,
                message: "`$` must be followed by a variable name".into(),
            });
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Var(nginx_var(name, at)));
        i = end;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn nginx_var(name: &str, at: usize) -> Var {
    use Role::*;
    let (role, shape, start) = match name {
        "remote_addr" | "realip_remote_addr" => (Peer, Shape::Free, Start::Any),
        "proxy_add_x_forwarded_for" => (PeerList, Shape::List, Start::Any),
        "http_x_forwarded_for" => (Xff, Shape::List, Start::Any),
        "http_x_real_ip" | "http_cf_connecting_ip" | "http_true_client_ip" => {
            (Xff, Shape::Free, Start::Any)
        }
        "time_local" => (Time(TimeKind::Local), Shape::Fixed(26), Start::Digit),
        "time_iso8601" => (Time(TimeKind::Iso8601), Shape::Fixed(25), Start::Digit),
        "msec" => (Time(TimeKind::Secs), Shape::Free, Start::Digit),
        "request" => (Request, Shape::Free, Start::Any),
        "request_method" => (Method, Shape::Free, Start::Any),
        "request_uri" | "uri" | "document_uri" => (Path, Shape::Free, Start::Any),
        "is_args" | "args" | "query_string" => (PathTail, Shape::Free, Start::Any),
        "status" => (Status, Shape::Digits, Start::Status),
        "body_bytes_sent" | "bytes_sent" => (Bytes, Shape::Free, Start::DigitOrDash),
        "http_user_agent" => (UserAgent, Shape::Free, Start::Any),
        "request_time" | "request_length" | "connection" | "connection_requests" | "pid" => {
            (Skip, Shape::Free, Start::DigitOrDash)
        }
        n if n.starts_with("upstream_") && n != "upstream_cache_status" => {
            (Skip, Shape::List, Start::Any)
        }
        _ => (Skip, Shape::Free, Start::Any),
    };
    Var {
        name: format!("${name}"),
        role,
        shape,
        start,
        at,
    }
}

fn lex_apache(format: &str) -> Result<Vec<Piece>, FormatError> {
    let b = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let err = |at: usize, message: String| FormatError {
        format: format.to_string(),
        at,
        message,
    };
    while i < b.len() {
        if b[i] != b'%' {
            let ch = format[i..].chars().next().expect("in bounds");
            lit.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let at = char_at(format, i);
        i += 1;
        if b.get(i) == Some(&b'%') {
            lit.push('%');
            i += 1;
            continue;
        }
        // Conditions: %!200,304{…}i, %400,501{…}i
        if b.get(i) == Some(&b'!') {
            i += 1;
        }
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b',') {
            i += 1;
        }
        let mut modifier = None;
        if matches!(b.get(i), Some(b'<' | b'>')) {
            modifier = Some(b[i]);
            i += 1;
        }
        let mut arg = None;
        if b.get(i) == Some(&b'{') {
            let close = b[i + 1..]
                .iter()
                .position(|c| *c == b'}')
                .ok_or_else(|| err(at, "`%{` is not closed by `}`".into()))?;
            arg = Some(&format[i + 1..i + 1 + close]);
            i += close + 2;
        }
        let Some(&letter) = b.get(i) else {
            return Err(err(at, "`%` at the end of the format: a directive letter is missing (write a literal % as %%)".into()));
        };
        let mut directive = (letter as char).to_string();
        if letter == b'^' {
            let two = format.get(i + 1..i + 3).unwrap_or("");
            if two != "ti" && two != "to" {
                return Err(err(
                    char_at(format, i),
                    "unknown Apache directive `%^`: expected %{…}^ti or %{…}^to".into(),
                ));
            }
            directive.push_str(two);
            i += 2;
        }
        i += 1;
        let var = apache_var(&directive, arg, modifier, at)
            .ok_or_else(|| err(at, format!("unknown Apache directive `%{directive}`")))?;
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        pieces.push(Piece::Var(var));
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

fn apache_var(directive: &str, arg: Option<&str>, modifier: Option<u8>, at: usize) -> Option<Var> {
    use Role::*;
    let lower = arg.map(str::to_ascii_lowercase);
    let (role, shape, start) = match (directive, lower.as_deref()) {
        ("a", Some("c")) => (Skip, Shape::Free, Start::Any),
        ("a", _) | ("h", _) => (Peer, Shape::Free, Start::Any),
        ("t", None) => (Time(TimeKind::Bracketed), Shape::Bracketed, Start::Bracket),
        ("t", Some(f)) => {
            let f = f
                .strip_prefix("begin:")
                .or_else(|| f.strip_prefix("end:"))
                .unwrap_or(f);
            match f {
                "sec" => (Time(TimeKind::Secs), Shape::Digits, Start::Digit),
                "msec" => (Time(TimeKind::Millis), Shape::Digits, Start::Digit),
                "usec" => (Time(TimeKind::Micros), Shape::Digits, Start::Digit),
                "msec_frac" | "usec_frac" => (Skip, Shape::Digits, Start::Digit),
                _ => (Time(TimeKind::Strftime), Shape::Free, Start::Any),
            }
        }
        ("r", _) => (Request, Shape::Free, Start::Any),
        ("m", _) => (Method, Shape::Free, Start::Any),
        ("U", _) => (Path, Shape::Free, Start::Any),
        ("q", _) => (PathTail, Shape::Free, Start::Any),
        ("s", _) => (Status, Shape::Digits, Start::Status),
        ("b" | "B" | "O", _) => (Bytes, Shape::Free, Start::DigitOrDash),
        ("i", Some("user-agent")) => (UserAgent, Shape::Free, Start::Any),
        ("i", Some("x-forwarded-for")) => (Xff, Shape::List, Start::Any),
        ("i", Some("x-real-ip" | "cf-connecting-ip" | "true-client-ip")) => {
            (Xff, Shape::Free, Start::Any)
        }
        ("D" | "T" | "I" | "S" | "P" | "k", _) => (Skip, Shape::Free, Start::DigitOrDash),
        (
            "A" | "C" | "e" | "f" | "H" | "i" | "l" | "L" | "n" | "o" | "p" | "R" | "u" | "v" | "V"
            | "X" | "^ti" | "^to",
            _,
        ) => (Skip, Shape::Free, Start::Any),
        _ => return None,
    };
    let name = match (modifier, arg) {
        (Some(m), Some(a)) => format!("%{}{{{a}}}{directive}", m as char),
        (Some(m), None) => format!("%{}{directive}", m as char),
        (None, Some(a)) => format!("%{{{a}}}{directive}"),
        (None, None) => format!("%{directive}"),
    };
    let strftime = matches!(role, Time(TimeKind::Strftime));
    Some(Var {
        name: if strftime {
            format!("%{{{}}}t", arg.unwrap_or_default())
        } else {
            name
        },
        role,
        shape,
        start,
        at,
    })
}

/// Preference among variables of one role (lower wins): `$remote_addr` over
/// `$realip_remote_addr`, `%a` over `%h`, `%>s` over `%s`, `$request_uri` over `$uri`, `%B` over `%O`.
fn rank(v: &Var) -> u8 {
    match v.name.as_str() {
        "$realip_remote_addr" | "%h" => 2,
        "%s" | "%<s" => 2,
        "$uri" | "$document_uri" => 2,
        "%O" | "$bytes_sent" => 2,
        "$http_x_real_ip" | "$http_cf_connecting_ip" | "$http_true_client_ip" => 2,
        _ => 1,
    }
}

impl Text {
    fn build(format: &str, pieces: Vec<Piece>) -> Result<Text, FormatError> {
        let err = |at: usize, message: String| FormatError {
            format: format.to_string(),
            at,
            message,
        };
        // One variable per role: the best-ranked; the others are read past, not used.
        let mut vars: Vec<Var> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.clone()),
                Piece::Lit(_) => None,
            })
            .collect();
        let mut chosen: [Option<(u8, usize)>; SLOTS] = [None; SLOTS];
        for (i, v) in vars.iter().enumerate() {
            if let Some(s) = v.role.slot() {
                if chosen[s].is_none_or(|(r, _)| rank(v) < r) {
                    chosen[s] = Some((rank(v), i));
                }
            }
        }
        for (i, v) in vars.iter_mut().enumerate() {
            if let Some(s) = v.role.slot() {
                if chosen[s].map(|(_, c)| c) != Some(i) {
                    v.role = Role::Skip;
                }
            }
        }
        if chosen[0].is_none() && chosen[1].is_none() {
            return Err(err(
                0,
                "the format has no client address: it needs $remote_addr (nginx) or %h / %a (Apache)".into(),
            ));
        }
        let Some((_, time_var)) = chosen[3] else {
            return Err(err(
                0,
                "the format has no time: it needs $time_local, $time_iso8601 or $msec (nginx), or %t (Apache)".into(),
            ));
        };
        let time = match vars[time_var].role {
            Role::Time(k) => k,
            _ => unreachable!("slot 3 holds times"),
        };
        let strftime = if time == TimeKind::Strftime {
            vars[time_var].name[2..vars[time_var].name.len() - 2].to_string()
        } else {
            String::new()
        };

        // Segments: literals as bytes; variables with nothing between them grouped.
        let mut segs: Vec<Seg> = Vec::new();
        let mut group: Vec<Var> = Vec::new();
        let mut vi = vars.into_iter();
        let flush = |group: &mut Vec<Var>, segs: &mut Vec<Seg>| -> Result<(), FormatError> {
            if group.is_empty() {
                return Ok(());
            }
            segs.push(group_seg(format, std::mem::take(group))?);
            Ok(())
        };
        for p in pieces {
            match p {
                Piece::Lit(l) => {
                    flush(&mut group, &mut segs)?;
                    segs.push(Seg::Lit(l.into_bytes().into_boxed_slice()));
                }
                Piece::Var(_) => {
                    let v = vi.next().expect("one var per piece");
                    // A variable that ends by its own shape may be followed directly by another.
                    let self_delimited = group.last().is_some_and(|p| {
                        matches!(p.shape, Shape::Fixed(_) | Shape::Digits | Shape::Bracketed)
                    });
                    if self_delimited {
                        flush(&mut group, &mut segs)?;
                    }
                    group.push(v);
                }
            }
        }
        flush(&mut group, &mut segs)?;
        let looks: Vec<Look> = (0..segs.len())
            .map(|i| match (segs.get(i + 1), segs.get(i + 2)) {
                (Some(Seg::Lit(_)), Some(Seg::Field { start, .. })) => Look::Lit(Some(*start)),
                (Some(Seg::Lit(_)), _) => Look::Lit(None),
                _ => Look::Eol,
            })
            .collect();
        for (seg, l) in segs.iter_mut().zip(looks) {
            if let Seg::Field { look, .. } = seg {
                *look = l;
            }
        }
        let last_needed = segs
            .iter()
            .rposition(|s| matches!(s, Seg::Field { role, .. } if *role != Role::Skip))
            .unwrap_or(0);
        Ok(Text {
            segs,
            time,
            strftime,
            last_needed,
        })
    }

    /// Read the needed fields of a line into their slots.
    fn capture<'a>(&self, line: &'a str) -> Result<[Option<&'a str>; SLOTS], LineError> {
        let mut caps: [Option<&'a str>; SLOTS] = [None; SLOTS];
        self.walk(line, |seg, value| {
            if let Seg::Field {
                role,
                path_from_slash,
                ..
            } = seg
            {
                if let Some(s) = role.slot() {
                    caps[s] = Some(if *path_from_slash {
                        value.find('/').map_or(value, |i| &value[i..])
                    } else {
                        value
                    });
                }
            }
        })?;
        Ok(caps)
    }

    /// Match the line segment by segment, handing each field's text to `each`. Stops after the
    /// last segment bouncer needs (what follows is not read, so it may be anything).
    fn walk<'a>(
        &self,
        line: &'a str,
        mut each: impl FnMut(&Seg, &'a str),
    ) -> Result<(), LineError> {
        let b = line.as_bytes();
        let mut pos = 0;
        let mut i = 0;
        while i <= self.last_needed {
            let Some(seg) = self.segs.get(i) else { break };
            match seg {
                Seg::Lit(l) => {
                    if !starts(&b[pos..], l) {
                        return Err(mismatch(l, pos, i, &self.segs));
                    }
                    pos += l.len();
                    i += 1;
                }
                Seg::Field { shape, look, .. } => {
                    // (end of the value, end of the literal after it if that was matched too)
                    let (end, after) = self
                        .field_end(b, pos, i, *shape, *look)
                        .map_err(|m| self.miss(m, pos, i))?;
                    let value = line.get(pos..end).ok_or_else(|| {
                        LineError::Mismatch(format!("{} cut inside a character", seg_name(seg)))
                    })?;
                    each(seg, value);
                    match after {
                        Some(p) => {
                            pos = p;
                            i += 2;
                        }
                        None => {
                            pos = end;
                            i += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Where field `i` (starting at `pos`) ends, and where the literal after it ends if that was
    /// matched too. The error is a small value, made into a message only when a line fails.
    #[inline]
    fn field_end(
        &self,
        b: &[u8],
        pos: usize,
        i: usize,
        shape: Shape,
        look: Look,
    ) -> Result<(usize, Option<usize>), Miss> {
        match shape {
            Shape::Fixed(n) => match pos + n <= b.len() {
                true => Ok((pos + n, None)),
                false => Err(Miss::Short),
            },
            Shape::Digits => {
                let n = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
                match n {
                    // `-` where a number was expected (e.g. Apache's %s on an aborted request).
                    0 if b.get(pos) == Some(&b'-') => Ok((pos + 1, None)),
                    0 => Err(Miss::NotNumber),
                    n => Ok((pos + n, None)),
                }
            }
            Shape::Bracketed => {
                if b.get(pos) != Some(&b'[') {
                    return Err(Miss::NoBracket);
                }
                memchr::memchr(b']', &b[pos..])
                    .map(|e| (pos + e + 1, None))
                    .ok_or(Miss::NoClose)
            }
            Shape::Free | Shape::List => match look {
                Look::Eol => Ok((b.len(), None)),
                Look::Lit(next) => {
                    let Some(Seg::Lit(l)) = self.segs.get(i + 1) else {
                        unreachable!("Look::Lit is only set before a literal")
                    };
                    match find_end(b, pos, l, shape == Shape::List, next) {
                        Some(end) => Ok((end, Some(end + l.len()))),
                        // The format's closing text is missing at the end of the line (a cut
                        // last quote): the value runs to the end, as the built-in reader reads it.
                        None if next.is_none() => Ok((b.len(), Some(b.len()))),
                        None => Err(Miss::Lit),
                    }
                }
            },
        }
    }

    /// The message for field `i` that did not match at `pos`.
    #[cold]
    fn miss(&self, miss: Miss, pos: usize, i: usize) -> LineError {
        let name = seg_name(&self.segs[i]);
        match miss {
            Miss::Short => LineError::Mismatch(format!("the line ends before {name}")),
            Miss::NotNumber => {
                LineError::Mismatch(format!("{name} is not a number at byte {}", pos + 1))
            }
            Miss::NoBracket => {
                LineError::Mismatch(format!("expected `[` of {name} at byte {}", pos + 1))
            }
            Miss::NoClose => LineError::Mismatch(format!("{name} has no closing `]`")),
            Miss::Lit => match self.segs.get(i + 1) {
                Some(Seg::Lit(l)) => LineError::Mismatch(format!(
                    "no {:?} after {name} (from byte {}): the line lacks what the format has next",
                    String::from_utf8_lossy(l),
                    pos + 1
                )),
                _ => LineError::Mismatch(format!("{name} does not end")),
            },
        }
    }

    fn time(&self, s: &str, offset: i32) -> Result<i64, super::TimeError> {
        use super::time::{any_time, epoch_from_number, time_local, TimeError};
        let number = |div: f64| -> Result<i64, TimeError> {
            let f: f64 = s.parse().map_err(|_| TimeError::Unreadable)?;
            epoch_from_number(f / div)
        };
        match self.time {
            TimeKind::Local => time_local(s, offset),
            TimeKind::Bracketed => time_local(
                s.strip_prefix('[')
                    .and_then(|x| x.strip_suffix(']'))
                    .ok_or(TimeError::Unreadable)?,
                offset,
            ),
            TimeKind::Iso8601 => any_time(s, offset),
            TimeKind::Secs => number(1.0),
            TimeKind::Millis => number(1e3),
            TimeKind::Micros => number(1e6),
            TimeKind::Strftime => strftime(s, &self.strftime, offset),
        }
    }
}

fn strftime(s: &str, fmt: &str, offset: i32) -> Result<i64, super::TimeError> {
    use super::time::TimeError;
    if fmt.contains("%z") || fmt.contains("%Z") {
        return chrono::DateTime::parse_from_str(s, fmt)
            .map_err(|_| TimeError::Unreadable)
            .and_then(|t| in_range(t.timestamp()));
    }
    chrono::NaiveDateTime::parse_from_str(s, fmt)
        .map_err(|_| TimeError::Unreadable)
        .and_then(|t| in_range(t.and_utc().timestamp() - offset as i64))
}

fn in_range(t: i64) -> Result<i64, super::TimeError> {
    if (super::MIN_TIME..super::MAX_TIME).contains(&t) {
        Ok(t)
    } else {
        Err(super::TimeError::OutOfRange)
    }
}

fn seg_name(seg: &Seg) -> String {
    match seg {
        Seg::Field { names, .. } => names.clone(),
        Seg::Lit(l) => format!("{:?}", String::from_utf8_lossy(l)),
    }
}

fn mismatch(lit: &[u8], pos: usize, i: usize, segs: &[Seg]) -> LineError {
    let what = String::from_utf8_lossy(lit);
    let after = i
        .checked_sub(1)
        .and_then(|p| segs.get(p))
        .map(|s| format!(" after {}", seg_name(s)))
        .unwrap_or_default();
    LineError::Mismatch(format!("expected {what:?}{after} at byte {}", pos + 1))
}

/// Where a free value ends: the first occurrence of `lit` (not an escaped quote, not the `, `
/// inside a list) after which the next value's `look` holds — or, if none does, the first
/// occurrence (and the mismatch shows up there). `look` `None`: `lit` is the format's last text;
/// it must end the line or be followed by a space.
fn find_end(b: &[u8], from: usize, lit: &[u8], list: bool, look: Option<Start>) -> Option<usize> {
    let first = lit[0];
    let mut at = from;
    let mut fallback = None;
    while let Some(i) = memchr::memchr(first, &b[at..]).map(|i| i + at) {
        at = i + 1;
        if !starts(&b[i..], lit) {
            continue;
        }
        if first == b'"' && i > from && b[i - 1] == b'\\' && !(i > from + 1 && b[i - 2] == b'\\') {
            continue;
        }
        if list
            && first == b' '
            && i > from
            && (b[i - 1] == b',' || b[i - 1] == b':' || b.get(i + 1) == Some(&b':'))
        {
            continue;
        }
        let after = i + lit.len();
        let digit = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
        let ok = match look {
            None => after == b.len() || b[after] == b' ',
            Some(Start::Any) => true,
            Some(Start::Digit) => digit(after),
            Some(Start::DigitOrDash) => digit(after) || b.get(after) == Some(&b'-'),
            Some(Start::Status) => {
                digit(after) && digit(after + 1) && digit(after + 2) && !digit(after + 3)
            }
            Some(Start::Bracket) => b.get(after) == Some(&b'['),
        };
        if ok {
            return Some(i);
        }
        fallback.get_or_insert(i);
    }
    fallback
}

/// Variables written with nothing between them become one field. That works when at most the
/// path is read from it (`$uri$is_args$args`, `%U%q`, `$host$request_uri`: the path starts at
/// the first `/`); anything else cannot be split, and compiling says where.
fn group_seg(format: &str, group: Vec<Var>) -> Result<Seg, FormatError> {
    let names: String = group.iter().map(|v| v.name.as_str()).collect();
    if let [v] = group.as_slice() {
        return Ok(Seg::Field {
            role: v.role,
            shape: v.shape,
            start: v.start,
            path_from_slash: false,
            names,
            look: Look::Eol,
        });
    }
    let path_at = group.iter().position(|v| v.role == Role::Path);
    for (k, v) in group.iter().enumerate() {
        let ok = matches!(v.role, Role::Skip | Role::PathTail | Role::Path);
        if !ok {
            let other = if k == 0 { &group[1] } else { v };
            return Err(FormatError {
                format: format.to_string(),
                at: other.at,
                message: format!(
                    "{} and {} are written with nothing between them: bouncer cannot tell where one ends and the other starts",
                    group[k.saturating_sub(1).min(k)].name,
                    if k == 0 { &group[1].name } else { &v.name }
                ),
            });
        }
    }
    let (role, path_from_slash) = match path_at {
        Some(0) => (Role::Path, false),
        Some(_) => (Role::Path, true),
        None => (Role::Skip, false),
    };
    Ok(Seg::Field {
        role,
        shape: if group.iter().any(|v| v.shape == Shape::List) {
            Shape::List
        } else {
            Shape::Free
        },
        start: group[0].start,
        path_from_slash,
        names,
        look: Look::Eol,
    })
}

fn is_json_shaped(format: &str) -> bool {
    let t = format.trim();
    t.starts_with('{') && t.ends_with('}')
}

/// The keys of a JSON-shaped format whose value is exactly one variable, mapped to the fields
/// they feed.
fn json_keys(format: &str, dialect: Dialect) -> Result<FieldMap, FormatError> {
    let err = |at: usize, message: &str| FormatError {
        format: format.to_string(),
        at: char_at(format, at.min(format.len())),
        message: message.to_string(),
    };
    let b = format.as_bytes();
    let mut i = b.iter().position(|c| *c == b'{').expect("JSON-shaped") + 1;
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut map = FieldMap::default();
    let (mut has_ip, mut has_time) = (false, false);
    loop {
        ws(&mut i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b'"') => {}
            _ => return Err(err(i, "expected a quoted key in the JSON format")),
        }
        let k0 = i + 1;
        let k1 = k0
            + b[k0..]
                .iter()
                .position(|c| *c == b'"')
                .ok_or_else(|| err(i, "unterminated key"))?;
        let key = &format[k0..k1];
        i = k1 + 1;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return Err(err(i, "expected `:` after the key"));
        }
        i += 1;
        ws(&mut i);
        let v0 = i;
        let value = match b.get(i) {
            Some(b'"') => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                if j >= b.len() {
                    return Err(err(i, "unterminated string value"));
                }
                i = j + 1;
                &format[v0 + 1..j]
            }
            Some(b'{' | b'[') => {
                // A nested object or array: skipped (its keys are not read).
                let (open, close) = if b[i] == b'{' {
                    (b'{', b'}')
                } else {
                    (b'[', b']')
                };
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == open {
                        depth += 1;
                    } else if b[i] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
                i += 1;
                ""
            }
            Some(_) => {
                while i < b.len() && !matches!(b[i], b',' | b'}') {
                    i += 1;
                }
                format[v0..i].trim()
            }
            None => return Err(err(i, "the JSON format ends inside a value")),
        };
        let pieces = match dialect {
            Dialect::Nginx => lex_nginx(value),
            Dialect::Apache => lex_apache(value),
        }
        .map_err(|e| {
            // `e.at` counts chars in `value`, which starts this many bytes into the format.
            let start = value.as_ptr() as usize - format.as_ptr() as usize;
            FormatError {
                format: format.to_string(),
                at: char_at(format, start) + e.at,
                message: e.message,
            }
        })?;
        if let [Piece::Var(v)] = pieces.as_slice() {
            if let Some(field) = v.role.field() {
                has_ip |= field == FieldName::Ip;
                has_time |= field == FieldName::Time;
                map.set(field, key.to_string());
            }
        }
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Err(err(i, "expected `,` or `}` after a value")),
        }
    }
    if !has_ip {
        return Err(err(
            0,
            "the JSON format has no key holding the client address ($remote_addr / %h / %a alone)",
        ));
    }
    if !has_time {
        return Err(err(0, "the JSON format has no key holding the time ($time_iso8601, $time_local, $msec / %t alone)"));
    }
    Ok(map)
}

/// JSON string escapes (`\"`, `\\`, `\/`, `\n`, `\uXXXX` …) of an `escape=json` value.
fn unescape_json(v: &str) -> String {
    let quoted = format!("\"{v}\"");
    serde_json::from_str::<String>(&quoted).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(def: &str) -> LogFormat {
        LogFormat::from_arg(def).unwrap_or_else(|e| panic!("{def}: {e}"))
    }

    fn read(f: &LogFormat, line: &str) -> Result<Request, LineError> {
        f.parse_text(line, &ParseOptions::default())
    }

    #[test]
    fn presets_compile() {
        for (name, _, _) in PRESETS {
            let f = LogFormat::preset(name).unwrap();
            assert_eq!(f.name, *name);
        }
    }

    #[test]
    fn combined_from_the_nginx_docs() {
        // http://nginx.org/en/docs/http/ngx_http_log_module.html#log_format, as pasted.
        let f = fmt("log_format combined '$remote_addr - $remote_user [$time_local] '\n                    '\"$request\" $status $body_bytes_sent '\n                    '\"$http_referer\" \"$http_user_agent\"';");
        assert_eq!(
            (f.name.as_str(), f.dialect, f.escape),
            ("combined", Dialect::Nginx, Escape::Default)
        );
        let r = read(&f, r#"192.0.2.7 - alice [18/Jul/2023:13:44:16 +0200] "POST /login?x="a b" HTTP/1.1" 403 12 "https://ex.com/" "Mozilla/5.0 (X11)""#).unwrap();
        assert_eq!(r.ip.to_string(), "192.0.2.7");
        assert_eq!(r.time, 1_689_680_656);
        assert_eq!((r.path(), r.status, r.bytes), (r#"/login?x="a"#, 403, 12));
        assert_eq!(r.user_agent(), "Mozilla/5.0 (X11)");
    }

    #[test]
    fn apache_definitions() {
        let f = fmt(
            r#"LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined"#,
        );
        assert_eq!(
            (f.name.as_str(), f.dialect),
            ("vhost_combined", Dialect::Apache)
        );
        let r = read(&f, r#"neutralbank.app:443 79.110.62.11 - - [06/Aug/2024:00:01:35 +0000] "GET /https HTTP/1.1" 200 6383 "-" "Mozilla/5.0""#).unwrap();
        assert_eq!(
            (r.ip.to_string().as_str(), r.path(), r.bytes),
            ("79.110.62.11", "/https", 6383)
        );
        let f = fmt(r#""%h %l %u %{%Y-%m-%d %H:%M:%S}t \"%m %U%q %H\" %>s %b""#);
        let r = read(
            &f,
            r#"192.0.2.1 - - 2023-07-18 13:44:16 "HEAD /a.css?v=1 HTTP/1.1" 200 -"#,
        )
        .unwrap();
        assert_eq!(
            (r.time, r.path(), r.bytes),
            (1_689_687_856, "/a.css?v=1", 0)
        );
        assert_eq!(r.class(), super::super::Class::Asset);
        let f = fmt("%a %{msec}t \"%r\" %s");
        assert_eq!(
            read(&f, "::1 1689687856123 \"GET / HTTP/1.0\" 404")
                .unwrap()
                .time,
            1_689_687_856
        );
    }

    #[test]
    fn nginx_variables_and_escapes() {
        let f = fmt(
            r#"escape=json '$time_iso8601 $proxy_add_x_forwarded_for "$request_method $scheme://$host$request_uri" $status ${request_time}s "$http_user_agent"'"#,
        );
        let opts = ParseOptions {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let line = r#"2023-07-18T13:44:16+00:00 198.51.100.9, 10.0.0.1 "GET https://ex.com/a?b=\"c\"" 200 0.012s "caf\u00e9 \"x\"""#;
        let r = f.parse_text(line, &opts).unwrap();
        assert_eq!(r.ip.to_string(), "198.51.100.9");
        assert_eq!((r.path(), r.user_agent()), ("/a?b=\"c\"", "café \"x\""));
        assert_eq!(read(&f, line).unwrap().ip.to_string(), "10.0.0.1");
    }

    #[test]
    fn upstream_lists_and_npm() {
        let f = LogFormat::preset("npm-proxy").unwrap();
        let r = read(&f, r#"[24/Jan/2022:16:51:02 +0000] - 502, 504 : 200 200 - GET http openresty.local "/sdfdsf" [Client 1.2.3.4] [Length 192] [Gzip 3.10] [Sent-to openresty] "Mozilla/5.0" "-""#).unwrap();
        assert_eq!(
            (r.ip.to_string().as_str(), r.status, r.path()),
            ("1.2.3.4", 200, "/sdfdsf")
        );
        assert!(!f.claims(b"1.2.3.4 - - [x]"));
    }

    #[test]
    fn json_shaped_formats_map_their_keys() {
        let f = fmt(
            r#"log_format j escape=json '{"@t":"$time_iso8601","peer":"$remote_addr",' '"st":$status,"req":"$request","x":"$host$uri"}';"#,
        );
        let m = f.json_fields().unwrap();
        let pinned: Vec<_> = m.pinned().map(|(f, k)| (f.name(), k.to_string())).collect();
        assert_eq!(
            pinned,
            vec![
                ("time", "@t".to_string()),
                ("ip", "peer".to_string()),
                ("status", "st".to_string()),
                ("request", "req".to_string())
            ]
        );
    }

    #[test]
    fn errors_point_at_the_character() {
        for (def, at, what) in [
            ("$remote_addr $ [$time_local]", 13, "`$` must be followed"),
            ("$remote_addr ${time_local", 13, "not closed"),
            ("%h %l %Z %t", 6, "unknown Apache directive `%Z`"),
            ("%h %t %{Referer", 6, "not closed"),
            ("%h %t %", 6, "at the end"),
            ("$remote_addr [$msec] $status$body_bytes_sent", 21, ""),
            ("$time_local \"$request\"", 0, "no client address"),
            ("$remote_addr \"$request\"", 0, "no time"),
            (
                "$remote_addr$remote_user [$time_local]",
                12,
                "nothing between them",
            ),
            ("", 0, "empty"),
            (r#"'{"ip":"$remote_addr"}'"#, 0, "no key holding the time"),
            // An error inside a JSON value, after a multi-byte character.
            (
                "{\"é\":\"$remote_addr\",\"t\":\"x $\"}",
                27,
                "`$` must be followed",
            ),
        ] {
            match LogFormat::from_arg(def) {
                Err(e) => {
                    assert_eq!(e.at, at, "{def}: {e}");
                    assert!(e.message.contains(what), "{def}: {e}");
                    let shown = e.to_string();
                    assert!(shown.contains('^'), "{shown}");
                }
                Ok(_) if what.is_empty() => {} // $status ends by shape: allowed
                Ok(_) => panic!("{def} compiled"),
            }
        }
        let e = LogFormat::from_arg("%h %l %Z %t").unwrap_err().to_string();
        assert!(e.ends_with("\n  %h %l %Z %t\n        ^"), "{e}");
    }

    /// Inputs the fuzzer found panics with (fuzz/regressions/): each must now be an answer.
    #[test]
    fn fuzz_regressions() {
        // A format error inside a JSON value was placed by adding a char count to a byte offset.
        let data = include_bytes!("../../fuzz/regressions/format_compiler-json-value-offset");
        let def = data.split(|b| *b == 0).next().unwrap();
        let e = LogFormat::from_arg(&String::from_utf8_lossy(def)).unwrap_err();
        assert!(e.at <= e.format.chars().count());
        let _ = e.to_string();
    }

    #[test]
    fn mismatched_lines_say_where() {
        let f = LogFormat::preset("combined").unwrap();
        let e = read(&f, "192.0.2.1 - - 18/Jul/2023").unwrap_err();
        assert!(matches!(e, LineError::Mismatch(_)), "{e}");
        let e = read(
            &f,
            r#"192.0.2.1 - - [18/Jul/2023:13:44:16 +0000] "GET / HTTP/1.1" 2x0 1 "-" "-""#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(matches!(
            read(
                &f,
                "nonsense - - [18/Jul/2023:13:44:16 +0000] \"GET /\" 200 1 \"-\" \"-\""
            ),
            Err(LineError::InvalidIp(_))
        ));
    }
}
