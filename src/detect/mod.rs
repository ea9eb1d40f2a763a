//! Detect: pure scoring of a stream of requests in log-time order.
//!
//! Owns per-client and site-wide windows over three time scales, the learned baselines, the
//! rules and the decisions. It does no I/O and never reads the wall clock: time only moves when
//! [`Detector::observe`] sees a later request or the caller calls [`Detector::advance_to`] (how
//! `follow` closes seconds on its ticks). `analyze` and `follow` run this same code.
//!
//! The model (README "How bouncer decides" has it with examples). For a client, over each
//! window W ∈ {short 10 s, minute 60 s, long 600 s}:
//! ```text
//! load_W   = pages + asset_weight × assets          (an asset is a tenth of a page)
//! errors_W = page errors (4xx/5xx on pages), none if all are 404s on < scan_min_paths paths
//! level_W  = quantile(0.99) over client-hours of the clients' busiest W load (learned, polars)
//! base_W   = max(floor_W, multiplier_threshold × level_W)
//!            (fewer than min_clients client-hours: floor_W × untrained_factor)
//! surge    = page-error share in W ≥ error_surge_ratio × max(site error share, floor)
//! k        = error_surge_factor if surge else 1
//! crowd    = √min(agents, 64) if ≥ crowd_min_agents agents (seen twice in the long window)
//!            and ≤ crowd_max_error_share page errors there, else 1
//! breadth  = distinct pages in the long window ≥ breadth_min_paths (crawling, scanning)
//! multiplier fires ⇔ load_W > base_W × k × crowd      (long: only with a surge or breadth,
//!                                                       no crowd)
//! zscore fires     ⇔ no own history, or history with errors, or
//!                    (load per minute − own mean) / max(own std, √own mean, 1) > k × z_threshold
//! ban              ⇔ multiplier ∧ zscore, on the first window (short, minute, long) where both fire
//! ```
//! A client is checked after each of its requests, so a flood is banned on the request that
//! crosses the limit. Site-wide: the site's requests and distinct clients per minute (banned
//! clients excluded) against their medians (and the MAD of requests); an `alert` when both
//! grow past `global_multiplier_threshold` and the robust z-score past `global_z_threshold`,
//! naming the top clients — a surge from many clients, not one busy client.
//!
//! Invariants: state is per client and per window span, never per line; an IP is banned at most
//! once per episode; banned clients never feed a baseline; a request up to `tolerance` seconds
//! older than the newest is counted in its own second, an older one is counted as late and left
//! out (never re-timed).

pub mod bans;
pub mod baseline;
pub mod decision;
pub mod distinct;
pub mod live;
pub mod settings;
mod top;
pub mod window;

use crate::parse::Request;
use baseline::{ClientLevels, LearnSpan, Learner, Peaks, SiteLevels, LONG, MINUTE};
pub use decision::{
    Action, BaselineSnapshot, BaselineSource, Check, Count, DecidedBy, Decision, Rule, Window,
};
use distinct::DistinctIps;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
pub use settings::DetectSettings;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use top::{StatusCounts, TopK};
use window::{Buckets, Counts, Distinct, Recent};

/// Periods of context kept per IP (its own history, and the plot before a ban).
const RECENT_PERIODS: usize = 30;
/// Points kept per banned IP (two weeks of one-minute periods).
const MAX_SERIES: usize = 20_160;
/// Distinct user agents and error paths tracked per client.
const AGENTS_CAP: usize = 64;
const ERROR_PATHS_CAP: usize = 8;
/// Bucket size of the long window.
const SLOT_SECS: i64 = 10;

/// Requests of one IP in one period (`window_secs`), for plots and its own history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub t: i64,
    pub requests: u32,
    /// Page errors.
    pub errors: u32,
    #[serde(default)]
    pub pages: u32,
    #[serde(default)]
    pub load: f32,
}

/// Site-wide traffic in one period with traffic, and the levels in force during it (0 before
/// the first baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub t: i64,
    pub requests: u32,
    /// Page errors.
    pub errors: u32,
    /// The minute window's per-client limit in force.
    pub ip_mean: f64,
    pub ip_std: f64,
    /// The site's median load per minute and its robust standard deviation.
    pub site_mean: f64,
    pub site_std: f64,
}

/// Counters the summary reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectStats {
    pub requests: u64,
    /// Requests more than the tolerance older than the newest one when they arrived: counted
    /// here and left out of detection (never re-timed).
    pub late: u64,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    pub peak_window_requests: u64,
    pub peak_at: Option<i64>,
}

/// The per-client limit of one window as it stands, for summaries and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowLimit {
    pub window: Window,
    pub secs: u32,
    /// What a client may reach before the rules look at it (errors surge: × 0.7).
    pub limit: f64,
    /// `multiplier_threshold` × the learned level, when enough clients were seen.
    pub learned: Option<f64>,
    pub floor: f64,
    pub decided_by: DecidedBy,
    /// The learned level (the `quantile` of the clients' busiest windows) and the median.
    pub level: f64,
    pub median: f64,
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

/// The site's robust deviation as the site-wide rule uses it: at least √median (Poisson noise)
/// and 1.
fn site_scale(b: &SiteLevels) -> f64 {
    b.scale.max(b.median.sqrt()).max(1.0)
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IpState {
    first_seen: i64,
    last_seen: i64,
    total: u64,
    /// Per-second buckets over the minute window, per-10-s buckets over the long window.
    secs: Buckets,
    slots: Buckets,
    /// User agents, page-error paths and distinct page paths in the long window.
    agents_seen: Recent,
    error_paths: Recent,
    page_paths: Distinct,
    /// Its busiest windows in hour `hour` (baseline input), and the hour of its last ban.
    hour: i64,
    peaks: Peaks,
    banned_hour: i64,
    /// Start of the current ban episode.
    banned_at: Option<i64>,
    /// Its traffic in the current period (for its series; banned or not).
    seen_period: i64,
    seen: SeriesPoint,
    /// Its last `RECENT_PERIODS` periods, and once banned its whole series (for the report).
    recent: VecDeque<SeriesPoint>,
    history: Option<Vec<SeriesPoint>>,
    paths: TopK,
    agents: TopK,
    statuses: StatusCounts,
}

impl IpState {
    fn new(t: i64) -> IpState {
        IpState {
            first_seen: t,
            last_seen: t,
            total: 0,
            secs: Buckets::default(),
            slots: Buckets::default(),
            agents_seen: Recent::default(),
            error_paths: Recent::default(),
            page_paths: Distinct::default(),
            hour: i64::MIN,
            peaks: [0.0; 3],
            banned_hour: i64::MIN,
            banned_at: None,
            seen_period: i64::MIN,
            seen: SeriesPoint {
                t: 0,
                requests: 0,
                errors: 0,
                pages: 0,
                load: 0.0,
            },
            recent: VecDeque::new(),
            history: None,
            paths: TopK::default(),
            agents: TopK::default(),
            statuses: StatusCounts::default(),
        }
    }
}

/// What one client did in each window at log time `now`.
struct Measures {
    /// Page errors that are 404s repeated on fewer than `scan_min_paths` paths are not counted.
    counts: [Counts; 3],
    /// Load per window.
    value: [f64; 3],
}

/// The detector. Feed it requests in time order; collect [`Decision`]s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    s: DetectSettings,
    allow: Allowlist,
    /// The newest second of log time seen (open: not yet closed for the site-wide rule).
    now: Option<i64>,
    /// Requests up to this much older than `now` are counted in their own second.
    tolerance: i64,
    /// Per client; boxed, so the table's spare slots cost a pointer, not a client.
    ips: HashMap<IpAddr, Box<IpState>, foldhash::fast::RandomState>,
    /// Every client seen (the table forgets idle ones).
    #[serde(default)]
    seen: DistinctIps,
    /// Peaks in the open hour of clients forgotten during it, with how many had each: the
    /// hour's baseline input, as if they were still tracked.
    #[serde(default)]
    forgotten_peaks: Vec<(Peaks, u32)>,
    /// Log time of the last sweep of idle clients.
    #[serde(default)]
    last_sweep: Option<i64>,
    /// Site traffic of clients not banned, per second over the minute window.
    site: Buckets,
    period: i64,
    period_seen_ips: Vec<IpAddr>,
    /// All site traffic this period (timeline), and that of clients not banned (baseline).
    period_all: SeriesPoint,
    period_site: Counts,
    /// The open hour and the clients with peaks in it.
    hour: i64,
    hour_ips: Vec<IpAddr>,
    learner: Learner,
    levels: Option<ClientLevels>,
    /// The hour whose completed predecessors the levels come from (hourly updates).
    levels_hour: Option<i64>,
    site_levels: Option<SiteLevels>,
    /// Per window: the limit in force (floor applied) and the learned part.
    limits: [f64; 3],
    learned: [Option<f64>; 3],
    /// Below all of these a client cannot be banned, whatever its errors: checked first.
    quick: [f64; 3],
    last_recompute: Option<i64>,
    /// Last second the site-wide rule fired (episode tracking).
    global_fired_at: Option<i64>,
    timeline: Vec<TimelinePoint>,
    decisions: Vec<Decision>,
    stats: DetectStats,
}

impl Detector {
    pub fn new(settings: DetectSettings) -> Detector {
        let allow = Allowlist {
            nets: settings.allowlist.clone(),
            private: settings.allow_private,
        };
        let floors = [
            settings.short_floor,
            settings.minute_floor,
            settings.long_floor,
        ]
        .map(|f| f * settings.untrained_factor);
        let tolerance = settings.window_secs as i64;
        Detector {
            quick: floors.map(|f| f * settings.error_surge_factor),
            limits: floors,
            s: settings,
            allow,
            now: None,
            tolerance,
            ips: HashMap::default(),
            seen: DistinctIps::default(),
            forgotten_peaks: Vec::new(),
            last_sweep: None,
            site: Buckets::default(),
            period: i64::MIN,
            period_seen_ips: Vec::new(),
            period_all: SeriesPoint {
                t: 0,
                requests: 0,
                errors: 0,
                pages: 0,
                load: 0.0,
            },
            period_site: Counts::default(),
            hour: i64::MIN,
            hour_ips: Vec::new(),
            learner: Learner::default(),
            levels: None,
            levels_hour: None,
            site_levels: None,
            learned: [None; 3],
            last_recompute: None,
            global_fired_at: None,
            timeline: Vec::new(),
            decisions: Vec::new(),
            stats: DetectStats::default(),
        }
    }

    /// Requests up to `secs` older than the newest one are counted in their own second (at most
    /// the minute window); older ones are counted as late and left out. Default: the minute
    /// window.
    pub fn set_tolerance(&mut self, secs: i64) {
        self.tolerance = secs.clamp(0, self.s.window_secs as i64);
    }

    pub fn settings(&self) -> &DetectSettings {
        &self.s
    }

    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    /// Distinct clients seen (exact up to [`distinct::EXACT_MAX`], then estimated).
    pub fn distinct_ips(&self) -> usize {
        self.seen.count() as usize
    }

    /// Whether [`Self::distinct_ips`] is exact.
    pub fn distinct_ips_exact(&self) -> bool {
        self.seen.is_exact()
    }

    /// Clients tracked now (memory).
    pub fn tracked_ips(&self) -> usize {
        self.ips.len()
    }

    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Drop the first `n` decisions (`follow` has published them).
    pub fn forget_decisions(&mut self, n: usize) {
        self.decisions.drain(..n.min(self.decisions.len()));
    }

    /// Keep only the last `n` timeline points.
    pub fn keep_timeline(&mut self, n: usize) {
        let extra = self.timeline.len().saturating_sub(n);
        self.timeline.drain(..extra);
    }

    /// Whether `ip` may never be banned (allowlist, the host itself, optionally private ranges).
    pub fn is_allowlisted(&self, ip: &IpAddr) -> bool {
        self.allow.contains(ip)
    }

    /// End an IP's ban episode now (its ban was lifted): its windows are cleared, its next burst
    /// is judged afresh, and its traffic counts toward baselines again.
    pub fn end_episode(&mut self, ip: &IpAddr) {
        if let Some(st) = self.ips.get_mut(ip) {
            st.banned_at = None;
            // What it sent while banned (retransmissions of dropped connections, lines logged
            // before the ban took effect) must not count against it right after the unban.
            st.secs = Buckets::default();
            st.slots = Buckets::default();
            st.agents_seen = Recent::default();
            st.error_paths = Recent::default();
            st.page_paths = Distinct::default();
        }
    }

    /// End the ban episode of every client in one for which `banned` is false.
    pub fn end_episodes_unless(&mut self, banned: impl Fn(&IpAddr) -> bool) {
        let ended: Vec<IpAddr> = self
            .ips
            .iter()
            .filter(|(ip, st)| st.banned_at.is_some() && !banned(ip))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in ended {
            self.end_episode(&ip);
        }
    }

    /// Site-wide traffic per period with traffic, with the levels in force.
    pub fn timeline(&self) -> &[TimelinePoint] {
        &self.timeline
    }

    /// Requests per period of an IP that was banned: from up to 30 periods before its first ban
    /// to the end of its traffic.
    pub fn ip_series(&self, ip: &IpAddr) -> Option<&[SeriesPoint]> {
        self.ips.get(ip)?.history.as_deref()
    }

    /// The per-client baseline of the minute window and the site-wide baseline, if learned.
    pub fn baselines(&self) -> (Option<BaselineSnapshot>, Option<BaselineSnapshot>) {
        (
            self.levels.map(|l| self.client_snapshot(&l, MINUTE)),
            self.site_levels.map(|l| self.site_snapshot(&l)),
        )
    }

    /// Requests per minute window above which the site-wide rule can fire (given as many more
    /// clients): the larger of `global_multiplier_threshold` × the median, the median plus
    /// `global_z_threshold` robust deviations, and `global_min_requests`; `None` until learned.
    pub fn site_alert_limit(&self) -> Option<f64> {
        let b = self.site_levels?;
        Some(
            (b.median + self.s.global_z_threshold * site_scale(&b))
                .max(self.s.global_multiplier_threshold * b.median)
                .max(f64::from(self.s.global_min_requests)),
        )
    }

    /// The per-client limits in force, by window.
    pub fn limits(&self) -> [WindowLimit; 3] {
        let floors = self.floors();
        let secs = [self.s.short_secs, self.s.window_secs, self.s.long_secs];
        std::array::from_fn(|i| WindowLimit {
            window: Window::ALL[i],
            secs: secs[i],
            limit: self.limits[i],
            learned: self.learned[i],
            floor: floors[i],
            decided_by: self.decided_by(i),
            level: self.levels.map_or(0.0, |l| l.high[i]),
            median: self.levels.map_or(0.0, |l| l.q50[i]),
        })
    }

    /// The floors in force: the safety net once levels are learned, and the floors ×
    /// `untrained_factor` until then (a site with too few clients yet gets cautious limits).
    fn floors(&self) -> [f64; 3] {
        let k = match self.learned[0] {
            Some(_) => 1.0,
            None => self.s.untrained_factor,
        };
        [self.s.short_floor, self.s.minute_floor, self.s.long_floor].map(|f| f * k)
    }

    fn decided_by(&self, w: usize) -> DecidedBy {
        match self.learned[w] {
            Some(l) if l >= self.floors()[w] => DecidedBy::Learned,
            _ => DecidedBy::Floor,
        }
    }

    /// Feed one request. Requests should come in time order; one up to the tolerance older than
    /// the newest is counted in its own second, an older one in `stats.late` only.
    pub fn observe(&mut self, req: &Request) {
        let t = req.time;
        match self.now {
            None => {
                self.now = Some(t);
                self.stats.first_time = Some(t);
                self.period = self.period_of(t);
                self.hour = t.div_euclid(3600);
            }
            Some(now) if t < now - self.tolerance => {
                self.stats.late += 1;
                return;
            }
            Some(now) if t > now => self.advance_to(t),
            Some(_) => {}
        }
        let now = self.now.expect("set above");
        self.stats.requests += 1;
        self.stats.last_time = Some(self.stats.last_time.map_or(t, |l| l.max(t)));
        let c = Counts::of(req);
        let (period, hour) = (self.period, self.hour);
        let gap = self.s.episode_gap_secs as i64;
        let (w, long) = (self.s.window_secs as i64, self.s.long_secs as i64);
        if self.ips.len() >= self.s.max_clients && !self.ips.contains_key(&req.ip) {
            self.relieve(now);
        }
        let st = match self.ips.entry(req.ip) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.seen.insert(req.ip);
                e.insert(Box::new(IpState::new(t)))
            }
        };
        if st.banned_at.is_some() && t - st.last_seen >= gap {
            st.banned_at = None; // quiet long enough: a new episode starts
        }
        // Eviction is only due when the clock moved since the client's last request.
        if st.secs.add(t, &c) || t < now {
            st.secs.evict(now - w);
        }
        let slot = t.div_euclid(SLOT_SECS);
        if st.slots.add(slot, &c) || t < now {
            let oldest = (now - long).div_euclid(SLOT_SECS);
            st.slots.evict(oldest);
            st.page_paths.evict(oldest);
        }
        if c.pages > 0 {
            st.page_paths.add(slot, req.path_hash());
        }
        st.agents_seen.add(req.agent_hash(), t, AGENTS_CAP);
        if c.errors > 0 {
            st.error_paths.add(req.path_hash(), t, ERROR_PATHS_CAP);
        }
        st.total += 1;
        st.first_seen = st.first_seen.min(t);
        st.last_seen = st.last_seen.max(t);
        // The text is only read when a key enters a list: reading it on every request was a
        // cache miss on the request's text.
        st.paths.add(req.path_hash(), || req.path());
        st.agents.add(req.agent_hash(), || req.user_agent());
        st.statuses.add(req.status);
        let load = c.load(self.s.asset_weight) as f32;
        if st.seen_period != period {
            st.seen_period = period;
            st.seen = SeriesPoint {
                t: period,
                requests: 0,
                errors: 0,
                pages: 0,
                load: 0.0,
            };
            self.period_seen_ips.push(req.ip);
        }
        st.seen.requests += 1;
        st.seen.errors += c.errors;
        st.seen.pages += c.pages;
        st.seen.load += load;
        self.period_all.requests += 1;
        self.period_all.errors += c.errors;
        let banned = st.banned_at.is_some();
        if !banned {
            self.site.add(t, &c);
            self.period_site.add(&c);
        }
        let m = measure(st, now, &self.s);
        if !banned {
            if st.hour != hour {
                st.hour = hour;
                st.peaks = [0.0; 3];
                self.hour_ips.push(req.ip);
            }
            for (p, v) in st.peaks.iter_mut().zip(m.value) {
                *p = p.max(v as f32);
            }
        }
        let over = m.value.iter().zip(&self.quick).any(|(v, q)| v > q);
        if over && !banned && self.warmed_up(now) && !self.allow.contains(&req.ip) {
            self.evaluate_ip(req.ip, now, m);
        }
    }

    /// Move log time forward to `t`, closing the seconds and periods before it. `follow` calls
    /// this on its ticks so a site-wide alert never waits for the next request.
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

    /// Whether the rules are in force at the open second: the warm-up of log time is over.
    /// Before that, baselines are learned but nothing is decided; after it, the floors apply
    /// until the learned levels exceed them.
    pub fn warmed_up_now(&self) -> bool {
        self.now.is_some_and(|t| self.warmed_up(t))
    }

    fn warmed_up(&self, t: i64) -> bool {
        self.stats
            .first_time
            .is_some_and(|f| t - f >= self.s.warmup_secs as i64)
    }

    fn span(&self) -> LearnSpan {
        LearnSpan {
            rolling_secs: self.s.baseline_secs as i64,
            site_secs: self.s.site_baseline_secs as i64,
            slot_days: self.s.hour_slot_days,
            slot_min: self.s.hour_slot_min_clients,
            quantile: self.s.quantile,
        }
    }

    /// Close a period: the clients' and the site's points, the hour's peaks when the hour ends,
    /// the levels when due.
    fn close_period(&mut self, t: i64) {
        let period = self.period;
        let seen = std::mem::take(&mut self.period_seen_ips);
        let clients = seen
            .iter()
            .filter(|ip| self.ips.get(*ip).is_some_and(|st| st.banned_at.is_none()))
            .count() as u32;
        if self.warmed_up(period) {
            self.evaluate_site(period, clients, &seen);
        }
        for ip in &seen {
            if let Some(st) = self.ips.get_mut(ip) {
                let point = st.seen;
                if st.recent.len() == RECENT_PERIODS {
                    st.recent.pop_front();
                }
                st.recent.push_back(point);
                if let Some(h) = st.history.as_mut().filter(|h| h.len() < MAX_SERIES) {
                    h.push(point);
                }
            }
        }
        // Keep the list's memory for the next period (it regrew from nothing every minute).
        let mut seen = seen;
        seen.clear();
        self.period_seen_ips = seen;
        if self.period_all.requests > 0 {
            let (_, site) = self.baselines();
            self.timeline.push(TimelinePoint {
                t: period,
                requests: self.period_all.requests,
                errors: self.period_all.errors,
                ip_mean: self.limits[MINUTE],
                ip_std: 0.0,
                site_mean: site.map_or(0.0, |b| b.mean),
                site_std: site.map_or(0.0, |b| b.std),
            });
        }
        self.period_all = SeriesPoint {
            t: 0,
            requests: 0,
            errors: 0,
            pages: 0,
            load: 0.0,
        };
        if self.period_site.requests() > 0 {
            let c = self.period_site;
            self.learner
                .push_site_minute(period, c.requests() as f64, clients, c.pages, c.errors);
        }
        self.period_site = Counts::default();
        if self.last_sweep.is_none_or(|l| t - l >= SWEEP_EVERY_SECS) {
            self.sweep(t);
        }
        let new_hour = t.div_euclid(3600);
        if new_hour != self.hour {
            let peaks = self.take_hour_peaks();
            let days = self.s.hour_slot_days;
            self.learner.close_hour(self.hour, peaks.into_iter(), days);
            self.hour = new_hour;
        }
        let due = self
            .last_recompute
            .is_none_or(|l| t - l >= self.s.recompute_secs as i64);
        if due {
            self.recompute(t);
        }
    }

    /// The open hour's peaks of the clients not banned in it, tracked or forgotten.
    fn open_hour_peaks(&self) -> Vec<Peaks> {
        let hour = self.hour;
        let mut peaks: Vec<Peaks> = self
            .hour_ips
            .iter()
            .filter_map(|ip| self.ips.get(ip))
            .filter(|st| st.hour == hour && st.banned_hour != hour)
            .map(|st| st.peaks)
            .collect();
        for &(p, n) in &self.forgotten_peaks {
            peaks.extend(std::iter::repeat_n(p, n as usize));
        }
        peaks
    }

    /// [`Self::open_hour_peaks`], and forget who they were (the hour closes).
    fn take_hour_peaks(&mut self) -> Vec<Peaks> {
        let peaks = self.open_hour_peaks();
        // Keep the list's memory for the next hour (it regrew from nothing every hour).
        self.hour_ips.clear();
        self.forgotten_peaks.clear();
        peaks
    }

    /// Forget clients that can no longer matter: idle longer than the long window and their
    /// own history's span (back after that, a client's windows and history are those of a new
    /// one), not active in the open hour (its peaks there are one baseline sample, however
    /// often it comes back), not in a ban episode, never banned (their series is the report's).
    fn sweep(&mut self, now: i64) {
        self.last_sweep = Some(now);
        let s = &self.s;
        let idle = (s.long_secs as i64).max(RECENT_PERIODS as i64 * s.window_secs as i64)
            + s.window_secs as i64;
        let hour = self.hour;
        let gone: Vec<IpAddr> = self
            .ips
            .iter()
            .filter(|(_, st)| st.last_seen < now - idle && st.hour != hour && forgettable(st))
            .map(|(ip, _)| *ip)
            .collect();
        self.forget(&gone);
    }

    /// Memory valve: `max_clients` are tracked and another arrives. Forget a quarter of the
    /// limit, the least useful first: quiet since the last minute, then the fewest requests,
    /// then the longest idle; never a client in a ban episode or with a series.
    fn relieve(&mut self, now: i64) {
        let quiet_since = now - self.s.window_secs as i64;
        let mut keyed: Vec<((bool, u64, i64), IpAddr)> = self
            .ips
            .iter()
            .filter(|(_, st)| forgettable(st))
            .map(|(ip, st)| ((st.last_seen >= quiet_since, st.total, st.last_seen), *ip))
            .collect();
        let n = (self.s.max_clients / 4).max(1).min(keyed.len());
        if n == 0 {
            return;
        }
        if n < keyed.len() {
            keyed.select_nth_unstable(n - 1);
        }
        let gone: Vec<IpAddr> = keyed[..n].iter().map(|(_, ip)| *ip).collect();
        self.forget(&gone);
    }

    fn forget(&mut self, gone: &[IpAddr]) {
        if gone.is_empty() {
            return;
        }
        let hour = self.hour;
        for ip in gone {
            let Some(st) = self.ips.remove(ip) else {
                continue;
            };
            if st.hour == hour && st.banned_hour != hour {
                let key = st.peaks.map(f32::to_bits);
                match self
                    .forgotten_peaks
                    .binary_search_by_key(&key, |(p, _)| p.map(f32::to_bits))
                {
                    Ok(i) => self.forgotten_peaks[i].1 += 1,
                    Err(i) => self.forgotten_peaks.insert(i, (st.peaks, 1)),
                }
            }
        }
        let ips = &self.ips;
        self.hour_ips.retain(|ip| ips.contains_key(ip));
        // Give memory back only when most of it is idle: shrinking on every sweep rehashed the
        // whole table every 5 minutes of log time, and it regrew as clients came back.
        let roomy = |len: usize, cap: usize| cap > 4 * len.max(1024);
        if roomy(self.ips.len(), self.ips.capacity()) {
            self.ips.shrink_to(2 * self.ips.len());
        }
        if roomy(self.hour_ips.len(), self.hour_ips.capacity()) {
            self.hour_ips.shrink_to(2 * self.hour_ips.len());
        }
    }

    /// Recompute the levels: the site's every `recompute_secs`; the clients' then too until a
    /// first hour is complete, and after that once per hour, from the completed hours (the open
    /// hour would add a 24th of the data at the cost of redoing the work every few minutes).
    fn recompute(&mut self, t: i64) {
        let hour = self.hour;
        let span = self.span();
        self.site_levels = self.learner.site_levels(t, span);
        let hourly = self.learner.has_hours();
        if !hourly || self.levels_hour != Some(hour) {
            let open: Vec<Peaks> = if hourly {
                Vec::new()
            } else {
                self.open_hour_peaks()
            };
            self.levels = self.learner.client_levels(t, &open, span);
            self.levels_hour = hourly.then_some(hour);
        }
        let enough = self.levels.is_some_and(|l| l.clients >= self.s.min_clients);
        let (m, factor) = (self.s.multiplier_threshold, self.s.error_surge_factor);
        self.learned = std::array::from_fn(|w| match self.levels {
            Some(l) if enough => Some(m * l.high[w]),
            _ => None,
        });
        let floors = self.floors();
        self.limits =
            std::array::from_fn(|w| self.learned[w].map_or(floors[w], |l| l.max(floors[w])));
        self.quick = self.limits.map(|l| l * factor);
        self.last_recompute = Some(t);
    }

    fn close_second(&mut self, s: i64) {
        let w = self.s.window_secs as i64;
        self.site.evict(s - w);
        let requests = self.site.sum().requests();
        if requests > self.stats.peak_window_requests {
            self.stats.peak_window_requests = requests;
            self.stats.peak_at = Some(s);
        }
    }

    fn client_snapshot(&self, l: &ClientLevels, w: usize) -> BaselineSnapshot {
        let spread = ((l.high[w] - l.q50[w]) / 2.326).max(0.0);
        BaselineSnapshot {
            mean: l.q50[w],
            std: spread,
            mean_learned: l.q50[w],
            std_learned: spread,
            error_share: l.error_share,
            source: l.source,
            samples: l.clients,
            level: l.high[w],
            quantile: self.s.quantile,
        }
    }

    fn site_snapshot(&self, l: &SiteLevels) -> BaselineSnapshot {
        BaselineSnapshot {
            mean: l.median,
            std: l.scale,
            mean_learned: l.median,
            std_learned: l.scale,
            error_share: self.levels.map_or(0.0, |c| c.error_share),
            source: l.source,
            samples: l.minutes,
            level: l.median,
            quantile: 0.5,
        }
    }

    fn evaluate_ip(&mut self, ip: IpAddr, now: i64, m: Measures) {
        let st = &self.ips[&ip];
        let s = &self.s;
        let site_share = self.levels.map_or(0.0, |l| l.error_share);
        // error_surge_ratio × the site's share, or halfway from it to 100 % where that is lower
        // (on a site that is mostly errors, a client with nothing but errors still surges).
        let surge_share = (s.error_surge_ratio * site_share.max(s.error_share_floor))
            .min((1.0 + site_share) / 2.0);
        let long_counts = m.counts[LONG];
        let agents = st.agents_seen.count(now - s.long_secs as i64, 2);
        let crowd =
            agents >= s.crowd_min_agents && long_counts.error_share() <= s.crowd_max_error_share;
        let crowd_factor = if crowd {
            (agents.min(s.crowd_max_agents) as f64).sqrt()
        } else {
            1.0
        };
        let history = own_history(st, now, s);
        let breadth = st.page_paths.estimate();
        let wide = breadth >= s.breadth_min_paths as f64;
        let secs = [s.short_secs, s.window_secs, s.long_secs];
        #[allow(clippy::needless_range_loop)] // w indexes five parallel arrays
        for w in 0..3 {
            let counts = m.counts[w];
            let share = counts.error_share();
            let surge = counts.pages > 0 && share >= surge_share;
            if w == LONG && !surge && !wide {
                continue; // the long window speaks through an error surge or breadth only
            }
            let k = if surge { s.error_surge_factor } else { 1.0 };
            let crowd_k = if w == LONG { 1.0 } else { crowd_factor };
            let limit = self.limits[w] * k * crowd_k;
            if m.value[w] <= limit {
                continue;
            }
            let per_min = counts.load(s.asset_weight) * 60.0 / secs[w] as f64;
            let z = history.map(|h| (per_min - h.mean) / h.std);
            let z_limit = k * s.z_threshold;
            // Credit for being steady goes to clients that keep to a few pages (pollers,
            // monitors, apps): one that crawls many pages gets none.
            let z_fired = match (history, z) {
                (Some(h), Some(z)) if h.clean && !wide => z > z_limit,
                _ => true,
            };
            if !z_fired {
                continue;
            }
            let level = self.levels.map_or(0.0, |l| l.high[w]);
            let mut checks = Vec::new();
            let mut rules = vec![Rule::Multiplier];
            let floor = self.floors()[w];
            let decided_by = self.decided_by(w);
            let how = match (decided_by, self.learned[w]) {
                (DecidedBy::Learned, _) => format!(
                    "{} × {level:.1} (the {} of {} client-hours' busiest {} s)",
                    s.multiplier_threshold,
                    percentile(s.quantile),
                    self.levels.map_or(0, |l| l.clients),
                    secs[w]
                ),
                (DecidedBy::Floor, Some(l)) => {
                    format!("the floor {floor:.0}; learned {l:.1} was lower")
                }
                (DecidedBy::Floor, None) => format!(
                    "the floor {floor:.0}; too few clients to learn from ({})",
                    self.levels.map_or(0, |l| l.clients)
                ),
            };
            checks.push(Check {
                rule: Rule::Multiplier,
                value: m.value[w],
                limit,
                fired: true,
                note: format!(
                    "{} {:.1} in {} s > {limit:.1} = {how}{}{}",
                    Window::ALL[w].measure(),
                    m.value[w],
                    secs[w],
                    if surge {
                        format!(" × {} (error surge)", s.error_surge_factor)
                    } else {
                        String::new()
                    },
                    if crowd_k > 1.0 {
                        format!(" × √{} (crowd)", agents.min(s.crowd_max_agents))
                    } else {
                        String::new()
                    },
                ),
            });
            let z_note = match (history, z) {
                (None, _) => "no own history (new or occasional client)".to_string(),
                (Some(_), _) if wide => format!(
                    "about {breadth:.0} distinct pages: a crawler gets no credit for being steady"
                ),
                (Some(h), _) if !h.clean => format!(
                    "own history has {:.0}% page errors: no credit for being steady",
                    h.error_share * 100.0
                ),
                (Some(h), Some(z)) => format!(
                    "{per_min:.1}/min vs its own {:.1} ± {:.1} over {} minutes: z {z:.1} > {z_limit:.1}",
                    h.mean, h.std, h.minutes
                ),
                (Some(_), None) => unreachable!("z is computed with a history"),
            };
            if history.is_some_and(|h| h.clean) && !wide {
                rules.push(Rule::Zscore);
            }
            checks.push(Check {
                rule: Rule::Zscore,
                value: z.unwrap_or(0.0),
                limit: z_limit,
                fired: true,
                note: z_note,
            });
            checks.push(Check {
                rule: Rule::ErrorSurge,
                value: share,
                limit: surge_share,
                fired: surge,
                note: format!(
                    "{:.0}% page errors in the window vs {:.0}% = {} × max(site {:.1}%, {:.0}%)",
                    share * 100.0,
                    surge_share * 100.0,
                    s.error_surge_ratio,
                    site_share * 100.0,
                    s.error_share_floor * 100.0
                ),
            });
            if surge {
                rules.push(Rule::ErrorSurge);
            }
            if w == LONG {
                checks.push(Check {
                    rule: Rule::Breadth,
                    value: breadth,
                    limit: s.breadth_min_paths as f64,
                    fired: wide,
                    note: format!(
                        "about {breadth:.0} distinct pages in {} s (crawling or scanning from {})",
                        s.long_secs, s.breadth_min_paths
                    ),
                });
                if wide {
                    rules.push(Rule::Breadth);
                }
            }
            if w != LONG {
                checks.push(Check {
                    rule: Rule::Crowd,
                    value: agents as f64,
                    limit: s.crowd_min_agents as f64,
                    fired: crowd,
                    note: format!(
                        "{agents} user agents seen twice or more in {} s, {:.0}% page errors (a crowd needs ≥ {} agents and ≤ {:.0}%)",
                        s.long_secs,
                        long_counts.error_share() * 100.0,
                        s.crowd_min_agents,
                        s.crowd_max_error_share * 100.0
                    ),
                });
                if crowd {
                    rules.push(Rule::Crowd);
                }
            }
            let requests = counts.requests();
            let window = Window::ALL[w];
            let reason = format!(
                "{} window: {} {:.1} in {} s ({requests} requests, {:.0}% page errors) > limit {limit:.1} ({}){}",
                window.name(),
                window.measure(),
                m.value[w],
                secs[w],
                share * 100.0,
                match decided_by {
                    DecidedBy::Learned => format!("{} × learned {level:.1}", s.multiplier_threshold),
                    DecidedBy::Floor => format!("floor {floor:.0}"),
                },
                [
                    surge.then(|| format!(" × {} error surge", s.error_surge_factor)),
                    (crowd_k > 1.0).then(|| format!(" × √{} crowd", agents.min(s.crowd_max_agents))),
                    (w == LONG && wide && !surge).then(|| format!("; {breadth:.0} distinct pages")),
                    Some(match (history, z) {
                        (Some(h), Some(z)) if h.clean && !wide => {
                            format!("; z {z:.1} vs its own history")
                        }
                        (Some(_), _) => "; history with errors".to_string(),
                        _ => "; no own history".to_string(),
                    }),
                ]
                .into_iter()
                .flatten()
                .collect::<String>()
            );
            let n = s.top_n;
            let d = Decision {
                action: Action::Ban,
                ip: Some(ip),
                at: now,
                rules,
                reason,
                window,
                window_secs: secs[w],
                requests_in_window: requests,
                rate_per_sec: requests as f64 / secs[w] as f64,
                error_share: share,
                baseline: self.levels.map(|l| self.client_snapshot(&l, w)).unwrap_or(
                    BaselineSnapshot {
                        mean: 0.0,
                        std: 0.0,
                        mean_learned: 0.0,
                        std_learned: 0.0,
                        error_share: 0.0,
                        source: BaselineSource::Rolling,
                        samples: 0,
                        level: 0.0,
                        quantile: s.quantile,
                    },
                ),
                z: z.unwrap_or(0.0),
                multiplier: if level > 0.0 { m.value[w] / level } else { 0.0 },
                z_threshold: z_limit,
                multiplier_threshold: s.multiplier_threshold * k * crowd_k,
                measured: m.value[w],
                limit,
                floor,
                decided_by,
                checks,
                requests_total: st.total,
                first_seen: st.first_seen,
                last_seen: st.last_seen,
                top_paths: st.paths.top(n),
                status_mix: st.statuses.to_map(),
                user_agents: st.agents.top(n.min(5)),
                top_ips: Vec::new(),
                duration_secs: s.ban_secs,
            };
            self.decisions.push(d);
            let hour = self.hour;
            let st = self.ips.get_mut(&ip).expect("evaluated IP exists");
            st.banned_at = Some(now);
            st.banned_hour = hour;
            if st.history.is_none() {
                let mut h: Vec<SeriesPoint> = st.recent.iter().copied().collect();
                h.truncate(MAX_SERIES);
                st.history = Some(h);
            }
            return;
        }
    }

    /// The site-wide rule, on a closed period of the clients not banned: `clients` of them, the
    /// IPs `seen` in it.
    fn evaluate_site(&mut self, period: i64, clients: u32, seen: &[IpAddr]) {
        let Some(base) = self.site_levels else {
            return;
        };
        let c = self.period_site;
        if c.requests() < self.s.global_min_requests as u64 {
            return;
        }
        let w = self.s.window_secs as i64;
        let s = period + w - 1;
        // Requests, as the timeline shows them (a surge of page views or of assets alike).
        let load = c.requests() as f64;
        let scale = site_scale(&base);
        let z = (load - base.median) / scale;
        let ratio = |x: f64, m: f64| if m > 0.0 { x / m } else { f64::INFINITY };
        let m = ratio(load, base.median);
        let breadth = ratio(clients as f64, base.clients.max(1.0));
        let (zt, mt) = (
            self.s.global_z_threshold,
            self.s.global_multiplier_threshold,
        );
        if !(z > zt && m > mt && breadth > mt) {
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
        let mut contributors: Vec<Count<IpAddr>> = seen
            .iter()
            .filter_map(|ip| {
                let st = self.ips.get(ip)?;
                (st.banned_at.is_none() && st.seen_period == period).then_some(Count {
                    value: *ip,
                    count: st.seen.requests as u64,
                })
            })
            .collect();
        contributors.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        contributors.truncate(self.s.top_n);
        let requests = c.requests();
        let z_note = format!(
            "z {z:.1} = ({load:.1} − median {:.1}) / {scale:.1} > {zt}",
            base.median
        );
        let reason = format!(
            "site-wide {requests} requests in {w} s ({:.1}/s) from {clients} clients: {m:.1}× the median minute {:.1} and {breadth:.1}× its {:.0} clients, {z_note}; top: {}",
            requests as f64 / w as f64,
            base.median,
            base.clients,
            contributors
                .iter()
                .take(3)
                .map(|c| format!("{} ({})", c.value, c.count))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let snapshot = self.site_snapshot(&base);
        self.decisions.push(Decision {
            action: Action::Alert,
            ip: None,
            at: s,
            rules: vec![Rule::GlobalMultiplier, Rule::GlobalZscore],
            reason,
            window: Window::Minute,
            window_secs: self.s.window_secs,
            requests_in_window: requests,
            rate_per_sec: requests as f64 / w as f64,
            error_share: c.error_share(),
            baseline: snapshot,
            z,
            multiplier: m,
            z_threshold: zt,
            multiplier_threshold: mt,
            measured: load,
            limit: (mt * base.median).max(base.median + zt * scale),
            floor: 0.0,
            decided_by: DecidedBy::Learned,
            checks: vec![
                Check {
                    rule: Rule::GlobalMultiplier,
                    value: m,
                    limit: mt,
                    fired: true,
                    note: format!(
                        "{load:.0} requests > {mt} × median {:.1}, and {clients} clients > {mt} × median {:.0}",
                        base.median, base.clients
                    ),
                },
                Check {
                    rule: Rule::GlobalZscore,
                    value: z,
                    limit: zt,
                    fired: true,
                    note: z_note,
                },
            ],
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

/// How often (log time) idle clients are looked for.
const SWEEP_EVERY_SECS: i64 = 300;

/// A client whose state no report and no episode needs.
fn forgettable(st: &IpState) -> bool {
    st.banned_at.is_none() && st.history.is_none()
}

/// A client's own usual load per minute, from its recent periods.
#[derive(Debug, Clone, Copy)]
struct History {
    minutes: usize,
    mean: f64,
    /// Standard deviation, at least √mean and 1 (counts are at least Poisson-noisy).
    std: f64,
    error_share: f64,
    /// Few enough page errors to earn credit for being steady.
    clean: bool,
}

/// The client's closed periods in the last `RECENT_PERIODS` periods, if there are enough.
fn own_history(st: &IpState, now: i64, s: &DetectSettings) -> Option<History> {
    let from = now - RECENT_PERIODS as i64 * s.window_secs as i64;
    let pts: Vec<&SeriesPoint> = st
        .recent
        .iter()
        .filter(|p| p.t >= from && p.t != st.seen_period && p.requests > 0)
        .collect();
    if pts.len() < s.history_min_minutes as usize {
        return None;
    }
    let n = pts.len() as f64;
    let mean = pts.iter().map(|p| p.load as f64).sum::<f64>() / n;
    let var = pts
        .iter()
        .map(|p| (p.load as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0).max(1.0);
    let (pages, errors) = pts.iter().fold((0u64, 0u64), |(p, e), x| {
        (p + x.pages as u64, e + x.errors as u64)
    });
    let error_share = if pages == 0 {
        0.0
    } else {
        errors as f64 / pages as f64
    };
    Some(History {
        minutes: pts.len(),
        mean,
        std: var.sqrt().max(mean.sqrt()).max(1.0),
        error_share,
        clean: error_share <= s.error_share_floor,
    })
}

/// A client's windows at log time `now` (its buckets already evicted to `now`).
fn measure(st: &IpState, now: i64, s: &DetectSettings) -> Measures {
    let mut counts = [
        st.secs.sum_after(now - s.short_secs as i64),
        st.secs.sum(),
        st.slots.sum(),
    ];
    let long = counts[LONG];
    if long.errors > 0
        && long.errors == long.not_found
        && st.error_paths.count(now - s.long_secs as i64, 1) < s.scan_min_paths
    {
        // 404s on one or two paths, over and over: a broken link or a monitor, not a probe.
        for c in &mut counts {
            c.errors = 0;
            c.not_found = 0;
        }
    }
    Measures {
        value: counts.map(|c| c.load(s.asset_weight)),
        counts,
    }
}

/// `0.99` → "99th percentile".
fn percentile(q: f64) -> String {
    let p = q * 100.0;
    let p = if (p - p.round()).abs() < 1e-9 {
        format!("{}", p.round())
    } else {
        format!("{p:.1}")
    };
    let suffix = match p.as_str() {
        s if s.ends_with('1') && !s.ends_with("11") => "st",
        s if s.ends_with('2') && !s.ends_with("12") => "nd",
        s if s.ends_with('3') && !s.ends_with("13") => "rd",
        _ => "th",
    };
    format!("{p}{suffix} percentile")
}

#[cfg(test)]
mod tests;
