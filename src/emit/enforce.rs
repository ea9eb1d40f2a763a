//! The firewall as a sink: `follow`'s bans go into a *desired* set; a worker thread makes the
//! kernel hold it ([`Enforcer::reconcile`]) on every change and every `reconcile_secs`, so a
//! slow `iptables` delays only the worker, a flushed firewall is repaired, and nothing is lost
//! (the desired set is a state, not a queue).
//!
//! What the kernel really holds comes back as notes: a ban is announced as enforced only once a
//! reconcile put it there ([`FirewallNote::Applied`]), and whenever the kernel does not hold what
//! bouncer believes is banned, a [`FirewallNote::Failed`] says so (per family, once per new
//! error) — to stderr, the audit log, Slack and the status. In a dry run the worker drives a
//! [`Recording`] firewall: the same bookkeeping, nothing touched.

use super::firewall::{Enforcer, Family, Firewall};
use super::sink::{FirewallNote, Note, Sink};
use super::snapshot::{FirewallStatus, Snapshot};
use crate::detect::live::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the worker shares with the sink.
#[derive(Debug, Default)]
struct Shared {
    desired: BTreeSet<IpAddr>,
    /// Wanted bans the kernel held after the last reconcile.
    confirmed: BTreeSet<IpAddr>,
    /// Entries bouncer added and still owns (saved in the state for the next run).
    owned: BTreeSet<IpAddr>,
    status: FirewallStatus,
}

pub struct FirewallSink {
    shared: Arc<Mutex<Shared>>,
    wake: Option<SyncSender<()>>,
    notes: Receiver<Note>,
    worker: Option<JoinHandle<()>>,
}

impl FirewallSink {
    /// Start the worker with `desired` (the bans restored from the state) already wanted.
    pub fn start<F: Firewall + 'static>(
        enforcer: Enforcer<F>,
        desired: BTreeSet<IpAddr>,
        every: Duration,
    ) -> std::io::Result<FirewallSink> {
        let shared = Arc::new(Mutex::new(Shared {
            desired,
            owned: enforcer.owned().clone(),
            status: FirewallStatus {
                describe: enforcer.describe(),
                ..Default::default()
            },
            ..Default::default()
        }));
        let (wake_tx, wake_rx) = sync_channel::<()>(1);
        let (notes_tx, notes_rx) = channel::<Note>();
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("firewall".into())
                .spawn(move || work(enforcer, shared, wake_rx, notes_tx, every))?
        };
        Ok(FirewallSink {
            shared,
            wake: Some(wake_tx),
            notes: notes_rx,
            worker: Some(worker),
        })
    }

    /// Entries bouncer added and owns (to save in the state).
    pub fn owned(&self) -> BTreeSet<IpAddr> {
        self.shared.lock().expect("firewall state").owned.clone()
    }

    /// A handle that reads the same (for the state saver, which outlives no sink).
    pub fn owned_handle(&self) -> OwnedHandle {
        OwnedHandle(self.shared.clone())
    }

    fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.try_send(()); // full: a wake-up is already pending
        }
    }
}

/// Reads the entries the firewall worker owns.
#[derive(Clone)]
pub struct OwnedHandle(Arc<Mutex<Shared>>);

impl OwnedHandle {
    pub fn get(&self) -> BTreeSet<IpAddr> {
        self.0.lock().expect("firewall state").owned.clone()
    }
}

impl Sink for FirewallSink {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn note(&mut self, note: &Note, _now: i64) {
        let changed = {
            let mut s = self.shared.lock().expect("firewall state");
            match note {
                Note::Core(Event::Ban { ip, .. }) => s.desired.insert(*ip),
                Note::Core(Event::Unban { ip, .. }) => s.desired.remove(ip),
                _ => false,
            }
        };
        if changed {
            self.wake();
        }
    }

    fn report(&self, snapshot: &mut Snapshot) {
        let s = self.shared.lock().expect("firewall state");
        snapshot.firewall = Some(s.status.clone());
        for b in &mut snapshot.bans {
            b.enforced = s.confirmed.contains(&b.ip);
        }
    }

    fn take_notes(&mut self) -> Vec<Note> {
        self.notes.try_iter().collect()
    }

    fn shutdown(&mut self, grace: Duration) {
        // The worker applies the last changes, then stops.
        drop(self.wake.take());
        super::sink::join_within(self.worker.take(), grace);
    }
}

fn work<F: Firewall>(
    mut fw: Enforcer<F>,
    shared: Arc<Mutex<Shared>>,
    wake: Receiver<()>,
    notes: Sender<Note>,
    every: Duration,
) {
    let mut hooks = String::new();
    let mut failing: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let stop = match wake.recv_timeout(every) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let (want, before) = {
            let s = shared.lock().expect("firewall state");
            (s.desired.clone(), s.confirmed.clone())
        };
        let outcome = fw.reconcile(&want);
        let failed: BTreeSet<Family> = outcome.errors().map(|(f, _)| f).collect();
        let confirmed: BTreeSet<IpAddr> = want
            .iter()
            .filter(|ip| !failed.contains(&Family::of(ip)))
            .copied()
            .collect();
        let now_hooks = fw.hooks().to_string();
        let mut out = Vec::new();
        if now_hooks != hooks {
            out.push(FirewallNote::Hooks {
                hooks: now_hooks.clone(),
            });
            hooks = now_hooks.clone();
        }
        let added: Vec<IpAddr> = confirmed.difference(&before).copied().collect();
        let removed: Vec<IpAddr> = before
            .iter()
            .filter(|ip| !want.contains(ip))
            .copied()
            .collect();
        // Wanted, confirmed before, and added again: the kernel had lost them.
        let restored = outcome.added().saturating_sub(added.len());
        if !added.is_empty() || !removed.is_empty() {
            out.push(FirewallNote::Applied {
                added,
                removed,
                banned: confirmed.len(),
            });
        }
        if restored > 0 {
            out.push(FirewallNote::Repaired { restored });
        }
        for family in Family::BOTH {
            let key = family.to_string();
            let errors = &outcome.get(family).errors;
            match (errors.is_empty(), failing.get(&key)) {
                (false, last) => {
                    let error = errors.join("; ");
                    if last != Some(&error) {
                        let missing = want.iter().filter(|ip| Family::of(ip) == family).count();
                        out.push(FirewallNote::Failed {
                            family: key.clone(),
                            error: error.clone(),
                            missing,
                        });
                        failing.insert(key, error);
                    }
                }
                (true, Some(_)) => {
                    failing.remove(&key);
                    out.push(FirewallNote::Recovered { family: key });
                }
                (true, None) => {}
            }
        }
        {
            let mut s = shared.lock().expect("firewall state");
            s.status.hooks = hooks.clone();
            s.status.wanted = want.len();
            s.status.in_kernel = confirmed.len();
            s.status.errors = failing
                .iter()
                .map(|(f, e)| (f.clone(), e.clone()))
                .collect();
            s.status.repairs += restored as u64;
            s.status.last_reconcile = Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            );
            s.confirmed = confirmed;
            s.owned = fw.owned().clone();
        }
        for n in out {
            if notes.send(Note::Firewall(n)).is_err() {
                return;
            }
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::firewall::{HookPlan, Ownership, Recording};
    use super::*;
    use crate::detect::bans::ActiveBan;

    fn ban(ip: &str) -> Note {
        let decision = crate::detect::Decision {
            action: crate::detect::Action::Ban,
            ip: Some(ip.parse().unwrap()),
            at: 0,
            rules: vec![],
            reason: String::new(),
            window: crate::detect::Window::Short,
            window_secs: 10,
            requests_in_window: 0,
            rate_per_sec: 0.0,
            error_share: 0.0,
            baseline: crate::detect::BaselineSnapshot {
                mean: 0.0,
                std: 0.0,
                mean_learned: 0.0,
                std_learned: 0.0,
                error_share: 0.0,
                source: crate::detect::BaselineSource::Rolling,
                samples: 0,
                level: 0.0,
                quantile: 0.99,
            },
            z: 0.0,
            multiplier: 0.0,
            z_threshold: 0.0,
            multiplier_threshold: 0.0,
            measured: 0.0,
            limit: 0.0,
            floor: 0.0,
            decided_by: Default::default(),
            checks: vec![],
            requests_total: 0,
            first_seen: 0,
            last_seen: 0,
            top_paths: vec![],
            status_mix: Default::default(),
            user_agents: vec![],
            top_ips: vec![],
            duration_secs: 0,
        };
        Note::Core(Event::Ban {
            ip: ip.parse().unwrap(),
            ban: ActiveBan {
                since: 0,
                until: None,
                strike: 1,
                reason: String::new(),
            },
            decision: Box::new(decision),
        })
    }

    fn wait_notes(sink: &mut FirewallSink, want: usize) -> Vec<Note> {
        let mut got = Vec::new();
        for _ in 0..200 {
            got.extend(sink.take_notes());
            if got.len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        got
    }

    /// A ban is announced as applied only after the reconcile that put it in the kernel; the
    /// sink adds what the kernel holds to the snapshot.
    #[test]
    fn bans_are_applied_by_the_worker_and_reported() {
        let fw = Enforcer::new(Recording::default(), HookPlan::Auto, Ownership::Ours);
        let mut sink = FirewallSink::start(fw, BTreeSet::new(), Duration::from_secs(3600)).unwrap();
        sink.note(&ban("203.0.113.9"), 0);
        let notes = wait_notes(&mut sink, 2);
        let applied = notes.iter().find_map(|n| match n {
            Note::Firewall(FirewallNote::Applied { added, banned, .. }) => Some((added, banned)),
            _ => None,
        });
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(applied, Some((&vec![ip], &1)), "{notes:?}");
        let mut snap = Snapshot::default();
        sink.report(&mut snap);
        assert_eq!(snap.firewall.unwrap().in_kernel, 1);
        sink.shutdown(Duration::from_secs(1));
    }
}
