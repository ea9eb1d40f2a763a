//! Thin entry point: parse the command line, run, map errors to exit codes.

use bouncer::cli::Cli;
use bouncer::cmd::{self, exit};
use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit 1.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match cmd::run(cli) {
        Ok(()) => {}
        Err(f) if f.is_broken_pipe() => std::process::exit(exit::OK),
        Err(f) => {
            eprintln!("bouncer: {:#}", f.error);
            std::process::exit(f.code);
        }
    }
}
