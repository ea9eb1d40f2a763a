//! Every number the detector uses, with its default. One struct, read from TOML (`[detect]`) and
//! overridden by flags; `deny_unknown_fields` so a typo in a config file is an error, not a
//! silently ignored setting. README's "How bouncer decides" explains each one.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Detector settings. Loads are in **page requests per window** (an asset counts
/// `asset_weight`); the window sizes are seconds of log time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    /// Short window: floods are banned within its first second.
    pub short_secs: u32,
    /// Minute window: scrapers, brute-forcers, fast scanners.
    pub window_secs: u32,
    /// Long window: low-and-slow scanning, through the error surge.
    pub long_secs: u32,
    /// What an asset request (static file, HEAD, 304, 206) costs relative to a page: a page
    /// view with 100 images is one visit, not 101 page views.
    pub asset_weight: f64,
    /// The learned level is this quantile of the clients' busiest windows (one value per client
    /// and hour): robust as long as fewer than 1 − quantile of the clients are attackers.
    pub quantile: f64,
    /// Ban when a client's load is more than this multiple of the learned level (the spike
    /// multiplier)…
    pub multiplier_threshold: f64,
    /// …and, when the client has a history, more than this many standard deviations above its
    /// own usual load per minute (the z-score): a client that has been this busy for a while
    /// without errors (a poller, a monitor, an app behind a NAT) is not banned for being steady.
    pub z_threshold: f64,
    /// Minutes with traffic in the last half hour before a client's own history counts.
    pub history_min_minutes: u32,
    /// A client whose page-error share in a window is at least this multiple of the site's…
    pub error_surge_ratio: f64,
    /// …gets both thresholds multiplied by this factor (0.7: 5× → 3.5×, z 3.0 → 2.1). The long
    /// window's rule applies only with an error surge.
    pub error_surge_factor: f64,
    /// Floor for the site's error share used by the surge rule.
    pub error_share_floor: f64,
    /// A client showing at least this many distinct user agents (each seen twice or more) in the
    /// long window, with a page-error share ≤ `crowd_max_error_share`, is a crowd behind one
    /// address (carrier NAT, office, school): its limits grow with √agents.
    pub crowd_min_agents: u32,
    pub crowd_max_error_share: f64,
    /// At most this many agents count toward a crowd (√64 = 8× the limit).
    pub crowd_max_agents: u32,
    /// A client requesting at least this many distinct pages in the long window is crawling or
    /// scanning (people read a dozen; scanners hundreds): the long window applies to it without
    /// an error surge. A poller hitting a few pages over and over is not.
    pub breadth_min_paths: u32,
    /// Repeated 404s on fewer than this many distinct paths are a broken link or a monitor, not a
    /// probe: they do not count as errors.
    pub scan_min_paths: u32,
    /// Safety net: the limits are never below these loads, whatever was learned.
    pub short_floor: f64,
    pub minute_floor: f64,
    pub long_floor: f64,
    /// Until the baseline holds `min_clients` client-hours (a tiny site, or the first minutes of
    /// `follow`), the limits are the floors × `untrained_factor`: cautious, since nothing says
    /// yet what this site's clients do.
    pub min_clients: u64,
    pub untrained_factor: f64,
    /// Recent log time the per-client levels cover (pooled with the same hour on previous days).
    pub baseline_secs: u32,
    /// Recent log time the site's levels cover (pooled with the same hour on previous days).
    pub site_baseline_secs: u32,
    /// How often the levels are recomputed, seconds of log time.
    pub recompute_secs: u32,
    /// No decision before this much log time has passed since the first request.
    pub warmup_secs: u32,
    /// Pool the same hour of day from previous days…
    pub hour_slot_days: u32,
    /// …and call the baseline `hour_slot` once those hours hold this many client-hours.
    pub hour_slot_min_clients: u64,
    /// Site-wide alert, per minute of clients not banned: the requests and the number of
    /// distinct clients must both exceed this multiple of their medians (a surge from many
    /// clients: one busy client is the per-client rules' business)…
    pub global_multiplier_threshold: f64,
    /// …the requests must be this many robust standard deviations above their median…
    pub global_z_threshold: f64,
    /// …and at least this many requests.
    pub global_min_requests: u32,
    /// A client (or the site) quiet for this long ends its episode: the next burst is a new one.
    pub episode_gap_secs: u32,
    /// Never ban these networks (loopback is always added).
    pub allowlist: Vec<IpNet>,
    /// Also never ban private ranges (RFC 1918, CGNAT, ULA, link-local). Off by default: on a
    /// host without a proxy, attackers on a LAN are real; behind a proxy use `trusted_proxies`.
    pub allow_private: bool,
    /// Ban length written into the ban lists (`decisions.csv` duration, ipset/nft timeouts).
    pub ban_secs: u64,
    /// How many paths/user agents a decision lists.
    pub top_n: usize,
    /// Memory bound: clients tracked at once. A client idle for longer than the long window and
    /// its own history's half hour is forgotten anyway; past this many (a flood from spoofed or
    /// rotating addresses), the least useful are forgotten first — quiet since the last
    /// minute, then the fewest requests, then the longest idle — never a banned one.
    pub max_clients: usize,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            short_secs: 10,
            window_secs: 60,
            long_secs: 600,
            asset_weight: 0.1,
            quantile: 0.99,
            multiplier_threshold: 6.0,
            z_threshold: 3.0,
            history_min_minutes: 5,
            error_surge_ratio: 3.0,
            error_surge_factor: 0.7,
            error_share_floor: 0.05,
            crowd_min_agents: 3,
            crowd_max_error_share: 0.05,
            crowd_max_agents: 64,
            breadth_min_paths: 100,
            scan_min_paths: 3,
            short_floor: 20.0,
            minute_floor: 40.0,
            long_floor: 60.0,
            min_clients: 300,
            untrained_factor: 3.0,
            baseline_secs: 86_400,
            site_baseline_secs: 3600,
            recompute_secs: 300,
            warmup_secs: 120,
            hour_slot_days: 7,
            hour_slot_min_clients: 200,
            global_multiplier_threshold: 3.0,
            global_z_threshold: 6.0,
            global_min_requests: 200,
            episode_gap_secs: 600,
            allowlist: Vec::new(),
            allow_private: false,
            ban_secs: 4 * 3600,
            top_n: 10,
            max_clients: 100_000,
        }
    }
}

impl DetectSettings {
    /// Reject settings that would make the detector meaningless, with the setting's name.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("short_secs", self.short_secs as f64),
            ("window_secs", self.window_secs as f64),
            ("long_secs", self.long_secs as f64),
            ("baseline_secs", self.baseline_secs as f64),
            ("site_baseline_secs", self.site_baseline_secs as f64),
            ("recompute_secs", self.recompute_secs as f64),
            ("multiplier_threshold", self.multiplier_threshold),
            ("z_threshold", self.z_threshold),
            ("error_surge_ratio", self.error_surge_ratio),
            ("error_surge_factor", self.error_surge_factor),
            ("short_floor", self.short_floor),
            ("minute_floor", self.minute_floor),
            ("long_floor", self.long_floor),
            ("untrained_factor", self.untrained_factor),
            (
                "global_multiplier_threshold",
                self.global_multiplier_threshold,
            ),
            ("global_z_threshold", self.global_z_threshold),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number (got {v})"));
            }
        }
        if !(self.short_secs <= self.window_secs && self.window_secs <= self.long_secs) {
            return Err("windows must grow: short_secs ≤ window_secs ≤ long_secs".into());
        }
        if self.max_clients < 100 {
            return Err(format!(
                "max_clients must be at least 100 (got {})",
                self.max_clients
            ));
        }
        if self.long_secs > 3600 {
            return Err("long_secs must be at most 3600".into());
        }
        if !self.long_secs.is_multiple_of(10) {
            return Err("long_secs must be a multiple of 10 (its buckets are 10 s)".into());
        }
        if self.baseline_secs < self.window_secs {
            return Err("baseline_secs must be at least window_secs".into());
        }
        for (name, v) in [
            ("asset_weight", self.asset_weight),
            ("error_share_floor", self.error_share_floor),
            ("crowd_max_error_share", self.crowd_max_error_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1 (got {v})"));
            }
        }
        if !(self.quantile > 0.5 && self.quantile < 1.0) {
            return Err(format!(
                "quantile must be between 0.5 and 1 (got {})",
                self.quantile
            ));
        }
        if self.error_surge_factor > 1.0 {
            return Err("error_surge_factor must be at most 1 (it tightens)".into());
        }
        Ok(())
    }
}
