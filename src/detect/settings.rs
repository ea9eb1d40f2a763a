//! Every number the detector uses, with its default. One struct, read from TOML (`[detect]`) and
//! overridden by flags; `deny_unknown_fields` so a typo in a config file is an error, not a
//! silently ignored setting.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Detector settings. Rates are **requests per window** (`window_secs`), the unit the per-IP
/// baseline is learned in; the report also shows them per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    /// Sliding window for per-IP and site-wide rates, seconds of log time.
    pub window_secs: u32,
    /// How much recent traffic the rolling baseline covers, seconds.
    pub baseline_secs: u32,
    /// How often the baseline is recomputed, seconds of log time.
    pub recompute_secs: u32,
    /// No decision before this much log time has passed since the first request.
    pub warmup_secs: u32,
    /// Ban when an IP's window count is more than this many standard deviations above the mean.
    pub z_threshold: f64,
    /// …or more than this multiple of the mean.
    pub multiplier_threshold: f64,
    /// An IP whose error share (4xx/5xx) is at least this multiple of the baseline share…
    pub error_surge_ratio: f64,
    /// …gets both thresholds multiplied by this factor (0.7: z 3.0 → 2.1, 5× → 3.5×).
    pub error_surge_factor: f64,
    /// Below this many requests in a window, an IP is never banned.
    pub min_requests: u32,
    /// Floor for the per-IP baseline mean (requests per window): a quiet site still expects a
    /// browser to load a page and its assets.
    pub ip_mean_floor: f64,
    /// Floor for the per-IP baseline standard deviation (requests per window).
    pub ip_std_floor: f64,
    /// Floor for the baseline error share used by the surge rule.
    pub error_share_floor: f64,
    /// Floors for the site-wide baseline (requests per window).
    pub global_mean_floor: f64,
    pub global_std_floor: f64,
    /// Below this many site-wide requests in a window, no global alert.
    pub global_min_requests: u32,
    /// Use the same hour-of-day slot from previous days once it holds this many per-IP samples.
    pub hour_slot_min_samples: u32,
    /// How many days of hour-of-day slots are kept.
    pub hour_slot_days: u32,
    /// An IP (or the site) quiet for this long ends its episode: the next burst is a new one.
    pub episode_gap_secs: u32,
    /// Never ban these networks (loopback is always added).
    pub allowlist: Vec<IpNet>,
    /// Also never ban private ranges (RFC 1918, CGNAT, ULA, link-local). Off by default: on a
    /// host without a proxy, attackers on a LAN are real; behind a proxy use `trusted_proxies`.
    pub allow_private: bool,
    /// Ban length written into the ban lists (`decisions.csv` duration, nft/ipset timeouts are
    /// not used: bans stay until you remove them).
    pub ban_secs: u64,
    /// How many paths/user agents a decision lists.
    pub top_n: usize,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            window_secs: 60,
            baseline_secs: 1800,
            recompute_secs: 60,
            warmup_secs: 120,
            z_threshold: 3.0,
            multiplier_threshold: 5.0,
            error_surge_ratio: 3.0,
            error_surge_factor: 0.7,
            min_requests: 30,
            ip_mean_floor: 25.0,
            ip_std_floor: 35.0,
            error_share_floor: 0.05,
            global_mean_floor: 60.0,
            global_std_floor: 60.0,
            global_min_requests: 200,
            hour_slot_min_samples: 500,
            hour_slot_days: 7,
            episode_gap_secs: 600,
            allowlist: Vec::new(),
            allow_private: false,
            ban_secs: 4 * 3600,
            top_n: 10,
        }
    }
}

impl DetectSettings {
    /// Reject settings that would make the detector meaningless, with the setting's name.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("window_secs", self.window_secs as f64),
            ("baseline_secs", self.baseline_secs as f64),
            ("recompute_secs", self.recompute_secs as f64),
            ("z_threshold", self.z_threshold),
            ("multiplier_threshold", self.multiplier_threshold),
            ("error_surge_ratio", self.error_surge_ratio),
            ("error_surge_factor", self.error_surge_factor),
            ("ip_mean_floor", self.ip_mean_floor),
            ("ip_std_floor", self.ip_std_floor),
            ("global_mean_floor", self.global_mean_floor),
            ("global_std_floor", self.global_std_floor),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number (got {v})"));
            }
        }
        if self.baseline_secs < self.window_secs {
            return Err("baseline_secs must be at least window_secs".into());
        }
        if self.window_secs > 3600 {
            return Err("window_secs must be at most 3600".into());
        }
        if !(0.0..=1.0).contains(&self.error_share_floor) {
            return Err("error_share_floor must be between 0 and 1".into());
        }
        Ok(())
    }
}
