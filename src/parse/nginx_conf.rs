//! nginx configuration text → the `log_format` definitions and the `access_log` files that use
//! them, so `bouncer analyze --nginx-conf /etc/nginx/nginx.conf` needs no other argument.
//!
//! Tokens follow nginx's own reader (`ngx_conf_read_token`): words separated by blanks, `;`
//! ending a directive, `{ }` blocks, `#` comments, `'…'` and `"…"` strings with `\"` `\'` `\\`
//! `\t` `\r` `\n` escapes, `${var}`. Blocks of Lua code (`*_by_lua_block { … }`, OpenResty, as in
//! Nginx Proxy Manager) are skipped unread. Contexts do not matter here: every `access_log` of
//! the whole configuration is a log to read. No I/O: `include`s are read through a callback.

use std::fmt;

/// An error in the configuration text, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: String,
    pub line: usize,
    /// Byte offset in the file's text of what is wrong (an unterminated quote's opening quote).
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// One directive: its words (name first, strings unquoted) and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub words: Vec<String>,
    pub line: usize,
}

/// The directives of a configuration text, in order, blocks flattened.
pub fn directives(file: &str, text: &str) -> Result<Vec<Directive>, ConfError> {
    let b = text.as_bytes();
    let err_at = |line: usize, offset: usize, message: &str| ConfError {
        file: file.to_string(),
        line,
        offset,
        message: message.to_string(),
    };
    let err = |line: usize, message: &str| err_at(line, b.len(), message);
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start_line = 1;
    let mut line = 1;
    // Lines where the blocks still open were opened.
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b';' => {
                if words.is_empty() {
                    return Err(err(line, "unexpected \";\""));
                }
                out.push(Directive {
                    words: std::mem::take(&mut words),
                    line: start_line,
                });
                i += 1;
            }
            b'{' => {
                let lua = words.first().is_some_and(|w| w.ends_with("_by_lua_block"));
                if !words.is_empty() {
                    out.push(Directive {
                        words: std::mem::take(&mut words),
                        line: start_line,
                    });
                }
                i += 1;
                if lua {
                    let at = line;
                    i = skip_lua(b, i, &mut line)
                        .ok_or_else(|| err(at, "unterminated Lua block"))?;
                } else {
                    open.push(line);
                }
            }
            b'}' => {
                if !words.is_empty() {
                    return Err(err(
                        line,
                        "unexpected \"}\": a directive before it lacks its \";\"",
                    ));
                }
                open.pop().ok_or_else(|| err(line, "unexpected \"}\""))?;
                i += 1;
            }
            b'"' | b'\'' => {
                if words.is_empty() {
                    start_line = line;
                }
                let (open_line, open_at) = (line, i);
                let mut w = Vec::new();
                i += 1;
                loop {
                    let Some(&ch) = b.get(i) else {
                        return Err(err_at(open_line, open_at, "unterminated quoted string"));
                    };
                    if ch == c {
                        i += 1;
                        break;
                    }
                    if ch == b'\n' {
                        line += 1;
                    }
                    if ch == b'\\' && i + 1 < b.len() {
                        push_escaped(&mut w, b[i + 1]);
                        i += 2;
                        continue;
                    }
                    w.push(ch);
                    i += 1;
                }
                words.push(String::from_utf8_lossy(&w).into_owned());
            }
            _ => {
                if words.is_empty() {
                    start_line = line;
                }
                let mut w = Vec::new();
                while i < b.len() {
                    let ch = b[i];
                    match ch {
                        b' ' | b'\t' | b'\r' | b'\n' | b';' => break,
                        b'{' if !w.ends_with(b"$") => break,
                        b'}' if !w.contains(&b'{') => break,
                        b'\\' if i + 1 < b.len() => {
                            push_escaped(&mut w, b[i + 1]);
                            i += 2;
                            continue;
                        }
                        _ => {
                            w.push(ch);
                            i += 1;
                        }
                    }
                }
                words.push(String::from_utf8_lossy(&w).into_owned());
            }
        }
    }
    if !words.is_empty() {
        return Err(err(
            line,
            "unexpected end of file: the last directive lacks its \";\"",
        ));
    }
    if let Some(at) = open.pop() {
        return Err(err(
            at,
            "unexpected end of file: the block opened here lacks its \"}\"",
        ));
    }
    Ok(out)
}

/// nginx's escapes inside tokens; any other `\x` stays as it is.
fn push_escaped(w: &mut Vec<u8>, next: u8) {
    match next {
        b'"' | b'\'' | b'\\' => w.push(next),
        b't' => w.push(b'\t'),
        b'r' => w.push(b'\r'),
        b'n' => w.push(b'\n'),
        _ => w.extend_from_slice(&[b'\\', next]),
    }
}

/// The end of a Lua block body (just after its closing brace), ignoring braces in strings and
/// comments.
fn skip_lua(b: &[u8], mut i: usize, line: &mut usize) -> Option<usize> {
    let mut depth = 1usize;
    while i < b.len() {
        match b[i] {
            b'\n' => *line += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A `log_format` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormatDef {
    pub name: String,
    /// `escape=` as written, if it was.
    pub escape: Option<String>,
    /// The strings of the definition, concatenated (as nginx does).
    pub format: String,
    /// `file:line`.
    pub at: String,
}

/// An `access_log` that writes a file bouncer can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// As written (relative paths are the caller's to resolve).
    pub path: String,
    /// The format name (`combined` when the directive names none).
    pub format: String,
    pub at: String,
}

/// What a configuration says about access logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conf {
    pub formats: Vec<LogFormatDef>,
    pub logs: Vec<AccessLog>,
    /// `access_log`s that are not files to read (`off`, `syslog:`, variables in the path), said
    /// why.
    pub skipped: Vec<String>,
}

/// Reads the files an `include` names: gets the pattern as written and the including file's
/// name, returns the matching files' names and texts, in order.
pub type Include<'a> = dyn FnMut(&str, &str) -> Result<Vec<(String, String)>, String> + 'a;

/// Read one configuration file's text (and, through `include`, the files it includes: the
/// callback gets the pattern as written and the including file's name, and returns the matching
/// files' names and texts in order).
pub fn read(name: &str, text: &str, include: &mut Include<'_>) -> Result<Conf, ConfError> {
    let mut conf = Conf::default();
    read_into(name, text, include, &mut conf, 0)?;
    Ok(conf)
}

fn read_into(
    name: &str,
    text: &str,
    include: &mut Include<'_>,
    conf: &mut Conf,
    depth: usize,
) -> Result<(), ConfError> {
    for d in directives(name, text)? {
        let at = format!("{name}:{}", d.line);
        let err = |message: String| ConfError {
            file: name.to_string(),
            line: d.line,
            offset: 0,
            message,
        };
        match d.words[0].as_str() {
            "include" => {
                let [_, pattern] = d.words.as_slice() else {
                    return Err(err("include takes one file or pattern".into()));
                };
                if depth >= 16 {
                    return Err(err(format!("include {pattern}: nested too deep (a loop?)")));
                }
                for (file, text) in include(pattern, name).map_err(&err)? {
                    read_into(&file, &text, include, conf, depth + 1)?;
                }
            }
            "log_format" => {
                let Some(fmt_name) = d.words.get(1) else {
                    return Err(err("log_format needs a name and a format".into()));
                };
                let mut rest = &d.words[2..];
                let mut escape = None;
                if let Some(e) = rest.first().and_then(|w| w.strip_prefix("escape=")) {
                    escape = Some(e.to_string());
                    rest = &rest[1..];
                }
                if rest.is_empty() {
                    return Err(err(format!("log_format {fmt_name} has no format string")));
                }
                conf.formats.push(LogFormatDef {
                    name: fmt_name.clone(),
                    escape,
                    format: rest.concat(),
                    at,
                });
            }
            "access_log" => {
                let Some(path) = d.words.get(1) else {
                    return Err(err("access_log needs a path".into()));
                };
                let format = d
                    .words
                    .get(2)
                    .filter(|w| !w.contains('=') && *w != "gzip")
                    .cloned()
                    .unwrap_or_else(|| "combined".into());
                if path == "off" {
                    conf.skipped.push(format!("{at}: access_log off"));
                } else if path.starts_with("syslog:") {
                    conf.skipped.push(format!(
                        "{at}: access_log {path}: sent to syslog; give bouncer the file syslog writes"
                    ));
                } else if path.contains('$') {
                    conf.skipped.push(format!(
                        "{at}: access_log {path}: the path has variables; give bouncer the files"
                    ));
                } else if is_std_stream(path) {
                    conf.skipped.push(format!(
                        "{at}: access_log {path}: written to the process output (a container?); \
                         pipe it in: `docker logs -f NAME 2>&1 | bouncer follow -`"
                    ));
                } else if !conf
                    .logs
                    .iter()
                    .any(|l| l.path == *path && l.format == format)
                {
                    conf.logs.push(AccessLog {
                        path: path.clone(),
                        format,
                        at,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_std_stream(path: &str) -> bool {
    matches!(
        path,
        "/dev/stdout" | "/dev/stderr" | "/proc/self/fd/1" | "/proc/self/fd/2" | "stderr"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_include(p: &str, _: &str) -> Result<Vec<(String, String)>, String> {
        Err(format!("no include {p} in this test"))
    }

    #[test]
    fn tokens_like_nginx() {
        let text = "http {\n  log_format main '$remote_addr - \"$request\" '\n      \"\\\"$http_user_agent\\\"\"; # comment\n  access_log /var/log/a.log main buffer=32k;\n  map $http_x ${x}y { default 1; }\n}\n";
        let d = directives("n.conf", text).unwrap();
        assert_eq!(d[0].words, vec!["http"]);
        assert_eq!(
            d[1].words,
            vec![
                "log_format",
                "main",
                "$remote_addr - \"$request\" ",
                "\"$http_user_agent\""
            ]
        );
        assert_eq!(d[1].line, 2);
        assert_eq!(
            d[2].words,
            vec!["access_log", "/var/log/a.log", "main", "buffer=32k"]
        );
        assert_eq!(d[2].line, 4);
        assert_eq!(d[3].words, vec!["map", "$http_x", "${x}y"]);
    }

    #[test]
    fn lua_blocks_are_skipped() {
        let text =
            "location / { content_by_lua_block { ngx.say(\"}\") -- }\n } access_log /a.log; }";
        let d = directives("n", text).unwrap();
        assert_eq!(d.last().unwrap().words, vec!["access_log", "/a.log"]);
    }

    #[test]
    fn errors_point_at_the_line() {
        for (text, line, what) in [
            (
                "log_format x 'unterminated;\n",
                1,
                "unterminated quoted string",
            ),
            (
                "http {\n access_log /a.log;\n",
                1,
                "the block opened here lacks",
            ),
            ("}\n", 1, "unexpected \"}\""),
            ("access_log /a.log", 1, "lacks its \";\""),
        ] {
            let e = directives("n.conf", text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(what), "{e}");
        }
    }

    #[test]
    fn formats_and_logs_with_includes() {
        let main = "http {\n include conf.d/*.conf;\n access_log /var/log/nginx/access.log;\n access_log off;\n access_log syslog:server=unix:/dev/log;\n access_log /var/log/$host.log;\n access_log /dev/stdout main;\n}\n";
        let mut include = |pattern: &str, from: &str| -> Result<Vec<(String, String)>, String> {
            assert_eq!((pattern, from), ("conf.d/*.conf", "nginx.conf"));
            Ok(vec![(
                "conf.d/a.conf".into(),
                "log_format main escape=json '{\"ip\":\"$remote_addr\"' ',\"t\":\"$time_iso8601\"}';\nserver { access_log /var/log/nginx/a.log main gzip flush=5m; }\n".into(),
            )])
        };
        let c = read("nginx.conf", main, &mut include).unwrap();
        assert_eq!(
            c.formats,
            vec![LogFormatDef {
                name: "main".into(),
                escape: Some("json".into()),
                format: "{\"ip\":\"$remote_addr\",\"t\":\"$time_iso8601\"}".into(),
                at: "conf.d/a.conf:1".into(),
            }]
        );
        let logs: Vec<_> = c
            .logs
            .iter()
            .map(|l| (l.path.as_str(), l.format.as_str(), l.at.as_str()))
            .collect();
        assert_eq!(
            logs,
            vec![
                ("/var/log/nginx/a.log", "main", "conf.d/a.conf:2"),
                ("/var/log/nginx/access.log", "combined", "nginx.conf:3"),
            ]
        );
        assert_eq!(c.skipped.len(), 4, "{:?}", c.skipped);
        assert!(read("x", "include a;", &mut no_include).is_err());
    }

    #[test]
    fn include_loops_end() {
        let mut include = |_: &str, _: &str| {
            Ok(vec![(
                "self.conf".to_string(),
                "include self.conf;".to_string(),
            )])
        };
        let e = read("self.conf", "include self.conf;", &mut include).unwrap_err();
        assert!(e.message.contains("too deep"), "{e}");
    }
}
