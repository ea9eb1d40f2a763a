//! The two files of `follow --state` as bytes: what is written and how it is read back (see
//! `state.rs` for when and where). The state may be damaged or planted: any bytes are an error
//! or a state, never a panic nor an allocation the bytes do not pay for.
//!
//! Free of polars and of the rest of `follow`: the fuzz targets (fuzz/) compile this module,
//! with `detect`, `ingest` and `parse`, on their own.

use crate::detect::bans::BanBook;
use crate::detect::live::{Core, CoreRef};
use crate::ingest::tail::TailCheckpoint;
use anyhow::anyhow;
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

pub const STATE_VERSION: u32 = 2;
/// A core file larger than this is refused (a damaged length field must not allocate it).
const CORE_LIMIT: u64 = 4 << 30;

/// `bans.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bans {
    pub version: u32,
    pub bans: BanBook,
    /// Firewall entries bouncer added and still owns (it lifts only these).
    #[serde(default)]
    pub owned: BTreeSet<IpAddr>,
    pub backend: Option<String>,
}

/// `core.bin`, as written (borrowed: a save copies nothing).
#[derive(Serialize)]
pub struct CoreFileRef<'a> {
    pub version: u32,
    pub core: CoreRef<'a>,
    pub inputs: &'a [TailCheckpoint],
}

/// `core.bin`, as read.
#[derive(Deserialize)]
pub struct CoreFile {
    pub version: u32,
    pub core: Core,
    pub inputs: Vec<TailCheckpoint>,
}

pub fn bincode_options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(CORE_LIMIT)
}

/// Read `bans.json` (its text) back.
pub fn parse_bans(text: &[u8]) -> anyhow::Result<Bans> {
    let b: Bans = serde_json::from_slice(text)?;
    if b.version != STATE_VERSION {
        return Err(anyhow!("version {} is not {STATE_VERSION}", b.version));
    }
    Ok(b)
}

/// Read `core.bin` back.
pub fn parse_core(bytes: impl std::io::Read) -> anyhow::Result<CoreFile> {
    let c: CoreFile = bincode_options().deserialize_from(bytes)?;
    if c.version != STATE_VERSION {
        return Err(anyhow!("version {} is not {STATE_VERSION}", c.version));
    }
    Ok(c)
}
