//! bouncer's integration tests: one binary (Cargo.toml: autotests = false), run against the real
//! built `bouncer` on real logs (fixtures/ and ../shared/data/real), and against the real
//! firewall tools inside network namespaces the tests create.

mod analyze;
mod bad_input;
mod cli;
mod common;
mod crowdsec;
mod eval;
mod firewall;
mod fleet;
mod follow;
mod follow_e2e;
mod formats;
mod hardening;
mod incremental;
mod order;
mod report;
mod serve;
mod torture;
