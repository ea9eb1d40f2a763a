//! `follow --replay`: recorded logs through the same ingest as `analyze` (time order, sorted
//! when they are not) into the live core ([`Live`]) with a clock that follows log time. Touches
//! nothing (no firewall, no Slack); the audit log, if asked for, gets the events of the pass
//! that counts; prints the decisions as JSON. A test compares them with `analyze`'s.

use crate::cli::FollowArgs;
use crate::cmd::settings::FollowSettings;
use crate::cmd::Failure;
use crate::config::ConfigFile;
use crate::detect::bans::BanBook;
use crate::detect::live::{Event, Live};
use crate::detect::Detector;
use crate::emit::audit::Audit;
use crate::ingest::sort::sorted_pass;
use crate::ingest::{Merge, Source, Stream};
use crate::parse::Request;
use anyhow::Context;
use std::io::Write;
use std::sync::Arc;

pub fn run(args: FollowArgs, config: ConfigFile) -> Result<(), Failure> {
    let s = FollowSettings::resolve(&args, &config)?;
    let fresh = || {
        Live::new(
            Detector::new(s.detect.clone()),
            BanBook::new(s.schedule.clone(), s.decay_secs),
            s.detect.window_secs as i64,
        )
    };
    let sources: Vec<Source> = s.logs.iter().map(|p| Source::from_arg(p)).collect();
    // The clock follows log time: a tick whenever log time moves to a new second.
    let feed = |live: &mut Live, events: &mut Vec<(Event, i64)>, req: &Request| {
        let ms = req.time * 1000;
        let tick = live.detector.stats().last_time.is_none_or(|t| req.time > t);
        live.push(req, ms);
        if tick {
            events.extend(live.tick(ms).into_iter().map(|e| (e, req.time)));
        }
    };
    let (mut live, mut events) = (fresh(), Vec::new());
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut streams = Vec::new();
    for src in &sources {
        streams.push(
            Stream::open(src, s.ingest.clone(), None, true, progress.clone(), None)
                .map_err(Failure::input)?,
        );
    }
    let mut merge = Merge { streams };
    while let Some(req) = merge.next_request() {
        feed(&mut live, &mut events, req);
    }
    if merge.streams.iter().any(|s| s.report.out_of_order > 0) {
        // As analyze does: not in time order beyond the tolerance, so sort and start over.
        (live, events) = (fresh(), Vec::new());
        sorted_pass(&sources, &s.ingest, 512 << 20, |req| {
            feed(&mut live, &mut events, req)
        })
        .context("sorting the input by time")
        .map_err(Failure::input)?;
    }
    // The end of the recording: let the clock run past the last window.
    if let Some(last) = live.detector.stats().last_time {
        let end = last + s.detect.long_secs as i64 + 1;
        events.extend(live.tick(end * 1000).into_iter().map(|e| (e, end)));
    }
    if let Some(p) = &s.audit {
        let mut audit = Audit::open(p)
            .with_context(|| format!("{}: cannot open audit log", p.display()))
            .map_err(Failure::input)?;
        for (e, at) in &events {
            audit.write(e, *at).map_err(Failure::input)?;
        }
    }
    let mut d = live.detector.clone();
    d.finish();
    let out = serde_json::json!({ "decisions": d.decisions() });
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&out).map_err(Failure::input)?
    )?;
    Ok(())
}
