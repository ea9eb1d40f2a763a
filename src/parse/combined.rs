//! Combined and common log format (nginx's default `combined`, Apache's `combined`/`common`):
//!
//! `$remote_addr - $remote_user [$time_local] "$request" $status $bytes "$referer" "$user_agent"`
//!
//! Scanners put raw quotes inside the request line (`GET /?q="><script>`), so the request does not
//! end at the first quote: it ends at the first `" NNN ` (quote, space, three-digit status, space).
//! Extra fields after the user agent (e.g. a quoted `$http_x_forwarded_for`) are allowed.

use super::{
    client_ip, parse_ip, split_request, time::parse_time_local, LineError, ParseOptions, Request,
};

/// The fields of one combined/common line, as text borrowed from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedFields<'a> {
    pub peer: &'a str,
    pub time_local: &'a str,
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

/// Split a combined/common line into its fields without interpreting them.
pub fn combined_fields(line: &str) -> Result<CombinedFields<'_>, LineError> {
    let find = |s: &str, c: u8| memchr::memchr(c, s.as_bytes());
    let sp = find(line, b' ').ok_or(LineError::Combined("no fields"))?;
    let (peer, rest) = (&line[..sp], &line[sp + 1..]);
    let open = find(rest, b'[').ok_or(LineError::Combined("no [time]"))?;
    let close = find(&rest[open..], b']').ok_or(LineError::Combined("no [time]"))? + open;
    let time_local = &rest[open + 1..close];
    let rest = rest[close + 1..]
        .strip_prefix(" \"")
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
    let (bytes, rest) = match find(rest, b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (referer, rest) = quoted(rest);
    let (user_agent, rest) = quoted(rest);
    let (xff, _) = quoted(rest);
    Ok(CombinedFields {
        peer,
        time_local,
        request,
        status,
        bytes,
        referer,
        user_agent,
        xff,
    })
}

pub(super) fn parse(line: &str, opts: &ParseOptions) -> Result<Request, LineError> {
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
    let time = parse_time_local(f.time_local)
        .ok_or_else(|| LineError::InvalidTime(super::clip(f.time_local, 40)))?;
    let bytes = f.bytes.parse().unwrap_or(0); // `-` means no body
    let ip = client_ip(peer, f.xff.filter(|x| !x.is_empty()), &opts.trusted_proxies)?;
    let (method, path) = split_request(f.request);
    Ok(Request::new(
        ip,
        time,
        method,
        path,
        f.status,
        bytes,
        f.user_agent.unwrap_or(""),
    ))
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
        assert_eq!(r.user_agent(), "Mozilla/5.0 (Macintosh)");
    }

    #[test]
    fn common_line_and_dash_bytes() {
        let r = p(
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 304 -"#,
        )
        .unwrap();
        assert_eq!((r.status, r.bytes, r.user_agent()), (304, 0, ""));
        assert_eq!(r.time, 971_211_336);
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
        let opts = ParseOptions {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let r = parse_line(line.as_bytes(), Format::Combined, &opts).unwrap();
        assert_eq!(r.ip.to_string(), "203.0.113.4");
        assert_eq!(r.user_agent(), "ua");
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
            p("1.2.3.4 - - [yesterday] \"GET /\" 200 0"),
            Err(LineError::InvalidTime(_))
        ));
        assert!(matches!(
            p("1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] \"GET /\" abc 0"),
            Err(LineError::Combined(_))
        ));
        assert!(matches!(p("hello"), Err(LineError::Combined(_))));
        assert!(matches!(p(""), Err(LineError::Combined(_))));
        let bin = [0xffu8, 0xfe, 0x00, 0x41];
        assert!(matches!(
            parse_line(&bin, Format::Combined, &ParseOptions::default()),
            Err(LineError::InvalidUtf8)
        ));
    }
}
