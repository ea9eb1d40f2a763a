//! Detect: pure scoring of a time-ordered stream of requests.
//!
//! Owns per-IP and site-wide sliding windows (per-second buckets of **log time**), the baselines,
//! the rules, and the decisions. It does no I/O and never reads the wall clock: time only moves
//! when [`Detector::observe`] sees a later request or the caller calls [`Detector::advance_to`]
//! (how `follow` evaluates on its ticks). `analyze` and `follow` run this same code.
//!
//! Invariants: state is per IP and per window period, never per line; a second is evaluated once,
//! when log time moves past it; an IP is banned at most once per episode.
//!
//! Formulas (per IP, evaluated when a second closes, for IPs active in that second):
//! ```text
//! c   = requests from the IP in the last window_secs      e = its 4xx/5xx
//! μ,σ = per-IP baseline mean/std of requests per window (floored), b = baseline error share
//! z   = (c − μ) / σ          m = c / μ
//! surge  = e/c ≥ error_surge_ratio × max(b, error_share_floor)
//! k      = error_surge_factor if surge else 1
//! ban    ⇔ c ≥ min_requests ∧ (z > k·z_threshold ∨ m > k·multiplier_threshold)
//! ```
//! The site-wide rule is the same on site-wide window counts against the site-wide baseline
//! (no surge), and yields an `alert`.

pub mod bans;
pub mod baseline;
pub mod decision;
pub mod live;
pub mod settings;

use crate::parse::Request;
use baseline::{Baseline, SampleSeries};
pub use decision::{Action, BaselineSnapshot, BaselineSource, Count, Decision};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
pub use settings::DetectSettings;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

/// Space-saving top-k counter: bounded memory, exact for anything that stays in the top.
///
/// Keys are identified by their 64-bit [`crate::parse::key_hash`] alone (computed on the parse
/// threads), so the hot path compares a few integers and never text: a false merge would need
/// two keys of one IP colliding in 64 bits. The text is kept only to show it. Repeats of the
/// last key (an IP's user agent, nearly always) are counted inline, without touching the list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TopK {
    /// (hash, count) per key, and the keys' text at the same index.
    counts: Vec<(u64, u64)>,
    keys: Vec<String>,
    /// Index and hash of the last key added, and its hits not yet in `counts`.
    last: Option<(usize, u64)>,
    last_hits: u64,
}

impl TopK {
    const CAP: usize = 24;
    const MAX_KEY: usize = 512;

    fn add<'k>(&mut self, hash: u64, key: impl FnOnce() -> &'k str) {
        if let Some((_, h)) = self.last {
            if h == hash {
                self.last_hits += 1;
                return;
            }
        }
        self.settle();
        let i = match self.counts.iter().position(|(h, _)| *h == hash) {
            Some(i) => {
                self.counts[i].1 += 1;
                i
            }
            None => {
                // An exact-size copy per entry: reusing an evicted key's buffer kept every slot
                // at the longest key it ever held (+30 % peak memory on 10 M lines).
                let text = crate::parse::clip(key(), Self::MAX_KEY);
                if self.counts.len() < Self::CAP {
                    self.counts.push((hash, 1));
                    self.keys.push(text);
                    self.counts.len() - 1
                } else {
                    // Replace the least counted key; it inherits that count (space-saving).
                    let (i, _) = self
                        .counts
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, c))| *c)
                        .expect("CAP > 0");
                    self.counts[i] = (hash, self.counts[i].1 + 1);
                    self.keys[i] = text;
                    i
                }
            }
        };
        self.last = Some((i, hash));
    }

    /// Move the inline hits of the last key into the list.
    fn settle(&mut self) {
        if let Some((i, _)) = self.last {
            self.counts[i].1 += std::mem::take(&mut self.last_hits);
        }
    }

    fn top(&self, n: usize) -> Vec<Count<String>> {
        let extra = |i: usize| match self.last {
            Some((l, _)) if l == i => self.last_hits,
            _ => 0,
        };
        let mut v: Vec<(&String, u64)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k, self.counts[i].1 + extra(i)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(value, count)| Count {
                value: value.clone(),
                count,
            })
            .collect()
    }
}

/// Responses per status code of one IP: a handful of codes, the first few kept inline (no heap
/// access on the hot path), the rest in a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StatusCounts {
    inline: [(u16, u32); 3],
    more: Vec<(u16, u64)>,
}

impl StatusCounts {
    fn add(&mut self, status: u16) {
        // Slots fill in order; an empty slot has count 0.
        for slot in &mut self.inline {
            if slot.1 == 0 {
                *slot = (status, 1);
                return;
            }
            if slot.0 == status && slot.1 < u32::MAX {
                slot.1 += 1;
                return;
            }
        }
        match self.more.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.more.push((status, 1)),
        }
    }

    fn to_map(&self) -> BTreeMap<u16, u64> {
        let mut m = BTreeMap::new();
        let inline = self.inline.iter().filter(|(_, n)| *n > 0);
        for (s, n) in inline
            .map(|(s, n)| (*s, *n as u64))
            .chain(self.more.iter().copied())
        {
            *m.entry(s).or_insert(0) += n;
        }
        m
    }
}

/// Requests and errors over the last `window_secs`, from per-second buckets.
///
/// The newest bucket is kept inline: nearly every request lands in it, and touching the older
/// buckets' heap memory on every request was the detection thread's costliest cache miss.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    /// Buckets before `head`, oldest first: (second, requests, errors).
    buckets: VecDeque<(i64, u32, u32)>,
    head: Option<(i64, u32, u32)>,
    requests: u64,
    errors: u64,
}

impl Window {
    /// Count a request in second `sec` (never older than the newest bucket).
    fn add(&mut self, sec: i64, error: bool) {
        match &mut self.head {
            Some(h) if h.0 == sec => {
                h.1 += 1;
                h.2 += error as u32;
            }
            head => {
                if let Some(old) = head.replace((sec, 1, error as u32)) {
                    self.buckets.push_back(old);
                }
            }
        }
        self.requests += 1;
        self.errors += error as u64;
    }

    /// The newest second with a request, if any is in the window.
    fn newest(&self) -> Option<i64> {
        self.head.map(|h| h.0)
    }

    /// Keep buckets in `(now - window, now]`.
    fn evict(&mut self, now: i64, window: i64) {
        while let Some(&(s, r, e)) = self.buckets.front() {
            if s > now - window {
                return;
            }
            self.requests -= r as u64;
            self.errors -= e as u64;
            self.buckets.pop_front();
        }
        if let Some((s, r, e)) = self.head {
            if s <= now - window {
                self.requests -= r as u64;
                self.errors -= e as u64;
                self.head = None;
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IpState {
    first_seen: i64,
    last_seen: i64,
    total: u64,
    window: Window,
    /// Requests/errors in the current sample period (baseline input).
    period: i64,
    period_requests: u32,
    period_errors: u32,
    /// Start of the current ban episode.
    banned_at: Option<i64>,
    /// All traffic of this IP in the current period (for its series; banned or not).
    seen_period: i64,
    seen: (u32, u32),
    /// Its last `RECENT_PERIODS` periods, and once banned its whole series (for the report).
    recent: VecDeque<SeriesPoint>,
    history: Option<Vec<SeriesPoint>>,
    paths: TopK,
    agents: TopK,
    statuses: StatusCounts,
}

/// Periods of context kept per IP, copied into its series when it is banned.
const RECENT_PERIODS: usize = 30;
/// Points kept per banned IP (two weeks of one-minute periods).
const MAX_SERIES: usize = 20_160;

/// Requests of one IP in one period (`window_secs`), for plots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub t: i64,
    pub requests: u32,
    pub errors: u32,
}

/// Site-wide traffic in one period with traffic, and the baselines in force during it
/// (floors applied; 0 before the first baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub t: i64,
    pub requests: u32,
    pub errors: u32,
    pub ip_mean: f64,
    pub ip_std: f64,
    pub site_mean: f64,
    pub site_std: f64,
}

/// Counters the summary reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectStats {
    pub requests: u64,
    /// Requests older than the open second when they arrived (beyond the reorder tolerance):
    /// counted in the open second.
    pub late: u64,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    pub peak_window_requests: u64,
    pub peak_at: Option<i64>,
}

/// The allowlist in force: configured networks, loopback, and optionally private ranges.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Allowlist {
    nets: Vec<IpNet>,
    private: bool,
}

impl Allowlist {
    /// The host itself (127.0.0.1, ::1) is always allowed: health checks, local proxies. Other
    /// 127/8 sources only exist when something binds them on purpose, and are scored normally.
    fn contains(&self, ip: &IpAddr) -> bool {
        *ip == IpAddr::from([127, 0, 0, 1])
            || *ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            || ip.is_unspecified()
            || self.nets.iter().any(|n| n.contains(ip))
            || (self.private && is_private(ip))
    }
}

/// RFC 1918, CGNAT (100.64/10), link-local, IPv6 ULA (fc00::/7) and link-local (fe80::/10).
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// The detector. Feed it requests in time order; collect [`Decision`]s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    s: DetectSettings,
    allow: Allowlist,
    /// The open (not yet evaluated) second of log time.
    now: Option<i64>,
    ips: HashMap<IpAddr, IpState, foldhash::fast::RandomState>,
    /// IPs with a request in the open second: the ones evaluated when it closes.
    active: Vec<IpAddr>,
    global: Window,
    period: i64,
    period_ips: Vec<IpAddr>,
    global_period: (u32, u32),
    /// Every IP with traffic in the current period, and all site traffic in it.
    period_seen_ips: Vec<IpAddr>,
    period_all: (u32, u32),
    timeline: Vec<TimelinePoint>,
    ip_samples: SampleSeries,
    global_samples: SampleSeries,
    ip_baseline: Option<Baseline>,
    global_baseline: Option<Baseline>,
    last_recompute: Option<i64>,
    /// Last second the site-wide rule fired (episode tracking).
    global_fired_at: Option<i64>,
    decisions: Vec<Decision>,
    stats: DetectStats,
}

impl Detector {
    pub fn new(settings: DetectSettings) -> Detector {
        let allow = Allowlist {
            nets: settings.allowlist.clone(),
            private: settings.allow_private,
        };
        Detector {
            s: settings,
            allow,
            now: None,
            ips: HashMap::default(),
            active: Vec::new(),
            global: Window::default(),
            period: i64::MIN,
            period_ips: Vec::new(),
            global_period: (0, 0),
            period_seen_ips: Vec::new(),
            period_all: (0, 0),
            timeline: Vec::new(),
            ip_samples: SampleSeries::default(),
            global_samples: SampleSeries::default(),
            ip_baseline: None,
            global_baseline: None,
            last_recompute: None,
            global_fired_at: None,
            decisions: Vec::new(),
            stats: DetectStats::default(),
        }
    }

    pub fn settings(&self) -> &DetectSettings {
        &self.s
    }

    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    pub fn distinct_ips(&self) -> usize {
        self.ips.len()
    }

    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Whether `ip` may never be banned (allowlist, the host itself, optionally private ranges).
    pub fn is_allowlisted(&self, ip: &IpAddr) -> bool {
        self.allow.contains(ip)
    }

    /// End an IP's ban episode now (its ban was lifted): its window is cleared, its next burst is
    /// judged afresh, and its traffic counts toward baselines again.
    pub fn end_episode(&mut self, ip: &IpAddr) {
        if let Some(st) = self.ips.get_mut(ip) {
            st.banned_at = None;
            // What it sent while banned (retransmissions of dropped connections, lines logged
            // before the ban took effect) must not count against it right after the unban.
            st.window = Window::default();
        }
    }

    /// Site-wide traffic per period with traffic, with the baselines in force.
    pub fn timeline(&self) -> &[TimelinePoint] {
        &self.timeline
    }

    /// Requests per period of an IP that was banned: from up to 30 periods before its first ban
    /// to the end of its traffic.
    pub fn ip_series(&self, ip: &IpAddr) -> Option<&[SeriesPoint]> {
        self.ips.get(ip)?.history.as_deref()
    }

    /// The per-IP and site-wide baselines in force now (floors applied), if any was computed.
    pub fn baselines(&self) -> (Option<BaselineSnapshot>, Option<BaselineSnapshot>) {
        (
            self.ip_baseline
                .map(|b| b.snapshot(self.s.ip_mean_floor, self.s.ip_std_floor)),
            self.global_baseline
                .map(|b| b.snapshot(self.s.global_mean_floor, self.s.global_std_floor)),
        )
    }

    /// Feed one request. Requests must come in (roughly) time order; one older than the open
    /// second is counted in the open second and in `stats.late`.
    pub fn observe(&mut self, req: &Request) {
        let mut t = req.time;
        match self.now {
            None => {
                self.now = Some(t);
                self.stats.first_time = Some(t);
                self.period = self.period_of(t);
            }
            Some(now) if t < now => {
                self.stats.late += 1;
                t = now;
            }
            Some(now) if t > now => self.advance_to(t),
            Some(_) => {}
        }
        self.stats.requests += 1;
        self.stats.last_time = Some(self.stats.last_time.map_or(t, |l| l.max(t)));
        let error = req.is_error();
        let gap = self.s.episode_gap_secs as i64;
        let period = self.period;
        let st = self.ips.entry(req.ip).or_insert_with(|| IpState {
            first_seen: t,
            last_seen: t,
            total: 0,
            window: Window::default(),
            period: i64::MIN,
            period_requests: 0,
            period_errors: 0,
            banned_at: None,
            seen_period: i64::MIN,
            seen: (0, 0),
            recent: VecDeque::new(),
            history: None,
            paths: TopK::default(),
            agents: TopK::default(),
            statuses: StatusCounts::default(),
        });
        if st.banned_at.is_some() && t - st.last_seen >= gap {
            st.banned_at = None; // quiet long enough: a new episode starts
        }
        if st.window.newest() != Some(t) {
            self.active.push(req.ip);
        }
        st.window.add(t, error);
        st.total += 1;
        st.last_seen = t;
        // The text is only read when a key enters a list: reading it on every request was a
        // cache miss on the request's text.
        st.paths.add(req.path_hash(), || req.path());
        st.agents.add(req.agent_hash(), || req.user_agent());
        st.statuses.add(req.status);
        if st.seen_period != period {
            st.seen_period = period;
            st.seen = (0, 0);
            self.period_seen_ips.push(req.ip);
        }
        st.seen.0 += 1;
        st.seen.1 += error as u32;
        self.period_all.0 += 1;
        self.period_all.1 += error as u32;
        if st.banned_at.is_none() {
            if st.period != period {
                st.period = period;
                st.period_requests = 0;
                st.period_errors = 0;
                self.period_ips.push(req.ip);
            }
            st.period_requests += 1;
            st.period_errors += error as u32;
            self.global.add(t, error);
            self.global_period.0 += 1;
            self.global_period.1 += error as u32;
        }
    }

    /// Move log time forward to `t`, evaluating every second before it. `follow` calls this on
    /// its ticks so a decision never waits for the next request.
    pub fn advance_to(&mut self, t: i64) {
        let Some(now) = self.now else { return };
        if t <= now {
            return;
        }
        self.close_second(now);
        let new_period = self.period_of(t);
        if new_period != self.period {
            self.close_period(t);
            self.period = new_period;
        }
        self.now = Some(t);
    }

    /// Evaluate everything still open (end of input). Consumes nothing: a later `observe` may
    /// continue (the incremental path runs this on a copy).
    pub fn finish(&mut self) {
        if let Some(now) = self.now {
            // To the next period boundary: closes the last second and the last period.
            self.advance_to(self.period_of(now) + self.s.window_secs as i64);
        }
        // Fill in what a forensic reader wants to know at the end: totals and last activity.
        for d in &mut self.decisions {
            if let Some(ip) = d.ip {
                if let Some(st) = self.ips.get(&ip) {
                    d.requests_total = st.total;
                    d.last_seen = st.last_seen;
                }
            }
        }
    }

    fn period_of(&self, t: i64) -> i64 {
        t.div_euclid(self.s.window_secs as i64) * self.s.window_secs as i64
    }

    /// Whether the rules are in force at the open second: the warm-up of log time is over and a
    /// per-IP baseline exists. Before that, baselines are learned but nothing is decided.
    pub fn warmed_up_now(&self) -> bool {
        self.now.is_some_and(|t| self.warmed_up(t))
    }

    fn warmed_up(&self, t: i64) -> bool {
        self.stats
            .first_time
            .is_some_and(|f| t - f >= self.s.warmup_secs as i64)
            && self.ip_baseline.is_some()
    }

    /// Close a sample period: turn its counts into baseline samples, recompute when due.
    fn close_period(&mut self, t: i64) {
        let period = self.period;
        for ip in std::mem::take(&mut self.period_seen_ips) {
            if let Some(st) = self.ips.get_mut(&ip) {
                let point = SeriesPoint {
                    t: period,
                    requests: st.seen.0,
                    errors: st.seen.1,
                };
                if st.recent.len() == RECENT_PERIODS {
                    st.recent.pop_front();
                }
                st.recent.push_back(point);
                if let Some(h) = st.history.as_mut().filter(|h| h.len() < MAX_SERIES) {
                    h.push(point);
                }
            }
        }
        if self.period_all.0 > 0 {
            let (ip, site) = self.baselines();
            self.timeline.push(TimelinePoint {
                t: period,
                requests: self.period_all.0,
                errors: self.period_all.1,
                ip_mean: ip.map_or(0.0, |b| b.mean),
                ip_std: ip.map_or(0.0, |b| b.std),
                site_mean: site.map_or(0.0, |b| b.mean),
                site_std: site.map_or(0.0, |b| b.std),
            });
        }
        self.period_all = (0, 0);
        for ip in std::mem::take(&mut self.period_ips) {
            if let Some(st) = self.ips.get(&ip) {
                if st.banned_at.is_none() && st.period == self.period && st.period_requests > 0 {
                    self.ip_samples
                        .push(self.period, st.period_requests, st.period_errors);
                }
            }
        }
        if self.global_period.0 > 0 {
            self.global_samples
                .push(self.period, self.global_period.0, self.global_period.1);
        }
        self.global_period = (0, 0);
        let due = self
            .last_recompute
            .is_none_or(|l| t - l >= self.s.recompute_secs as i64);
        if due && !self.ip_samples.is_empty() {
            let keep = self.s.baseline_secs as i64;
            let (days, min) = (self.s.hour_slot_days, self.s.hour_slot_min_samples as u64);
            self.ip_baseline = Some(Baseline::compute(&mut self.ip_samples, t, keep, days, min));
            // The site has one sample per period, so its hour slot fills 60× slower.
            let gmin = (min / 10).max(1);
            self.global_baseline = Some(Baseline::compute(
                &mut self.global_samples,
                t,
                keep,
                days,
                gmin,
            ));
            self.last_recompute = Some(t);
        }
    }

    fn close_second(&mut self, s: i64) {
        let w = self.s.window_secs as i64;
        self.global.evict(s, w);
        if self.global.requests > self.stats.peak_window_requests {
            self.stats.peak_window_requests = self.global.requests;
            self.stats.peak_at = Some(s);
        }
        let active = std::mem::take(&mut self.active);
        let warmed = self.warmed_up(s);
        for ip in &active {
            if let Some(st) = self.ips.get_mut(ip) {
                st.window.evict(s, w);
            }
            if warmed {
                self.evaluate_ip(*ip, s);
            }
        }
        if warmed && !active.is_empty() {
            self.evaluate_global(s);
        }
        self.active = active;
        self.active.clear();
    }

    fn evaluate_ip(&mut self, ip: IpAddr, s: i64) {
        if self.allow.contains(&ip) {
            return;
        }
        let Some(base) = self.ip_baseline else { return };
        let snap = base.snapshot(self.s.ip_mean_floor, self.s.ip_std_floor);
        let st = &self.ips[&ip];
        let c = st.window.requests;
        if st.banned_at.is_some() || c < self.s.min_requests as u64 {
            return;
        }
        let share = st.window.errors as f64 / c as f64;
        let surge =
            share >= self.s.error_surge_ratio * snap.error_share.max(self.s.error_share_floor);
        let k = if surge {
            self.s.error_surge_factor
        } else {
            1.0
        };
        let (z, m) = ((c as f64 - snap.mean) / snap.std, c as f64 / snap.mean);
        let (zt, mt) = (k * self.s.z_threshold, k * self.s.multiplier_threshold);
        let mut rules = Vec::new();
        if z > zt {
            rules.push("zscore".to_string());
        }
        if m > mt {
            rules.push("multiplier".to_string());
        }
        if rules.is_empty() {
            return;
        }
        if surge {
            rules.push("error_surge".to_string());
        }
        let w = self.s.window_secs;
        let reason = format!(
            "{c} requests in {w} s ({:.1}/s): {m:.1}× the per-IP baseline {:.1} (z {z:.1}, limits {zt:.1} / {mt:.1}×); {:.0}% errors{}",
            c as f64 / w as f64,
            snap.mean,
            share * 100.0,
            if surge { " — error surge" } else { "" }
        );
        let n = self.s.top_n;
        let d = Decision {
            action: Action::Ban,
            ip: Some(ip),
            at: s,
            rules,
            reason,
            window_secs: w,
            requests_in_window: c,
            rate_per_sec: c as f64 / w as f64,
            error_share: share,
            baseline: snap,
            z,
            multiplier: m,
            z_threshold: zt,
            multiplier_threshold: mt,
            requests_total: st.total,
            first_seen: st.first_seen,
            last_seen: st.last_seen,
            top_paths: st.paths.top(n),
            status_mix: st.statuses.to_map(),
            user_agents: st.agents.top(n.min(5)),
            top_ips: Vec::new(),
            duration_secs: self.s.ban_secs,
        };
        self.decisions.push(d);
        let st = self.ips.get_mut(&ip).expect("evaluated IP exists");
        st.banned_at = Some(s);
        if st.history.is_none() {
            st.history = Some(st.recent.iter().copied().collect());
        }
        // Its traffic in this window no longer counts as normal site traffic.
        st.period_requests = 0;
        st.period_errors = 0;
    }

    fn evaluate_global(&mut self, s: i64) {
        let Some(base) = self.global_baseline else {
            return;
        };
        let snap = base.snapshot(self.s.global_mean_floor, self.s.global_std_floor);
        let c = self.global.requests;
        if c < self.s.global_min_requests as u64 {
            return;
        }
        let (z, m) = ((c as f64 - snap.mean) / snap.std, c as f64 / snap.mean);
        let (zt, mt) = (self.s.z_threshold, self.s.multiplier_threshold);
        let mut rules = Vec::new();
        if z > zt {
            rules.push("global_zscore".to_string());
        }
        if m > mt {
            rules.push("global_multiplier".to_string());
        }
        if rules.is_empty() {
            return;
        }
        let new_episode = self
            .global_fired_at
            .is_none_or(|f| s - f >= self.s.episode_gap_secs as i64);
        self.global_fired_at = Some(s);
        if !new_episode {
            // Same anomaly still going: extend the alert's span.
            if let Some(d) = self
                .decisions
                .iter_mut()
                .rev()
                .find(|d| d.action == Action::Alert)
            {
                d.last_seen = s;
            }
            return;
        }
        let w = self.s.window_secs as i64;
        let mut contributors: Vec<Count<IpAddr>> = self
            .ips
            .iter_mut()
            .filter(|(_, st)| st.last_seen > s - w)
            .map(|(ip, st)| {
                st.window.evict(s, w);
                Count {
                    value: *ip,
                    count: st.window.requests,
                }
            })
            .filter(|c| c.count > 0)
            .collect();
        contributors.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        contributors.truncate(self.s.top_n);
        let share = self.global.errors as f64 / c as f64;
        let reason = format!(
            "site-wide {c} requests in {w} s ({:.1}/s): {m:.1}× the baseline {:.1} (z {z:.1}); top: {}",
            c as f64 / w as f64,
            snap.mean,
            contributors.iter().take(3).map(|c| format!("{} ({})", c.value, c.count)).collect::<Vec<_>>().join(", ")
        );
        self.decisions.push(Decision {
            action: Action::Alert,
            ip: None,
            at: s,
            rules,
            reason,
            window_secs: self.s.window_secs,
            requests_in_window: c,
            rate_per_sec: c as f64 / w as f64,
            error_share: share,
            baseline: snap,
            z,
            multiplier: m,
            z_threshold: zt,
            multiplier_threshold: mt,
            requests_total: self.stats.requests,
            first_seen: self.stats.first_time.unwrap_or(s),
            last_seen: s,
            top_paths: Vec::new(),
            status_mix: BTreeMap::new(),
            user_agents: Vec::new(),
            top_ips: contributors,
            duration_secs: 0,
        });
    }
}

#[cfg(test)]
mod tests;
