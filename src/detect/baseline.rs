//! Baselines: what normal traffic looks like, learned from closed windows of log time.
//!
//! Samples are per window period (`window_secs`): one **per-IP sample** per IP active in the
//! period (its request and error counts), and one **site-wide sample** per period with traffic.
//! Banned IPs contribute nothing (no baseline poisoning). Idle periods are not samples: a log
//! with gaps (downtime, anonymised minutes) would otherwise teach a baseline of zero.
//!
//! The rolling statistics (mean, standard deviation, error share over the last `baseline_secs`)
//! are computed with polars over the sample columns. Samples older than that are folded into
//! hour-of-day slots (count, sum, sum of squares per hour of each day, kept `hour_slot_days`), and
//! once the slot for the current hour holds enough samples from previous days it is preferred.
//! Memory is bounded by periods × active IPs, never by lines.

use super::decision::{BaselineSnapshot, BaselineSource};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Raw statistics of a set of samples, before floors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub n: u64,
    pub mean: f64,
    pub std: f64,
    pub error_share: f64,
}

/// Running sums for one hour of one day; enough to pool mean and variance exactly.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Sums {
    n: u64,
    sum: f64,
    sumsq: f64,
    errors: f64,
}

impl Sums {
    fn add(&mut self, count: u32, errors: u32) {
        let c = count as f64;
        self.n += 1;
        self.sum += c;
        self.sumsq += c * c;
        self.errors += errors as f64;
    }

    fn merge(&mut self, o: &Sums) {
        self.n += o.n;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        self.errors += o.errors;
    }

    fn stats(&self) -> Stats {
        if self.n == 0 {
            return Stats::default();
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = if self.n > 1 {
            ((self.sumsq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        let share = if self.sum > 0.0 {
            self.errors / self.sum
        } else {
            0.0
        };
        Stats {
            n: self.n,
            mean,
            std: var.sqrt(),
            error_share: share,
        }
    }
}

/// One stream of samples (per-IP, or site-wide) with its rolling buffer and hour slots.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SampleSeries {
    /// (period start, requests, errors), oldest first.
    rolling: VecDeque<(i64, u32, u32)>,
    /// hour index (UNIX hour) → sums of samples that left the rolling buffer.
    slots: BTreeMap<i64, Sums>,
}

impl SampleSeries {
    pub fn push(&mut self, period_start: i64, requests: u32, errors: u32) {
        self.rolling.push_back((period_start, requests, errors));
    }

    /// Drop samples older than `now - keep_secs` from the rolling buffer into hour slots, and
    /// slots older than `slot_days` days.
    fn age(&mut self, now: i64, keep_secs: i64, slot_days: u32) {
        while let Some(&(t, c, e)) = self.rolling.front() {
            if t > now - keep_secs {
                break;
            }
            self.slots.entry(t.div_euclid(3600)).or_default().add(c, e);
            self.rolling.pop_front();
        }
        let oldest_hour = now.div_euclid(3600) - 24 * slot_days as i64;
        while let Some((&h, _)) = self.slots.first_key_value() {
            if h >= oldest_hour {
                break;
            }
            self.slots.pop_first();
        }
    }

    /// Rolling statistics, computed with polars over the sample columns.
    fn rolling_stats(&self) -> Stats {
        if self.rolling.is_empty() {
            return Stats::default();
        }
        let requests: Vec<f64> = self.rolling.iter().map(|s| s.1 as f64).collect();
        let errors: Vec<f64> = self.rolling.iter().map(|s| s.2 as f64).collect();
        polars_stats(requests, errors).unwrap_or_else(|_| {
            // polars cannot fail on two dense f64 columns; keep a correct answer if it ever does.
            let mut s = Sums::default();
            self.rolling.iter().for_each(|&(_, c, e)| s.add(c, e));
            s.stats()
        })
    }

    /// Pooled statistics of the same hour of day on previous days.
    fn hour_slot_stats(&self, now: i64) -> Stats {
        let hour = now.div_euclid(3600);
        let mut pooled = Sums::default();
        for (_, s) in self
            .slots
            .range(..=hour - 24)
            .filter(|(h, _)| (hour - **h) % 24 == 0)
        {
            pooled.merge(s);
        }
        pooled.stats()
    }

    pub fn len(&self) -> usize {
        self.rolling.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rolling.is_empty()
    }
}

fn polars_stats(requests: Vec<f64>, errors: Vec<f64>) -> PolarsResult<Stats> {
    // Eager ChunkedArray aggregations: this runs once per window period, so a lazy plan's
    // construction and optimisation would cost more than the arithmetic.
    let n = requests.len() as u64;
    let req = Float64Chunked::from_vec("requests".into(), requests);
    let err = Float64Chunked::from_vec("errors".into(), errors);
    let mean = req.mean().unwrap_or(0.0);
    let std = req.std(1).filter(|s| s.is_finite()).unwrap_or(0.0);
    let (req_sum, err_sum) = (req.sum().unwrap_or(0.0), err.sum().unwrap_or(0.0));
    Ok(Stats {
        n,
        mean,
        std,
        error_share: if req_sum > 0.0 {
            err_sum / req_sum
        } else {
            0.0
        },
    })
}

/// The baseline in force between two recomputations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub stats: Stats,
    pub hour_slot: bool,
}

impl Baseline {
    /// Recompute from a series at log time `now`: age the samples, then prefer the hour slot when
    /// it holds `slot_min` samples.
    pub fn compute(
        series: &mut SampleSeries,
        now: i64,
        keep_secs: i64,
        slot_days: u32,
        slot_min: u64,
    ) -> Baseline {
        series.age(now, keep_secs, slot_days);
        let slot = series.hour_slot_stats(now);
        if slot.n >= slot_min && slot_min > 0 {
            Baseline {
                stats: slot,
                hour_slot: true,
            }
        } else {
            Baseline {
                stats: series.rolling_stats(),
                hour_slot: false,
            }
        }
    }

    /// The numbers a rule compares against, floors applied.
    pub fn snapshot(&self, mean_floor: f64, std_floor: f64) -> BaselineSnapshot {
        BaselineSnapshot {
            mean: self.stats.mean.max(mean_floor),
            std: self.stats.std.max(std_floor),
            mean_learned: self.stats.mean,
            std_learned: self.stats.std,
            error_share: self.stats.error_share,
            source: if self.hour_slot {
                BaselineSource::HourSlot
            } else {
                BaselineSource::Rolling
            },
            samples: self.stats.n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polars_matches_textbook_formulas() {
        let mut s = SampleSeries::default();
        for (i, c) in [2u32, 4, 4, 4, 5, 5, 7, 9].iter().enumerate() {
            s.push(i as i64 * 60, *c, 1);
        }
        let b = Baseline::compute(&mut s, 480, 1800, 7, 0);
        assert!(!b.hour_slot);
        assert_eq!(b.stats.n, 8);
        assert!((b.stats.mean - 5.0).abs() < 1e-9);
        // Sample standard deviation (n-1) of that classic set is sqrt(32/7).
        assert!((b.stats.std - (32.0f64 / 7.0).sqrt()).abs() < 1e-9);
        assert!((b.stats.error_share - 8.0 / 40.0).abs() < 1e-9);
    }

    #[test]
    fn old_samples_leave_the_rolling_window() {
        let mut s = SampleSeries::default();
        s.push(0, 100, 0);
        s.push(1800, 10, 0);
        let b = Baseline::compute(&mut s, 1900, 1800, 7, 0);
        assert_eq!(b.stats.n, 1);
        assert_eq!(b.stats.mean, 10.0);
    }

    #[test]
    fn same_hour_yesterday_is_preferred_once_full() {
        let mut s = SampleSeries::default();
        let day = 86_400;
        // Yesterday 10:00–10:59: 600 samples of 8 requests.
        for i in 0..600 {
            s.push(10 * 3600 + i * 6, 8, 0);
        }
        // Today 10:30: a few samples of 50.
        for i in 0..5 {
            s.push(day + 10 * 3600 + 1800 + i * 60, 50, 0);
        }
        let b = Baseline::compute(&mut s, day + 10 * 3600 + 2200, 1800, 7, 500);
        assert!(b.hour_slot);
        assert_eq!(b.stats.mean, 8.0);
        let b = Baseline::compute(&mut s, day + 10 * 3600 + 2200, 1800, 7, 700);
        assert!(!b.hour_slot);
        assert_eq!(b.stats.mean, 50.0);
    }

    #[test]
    fn floors_apply_to_the_snapshot_only() {
        let b = Baseline {
            stats: Stats {
                n: 3,
                mean: 2.0,
                std: 1.0,
                error_share: 0.1,
            },
            hour_slot: false,
        };
        let snap = b.snapshot(25.0, 35.0);
        assert_eq!((snap.mean, snap.std, snap.mean_learned), (25.0, 35.0, 2.0));
    }
}
