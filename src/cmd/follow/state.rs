//! What `follow --state DIR` keeps, in two files because they change at different rates:
//! - `bans.json`: active bans, strikes, the firewall entries bouncer owns, the backend. Small;
//!   rewritten (atomically) when it changes — a ban starts or ends, the firewall adds an entry —
//!   and read by `bouncer status` and `bouncer unban`.
//! - `core.bin`: the detector (windows, baselines, per-client state) and where each input was
//!   left, as one consistent snapshot (bincode, varints). It grows with the clients being
//!   tracked, so it is rewritten only when requests came since the last one, at most every
//!   [`CORE_EVERY_SECS`], and at shutdown: an idle follower writes nothing. After a crash the
//!   lines since the snapshot are read again into the detector that had not seen them —
//!   nothing lost, nothing counted twice — and bans they decide again are already in
//!   `bans.json` (a ban of an IP already banned is no event).
//!
//! Also the pid file (one follower per state, and how `unban` finds it) and the inbox `bouncer
//! unban` writes to. A state of the previous version (`follow-state.json`, one JSON rewritten
//! whole every 5 s) is read once and replaced. Temp files a `kill -9` left behind during a save
//! are removed at start.

use super::stored::bincode_options;
pub use super::stored::{parse_bans, parse_core, Bans, CoreFile, CoreFileRef, STATE_VERSION};
use crate::detect::live::{Event, Live};
use crate::emit::{remove_stale_temps, write_atomic, write_atomic_with};
use crate::ingest::checkpoint::Checkpoint;
use crate::ingest::tail::TailCheckpoint;
use anyhow::{anyhow, Context};
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const BANS_FILE: &str = "bans.json";
pub const CORE_FILE: &str = "core.bin";
/// The previous version's single state file.
pub const LEGACY_FILE: &str = "follow-state.json";
/// The core snapshot is rewritten at most this often (when requests came).
pub const CORE_EVERY_SECS: i64 = 30;
const PID_FILE: &str = "follow.pid";
const INBOX: &str = "inbox";

/// The previous version's `follow-state.json`.
#[derive(Deserialize)]
struct Legacy {
    version: u32,
    live: Live,
    checkpoints: Vec<Checkpoint>,
    backend: Option<String>,
    #[serde(default)]
    owned: BTreeSet<IpAddr>,
    #[serde(default)]
    crowdsec: Vec<crate::emit::crowdsec::Push>,
}

/// What a state directory holds.
pub struct Loaded {
    pub bans: Option<Bans>,
    pub core: Option<CoreFile>,
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{}: cannot read: {e}", path.display())),
    }
}

/// The bans (for `status` and `unban`): `bans.json`, or an older version's state.
pub fn load_bans(dir: &Path) -> anyhow::Result<Option<Bans>> {
    let path = dir.join(BANS_FILE);
    match read_optional(&path)? {
        Some(text) => parse_bans(&text)
            .map(Some)
            .with_context(|| format!("{}: unreadable; move it away to start over", path.display())),
        None => Ok(load_legacy(dir)?.map(|l| l.bans.expect("legacy has bans"))),
    }
}

/// Everything: bans and core (either may be missing: a first run, a core never saved).
pub fn load(dir: &Path) -> anyhow::Result<Option<Loaded>> {
    let bans = load_bans(dir)?;
    let core_path = dir.join(CORE_FILE);
    let core = match std::fs::File::open(&core_path) {
        Ok(f) => Some(
            parse_core(
                std::io::BufReader::with_capacity(1 << 20, &f),
                f.metadata().map_or(0, |m| m.len()),
            )
            .with_context(|| {
                format!(
                    "{}: unreadable; move it away to start over (the bans in {BANS_FILE} are kept)",
                    core_path.display()
                )
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!("{}: cannot read: {e}", core_path.display())),
    };
    if bans.is_none() && core.is_none() {
        return load_legacy(dir);
    }
    Ok(Some(Loaded { bans, core }))
}

/// `follow-state.json` of the previous version, as bans and core.
fn load_legacy(dir: &Path) -> anyhow::Result<Option<Loaded>> {
    let path = dir.join(LEGACY_FILE);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let st: Legacy = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{}: unreadable state; move it away to start over",
            path.display()
        )
    })?;
    if st.version != 1 {
        return Err(anyhow!(
            "{}: state version {} is not 1",
            path.display(),
            st.version
        ));
    }
    let inputs = st
        .checkpoints
        .into_iter()
        .map(TailCheckpoint::from_file)
        .collect();
    let (core, bans) = st.live.into_parts();
    let bans = Bans {
        version: STATE_VERSION,
        bans,
        owned: st.owned,
        backend: st.backend,
        crowdsec: st.crowdsec,
    };
    let core = Some(CoreFile {
        version: STATE_VERSION,
        core,
        inputs,
    });
    Ok(Some(Loaded {
        bans: Some(bans),
        core,
    }))
}

/// Write `bans.json`.
pub fn save_bans(dir: &Path, bans: &Bans) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
    let path = dir.join(BANS_FILE);
    write_atomic(&path, &serde_json::to_vec(bans)?)
        .with_context(|| format!("{}: cannot write state", path.display()))?;
    // The previous version's file would otherwise shadow nothing but confuse: it is replaced.
    let _ = std::fs::remove_file(dir.join(LEGACY_FILE));
    Ok(())
}

/// Write `core.bin`, streamed (no copy of the detector in memory); its size.
pub fn save_core(dir: &Path, live: &Live, inputs: &[TailCheckpoint]) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
    let path = dir.join(CORE_FILE);
    let file = CoreFileRef {
        version: STATE_VERSION,
        core: live.core(),
        inputs,
    };
    write_atomic_with(&path, |w| {
        bincode_options()
            .serialize_into(w, &file)
            .map_err(std::io::Error::other)
    })
    .with_context(|| format!("{}: cannot write state", path.display()))
}

/// At start, with the pid file held (no other follower writes here): remove temp files an
/// interrupted save left behind.
pub fn clean(dir: &Path) -> Vec<String> {
    remove_stale_temps(dir)
}

/// Requests from `bouncer unban` to a running `follow`.
#[derive(Serialize, Deserialize)]
pub struct UnbanRequest {
    pub ip: Option<IpAddr>,
    pub all: bool,
}

/// Queue an unban for the running follower; the path of the request file.
pub fn post_unban(dir: &Path, req: &UnbanRequest, stamp: i64) -> anyhow::Result<PathBuf> {
    let inbox = dir.join(INBOX);
    std::fs::create_dir_all(&inbox)?;
    let path = inbox.join(format!("{stamp}-{}.json", std::process::id()));
    write_atomic(&path, &serde_json::to_vec(req)?)?;
    Ok(path)
}

/// Take the unban requests waiting in the inbox and apply them to `live`.
pub fn take_inbox(dir: &Path, live: &mut Live) -> Vec<Event> {
    let Ok(entries) = std::fs::read_dir(dir.join(INBOX)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for f in files {
        if let Ok(req) = std::fs::read_to_string(&f)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<UnbanRequest>(&t).map_err(|_| ()))
        {
            if req.all {
                events.extend(live.unban_all());
            } else if let Some(ip) = req.ip {
                events.extend(live.unban(&ip));
            }
        }
        let _ = std::fs::remove_file(&f);
    }
    events
}

/// `follow.pid` in the state directory: one follower per state, and how `unban` finds it.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(dir: &Path) -> anyhow::Result<PidFile> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
        let path = dir.join(PID_FILE);
        if let Some(pid) = running_pid(dir) {
            return Err(anyhow!(
                "{}: another bouncer follow (pid {pid}) uses this state directory",
                dir.display()
            ));
        }
        write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The pid of the follow running on `dir`, if one does.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (pid != std::process::id() && cmdline.windows(7).any(|w| w == b"bouncer")).then_some(pid)
}
