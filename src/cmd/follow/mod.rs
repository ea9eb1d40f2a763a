//! `bouncer follow`: tail live logs, decide with the same detector as `analyze`, enforce bans on
//! the host firewall, lift them on schedule, tell Slack, write an audit log and a status file.
//!
//! One pipeline, as in `analyze`: sources → parse → detect → sinks.
//! - **Sources**: each input ([`LiveInputs`]: a tailed file, or stdin) has a reader thread with
//!   the same parsing, format detection and error accounting as `analyze`'s files; requests are
//!   released at once (the detector counts a line up to `--reorder-secs` late in its own second).
//! - **The loop** (this module) pushes requests into the live core ([`Live`]), and on every tick
//!   (200 ms, and at once after a request that decided something) turns what happened into
//!   [`Note`]s for the sinks, builds a [`Snapshot`], saves the state when due.
//! - **Sinks** ([`crate::emit::sink`]): console, audit log, firewall, Slack, status file, live
//!   view (`--listen`, [`crate::serve`]). The
//!   loop never waits on one: the firewall and Slack have threads of their own, and what those
//!   learn (a ban is in the kernel, the kernel lost it, Slack is down) comes back as notes.
//!
//! A failed state save (a full disk) does not stop enforcement: bans go on from memory, the
//! failure is said everywhere, and the save is retried.

mod commands;
mod replay;
mod state;
mod stored;

pub use commands::{status, unban};

use super::settings::FollowSettings;
use super::Failure;
use crate::cli::FollowArgs;
use crate::config::ConfigFile;
use crate::detect::bans::BanBook;
use crate::detect::live::{Event, Live};
use crate::detect::Detector;
use crate::emit::audit::{Audit, AuditSink};
use crate::emit::console::ConsoleSink;
use crate::emit::crowdsec::{CrowdsecHandle, CrowdsecSink, Push};
use crate::emit::enforce::{FirewallSink, OwnedHandle};
use crate::emit::firewall::{self, Enforcer, Exec};
use crate::emit::parquet::ParquetSink;
use crate::emit::sink::{FirewallNote, Note, Sinks};
use crate::emit::slack::{Slack, SlackSink};
use crate::emit::snapshot::{BanStatus, Snapshot, StatusFileSink};
use crate::ingest::tail::StartAt;
use crate::ingest::{LiveInputs, LiveSource};
use crate::serve::DashboardSink;
use anyhow::{anyhow, Context};
use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the loop ticks when no request arrives.
const TICK_MS: i64 = 200;
/// State saves: at least this often, and after every ban change.
const SAVE_EVERY_SECS: i64 = 5;
/// `status.json`: this often.
const STATUS_FILE_EVERY_SECS: i64 = 2;
/// Requests per second kept for the snapshot (15 minutes).
const PER_SECOND_KEPT: usize = 900;

pub(crate) fn wall_now() -> i64 {
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
        return replay::run(args, config);
    }
    let s = FollowSettings::resolve(&args, &config)?;
    if s.enforce && s.state.is_none() {
        eprintln!("bouncer: note: without --state, bans are forgotten on restart (the kernel keeps them until you remove them)");
    }
    let pid_guard = match &s.state {
        Some(dir) => Some(state::PidFile::create(dir).map_err(Failure::input)?),
        None => None,
    };
    if let Some(dir) = &s.state {
        for f in state::clean(dir) {
            eprintln!("bouncer: removed {f} (left by an interrupted save)");
        }
    }
    let saved = match &s.state {
        Some(dir) => state::load(dir).map_err(Failure::input)?,
        None => None,
    };
    let pushes = saved
        .as_ref()
        .and_then(|st| st.bans.as_ref())
        .map(|b| b.crowdsec.clone())
        .unwrap_or_default();
    let fresh = |bans: BanBook| Live::new(Detector::new(s.detect.clone()), bans, s.tolerance_secs);
    let (mut live, checkpoints, owned) = match saved {
        Some(st) => {
            let (bans, owned) = match st.bans {
                Some(b) => (b.bans, b.owned),
                None => (
                    BanBook::new(s.schedule.clone(), s.decay_secs),
                    BTreeSet::new(),
                ),
            };
            match st.core {
                Some(c) if *c.core.detector.settings() == s.detect => {
                    (Live::from_core(c.core, bans), c.inputs, owned)
                }
                Some(c) => {
                    eprintln!("bouncer: detection settings changed since the saved state: baselines start over; bans and strikes are kept");
                    (fresh(bans), c.inputs, owned)
                }
                None => (fresh(bans), Vec::new(), owned),
            }
        }
        None => (
            fresh(BanBook::new(s.schedule.clone(), s.decay_secs)),
            Vec::new(),
            BTreeSet::new(),
        ),
    };
    live.bans.schedule = s.schedule.clone();
    live.bans.decay_secs = s.decay_secs;

    let sources: Vec<LiveSource> = s.logs.iter().map(|p| LiveSource::from_arg(p)).collect();
    let start = if s.from_start {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let inputs = LiveInputs::open(&sources, s.ingest.clone(), &checkpoints, start)
        .map_err(Failure::input)?;
    for (path, note) in &s.conf_notes {
        match path {
            Some(p) => eprintln!("bouncer: {}: {note}", p.display()),
            None => eprintln!("bouncer: {note}"),
        }
    }

    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Failure::input(anyhow!("cannot handle signals: {e}")))?;
    }
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())
        .map_err(|e| Failure::input(anyhow!("cannot handle signals: {e}")))?;

    let (sinks, owned_handle, describe) = sinks(&s, &live, owned, usr1)?;
    let (sinks, crowdsec) = fleet_sinks(&s, sinks, pushes)?;
    eprintln!(
        "bouncer: following {} file(s); enforcement: {describe}; {} active ban(s) restored",
        sources.len(),
        live.bans.active().len()
    );
    let mut l = Loop {
        dry_run: !s.enforce,
        state_dir: s.state.clone(),
        backend: format!("{:?}", s.backend).to_lowercase(),
        live,
        inputs,
        sinks,
        owned: owned_handle,
        crowdsec,
        snapshot: Snapshot {
            bouncer_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started: wall_now(),
            dry_run: !s.enforce,
            ..Default::default()
        },
        per_second: VecDeque::new(),
        lines_seen: VecDeque::new(),
        saves: Saves::default(),
        last_tick_secs: 0.0,
    };
    l.run(&term);
    drop(pid_guard);
    Ok(())
}

/// The sinks of this run: console, audit log, firewall (with `--enforce`), Slack, status file,
/// live view (with `--listen`).
fn sinks(
    s: &FollowSettings,
    live: &Live,
    owned: BTreeSet<IpAddr>,
    usr1: Arc<AtomicBool>,
) -> Result<(Sinks, Option<OwnedHandle>, String), Failure> {
    let dry_run = !s.enforce;
    let mut sinks = Sinks::default();
    sinks.push(ConsoleSink::new(dry_run, usr1, wall_now()));
    if let Some(p) = &s.audit {
        let audit = Audit::open(p)
            .with_context(|| format!("{}: cannot open audit log", p.display()))
            .map_err(Failure::input)?;
        sinks.push(AuditSink::new(audit, dry_run));
    }
    let mut owned_handle = None;
    let describe = if s.enforce {
        let fw = firewall::kernel(s.backend, s.rules.clone(), Exec::host());
        // Entries an earlier run added are ours to lift when their bans end (also those that
        // ended while follow was down); restored bans are too, for states of older versions.
        let mut ours = owned;
        ours.extend(live.bans.active().keys().copied());
        let enforcer = Enforcer::new(fw, s.hooks.clone(), s.ownership).with_owned(ours);
        let describe = enforcer.describe();
        let desired: BTreeSet<IpAddr> = live.bans.active().keys().copied().collect();
        let sink = FirewallSink::start(enforcer, desired, Duration::from_secs(s.reconcile_secs))
            .map_err(|e| Failure::input(anyhow!("cannot start the firewall thread: {e}")))?;
        owned_handle = Some(sink.owned_handle());
        sinks.push(sink);
        describe
    } else {
        "none (dry run: add --enforce to ban on the host firewall)".to_string()
    };
    if let Some(url) = &s.slack_webhook {
        if s.enforce || s.slack_in_dry_run {
            let slack = Slack::start(url.clone()).map_err(|e| Failure::usage(anyhow!(e)))?;
            sinks.push(SlackSink::new(slack, dry_run));
        }
    }
    if let Some(dir) = &s.state {
        sinks.push(StatusFileSink::new(dir, STATUS_FILE_EVERY_SECS));
    }
    if let Some(listen) = &s.listen {
        let (sink, addr) = DashboardSink::start(listen, s.detect.clone())
            .map_err(|e| Failure::input(anyhow!(e)))?;
        eprintln!(
            "bouncer: live view on http://{addr}/ (metrics: /metrics, JSON: /api/state){}",
            if listen.token.is_some() {
                "; token required"
            } else {
                ""
            }
        );
        sinks.push(sink);
    }
    Ok((sinks, owned_handle, describe))
}

/// The fleet's sinks: CrowdSec (pushes a previous run left are sent first; without
/// `--crowdsec-lapi` they stay in the state for a run that has it) and Parquet.
fn fleet_sinks(
    s: &FollowSettings,
    mut sinks: Sinks,
    pushes: Vec<Push>,
) -> Result<(Sinks, Pushes), Failure> {
    let crowdsec = match &s.crowdsec {
        Some(lapi) => {
            eprintln!(
                "bouncer: crowdsec: pushing bans to {} as machine {:?}{}",
                lapi.url,
                lapi.machine_id,
                match pushes.len() {
                    0 => String::new(),
                    n => format!(" ({n} push(es) left by the last run go first)"),
                }
            );
            let sink = CrowdsecSink::start(lapi.clone(), pushes)
                .map_err(|e| Failure::input(anyhow!(e)))?;
            let handle = sink.handle();
            sinks.push(sink);
            Pushes::Sent(handle)
        }
        None => Pushes::Kept(pushes),
    };
    if let Some(dir) = &s.parquet {
        let sink = ParquetSink::start(
            dir.clone(),
            s.parquet_roll_secs,
            s.tolerance_secs,
            wall_now(),
        )
        .map_err(Failure::input)?;
        eprintln!(
            "bouncer: parquet: minute aggregates to {}/host={}/ every {} min",
            dir.root.display(),
            dir.node,
            s.parquet_roll_secs / 60
        );
        sinks.push(sink);
    }
    Ok((sinks, crowdsec))
}

/// CrowdSec pushes not yet delivered: the sender's queue, or those a previous run left when
/// this one has no LAPI (kept in the state as they are).
enum Pushes {
    Sent(CrowdsecHandle),
    Kept(Vec<Push>),
}

impl Pushes {
    fn pending(&self) -> Vec<Push> {
        match self {
            Pushes::Sent(h) => h.pending(),
            Pushes::Kept(p) => p.clone(),
        }
    }
}

struct Loop {
    dry_run: bool,
    state_dir: Option<PathBuf>,
    backend: String,
    live: Live,
    inputs: LiveInputs,
    sinks: Sinks,
    owned: Option<OwnedHandle>,
    crowdsec: Pushes,
    /// Counters and recent events carried from tick to tick.
    snapshot: Snapshot,
    /// Requests per wall second (last 15 minutes), and (wall second, lines read) for the rate.
    per_second: VecDeque<(i64, u32)>,
    lines_seen: VecDeque<(i64, u64)>,
    saves: Saves,
    /// Wall time of the last full tick, for the next snapshot.
    last_tick_secs: f64,
}

/// When the two state files were last written, and whether they need writing.
struct Saves {
    /// `bans.json`: its last contents (rewritten only when they change), and a ban change
    /// since (write now).
    bans_written: Option<Vec<u8>>,
    bans_dirty: bool,
    last_bans: i64,
    /// `core.bin`: batches taken since the last write, and when that was.
    batches_since_core: u64,
    last_core: i64,
    /// The last failure (said once; retried every second).
    error: Option<String>,
    last_attempt: i64,
}

impl Default for Saves {
    fn default() -> Self {
        Saves {
            bans_written: None,
            bans_dirty: true,
            last_bans: i64::MIN,
            batches_since_core: 1, // a first core at once: the inputs' starting points
            last_core: i64::MIN,
            error: None,
            last_attempt: i64::MIN,
        }
    }
}

impl Loop {
    fn run(&mut self, term: &AtomicBool) {
        let mut next_tick = wall_ms();
        while !term.load(Ordering::Relaxed) {
            let wait = (next_tick - wall_ms()).clamp(1, TICK_MS);
            if let Some((_, requests)) = self.inputs.recv(Duration::from_millis(wait as u64)) {
                let decided = self.live.detector.decisions().len();
                let now_ms = wall_ms();
                for r in &requests {
                    self.live.push(r, now_ms);
                }
                self.sinks.requests(&requests);
                self.count(now_ms.div_euclid(1000), requests.len());
                // Any batch moves the checkpoints (even one of unparseable lines).
                self.saves.batches_since_core += 1;
                if self.live.detector.decisions().len() > decided {
                    // A ban waits for nothing: publish it now, not at the next tick.
                    self.tick(now_ms, false);
                }
            }
            let now_ms = wall_ms();
            if now_ms >= next_tick {
                self.tick(now_ms, true);
                next_tick = now_ms + TICK_MS;
            }
        }
        // Shutdown: stop reading, publish and save what is decided, let the sinks finish.
        self.inputs.stop();
        let now_ms = wall_ms();
        self.tick(now_ms, true);
        self.save(now_ms.div_euclid(1000), true);
        self.sinks.shutdown(Duration::from_secs(3));
        eprintln!(
            "bouncer: stopped; {} active ban(s) {}",
            self.live.bans.active().len(),
            if self.state_dir.is_some() {
                "saved"
            } else {
                "forgotten (no --state)"
            }
        );
    }

    fn count(&mut self, sec: i64, requests: usize) {
        match self.per_second.back_mut() {
            Some((s, n)) if *s == sec => *n += requests as u32,
            _ => {
                self.per_second.push_back((sec, requests as u32));
                while self.per_second.len() > PER_SECOND_KEPT {
                    self.per_second.pop_front();
                }
            }
        }
    }

    /// Publish what happened; with `full`, also the sinks' own news, the inbox, the snapshot
    /// and the state save.
    fn tick(&mut self, now_ms: i64, full: bool) {
        let started = Instant::now();
        let now = now_ms.div_euclid(1000);
        let mut notes: Vec<Note> = Vec::new();
        for e in self.live.tick(now_ms) {
            if let Event::Ban { ip, .. } = &e {
                if self.live.detector.is_allowlisted(ip) {
                    continue; // belt and braces: the detector never decides these
                }
            }
            notes.push(Note::Core(e));
        }
        notes.extend(
            self.inputs
                .take_notes()
                .into_iter()
                .map(|(name, note)| Note::Input { name, note }),
        );
        if full {
            notes.extend(self.sinks.take_notes());
            if let Some(dir) = &self.state_dir {
                notes.extend(
                    state::take_inbox(dir, &mut self.live)
                        .into_iter()
                        .map(Note::Core),
                );
            }
        }
        for n in &notes {
            self.remember(n, now);
        }
        self.sinks.publish(&notes, now);
        if full {
            self.live.forget_published();
            let snapshot = self.build_snapshot(now);
            self.snapshot = self.sinks.snapshot(snapshot);
            self.save(now, false);
            // Published with the next snapshot (this one is out already).
            self.last_tick_secs = started.elapsed().as_secs_f64();
        }
    }

    /// Keep totals and the recent events for the snapshot; a ban change makes the state dirty.
    fn remember(&mut self, n: &Note, now: i64) {
        let s = &mut self.snapshot;
        let (kind, text) = match n {
            Note::Core(Event::Ban { ip, decision, .. }) => {
                s.bans_total += 1;
                self.saves.bans_dirty = true;
                ("BAN", format!("{ip}: {}", decision.reason))
            }
            Note::Core(Event::Unban { ip, why, .. }) => {
                s.unbans_total += 1;
                self.saves.bans_dirty = true;
                ("UNBAN", format!("{ip} ({why:?})"))
            }
            Note::Core(Event::GlobalAnomaly { decision }) => {
                s.alerts_total += 1;
                ("ALERT", decision.reason.clone())
            }
            Note::Core(Event::BaselineUpdate { .. }) => return,
            Note::Firewall(FirewallNote::Applied {
                added,
                removed,
                banned,
            }) => (
                "FIREWALL",
                format!(
                    "+{} -{} ({banned} in the kernel)",
                    added.len(),
                    removed.len()
                ),
            ),
            Note::Firewall(FirewallNote::Repaired { restored }) => {
                ("FIREWALL", format!("{restored} lost ban(s) put back"))
            }
            Note::Firewall(FirewallNote::Failed { family, error, .. }) => {
                ("FIREWALL", format!("{family} FAILING: {error}"))
            }
            Note::Firewall(FirewallNote::Recovered { family }) => {
                ("FIREWALL", format!("{family} working again"))
            }
            Note::Firewall(FirewallNote::Hooks { hooks }) => {
                ("FIREWALL", format!("hooks: {hooks}"))
            }
            Note::Slack(sl) => ("SLACK", format!("failed: {}", sl.error)),
            Note::Crowdsec(c) => ("CROWDSEC", format!("{c:?}")),
            Note::Input { name, note } => ("INPUT", format!("{name}: {note}")),
            Note::StateSave { error } => (
                "STATE",
                error
                    .clone()
                    .map(|e| format!("not saved: {e}"))
                    .unwrap_or_else(|| "saved again".into()),
            ),
        };
        s.push_recent(now, kind, text);
    }

    fn build_snapshot(&mut self, now: i64) -> Snapshot {
        let mut s = std::mem::take(&mut self.snapshot);
        s.now = now;
        s.inputs = self.inputs.reports.clone();
        s.lines = s.inputs.iter().map(|r| r.lines).sum();
        s.requests = s.inputs.iter().map(|r| r.requests).sum();
        s.parse_errors = s.inputs.iter().map(|r| r.parse_errors).sum();
        self.lines_seen.push_back((now, s.lines));
        while self.lines_seen.front().is_some_and(|(t, _)| now - t > 10) {
            self.lines_seen.pop_front();
        }
        s.lines_per_sec = match (self.lines_seen.front(), self.lines_seen.back()) {
            (Some((t0, l0)), Some((t1, l1))) if t1 > t0 => (l1 - l0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        let d = &self.live.detector;
        s.late = d.stats().late;
        s.log_now = d.stats().last_time;
        s.warmed_up = d.warmed_up_now();
        s.limits = d.limits().to_vec();
        (s.clients, s.site) = d.baselines();
        s.bans = self
            .live
            .bans
            .active()
            .iter()
            .map(|(ip, b)| BanStatus {
                ip: *ip,
                since: b.since,
                until: b.until,
                strike: b.strike,
                reason: b.reason.clone(),
                enforced: false,
            })
            .collect();
        s.per_second = self.per_second.iter().copied().collect();
        s.state_error = self.saves.error.clone();
        s.dry_run = self.dry_run;
        s.site_limit = d.site_alert_limit();
        s.tick_secs = self.last_tick_secs;
        s
    }

    /// Save the state when due (or `force`d): `bans.json` when it changed, `core.bin` when
    /// requests came and it is due (see `state`). A failure is said once, enforcement goes on
    /// from memory, and the next tick retries.
    fn save(&mut self, now: i64, force: bool) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let retry = self.saves.error.is_some();
        if retry && !force && now == self.saves.last_attempt {
            return; // a failing disk is tried once a second
        }
        self.saves.last_attempt = now;
        let mut result = Ok(());
        let bans_due = self.saves.bans_dirty
            || retry
            || force
            || now.saturating_sub(self.saves.last_bans) >= SAVE_EVERY_SECS;
        if bans_due {
            self.saves.last_bans = now;
            let b = state::Bans {
                version: state::STATE_VERSION,
                bans: self.live.bans.clone(),
                owned: self.owned.as_ref().map(|o| o.get()).unwrap_or_default(),
                backend: Some(self.backend.clone()),
                crowdsec: self.crowdsec.pending(),
            };
            let bytes = serde_json::to_vec(&b).unwrap_or_default();
            if self.saves.bans_written.as_ref() != Some(&bytes) || retry {
                result = state::save_bans(&dir, &b);
                if result.is_ok() {
                    self.saves.bans_written = Some(bytes);
                    self.saves.bans_dirty = false;
                }
            } else {
                self.saves.bans_dirty = false;
            }
        }
        let core_due = self.saves.batches_since_core > 0
            && (force
                || retry
                || now.saturating_sub(self.saves.last_core) >= state::CORE_EVERY_SECS);
        if result.is_ok() && core_due {
            self.saves.last_core = now;
            let inputs: Vec<_> = self.inputs.checkpoints.iter().flatten().cloned().collect();
            result = state::save_core(&dir, &self.live, &inputs).map(|_| ());
            if result.is_ok() {
                self.saves.batches_since_core = 0;
            }
        }
        match result {
            Ok(()) => {
                if self.saves.error.take().is_some() {
                    let n = Note::StateSave { error: None };
                    self.remember(&n, now);
                    self.sinks.publish(&[n], now);
                }
            }
            Err(e) => {
                let e = format!("{e:#}");
                if self.saves.error.as_ref() != Some(&e) {
                    let n = Note::StateSave {
                        error: Some(e.clone()),
                    };
                    self.remember(&n, now);
                    self.sinks.publish(&[n], now);
                }
                self.saves.error = Some(e);
            }
        }
    }
}
