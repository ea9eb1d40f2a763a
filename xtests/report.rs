//! The HTML report (`report.html`) from the real binary on real-log fixtures: its sections and
//! counts, its plots, the no-ban case, the flags, and, in real headless Chromium, that hostile
//! log lines execute nothing and that the sample report renders to a non-blank page.
//!
//! Chromium tests need `chromium` (`apt-get install chromium`); without it they print
//! `skipped: …`, and fail under `CI=true`.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `analyze LOG… --out OUT -q EXTRA…`, returning report.html's text.
fn report_of(logs: &[&Path], out: &Path, extra: &[&str]) -> String {
    analyze_ok(logs, out, extra);
    std::fs::read_to_string(out.join("report.html")).expect("report.html written")
}

/// The inline SVGs of a report, in order.
fn svgs(html: &str) -> Vec<&str> {
    html.match_indices("<svg")
        .map(|(i, _)| {
            let end = html[i..].find("</svg>").expect("closed svg") + i + 6;
            &html[i..end]
        })
        .collect()
}

/// Data points drawn in an SVG: the most coordinate pairs in one polyline/polygon.
fn max_points(svg: &str) -> usize {
    svg.split("points=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].split_whitespace().count())
        .max()
        .unwrap_or(0)
}

/// Text as a reader sees it (minijinja escapes `<>&"'/`).
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("section {id}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

#[test]
fn mixture_report_has_every_section_with_the_right_counts() {
    let out = tempfile::tempdir().unwrap();
    let html = report_of(&[&fixture("mixture.log")], out.path(), &[]);
    let ids = [
        "header",
        "summary",
        "timeline",
        "banned",
        "anomalies",
        "apply",
        "appendix",
    ];
    let pos: Vec<usize> = ids
        .iter()
        .map(|id| {
            html.find(&format!(" id=\"{id}\""))
                .unwrap_or_else(|| panic!("{id}"))
        })
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "section order {pos:?}");

    // Header: the input, its counts, the span in UTC, default settings.
    let header = &html[pos[0]..pos[1]];
    assert!(header.contains("mixture.log</td>"));
    assert!(header.contains("4\u{202f}273"), "line count");
    assert!(header.contains("2015-05-17 10:00:47 → 2015-05-18 09:56:35"));
    assert!(header.contains("UTC"));
    assert!(header.contains("All detection settings at their defaults"));

    // Summary: 4 bans, no alert (the flood is banned within its first second: no surge of
    // unbanned clients is left), the worst offenders.
    let summary = section(&html, "summary");
    assert!(html.contains("<h1>4 IPs banned.</h1>"));
    assert_eq!(summary.matches("<tr>").count(), 1 + 4, "offenders table");
    assert!(summary.contains("peak: 108 requests in 60 s"));

    // One card per banned IP, each with its plot, highest score first.
    let labels = labels();
    let banned = section(&html, "banned");
    assert_eq!(banned.matches("class=\"ipcard\"").count(), 4);
    for ip in strings(&labels["attackers"]) {
        assert!(
            banned.contains(&format!("<span class=\"ip\">{ip}</span>")),
            "{ip}"
        );
    }
    // Highest score (multiple of the learned level) first.
    let scores: Vec<f64> = banned
        .split("class=\"score\"")
        .skip(1)
        .filter_map(|s| s.split('>').nth(1)?.split('×').next()?.trim().parse().ok())
        .collect();
    assert_eq!(scores.len(), 4, "{scores:?}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(banned.contains("error surge"));
    // The checks the detector ran, with their arithmetic.
    assert!(
        banned.contains("load 22.0 in 10 s &gt; 21.1 = 6 × 5.0 (the 99th percentile of"),
        "multiplier arithmetic"
    );
    assert!(banned.contains("no own history"), "z-score check");
    assert!(banned.contains("decided by"));
    assert!(
        unescape(banned).contains("/DVWA/login.php"),
        "scanner paths"
    );

    let anomalies = section(&html, "anomalies");
    assert!(anomalies.contains("No site-wide anomaly"));

    let apply = unescape(section(&html, "apply"));
    for cmd in [
        "iptables-restore --noflush < bans.rules",
        "ipset restore < bans.ipset",
        "nft -f bans.nft",
        "cscli decisions import -i decisions.csv",
        "iptables -C INPUT -j BOUNCER 2>/dev/null || iptables -I INPUT -j BOUNCER",
    ] {
        assert!(apply.contains(cmd), "{cmd}");
    }

    // Plots: traffic, error share, one per banned IP; each with data.
    let plots = svgs(&html);
    assert_eq!(plots.len(), 2 + 4);
    assert!(max_points(plots[0]) > 500, "timeline covers the day");
    assert!(max_points(plots[1]) > 200, "error share in 10-min steps");
    for p in &plots[2..] {
        assert!(
            max_points(p) >= 30,
            "per-IP plot has its lead-up: {}",
            max_points(p)
        );
    }
    for p in &plots {
        assert!(
            p.contains("requests") || p.contains("% of requests"),
            "y axis label"
        );
        assert!(p.contains("time (UTC)"), "x axis label");
    }
    // Self-contained: nothing is fetched.
    for needle in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
    ] {
        assert!(!html.contains(needle), "{needle}");
    }
}

#[test]
fn quiet_log_report_says_no_bans_plainly() {
    let out = tempfile::tempdir().unwrap();
    let html = report_of(&[&fixture("quiet.log")], out.path(), &[]);
    assert!(html.contains("No IP was banned and no site-wide anomaly was found."));
    assert!(section(&html, "banned").contains("No IP was banned"));
    assert!(section(&html, "apply").contains("Nothing to apply"));
    assert!(!html.contains("class=\"ipcard\""));
    // The traffic plots only: no empty per-IP plots.
    assert_eq!(svgs(&html).len(), 2);
}

#[test]
fn report_flags_path_zone_and_templates() {
    let out = tempfile::tempdir().unwrap();
    let custom = out.path().join("elsewhere/incident.html");
    std::fs::create_dir_all(custom.parent().unwrap()).unwrap();
    let tpl = out.path().join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(tpl.join("report.css"), "body { color: rebeccapurple }").unwrap();
    let r = run(bouncer()
        .arg("analyze")
        .arg(fixture("mixture.log"))
        .arg("--out")
        .arg(out.path().join("o"))
        .arg("--report")
        .arg(&custom)
        .args(["--tz", "+02:00", "--template"])
        .arg(&tpl));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .contains(&format!("wrote report: {}", custom.display())));
    assert!(!out.path().join("o/report.html").exists());
    let html = std::fs::read_to_string(&custom).unwrap();
    assert!(html.contains("rebeccapurple"), "overridden CSS");
    assert!(
        html.contains("id=\"summary\""),
        "embedded report.html still used"
    );
    assert!(html.contains("2015-05-17 12:00:47 → 2015-05-18 11:56:35"));
    assert!(html.contains("time (UTC+02:00)"));

    // The default location is listed with the other files.
    let r = run(bouncer()
        .arg("analyze")
        .arg(fixture("quiet.log"))
        .arg("--out")
        .arg(out.path().join("q")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("bans.nft report.html"), "{}", r.stdout);

    // Bad zone and an empty template directory are usage errors, before any work.
    let r = run(bouncer()
        .arg("analyze")
        .arg(fixture("quiet.log"))
        .args(["--tz", "Europe/Paris", "--out"])
        .arg(out.path().join("x")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--tz"));
    let empty = tempfile::tempdir().unwrap();
    let r = run(bouncer()
        .arg("analyze")
        .arg(fixture("quiet.log"))
        .arg("--template")
        .arg(empty.path())
        .arg("--out")
        .arg(out.path().join("x")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("report.html"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Real headless Chromium.

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// Chromium, or `None` after printing why (a failure under CI=true).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let c = chromium();
    if c.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: chromium is required under CI=true (apt-get install chromium)"
        );
        println!("skipped: {test}: chromium not installed (apt-get install chromium)");
    }
    c
}

/// Run headless Chromium on a local file with `args`; returns stdout. Killed after 90 s.
fn headless(chrome: &Path, file: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    // Output to files, not pipes: a DOM dump is larger than a pipe buffer.
    let stdout = profile.path().join("stdout");
    let stderr = profile.path().join("stderr");
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", file.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium failed: {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    std::fs::read_to_string(&stdout).unwrap()
}

fn dump_dom(chrome: &Path, file: &Path) -> String {
    headless(
        chrome,
        file,
        &[
            "--dump-dom",
            "--virtual-time-budget=2000",
            "--run-all-compositor-stages-before-draw",
        ],
    )
}

/// Payloads that set `document.title` to `PWNED…` if they ever run.
pub(crate) const PAYLOADS: [&str; 6] = [
    "<script>document.title='PWNED1'</script>",
    "\"><img src=x onerror=\"document.title='PWNED2'\">",
    "javascript:document.title='PWNED3'",
    "</svg><svg onload=document.title='PWNED4'>",
    "'><svg><script>document.title='PWNED5'</script></svg>",
    "</textarea></style></title><iframe srcdoc=\"<script>parent.document.title='PWNED6'</script>\">",
];

/// mixture.log with the flood's and the scanner's paths and user agents replaced by payloads,
/// plus unparseable lines carrying them (for the parse-error examples).
pub(crate) fn hostile_log(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let mut out = String::new();
    let mut n = 0usize;
    for line in text.lines() {
        let attacker = ["192.236.195.162 ", "192.236.194.162 ", "192.168.4.25 "]
            .iter()
            .any(|p| line.starts_with(p));
        if attacker {
            // Keep IP and time (before the first quote); replace request and user agent.
            let head = &line[..line.find('"').unwrap()];
            let p = PAYLOADS[n % PAYLOADS.len()];
            let ua = PAYLOADS[(n + 1) % PAYLOADS.len()];
            out.push_str(&format!(
                "{head}\"GET /{p} HTTP/1.1\" 404 0 \"{}\" \"{ua}\"\n",
                PAYLOADS[2]
            ));
            n += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    for p in PAYLOADS {
        out.push_str(&format!("{p} garbage line\n"));
    }
    // The file name is log-derived text in the report too ('/' can't be in a name).
    let path = dir.join("access\"><img src=x onerror=\"document.title='PWNED7'\">.log");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn hostile_log_strings_execute_nothing_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let log = hostile_log(dir.path());
    let out = dir.path().join("out");
    let html = report_of(&[&log], &out, &[]);
    // The payloads reached the report (as text), so the test tests something.
    assert!(
        html.contains("&lt;script&gt;document.title="),
        "payload shown escaped"
    );
    assert!(html.contains("onerror="), "payload shown as text");
    let appendix = section(&html, "appendix");
    assert!(
        appendix.contains("invalid client address"),
        "parse-error examples"
    );
    assert!(
        appendix.contains("&lt;script&gt;document.title="),
        "escaped example"
    );
    assert_eq!(
        svgs(&html).len(),
        2 + 4,
        "the attackers are still banned, with plots"
    );

    let Some(chrome) = chromium_or_skip("hostile_log_strings_execute_nothing_in_chromium") else {
        return;
    };
    // Control: the harness does see a script that runs.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        format!("<!DOCTYPE html><title>clean</title><p>{}</p>", PAYLOADS[1]),
    )
    .unwrap();
    let dom = dump_dom(&chrome, &control);
    assert!(
        dom.contains("<title>PWNED2</title>"),
        "control did not run: {dom}"
    );

    let dom = dump_dom(&chrome, &out.join("report.html"));
    assert!(
        dom.contains("id=\"apply\""),
        "report loaded: {}",
        &dom[..dom.len().min(500)]
    );
    assert!(
        !dom.contains("PWNED</title>") && !dom.contains("<title>PWNED"),
        "a payload ran"
    );
    let title = &dom[dom.find("<title>").unwrap()..dom.find("</title>").unwrap()];
    assert!(title.starts_with("<title>bouncer report"), "{title}");
    // No element or attribute came from a payload. In the serialized DOM, text never contains
    // a raw `<` (it is written `&lt;`), so every `<` opens a real tag: check them all.
    let tags: Vec<String> = dom
        .split('<')
        .skip(1)
        .map(|t| t[..t.find('>').unwrap_or(t.len())].to_ascii_lowercase())
        .collect();
    assert!(tags.len() > 500, "the whole report was dumped");
    for t in &tags {
        for bad in ["script", "img", "iframe", "object", "embed"] {
            assert!(!t.starts_with(bad), "<{t}> in the DOM");
        }
        for bad in ["onerror", "onload", "javascript:", "srcdoc"] {
            assert!(!t.contains(bad), "<{t}> in the DOM");
        }
    }
}

#[test]
fn sample_report_screenshot_is_not_blank() {
    let out = tempfile::tempdir().unwrap();
    report_of(&[&fixture("mixture.log")], out.path(), &[]);
    let Some(chrome) = chromium_or_skip("sample_report_screenshot_is_not_blank") else {
        return;
    };
    let png_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&png_path);
    headless(
        &chrome,
        &out.path().join("report.html"),
        &[
            &format!("--screenshot={}", png_path.display()),
            "--window-size=1400,3000",
            "--virtual-time-budget=2000",
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("screenshot written"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1400, 3000));
    let bpp = info.line_size / info.width as usize;
    let px = &buf[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    for p in px.chunks(bpp) {
        colours.insert(p[..3].to_vec());
        if p[..3].iter().any(|c| *c < 200) {
            non_white += 1;
        }
    }
    println!(
        "screenshot: {} ({} colours, {:.1}% ink)",
        png_path.display(),
        colours.len(),
        100.0 * non_white as f64 / (px.len() / bpp) as f64
    );
    assert!(colours.len() > 50, "screenshot is (nearly) one colour");
    assert!(
        non_white > px.len() / bpp / 100,
        "screenshot has almost no ink"
    );
}
