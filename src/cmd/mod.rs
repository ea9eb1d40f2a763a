//! Commands: each file wires the stages for one subcommand and owns its I/O. Nothing past this
//! module sees clap.

pub mod analyze;
pub mod export;
mod fleet;
pub mod follow;
pub mod formats;
mod nginx_conf;
pub mod settings;

use crate::cli::{Cli, Command};
use crate::config::ConfigFile;
use clap::CommandFactory;
use std::io::Write;

/// Process exit codes (documented in `--help` and README).
pub mod exit {
    pub const OK: i32 = 0;
    /// Bad flags, bad config file, bad setting.
    pub const USAGE: i32 = 1;
    /// Missing/unreadable input, nothing parseable, unwritable output.
    pub const INPUT: i32 = 2;
    /// Partial: some inputs could not be read (missing, unreadable, not one line parseable);
    /// the others were analysed and the outputs written. `--strict` makes this `INPUT`.
    pub const PARTIAL: i32 = 3;
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: exit::USAGE,
            error: e.into(),
        }
    }

    pub fn input(e: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: exit::INPUT,
            error: e.into(),
        }
    }

    /// A closed pipe (`bouncer … | head`) is not an error.
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::input(e)
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let config = match &cli.config {
        Some(path) => ConfigFile::load(path).map_err(|e| Failure::usage(anyhow::anyhow!(e)))?,
        None => ConfigFile::default(),
    };
    match cli.command {
        Command::Analyze(args) => analyze::run(*args, config),
        Command::Export(args) => export::run(args, config),
        Command::Follow(args) => follow::run(*args, config),
        Command::Status(args) => follow::status(args),
        Command::Formats(args) => formats::run(*args, config),
        Command::Unban(args) => follow::unban(args, config),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bouncer", &mut buf);
            std::io::stdout().lock().write_all(&buf)?;
            Ok(())
        }
    }
}
