//! `bouncer export`: a reviewed decisions.json → one ban list on stdout.

use super::Failure;
use crate::cli::{ExportArgs, ExportFormat};
use crate::config::ConfigFile;
use crate::emit::{bans_of, decisions, rulesets};
use anyhow::Context;
use std::io::{Read, Write};

pub fn run(args: ExportArgs, config: ConfigFile) -> Result<(), Failure> {
    let opts = super::settings::ruleset_options(&args.output, &config)?;
    let name = args.decisions.display().to_string();
    let mut text = String::new();
    if name == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading decisions from stdin")
            .map_err(Failure::input)?;
    } else {
        text = std::fs::read_to_string(&args.decisions)
            .with_context(|| format!("{name}: cannot read"))
            .map_err(Failure::input)?;
    }
    let analysis = decisions::read(text.as_bytes())
        .with_context(|| format!("{name}: not a bouncer decisions.json"))
        .map_err(Failure::input)?;
    let bans = bans_of(&analysis.decisions);
    let out = match args.format {
        ExportFormat::Iptables => rulesets::iptables(&bans, &opts),
        ExportFormat::Ip6tables => rulesets::ip6tables(&bans, &opts),
        ExportFormat::Ipset => rulesets::ipset(&bans, &opts),
        ExportFormat::Nft => rulesets::nft(&bans, &opts),
        ExportFormat::Csv => rulesets::crowdsec_csv(&bans),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
