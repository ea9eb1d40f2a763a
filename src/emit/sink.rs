//! Sinks: where `follow`'s loop sends what happens. The loop publishes [`Note`]s (the live
//! core's events, and news from the sinks' own workers) and, on every tick, a [`Snapshot`] of its
//! state; each output — console, audit log, Slack, firewall, status file, metrics, dashboard — is
//! one [`Sink`] and implements only what it needs (the methods default to doing nothing, like
//! ripgrep's `Sink`). A new output is a new sink, not a new parameter of the loop.
//!
//! Invariant: the loop never waits on a sink. A sink that talks to the outside world (the
//! kernel, Slack, a browser) hands the work to a thread of its own and returns at once; what
//! that thread learns comes back as notes through [`Sink::take_notes`].

use super::snapshot::Snapshot;
use crate::detect::live::Event;
use serde::Serialize;
use std::net::IpAddr;
use std::time::Duration;

/// Something the sinks hear about.
#[derive(Debug, Clone)]
pub enum Note {
    /// An event of the live core: a ban, an unban, a site-wide alert, a baseline update.
    Core(Event),
    /// News from the firewall worker.
    Firewall(FirewallNote),
    /// News from the Slack sender.
    Slack(SlackNote),
    /// News from the CrowdSec LAPI sender.
    Crowdsec(CrowdsecNote),
    /// News about an input ("rotated: reading the new file", "cannot read: …").
    Input { name: String, note: String },
    /// The state could not be saved (full disk…): enforcement goes on from memory.
    StateSave { error: Option<String> },
}

/// What the firewall worker learned from the kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FirewallNote {
    /// These bans are in the kernel now (and these were lifted).
    Applied {
        added: Vec<IpAddr>,
        removed: Vec<IpAddr>,
        banned: usize,
    },
    /// Bans the kernel had lost (a flush, an admin) were put back.
    Repaired { restored: usize },
    /// The kernel does not hold what bouncer believes is banned: one family failed.
    Failed {
        family: String,
        error: String,
        missing: usize,
    },
    /// A family that failed works again.
    Recovered { family: String },
    /// Where the ban sets are hooked from (INPUT, DOCKER-USER…), when it changes.
    Hooks { hooks: String },
}

/// What the Slack sender learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackNote {
    pub error: String,
    pub failed: u64,
    pub dropped: u64,
}

/// What the CrowdSec sender learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CrowdsecNote {
    /// A push went through (`skipped`: a ban that had expired before it could be sent).
    Delivered {
        what: String,
        skipped: bool,
        ms: u64,
    },
    /// The LAPI does not take pushes; they wait in the queue (and the state).
    Failing { error: String, pending: usize },
    /// It takes them again.
    Recovered { pending: usize },
    /// A push was given up: the queue was full, or the LAPI refused it for good.
    Dropped { what: String },
}

pub trait Sink: Send {
    fn name(&self) -> &'static str;
    /// Requests as the loop reads them (after the detector), for outputs made from the traffic
    /// itself (Parquet aggregates). Called once per batch; it must stay cheap: no I/O here.
    fn requests(&mut self, _requests: &[crate::parse::Request]) {}
    /// A note, at wall time `now` (UNIX seconds).
    fn note(&mut self, _note: &Note, _now: i64) {}
    /// Add what this sink knows to the snapshot before it is published (the firewall its
    /// kernel state, Slack its counters).
    fn report(&self, _snapshot: &mut Snapshot) {}
    /// The loop's state after a tick.
    fn snapshot(&mut self, _snapshot: &Snapshot) {}
    /// Notes from this sink's own worker since the last call.
    fn take_notes(&mut self) -> Vec<Note> {
        Vec::new()
    }
    /// Stop: flush queues and join threads, within `grace`.
    fn shutdown(&mut self, _grace: Duration) {}
}

/// All sinks of a run, published to in order.
#[derive(Default)]
pub struct Sinks(pub Vec<Box<dyn Sink>>);

impl Sinks {
    pub fn push(&mut self, sink: impl Sink + 'static) {
        self.0.push(Box::new(sink));
    }

    /// Hand a batch of requests to every sink.
    pub fn requests(&mut self, requests: &[crate::parse::Request]) {
        for s in &mut self.0 {
            s.requests(requests);
        }
    }

    /// Publish notes to every sink.
    pub fn publish(&mut self, notes: &[Note], now: i64) {
        for n in notes {
            for s in &mut self.0 {
                s.note(n, now);
            }
        }
    }

    /// Notes the sinks' workers produced since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        self.0.iter_mut().flat_map(|s| s.take_notes()).collect()
    }

    /// Let every sink add to the snapshot, then publish it.
    pub fn snapshot(&mut self, mut snapshot: Snapshot) -> Snapshot {
        for s in &self.0 {
            s.report(&mut snapshot);
        }
        for s in &mut self.0 {
            s.snapshot(&snapshot);
        }
        snapshot
    }

    pub fn shutdown(&mut self, grace: Duration) {
        for s in &mut self.0 {
            s.shutdown(grace);
        }
    }
}

/// Join a sink's worker thread if it ends within `grace` (it was told to stop); otherwise leave
/// it (a request stuck in a timeout must not hold up the exit).
pub fn join_within<T>(worker: Option<std::thread::JoinHandle<T>>, grace: Duration) {
    let Some(w) = worker else { return };
    let deadline = std::time::Instant::now() + grace;
    while !w.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if w.is_finished() {
        let _ = w.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counting {
        notes: usize,
        snapshots: usize,
    }

    impl Sink for std::sync::Arc<std::sync::Mutex<Counting>> {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn note(&mut self, _: &Note, _: i64) {
            self.lock().unwrap().notes += 1;
        }
        fn snapshot(&mut self, _: &Snapshot) {
            self.lock().unwrap().snapshots += 1;
        }
    }

    struct Reporting;
    impl Sink for Reporting {
        fn name(&self) -> &'static str {
            "reporting"
        }
        fn report(&self, s: &mut Snapshot) {
            s.lines = 42;
        }
    }

    #[test]
    fn every_sink_hears_every_note_and_sees_what_others_reported() {
        let c = std::sync::Arc::new(std::sync::Mutex::new(Counting::default()));
        let mut sinks = Sinks::default();
        sinks.push(Reporting);
        sinks.push(c.clone());
        let n = Note::Input {
            name: "a".into(),
            note: "b".into(),
        };
        sinks.publish(&[n.clone(), n], 0);
        let snap = sinks.snapshot(Snapshot::default());
        assert_eq!(snap.lines, 42);
        let c = c.lock().unwrap();
        assert_eq!((c.notes, c.snapshots), (2, 1));
    }
}
