//! What `follow --state DIR` keeps: the live core (detector, bans), where each input was left,
//! the firewall entries bouncer owns; the pid file (one follower per state, and how `unban`
//! finds it); the inbox `bouncer unban` writes to. Everything is written atomically.

use crate::detect::live::{Event, Live};
use crate::emit::write_atomic;
use crate::ingest::checkpoint::Checkpoint;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "follow-state.json";
pub const STATE_VERSION: u32 = 1;
const PID_FILE: &str = "follow.pid";
const INBOX: &str = "inbox";

#[derive(Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub live: Live,
    pub checkpoints: Vec<Checkpoint>,
    pub backend: Option<String>,
    /// Firewall entries bouncer added and still owns (it lifts only these).
    #[serde(default)]
    pub owned: BTreeSet<IpAddr>,
    /// Pushes to the CrowdSec LAPI not yet delivered (at most `emit::crowdsec::QUEUE_CAP`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crowdsec: Vec<crate::emit::crowdsec::Push>,
}

pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("{}: cannot read: {e}", path.display())),
    };
    let st: State = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: unreadable state; move it away to start over",
            path.display()
        )
    })?;
    if st.version != STATE_VERSION {
        return Err(anyhow!(
            "{}: state version {} is not {STATE_VERSION}",
            path.display(),
            st.version
        ));
    }
    Ok(Some(st))
}

pub fn save(dir: &Path, state: &State) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create state directory", dir.display()))?;
    let path = dir.join(STATE_FILE);
    write_atomic(&path, &serde_json::to_vec(state)?)
        .with_context(|| format!("{}: cannot write state", path.display()))
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
