//! The polars floor for `bouncer analyze` on nginx JSON logs.
//!
//! What it does, and nothing more (this is what BENCHMARKS.md compares against):
//!
//! 1. `scan_ndjson` the file with a fixed schema of the three columns it needs
//!    (`remote_addr`, `time_local`, `status`; no schema inference pass),
//! 2. `second` = `time_local` parsed with `str.to_datetime("%d/%b/%Y:%H:%M:%S %z")`
//!    (naive: the offset is parsed but not applied; the generated logs are all `+0000`)
//!    and taken as UNIX seconds,
//! 3. `group_by([remote_addr, second])` → `len()` and the count of `status >= 400`,
//! 4. `collect` on the streaming engine, and print the number of (ip, second) groups.
//!
//! An analyzer has to do at least this: read every line, find the client, its second and its
//! status, and count per (client, second). It skips everything bouncer does on top (the other
//! fields, windows, baselines, scoring, outputs).
//!
//! Usage: `polars-floor FILE.jsonl [parse|raw] [streaming|in-memory]`
//! - `parse` (default): as above.
//! - `raw`: group by the `time_local` string itself instead of parsing it (same groups while the
//!   offset is constant): shows what the time parsing costs.

use polars::prelude::*;
use std::num::NonZeroUsize;

fn main() -> PolarsResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: polars-floor FILE.jsonl [parse|raw] [streaming|in-memory]");
    let mode = args.get(2).map(String::as_str).unwrap_or("parse");
    let engine = match args.get(3).map(String::as_str).unwrap_or("streaming") {
        "streaming" => Engine::Streaming,
        "in-memory" => Engine::InMemory,
        other => panic!("unknown engine {other:?}"),
    };

    let schema = Schema::from_iter([
        Field::new("time_local".into(), DataType::String),
        Field::new("remote_addr".into(), DataType::String),
        Field::new("status".into(), DataType::Int64),
    ]);
    let lf = LazyJsonLineReader::new(PlRefPath::from(path.as_str()))
        .with_schema(Some(Arc::new(schema)))
        .with_infer_schema_length(NonZeroUsize::new(1))
        .finish()?;

    let second = match mode {
        "parse" => col("time_local")
            .str()
            .to_datetime(
                Some(TimeUnit::Milliseconds),
                None,
                StrptimeOptions {
                    format: Some("%d/%b/%Y:%H:%M:%S %z".into()),
                    ..Default::default()
                },
                lit("raise"),
            )
            .dt()
            .timestamp(TimeUnit::Milliseconds)
            / lit(1000i64),
        "raw" => col("time_local"),
        other => panic!("unknown mode {other:?}"),
    };

    let out = lf
        .select([col("remote_addr"), second.alias("second"), col("status")])
        .group_by([col("remote_addr"), col("second")])
        .agg([
            len().alias("requests"),
            col("status").gt_eq(lit(400i64)).sum().alias("errors"),
        ])
        .collect_with_engine(engine)?;
    let df = out.unwrap_single();
    let errors: i64 = df.column("errors")?.as_materialized_series().sum()?;
    println!("groups={} errors={}", df.height(), errors);
    Ok(())
}
