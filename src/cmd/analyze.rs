//! `bouncer analyze`: files → decisions and ban lists. Resolves flags and config into plain
//! settings, runs ingest → parse → detect, writes outputs atomically, prints the summary.
//!
//! Incremental runs (`--state`): the detector state and per-file checkpoints are saved *before*
//! the end-of-input flush; the outputs come from a copy that is flushed. The next run continues
//! the saved state, so three runs over a growing log decide exactly what one run over the whole
//! log decides.

use super::settings::{
    detect_settings, fleet_dir, ingest_with_nginx_conf, report_options, ruleset_options,
};
use super::Failure;
use crate::cli::AnalyzeArgs;
use crate::config::ConfigFile;
use crate::detect::{DetectSettings, Detector};
use crate::emit::parquet::MinuteFiles;
use crate::emit::rulesets::RulesetOptions;
use crate::emit::{self, Analysis};
use crate::ingest::checkpoint::{self, Checkpoint, Resume};
use crate::ingest::sort::sorted_pass;
use crate::ingest::{Merge, Pending, Source, Stream};
use crate::parse::format_time;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const STATE_FILE: &str = "state.json";
const REPORT_FILE: &str = "report.html";
const STATE_VERSION: u32 = 1;

/// What `--state DIR` keeps between runs.
#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    settings: DetectSettings,
    detector: Detector,
    checkpoints: Vec<Checkpoint>,
    lines: u64,
    parse_errors: u64,
}

pub fn run(args: AnalyzeArgs, config: ConfigFile) -> Result<(), Failure> {
    if args.from_parquet.is_some() {
        return super::fleet::run(args, config);
    }
    let settings = detect_settings(&args.detect, &config)?;
    let (ingest, logs, conf_notes) = ingest_with_nginx_conf(
        &args.ingest,
        args.nginx_conf.as_deref(),
        &args.logs,
        &config,
    )?;
    let ingest = Arc::new(ingest);
    let rules = ruleset_options(&args.output, &config)?;
    let report = report_options(&args)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| config.output.dir.clone());
    let sources = sources(&logs, args.state.is_some())?;
    // Incremental runs add files; a whole run replaces the files of the minutes it covers.
    let mut parquet =
        fleet_dir(&args.fleet, &config, args.state.is_none())?.map(|dir| MinuteFiles::new(dir, 0));

    let mut state = match &args.state {
        Some(dir) => load_state(dir, &settings)?,
        None => None,
    };
    let mut detector = state
        .as_mut()
        .map(|s| s.detector.clone())
        .unwrap_or_else(|| Detector::new(settings.clone()));
    let saved: Vec<Checkpoint> = state
        .as_ref()
        .map(|s| s.checkpoints.clone())
        .unwrap_or_default();
    let incremental = args.state.is_some();

    // Stdin can be read only once: keep a copy, in case it turns out not to be in time order.
    let spool = match sources.contains(&Source::Stdin) && !incremental {
        true => Some(
            tempfile::NamedTempFile::new()
                .context("cannot create a temporary file to keep a copy of stdin")
                .map_err(Failure::input)?,
        ),
        false => None,
    };

    // Open every input before reading any: one that cannot be opened is reported (with
    // --strict, the run stops here), the others are read.
    let progress = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    let mut skipped = Vec::new();
    let mut unopened: Vec<crate::ingest::FileReport> = Vec::new();
    let mut total_bytes = 0;
    for src in &sources {
        let resume = match src {
            Source::File(p) => match check_input(p).and_then(|()| match incremental {
                true => checkpoint::plan(p, &saved)
                    .with_context(|| format!("{}: cannot open", p.display())),
                false => Ok(Resume::Start(None)),
            }) {
                Ok(r) => r,
                Err(e) if args.strict => return Err(Failure::input(e)),
                Err(e) => {
                    unopened.push(unopened_report(src, &e));
                    continue;
                }
            },
            Source::Stdin | Source::Spool(_) => Resume::Start(None),
        };
        // A file renamed since the last run (access.log → access.log.1) is no longer written:
        // its held-back tail goes into this run's order instead of waiting for lines that will
        // never come while the live file's newer lines pass it.
        let (at, note, rotated) = match resume {
            Resume::Skip(c) => {
                skipped.push(c);
                continue;
            }
            Resume::Start(note) => (None, note, false),
            Resume::At(c, note) => {
                let rotated = c.path != src.name();
                (Some((c.offset, c.line, c.pending)), note, rotated)
            }
        };
        if let Source::File(p) = src {
            total_bytes += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        }
        let flush = !incremental || rotated;
        let copy = match (src, &spool) {
            (Source::Stdin, Some(f)) => Some(f.reopen().map_err(Failure::input)?),
            _ => None,
        };
        let mut stream = match Stream::open(src, ingest.clone(), at, flush, progress.clone(), copy)
        {
            Ok(s) => s,
            Err(e) if args.strict => return Err(Failure::input(e)),
            Err(e) => {
                unopened.push(unopened_report(src, &anyhow!(e)));
                continue;
            }
        };
        stream.report.notes.extend(note);
        streams.push((src.clone(), stream));
    }
    let stream_sources: Vec<Source> = streams.iter().map(|(src, _)| src.clone()).collect();

    let bar = progress_bar(total_bytes, args.quiet);
    let mut merge = Merge {
        streams: streams.into_iter().map(|(_, s)| s).collect(),
    };
    let mut n = 0u64;
    while let Some(req) = merge.next_request() {
        detector.observe(req);
        if let Some(p) = &mut parquet {
            p.observe(req);
        }
        n += 1;
        if n.is_multiple_of(1 << 16) {
            if let Some(b) = &bar {
                b.set_position(progress.load(Ordering::Relaxed));
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    // Lines more than --reorder-secs out of order: the streaming pass could not put them back.
    // Offline, the decisions must not depend on the order of the input: read it all again and
    // sort it by time (incremental runs cannot go back: there the late lines stay counted).
    let out_of_order: u64 = merge.streams.iter().map(|s| s.report.out_of_order).sum();
    if out_of_order > 0 && !incremental {
        let budget = args.sort_memory.unwrap_or(512 << 20);
        // The inputs that were opened (one that could not be is reported, not read again).
        let inputs: Vec<Source> = stream_sources
            .iter()
            .map(|s| match (s, &spool) {
                (Source::Stdin, Some(f)) => Source::Spool(f.path().to_path_buf()),
                _ => s.clone(),
            })
            .collect();
        detector = Detector::new(settings.clone());
        if let Some(p) = &mut parquet {
            p.restart();
        }
        let (streams, _) = sorted_pass(&inputs, &ingest, budget, |req| {
            detector.observe(req);
            if let Some(p) = &mut parquet {
                p.observe(req);
            }
        })
        .context("sorting the input by time")
        .map_err(Failure::input)?;
        merge.streams = streams;
    }

    let mut reports: Vec<_> = merge.streams.iter().map(|s| s.report.clone()).collect();
    let partial = input_verdicts(&mut reports, unopened, args.strict)?;
    for (path, note) in conf_notes {
        match path.and_then(|p| reports.iter_mut().find(|r| Path::new(&r.name) == p)) {
            Some(r) => r.notes.push(note),
            None if !args.quiet => eprintln!("bouncer: {note}"),
            None => {}
        }
    }
    for r in &mut reports {
        if r.lines == 0 && r.resumed_at == 0 && r.read_error.is_none() && r.failed.is_none() {
            r.notes.push("empty".into());
        }
    }
    for c in &skipped {
        reports.push(crate::ingest::FileReport {
            name: c.path.clone(),
            gzip: c.gzip,
            notes: vec!["unchanged since last run: skipped".into()],
            ..Default::default()
        });
    }
    let run_lines: u64 = reports.iter().map(|r| r.lines).sum();
    let run_errors: u64 = reports.iter().map(|r| r.parse_errors).sum();
    let (mut lines, mut parse_errors) = (run_lines, run_errors);

    // Incremental: save the state as it is (tail still in the reorder buffers), then flush a copy.
    if let Some(dir) = &args.state {
        let prev = state
            .as_ref()
            .map(|s| (s.lines, s.parse_errors))
            .unwrap_or((0, 0));
        lines += prev.0;
        parse_errors += prev.1;
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        let mut pending: Vec<(i64, usize, u64, Pending)> = Vec::new();
        for (i, (src, s)) in stream_sources.iter().zip(&merge.streams).enumerate() {
            let Source::File(p) = src else { continue };
            if reports
                .iter()
                .any(|r| r.name == s.report.name && r.failed.is_some())
            {
                continue; // not one line read: read it again next time (with the right format?)
            }
            let cp = checkpoint::make(
                p,
                s.committed_offset,
                s.line_number(),
                s.report.gzip,
                s.pending(),
            )
            .with_context(|| format!("{}: cannot checkpoint", p.display()))
            .map_err(Failure::input)?;
            pending.extend(cp.pending.iter().map(|q| (q.time, i, q.seq, q.clone())));
            checkpoints.push(cp);
        }
        checkpoints.extend(skipped.iter().cloned());
        let new_state = State {
            version: STATE_VERSION,
            settings: settings.clone(),
            detector: detector.clone(),
            checkpoints,
            lines,
            parse_errors,
        };
        save_state(dir, &new_state)?;
        pending.sort_by_key(|p| (p.0, p.1, p.2));
        for (_, _, _, p) in pending {
            detector.observe(&p.req);
        }
    }
    detector.finish();

    if detector.stats().requests == 0 && !incremental {
        let why: Vec<String> = reports
            .iter()
            .filter_map(|r| r.failed.as_ref())
            .cloned()
            .collect();
        return Err(Failure::input(match why.is_empty() {
            true => anyhow!("no requests in the input"),
            false => anyhow!(
                "no requests in the input; not analysed:\n  {}",
                why.join("\n  ")
            ),
        }));
    }

    let analysis = analysis(&detector, reports, lines, parse_errors);
    let out = Outputs {
        dir: out_dir,
        rules,
        report,
    };
    write_outputs(&analysis, &out, &args)?;
    if let Some(p) = parquet {
        let root = p.dir.root.clone();
        let w = p
            .finish(&analysis.decisions)
            .context("--parquet")
            .map_err(Failure::input)?;
        if !args.quiet {
            eprintln!(
                "bouncer: parquet: {} rows in {} files ({} bytes) under {}",
                w.rows,
                w.files.len(),
                w.bytes,
                root.display()
            );
        }
    }
    match partial {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Where `analyze` writes, resolved before any work.
pub(super) struct Outputs {
    pub dir: PathBuf,
    pub rules: RulesetOptions,
    pub report: Option<emit::report::ReportOptions>,
}

/// decisions.json, the ban lists, the report and the summary (stdout unless `--quiet`).
pub(super) fn write_outputs(
    analysis: &Analysis,
    out: &Outputs,
    args: &AnalyzeArgs,
) -> Result<(), Failure> {
    let (out_dir, rules) = (&out.dir, &out.rules);
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("{}: cannot create output directory", out_dir.display()))
        .map_err(Failure::input)?;
    emit::remove_stale_temps(out_dir);
    // Every output is staged before any is replaced: a full disk leaves the previous run's
    // outputs as they were, never new decisions beside an old report.
    let mut files: Vec<(PathBuf, String)> = emit::render_all(analysis, rules)
        .map_err(Failure::input)?
        .into_iter()
        .map(|(name, text)| (out_dir.join(name), text))
        .collect();
    let report_path = match out.report.clone() {
        Some(mut o) => {
            o.out_dir = out_dir.display().to_string();
            o.rules = rules.clone();
            let html = emit::report::render(analysis, &o).map_err(Failure::usage)?;
            let path = args
                .report
                .clone()
                .unwrap_or_else(|| out_dir.join(REPORT_FILE));
            files.push((path.clone(), html));
            Some(path)
        }
        None => None,
    };
    let staged: Vec<(PathBuf, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.clone(), t.as_bytes()))
        .collect();
    emit::write_all_atomic(&staged)
        .context("nothing was replaced")
        .map_err(Failure::input)?;
    if !args.quiet {
        let text = emit::summary::render(
            analysis,
            args.top,
            Some(&out_dir.display().to_string()),
            report_path.as_deref(),
            rules,
        );
        std::io::stdout().lock().write_all(text.as_bytes())?;
    }
    Ok(())
}

/// Each input's verdict, once all are read: an input with lines of which not one could be read
/// (almost always the wrong file, or a format bouncer does not know) is marked failed, like one
/// that could not be opened. With `--strict` either stops the run (exit 2) before anything is
/// written; without, the others are analysed and the run is partial (exit 3), returned here to
/// be reported after the outputs are written.
fn input_verdicts(
    reports: &mut Vec<crate::ingest::FileReport>,
    unopened: Vec<crate::ingest::FileReport>,
    strict: bool,
) -> Result<Option<Failure>, Failure> {
    for r in reports.iter_mut() {
        let nonempty = r.lines - r.empty_lines;
        if nonempty > 0 && r.requests == 0 {
            let examples = r.error_examples.join("\n  ");
            r.failed = Some(format!(
                "{}: no parseable line in {nonempty} lines (format {}); first errors:\n  {examples}",
                r.name, r.format
            ));
        }
    }
    reports.extend(unopened);
    let failed: Vec<&String> = reports.iter().filter_map(|r| r.failed.as_ref()).collect();
    if failed.is_empty() {
        return Ok(None);
    }
    let list = failed
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if strict {
        return Err(Failure::input(anyhow!(
            "{list}\n(--strict: nothing written)"
        )));
    }
    Ok(Some(Failure {
        code: super::exit::PARTIAL,
        error: anyhow!(
            "partial: {} of {} inputs not analysed (the others were; outputs written):\n{list}",
            failed.len(),
            reports.len()
        ),
    }))
}

/// A file bouncer can open as a log: it exists and is not a directory.
fn check_input(p: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot open", p.display()))?;
    if meta.is_dir() {
        return Err(anyhow!("{}: is a directory, not a log file", p.display()));
    }
    Ok(())
}

fn unopened_report(src: &Source, e: &anyhow::Error) -> crate::ingest::FileReport {
    crate::ingest::FileReport {
        name: src.name(),
        format: "-".into(),
        failed: Some(format!("{e:#}")),
        ..Default::default()
    }
}

pub(super) fn analysis(
    d: &Detector,
    inputs: Vec<crate::ingest::FileReport>,
    lines: u64,
    parse_errors: u64,
) -> Analysis {
    let st = d.stats();
    let (ip_base, global_base) = d.baselines();
    Analysis {
        schema_version: emit::SCHEMA_VERSION,
        bouncer_version: env!("CARGO_PKG_VERSION").to_string(),
        inputs,
        lines,
        requests: st.requests,
        parse_errors,
        late_requests: st.late,
        distinct_ips: d.distinct_ips() as u64,
        distinct_ips_estimated: !d.distinct_ips_exact(),
        first_time: st.first_time.map(format_time),
        last_time: st.last_time.map(format_time),
        peak_window_requests: st.peak_window_requests,
        peak_at: st.peak_at.map(format_time),
        baseline_ip: ip_base,
        baseline_global: global_base,
        limits: d.limits().to_vec(),
        settings: d.settings().clone(),
        decisions: d.decisions().to_vec(),
        timeline: d.timeline().to_vec(),
        ip_series: d
            .decisions()
            .iter()
            .filter_map(|x| x.ip)
            .filter_map(|ip| Some((ip, d.ip_series(&ip)?.to_vec())))
            .collect(),
    }
}

fn sources(logs: &[PathBuf], incremental: bool) -> Result<Vec<Source>, Failure> {
    let sources: Vec<Source> = logs.iter().map(|p| Source::from_arg(p)).collect();
    let stdin_count = sources.iter().filter(|s| **s == Source::Stdin).count();
    if stdin_count > 1 {
        return Err(Failure::usage(anyhow!(
            "`-` (stdin) can be given only once"
        )));
    }
    if stdin_count == 1 && incremental {
        return Err(Failure::usage(anyhow!(
            "--state needs files: stdin cannot be resumed"
        )));
    }
    Ok(sources)
}

fn load_state(dir: &Path, settings: &DetectSettings) -> Result<Option<State>, Failure> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::input(anyhow!(
                "{}: cannot read state: {e}",
                path.display()
            )))
        }
    };
    let state: State = serde_json::from_str(&text).map_err(|e| {
        Failure::input(anyhow!(
            "{}: unreadable state ({e}); remove it to start over",
            path.display()
        ))
    })?;
    if state.version != STATE_VERSION {
        return Err(Failure::usage(anyhow!(
            "{}: state version {} is not {STATE_VERSION}; remove it to start over",
            path.display(),
            state.version
        )));
    }
    if &state.settings != settings {
        return Err(Failure::usage(anyhow!(
            "{}: made with different detection settings; results would not match one run over the whole log. Use a new --state directory (or remove this one)",
            path.display()
        )));
    }
    Ok(Some(state))
}

fn save_state(dir: &Path, state: &State) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create state directory", dir.display()))
        .map_err(Failure::input)?;
    emit::remove_stale_temps(dir);
    let text = serde_json::to_vec(state).map_err(Failure::input)?;
    let path = dir.join(STATE_FILE);
    emit::write_atomic(&path, &text)
        .with_context(|| format!("{}: cannot write state", path.display()))
        .map_err(Failure::input)
}

fn progress_bar(total: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || total < 32 << 20 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}
