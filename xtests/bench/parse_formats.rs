//! Parser speed: a compiled `--log-format` against the built-in readers, on the same lines, one
//! thread, runs alternated, medians. A program, not an assertion (no test runs it):
//!
//!   cargo bench --bench parse_formats [-- --rounds 7 --lines 1000000]
//!
//! Lines: `$BENCH_DIR/bench-1m.log` (made by `xtests/bench/run.sh` from ../shared/data/real) when
//! it exists, else the real logs of ../shared/data/real repeated. The vhost rows are the same
//! lines with `example.com:443 ` in front (Debian's vhost_combined).

use bouncer::parse::{parse_line, Format, LineParser, LogFormat, ParseOptions, Spec};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// nginx's `combined`, as the nginx docs define it (pasted, quotes and all).
const NGINX_COMBINED: &str = "log_format combined '$remote_addr - $remote_user [$time_local] ' '\"$request\" $status $body_bytes_sent ' '\"$http_referer\" \"$http_user_agent\"';";
/// Debian's vhost_combined.
const DEBIAN_VHOST: &str = r#"LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined"#;

struct Lines {
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Lines {
    fn from_text(text: &[u8], limit: usize, prefix: &[u8]) -> Lines {
        let mut buf = Vec::with_capacity(text.len() + limit * prefix.len());
        let mut spans = Vec::with_capacity(limit);
        for line in text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .cycle()
        {
            if spans.len() == limit {
                break;
            }
            let a = buf.len();
            buf.extend_from_slice(prefix);
            buf.extend_from_slice(line);
            spans.push((a, buf.len()));
        }
        Lines { buf, spans }
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|(a, b)| &self.buf[*a..*b])
    }
}

fn source() -> (Vec<u8>, String) {
    let bench = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/bouncer-bench")
        });
    let generated = bench.join("bench-1m.log");
    if let Ok(t) = std::fs::read(&generated) {
        return (t, generated.display().to_string());
    }
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real");
    let mut text = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&real)
        .unwrap_or_else(|e| panic!("{}: {e}", real.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    for p in names {
        text.extend(std::fs::read(p).unwrap());
        text.push(b'\n');
    }
    (text, format!("{}/*.log, repeated", real.display()))
}

type Parse<'a> = Box<dyn Fn(&[u8]) -> Option<u16> + 'a>;

/// Parse every line once; (seconds, lines read).
fn time(lines: &Lines, parse: &Parse) -> (f64, usize) {
    let t0 = Instant::now();
    let mut ok = 0usize;
    let mut sum = 0u64;
    for l in lines.iter() {
        if let Some(s) = parse(black_box(l)) {
            ok += 1;
            sum += s as u64;
        }
    }
    black_box(sum);
    (t0.elapsed().as_secs_f64(), ok)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (rounds, limit) = (flag("--rounds", 7), flag("--lines", 1_000_000));
    // `--only N`: time row N alone (for a profiler).
    let only = flag("--only", usize::MAX);
    let (text, from) = source();
    let opts = ParseOptions::default();
    let combined = Lines::from_text(&text, limit, b"");
    let vhost = Lines::from_text(&text, limit, b"example.com:443 ");
    let detect = |lines: &Lines, spec: Spec| {
        let sample: Vec<u8> = lines
            .iter()
            .take(256)
            .flat_map(|l| [l, b"\n"].concat())
            .collect();
        LineParser::detect(spec, &sample, false, 1, &opts).0
    };
    let fmt = |def: &str| Spec::LogFormats(vec![Arc::new(LogFormat::from_arg(def).unwrap())]);
    let auto_c = detect(&combined, Spec::Auto);
    let pinned_c = detect(&combined, fmt(NGINX_COMBINED));
    let auto_v = detect(&vhost, Spec::Auto);
    let pinned_v = detect(&vhost, fmt(DEBIAN_VHOST));
    // (rows on, name, parser); the first row of each input is what the others are compared with.
    let rows: Vec<(&Lines, &str, Parse)> = vec![
        (
            &combined,
            "combined: built-in reader, as analyze detects it",
            Box::new(|l| auto_c.parse_line(l).ok().map(|r| r.status)),
        ),
        (
            &combined,
            "combined: --log-format (nginx docs' definition)",
            Box::new(|l| pinned_c.parse_line(l).ok().map(|r| r.status)),
        ),
        (
            &combined,
            "combined: parse_line(Format::Combined), no file parser",
            Box::new(|l| {
                parse_line(l, Format::Combined, &opts)
                    .ok()
                    .map(|r| r.status)
            }),
        ),
        (
            &vhost,
            "vhost_combined: built-in reader, as analyze detects it",
            Box::new(|l| auto_v.parse_line(l).ok().map(|r| r.status)),
        ),
        (
            &vhost,
            "vhost_combined: --log-format (Debian's definition)",
            Box::new(|l| pinned_v.parse_line(l).ok().map(|r| r.status)),
        ),
    ];
    eprintln!(
        "{} lines from {from}; {rounds} rounds, each parser in turn (after one warm-up round)",
        combined.spans.len()
    );
    let mut secs: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut read = vec![0; rows.len()];
    for round in 0..=rounds {
        for (i, (lines, _, parse)) in rows.iter().enumerate() {
            if only != usize::MAX && i != only {
                secs[i].push(f64::NAN);
                continue;
            }
            let (s, ok) = time(lines, parse);
            read[i] = ok;
            if round > 0 {
                secs[i].push(s);
            }
        }
        eprint!(".");
    }
    eprintln!();
    println!("| parser | lines read | median | ns/line | lines/s | vs the built-in reader |");
    println!("|---|---:|---:|---:|---:|---|");
    let mut base = 0.0;
    for (i, (lines, name, _)) in rows.iter().enumerate() {
        let m = median(secs[i].clone());
        if i == 0 || i == 3 {
            base = m;
        }
        let n = lines.spans.len() as f64;
        println!(
            "| {name} | {} | {:.3} s | {:.0} | {:.2} M/s | {} |",
            read[i],
            m,
            m * 1e9 / n,
            n / m / 1e6,
            if i == 0 || i == 3 {
                "1.00×".to_string()
            } else {
                format!("**{:.2}×** its time", m / base)
            }
        );
    }
}
