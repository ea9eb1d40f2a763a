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
/// A core file larger than this is refused.
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
    /// Pushes to the CrowdSec LAPI not yet delivered (at most `emit::crowdsec::QUEUE_CAP`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crowdsec: Vec<crate::emit::crowdsec::Push>,
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

/// Read `core.bin` (`size` bytes) back. No length field can make it allocate more than the
/// bytes that are left: bincode reads a string or byte buffer into a buffer of its stated
/// length, so a damaged length (4 GiB in a 35 kB file, found by fuzz/state_core) is refused
/// by the limit before anything is allocated.
pub fn parse_core(bytes: impl std::io::Read, size: u64) -> anyhow::Result<CoreFile> {
    let c: CoreFile = bincode::DefaultOptions::new()
        .with_limit(size.min(CORE_LIMIT))
        .deserialize_from(bytes)?;
    if c.version != STATE_VERSION {
        return Err(anyhow!("version {} is not {STATE_VERSION}", c.version));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::live::Live;
    use crate::detect::{DetectSettings, Detector};

    fn core_bytes(path: &str) -> Vec<u8> {
        let mut live = Live::new(
            Detector::new(DetectSettings::default()),
            BanBook::default(),
            60,
        );
        for i in 0..50 {
            let ip = IpAddr::from([198, 51, 100, (i % 5) as u8]);
            let r = crate::parse::Request::new(ip, 1_700_000_000 + i, "GET", "/a", 200, 5, "ua");
            live.push(&r, (1_700_000_000 + i) * 1000);
        }
        let inputs = [TailCheckpoint {
            path: path.into(),
            files: Vec::new(),
            known: Vec::new(),
            at: 0,
        }];
        let file = CoreFileRef {
            version: STATE_VERSION,
            core: live.core(),
            inputs: &inputs,
        };
        bincode_options().serialize(&file).unwrap()
    }

    #[test]
    fn a_damaged_length_is_refused_before_it_is_allocated() {
        // Regression (fuzz/state_core): a string length of 2.8 GB in a 35 kB core.bin was
        // allocated (and zeroed) before the read failed; the limit was 4 GiB whatever the size.
        let marker = "/var/log/MARKER.log";
        let good = core_bytes(marker);
        let c = parse_core(&good[..], good.len() as u64).unwrap();
        assert_eq!(c.inputs[0].path, marker);
        // The path's length (one byte, before it) made 100 MB: 0xfc, then a u32.
        let at = good
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .unwrap();
        assert_eq!(good[at - 1] as usize, marker.len());
        let mut bad = good[..at - 1].to_vec();
        bad.push(0xfc);
        bad.extend_from_slice(&100_000_000u32.to_le_bytes());
        bad.extend_from_slice(&good[at..]);
        let e = parse_core(&bad[..], bad.len() as u64).err().unwrap();
        let kind = e.downcast_ref::<bincode::Error>().map(|e| &**e);
        assert!(
            matches!(kind, Some(bincode::ErrorKind::SizeLimit)),
            "{e:?}: the buffer was allocated before the read failed"
        );
    }
}
