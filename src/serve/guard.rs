//! Who may read the live view: the token (bearer, or basic auth with the token as password,
//! compared in constant time) and, without a token, the `Host` guard against DNS rebinding.
//! The token is a secret: it is never printed, not even by `Debug`.

use std::net::IpAddr;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Shortest token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// Read the token from `path` (surrounding whitespace dropped). Errors name the file, never
    /// its content; a file others may read comes back with a note.
    pub fn read(path: &Path) -> Result<(Token, Option<String>), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--listen-token {}: cannot read: {e}", path.display()))?;
        let t = text.trim();
        if t.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "--listen-token {}: the token is shorter than {MIN_TOKEN_CHARS} characters \
                 (make one with `head -c 24 /dev/urandom | base64 > {}`)",
                path.display(),
                path.display()
            ));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "--listen-token {}: the token must be one word (no spaces or line breaks inside)",
                path.display()
            ));
        }
        let note = world_readable(path).then(|| {
            format!(
                "--listen-token {}: other users can read this file (chmod 600 it)",
                path.display()
            )
        });
        Ok((Token(t.to_string()), note))
    }

    #[cfg(test)]
    pub fn new(t: &str) -> Token {
        Token(t.to_string())
    }

    fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }
}

#[cfg(unix)]
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn world_readable(_: &Path) -> bool {
    false
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// No token, or the wrong one: 401 with a basic-auth challenge (browsers then ask).
    Unauthorized,
    /// No token configured, and the request names the host by a DNS name: 421.
    BadHost,
}

/// Check one request's headers (name, value).
pub fn check(token: Option<&Token>, headers: &[(&str, &str)]) -> Verdict {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    match token {
        Some(t) => {
            let ok = get("Authorization")
                .and_then(credential)
                .is_some_and(|c| t.matches(&c));
            if ok {
                Verdict::Allow
            } else {
                Verdict::Unauthorized
            }
        }
        None => match get("Host") {
            Some(h) if !host_is_address(h) => Verdict::BadHost,
            _ => Verdict::Allow,
        },
    }
}

/// The secret in an `Authorization` value: the bearer token, or the basic-auth password.
fn credential(v: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = v.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64_decode(rest)?;
        let colon = raw.iter().position(|b| *b == b':')?;
        Some(raw[colon + 1..].to_vec())
    } else {
        None
    }
}

/// `127.0.0.1:9180`, `[::1]:9180`, `localhost`, `198.18.2.1`: an address (or localhost),
/// with or without a port. A DNS name is not.
fn host_is_address(h: &str) -> bool {
    let host = if let Some(rest) = h.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, _)) => inside,
            None => return false,
        }
    } else {
        h.rsplit_once(':').map_or(h, |(a, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                a
            } else {
                h
            }
        })
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok()
}

/// Standard base64 with optional padding; `None` on anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let t = Token::new("s3cret-token-0123456789");
        let ok = |h: &str| check(Some(&t), &[("authorization", h)]);
        assert_eq!(ok("Bearer s3cret-token-0123456789"), Verdict::Allow);
        assert_eq!(ok("bearer  s3cret-token-0123456789 "), Verdict::Allow);
        // "anyone:s3cret-token-0123456789"
        assert_eq!(
            ok("Basic YW55b25lOnMzY3JldC10b2tlbi0wMTIzNDU2Nzg5"),
            Verdict::Allow
        );
        assert_eq!(ok("Bearer s3cret-token-012345678"), Verdict::Unauthorized);
        assert_eq!(ok("Bearer "), Verdict::Unauthorized);
        assert_eq!(ok("Basic !!!"), Verdict::Unauthorized);
        assert_eq!(ok("Digest x"), Verdict::Unauthorized);
        assert_eq!(check(Some(&t), &[]), Verdict::Unauthorized);
        assert_eq!(format!("{t:?}"), "Token(…)");
    }

    #[test]
    fn without_a_token_only_addresses_and_localhost_are_answered() {
        for h in [
            "127.0.0.1:9180",
            "[::1]:9180",
            "localhost:9180",
            "LOCALHOST",
            "198.18.2.1",
        ] {
            assert_eq!(check(None, &[("Host", h)]), Verdict::Allow, "{h}");
        }
        assert_eq!(check(None, &[]), Verdict::Allow);
        for h in [
            "evil.example:9180",
            "attacker.test",
            "[::1",
            "127.0.0.1.nip.io",
        ] {
            assert_eq!(check(None, &[("host", h)]), Verdict::BadHost, "{h}");
        }
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("Y"), None);
    }
}
