//! `bouncer follow`: tail live logs, decide with the same detector as `analyze`, enforce bans on
//! the host firewall, lift them on schedule, alert Slack, write an audit log.
//!
//! Threads: the main loop (tail → parse → [`Live`] → events) never waits on the outside world.
//! The firewall worker makes the kernel match the *desired* ban set: on every change, and every
//! `reconcile_secs` to repair a flushed firewall. A slow `iptables` delays only the worker, and
//! nothing is lost, because the desired set is a state, not a queue. Slack has its own thread
//! and bounded queue. State (checkpoints, detector, bans) is saved atomically every few seconds,
//! after every ban change, and on SIGTERM/SIGINT.

use super::analyze::{detect_settings, ingest_options, ruleset_options};
use super::Failure;
use crate::cli::{FollowArgs, StatusArgs, UnbanArgs};
use crate::config::ConfigFile;
use crate::detect::bans::{BanBook, Schedule};
use crate::detect::live::{Event, Live};
use crate::detect::{Action, Detector};
use crate::emit::audit::Audit;
use crate::emit::firewall::{
    self, Backend, Enforcer, Exec, Firewall, HookPlan, Ownership, Recording,
};
use crate::emit::slack::Slack;
use crate::emit::{rulesets::RulesetOptions, write_atomic};
use crate::ingest::checkpoint::Checkpoint;
use crate::ingest::sort::sorted_pass;
use crate::ingest::tail::{StartAt, TailFile};
use crate::ingest::{Merge, Source, Stream};
use crate::parse::{self, format_time, Format, LineError, Request};
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STATE_FILE: &str = "follow-state.json";
const STATE_VERSION: u32 = 1;
const PID_FILE: &str = "follow.pid";
const INBOX: &str = "inbox";
const POLL: Duration = Duration::from_millis(200);
const SAVE_EVERY_SECS: i64 = 5;
/// `follow`'s tolerance for late lines: a line up to this much older than the newest is counted
/// in its own second (nginx logs at completion, Apache at the start of a request).
const FOLLOW_TOLERANCE_SECS: i64 = 60;

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    live: Live,
    checkpoints: Vec<Checkpoint>,
    backend: Option<String>,
}

/// Requests from `bouncer unban` to a running `follow`.
#[derive(Serialize, Deserialize)]
struct UnbanRequest {
    ip: Option<IpAddr>,
    all: bool,
}

fn wall_now() -> i64 {
    wall_ms().div_euclid(1000)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn run(args: FollowArgs, config: ConfigFile) -> Result<(), Failure> {
    if args.replay {
        return replay(args, config);
    }
    let settings = detect_settings(&args.detect, &config)?;
    let ingest = ingest_options(&args.ingest, &config)?;
    let fc = &config.follow;
    let schedule_text = args
        .ban_schedule
        .clone()
        .unwrap_or_else(|| fc.ban_schedule.clone());
    let schedule = Schedule::parse(&schedule_text)
        .map_err(|e| Failure::usage(anyhow!("--ban-schedule: {e}")))?;
    let decay = args.strike_decay_secs.unwrap_or(fc.strike_decay_secs);
    let reconcile_secs = args.reconcile_secs.unwrap_or(fc.reconcile_secs).max(1);
    // Lines go to the detector at once; late ones count in their own second up to this.
    let tolerance = args.ingest.reorder_secs.unwrap_or(FOLLOW_TOLERANCE_SECS);
    let enforce = args.enforce;
    let rules = ruleset_options(&args.output, &config)?;
    // INPUT and, where Docker made it, DOCKER-USER; `--chain` names the only one.
    let hooks = match &args.output.chain {
        Some(_) => HookPlan::Only(rules.hook_chain.clone()),
        None => HookPlan::Auto,
    };
    let ownership = if args.own_set {
        Ownership::WholeSet
    } else {
        Ownership::Ours
    };
    let backend = args.backend.unwrap_or_else(firewall::default_backend);
    if enforce && args.state.is_none() {
        eprintln!("bouncer: note: without --state, bans are forgotten on restart (the kernel keeps them until you remove them)");
    }

    // State: checkpoints, detector, bans.
    let pid_guard = match &args.state {
        Some(dir) => Some(PidFile::create(dir).map_err(Failure::input)?),
        None => None,
    };
    let saved = match &args.state {
        Some(dir) => load_state(dir).map_err(Failure::input)?,
        None => None,
    };
    let (mut live, checkpoints) = match saved {
        Some(st) if *st.live.detector.settings() == settings => (st.live, st.checkpoints),
        Some(st) => {
            eprintln!("bouncer: detection settings changed since the saved state: baselines start over; bans and strikes are kept");
            (
                Live::new(Detector::new(settings.clone()), st.live.bans, tolerance),
                st.checkpoints,
            )
        }
        None => (
            Live::new(
                Detector::new(settings.clone()),
                BanBook::new(schedule.clone(), decay),
                tolerance,
            ),
            Vec::new(),
        ),
    };
    live.bans.schedule = schedule;
    live.bans.decay_secs = decay;

    let start = if args.from_start {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let mut tails = Vec::new();
    for p in &args.logs {
        let t = TailFile::open(p, &checkpoints, start)
            .with_context(|| format!("{}: cannot open", p.display()))
            .map_err(Failure::input)?;
        for n in &t.notes {
            eprintln!("bouncer: {}: {n}", p.display());
        }
        tails.push((t, Format::Auto, FileErrors::default()));
    }

    let mut audit = match args.audit.as_ref().or(fc.audit.as_ref()) {
        Some(p) => Some(
            Audit::open(p)
                .with_context(|| format!("{}: cannot open audit log", p.display()))
                .map_err(Failure::input)?,
        ),
        None => None,
    };
    let webhook = std::env::var("BOUNCER_SLACK_WEBHOOK")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| fc.slack_webhook.clone());
    let mut slack = match webhook {
        Some(url) => Some(Slack::start(url).map_err(|e| Failure::usage(anyhow!(e)))?),
        None => None,
    };

    // The firewall worker: desired set in, kernel state out.
    let desired: Arc<Mutex<BTreeSet<IpAddr>>> =
        Arc::new(Mutex::new(live.bans.active().keys().copied().collect()));
    let fw: Box<dyn Firewall> = if enforce {
        firewall::kernel(backend, rules.clone(), Exec::host())
    } else {
        Box::new(Recording::default())
    };
    // The restored bans were added by an earlier run: ours to lift when they end (also those
    // that ended while follow was down). Entries an admin or a file replaced since are dropped
    // from this at the first reconcile (they lost bouncer's mark).
    let fw = Enforcer::new(fw, hooks, ownership)
        .with_owned(live.bans.active().keys().copied().collect());
    eprintln!(
        "bouncer: following {} file(s); enforcement: {}; {} active ban(s) restored",
        tails.len(),
        fw.describe(),
        live.bans.active().len()
    );
    let (wake_tx, wake_rx) = sync_channel::<()>(1);
    let worker = {
        let desired = desired.clone();
        std::thread::Builder::new()
            .name("firewall".into())
            .spawn(move || {
                firewall_worker(
                    fw,
                    desired,
                    wake_rx,
                    Duration::from_secs(reconcile_secs),
                    enforce,
                )
            })
            .map_err(|e| Failure::input(anyhow!("cannot start the firewall thread: {e}")))?
    };

    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Failure::input(anyhow!("cannot handle signals: {e}")))?;
    }

    let mut last_save = wall_now();
    let mut dirty = false;
    let mut lines = Vec::new();
    loop {
        if term.load(Ordering::Relaxed) {
            break;
        }
        let mut read_any = false;
        for (tail, format, errors) in tails.iter_mut() {
            lines.clear();
            tail.poll(ingest.max_line_bytes, &mut lines)
                .map_err(|e| Failure::input(anyhow!("{}: {e}", tail.path.display())))?;
            for n in tail.notes.drain(..) {
                eprintln!("bouncer: {}: {n}", tail.path.display());
            }
            if *format == Format::Auto {
                if let Some(first) = lines
                    .iter()
                    .find(|l| !l.bytes.iter().all(u8::is_ascii_whitespace))
                {
                    *format = if ingest.format == Format::Auto {
                        Format::sniff(&first.bytes)
                    } else {
                        ingest.format
                    };
                }
            }
            for line in &lines {
                read_any = true;
                let parsed = match line.too_long {
                    Some(n) => Err(LineError::TooLong(n, ingest.max_line_bytes)),
                    None => parse::parse_line(&line.bytes, *format, &ingest.parse),
                };
                match parsed {
                    Ok(req) => live.push(&req, wall_ms()),
                    Err(e) => errors.record(&tail.path, line.number, &e),
                }
            }
        }
        let now_ms = wall_ms();
        let now = now_ms.div_euclid(1000);
        dirty |= handle(
            live.tick(now_ms),
            now,
            &live,
            &desired,
            &wake_tx,
            audit.as_mut(),
            slack.as_mut(),
        );
        if let Some(dir) = &args.state {
            for ev in take_inbox(dir, &mut live) {
                dirty = true;
                handle(
                    vec![ev],
                    now,
                    &live,
                    &desired,
                    &wake_tx,
                    audit.as_mut(),
                    slack.as_mut(),
                );
            }
            let wall = wall_now();
            if dirty || wall - last_save >= SAVE_EVERY_SECS {
                save_state(dir, &live, &tails, backend).map_err(Failure::input)?;
                last_save = wall;
                dirty = false;
            }
        }
        if !read_any {
            std::thread::sleep(POLL);
        }
    }

    // Shutdown: save, let the firewall worker apply the last changes, flush alerts.
    if let Some(dir) = &args.state {
        save_state(dir, &live, &tails, backend).map_err(Failure::input)?;
    }
    drop(wake_tx);
    let _ = worker.join();
    if let Some(s) = slack.take() {
        s.shutdown(Duration::from_secs(3));
    }
    for (tail, _, errors) in &tails {
        if errors.count > 0 {
            eprintln!(
                "bouncer: {}: {} unparseable line(s)",
                tail.path.display(),
                errors.count
            );
        }
    }
    drop(pid_guard);
    eprintln!(
        "bouncer: stopped; {} active ban(s) saved",
        live.bans.active().len()
    );
    Ok(())
}

/// `follow --replay`: recorded logs through the same ingest as `analyze` (time order, sorted when
/// they are not) into the live core ([`Live`]) with a clock that follows log time. Touches
/// nothing (no firewall, no Slack); the audit log, if asked for, gets the events of the pass
/// that counts; prints the decisions as JSON.
fn replay(args: FollowArgs, config: ConfigFile) -> Result<(), Failure> {
    let settings = detect_settings(&args.detect, &config)?;
    let ingest = Arc::new(ingest_options(&args.ingest, &config)?);
    let fc = &config.follow;
    let schedule = Schedule::parse(args.ban_schedule.as_deref().unwrap_or(&fc.ban_schedule))
        .map_err(|e| Failure::usage(anyhow!("--ban-schedule: {e}")))?;
    let decay = args.strike_decay_secs.unwrap_or(fc.strike_decay_secs);
    let fresh = || {
        Live::new(
            Detector::new(settings.clone()),
            BanBook::new(schedule.clone(), decay),
            settings.window_secs as i64,
        )
    };
    let sources: Vec<Source> = args.logs.iter().map(|p| Source::from_arg(p)).collect();
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
            Stream::open(src, ingest.clone(), None, true, progress.clone(), None)
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
        sorted_pass(&sources, &ingest, 512 << 20, |req| {
            feed(&mut live, &mut events, req)
        })
        .context("sorting the input by time")
        .map_err(Failure::input)?;
    }
    // The end of the recording: let the clock run past the last window.
    if let Some(last) = live.detector.stats().last_time {
        let end = last + settings.long_secs as i64 + 1;
        events.extend(live.tick(end * 1000).into_iter().map(|e| (e, end)));
    }
    if let Some(p) = args.audit.as_ref().or(fc.audit.as_ref()) {
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
    use std::io::Write;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&out).map_err(Failure::input)?
    )?;
    Ok(())
}

#[derive(Default)]
struct FileErrors {
    count: u64,
}

impl FileErrors {
    fn record(&mut self, path: &Path, line: u64, e: &LineError) {
        self.count += 1;
        if self.count <= 5 {
            eprintln!("bouncer: {}:{line}: {e}", path.display());
        } else if self.count.is_power_of_two() {
            eprintln!(
                "bouncer: {}: {} unparseable lines so far",
                path.display(),
                self.count
            );
        }
    }
}

/// Sinks for a tick's events. Returns whether the ban set changed (save state now).
fn handle(
    events: Vec<Event>,
    now: i64,
    live: &Live,
    desired: &Mutex<BTreeSet<IpAddr>>,
    wake: &SyncSender<()>,
    mut audit: Option<&mut Audit>,
    mut slack: Option<&mut Slack>,
) -> bool {
    let mut changed = false;
    for ev in events {
        match &ev {
            Event::Ban { ip, ban, decision } => {
                if live.detector.is_allowlisted(ip) {
                    continue; // belt and braces: the detector never decides these
                }
                desired.lock().expect("desired set").insert(*ip);
                changed = true;
                eprintln!(
                    "bouncer: BAN {ip} strike {} until {}: {}",
                    ban.strike,
                    ban.until
                        .map(format_time)
                        .unwrap_or_else(|| "permanent".into()),
                    decision.reason
                );
            }
            Event::Unban { ip, why, .. } => {
                desired.lock().expect("desired set").remove(ip);
                changed = true;
                eprintln!("bouncer: UNBAN {ip} ({why:?})");
            }
            Event::GlobalAnomaly { decision } => {
                debug_assert_eq!(decision.action, Action::Alert);
                eprintln!("bouncer: GLOBAL ANOMALY {}", decision.reason);
            }
            Event::BaselineUpdate { .. } => {}
        }
        if let Some(a) = audit.as_deref_mut() {
            if let Err(e) = a.write(&ev, now) {
                eprintln!("bouncer: audit log: {e}");
            }
        }
        if let Some(s) = slack.as_deref_mut() {
            let log_time = match &ev {
                Event::GlobalAnomaly { decision } => decision.at,
                _ => now,
            };
            s.notify(&ev, log_time);
        }
    }
    if changed {
        let _ = wake.try_send(()); // full means a wake-up is already pending
    }
    changed
}

fn firewall_worker(
    mut fw: Enforcer,
    desired: Arc<Mutex<BTreeSet<IpAddr>>>,
    wake: Receiver<()>,
    every: Duration,
    announce_hooks: bool,
) {
    let mut hooks = None;
    loop {
        let stop = match wake.recv_timeout(every) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let want = desired.lock().expect("desired set").clone();
        let outcome = fw.reconcile(&want);
        if announce_hooks && hooks.as_ref() != Some(fw.hooks()) {
            eprintln!("bouncer: firewall: hooks: {}", fw.hooks());
            hooks = Some(fw.hooks().clone());
        }
        if outcome.added() + outcome.removed() > 0 {
            eprintln!(
                "bouncer: firewall: +{} -{} ({} banned)",
                outcome.added(),
                outcome.removed(),
                want.len()
            );
        }
        for (family, e) in outcome.errors() {
            eprintln!("bouncer: firewall: {family}: {e}");
        }
        if stop {
            return;
        }
    }
}

fn load_state(dir: &Path) -> anyhow::Result<Option<State>> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("{}: cannot read: {e}", path.display())),
    };
    let st: State = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: unreadable state; move it away to start over",
            path.display()
        )
    })?;
    if st.version != STATE_VERSION {
        return Err(anyhow!(
            "{}: state version {} is not {STATE_VERSION}",
            path.display(),
            st.version
        ));
    }
    Ok(Some(st))
}

fn save_state(
    dir: &Path,
    live: &Live,
    tails: &[(TailFile, Format, FileErrors)],
    backend: Backend,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
    let st = State {
        version: STATE_VERSION,
        live: live.clone(),
        checkpoints: tails
            .iter()
            .filter_map(|(t, _, _)| t.checkpoint())
            .collect(),
        backend: Some(format!("{backend:?}").to_lowercase()),
    };
    let path = dir.join(STATE_FILE);
    write_atomic(&path, &serde_json::to_vec(&st)?)
        .with_context(|| format!("{}: cannot write state", path.display()))
}

fn take_inbox(dir: &Path, live: &mut Live) -> Vec<Event> {
    let Ok(entries) = std::fs::read_dir(dir.join(INBOX)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for f in files {
        if let Ok(req) = std::fs::read_to_string(&f)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<UnbanRequest>(&t).map_err(|_| ()))
        {
            if req.all {
                events.extend(live.unban_all());
            } else if let Some(ip) = req.ip {
                events.extend(live.unban(&ip));
            }
        }
        let _ = std::fs::remove_file(&f);
    }
    events
}

/// `follow.pid` in the state directory: one follower per state, and how `unban` finds it.
struct PidFile(PathBuf);

impl PidFile {
    fn create(dir: &Path) -> anyhow::Result<PidFile> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
        let path = dir.join(PID_FILE);
        if let Some(pid) = running_pid(dir) {
            return Err(anyhow!(
                "{}: another bouncer follow (pid {pid}) uses this state directory",
                dir.display()
            ));
        }
        write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (pid != std::process::id() && cmdline.windows(7).any(|w| w == b"bouncer")).then_some(pid)
}

/// `bouncer status`: active bans from the state, one JSON object per line.
pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let st = load_state(&args.state)
        .map_err(Failure::input)?
        .ok_or_else(|| {
            Failure::input(anyhow!(
                "{}: no follow state here (start `bouncer follow --state {}`)",
                args.state.display(),
                args.state.display()
            ))
        })?;
    let now = wall_now();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (ip, b) in st.live.bans.active() {
        let line = serde_json::json!({
            "ip": ip, "since": format_time(b.since), "until": b.until.map(format_time),
            "remaining_secs": b.until.map(|u| (u - now).max(0)), "strike": b.strike, "reason": b.reason,
        });
        writeln!(out, "{line}")?;
    }
    if let Some(pid) = running_pid(&args.state) {
        eprintln!(
            "follow is running (pid {pid}); {} active ban(s)",
            st.live.bans.active().len()
        );
    } else {
        eprintln!(
            "follow is not running; {} active ban(s) in the saved state",
            st.live.bans.active().len()
        );
    }
    Ok(())
}

/// `bouncer unban`: through the running follower when there is one, else on the saved state
/// and the kernel directly.
pub fn unban(args: UnbanArgs, config: ConfigFile) -> Result<(), Failure> {
    if args.ip.is_none() && !args.all {
        return Err(Failure::usage(anyhow!("name an IP or use --all")));
    }
    let dir = &args.state;
    if running_pid(dir).is_some() {
        let inbox = dir.join(INBOX);
        std::fs::create_dir_all(&inbox).map_err(Failure::input)?;
        let name = format!("{}-{}.json", wall_now(), std::process::id());
        let req = UnbanRequest {
            ip: args.ip,
            all: args.all,
        };
        let path = inbox.join(&name);
        write_atomic(&path, &serde_json::to_vec(&req).map_err(Failure::input)?)
            .map_err(Failure::input)?;
        for _ in 0..50 {
            if !path.exists() {
                eprintln!("unban handed to the running follow; it lifts the ban within a second");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return Err(Failure::input(anyhow!(
            "the running follow did not pick up the request within 5 s ({} is still queued)",
            path.display()
        )));
    }
    let mut st = load_state(dir)
        .map_err(Failure::input)?
        .ok_or_else(|| Failure::input(anyhow!("{}: no follow state here", dir.display())))?;
    let events = match args.ip {
        Some(ip) => st.live.unban(&ip).into_iter().collect(),
        None => st.live.unban_all(),
    };
    let ips: Vec<IpAddr> = events
        .iter()
        .filter_map(|e| match e {
            Event::Unban { ip, .. } => Some(*ip),
            _ => None,
        })
        .collect();
    if ips.is_empty() {
        eprintln!("nothing to unban");
        return Ok(());
    }
    let rules: RulesetOptions = ruleset_options(&args.output, &config)?;
    let backend = args.backend.unwrap_or(match st.backend.as_deref() {
        Some("iptables") => Backend::Iptables,
        _ => Backend::Ipset,
    });
    let mut fw = firewall::kernel(backend, rules, Exec::host());
    firewall::lift(&mut fw, &ips).map_err(|e| Failure::input(anyhow!(e)))?;
    let path = dir.join(STATE_FILE);
    write_atomic(&path, &serde_json::to_vec(&st).map_err(Failure::input)?)
        .map_err(Failure::input)?;
    for ip in ips {
        eprintln!("unbanned {ip}");
    }
    Ok(())
}
