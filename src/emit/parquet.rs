//! Parquet files for a fleet: per-(client, minute) aggregates ([`MinuteRow`]) and decisions,
//! written with polars into a hive-partitioned tree that DuckDB, polars or Spark read as one
//! table:
//!
//! ```text
//! DIR/host=<node>/date=YYYY-MM-DD/minutes-<first>-<last>.parquet     (UTC minutes, HHMM)
//! DIR/host=<node>/date=YYYY-MM-DD/decisions-<first>-<last>.parquet
//! ```
//!
//! `host` and `date` are in the path only (hive partitioning), never in the files, so an engine
//! that reads the partitions adds them without a clash. Times are UNIX seconds (`to_timestamp`
//! in DuckDB). Each file is written whole, then renamed into place ([`super::write_atomic`]):
//! a reader never sees half a file. `analyze` names files by the minutes they hold, so a re-run
//! on the same log replaces its files; `follow` never replaces one (a suffix is added).
//!
//! [`ParquetSink`] is `follow`'s: it aggregates the requests the loop hands it and writes the
//! closed minutes (and the bans) every `roll_secs` from its own thread.

use super::minutes::{MinuteRow, Minutes};
use super::sink::{Note, Sink};
use crate::detect::live::Event;
use crate::detect::{Action, Decision};
use crate::parse::Request;
use anyhow::{anyhow, Context};
use polars::prelude::{Column, DataFrame, NamedFrom, Series};
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A node name as it appears in `host=<node>`: letters, digits, `.`, `_`, `-`.
pub fn validate_node(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("a node name is 1–64 letters, digits, '.', '_' or '-' (not starting with '.')".into())
    }
}

/// This machine's host name, as a node name (`localhost` if it is not one).
pub fn default_node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| validate_node(s).is_ok())
        .unwrap_or_else(|| "localhost".into())
}

fn date_of(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

fn stamp(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y%m%dT%H%M").to_string())
        .unwrap_or_else(|| "0".into())
}

/// Where the files of `node` go.
#[derive(Debug, Clone)]
pub struct FleetDir {
    pub root: PathBuf,
    pub node: String,
    /// Replace a file of the same name (analyze) or add a suffix (follow).
    pub replace: bool,
}

/// What was written.
#[derive(Debug, Default, Clone)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub rows: u64,
    pub bytes: u64,
}

impl FleetDir {
    fn path_for(&self, kind: &str, first: i64, last: i64) -> anyhow::Result<PathBuf> {
        let dir = self
            .root
            .join(format!("host={}", self.node))
            .join(format!("date={}", date_of(first)));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        let base = format!("{kind}-{}-{}", stamp(first), stamp(last));
        let mut path = dir.join(format!("{base}.parquet"));
        let mut n = 1;
        while !self.replace && path.exists() {
            path = dir.join(format!("{base}-{n}.parquet"));
            n += 1;
        }
        Ok(path)
    }

    fn write(
        &self,
        kind: &str,
        first: i64,
        last: i64,
        mut df: DataFrame,
    ) -> anyhow::Result<(PathBuf, u64)> {
        let path = self.path_for(kind, first, last)?;
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .map_err(|e| anyhow!("{}: cannot encode Parquet: {e}", path.display()))?;
        super::write_atomic(&path, &buf)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok((path, buf.len() as u64))
    }

    /// Write `rows` (in time order), one file per UTC date.
    pub fn write_minutes(&self, rows: &[MinuteRow], out: &mut Written) -> anyhow::Result<()> {
        self.write_by_date("minutes", rows, |r| r.minute, minutes_frame, out)
    }

    /// Write the decisions (bans and alerts), one file per UTC date of decision.
    pub fn write_decisions(&self, decisions: &[Decision], out: &mut Written) -> anyhow::Result<()> {
        self.write_by_date("decisions", decisions, |d| d.at, decisions_frame, out)
    }

    /// One `kind` file per UTC date of `at`, each named by its first and last time.
    fn write_by_date<T>(
        &self,
        kind: &str,
        items: &[T],
        at: impl Fn(&T) -> i64,
        frame: impl Fn(&[&T]) -> anyhow::Result<DataFrame>,
        out: &mut Written,
    ) -> anyhow::Result<()> {
        let mut by_date: BTreeMap<String, Vec<&T>> = BTreeMap::new();
        for x in items {
            by_date.entry(date_of(at(x))).or_default().push(x);
        }
        for xs in by_date.values() {
            let first = xs.iter().map(|x| at(x)).min().unwrap_or(0);
            let last = xs.iter().map(|x| at(x)).max().unwrap_or(0);
            let (path, bytes) = self.write(kind, first, last, frame(xs)?)?;
            out.files.push(path);
            out.rows += xs.len() as u64;
            out.bytes += bytes;
        }
        Ok(())
    }
}

/// A column from values polars can name (`Series::new`).
fn col<T: AsRef<[V]>, V>(name: &str, values: T) -> Column
where
    Series: NamedFrom<T, [V]>,
{
    Series::new(name.into(), values).into()
}

/// The aggregates' schema: `ip` (text), `minute`, `first_sec`, `last_sec` (UNIX seconds, i64),
/// `requests`, `pages`, `assets`, `page_errors`, `errors_4xx`, `errors_5xx`, `distinct_paths`
/// (u32), `bytes` (u64).
fn minutes_frame(rows: &[&MinuteRow]) -> anyhow::Result<DataFrame> {
    let u32s = |name: &str, f: fn(&MinuteRow) -> u32| -> Column {
        col(name, rows.iter().map(|r| f(r)).collect::<Vec<u32>>())
    };
    let i64s = |name: &str, f: fn(&MinuteRow) -> i64| -> Column {
        col(name, rows.iter().map(|r| f(r)).collect::<Vec<i64>>())
    };
    let ips: Vec<String> = rows
        .iter()
        .map(|r| r.ip.map(|ip| ip.to_string()).unwrap_or_default())
        .collect();
    let columns = vec![
        col("ip", ips),
        i64s("minute", |r| r.minute),
        u32s("requests", |r| r.requests),
        u32s("pages", |r| r.pages),
        u32s("assets", |r| r.assets),
        u32s("page_errors", |r| r.page_errors),
        u32s("errors_4xx", |r| r.errors_4xx),
        u32s("errors_5xx", |r| r.errors_5xx),
        col("bytes", rows.iter().map(|r| r.bytes).collect::<Vec<u64>>()),
        u32s("distinct_paths", |r| r.distinct_paths),
        i64s("first_sec", |r| r.first_sec),
        i64s("last_sec", |r| r.last_sec),
    ];
    DataFrame::new(rows.len(), columns).map_err(|e| anyhow!("aggregates: {e}"))
}

/// The decisions' schema: `ip` (text, null for a site-wide alert), `at` (UNIX seconds),
/// `action`, `rules` (`+`-joined), `window`, `window_secs`, `requests_in_window`,
/// `rate_per_sec`, `error_share`, `measured`, `limit`, `duration_secs`, `reason`.
fn decisions_frame(ds: &[&Decision]) -> anyhow::Result<DataFrame> {
    let strs = |name: &str, f: &dyn Fn(&Decision) -> String| -> Column {
        col(name, ds.iter().map(|d| f(d)).collect::<Vec<String>>())
    };
    let f64s = |name: &str, f: fn(&Decision) -> f64| -> Column {
        col(name, ds.iter().map(|d| f(d)).collect::<Vec<f64>>())
    };
    let columns = vec![
        col(
            "ip",
            ds.iter()
                .map(|d| d.ip.map(|ip| ip.to_string()))
                .collect::<Vec<Option<String>>>(),
        ),
        col("at", ds.iter().map(|d| d.at).collect::<Vec<i64>>()),
        strs("action", &|d| match d.action {
            Action::Ban => "ban".into(),
            Action::Alert => "alert".into(),
        }),
        strs("rules", &|d| d.rules_text("+")),
        strs("window", &|d| d.window.name().into()),
        col(
            "window_secs",
            ds.iter().map(|d| d.window_secs).collect::<Vec<u32>>(),
        ),
        col(
            "requests_in_window",
            ds.iter()
                .map(|d| d.requests_in_window)
                .collect::<Vec<u64>>(),
        ),
        f64s("rate_per_sec", |d| d.rate_per_sec),
        f64s("error_share", |d| d.error_share),
        f64s("measured", |d| d.measured),
        f64s("limit", |d| d.limit),
        col(
            "duration_secs",
            ds.iter().map(|d| d.duration_secs).collect::<Vec<u64>>(),
        ),
        strs("reason", &|d| d.reason.clone()),
    ];
    DataFrame::new(ds.len(), columns).map_err(|e| anyhow!("decisions: {e}"))
}

/// `analyze --parquet`: rows are written a day at a time as the (time-ordered) input passes, so
/// memory holds at most about a day of rows. The first write error stops writing and is
/// returned by [`MinuteFiles::finish`].
pub struct MinuteFiles {
    pub dir: FleetDir,
    minutes: Minutes,
    hold_secs: i64,
    /// Closed rows not yet written, by date.
    pending: BTreeMap<String, Vec<MinuteRow>>,
    written: Written,
    error: Option<anyhow::Error>,
}

/// Rows held before a date is written even if it is not over.
const MAX_PENDING_ROWS: usize = 2_000_000;

impl MinuteFiles {
    pub fn new(dir: FleetDir, hold_secs: i64) -> MinuteFiles {
        MinuteFiles {
            dir,
            minutes: Minutes::new(hold_secs),
            hold_secs,
            pending: BTreeMap::new(),
            written: Written::default(),
            error: None,
        }
    }

    pub fn observe(&mut self, r: &Request) {
        self.minutes.observe(r);
        if self.minutes.closed_len() >= 65_536 {
            self.move_closed(false);
        }
    }

    /// Start over (`analyze` reads an input out of time order again, sorted): the files
    /// written so far are removed.
    pub fn restart(&mut self) {
        for f in &self.written.files {
            let _ = std::fs::remove_file(f);
        }
        *self = MinuteFiles::new(self.dir.clone(), self.hold_secs);
    }

    fn move_closed(&mut self, all: bool) {
        for r in self.minutes.take_closed() {
            self.pending.entry(date_of(r.minute)).or_default().push(r);
        }
        // Every date before the newest is over (the input is in time order).
        while self.pending.len() > 1
            || (all && !self.pending.is_empty())
            || self.pending.values().map(Vec::len).sum::<usize>() > MAX_PENDING_ROWS
        {
            let Some((_, rows)) = self.pending.pop_first() else {
                break;
            };
            if self.error.is_none() {
                if let Err(e) = self.dir.write_minutes(&rows, &mut self.written) {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Write what is left, and the decisions.
    pub fn finish(mut self, decisions: &[Decision]) -> anyhow::Result<Written> {
        self.minutes.close_all();
        self.move_closed(true);
        if let Some(e) = self.error {
            return Err(e);
        }
        self.dir.write_decisions(decisions, &mut self.written)?;
        Ok(self.written)
    }
}

/// Work for the writer thread.
enum Batch {
    Minutes(Vec<MinuteRow>),
    Decisions(Vec<Decision>),
}

/// `follow --parquet`: aggregates the requests the loop hands it (cheap, in the loop) and every
/// `roll_secs` of wall time sends the closed minutes and the bans since the last roll to its
/// writer thread. A full queue drops the batch and says so; write errors come back as notes.
pub struct ParquetSink {
    minutes: Minutes,
    bans: Vec<Decision>,
    roll_secs: i64,
    last_roll: i64,
    tx: Option<SyncSender<Batch>>,
    worker: Option<JoinHandle<()>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ParquetSink {
    pub fn start(
        dir: FleetDir,
        roll_secs: u64,
        hold_secs: i64,
        now: i64,
    ) -> anyhow::Result<ParquetSink> {
        std::fs::create_dir_all(&dir.root)
            .with_context(|| format!("{}: cannot create directory", dir.root.display()))?;
        let (tx, rx) = sync_channel::<Batch>(16);
        let errors = Arc::new(Mutex::new(Vec::new()));
        let errs = errors.clone();
        let worker = std::thread::Builder::new()
            .name("parquet".into())
            .spawn(move || write_loop(dir, rx, errs))
            .context("cannot start the Parquet thread")?;
        Ok(ParquetSink {
            minutes: Minutes::new(hold_secs),
            bans: Vec::new(),
            roll_secs: roll_secs.max(1) as i64,
            last_roll: now,
            tx: Some(tx),
            worker: Some(worker),
            errors,
        })
    }

    fn roll(&mut self) {
        let rows = self.minutes.take_closed();
        let bans = std::mem::take(&mut self.bans);
        let Some(tx) = &self.tx else { return };
        for batch in [Batch::Minutes(rows), Batch::Decisions(bans)] {
            let empty = match &batch {
                Batch::Minutes(r) => r.is_empty(),
                Batch::Decisions(d) => d.is_empty(),
            };
            if empty {
                continue;
            }
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(batch) {
                self.errors
                    .lock()
                    .expect("parquet errors")
                    .push("the writer is behind: one roll of rows dropped".into());
            }
        }
    }
}

fn write_loop(dir: FleetDir, rx: Receiver<Batch>, errors: Arc<Mutex<Vec<String>>>) {
    for batch in rx {
        let mut w = Written::default();
        let r = match &batch {
            Batch::Minutes(rows) => dir.write_minutes(rows, &mut w),
            Batch::Decisions(ds) => dir.write_decisions(ds, &mut w),
        };
        if let Err(e) = r {
            errors
                .lock()
                .expect("parquet errors")
                .push(format!("{e:#}"));
        }
    }
}

impl Sink for ParquetSink {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn requests(&mut self, requests: &[Request]) {
        for r in requests {
            self.minutes.observe(r);
        }
    }

    fn note(&mut self, note: &Note, now: i64) {
        if let Note::Core(Event::Ban { decision, .. }) = note {
            self.bans.push((**decision).clone());
        }
        if now - self.last_roll >= self.roll_secs {
            self.last_roll = now;
            self.roll();
        }
    }

    fn snapshot(&mut self, s: &super::snapshot::Snapshot) {
        // Minutes close on log time; a quiet log closes them on the loop's estimate of it.
        if let Some(t) = s.log_now {
            self.minutes.close_until(t);
        }
        if s.now - self.last_roll >= self.roll_secs {
            self.last_roll = s.now;
            self.roll();
        }
    }

    fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut *self.errors.lock().expect("parquet errors"))
            .into_iter()
            .map(|e| Note::Input {
                name: "parquet".into(),
                note: e,
            })
            .collect()
    }

    fn shutdown(&mut self, grace: Duration) {
        self.minutes.close_all();
        self.roll();
        drop(self.tx.take());
        super::sink::join_within(self.worker.take(), grace);
    }
}

/// Read one minutes file back (tests, `--from-parquet`).
pub fn read_minutes(path: &Path) -> anyhow::Result<Vec<MinuteRow>> {
    use polars_io::parquet::read::ParquetReader;
    use polars_io::SerReader;
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| anyhow!("{}: not a Parquet file bouncer wrote: {e}", path.display()))?;
    rows_of(&df).with_context(|| format!("{}: unexpected columns", path.display()))
}

fn rows_of(df: &DataFrame) -> anyhow::Result<Vec<MinuteRow>> {
    let col = |n: &str| df.column(n).map_err(|e| anyhow!("{e}"));
    let ip = col("ip")?.str()?.clone();
    let i64c = |n: &str| -> anyhow::Result<Vec<i64>> {
        Ok(col(n)?
            .cast(&polars::prelude::DataType::Int64)?
            .i64()?
            .into_no_null_iter()
            .collect())
    };
    let u64c = |n: &str| -> anyhow::Result<Vec<u64>> {
        Ok(col(n)?
            .cast(&polars::prelude::DataType::UInt64)?
            .u64()?
            .into_no_null_iter()
            .collect())
    };
    let (minute, first, last) = (i64c("minute")?, i64c("first_sec")?, i64c("last_sec")?);
    let [requests, pages, assets, page_errors, e4, e5, distinct, bytes] = [
        "requests",
        "pages",
        "assets",
        "page_errors",
        "errors_4xx",
        "errors_5xx",
        "distinct_paths",
        "bytes",
    ]
    .map(u64c);
    let (requests, pages, assets, page_errors) = (requests?, pages?, assets?, page_errors?);
    let (e4, e5, distinct, bytes) = (e4?, e5?, distinct?, bytes?);
    let mut out = Vec::with_capacity(df.height());
    for (i, ip) in ip.iter().enumerate() {
        let Some(ip) = ip.and_then(|s| s.parse().ok()) else {
            continue; // not an address: nothing bouncer can ban
        };
        let n = |v: &Vec<u64>| v[i].min(u32::MAX as u64) as u32;
        out.push(MinuteRow {
            ip: Some(ip),
            minute: minute[i],
            requests: n(&requests),
            pages: n(&pages),
            assets: n(&assets),
            page_errors: n(&page_errors),
            errors_4xx: n(&e4),
            errors_5xx: n(&e5),
            bytes: bytes[i],
            distinct_paths: n(&distinct),
            first_sec: first[i],
            last_sec: last[i],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_a_parquet_file() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = FleetDir {
            root: dir.path().into(),
            node: "web-1".into(),
            replace: true,
        };
        let rows: Vec<MinuteRow> = (0..3)
            .map(|i| MinuteRow {
                ip: Some(format!("192.0.2.{i}").parse().unwrap()),
                minute: 1_431_820_800 + 60 * i,
                requests: 10 + i as u32,
                pages: 7,
                assets: 3 + i as u32,
                page_errors: 2,
                errors_4xx: 2,
                errors_5xx: 1,
                bytes: 1 << 40,
                distinct_paths: 4,
                first_sec: 1_431_820_801 + 60 * i,
                last_sec: 1_431_820_859 + 60 * i,
            })
            .collect();
        let mut w = Written::default();
        fleet.write_minutes(&rows, &mut w).unwrap();
        assert_eq!(w.files.len(), 1);
        let f = &w.files[0];
        assert!(
            f.ends_with("host=web-1/date=2015-05-17/minutes-20150517T0000-20150517T0002.parquet"),
            "{}",
            f.display()
        );
        assert_eq!(read_minutes(f).unwrap(), rows);
        // follow never replaces a file: a second write of the same minutes gets a suffix.
        let follow = FleetDir {
            replace: false,
            ..fleet
        };
        let mut w2 = Written::default();
        follow.write_minutes(&rows, &mut w2).unwrap();
        assert!(w2.files[0].to_string_lossy().ends_with("T0002-1.parquet"));
    }

    #[test]
    fn node_names_are_path_safe() {
        assert!(validate_node("web-1.example_2").is_ok());
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(validate_node(bad).is_err(), "{bad}");
        }
    }
}
