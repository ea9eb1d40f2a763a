//! The report's plots: inline SVG drawn with plotters, from numbers only.
//!
//! **Never put a log-derived string into a plot.** Titles, axis descriptions and tick labels are
//! fixed text, numbers and times; the IP a plot belongs to is in the HTML heading above it, where
//! minijinja escapes it. That is what makes inserting these SVGs unescaped (`|safe`) sound.
//! (plotters' SVG backend escapes `<>&"'` in text too; a unit test checks it, as a second line.)
//!
//! Time runs on x in the report's zone, with ticks on round local times (every 1 min … 1 week).
//! Series with more periods than [`MAX_POINTS`] are grouped into buckets of whole periods, and a
//! bucket shows its **busiest** period, so a one-minute flood is never averaged away.

use super::zone::Zone;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Most points drawn per series (≈ one per pixel column of the plot area).
pub const MAX_POINTS: usize = 900;

/// Plot width in SVG units; the page scales the SVG to its column.
pub const WIDTH: u32 = 1000;

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
const MUTED: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
pub const TRAFFIC: RGBColor = RGBColor(0x25, 0x63, 0xa6);
pub const BASELINE: RGBColor = RGBColor(0x4b, 0x55, 0x63);
pub const BAND: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
pub const ANOMALY: RGBColor = RGBColor(0xf5, 0x9e, 0x0b);
pub const BAN: RGBColor = RGBColor(0xc0, 0x26, 0x26);
pub const ERRORS: RGBColor = RGBColor(0xd9, 0x77, 0x06);

#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

fn pe<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError(e.to_string())
}

/// Per-period counts on a regular grid, possibly grouped into buckets of several periods.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Start of the first bucket (unix secs) and bucket length (secs, a multiple of the period).
    pub start: i64,
    pub bucket_secs: i64,
    pub period_secs: i64,
    pub len: usize,
}

impl Grid {
    /// A grid over the periods `first..=last` (period starts), with at most `max` buckets.
    pub fn new(first: i64, last: i64, period_secs: i64, max: usize) -> Grid {
        let periods = ((last - first) / period_secs).max(0) as usize + 1;
        let group = periods.div_ceil(max.max(1)).max(1);
        let bucket_secs = period_secs * group as i64;
        Grid {
            start: first,
            bucket_secs,
            period_secs,
            len: periods.div_ceil(group),
        }
    }

    pub fn index(&self, t: i64) -> Option<usize> {
        if t < self.start {
            return None;
        }
        let i = ((t - self.start) / self.bucket_secs) as usize;
        (i < self.len).then_some(i)
    }

    /// Time at the middle of bucket `i`'s first period (where its point is drawn).
    pub fn t(&self, i: usize) -> f64 {
        (self.start + i as i64 * self.bucket_secs) as f64 + self.period_secs as f64 / 2.0
    }

    /// Start and end of bucket `i`.
    pub fn bounds(&self, i: usize) -> (f64, f64) {
        let a = self.start + i as i64 * self.bucket_secs;
        (a as f64, (a + self.bucket_secs) as f64)
    }

    pub fn end(&self) -> i64 {
        self.start + self.len as i64 * self.bucket_secs
    }

    pub fn grouped(&self) -> bool {
        self.bucket_secs > self.period_secs
    }
}

/// Busiest period of each bucket (absent periods count as 0).
pub fn bucket_max(grid: &Grid, points: impl Iterator<Item = (i64, f64)>) -> Vec<f64> {
    let mut v = vec![0.0f64; grid.len];
    for (t, x) in points {
        if let Some(i) = grid.index(t) {
            v[i] = v[i].max(x);
        }
    }
    v
}

/// Sums per bucket.
pub fn bucket_sum(grid: &Grid, points: impl Iterator<Item = (i64, f64)>) -> Vec<f64> {
    let mut v = vec![0.0f64; grid.len];
    for (t, x) in points {
        if let Some(i) = grid.index(t) {
            v[i] += x;
        }
    }
    v
}

/// The last value seen in or before each bucket (a baseline stays in force until recomputed);
/// `None` until the first one. `points` are in time order; those before the grid seed it.
pub fn bucket_carry(grid: &Grid, points: impl Iterator<Item = (i64, f64)>) -> Vec<Option<f64>> {
    let mut v: Vec<Option<f64>> = vec![None; grid.len];
    let mut last = None;
    for (t, x) in points {
        if t < grid.start {
            last = Some(x);
        } else if let Some(i) = grid.index(t) {
            v[i] = Some(x);
        }
    }
    for x in &mut v {
        match x {
            Some(_) => last = *x,
            None => *x = last,
        }
    }
    v
}

/// A y axis: linear from 0, or log10 (values are mapped before plotting; ticks say 0.1, 1, 10).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YScale {
    pub log: bool,
    /// Axis range in *data* units (for log: lo > 0).
    pub lo: f64,
    pub hi: f64,
}

impl YScale {
    /// Linear from 0 to a round number above `max`.
    pub fn linear(max: f64) -> YScale {
        let hi = nice_ceil(if max > 0.0 { max * 1.08 } else { 1.0 });
        YScale {
            log: false,
            lo: 0.0,
            hi,
        }
    }

    /// Log from the decade below `floor` to the decade above `max`.
    pub fn log(floor: f64, max: f64) -> YScale {
        let lo = 10f64.powf(floor.max(1e-9).log10().floor());
        let hi = 10f64.powf((max.max(lo * 10.0) * 1.05).log10().ceil());
        YScale { log: true, lo, hi }
    }

    /// Plot coordinate of a data value (clamped into the axis).
    pub fn map(&self, v: f64) -> f64 {
        if self.log {
            v.clamp(self.lo, self.hi).log10()
        } else {
            v.clamp(self.lo, self.hi)
        }
    }

    fn range(&self) -> (f64, f64) {
        (self.map(self.lo), self.map(self.hi))
    }

    /// Plot coordinate at a fraction of the axis height (0 = bottom).
    pub fn at_fraction(&self, f: f64) -> f64 {
        let (a, b) = self.range();
        a + (b - a) * f
    }

    /// Tick positions, in plot coordinates (see [`YScale::map`]).
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = self.range();
            let decades = (b - a).round() as i32;
            let step = if decades > 6 { 2 } else { 1 };
            let mut v: Vec<f64> = (0..=decades)
                .step_by(step)
                .map(|k| a + f64::from(k))
                .collect();
            if decades <= 2 {
                // Few decades: add the 2s and 5s.
                let extra: Vec<f64> = v
                    .iter()
                    .flat_map(|d| [d + 2f64.log10(), d + 5f64.log10()])
                    .filter(|x| *x < b)
                    .collect();
                v.extend(extra);
                v.sort_by(f64::total_cmp);
            }
            v
        } else {
            linear_ticks(self.hi, 6)
        }
    }

    /// The label of a tick at plot coordinate `v`.
    pub fn label(&self, v: f64) -> String {
        let x = if self.log { 10f64.powf(v) } else { v };
        format_number(x)
    }
}

/// A round number ≥ x: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k.
fn nice_ceil(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= x * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

fn linear_ticks(hi: f64, max_ticks: usize) -> Vec<f64> {
    let raw = hi / max_ticks as f64;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| hi / s <= max_ticks as f64 + 1e-9)
        .unwrap_or(10.0 * p);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= hi * (1.0 + 1e-9))
        .collect()
}

/// `0.05`, `1.5`, `12`, `1.2k`, `3M`: tick labels without noise.
pub fn format_number(x: f64) -> String {
    let a = x.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    };
    trim_zeros(s)
}

fn trim_zeros(s: String) -> String {
    let (num, suffix) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (s[..i].to_string(), s[i..].to_string()),
        None => (s, String::new()),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        num
    };
    num + &suffix
}

/// Tick times: round local times (1 min … 4 weeks apart), at most `max_ticks` of them.
pub fn time_ticks(t0: i64, t1: i64, zone: &Zone, max_ticks: usize) -> (Vec<i64>, i64) {
    const STEPS: [i64; 17] = [
        60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800, 345_600,
        604_800, 1_209_600, 2_419_200,
    ];
    let span = (t1 - t0).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s < max_ticks as i64)
        .unwrap_or_else(|| {
            let weeks = (span / 604_800 / max_ticks as i64 + 1).max(1);
            weeks * 604_800
        });
    let off = zone.offset_secs() as i64;
    let first = (t0 + off).div_euclid(step) * step - off;
    let ticks = (0..)
        .map(|i| first + i * step)
        .skip_while(|t| *t < t0)
        .take_while(|t| *t <= t1)
        .collect();
    (ticks, step)
}

/// Label format for ticks `step` apart over `span` seconds.
fn time_format(step: i64, span: i64) -> &'static str {
    if step >= 86400 {
        "%b %d"
    } else if span > 86400 {
        "%b %d %H:%M"
    } else {
        "%H:%M"
    }
}

/// A linear axis with the ticks we chose (plotters' own key points would put time ticks on
/// round *seconds since 1970*, and log ticks are ours too).
#[derive(Clone)]
pub struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let f = if span > 0.0 {
            (v - self.lo) / span
        } else {
            0.5
        };
        limit.0 + (f64::from(limit.1 - limit.0) * f).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<Axis, Axis>>;

/// The frame shared by every plot: title, time axis, y axis with its description.
pub struct Frame<'z> {
    pub title: String,
    pub height: u32,
    pub t0: i64,
    pub t1: i64,
    pub zone: &'z Zone,
    pub y: YScale,
    pub y_desc: String,
}

impl Frame<'_> {
    /// Draw the frame, then `draw` on it; returns the SVG text.
    pub fn render(
        &self,
        draw: impl FnOnce(&mut Chart<'_>) -> Result<(), PlotError>,
    ) -> Result<String, PlotError> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, self.height)).into_drawing_area();
            root.fill(&WHITE).map_err(pe)?;
            let (ticks, step) = time_ticks(self.t0, self.t1, self.zone, 9);
            let fmt = time_format(step, self.t1 - self.t0);
            let x = Axis {
                lo: self.t0 as f64,
                hi: self.t1 as f64,
                ticks: ticks.iter().map(|t| *t as f64).collect(),
            };
            let (ylo, yhi) = self.y.range();
            let y = Axis {
                lo: ylo,
                hi: yhi,
                ticks: self.y.ticks(),
            };
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, (FONT, 17).into_font().color(&INK))
                .margin_top(8)
                .margin_left(10)
                .margin_right(24)
                .margin_bottom(6)
                .x_label_area_size(42)
                .y_label_area_size(64)
                .build_cartesian_2d(x, y)
                .map_err(pe)?;
            let zone = self.zone;
            let yscale = self.y;
            let x_desc = format!("time ({})", zone.name());
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID.stroke_width(1))
                .axis_style(MUTED.stroke_width(1))
                .x_labels(ticks.len().max(2))
                .y_labels(12)
                .x_label_formatter(&|v| zone.format(*v as i64, fmt))
                .y_label_formatter(&|v| yscale.label(*v))
                .x_desc(x_desc)
                .y_desc(self.y_desc.as_str())
                .label_style((FONT, 12).into_font().color(&MUTED))
                .axis_desc_style((FONT, 13).into_font().color(&INK))
                .draw()
                .map_err(pe)?;
            draw(&mut chart)?;
            root.present().map_err(pe)?;
        }
        Ok(apply_dashes(svg))
    }
}

/// Runs of consecutive `Some` values as step-line points (each bucket is a flat segment).
pub fn runs(grid: &Grid, v: &[Option<f64>], y: &YScale) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for (i, x) in v.iter().enumerate() {
        match x {
            Some(x) => {
                let (a, b) = grid.bounds(i);
                cur.push((a, y.map(*x)));
                cur.push((b, y.map(*x)));
            }
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Step points of per-bucket values: a count holds for its whole bucket.
fn steps(grid: &Grid, values: &[f64], y: &YScale) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| {
            let (a, b) = grid.bounds(i);
            [(a, y.map(*v)), (b, y.map(*v))]
        })
        .collect()
}

/// Draw `values` as a filled step area with a line on top (no fill when `fill_alpha` is 0).
pub fn area(
    chart: &mut Chart<'_>,
    grid: &Grid,
    values: &[f64],
    y: &YScale,
    color: RGBColor,
    fill_alpha: f64,
) -> Result<(), PlotError> {
    let pts = steps(grid, values, y);
    if fill_alpha > 0.0 {
        let base = y.map(y.lo);
        chart
            .draw_series(AreaSeries::new(
                pts.iter().copied(),
                base,
                color.mix(fill_alpha),
            ))
            .map_err(pe)?;
    }
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(1)))
        .map_err(pe)?;
    Ok(())
}

/// A band between `lo` and `hi` (both per bucket, `None` where unknown).
pub fn band(
    chart: &mut Chart<'_>,
    grid: &Grid,
    lo: &[Option<f64>],
    hi: &[Option<f64>],
    y: &YScale,
    color: RGBColor,
    alpha: f64,
) -> Result<(), PlotError> {
    let both: Vec<Option<(f64, f64)>> = lo.iter().zip(hi).map(|(a, b)| a.zip(*b)).collect();
    let mut start = 0;
    while start < both.len() {
        if both[start].is_none() {
            start += 1;
            continue;
        }
        let end = (start..both.len())
            .find(|i| both[*i].is_none())
            .unwrap_or(both.len());
        let side = |i: usize, hi: bool| {
            let (a, b) = grid.bounds(i);
            let (l, h) = both[i].unwrap_or_default();
            let v = y.map(if hi { h } else { l });
            [(a, v), (b, v)]
        };
        let upper = (start..end).flat_map(|i| side(i, true));
        let lower = (start..end).rev().flat_map(|i| {
            let [p, q] = side(i, false);
            [q, p]
        });
        let poly: Vec<(f64, f64)> = upper.chain(lower).collect();
        chart
            .draw_series(std::iter::once(Polygon::new(poly, color.mix(alpha))))
            .map_err(pe)?;
        start = end;
    }
    Ok(())
}

/// Step lines; `dashed` ones become one `<polyline>` with `stroke-dasharray` (plotters' own
/// dashed series writes one element per dash: thousands per plot, slow to open).
pub fn lines(
    chart: &mut Chart<'_>,
    runs: Vec<Vec<(f64, f64)>>,
    color: RGBColor,
    width: u32,
    dashed: bool,
) -> Result<(), PlotError> {
    let color = if dashed { dash_marker(color) } else { color };
    for r in runs {
        chart
            .draw_series(LineSeries::new(r, color.stroke_width(width)))
            .map_err(pe)?;
    }
    Ok(())
}

/// Dashed colours are drawn in a marker colour one step off the real one, then rewritten into
/// the real colour plus `stroke-dasharray` by [`Frame::render`]. Only colours in [`DASHED`]
/// are used this way.
const DASHED: [RGBColor; 2] = [BASELINE, BAN];

fn dash_marker(c: RGBColor) -> RGBColor {
    RGBColor(c.0, c.1, c.2 ^ 1)
}

fn svg_colour(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Rewrite marker colours into dashed strokes of the real colour.
fn apply_dashes(svg: String) -> String {
    let mut svg = svg;
    for c in DASHED {
        svg = svg.replace(
            &format!("stroke=\"{}\"", svg_colour(dash_marker(c))),
            &format!("stroke=\"{}\" stroke-dasharray=\"6 4\"", svg_colour(c)),
        );
    }
    svg
}

/// Shade the time spans `[from, to]` over the full height, at least `min_secs` wide.
pub fn spans(
    chart: &mut Chart<'_>,
    spans: &[(i64, i64)],
    y: &YScale,
    min_secs: i64,
    color: RGBColor,
) -> Result<(), PlotError> {
    let (lo, hi) = (y.at_fraction(0.0), y.at_fraction(1.0));
    chart
        .draw_series(spans.iter().map(|(a, b)| {
            let mid = (a + b) / 2;
            let half = ((b - a).max(min_secs) + 1) / 2;
            Rectangle::new(
                [((mid - half) as f64, lo), ((mid + half) as f64, hi)],
                color.mix(0.30).filled(),
            )
        }))
        .map_err(pe)?;
    Ok(())
}

/// Ticks at the top edge marking decisions (a rug: readable with one ban or a thousand).
pub fn rug(
    chart: &mut Chart<'_>,
    at: &[i64],
    y: &YScale,
    color: RGBColor,
) -> Result<(), PlotError> {
    let (lo, hi) = (y.at_fraction(0.93), y.at_fraction(1.0));
    // One tick per pixel column is all a reader can see (a thousand bans in one wave would
    // otherwise be a thousand elements).
    let (t0, t1) = {
        let r = chart.x_range();
        (r.start, r.end)
    };
    let px = ((t1 - t0) / f64::from(WIDTH)).max(1.0);
    let mut cols: Vec<i64> = at.iter().map(|t| (*t as f64 / px).round() as i64).collect();
    cols.sort_unstable();
    cols.dedup();
    let at: Vec<i64> = cols.iter().map(|c| (*c as f64 * px) as i64).collect();
    chart
        .draw_series(at.iter().map(|t| {
            PathElement::new(
                vec![(*t as f64, lo), (*t as f64, hi)],
                color.stroke_width(2),
            )
        }))
        .map_err(pe)?;
    Ok(())
}

/// Full-height vertical marker lines with a small label at the top (few markers only).
pub fn markers(
    chart: &mut Chart<'_>,
    at: &[i64],
    y: &YScale,
    color: RGBColor,
    label: &'static str,
) -> Result<(), PlotError> {
    let (lo, hi) = (y.at_fraction(0.0), y.at_fraction(1.0));
    chart
        .draw_series(at.iter().map(|t| {
            PathElement::new(
                vec![(*t as f64, lo), (*t as f64, hi)],
                dash_marker(color).stroke_width(1),
            )
        }))
        .map_err(pe)?;
    let style = TextStyle::from((FONT, 12).into_font())
        .color(&color)
        .pos(Pos::new(HPos::Left, VPos::Top));
    chart
        .draw_series(
            at.iter()
                .map(|t| Text::new(label, (*t as f64, y.at_fraction(0.985)), style.clone())),
        )
        .map_err(pe)?;
    Ok(())
}

/// Dots at (time, value).
pub fn dots(
    chart: &mut Chart<'_>,
    pts: &[(i64, f64)],
    y: &YScale,
    color: RGBColor,
) -> Result<(), PlotError> {
    chart
        .draw_series(
            pts.iter()
                .map(|(t, v)| Circle::new((*t as f64, y.map(*v)), 4, color.filled())),
        )
        .map_err(pe)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_groups_periods_into_at_most_max_buckets() {
        let g = Grid::new(0, 60 * 999, 60, 100);
        assert_eq!(g.len, 100);
        assert_eq!(g.bucket_secs, 600);
        assert_eq!(g.index(60 * 999), Some(99));
        assert_eq!(g.index(-1), None);
        let g = Grid::new(120, 120, 60, 100);
        assert_eq!((g.len, g.bucket_secs), (1, 60));
    }

    #[test]
    fn buckets_keep_the_busiest_period_and_carry_baselines() {
        let g = Grid::new(0, 60 * 9, 60, 5);
        let v = bucket_max(&g, [(0, 1.0), (60, 7.0), (300, 2.0)].into_iter());
        assert_eq!(v, vec![7.0, 0.0, 2.0, 0.0, 0.0]);
        let c = bucket_carry(&g, [(120, 3.0), (400, 4.0)].into_iter());
        assert_eq!(c, vec![None, Some(3.0), Some(3.0), Some(4.0), Some(4.0)]);
        let g2 = Grid::new(300, 600, 60, 10);
        let c = bucket_carry(&g2, [(120, 3.0), (400, 4.0)].into_iter());
        assert_eq!(c[0], Some(3.0));
        assert_eq!(c[5], Some(4.0));
    }

    #[test]
    fn ticks_are_round_local_times() {
        let utc = Zone::utc();
        let (t, step) = time_ticks(1_431_856_847, 1_431_943_000, &utc, 9);
        assert_eq!(step, 10800);
        assert!(t.iter().all(|x| x % 10800 == 0));
        let plus2 = Zone::parse("+02:00").unwrap();
        let (t, _) = time_ticks(1_431_856_847, 1_431_943_000, &plus2, 9);
        assert!(t.iter().all(|x| (x + 7200) % 10800 == 0));
    }

    #[test]
    fn y_scales_and_labels() {
        let y = YScale::log(1.0 / 60.0, 538.0 / 60.0);
        assert_eq!((y.lo, y.hi), (0.01, 10.0));
        assert_eq!(y.map(0.0), -2.0);
        assert_eq!(YScale::linear(8.7).hi, 10.0);
        assert_eq!(linear_ticks(10.0, 6), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(1500.0), "1.5k");
        assert_eq!(format_number(0.01), "0.01");
    }

    #[test]
    fn dashed_lines_are_one_element_with_a_dasharray() {
        let zone = Zone::utc();
        let y = YScale::linear(10.0);
        let grid = Grid::new(0, 60 * 99, 60, 100);
        let v: Vec<Option<f64>> = vec![Some(5.0); 100];
        let svg = Frame {
            title: "t".into(),
            height: 200,
            t0: 0,
            t1: 6000,
            zone: &zone,
            y,
            y_desc: "y".into(),
        }
        .render(|c| lines(c, runs(&grid, &v, &y), BAN, 2, true))
        .unwrap();
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        assert!(!svg.contains(&svg_colour(dash_marker(BAN))));
    }

    #[test]
    fn svg_text_is_escaped_by_the_backend() {
        let zone = Zone::utc();
        let f = Frame {
            title: "</svg><script>x</script>".into(),
            height: 200,
            t0: 0,
            t1: 3600,
            zone: &zone,
            y: YScale::linear(1.0),
            y_desc: "a\"b".into(),
        };
        let svg = f.render(|_| Ok(())).unwrap();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;/svg&gt;&lt;script&gt;"));
        assert_eq!(svg.matches("</svg>").count(), 1);
    }
}
