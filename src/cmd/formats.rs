//! `bouncer formats`: what bouncer makes of each file's format, and why — the first thing to run
//! on a log from an unfamiliar server. Reads only the first 64 KiB of each file.

use super::settings::ingest_with_nginx_conf;
use super::{exit, Failure};
use crate::cli::FormatsArgs;
use crate::config::ConfigFile;
use crate::ingest::{self, Source};
use crate::parse::log_format::PRESETS;
use crate::parse::{clip, Explained, LineParser};
use anyhow::anyhow;
use std::fmt::Write as _;
use std::io::Write;

pub fn run(args: FormatsArgs, config: ConfigFile) -> Result<(), Failure> {
    if args.files.is_empty() && args.nginx_conf.is_none() {
        std::io::stdout().lock().write_all(presets().as_bytes())?;
        return Ok(());
    }
    let (ingest, files, conf_notes) = ingest_with_nginx_conf(
        &args.ingest,
        args.nginx_conf.as_deref(),
        &args.files,
        &config,
    )?;
    let mut out = String::new();
    for (path, n) in &conf_notes {
        match path {
            Some(p) => {
                let _ = writeln!(out, "{}: {n}", p.display());
            }
            None => {
                let _ = writeln!(out, "{n}");
            }
        }
    }
    if !conf_notes.is_empty() {
        out.push('\n');
    }
    let mut failed = 0;
    for file in &files {
        let src = Source::from_arg(file);
        match ingest::inspect(&src, &ingest) {
            Ok(i) => {
                if i.detection.read == 0 && i.detection.sampled > 0 {
                    failed += 1;
                }
                out.push_str(&render(&src.name(), i.gzip, &i.parser, &i.detection));
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "{e}\n");
            }
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    match failed {
        0 => Ok(()),
        n if n == files.len() => Err(Failure::input(anyhow!(
            "no file is in a format bouncer reads"
        ))),
        n => Err(Failure {
            code: exit::PARTIAL,
            error: anyhow!(
                "{n} of {} files are not in a format bouncer reads",
                files.len()
            ),
        }),
    }
}

/// The presets `--log-format` takes by name.
fn presets() -> String {
    let mut s = String::from(
        "Formats --log-format takes by name (or paste your own log_format / LogFormat):\n",
    );
    for (name, def, what) in PRESETS {
        let _ = writeln!(s, "\n  {name}: {what}\n    {def}");
    }
    s.push_str("\nWithout --log-format, each file's format is detected from its first lines: the combined\nfamily (combined, common, vhost_combined with or without port, a host or X-Forwarded-For\nlist in front, time without zone), JSON (nginx, Caddy, Traefik, Matomo), Nginx Proxy\nManager, each also inside syslog or Docker json-file records.\n");
    s
}

fn render(name: &str, gzip: bool, parser: &LineParser, d: &crate::parse::Detection) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{name}{}", if gzip { " (gzip)" } else { "" });
    if d.sampled == 0 {
        let _ = writeln!(s, "  empty: nothing to detect\n");
        return s;
    }
    let _ = writeln!(s, "  format: {}", d.format);
    let _ = match d.by_format.is_empty() {
        true => writeln!(
            s,
            "  why: none of the first {} non-empty lines could be read",
            d.sampled
        ),
        false => writeln!(
            s,
            "  why: {} of the first {} non-empty lines read as {}",
            d.read,
            d.sampled,
            d.by_format
                .iter()
                .map(|(f, n)| format!("{f} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    for n in &d.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    let order = parser.order();
    let used = order.len() - d.fallbacks.len();
    if used == 0 {
        let _ = writeln!(s, "  tried: {}: none reads these lines", order.join(", "));
    } else {
        let _ = writeln!(
            s,
            "  each line is read by the first of: {}{}",
            order[..used].join(", "),
            match d.fallbacks.len() {
                0 => String::new(),
                n => format!(", then {n} more: {}", d.fallbacks.join(", ")),
            }
        );
    }
    if let Some((line, e)) = &d.first {
        let _ = writeln!(s, "  first line read (line {line}), as {}:", e.format);
        explain(&mut s, e);
    }
    for (line, e) in &d.unread {
        let _ = writeln!(s, "  not read: line {line}: {}", clip(&e.to_string(), 200));
    }
    s.push('\n');
    s
}

fn explain(s: &mut String, e: &Explained) {
    for n in &e.notes {
        let _ = writeln!(s, "    - {n}");
    }
    let width = e
        .fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = writeln!(s, "    fields as written:");
    for (k, v) in &e.fields {
        let _ = writeln!(s, "      {k:<width$}  {}", clip(v, 160));
    }
    let _ = writeln!(s, "    as bouncer counts it:");
    for (k, v) in e.request_rows() {
        let _ = writeln!(s, "      {k:<width$}  {}", clip(&v, 160));
    }
}
