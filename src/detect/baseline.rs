//! Baselines: what the clients of *this* site do, learned from the log itself.
//!
//! **Per client.** For every client and every hour it was active, the detector keeps its
//! busiest moments: its highest load in any short, any minute and any long window. One value per client and hour, so a handful of attackers
//! cannot outvote the many clients that behave: the learned level is a high quantile
//! ([`DetectSettings::quantile`], 0.99) of those peaks over the clients of the last hours,
//! pooled with the same hour of the day on previous days when there are enough of them. The
//! quantiles are computed with polars. Banned clients contribute nothing.
//!
//! **Site-wide.** The site's requests and distinct clients per minute (banned clients excluded),
//! summarised by their medians (and the median absolute deviation of requests) over the last
//! hour, pooled with the same hour on previous days.
//!
//! Memory and time are bounded, never by lines: each completed hour keeps its peaks as at most
//! [`KEPT_PER_HOUR`] evenly spaced order statistics (its quantile function) and its number of
//! clients, for `hour_slot_days` days; pooling draws from each hour a number of points
//! proportional to its clients, [`POOL`] in all, so a busy hour weighs what its clients weigh.
//!
//! [`DetectSettings::quantile`]: super::DetectSettings::quantile

use super::decision::BaselineSource;
#[cfg(not(fuzzing))]
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The three per-client measures, in this order everywhere.
pub const SHORT: usize = 0;
pub const MINUTE: usize = 1;
pub const LONG: usize = 2;

/// Order statistics kept per completed hour and measure.
pub const KEPT_PER_HOUR: usize = 256;
/// Points drawn from the pooled hours for the quantiles.
pub const POOL: usize = 4096;

/// One client's busiest moments in one hour: its highest load in a short, a minute and a long
/// window.
pub type Peaks = [f32; 3];

/// What the per-client rules compare against: quantiles of the clients' peaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientLevels {
    /// Client-hours behind the numbers.
    pub clients: u64,
    /// Median peak per measure (a typical client).
    pub q50: [f64; 3],
    /// The `quantile` peak per measure (the busiest normal clients).
    pub high: [f64; 3],
    /// Page-error share of the site's page requests (banned clients excluded).
    pub error_share: f64,
    pub source: BaselineSource,
}

/// The site's requests and clients per minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteLevels {
    /// Minutes behind the numbers.
    pub minutes: u64,
    pub median: f64,
    /// Median absolute deviation × 1.4826 (a standard deviation where the data is normal).
    pub scale: f64,
    /// Median number of distinct clients per minute.
    pub clients: f64,
    pub source: BaselineSource,
}

/// Peaks of one completed hour, each measure sorted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HourPeaks {
    clients: u64,
    peaks: [Vec<f32>; 3],
}

/// Everything the baselines are learned from, bounded by hours kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Learner {
    /// Completed hours (UNIX hour → peaks) within `slot_days` days.
    hours: BTreeMap<i64, HourPeaks>,
    /// Site per-minute (minute start, load, clients), for the rolling site baseline.
    site_recent: VecDeque<(i64, f32, u32)>,
    /// Site per-minute (load, clients) by hour, for the hour-of-day slots.
    site_hours: BTreeMap<i64, Vec<(f32, u32)>>,
    /// Site pages and page errors over the rolling span (error share).
    site_pages: VecDeque<(i64, u32, u32)>,
}

/// Settings the learner needs, copied from `DetectSettings`.
#[derive(Debug, Clone, Copy)]
pub struct LearnSpan {
    pub rolling_secs: i64,
    pub site_secs: i64,
    pub slot_days: u32,
    pub slot_min: u64,
    pub quantile: f64,
}

impl Learner {
    /// Store the peaks of a completed hour (one entry per client that was not banned).
    pub fn close_hour(&mut self, hour: i64, peaks: impl Iterator<Item = Peaks>, slot_days: u32) {
        let mut cols: [Vec<f32>; 3] = Default::default();
        for p in peaks {
            for (col, v) in cols.iter_mut().zip(p) {
                col.push(v);
            }
        }
        let clients = cols[0].len() as u64;
        if clients > 0 {
            for col in &mut cols {
                col.sort_unstable_by(f32::total_cmp);
                thin(col, KEPT_PER_HOUR);
            }
            self.hours.insert(
                hour,
                HourPeaks {
                    clients,
                    peaks: cols,
                },
            );
        }
        let oldest = hour - 24 * slot_days as i64;
        while self
            .hours
            .first_key_value()
            .is_some_and(|(h, _)| *h < oldest)
        {
            self.hours.pop_first();
        }
        while self
            .site_hours
            .first_key_value()
            .is_some_and(|(h, _)| *h < oldest)
        {
            self.site_hours.pop_first();
        }
    }

    /// Store the site's load and distinct clients in a completed minute, and its pages and
    /// page errors.
    pub fn push_site_minute(
        &mut self,
        minute: i64,
        load: f64,
        clients: u32,
        pages: u32,
        errors: u32,
    ) {
        self.site_recent.push_back((minute, load as f32, clients));
        self.site_pages.push_back((minute, pages, errors));
        self.site_hours
            .entry(minute.div_euclid(3600))
            .or_default()
            .push((load as f32, clients));
    }

    /// Whether any completed hour is stored (after that, the per-client levels change only when
    /// an hour completes: recomputing them every minute would sort the same numbers again).
    pub fn has_hours(&self) -> bool {
        !self.hours.is_empty()
    }

    /// Per-client levels at log time `now`: completed hours within the rolling span, the open
    /// hour's `open` peaks, and the same hour of day on previous days. `None` without any client.
    pub fn client_levels(
        &mut self,
        now: i64,
        open: &[Peaks],
        span: LearnSpan,
    ) -> Option<ClientLevels> {
        let hour = now.div_euclid(3600);
        let rolling_from = (now - span.rolling_secs).div_euclid(3600);
        // (clients, sorted peaks per measure) of every hour pooled; the open hour first.
        let mut open_cols: [Vec<f32>; 3] = Default::default();
        for p in open {
            for (col, v) in open_cols.iter_mut().zip(p) {
                col.push(*v);
            }
        }
        for col in &mut open_cols {
            col.sort_unstable_by(f32::total_cmp);
        }
        let mut parts: Vec<(u64, &[Vec<f32>; 3])> = Vec::new();
        if !open.is_empty() {
            parts.push((open.len() as u64, &open_cols));
        }
        let mut slot_clients = 0;
        for (h, hp) in &self.hours {
            let rolling = *h >= rolling_from && *h < hour;
            let slot = *h < hour && (hour - h) % 24 == 0;
            if !(rolling || slot) {
                continue;
            }
            if slot && !rolling {
                slot_clients += hp.clients;
            }
            parts.push((hp.clients, &hp.peaks));
        }
        let clients: u64 = parts.iter().map(|p| p.0).sum();
        if clients == 0 {
            return None;
        }
        let mut levels = ClientLevels {
            clients,
            source: if slot_clients >= span.slot_min && span.slot_min > 0 {
                BaselineSource::HourSlot
            } else {
                BaselineSource::Rolling
            },
            ..Default::default()
        };
        for m in 0..3 {
            let mut pooled = Vec::with_capacity(POOL + parts.len());
            for (n, cols) in &parts {
                let k = ((POOL as u64 * n).div_ceil(clients)).max(1) as usize;
                draw(&cols[m], k, &mut pooled);
            }
            let (q50, high) = quantiles(pooled, span.quantile);
            levels.q50[m] = q50;
            levels.high[m] = high;
        }
        levels.error_share = self.error_share(now, span.rolling_secs);
        Some(levels)
    }

    /// Site levels at log time `now`: the last `rolling_secs` of minutes, pooled with the same
    /// hour of day on previous days. `None` without any minute.
    pub fn site_levels(&mut self, now: i64, span: LearnSpan) -> Option<SiteLevels> {
        let from = now - span.site_secs;
        while self.site_recent.front().is_some_and(|(m, _, _)| *m < from) {
            self.site_recent.pop_front();
        }
        let hour = now.div_euclid(3600);
        let mut loads: Vec<f32> = self.site_recent.iter().map(|(_, l, _)| *l).collect();
        let mut clients: Vec<f32> = self.site_recent.iter().map(|(_, _, c)| *c as f32).collect();
        let mut slot_minutes = 0u64;
        for (h, v) in self.site_hours.range(..hour - 23) {
            if (hour - h) % 24 == 0 {
                slot_minutes += v.len() as u64;
                loads.extend(v.iter().map(|x| x.0));
                clients.extend(v.iter().map(|x| x.1 as f32));
            }
        }
        if loads.is_empty() {
            return None;
        }
        let minutes = loads.len() as u64;
        let (median, mad) = median_mad(loads);
        Some(SiteLevels {
            minutes,
            median,
            scale: 1.4826 * mad,
            clients: median_mad(clients).0,
            source: if slot_minutes >= 60 {
                BaselineSource::HourSlot
            } else {
                BaselineSource::Rolling
            },
        })
    }

    fn error_share(&mut self, now: i64, rolling_secs: i64) -> f64 {
        while self
            .site_pages
            .front()
            .is_some_and(|(m, _, _)| *m < now - rolling_secs)
        {
            self.site_pages.pop_front();
        }
        let (p, e) = self
            .site_pages
            .iter()
            .fold((0u64, 0u64), |(p, e), (_, pp, ee)| {
                (p + *pp as u64, e + *ee as u64)
            });
        if p == 0 {
            0.0
        } else {
            e as f64 / p as f64
        }
    }
}

/// `k` points of a sorted sample's quantile function, at (i + ½)/k (linear interpolation).
fn draw(sorted: &[f32], k: usize, out: &mut Vec<f32>) {
    let n = sorted.len();
    if n == 0 {
        return;
    }
    for i in 0..k {
        let x = (i as f64 + 0.5) / k as f64 * (n - 1) as f64;
        let lo = x as usize; // x ≥ 0: truncation is the floor (libm's floor was a hot call)
        let frac = x - lo as f64;
        let hi = (lo + 1).min(n - 1);
        out.push((sorted[lo] as f64 * (1.0 - frac) + sorted[hi] as f64 * frac) as f32);
    }
}

/// Keep at most `max` evenly spaced order statistics of a sorted vector (quantiles survive).
fn thin(sorted: &mut Vec<f32>, max: usize) {
    if sorted.len() <= max {
        return;
    }
    let n = sorted.len();
    let kept: Vec<f32> = (0..max).map(|i| sorted[i * (n - 1) / (max - 1)]).collect();
    *sorted = kept;
}

/// Median and the `q` quantile (linear interpolation), computed with polars. (Two selections
/// over the 4 096 draws cost less than sorting them once, runs and all.)
#[cfg(not(fuzzing))]
fn quantiles(values: Vec<f32>, q: f64) -> (f64, f64) {
    let values: Vec<f64> = values.into_iter().map(f64::from).collect();
    let ca = Float64Chunked::from_vec("peaks".into(), values);
    let at = |q: f64| {
        ca.quantile(q, QuantileMethod::Linear)
            .ok()
            .flatten()
            .unwrap_or(0.0)
    };
    (at(0.5), at(q))
}

/// Median and median absolute deviation, computed with polars.
#[cfg(not(fuzzing))]
fn median_mad(values: Vec<f32>) -> (f64, f64) {
    let values: Vec<f64> = values.into_iter().map(f64::from).collect();
    let ca = Float64Chunked::from_vec("load".into(), values);
    let median = ca.median().unwrap_or(0.0);
    let dev: Float64Chunked = ca.apply_values(|v| (v - median).abs());
    (median, dev.median().unwrap_or(0.0))
}

// The fuzz targets compile this module without polars (building polars with sanitizer
// coverage costs CI many minutes): the same statistics in plain Rust, checked against polars
// by `plain_statistics_match_polars`.
#[cfg(fuzzing)]
use plain::{median_mad, quantiles};

#[cfg(any(test, fuzzing))]
mod plain {
    /// The `q` quantile of sorted values, interpolated linearly as polars does.
    fn at(sorted: &[f64], q: f64) -> f64 {
        match sorted.len() {
            0 => 0.0,
            n => {
                let x = q.clamp(0.0, 1.0) * (n - 1) as f64;
                let lo = x.floor() as usize;
                let hi = (lo + 1).min(n - 1);
                sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo as f64)
            }
        }
    }

    fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn quantiles(values: Vec<f32>, q: f64) -> (f64, f64) {
        let v = sorted(values.into_iter().map(f64::from));
        (at(&v, 0.5), at(&v, q))
    }

    pub fn median_mad(values: Vec<f32>) -> (f64, f64) {
        let v = sorted(values.into_iter().map(f64::from));
        let median = at(&v, 0.5);
        let dev = sorted(v.iter().map(|x| (x - median).abs()));
        (median, at(&dev, 0.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: LearnSpan = LearnSpan {
        rolling_secs: 3600,
        site_secs: 3600,
        slot_days: 7,
        slot_min: 100,
        quantile: 0.99,
    };

    #[test]
    fn polars_quantiles_match_the_textbook() {
        let v: Vec<f32> = (1..=101).map(|i| i as f32).collect();
        let (q50, q99) = quantiles(v, 0.99);
        assert_eq!(q50, 51.0);
        assert!((q99 - 100.0).abs() < 1e-9);
        // Runs in any order (the pooled hours) give the same.
        let v: Vec<f32> = (52..=101).chain(1..=51).rev().map(|i| i as f32).collect();
        assert_eq!(quantiles(v, 0.99), (q50, q99));
        let (m, mad) = median_mad(vec![1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]);
        assert_eq!((m, mad), (2.0, 1.0));
    }

    #[test]
    fn plain_statistics_match_polars() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [0, 1, 2, 3, 4, 7, 100, 101, 1000] {
            let v: Vec<f32> = (0..n).map(|_| (next() % 500) as f32 / 4.0).collect();
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                let (a, b) = (quantiles(v.clone(), q), plain::quantiles(v.clone(), q));
                assert!(
                    (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9,
                    "{n} {q}"
                );
            }
            let (a, b) = (median_mad(v.clone()), plain::median_mad(v.clone()));
            assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9, "{n}");
        }
    }

    #[test]
    fn a_few_attackers_do_not_move_the_learned_level() {
        let mut l = Learner::default();
        // 1 000 clients in the last hour, busiest minute 1..=20; 5 attackers at 1 000.
        let mut peaks: Vec<Peaks> = (0..1000).map(|i| [1.0, (i % 20 + 1) as f32, 0.0]).collect();
        peaks.extend((0..5).map(|_| [1000.0, 1000.0, 500.0]));
        l.close_hour(10, peaks.into_iter(), 7);
        let lv = l.client_levels(11 * 3600 + 60, &[], SPAN).unwrap();
        assert_eq!(lv.clients, 1005);
        assert!(lv.high[MINUTE] <= 20.0, "{lv:?}");
        assert_eq!(lv.source, BaselineSource::Rolling);
    }

    #[test]
    fn same_hour_on_previous_days_is_pooled() {
        let mut l = Learner::default();
        let day = 24;
        // Yesterday 10:00: 300 clients at 50; today 09:00: 10 clients at 5.
        l.close_hour(10, (0..300).map(|_| [5.0, 50.0, 0.0]), 7);
        l.close_hour(day + 9, (0..10).map(|_| [1.0, 5.0, 0.0]), 7);
        let lv = l
            .client_levels((day + 10) * 3600 + 120, &[[1.0, 4.0, 0.0]], SPAN)
            .unwrap();
        assert_eq!(lv.clients, 311);
        assert_eq!(lv.source, BaselineSource::HourSlot);
        assert_eq!(lv.high[MINUTE], 50.0);
        // Eight days later the slot is gone.
        l.close_hour(day * 9 + 9, std::iter::empty(), 7);
        assert!(!l.hours.contains_key(&10));
    }

    #[test]
    fn thinning_keeps_the_ends_and_the_quantiles() {
        let mut v: Vec<f32> = (0..10_001).map(|i| i as f32).collect();
        thin(&mut v, 101);
        assert_eq!(v.len(), 101);
        assert_eq!((v[0], v[50], v[100]), (0.0, 5000.0, 10_000.0));
    }

    #[test]
    fn site_median_follows_the_last_hour() {
        let mut l = Learner::default();
        for m in 0..120 {
            l.push_site_minute(m * 60, if m < 60 { 100.0 } else { 10.0 }, 5, 10, 1);
        }
        let s = l.site_levels(120 * 60, SPAN).unwrap();
        assert_eq!((s.median, s.minutes, s.clients), (10.0, 60, 5.0));
    }
}
