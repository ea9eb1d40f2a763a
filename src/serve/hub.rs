//! What the live view knows: the last published [`Snapshot`], a per-minute history of the last
//! 24 hours, the decision behind each ban (for the per-IP view) and the counters `/metrics`
//! needs that a snapshot does not carry (bans by rule and window, unbans by why, firewall
//! failures by family, the latency and tick-duration histograms).
//!
//! [`DashboardSink`] is how it learns: on the follow loop's thread it only clones what it is
//! given into a bounded queue (`try_send`: a full queue drops and counts, the loop never waits);
//! the hub's own thread applies it, and the HTTP threads read it under a lock the loop never
//! takes.

use super::metrics::Metrics;
use super::view;
use crate::detect::live::{Event, UnbanReason};
use crate::detect::{Decision, DetectSettings};
use crate::emit::sink::{CrowdsecNote, FirewallNote, Note, Sink};
use crate::emit::snapshot::Snapshot;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Minutes of history kept (24 h).
pub const HISTORY_MINUTES: usize = 1440;
/// Decisions kept for the per-IP view beyond the active bans.
const DECISIONS_KEPT: usize = 10_000;
/// Messages queued from the loop to the hub thread.
const QUEUE: usize = 1024;

/// Which page (or stream) is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Site,
    Ip(IpAddr),
}

/// One wall-clock minute of site traffic, with the levels in force during it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Minute {
    /// Start of the minute (UNIX seconds).
    pub t: i64,
    pub requests: u64,
    /// Busiest second of the minute.
    pub peak: u32,
    /// Site baseline (requests per `window_secs`): median and robust deviation.
    pub site_mean: Option<f64>,
    pub site_std: Option<f64>,
    /// Requests per `window_secs` above which the site-wide rule can fire.
    pub site_limit: Option<f64>,
    /// The minute window's per-client limit (load per `window_secs`).
    pub client_limit: Option<f64>,
}

/// Counters that live in notes, not in snapshots (since this follow started).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// (rules that fired, joined by `+`; window) → bans.
    pub bans: BTreeMap<(String, &'static str), u64>,
    pub unbans: BTreeMap<&'static str, u64>,
    pub firewall_failures: BTreeMap<String, u64>,
    pub dropped: u64,
    /// CrowdSec LAPI pushes by outcome (`delivered`, `skipped`: expired before it could be
    /// sent, `dropped`: queue full or refused for good); empty without `--crowdsec-lapi`.
    pub crowdsec_pushes: BTreeMap<&'static str, u64>,
    /// Whether the LAPI is failing now (None: no CrowdSec note yet).
    pub crowdsec_failing: Option<bool>,
}

#[derive(Default)]
pub struct HubState {
    pub snapshot: Arc<Snapshot>,
    pub history: VecDeque<Minute>,
    pub decisions: HashMap<IpAddr, Arc<Decision>>,
    pub counters: Counters,
    /// Bumped by every snapshot; `urgent` is the last generation that followed an event.
    gen: u64,
    urgent: u64,
    pending_urgent: bool,
}

/// The shared side: state for the HTTP threads, and the wake-up for event streams.
pub struct Hub {
    pub state: Arc<RwLock<HubState>>,
    pub settings: DetectSettings,
    pub metrics: Metrics,
    /// (generation, urgent generation), and the streams waiting on it.
    gens: Mutex<(u64, u64)>,
    changed: Condvar,
    /// The dashboard's JSON for one generation, made once for every open stream.
    site_json: Mutex<Option<(u64, Arc<String>)>>,
    dropped: AtomicU64,
}

impl Hub {
    pub fn new(settings: DetectSettings) -> Arc<Hub> {
        let state = Arc::new(RwLock::new(HubState::default()));
        Arc::new(Hub {
            metrics: Metrics::new(state.clone()),
            state,
            settings,
            gens: Mutex::new((0, 0)),
            changed: Condvar::new(),
            site_json: Mutex::new(None),
            dropped: AtomicU64::new(0),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HubState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Apply one message from the loop (on the hub's thread).
    fn apply(&self, msg: Msg) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        match msg {
            Msg::Note(note, wall_ms) => {
                st.pending_urgent = true;
                match note {
                    Note::Core(Event::Ban { ip, decision, .. }) => {
                        let latency = wall_ms as f64 / 1000.0 - decision.at as f64;
                        self.metrics.detection_latency.observe(latency.max(0.0));
                        let key = (decision.rules_text("+"), decision.window.name());
                        *st.counters.bans.entry(key).or_insert(0) += 1;
                        st.decisions.insert(ip, Arc::from(decision));
                        if st.decisions.len() > DECISIONS_KEPT {
                            let active: HashSet<IpAddr> =
                                st.snapshot.bans.iter().map(|b| b.ip).collect();
                            st.decisions.retain(|ip, _| active.contains(ip));
                        }
                    }
                    Note::Core(Event::Unban { why, .. }) => {
                        let why = match why {
                            UnbanReason::Expired => "expired",
                            UnbanReason::Manual => "manual",
                        };
                        *st.counters.unbans.entry(why).or_insert(0) += 1;
                    }
                    Note::Firewall(FirewallNote::Failed { family, .. }) => {
                        *st.counters.firewall_failures.entry(family).or_insert(0) += 1;
                    }
                    Note::Crowdsec(cs) => {
                        let c = &mut st.counters;
                        let outcome = match cs {
                            CrowdsecNote::Delivered { skipped: true, .. } => Some("skipped"),
                            CrowdsecNote::Delivered { .. } => Some("delivered"),
                            CrowdsecNote::Dropped { .. } => Some("dropped"),
                            CrowdsecNote::Failing { .. } | CrowdsecNote::Recovered { .. } => None,
                        };
                        if let Some(o) = outcome {
                            *c.crowdsec_pushes.entry(o).or_insert(0) += 1;
                        }
                        match cs {
                            CrowdsecNote::Failing { .. } => c.crowdsec_failing = Some(true),
                            CrowdsecNote::Recovered { .. } => c.crowdsec_failing = Some(false),
                            _ => {
                                c.crowdsec_failing.get_or_insert(false);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Msg::Snapshot(s) => {
                self.metrics.tick_duration.observe(s.tick_secs);
                record_minutes(&mut st.history, &s, self.settings.window_secs);
                st.snapshot = Arc::from(s);
                st.counters.dropped = self.dropped.load(Ordering::Relaxed);
                st.gen += 1;
                if std::mem::take(&mut st.pending_urgent) {
                    st.urgent = st.gen;
                }
                let gens = (st.gen, st.urgent);
                drop(st);
                *self.gens.lock().unwrap_or_else(|e| e.into_inner()) = gens;
                self.changed.notify_all();
            }
        }
    }

    /// Wait up to `timeout` for a generation newer than `seen`: (generation, urgent generation).
    pub fn wait(&self, seen: u64, timeout: Duration) -> (u64, u64) {
        let g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |g| g.0 <= seen)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    /// Wait up to `timeout` for an urgent generation newer than `seen`.
    pub fn wait_urgent(&self, seen: u64, timeout: Duration) {
        let g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(g, timeout, |g| g.1 <= seen)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// The page for `which`, rendered from the current state.
    pub fn page(&self, which: &Which) -> String {
        let st = self.read();
        view::page(&st, &self.settings, which)
    }

    /// What an event stream sends: the page's view as JSON.
    pub fn view_json(&self, which: &Which) -> Arc<String> {
        if let Which::Ip(_) = which {
            let st = self.read();
            return Arc::new(view::json(&st, &self.settings, which));
        }
        let st = self.read();
        let mut cache = self.site_json.lock().unwrap_or_else(|e| e.into_inner());
        match &*cache {
            Some((gen, json)) if *gen == st.gen => json.clone(),
            _ => {
                let json = Arc::new(view::json(&st, &self.settings, which));
                *cache = Some((st.gen, json.clone()));
                json
            }
        }
    }

    /// `/api/state`: the snapshot as `status.json` has it, plus the per-minute history.
    pub fn state_json(&self) -> String {
        let st = self.read();
        let v = serde_json::json!({
            "status": &*st.snapshot,
            "history_minutes": st.history,
        });
        v.to_string()
    }

    /// `/api/events`: the recent events (oldest first), those at or after `since` if given.
    pub fn events_json(&self, since: Option<i64>) -> String {
        let st = self.read();
        let events: Vec<_> = st
            .snapshot
            .recent
            .iter()
            .filter(|e| since.is_none_or(|s| e.at >= s))
            .collect();
        serde_json::to_string(&events).unwrap_or_else(|_| "[]".into())
    }

    /// `/api/ip/IP`: its active ban (or null) and the decision behind its last ban (or null).
    pub fn ip_json(&self, ip: &IpAddr) -> String {
        let st = self.read();
        let ban = st.snapshot.bans.iter().find(|b| b.ip == *ip);
        let decision = st.decisions.get(ip);
        serde_json::json!({ "ip": ip, "ban": ban, "decision": decision.map(|d| &**d) }).to_string()
    }

    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
    }
}

/// Fold the snapshot's requests per second into per-minute points (the current minute and the
/// one before, which may have gained its last seconds since the previous tick).
fn record_minutes(history: &mut VecDeque<Minute>, s: &Snapshot, window_secs: u32) {
    if s.now == 0 {
        return;
    }
    let w = f64::from(window_secs.max(1));
    let current = s.now - s.now.rem_euclid(60);
    let client_limit = s
        .limits
        .iter()
        .find(|l| l.window == crate::detect::Window::Minute)
        .map(|l| l.limit * w / f64::from(l.secs.max(1)));
    for m in [current - 60, current] {
        if m + 60 <= s.started {
            continue;
        }
        let (mut requests, mut peak) = (0u64, 0u32);
        for (t, n) in s.per_second.iter().rev() {
            if *t < m {
                break;
            }
            if *t < m + 60 {
                requests += u64::from(*n);
                peak = peak.max(*n);
            }
        }
        let point = Minute {
            t: m,
            requests,
            peak,
            site_mean: s.site.map(|b| b.mean),
            site_std: s.site.map(|b| b.std),
            site_limit: s.site_limit,
            client_limit,
        };
        let newest = history.back().map(|p| p.t);
        match history.iter_mut().rev().find(|p| p.t == m) {
            // The minute before keeps the levels it had.
            Some(p) if m < current => {
                p.requests = requests;
                p.peak = peak;
            }
            Some(p) => *p = point,
            None if newest.is_none_or(|t| t < m) => history.push_back(point),
            None => {}
        }
    }
    while history.len() > HISTORY_MINUTES {
        history.pop_front();
    }
}

/// An empty state (tests of the views).
#[cfg(test)]
pub fn tests_state() -> HubState {
    HubState::default()
}

enum Msg {
    /// A note, with the wall time (ms) it was published.
    Note(Note, i64),
    Snapshot(Box<Snapshot>),
}

/// The live view as a sink: forwards notes and snapshots to the hub's thread, and runs the
/// HTTP server.
pub struct DashboardSink {
    tx: Option<SyncSender<Msg>>,
    hub: Arc<Hub>,
    worker: Option<JoinHandle<()>>,
    server: super::Server,
}

impl DashboardSink {
    /// Start the hub's thread and the server on `listen`; returns the sink and the address
    /// served (the real port when 0 was asked).
    pub fn start(
        listen: &super::Listen,
        settings: DetectSettings,
    ) -> Result<(DashboardSink, std::net::SocketAddr), String> {
        let hub = Hub::new(settings);
        let server = super::start(listen, hub.clone())?;
        let addr = server.addr;
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let h = hub.clone();
        let worker = std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || run_hub(&h, rx))
            .map_err(|e| format!("cannot start the dashboard thread: {e}"))?;
        Ok((
            DashboardSink {
                tx: Some(tx),
                hub,
                worker: Some(worker),
                server,
            },
            addr,
        ))
    }

    fn send(&self, msg: Msg) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(msg) {
                self.hub.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn run_hub(hub: &Hub, rx: Receiver<Msg>) {
    for msg in rx {
        hub.apply(msg);
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Sink for DashboardSink {
    fn name(&self) -> &'static str {
        "dashboard"
    }

    fn note(&mut self, note: &Note, _now: i64) {
        if let Note::Core(Event::BaselineUpdate { .. }) = note {
            return; // the snapshot carries the baselines
        }
        self.send(Msg::Note(note.clone(), wall_ms()));
    }

    fn snapshot(&mut self, snapshot: &Snapshot) {
        self.send(Msg::Snapshot(Box::new(snapshot.clone())));
    }

    fn shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.tx = None;
        crate::emit::sink::join_within(self.worker.take(), grace);
        self.server
            .stop(deadline.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(now: i64, per_second: Vec<(i64, u32)>) -> Snapshot {
        Snapshot {
            started: 6000,
            now,
            per_second,
            ..Default::default()
        }
    }

    #[test]
    fn minutes_fold_seconds_and_keep_a_day() {
        let mut h = VecDeque::new();
        // 10 requests in each of the first 90 seconds.
        let per: Vec<(i64, u32)> = (6000..6090).map(|t| (t, 10)).collect();
        record_minutes(&mut h, &snap(6030, per[..31].to_vec()), 60);
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].t, h[0].requests), (6000, 310));
        // Next tick, in the next minute: the first minute is completed, the second started.
        record_minutes(&mut h, &snap(6089, per.clone()), 60);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].requests, h[0].peak), (600, 10));
        assert_eq!((h[1].t, h[1].requests), (6060, 300));
        // Bounded: a day later there are at most 1440 minutes.
        for m in 0..2000 {
            let t = 6120 + m * 60;
            record_minutes(&mut h, &snap(t, vec![(t, 1)]), 60);
        }
        assert_eq!(h.len(), HISTORY_MINUTES);
        assert!(h.iter().zip(h.iter().skip(1)).all(|(a, b)| a.t < b.t));
    }

    #[test]
    fn streams_wake_on_a_snapshot_and_a_ban_makes_it_urgent() {
        let hub = Hub::new(DetectSettings::default());
        assert_eq!(hub.wait(0, Duration::from_millis(1)), (0, 0));
        hub.apply(Msg::Snapshot(Box::new(snap(100, vec![]))));
        assert_eq!(hub.wait(0, Duration::from_millis(1)), (1, 0));
        hub.apply(Msg::Note(
            Note::Input {
                name: "a".into(),
                note: "b".into(),
            },
            0,
        ));
        hub.apply(Msg::Snapshot(Box::new(snap(101, vec![]))));
        assert_eq!(hub.wait(1, Duration::from_millis(1)), (2, 2));
    }

    #[test]
    fn crowdsec_pushes_are_counted_for_metrics() {
        let hub = Hub::new(DetectSettings::default());
        hub.apply(Msg::Snapshot(Box::new(snap(100, vec![]))));
        assert!(!hub.metrics.encode().contains("bouncer_crowdsec"));
        let note = |n: CrowdsecNote| Msg::Note(Note::Crowdsec(n), 0);
        hub.apply(note(CrowdsecNote::Failing {
            error: "cannot connect".into(),
            pending: 2,
        }));
        hub.apply(Msg::Snapshot(Box::new(snap(101, vec![]))));
        assert!(hub
            .metrics
            .encode()
            .contains("bouncer_crowdsec_failing 1.0\n"));
        hub.apply(note(CrowdsecNote::Recovered { pending: 2 }));
        for skipped in [false, true, false] {
            hub.apply(note(CrowdsecNote::Delivered {
                what: "ban 192.0.2.1".into(),
                skipped,
                ms: 3,
            }));
        }
        hub.apply(note(CrowdsecNote::Dropped {
            what: "ban 192.0.2.2".into(),
        }));
        hub.apply(Msg::Snapshot(Box::new(snap(102, vec![]))));
        let m = hub.metrics.encode();
        for line in [
            "bouncer_crowdsec_pushes_total{outcome=\"delivered\"} 2\n",
            "bouncer_crowdsec_pushes_total{outcome=\"skipped\"} 1\n",
            "bouncer_crowdsec_pushes_total{outcome=\"dropped\"} 1\n",
            "bouncer_crowdsec_failing 0.0\n",
        ] {
            assert!(m.contains(line), "{line:?} not in:\n{m}");
        }
    }
}
