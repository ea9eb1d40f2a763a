//! What an access-log line arrives wrapped in, and how to unwrap it:
//!
//! - a **syslog** header, as `access_log syslog:…` sends it and rsyslog/journald write it to a
//!   file: RFC 3164 (`<190>Sep 15 16:13:46 host nginx[2869]: LINE`, with or without the `<PRI>`),
//!   RFC 5424 (`<190>1 2021-09-15T16:13:46.1Z host nginx 2869 - - LINE`) and the RFC 3339 time
//!   rsyslog's high-precision file format and `journalctl -o short-iso` write
//!   (`2021-09-15T16:13:46+00:00 host nginx[2869]: LINE`);
//! - Docker's **`json-file`** log driver: `{"log":"LINE\n","stream":"stdout","time":"…"}`.
//!
//! The time that counts is the access-log line's own, not the wrapper's. Unwrapping never decides
//! that a line is bad: `None` means "not wrapped this way", and the caller tries other formats.

use std::borrow::Cow;

/// Which syslog header a line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syslog {
    Rfc3164,
    Rfc5424,
    /// An RFC 3339 time in place of RFC 3164's (rsyslog high precision, journalctl short-iso).
    Rfc3339,
}

impl Syslog {
    pub fn name(self) -> &'static str {
        match self {
            Syslog::Rfc3164 => "syslog (RFC 3164)",
            Syslog::Rfc5424 => "syslog (RFC 5424)",
            Syslog::Rfc3339 => "syslog (RFC 3339 time)",
        }
    }
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The message after a syslog header, and which header it was.
pub fn syslog(line: &str) -> Option<(&str, Syslog)> {
    let b = line.as_bytes();
    let mut i = 0;
    // <PRI>: one to three digits.
    if b.first() == Some(&b'<') {
        let close = b.iter().take(5).position(|c| *c == b'>')?;
        if close < 2 || !b[1..close].iter().all(u8::is_ascii_digit) {
            return None;
        }
        i = close + 1;
    }
    // RFC 5424: VERSION SP TIMESTAMP SP HOST SP APP SP PROCID SP MSGID SP SD [SP MSG]
    if b.get(i) == Some(&b'1') && b.get(i + 1) == Some(&b' ') {
        let mut rest = &line[i + 2..];
        let (ts, r) = word(rest)?;
        if !is_rfc3339(ts) && ts != "-" {
            return None;
        }
        rest = r;
        for _ in 0..4 {
            rest = word(rest)?.1; // host, app, procid, msgid
        }
        let msg = structured_data_end(rest)?;
        let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
        return Some((msg, Syslog::Rfc5424));
    }
    let rest = &line[i..];
    let (flavour, after_time) =
        if rest.len() > 16 && is_3164_time(&rest.as_bytes()[..15]) && rest.as_bytes()[15] == b' ' {
            (Syslog::Rfc3164, &rest[16..])
        } else {
            let (ts, r) = word(rest)?;
            if !is_rfc3339(ts) {
                return None;
            }
            (Syslog::Rfc3339, r)
        };
    let (_host, r) = word(after_time)?;
    let (tag, msg) = word(r)?;
    // TAG: `nginx:` or `nginx[2869]:`
    if !tag.ends_with(':') || tag.len() < 2 {
        return None;
    }
    Some((msg, flavour))
}

/// `Sep 15 16:13:46` or `Sep  5 16:13:46`.
fn is_3164_time(b: &[u8]) -> bool {
    let digit = |i: usize| b[i].is_ascii_digit();
    MONTHS.contains(&&b[..3])
        && b[3] == b' '
        && (digit(4) || b[4] == b' ')
        && digit(5)
        && b[6] == b' '
        && digit(7)
        && digit(8)
        && b[9] == b':'
        && digit(10)
        && digit(11)
        && b[12] == b':'
        && digit(13)
        && digit(14)
}

/// `2021-09-15T16:13:46Z`, `…46.123456+00:00`, `…46+0000`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

/// The first space-separated word and what follows the space after it.
fn word(s: &str) -> Option<(&str, &str)> {
    let sp = memchr::memchr(b' ', s.as_bytes())?;
    (sp > 0).then(|| (&s[..sp], &s[sp + 1..]))
}

/// RFC 5424 STRUCTURED-DATA (`-` or `[id k="v"]…`, with `\]` `\"` escapes in values), then the
/// message after one space (or nothing).
fn structured_data_end(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let end = if b.first() == Some(&b'-') {
        1
    } else {
        let mut i = 0;
        while b.get(i) == Some(&b'[') {
            let mut in_value = false;
            i += 1;
            loop {
                match *b.get(i)? {
                    b'\\' if in_value => i += 2,
                    b'"' => {
                        in_value = !in_value;
                        i += 1;
                    }
                    b']' if !in_value => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
        if i == 0 {
            return None;
        }
        i
    };
    match b.get(end) {
        None => Some(""),
        Some(b' ') => Some(&s[end + 1..]),
        Some(_) => None,
    }
}

/// The line inside a Docker `json-file` record (`{"log":"LINE\n","stream":…}`), unescaped and
/// without its newline. `Some(Err)`: it is such a record, but its `log` string is broken.
pub fn docker(line: &[u8]) -> Option<Result<Cow<'_, str>, &'static str>> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = line[start..].strip_prefix(b"{\"log\":")?;
    let body = body.strip_prefix(b" ").unwrap_or(body);
    let Some(body) = body.strip_prefix(b"\"") else {
        return Some(Err("Docker json-file record whose \"log\" is not a string"));
    };
    Some(json_string(body).map(|s| match s {
        Cow::Borrowed(t) => Cow::Borrowed(t.trim_end_matches(['\n', '\r'])),
        Cow::Owned(mut t) => {
            while t.ends_with(['\n', '\r']) {
                t.pop();
            }
            Cow::Owned(t)
        }
    }))
}

/// A JSON string body (after its opening quote) up to its closing quote, unescaped.
fn json_string(b: &[u8]) -> Result<Cow<'_, str>, &'static str> {
    const BROKEN: &str = "Docker json-file record with a broken \"log\" string";
    let end = memchr::memchr2(b'"', b'\\', b).ok_or(BROKEN)?;
    if b[end] == b'"' {
        return std::str::from_utf8(&b[..end])
            .map(Cow::Borrowed)
            .map_err(|_| "Docker json-file record that is not UTF-8");
    }
    // Escapes: find the closing quote, then let serde_json unescape (\uXXXX, surrogates, …).
    let mut i = end;
    loop {
        match *b.get(i).ok_or(BROKEN)? {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let quoted = &b[..i];
    let mut with_quotes = Vec::with_capacity(quoted.len() + 2);
    with_quotes.push(b'"');
    with_quotes.extend_from_slice(quoted);
    with_quotes.push(b'"');
    serde_json::from_slice::<String>(&with_quotes)
        .map(Cow::Owned)
        .map_err(|_| BROKEN)
}

/// An error-log line that ended up among access-log lines (Nginx Proxy Manager writes both to one
/// file): `2022/01/24 16:33:06 [error] 334#334: …` (nginx), `[Wed Oct 11 14:32:52.123 2000]
/// [core:error] …` (Apache). Only asked about lines no format could read.
pub fn error_log_kind(line: &[u8]) -> Option<&'static str> {
    let digits = |r: std::ops::Range<usize>| {
        line.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if line.len() > 21
        && digits(0..4)
        && line[4] == b'/'
        && line[7] == b'/'
        && line[10] == b' '
        && line[13] == b':'
        && line[19] == b' '
        && line[20] == b'['
    {
        return Some("an nginx error-log line");
    }
    if line.first() == Some(&b'[')
        && line.len() > 8
        && [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"]
            .contains(&&[line[1], line[2], line[3]])
        && memchr::memmem::find(line, b"] [").is_some()
    {
        return Some("an Apache error-log line");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_headers() {
        let msg = r#"81.150.104.130 - - [15/Sep/2021:16:13:46 +0000] "POST /wp-login.php HTTP/1.1" 200 5364"#;
        for (head, flavour) in [
            (
                "Sep 15 16:13:46 ip-172-31-43-28.us-east-2.compute.internal nginx[2869]: ",
                Syslog::Rfc3164,
            ),
            ("<190>Sep  5 16:13:46 web nginx: ", Syslog::Rfc3164),
            (
                "2021-09-15T16:13:46.123456+00:00 web nginx[2869]: ",
                Syslog::Rfc3339,
            ),
            (
                "<190>1 2021-09-15T16:13:46.003Z web nginx 2869 - - ",
                Syslog::Rfc5424,
            ),
            (
                r#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3" eventID="1011" x="a\]b"][other@1 y="z"] "#,
                Syslog::Rfc5424,
            ),
            ("<165>1 - - - - - - ", Syslog::Rfc5424),
        ] {
            let line = format!("{head}{msg}");
            assert_eq!(syslog(&line), Some((msg, flavour)), "{line}");
        }
        for not in [
            msg,
            "Sep 15 16:13:46 host nginx 1.2.3.4", // no tag colon
            "<190 1.2.3.4",
            "Foo 15 16:13:46 host nginx: x",
            "<1a>Sep 15 16:13:46 host nginx: x",
            "",
            "<1>1 x",
        ] {
            assert_eq!(syslog(not), None, "{not}");
        }
    }

    #[test]
    fn docker_json_file_records() {
        let rec = br#"{"log":"1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"caf\u00e9\"\n","stream":"stdout","time":"2023-07-18T13:44:16.123Z"}"#;
        assert_eq!(
            docker(rec).unwrap().unwrap(),
            r#"1.2.3.4 - - [18/Jul/2023:13:44:16 +0000] "GET / HTTP/1.1" 200 5 "-" "café""#
        );
        let plain = br#"{"log":"no escapes","stream":"stderr"}"#;
        assert_eq!(docker(plain).unwrap().unwrap(), "no escapes");
        assert!(docker(br#"{"remote_addr":"1.2.3.4"}"#).is_none());
        assert!(docker(b"1.2.3.4 - -").is_none());
        assert!(docker(br#"{"log":"unterminated \"x"#).unwrap().is_err());
        assert!(docker(br#"{"log":12}"#).unwrap().is_err());
        assert!(docker(br#"{"log":"bad \u12"}"#).unwrap().is_err());
    }

    #[test]
    fn error_log_lines() {
        assert_eq!(
            error_log_kind(
                b"2022/01/24 16:33:06 [error] 334#334: *338 user \"toto\": password mismatch"
            ),
            Some("an nginx error-log line")
        );
        assert_eq!(
            error_log_kind(b"[Wed Oct 11 14:32:52.123 2000] [core:error] [pid 35708] AH00124"),
            Some("an Apache error-log line")
        );
        assert_eq!(error_log_kind(b"1.2.3.4 - - [x]"), None);
        assert_eq!(error_log_kind(b"[24/Jan/2022:16:51:02 +0000] - 404"), None);
    }
}
