//! The live half of detection, shared by `follow` and its replay mode: the same [`Detector`] as
//! `analyze`, plus the ban schedule, driven by an injected **wall** clock.
//!
//! Requests go to the detector as they arrive: it checks a client after each request, so a flood
//! is banned on the request that crosses the limit, and a line that arrives up to the tolerance
//! late is counted in its own second (older ones are counted as late, never re-timed). A
//! recorded log (`--replay`) arrives in `analyze`'s order (the same ingest, sorted when needed),
//! so it decides exactly what `analyze` decides. While the log is quiet, log time is estimated as
//! `newest log time + wall time since it arrived`, so a tick closes seconds and a site-wide alert
//! never waits for the next request.
//!
//! No I/O here: [`Live::tick`] returns [`Event`]s; `cmd::follow` turns them into firewall
//! changes, Slack messages and audit lines.

use super::bans::{ActiveBan, BanBook};
use super::{Action, BaselineSnapshot, Decision, Detector};
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
    /// Newest log time seen, and the wall time (milliseconds) it arrived.
    newest: Option<(i64, i64)>,
    /// Decisions already turned into events.
    handled: usize,
    last_baselines: (Option<BaselineSnapshot>, Option<BaselineSnapshot>, bool),
}

/// What `follow` saves of the live core apart from the bans (which it saves more often): the
/// detector and the clock. Serialised by reference, so a save never copies the detector.
#[derive(Serialize)]
pub struct CoreRef<'a> {
    detector: &'a Detector,
    newest: Option<(i64, i64)>,
    handled: usize,
    last_baselines: &'a (Option<BaselineSnapshot>, Option<BaselineSnapshot>, bool),
}

/// [`CoreRef`] read back.
#[derive(Deserialize)]
pub struct Core {
    pub detector: Detector,
    newest: Option<(i64, i64)>,
    handled: usize,
    last_baselines: (Option<BaselineSnapshot>, Option<BaselineSnapshot>, bool),
}

/// Timeline points `follow` keeps (a day of minutes): `analyze` needs them all for its report,
/// a live core only recent ones.
const LIVE_TIMELINE: usize = 1440;

impl Live {
    /// The detector and clock, to save.
    pub fn core(&self) -> CoreRef<'_> {
        CoreRef {
            detector: &self.detector,
            newest: self.newest,
            handled: self.handled,
            last_baselines: &self.last_baselines,
        }
    }

    /// A live core from a saved [`Core`] and the bans (saved apart).
    pub fn from_core(core: Core, bans: BanBook) -> Live {
        let handled = core.handled.min(core.detector.decisions().len());
        let mut detector = core.detector;
        // A ban lifted while follow was stopped (`bouncer unban`) ends its episode here.
        detector.end_episodes_unless(|ip| bans.is_banned(ip));
        Live {
            detector,
            bans,
            newest: core.newest,
            handled,
            last_baselines: core.last_baselines,
        }
    }

    /// The core and the bans, apart (an older state's `Live` split for saving).
    pub fn into_parts(self) -> (Core, BanBook) {
        (
            Core {
                detector: self.detector,
                newest: self.newest,
                handled: self.handled,
                last_baselines: self.last_baselines,
            },
            self.bans,
        )
    }

    /// Drop what `follow` has published and will not need again: decisions already turned into
    /// events, timeline points older than a day. (`--replay` keeps everything: it prints it.)
    pub fn forget_published(&mut self) {
        self.detector.forget_decisions(self.handled);
        self.detector.keep_timeline(LIVE_TIMELINE);
        self.handled = 0;
    }

    /// `tolerance_secs`: how late a line may arrive and still count in its own second.
    pub fn new(mut detector: Detector, bans: BanBook, tolerance_secs: i64) -> Live {
        detector.set_tolerance(tolerance_secs);
        Live {
            detector,
            bans,
            newest: None,
            handled: 0,
            last_baselines: (None, None, false),
        }
    }

    /// Estimated log time at wall time `now_ms`: the newest log second plus the whole seconds
    /// of wall time since it arrived.
    fn log_now(&self, now_ms: i64) -> Option<i64> {
        self.newest
            .map(|(log, wall)| log + (now_ms - wall).max(0) / 1000)
    }

    /// One request, at wall time `now_ms`.
    pub fn push(&mut self, req: &Request, now_ms: i64) {
        if self.newest.is_none_or(|(log, _)| req.time > log) {
            self.newest = Some((req.time, now_ms));
        }
        self.detector.observe(req);
    }

    /// A wall-clock tick at `now_ms`: close the seconds the log has left behind, expire bans,
    /// and report what happened.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Event> {
        let now = now_ms.div_euclid(1000);
        if let Some(log_now) = self.log_now(now_ms) {
            self.detector.advance_to(log_now);
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
}

#[cfg(test)]
mod tests {
    use super::super::bans::Schedule;
    use super::super::DetectSettings;
    use super::*;

    const LIVE: i64 = 60;

    fn req(ip: &str, t: i64) -> Request {
        Request::new(ip.parse().unwrap(), t, "GET", "/", 200, 0, "")
    }

    fn ms(t: i64) -> i64 {
        t * 1000
    }

    fn live() -> Live {
        let s = DetectSettings {
            warmup_secs: 60,
            ..Default::default()
        };
        Live::new(
            Detector::new(s),
            BanBook::new(Schedule::parse("10s,30s,permanent").unwrap(), 3600),
            LIVE,
        )
    }

    /// Three minutes of ten normal clients (one request each per 10 s); returns its start.
    fn background(l: &mut Live) -> i64 {
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        for t in t0..t0 + 180 {
            for c in 0..10 {
                if (t + c) % 10 == 0 {
                    l.push(&req(&format!("198.51.100.{c}"), t), ms(t));
                }
            }
            l.tick(ms(t));
        }
        t0
    }

    /// Baselines are announced as soon as they are learned, marked not in force until warm-up
    /// ends, and announced again when they come into force.
    #[test]
    fn baseline_updates_say_when_they_come_into_force() {
        let s = DetectSettings {
            warmup_secs: 300,
            recompute_secs: 60,
            ..Default::default()
        };
        let mut l = Live::new(
            Detector::new(s),
            BanBook::new(Schedule::parse("10s").unwrap(), 3600),
            LIVE,
        );
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        let mut updates = Vec::new();
        for t in t0..t0 + 600 {
            for c in 0..10 {
                if (t + c) % 5 == 0 {
                    l.push(&req(&format!("198.51.100.{c}"), t), ms(t));
                }
            }
            for e in l.tick(ms(t)) {
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

    /// A flood is banned on the tick right after the request that crosses the limit — within
    /// its first second — and the fake clock expires the ban on schedule.
    #[test]
    fn a_flood_is_banned_within_its_first_second_and_expires_on_schedule() {
        let mut l = live();
        let t0 = background(&mut l);
        let flood_at = t0 + 180;
        let mut banned_ms = None;
        // 100 requests a second, arriving 10 ms apart; a tick every 200 ms.
        for i in 0..300i64 {
            let now = ms(flood_at) + i * 10;
            l.push(&req("203.0.113.9", flood_at + i / 100), now);
            if i % 20 == 19 {
                for e in l.tick(now) {
                    if let Event::Ban { ip, ban, decision } = e {
                        assert_eq!(ip.to_string(), "203.0.113.9");
                        assert_eq!(decision.window, crate::detect::Window::Short);
                        assert_eq!(ban.until, Some(now / 1000 + 10));
                        banned_ms.get_or_insert(now);
                    }
                }
            }
        }
        let banned_ms = banned_ms.expect("banned");
        assert!(
            banned_ms - ms(flood_at) <= 800,
            "after {} ms",
            banned_ms - ms(flood_at)
        );
        let banned_at = banned_ms / 1000;
        let unbans: Vec<_> = (banned_at + 1..banned_at + 12)
            .flat_map(|now| l.tick(ms(now)))
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
        for _ in 0..100 {
            l.push(&req("203.0.113.9", again), ms(again));
        }
        let strike2 = l.tick(ms(again)).into_iter().find_map(|e| match e {
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
        // 100 requests in one second, then stragglers every second until the 10 s ban ends.
        for _ in 0..100 {
            l.push(&req("203.0.113.9", now), ms(now));
        }
        while now < t0 + 180 + 14 {
            now += 1;
            for _ in 0..5 {
                l.push(&req("203.0.113.9", now), ms(now));
            }
            for e in l.tick(ms(now)) {
                bans += matches!(e, Event::Ban { .. }) as u32;
            }
        }
        assert!(!l.bans.is_banned(&ip), "the 10 s ban has expired");
        assert_eq!(
            bans, 1,
            "no second ban from the traffic logged during the first"
        );
    }

    /// While the log is quiet, ticks move log time on, so periods close and the site-wide levels
    /// keep up without a new request.
    #[test]
    fn quiet_log_time_follows_the_wall_clock() {
        let mut l = live();
        let t0 = background(&mut l);
        let before = l.detector.timeline().len();
        for s in 1..=120 {
            l.tick(ms(t0 + 180 + s));
        }
        assert!(l.detector.timeline().len() > before);
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
