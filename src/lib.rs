//! bouncer: offline-first nginx access-log analytics with ban-list export.
//!
//! One pipeline, four stages — see ARCHITECTURE.md:
//! [`ingest`] (files, gzip, stdin, checkpoints) → [`parse`] (line → [`parse::Request`]) →
//! [`detect`] (pure scoring, shared by every command) → [`emit`] (decisions, rulesets, summary);
//! [`serve`] is `follow`'s live view (dashboard, metrics), fed by what `follow` publishes.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod detect;
pub mod emit;
pub mod ingest;
pub mod parse;
pub mod serve;
