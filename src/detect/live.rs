//! The live half of detection, shared by `follow` and its replay mode: the same [`Detector`] as
//! `analyze`, plus the ban schedule, driven by an injected **wall** clock.
//!
//! Requests enter a reorder buffer with the same release rule as `analyze` (a request leaves when
//! it is `reorder_secs` older than the newest one seen), so a log replayed with a clock that follows
//! log time decides exactly what `analyze` decides. While the log is quiet, log time is estimated
//! as `newest log time + wall time since it arrived`, so a tick closes seconds and a ban never
//! waits for the next request.
//!
//! No I/O here: [`Live::tick`] returns [`Event`]s; `cmd::follow` turns them into firewall
//! changes, Slack messages and audit lines.

use super::bans::{ActiveBan, BanBook};
use super::{Action, BaselineSnapshot, Decision, Detector};
use crate::ingest::Reorder;
use crate::parse::Request;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What happened during a tick, for the sinks.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Ban {
        ip: IpAddr,
        ban: ActiveBan,
        decision: Box<Decision>,
    },
    Unban {
        ip: IpAddr,
        ban: ActiveBan,
        why: UnbanReason,
    },
    GlobalAnomaly {
        decision: Box<Decision>,
    },
    /// The baselines changed, or came into force (warm-up over: the rules now use them).
    BaselineUpdate {
        ip: Option<BaselineSnapshot>,
        site: Option<BaselineSnapshot>,
        in_force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnbanReason {
    Expired,
    Manual,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Live {
    pub detector: Detector,
    pub bans: BanBook,
    reorder_secs: i64,
    buffer: Reorder,
    /// Newest log time seen, and the wall time it arrived.
    newest: Option<(i64, i64)>,
    /// Decisions already turned into events.
    handled: usize,
    last_baselines: (Option<BaselineSnapshot>, Option<BaselineSnapshot>, bool),
}

impl Live {
    pub fn new(detector: Detector, bans: BanBook, reorder_secs: i64) -> Live {
        Live {
            detector,
            bans,
            reorder_secs,
            buffer: Reorder::default(),
            newest: None,
            handled: 0,
            last_baselines: (None, None, false),
        }
    }

    /// Estimated log time at wall time `now`.
    fn log_now(&self, now: i64) -> Option<i64> {
        self.newest.map(|(log, wall)| log + (now - wall).max(0))
    }

    /// One request, at wall time `now`. Releases whatever the reorder rule allows, as `analyze`
    /// does after every line.
    pub fn push(&mut self, req: Request, now: i64) {
        if self.newest.is_none_or(|(log, _)| req.time > log) {
            self.newest = Some((req.time, now));
        }
        self.buffer.push(req);
        let newest = self.newest.map(|n| n.0);
        self.release(newest);
    }

    fn release(&mut self, log_now: Option<i64>) {
        let Some(log_now) = log_now else { return };
        while let Some(top) = self.buffer.peek_time() {
            if top > log_now - self.reorder_secs {
                break;
            }
            let req = self.buffer.pop().expect("peeked");
            self.detector.observe(&req);
        }
    }

    /// A wall-clock tick: release and evaluate up to the estimated log time, expire bans, and
    /// report what happened.
    pub fn tick(&mut self, now: i64) -> Vec<Event> {
        if let Some(log_now) = self.log_now(now) {
            self.release(Some(log_now));
            self.detector.advance_to(log_now - self.reorder_secs);
        }
        let mut events = Vec::new();
        for d in &self.detector.decisions()[self.handled..] {
            match (d.action, d.ip) {
                (Action::Ban, Some(ip)) => {
                    if let Some(ban) = self.bans.ban(ip, now, d.reason.clone()) {
                        events.push(Event::Ban {
                            ip,
                            ban,
                            decision: Box::new(d.clone()),
                        });
                    }
                }
                _ => events.push(Event::GlobalAnomaly {
                    decision: Box::new(d.clone()),
                }),
            }
        }
        self.handled = self.detector.decisions().len();
        for (ip, ban) in self.bans.expire(now) {
            // A new burst after the ban is a new episode: it must be able to ban again.
            self.detector.end_episode(&ip);
            events.push(Event::Unban {
                ip,
                ban,
                why: UnbanReason::Expired,
            });
        }
        self.bans.forget_decayed(now);
        let (ip, site) = self.detector.baselines();
        let now_baselines = (ip, site, self.detector.warmed_up_now());
        if now_baselines != self.last_baselines {
            self.last_baselines = now_baselines;
            events.push(Event::BaselineUpdate {
                ip,
                site,
                in_force: now_baselines.2,
            });
        }
        events
    }

    /// A manual unban (`bouncer unban`).
    pub fn unban(&mut self, ip: &IpAddr) -> Option<Event> {
        let ban = self.bans.unban(ip)?;
        self.detector.end_episode(ip);
        Some(Event::Unban {
            ip: *ip,
            ban,
            why: UnbanReason::Manual,
        })
    }

    pub fn unban_all(&mut self) -> Vec<Event> {
        let all = self.bans.unban_all();
        all.into_iter()
            .map(|(ip, ban)| {
                self.detector.end_episode(&ip);
                Event::Unban {
                    ip,
                    ban,
                    why: UnbanReason::Manual,
                }
            })
            .collect()
    }

    /// Requests waiting in the reorder buffer.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::bans::Schedule;
    use super::super::DetectSettings;
    use super::*;

    fn req(ip: &str, t: i64) -> Request {
        Request::new(ip.parse().unwrap(), t, "GET", "/", 200, 0, "")
    }

    fn live() -> Live {
        let s = DetectSettings {
            warmup_secs: 60,
            ..Default::default()
        };
        Live::new(
            Detector::new(s),
            BanBook::new(Schedule::parse("10s,30s,permanent").unwrap(), 3600),
            1,
        )
    }

    /// Three minutes of ten normal clients (one request each per 10 s); returns its start.
    fn background(l: &mut Live) -> i64 {
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        for t in t0..t0 + 180 {
            for c in 0..10 {
                if (t + c) % 10 == 0 {
                    l.push(req(&format!("198.51.100.{c}"), t), t);
                }
            }
            l.tick(t);
        }
        t0
    }

    /// Baselines are announced as soon as they are learned, marked not in force until warm-up
    /// ends, and announced again when they come into force.
    #[test]
    fn baseline_updates_say_when_they_come_into_force() {
        let s = DetectSettings {
            warmup_secs: 300,
            window_secs: 10,
            recompute_secs: 30,
            ..Default::default()
        };
        let mut l = Live::new(
            Detector::new(s),
            BanBook::new(Schedule::parse("10s").unwrap(), 3600),
            1,
        );
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        let mut updates = Vec::new();
        for t in t0..t0 + 600 {
            for c in 0..10 {
                if (t + c) % 5 == 0 {
                    l.push(req(&format!("198.51.100.{c}"), t), t);
                }
            }
            for e in l.tick(t) {
                if let Event::BaselineUpdate { ip, in_force, .. } = e {
                    updates.push((t - t0, ip.is_some(), in_force));
                }
            }
        }
        let first_in_force = updates
            .iter()
            .position(|u| u.2)
            .expect("in force by the end");
        assert!(first_in_force > 0, "learned before warm-up: {updates:?}");
        assert!(updates[..first_in_force]
            .iter()
            .all(|u| u.0 < 300 && u.1 && !u.2));
        assert!(updates[first_in_force..].iter().all(|u| u.0 >= 300 && u.2));
    }

    /// Background traffic, then a flood that stops dead: the tick alone must ban, and the fake
    /// clock expires the ban on schedule.
    #[test]
    fn ticks_ban_without_new_requests_and_expire_on_schedule() {
        let mut l = live();
        let t0 = background(&mut l);
        let flood_at = t0 + 180;
        for _ in 0..400 {
            l.push(req("203.0.113.9", flood_at), flood_at);
        }
        // No more lines. Wall time moves on; the estimated log time follows it.
        let mut banned_at = None;
        for now in flood_at..flood_at + 5 {
            for e in l.tick(now) {
                if let Event::Ban { ip, ban, .. } = e {
                    assert_eq!(ip.to_string(), "203.0.113.9");
                    assert_eq!(ban.until, Some(now + 10));
                    banned_at = Some(now);
                }
            }
        }
        let banned_at = banned_at.expect("banned on ticks alone");
        assert!(banned_at - flood_at <= 2, "within the reorder delay + 1 s");
        let unbans: Vec<_> = (banned_at + 1..banned_at + 12)
            .flat_map(|now| l.tick(now))
            .filter(|e| {
                matches!(
                    e,
                    Event::Unban {
                        why: UnbanReason::Expired,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(unbans.len(), 1);
        assert!(!l.bans.is_banned(&"203.0.113.9".parse().unwrap()));
        // A new flood after the ban is a new episode with strike 2.
        let again = banned_at + 20;
        for _ in 0..400 {
            l.push(req("203.0.113.9", again), again);
        }
        let strike2 = (again..again + 5)
            .flat_map(|now| l.tick(now))
            .find_map(|e| match e {
                Event::Ban { ban, .. } => Some(ban),
                _ => None,
            });
        assert_eq!(
            strike2.map(|b| (b.strike, b.until.map(|u| u - b.since))),
            Some((2, Some(30)))
        );
    }

    /// Regression (found by the end-to-end test): traffic logged while an IP was banned stayed in
    /// its window and re-banned it the second its ban expired.
    #[test]
    fn traffic_logged_during_a_ban_does_not_reban_at_unban() {
        let mut l = live();
        let t0 = background(&mut l);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let mut now = t0 + 180;
        let mut bans = 0;
        // 400 requests in one second, then stragglers every second until the 10 s ban ends.
        for _ in 0..400 {
            l.push(req("203.0.113.9", now), now);
        }
        while now < t0 + 180 + 14 {
            now += 1;
            l.push(req("203.0.113.9", now), now);
            for e in l.tick(now) {
                bans += matches!(e, Event::Ban { .. }) as u32;
            }
        }
        assert!(!l.bans.is_banned(&ip), "the 10 s ban has expired");
        assert_eq!(
            bans, 1,
            "no second ban from the traffic logged during the first"
        );
    }

    #[test]
    fn manual_unban_reports_and_allows_a_new_ban() {
        let mut l = live();
        l.bans.ban("203.0.113.1".parse().unwrap(), 10, "x".into());
        assert!(matches!(
            l.unban(&"203.0.113.1".parse().unwrap()),
            Some(Event::Unban {
                why: UnbanReason::Manual,
                ..
            })
        ));
        assert!(l.unban(&"203.0.113.1".parse().unwrap()).is_none());
    }
}
