//! `--nginx-conf FILE`: read an nginx configuration (following its `include`s) into the access
//! logs to read, each with its compiled `log_format`. The text is read by
//! [`crate::parse::nginx_conf`]; this file does the I/O: files, `include` globs, relative paths.

use crate::parse::nginx_conf::{self, Conf};
use crate::parse::LogFormat;
use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The logs a configuration writes.
pub struct NginxLogs {
    /// Each file with its format(s) (several when `access_log`s of different formats share a
    /// file), and where the configuration says so.
    pub files: Vec<(PathBuf, Vec<Arc<LogFormat>>, String)>,
    /// Every `log_format` defined, by name (for `--log-format NAME`).
    pub formats: Vec<Arc<LogFormat>>,
    /// `access_log`s that are not files bouncer can read, and why.
    pub skipped: Vec<String>,
}

pub fn load(conf: &Path) -> anyhow::Result<NginxLogs> {
    let text = std::fs::read_to_string(conf)
        .with_context(|| format!("{}: cannot read nginx configuration", conf.display()))?;
    let base = conf.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = conf.display().to_string();
    let mut include = |pattern: &str, _from: &str| include_files(&base, pattern);
    let parsed: Conf = nginx_conf::read(&name, &text, &mut include)?;

    let mut formats: Vec<Arc<LogFormat>> = Vec::new();
    for d in &parsed.formats {
        if formats.iter().any(|f| f.name == d.name) {
            return Err(anyhow!("{}: log_format {} is defined twice", d.at, d.name));
        }
        let f = LogFormat::compile(&d.name, &d.format, d.escape.as_deref())
            .map_err(|e| anyhow!("{}: log_format {}: {e}", d.at, d.name))?;
        formats.push(Arc::new(f));
    }
    let mut files: Vec<(PathBuf, Vec<Arc<LogFormat>>, String)> = Vec::new();
    for log in &parsed.logs {
        let format = match formats.iter().find(|f| f.name == log.format) {
            Some(f) => f.clone(),
            // nginx predefines `combined`.
            None if log.format == "combined" => {
                Arc::new(LogFormat::preset("combined").expect("preset"))
            }
            None => {
                return Err(anyhow!(
                "{}: access_log {} uses log_format {:?}, which the configuration does not define",
                log.at,
                log.path,
                log.format
            ))
            }
        };
        let path = Path::new(&log.path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        };
        match files.iter_mut().find(|(p, _, _)| *p == path) {
            Some((_, fs, at)) => {
                if !fs.iter().any(|f| Arc::ptr_eq(f, &format)) {
                    fs.push(format);
                    at.push_str(&format!(", {}", log.at));
                }
            }
            None => files.push((path, vec![format], log.at.clone())),
        }
    }
    Ok(NginxLogs {
        files,
        formats,
        skipped: parsed.skipped,
    })
}

/// The files an `include` names (relative to the configuration's directory), in name order; a
/// `*`/`?` pattern in the file name may match none.
fn include_files(base: &Path, pattern: &str) -> Result<Vec<(String, String)>, String> {
    let p = Path::new(pattern);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let read = |f: &Path| {
        std::fs::read_to_string(f)
            .map(|t| (f.display().to_string(), t))
            .map_err(|e| format!("include {pattern}: {}: {e}", f.display()))
    };
    if !name.contains(['*', '?']) {
        return Ok(vec![read(&p)?]);
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("include {pattern}: {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| glob_match(name.as_bytes(), n.as_bytes()))
        })
        .map(|e| e.path())
        .collect();
    matches.sort();
    matches.iter().map(|f| read(f)).collect()
}

/// `*` and `?` in one file name (`*.conf`); a leading `.` is only matched by a literal `.`, as
/// glob(3) does.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == b'?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.conf", b"default.conf"));
        assert!(!glob_match(b"*.conf", b"default.conf.bak"));
        assert!(!glob_match(b"*", b".hidden"));
        assert!(glob_match(b"site-?.conf", b"site-a.conf"));
        assert!(glob_match(b"*", b"example.com"));
    }

    #[test]
    fn a_configuration_with_includes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            "http {\n  log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n    '$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"';\n  access_log /var/log/nginx/access.log main;\n  include conf.d/*.conf;\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf.d/a.conf"),
            "server { access_log logs/a.log; access_log /var/log/nginx/access.log; }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("conf.d/ignored.txt"), "garbage {").unwrap();
        let logs = load(&dir.path().join("nginx.conf")).unwrap();
        let files: Vec<_> = logs
            .files
            .iter()
            .map(|(p, f, _)| {
                (
                    p.clone(),
                    f.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            files,
            vec![
                (
                    PathBuf::from("/var/log/nginx/access.log"),
                    vec!["main".to_string(), "combined".to_string()]
                ),
                (dir.path().join("logs/a.log"), vec!["combined".to_string()]),
            ]
        );
        std::fs::write(dir.path().join("bad.conf"), "access_log /a.log nope;\n").unwrap();
        let e = load(&dir.path().join("bad.conf"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad.conf:1") && e.contains("\"nope\""), "{e}");
        std::fs::write(
            dir.path().join("bad.conf"),
            "log_format x '$remote_addr $ [$time_local]';\n",
        )
        .unwrap();
        let e = load(&dir.path().join("bad.conf"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("bad.conf:1: log_format x") && e.contains('^'),
            "{e}"
        );
    }
}
