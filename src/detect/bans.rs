//! The ban schedule: who is banned now, until when, and how many strikes they have.
//!
//! Pure bookkeeping with an injected clock (UNIX seconds of **wall** time: a ban's length is a
//! promise to a human, not to the log). A ban's length grows with strikes along the schedule
//! (10 m → 30 m → 2 h → permanent by default); strikes decay after a clean period.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Longest ban length a schedule accepts: 100 years. Longer is `permanent` in all but name, and
/// `now + length` must stay far from `i64::MAX`.
pub const MAX_BAN_SECS: u64 = 100 * 365 * 86_400;

/// Ban lengths by strike; `None` = permanent. The last entry repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule(pub Vec<Option<u64>>);

impl Default for Schedule {
    fn default() -> Self {
        Schedule(vec![Some(600), Some(1800), Some(7200), None])
    }
}

impl Schedule {
    /// Parse `10m,30m,2h,permanent` (units s, m, h, d; `permanent` or `perm`).
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let steps: Result<Vec<_>, _> = s.split(',').map(|p| parse_step(p.trim())).collect();
        let steps = steps?;
        if steps.is_empty() {
            return Err("empty ban schedule".into());
        }
        Ok(Schedule(steps))
    }

    fn length(&self, strike: u32) -> Option<u64> {
        let i = (strike.max(1) as usize - 1).min(self.0.len() - 1);
        self.0[i]
    }
}

fn parse_step(p: &str) -> Result<Option<u64>, String> {
    if p == "permanent" || p == "perm" {
        return Ok(None);
    }
    let (num, unit) = p.split_at(p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad ban length {p:?} (e.g. 90s, 10m, 2h, 1d, permanent)"))?;
    let mult: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("bad unit in {p:?} (s, m, h, d)")),
    };
    if n == 0 {
        return Err(format!("ban length {p:?} must be positive"));
    }
    match n.checked_mul(mult) {
        Some(secs) if secs <= MAX_BAN_SECS => Ok(Some(secs)),
        _ => Err(format!(
            "ban length {p:?} is longer than 100 years; use `permanent`"
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveBan {
    pub since: i64,
    /// `None`: permanent.
    pub until: Option<i64>,
    pub strike: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Strikes {
    count: u32,
    last_ban: i64,
}

/// Active bans and strike history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BanBook {
    pub schedule: Schedule,
    /// Strikes are forgotten after this long without a ban.
    pub decay_secs: u64,
    active: BTreeMap<IpAddr, ActiveBan>,
    strikes: BTreeMap<IpAddr, Strikes>,
}

impl BanBook {
    pub fn new(schedule: Schedule, decay_secs: u64) -> BanBook {
        BanBook {
            schedule,
            decay_secs,
            ..Default::default()
        }
    }

    pub fn is_banned(&self, ip: &IpAddr) -> bool {
        self.active.contains_key(ip)
    }

    pub fn active(&self) -> &BTreeMap<IpAddr, ActiveBan> {
        &self.active
    }

    pub fn strikes(&self, ip: &IpAddr) -> u32 {
        self.strikes.get(ip).map_or(0, |s| s.count)
    }

    /// Ban `ip` at `now`: next strike, length from the schedule. `None` when already banned.
    pub fn ban(&mut self, ip: IpAddr, now: i64, reason: String) -> Option<ActiveBan> {
        if self.active.contains_key(&ip) {
            return None;
        }
        let decay = self.decay_secs as i64;
        let s = self.strikes.entry(ip).or_insert(Strikes {
            count: 0,
            last_ban: now,
        });
        if now - s.last_ban >= decay && s.count > 0 {
            s.count = 0; // clean long enough: start over
        }
        s.count += 1;
        s.last_ban = now;
        let strike = s.count;
        let ban = ActiveBan {
            since: now,
            // A length too long to add (a schedule from an old state file) is permanent, never
            // a wrapped-around time in the past.
            until: self
                .schedule
                .length(strike)
                .and_then(|l| now.checked_add(i64::try_from(l).ok()?)),
            strike,
            reason,
        };
        self.active.insert(ip, ban.clone());
        Some(ban)
    }

    /// Bans whose time is up at `now`, removed.
    pub fn expire(&mut self, now: i64) -> Vec<(IpAddr, ActiveBan)> {
        let done: Vec<IpAddr> = self
            .active
            .iter()
            .filter(|(_, b)| b.until.is_some_and(|u| u <= now))
            .map(|(ip, _)| *ip)
            .collect();
        done.into_iter()
            .filter_map(|ip| self.active.remove(&ip).map(|b| (ip, b)))
            .collect()
    }

    /// Lift a ban by hand. Strikes stay (a manual unban is not a clean record).
    pub fn unban(&mut self, ip: &IpAddr) -> Option<ActiveBan> {
        self.active.remove(ip)
    }

    pub fn unban_all(&mut self) -> Vec<(IpAddr, ActiveBan)> {
        std::mem::take(&mut self.active).into_iter().collect()
    }

    /// Drop strike records that have decayed (bounded memory over months).
    pub fn forget_decayed(&mut self, now: i64) {
        let decay = self.decay_secs as i64;
        let active = &self.active;
        self.strikes
            .retain(|ip, s| active.contains_key(ip) || now - s.last_ban < decay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn schedule_parsing() {
        assert_eq!(
            Schedule::parse("10m,30m,2h,permanent").unwrap(),
            Schedule::default()
        );
        assert_eq!(
            Schedule::parse("5s, 1d").unwrap().0,
            vec![Some(5), Some(86_400)]
        );
        assert!(Schedule::parse("10x").is_err());
        assert!(Schedule::parse("0s").is_err());
        assert!(Schedule::parse("").is_err());
    }

    #[test]
    fn huge_ban_lengths_are_refused_or_permanent_never_an_instant_unban() {
        // Regression (issue 12, 18): `--ban-schedule 9223372036854775807s` wrapped `now + len`
        // into the past, so the ban expired at once.
        for text in [
            "9223372036854775807s",
            "18446744073709551615s",
            "200000000000000000d",
        ] {
            let e = Schedule::parse(text).unwrap_err();
            assert!(e.contains("longer than 100 years"), "{text}: {e}");
        }
        assert!(Schedule::parse("36500d").is_ok());
        // Lengths that never went through `parse` (a saved state) are permanent, not negative.
        let now = 1_700_000_000;
        for len in [i64::MAX as u64, u64::MAX] {
            let mut b = BanBook::new(Schedule(vec![Some(len)]), 0);
            let ban = b.ban(ip("203.0.113.1"), now, "flood".into()).unwrap();
            assert_eq!(ban.until, None, "{len}");
            assert!(b.expire(now + 1).is_empty(), "no instant unban");
        }
    }

    #[test]
    fn strikes_escalate_then_stay_permanent() {
        let mut b = BanBook::new(Schedule::default(), 86_400);
        let a = ip("203.0.113.1");
        let mut now = 1000;
        let mut lengths = Vec::new();
        for _ in 0..5 {
            let ban = b.ban(a, now, "flood".into()).unwrap();
            assert!(b.ban(a, now + 1, "again".into()).is_none(), "no double ban");
            lengths.push(ban.until.map(|u| u - now));
            match ban.until {
                Some(u) => {
                    assert!(b.expire(u - 1).is_empty());
                    assert_eq!(b.expire(u).len(), 1);
                    now = u + 60;
                }
                None => {
                    assert!(b.expire(i64::MAX).is_empty());
                    b.unban(&a);
                    now += 60;
                }
            }
        }
        assert_eq!(lengths, vec![Some(600), Some(1800), Some(7200), None, None]);
    }

    #[test]
    fn strikes_decay_after_a_clean_period() {
        let mut b = BanBook::new(Schedule::default(), 3600);
        let a = ip("2001:db8::1");
        b.ban(a, 0, "x".into());
        b.expire(600);
        let second = b.ban(a, 700, "x".into()).unwrap();
        assert_eq!(second.strike, 2);
        b.expire(700 + 1800);
        let third = b.ban(a, 700 + 1800 + 3600, "x".into()).unwrap();
        assert_eq!(third.strike, 1, "an hour clean resets the strikes");
        b.unban_all();
        b.forget_decayed(1_000_000);
        assert_eq!(b.strikes(&a), 0);
    }
}
