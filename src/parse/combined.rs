//! The common log format family, read without being told which member a file uses:
//!
//! `[host] [xff] client ident user [time] [vhost] "request" status bytes ["referer" "agent" extras…]`
//!
//! - nginx `combined` / Apache `combined` and `common`: `1.2.3.4 - - [time] "GET / HTTP/1.1" 200 5 …`;
//! - Apache `vhost_combined` (`%v:%p %h …`, Debian's `other_vhosts_access.log`) and the same without
//!   the port, nginx `$host` / `$host:$server_port` in front: a host column before the client;
//! - an X-Forwarded-For list in front, as a comma list ending in the peer
//!   (`10.0.0.2, 10.0.0.1, 85.181.35.98 - - […]`, nginx `$proxy_add_x_forwarded_for`) or as its own
//!   column before the peer (`"10.5.102.222, 199.96.1.1" 10.2.1.185 - - […]`);
//! - a time without zone (`[27/Jun/2013:11:55:44]`, read in `--input-tz`);
//! - a host name between the time and the request (an Apache 2.2 custom format fail2ban tests).
//!
//! The client is the right-most address before `ident user [time]`. Hops to its left are
//! X-Forwarded-For, believed only through `--trusted-proxy` like the quoted XFF field after the
//! user agent. A plain column further left is a host name and is never taken as an address: a
//! client chooses its `Host` header, so a host column must never be able to frame an IP.
//!
//! Scanners put raw quotes inside the request line (`GET /?q="><script>`), so the request does not
//! end at the first quote: it ends at the first `" NNN ` (quote, space, three-digit status, space).
//! Extra fields after the user agent (e.g. a quoted `$http_x_forwarded_for`) are allowed.

use super::{client_ip, parse_ip, split_request, LineError, ParseOptions, Request};

/// The fields of one line of the family, as text borrowed from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedFields<'a> {
    /// A host column before the client (`example.com`, `example.com:443`).
    pub host: Option<&'a str>,
    /// The logged peer (`$remote_addr`, `%h`): the right-most address before the time.
    pub peer: &'a str,
    /// X-Forwarded-For hops logged in front of the peer, left to right.
    pub xff_front: Option<&'a str>,
    /// Inside the brackets; with or without its zone.
    pub time_local: &'a str,
    /// A host name between the time and the request.
    pub vhost_after_time: Option<&'a str>,
    /// The request line as logged (`GET /path HTTP/1.1`, or whatever a scanner sent).
    pub request: &'a str,
    pub status: u16,
    /// `-` when there was no body.
    pub bytes: &'a str,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// An extra quoted field after the user agent (nginx configs append `$http_x_forwarded_for`).
    pub xff: Option<&'a str>,
}

impl CombinedFields<'_> {
    /// The family member this line is, in the words of the server configs that write it.
    pub fn variant(&self) -> &'static str {
        let combined = self.user_agent.is_some();
        match (self.host.map(has_port), self.xff_front.is_some()) {
            (Some(true), _) if combined => "vhost_combined",
            (Some(true), _) => "vhost_common",
            (Some(false), _) if combined => "vhost_combined without port",
            (Some(false), _) => "vhost_common without port",
            (None, true) => "combined with X-Forwarded-For in front",
            (None, false) if self.vhost_after_time.is_some() => "combined with host after the time",
            (None, false) if combined => "combined",
            (None, false) => "common",
        }
    }

    /// What a reader of `bouncer formats` should know about this line's shape.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(h) = self.host {
            notes.push(format!(
                "`{h}` before the client is a host{} (never taken as an address)",
                if has_port(h) { ":port" } else { " name" }
            ));
        }
        if let Some(x) = self.xff_front {
            notes.push(format!(
                "X-Forwarded-For `{x}` in front of the peer `{}`: the client is chosen by --trusted-proxy",
                self.peer
            ));
        }
        if !has_zone(self.time_local) {
            notes.push(format!("time `{}` has no zone", self.time_local));
        }
        if let Some(v) = self.vhost_after_time {
            notes.push(format!(
                "`{v}` between the time and the request is a host name"
            ));
        }
        notes
    }

    /// Whether the time carried its zone.
    pub fn time_has_zone(&self) -> bool {
        has_zone(self.time_local)
    }
}

fn has_zone(time: &str) -> bool {
    time.len() == 26
}

/// `example.com:443`, `[2001:db8::1]:443` (not a bare IPv6 address).
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((h, p)) => {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        }
        None => false,
    }
}

/// Split a line of the family into its fields without interpreting them.
pub fn combined_fields(line: &str) -> Result<CombinedFields<'_>, LineError> {
    let b = line.as_bytes();
    let first_space = memchr::memchr(b' ', b).ok_or(LineError::Combined("no fields"))?;
    // Nearly every line: `client - - [dd/…`, the client a bare address.
    let usual = b[first_space..].starts_with(b" - - [")
        && is_time_open(b, first_space + 5)
        && memchr::memchr2(b',', b'"', &b[..first_space]).is_none();
    let open = if usual {
        first_space + 5
    } else {
        find_time_open(b, first_space).ok_or(LineError::Combined("no [time]"))?
    };
    let close = memchr::memchr(b']', &b[open..]).ok_or(LineError::Combined("no [time]"))? + open;
    let time_local = &line[open + 1..close];
    let (host, peer, xff_front) = if usual {
        (None, &line[..first_space], None)
    } else {
        split_head(&line[..open - 1])?
    };

    let rest = line[close + 1..]
        .strip_prefix(' ')
        .ok_or(LineError::Combined("no \"request\""))?;
    let (vhost_after_time, rest) = match rest.as_bytes().first() {
        Some(b'"') => (None, rest),
        _ => match memchr::memchr(b' ', rest.as_bytes()) {
            Some(sp) => (Some(&rest[..sp]), &rest[sp + 1..]),
            None => return Err(LineError::Combined("no \"request\"")),
        },
    };
    let rest = rest
        .strip_prefix('"')
        .ok_or(LineError::Combined("no \"request\""))?;
    let req_end =
        find_request_end(rest).ok_or(LineError::Combined("no status after \"request\""))?;
    let request = &rest[..req_end];
    let rest = &rest[req_end + 2..];
    let status_text = &rest[..3];
    let status: u16 = status_text
        .parse()
        .map_err(|_| LineError::InvalidStatus(status_text.to_string()))?;
    let rest = &rest[3..];
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (bytes, rest) = match memchr::memchr(b' ', rest.as_bytes()) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (referer, rest) = quoted(rest);
    let (user_agent, rest) = quoted(rest);
    let (xff, _) = quoted(rest);
    Ok(CombinedFields {
        host,
        peer,
        xff_front,
        time_local,
        vhost_after_time,
        request,
        status,
        bytes,
        referer,
        user_agent,
        xff,
    })
}

/// The `[` that opens the time: after a space, followed by a two-digit day and `/`. (A `[` of an
/// IPv6 host column or of a syslog tag `nginx[12]:` is not one.)
fn find_time_open(b: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'[', &b[at..]).map(|i| i + at) {
        if b[i - 1] == b' ' && is_time_open(b, i) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// Whether `b[i]` is a `[` followed by a two-digit day and `/`.
fn is_time_open(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'[')
        && b.get(i + 1).is_some_and(u8::is_ascii_digit)
        && b.get(i + 2).is_some_and(u8::is_ascii_digit)
        && b.get(i + 3) == Some(&b'/')
}

/// Everything before ` [time]`: `[host] [xff] client ident user` → (host, peer, xff in front).
#[allow(clippy::type_complexity)]
fn split_head(head: &str) -> Result<(Option<&str>, &str, Option<&str>), LineError> {
    // ident and user are the last two words; the client part is what is left of them.
    let hb = head.as_bytes();
    let client_part = match memchr::memrchr(b' ', hb) {
        Some(user_sp) => match memchr::memrchr(b' ', &hb[..user_sp]) {
            Some(ident_sp) => &head[..ident_sp],
            None => &head[..user_sp],
        },
        None => head,
    };
    // The usual line: one address, nothing else.
    if !client_part.bytes().any(|c| matches!(c, b' ' | b',' | b'"')) {
        return Ok((None, client_part, None));
    }
    let mut cols = [Column::default(); 3];
    let mut n = 0;
    for col in Columns(client_part) {
        let col = col?;
        if col.text.trim() == "-" {
            continue; // an empty field (no X-Forwarded-For, an extra ident)
        }
        if n == cols.len() {
            return Err(LineError::Combined(
                "more fields before [time] than a host, an X-Forwarded-For list and the client",
            ));
        }
        cols[n] = col;
        n += 1;
    }
    let cols = &cols[..n];
    let Some(last) = cols.last() else {
        return Err(LineError::InvalidIp("-".into()));
    };
    let (peer, mut xff) = match last.text.rfind(',') {
        Some(comma) if last.list => (last.text[comma + 1..].trim(), Some(&last.text[..comma])),
        _ => (last.text.trim(), None),
    };
    let mut host = None;
    match cols.len() {
        1 => {}
        2 if cols[0].list || cols[0].quoted => {
            if xff.is_some() {
                return Err(LineError::Combined(
                    "two X-Forwarded-For lists before [time]",
                ));
            }
            xff = Some(cols[0].text);
        }
        2 => host = Some(cols[0].text),
        _ if !cols[0].list && !cols[0].quoted && (cols[1].list || cols[1].quoted) => {
            if xff.is_some() {
                return Err(LineError::Combined(
                    "two X-Forwarded-For lists before [time]",
                ));
            }
            host = Some(cols[0].text);
            xff = Some(cols[1].text);
        }
        _ => {
            return Err(LineError::Combined(
                "fields before [time] are not [host] [X-Forwarded-For] client",
            ))
        }
    }
    Ok((host, peer, xff))
}

/// A column of the client part: a quoted string, or words joined by `, ` (a list).
#[derive(Debug, Clone, Copy, Default)]
struct Column<'a> {
    text: &'a str,
    quoted: bool,
    list: bool,
}

struct Columns<'a>(&'a str);

impl<'a> Iterator for Columns<'a> {
    type Item = Result<Column<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.0.trim_start_matches(' ');
        if s.is_empty() {
            return None;
        }
        let b = s.as_bytes();
        if b[0] == b'"' {
            let Some(end) = memchr::memchr(b'"', &b[1..]).map(|i| i + 1) else {
                self.0 = "";
                return Some(Err(LineError::Combined("unterminated quote before [time]")));
            };
            self.0 = &s[end + 1..];
            let text = &s[1..end];
            return Some(Ok(Column {
                text,
                quoted: true,
                list: text.contains(','),
            }));
        }
        // Words joined by a trailing comma belong together: `10.0.0.2, 10.0.0.1, 85.181.35.98`.
        let mut end = 0;
        loop {
            let word_end = memchr::memchr(b' ', &b[end..]).map_or(b.len(), |i| i + end);
            end = word_end;
            let continues = word_end > 0 && b[word_end - 1] == b',' && word_end < b.len();
            if !continues {
                break;
            }
            end += 1;
        }
        self.0 = &s[end..];
        let text = &s[..end];
        Some(Ok(Column {
            text,
            quoted: false,
            list: text.contains(','),
        }))
    }
}

pub(super) fn parse(line: &str, opts: &ParseOptions) -> Result<Request, LineError> {
    parse_fields(line, opts).map(|(r, _)| r)
}

/// [`parse`], also returning the fields it read (for `bouncer formats`).
pub(super) fn parse_fields<'a>(
    line: &'a str,
    opts: &ParseOptions,
) -> Result<(Request, CombinedFields<'a>), LineError> {
    let f = match combined_fields(line) {
        Ok(f) => f,
        Err(e) => {
            // A line that does not even start with an address says so first.
            if let Some((peer, _)) = line.split_once(' ') {
                parse_ip(peer)?;
            }
            return Err(e);
        }
    };
    let peer = parse_ip(f.peer)?;
    let time = super::time::time_local(f.time_local, opts.input_offset_secs)
        .map_err(|e| super::time_error(f.time_local, e))?;
    let bytes = f.bytes.parse().unwrap_or(0); // `-` means no body
    let xff = f.xff_front.or(f.xff.filter(|x| !x.is_empty()));
    let ip = client_ip(peer, xff, &opts.trusted_proxies)?;
    let (method, path) = split_request(f.request);
    let req = Request::new(
        ip,
        time,
        method,
        path,
        f.status,
        bytes,
        f.user_agent.unwrap_or(""),
    );
    Ok((req, f))
}

/// Index of the closing quote of the request: the first `"` followed by ` NNN` and then a space or
/// the end of the line.
fn find_request_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'"', &b[from..]).map(|i| i + from) {
        let tail = &b[i + 1..];
        if tail.len() >= 4
            && tail[0] == b' '
            && tail[1..4].iter().all(u8::is_ascii_digit)
            && (tail.len() == 4 || tail[4] == b' ')
        {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// A leading ` "…"` field: returns its content (up to `" ` or the final quote) and the rest.
fn quoted(s: &str) -> (Option<&str>, &str) {
    let s = s.trim_start_matches(' ');
    let Some(body) = s.strip_prefix('"') else {
        return (None, s);
    };
    let b = body.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'"', &b[from..]).map(|i| i + from) {
        let escaped = i > 0 && b[i - 1] == b'\\' && (i < 2 || b[i - 2] != b'\\');
        if !escaped && (i + 1 == b.len() || b[i + 1] == b' ') {
            return (Some(&body[..i]), &body[i + 1..]);
        }
        from = i + 1;
    }
    (Some(body), "")
}

#[cfg(test)]
mod tests {
    use super::super::{parse_line, Format, ParseOptions};
    use super::*;

    fn p(line: &str) -> Result<Request, LineError> {
        parse_line(line.as_bytes(), Format::Combined, &ParseOptions::default())
    }

    fn trusting(cidrs: &[&str]) -> ParseOptions {
        ParseOptions {
            trusted_proxies: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn combined_line() {
        let r = p(r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)""#).unwrap();
        assert_eq!(r.ip.to_string(), "83.149.9.216");
        assert_eq!(r.time, 1_431_857_103);
        assert_eq!(r.path(), "/presentations/x.png");
        assert_eq!((r.status, r.bytes), (200, 203_023));
        let f = combined_fields(r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /x HTTP/1.1" 200 - "http://semicomplete.com/" "M""#).unwrap();
        assert_eq!(
            (f.request, f.bytes, f.referer, f.user_agent, f.xff),
            (
                "GET /x HTTP/1.1",
                "-",
                Some("http://semicomplete.com/"),
                Some("M"),
                None
            )
        );
        assert_eq!(f.variant(), "combined");
        assert_eq!(r.user_agent(), "Mozilla/5.0 (Macintosh)");
    }

    #[test]
    fn common_line_and_dash_bytes() {
        let line =
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 304 -"#;
        let r = p(line).unwrap();
        assert_eq!((r.status, r.bytes, r.user_agent()), (304, 0, ""));
        assert_eq!(r.time, 971_211_336);
        assert_eq!(combined_fields(line).unwrap().variant(), "common");
    }

    #[test]
    fn raw_quotes_inside_request_and_escaped_quotes_in_ua() {
        let r = p(r#"192.168.4.25 - - [22/Dec/2016:16:30:52 +0300] "GET /dvwa/?q="><script>alert(1)</script> HTTP/1.1" 404 10 "-" "UA \"quoted\" here""#).unwrap();
        assert_eq!(r.path(), r#"/dvwa/?q="><script>alert(1)</script>"#);
        assert_eq!(r.status, 404);
        assert_eq!(r.user_agent(), r#"UA \"quoted\" here"#);
    }

    #[test]
    fn ipv6_and_mapped_and_crlf() {
        let r = p(
            "2001:db8::7 - - [18/Jul/2023:13:44:16 +0000] \"GET / HTTP/2.0\" 499 0 \"-\" \"x\"\r",
        )
        .unwrap();
        assert_eq!(r.ip.to_string(), "2001:db8::7");
        let r = p(
            r#"::ffff:192.0.2.1 - - [18/Jul/2023:13:44:16 +0000] "GET / HTTP/2.0" 200 0 "-" "x""#,
        )
        .unwrap();
        assert_eq!(r.ip.to_string(), "192.0.2.1");
    }

    #[test]
    fn garbage_request_line_is_kept() {
        let r = p(r#"1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] "\x16\x03\x01" 400 150 "-" "-""#)
            .unwrap();
        assert_eq!((r.path(), r.status), (r"\x16\x03\x01", 400));
    }

    #[test]
    fn extra_xff_field_used_only_for_trusted_peers() {
        let line = r#"10.0.0.5 - - [18/Jul/2023:13:44:16 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" "203.0.113.4""#;
        assert_eq!(p(line).unwrap().ip.to_string(), "10.0.0.5");
        let r = parse_line(
            line.as_bytes(),
            Format::Combined,
            &trusting(&["10.0.0.0/8"]),
        )
        .unwrap();
        assert_eq!(r.ip.to_string(), "203.0.113.4");
        assert_eq!(r.user_agent(), "ua");
    }

    #[test]
    fn vhost_and_host_columns_are_never_the_client() {
        let tail = r#"[04/Jul/2019:09:20:46 +0200] "GET / HTTP/1.1" 200 32953 "-" "UA""#;
        for (head, host, variant) in [
            (
                "neutralbank.app:443 79.110.62.11 - -",
                "neutralbank.app:443",
                "vhost_combined",
            ),
            (
                "vhost1.domaine.fr 79.110.62.11 - -",
                "vhost1.domaine.fr",
                "vhost_combined without port",
            ),
            (
                "1.128.3.4:80 79.110.62.11 - -",
                "1.128.3.4:80",
                "vhost_combined",
            ),
            (
                "[2001:db8::1]:443 79.110.62.11 - -",
                "[2001:db8::1]:443",
                "vhost_combined",
            ),
            // An IP in the host column (nginx `$host` is whatever the client sent) is a host.
            (
                "1.128.3.4 79.110.62.11 - -",
                "1.128.3.4",
                "vhost_combined without port",
            ),
        ] {
            let line = format!("{head} {tail}");
            let f = combined_fields(&line).unwrap();
            assert_eq!(
                (f.host, f.peer, f.variant()),
                (Some(host), "79.110.62.11", variant)
            );
            // Not even through a trusted proxy.
            let r =
                parse_line(line.as_bytes(), Format::Combined, &trusting(&["0.0.0.0/0"])).unwrap();
            assert_eq!(r.ip.to_string(), "79.110.62.11", "{line}");
        }
        // A host column, then a name where the client should be: no address to ban.
        let line = format!("1.128.3.4 localhost - - {tail}");
        assert_eq!(p(&line), Err(LineError::InvalidIp("localhost".into())));
    }

    #[test]
    fn xff_list_in_front_follows_the_trusted_proxy_rule() {
        let tail = r#"[07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "UA""#;
        let cases = [
            // (head, peer, xff, client without trust, client trusting 10/8 + 127/8)
            (
                "10.0.0.2, 10.0.0.1, 85.181.35.98 - -",
                "85.181.35.98",
                Some("10.0.0.2, 10.0.0.1"),
                "85.181.35.98",
                "85.181.35.98",
            ),
            (
                "85.181.35.98, 10.0.0.1, 127.0.0.1 - -",
                "127.0.0.1",
                Some("85.181.35.98, 10.0.0.1"),
                "127.0.0.1",
                "85.181.35.98",
            ),
            (
                r#""10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - -"#,
                "10.2.1.185",
                Some("10.5.102.222, 199.96.1.1, 204.246.1.1"),
                "10.2.1.185",
                "204.246.1.1",
            ),
            (
                "2a03:0:10ff:f00f::8000, 10.225.192.17 10.2.2.121 - -",
                "10.2.2.121",
                Some("2a03:0:10ff:f00f::8000, 10.225.192.17"),
                "10.2.2.121",
                "2a03:0:10ff:f00f::8000",
            ),
            (
                r#"example.com:80 "10.5.102.222, 175.16.199.1" 10.2.1.185 - -"#,
                "10.2.1.185",
                Some("10.5.102.222, 175.16.199.1"),
                "10.2.1.185",
                "175.16.199.1",
            ),
            (
                "example.com 10.0.0.2, 10.0.0.1, 127.0.0.1 - -",
                "127.0.0.1",
                Some("10.0.0.2, 10.0.0.1"),
                "127.0.0.1",
                "10.0.0.2",
            ),
        ];
        let trust = trusting(&["10.0.0.0/8", "127.0.0.0/8"]);
        for (head, peer, xff, plain, trusted) in cases {
            let line = format!("{head} {tail}");
            let f = combined_fields(&line).unwrap();
            assert_eq!((f.peer, f.xff_front), (peer, xff), "{line}");
            assert_eq!(p(&line).unwrap().ip.to_string(), plain, "{line}");
            let r = parse_line(line.as_bytes(), Format::Combined, &trust).unwrap();
            assert_eq!(r.ip.to_string(), trusted, "{line}");
        }
    }

    #[test]
    fn time_without_zone_and_host_after_time() {
        let opts = ParseOptions {
            input_offset_secs: 3600,
            ..Default::default()
        };
        let line = r#"192.0.2.12 - user1 [27/Jun/2013:11:55:44] "GET /knocking/ HTTP/1.1" 200 266 "http://domain.net/hello-world/" "Mozilla/5.0""#;
        assert_eq!(p(line).unwrap().time, 1_372_334_144);
        let r = parse_line(line.as_bytes(), Format::Combined, &opts).unwrap();
        assert_eq!(r.time, 1_372_334_144 - 3600);
        assert!(!combined_fields(line).unwrap().time_has_zone());
        let line = r#"66.249.66.1 - - - [31/Jan/2015:14:29:44 ] fail2ban.org "GET / HTTP/1.1" 200 814 "-" "Mozilla/5.0 (compatible; Googlebot/2.1)" + 293 1149 546"#;
        let f = combined_fields(line).unwrap();
        assert_eq!(
            (f.peer, f.vhost_after_time, f.status),
            ("66.249.66.1", Some("fail2ban.org"), 200)
        );
        assert_eq!(
            p(line).unwrap().user_agent(),
            "Mozilla/5.0 (compatible; Googlebot/2.1)"
        );
    }

    #[test]
    fn user_with_a_space_still_reads() {
        let r = p(r#"192.0.2.1 - john smith [18/Jul/2023:13:44:16 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#).unwrap();
        assert_eq!(r.ip.to_string(), "192.0.2.1");
    }

    #[test]
    fn bad_lines_have_reasons() {
        assert!(matches!(
            p("- - - [18/Jul/2023:13:44:16 +0000] \"GET / HTTP/1.1\" 200 0"),
            Err(LineError::InvalidIp(_))
        ));
        assert!(matches!(
            p("unknown - - [x] \"GET /\" 200 0"),
            Err(LineError::InvalidIp(_))
        ));
        assert!(matches!(
            p("999.1.1.1 - - [x]"),
            Err(LineError::InvalidIp(_))
        ));
        assert!(matches!(
            p("1.2.3.4 - - [18/yesterday] \"GET /\" 200 0"),
            Err(LineError::InvalidTime(_))
        ));
        assert!(matches!(
            p("1.2.3.4 - - [31/Dec/9999:23:59:60 +0000] \"GET /\" 200 0"),
            Err(LineError::TimeOutOfRange(_))
        ));
        assert!(matches!(
            p("1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] \"GET /\" abc 0"),
            Err(LineError::Combined(_))
        ));
        // Syslog's header is not a host column (a file's parser unwraps it first).
        assert!(p("Sep 15 16:13:46 host nginx[2869]: 81.150.104.130 - - [15/Sep/2021:16:13:46 +0000] \"GET / HTTP/1.1\" 200 1").is_err());
        assert!(matches!(p("hello"), Err(LineError::Combined(_))));
        assert!(matches!(
            p("1.2.3.4 - - [18/Jul/2023:13:44:16 +0000"),
            Err(LineError::Combined(_))
        ));
        let bin = [0xffu8, 0xfe, 0x00, 0x41];
        assert!(matches!(
            parse_line(&bin, Format::Combined, &ParseOptions::default()),
            Err(LineError::InvalidUtf8)
        ));
    }
}
