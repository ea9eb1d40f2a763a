//! The report's three kinds of figure, built from an [`Analysis`] with the primitives in
//! [`plots`](super::plots): the site traffic timeline, the site error share, and one IP's rate
//! against the per-IP baseline. Numbers in, SVG out; no log-derived text ever reaches a figure.

use super::plots::{self, Frame, Grid, PlotError, YScale};
use super::zone::Zone;
use crate::detect::{Action, Decision};
use crate::emit::Analysis;
use std::net::IpAddr;

/// Site-wide figures.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub traffic_svg: String,
    pub errors_svg: String,
    pub log_scale: bool,
    /// Each point is the busiest period of `bucket_secs` (== the period when not grouped).
    pub bucket_secs: i64,
    /// Error shares are per `error_bucket_secs`.
    pub error_bucket_secs: i64,
}

/// Most buckets in the error-share panel.
const ERROR_BUCKETS: usize = 150;

/// Log scale when one flood would flatten everything else: the peak is over 20× the typical
/// (median) busy bucket.
fn wants_log(values: &[f64]) -> bool {
    let mut nz: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    if nz.len() < 3 {
        return false;
    }
    nz.sort_by(f64::total_cmp);
    let median = nz[nz.len() / 2];
    nz[nz.len() - 1] > 20.0 * median
}

pub fn bucket_name(secs: i64) -> String {
    if secs == 60 {
        "minute".into()
    } else if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Traffic timeline and error share; `None` without traffic.
pub fn timeline(a: &Analysis, zone: &Zone) -> Result<Option<Timeline>, PlotError> {
    let (Some(first), Some(last)) = (a.timeline.first(), a.timeline.last()) else {
        return Ok(None);
    };
    let w = i64::from(a.settings.window_secs.max(1));
    let wf = w as f64;
    let grid = Grid::new(first.t, last.t, w, plots::MAX_POINTS);
    // A share over a few requests jumps between 0 and 100 %: use longer buckets (≥ 1/150 of
    // the span) so the panel shows error *episodes*.
    let egrid = Grid::new(first.t, last.t, w, ERROR_BUCKETS);
    let rate = plots::bucket_max(
        &grid,
        a.timeline.iter().map(|p| (p.t, f64::from(p.requests) / wf)),
    );
    let known = |f: fn(&crate::detect::TimelinePoint) -> f64| {
        plots::bucket_carry(
            &grid,
            a.timeline
                .iter()
                .filter(|p| p.site_mean > 0.0)
                .map(move |p| (p.t, f(p) / wf)),
        )
    };
    let mean = known(|p| p.site_mean);
    let std = known(|p| p.site_std);
    let k = a.settings.global_z_threshold;
    let band_hi: Vec<Option<f64>> = mean
        .iter()
        .zip(&std)
        .map(|(m, s)| Some(m.as_ref()? + k * s.as_ref()?))
        .collect();
    let band_lo: Vec<Option<f64>> = mean
        .iter()
        .zip(&std)
        .map(|(m, s)| Some((m.as_ref()? - k * s.as_ref()?).max(0.0)))
        .collect();

    let max_rate = rate.iter().copied().fold(0.0, f64::max);
    let max_band = band_hi.iter().flatten().copied().fold(0.0, f64::max);
    let log = wants_log(&rate);
    let y = if log {
        YScale::log(1.0 / wf, max_rate.max(max_band))
    } else {
        YScale::linear(max_rate.max(max_band))
    };
    let t0 = grid.start;
    let t1 = grid.end().max(egrid.end());
    let min_span = (t1 - t0) / 150;
    let anomalies: Vec<(i64, i64)> = a
        .alerts()
        .map(|d| (d.at - i64::from(d.window_secs), d.last_seen))
        .collect();
    let bans: Vec<i64> = a.bans().map(|d| d.at).collect();
    let per = if grid.grouped() {
        format!(
            " (busiest minute of every {})",
            bucket_name(grid.bucket_secs)
        )
    } else {
        String::new()
    };

    let traffic = Frame {
        title: format!("Site traffic: requests per second{per}"),
        height: 360,
        t0,
        t1,
        zone,
        y,
        y_desc: if log {
            "requests/s (log scale)".into()
        } else {
            "requests/s".into()
        },
    }
    .render(|c| {
        plots::band(c, &grid, &band_lo, &band_hi, &y, plots::BAND, 0.28)?;
        plots::spans(c, &anomalies, &y, min_span, plots::ANOMALY)?;
        plots::area(c, &grid, &rate, &y, plots::TRAFFIC, 0.18)?;
        plots::lines(c, plots::runs(&grid, &mean, &y), plots::BASELINE, 2, true)?;
        plots::rug(c, &bans, &y, plots::BAN)
    })?;

    let errors = plots::bucket_sum(
        &egrid,
        a.timeline.iter().map(|p| (p.t, f64::from(p.errors))),
    );
    let requests = plots::bucket_sum(
        &egrid,
        a.timeline.iter().map(|p| (p.t, f64::from(p.requests))),
    );
    let share: Vec<f64> = errors
        .iter()
        .zip(&requests)
        .map(|(e, r)| if *r > 0.0 { 100.0 * e / r } else { 0.0 })
        .collect();
    let ys = YScale {
        log: false,
        lo: 0.0,
        hi: 100.0,
    };
    let errors_svg = Frame {
        title: format!(
            "Error responses (4xx and 5xx): share of requests per {}",
            bucket_name(egrid.bucket_secs)
        ),
        height: 220,
        t0,
        t1,
        zone,
        y: ys,
        y_desc: "% of requests".into(),
    }
    .render(|c| {
        plots::spans(c, &anomalies, &ys, min_span, plots::ANOMALY)?;
        plots::area(c, &egrid, &share, &ys, plots::ERRORS, 0.25)?;
        plots::rug(c, &bans, &ys, plots::BAN)
    })?;

    Ok(Some(Timeline {
        traffic_svg: traffic,
        errors_svg,
        log_scale: log,
        bucket_secs: grid.bucket_secs,
        error_bucket_secs: egrid.bucket_secs,
    }))
}

/// Periods of context shown before an IP's first ban and after its last one.
const LEAD_PERIODS: i64 = 30;
const TAIL_PERIODS: i64 = 5;

/// One IP's load per second over time, against the learned level and the minute limit
/// that applied to its (first) ban; `None` if no series was kept for it.
pub fn ip_rate(
    a: &Analysis,
    ip: &IpAddr,
    bans: &[&Decision],
    zone: &Zone,
) -> Result<Option<String>, PlotError> {
    let Some(series) = a.ip_series.get(ip).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let Some(first_ban) = bans
        .iter()
        .filter(|d| d.action == Action::Ban)
        .min_by_key(|d| d.at)
    else {
        return Ok(None);
    };
    let w = i64::from(a.settings.window_secs.max(1));
    let wf = w as f64;
    let period = |t: i64| t.div_euclid(w) * w;
    let last_ban = bans.iter().map(|d| d.at).max().unwrap_or(first_ban.at);
    let log_start = a.timeline.first().map(|p| p.t).unwrap_or(i64::MIN);
    let log_end = a.timeline.last().map(|p| p.t).unwrap_or(i64::MAX);
    let first = series[0]
        .t
        .min(period(first_ban.at) - LEAD_PERIODS * w)
        .max(log_start.min(series[0].t));
    let last = series[series.len() - 1]
        .t
        .max(period(last_ban) + TAIL_PERIODS * w)
        .min(log_end.max(series[series.len() - 1].t));
    let grid = Grid::new(first, last, w, 600);

    // Its load (pages + weighted assets) per second, against the minute window's limit and the
    // learned level (the busiest normal clients), both per second.
    let rate = plots::bucket_max(&grid, series.iter().map(|p| (p.t, f64::from(p.load) / wf)));
    let errs = plots::bucket_max(
        &grid,
        series.iter().map(|p| (p.t, f64::from(p.errors) / wf)),
    );
    let carry = |f: fn(&crate::detect::TimelinePoint) -> f64| {
        plots::bucket_carry(
            &grid,
            a.timeline
                .iter()
                .filter(|p| p.ip_mean > 0.0 && p.t <= grid.end())
                .map(move |p| (p.t, f(p) / wf)),
        )
    };
    let threshold = carry(|p| p.ip_mean);
    let mean_rate = carry(|p| p.ip_std);
    let decided: Vec<(i64, f64)> = bans
        .iter()
        .map(|d| match d.window {
            crate::detect::Window::Long => (d.at, d.rate_per_sec),
            _ => (d.at, d.measured / f64::from(d.window_secs.max(1))),
        })
        .collect();
    let max = rate
        .iter()
        .copied()
        .chain(threshold.iter().flatten().copied())
        .chain(decided.iter().map(|d| d.1))
        .fold(0.0, f64::max);
    let y = YScale::linear(max);
    let at: Vec<i64> = bans.iter().map(|d| d.at).collect();
    let svg = Frame {
        title: "Load per second from this IP (a page is 1, an asset 0.1)".into(),
        height: 250,
        t0: grid.start,
        t1: grid.end(),
        zone,
        y,
        y_desc: "requests/s".into(),
    }
    .render(|c| {
        plots::markers(c, &at, &y, plots::BAN, "ban")?;
        plots::area(c, &grid, &rate, &y, plots::TRAFFIC, 0.18)?;
        plots::area(c, &grid, &errs, &y, plots::ERRORS, 0.0)?;
        plots::lines(
            c,
            plots::runs(&grid, &mean_rate, &y),
            plots::BASELINE,
            2,
            true,
        )?;
        plots::lines(c, plots::runs(&grid, &threshold, &y), plots::BAN, 2, true)?;
        plots::dots(c, &decided, &y, plots::BAN)
    })?;
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_only_when_a_flood_would_flatten_the_rest() {
        assert!(!wants_log(&[1.0, 2.0, 3.0, 2.0, 5.0]));
        assert!(wants_log(&[0.05, 0.1, 0.05, 0.08, 9.0]));
        assert!(!wants_log(&[0.0, 9.0]));
    }
}
