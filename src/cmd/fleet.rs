//! `bouncer analyze --from-parquet GLOB`: fleet detection. The minute aggregates many nodes
//! wrote (`--parquet`) are merged per client and minute and replayed through the one detector
//! (`ingest::parquet` says what is made up and what detection loses at minute granularity);
//! the outputs are those of `analyze`: decisions.json, ban lists, report, summary.

use super::analyze::{analysis, write_outputs, Outputs};
use super::settings::{detect_settings, report_options, ruleset_options};
use super::Failure;
use crate::cli::AnalyzeArgs;
use crate::config::ConfigFile;
use crate::detect::Detector;
use crate::ingest::parquet::{load, minute_files, replay};
use anyhow::anyhow;

pub fn run(args: AnalyzeArgs, config: ConfigFile) -> Result<(), Failure> {
    let settings = detect_settings(&args.detect, &config)?;
    let out = Outputs {
        dir: args
            .out
            .clone()
            .unwrap_or_else(|| config.output.dir.clone()),
        rules: ruleset_options(&args.output, &config)?,
        report: report_options(&args)?,
    };
    let pattern = args.from_parquet.as_deref().unwrap_or_default();
    let files = minute_files(pattern).map_err(Failure::input)?;
    let (rows, reports) = load(&files).map_err(Failure::input)?;
    let mut detector = Detector::new(settings);
    replay(&rows, |r| detector.observe(r));
    detector.finish();
    if detector.stats().requests == 0 {
        return Err(Failure::input(anyhow!(
            "{pattern}: no requests in the aggregates"
        )));
    }
    let lines = reports.iter().map(|r| r.lines).sum();
    let analysis = analysis(&detector, reports, lines, 0);
    write_outputs(&analysis, &out, &args)
}
