//! Emit: an [`Analysis`] → files and text. Renderers are pure (`fn(&Analysis) -> String`);
//! writing goes through one atomic helper (temp file + rename), so a reader never sees half a
//! ruleset.
//!
//! `decisions.json` is the stable, documented interface: the rulesets and `bouncer export` are
//! derived from it, so a human can review and edit decisions before anything is enforced.

pub mod audit;
pub mod console;
pub mod crowdsec;
mod crowdsec_push;
pub mod decisions;
pub mod enforce;
pub mod firewall;
pub mod minutes;
pub mod parquet;
pub mod report;
pub mod rulesets;
pub mod sink;
pub mod slack;
pub mod snapshot;
pub mod status;
pub mod summary;

pub use decisions::{bans_of, Analysis, SCHEMA_VERSION};
use rulesets::RulesetOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The files `analyze` writes, by name, rendered from an analysis.
pub fn render_all(
    a: &Analysis,
    o: &RulesetOptions,
) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
    let bans = bans_of(&a.decisions);
    let mut json = serde_json::to_string_pretty(a)?;
    json.push('\n');
    Ok(vec![
        ("decisions.json", json),
        ("decisions.csv", rulesets::crowdsec_csv(&bans)),
        ("bans.rules", rulesets::iptables(&bans, o)),
        ("bans6.rules", rulesets::ip6tables(&bans, o)),
        ("bans.ipset", rulesets::ipset(&bans, o)),
        ("bans.nft", rulesets::nft(&bans, o)),
    ])
}

/// Write `contents` to `path` atomically: a temp file in the same directory, fsync, rename.
///
/// The file gets the mode a plain create would give it, `0666 & !umask` (0644 under the usual
/// umask 022, 0600 under 077), or, when it replaces a regular file, that file's mode, so an
/// operator's `chmod 600 decisions.json` survives the next run. No output gets a wider mode
/// than the umask allows: state and decisions say who was banned and why, and ban lists and
/// reports are no different. Nothing bouncer writes holds a secret (the Slack webhook is only
/// ever read); a file that did would be written 0600 whatever the umask.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(contents)).map(|_| ())
}

/// [`write_atomic`] with the contents written by `fill` (streamed through a buffer: a large
/// file is never held in memory); the number of bytes written.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let tmp = stage(path, fill)?;
    let n = tmp.as_file().metadata()?.len();
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(n)
}

/// The prefix of bouncer's temp files: `.bouncer-PID-`, so a later run can tell the leftovers of
/// a process that died (`kill -9` during a save) from files another one is writing.
fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

const TEMP_PREFIX: &str = ".bouncer-";

/// Remove the temp files in `dir` that no running process is writing: those of a dead pid, and
/// those without one (older versions) that are more than an hour old. Returns what was removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let pid = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok());
        let stale = match pid {
            Some(pid) => pid != std::process::id() && !alive_bouncer(pid),
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600),
        };
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if stale && is_file && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path().display().to_string());
        }
    }
    removed
}

/// Whether `pid` is a running bouncer.
fn alive_bouncer(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.windows(7).any(|w| w == b"bouncer"))
}

/// Write `fill`'s bytes to a temp file beside `path`, with `path`'s mode, synced; not yet in
/// place. Several staged files can then be put in place together ([`write_all_atomic`]).
fn stage(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile_in(dir)?;
    {
        // Temp files are created 0600; give it the mode the file should have.
        use std::os::unix::fs::PermissionsExt;
        let existing = std::fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.permissions().mode());
        let mode = file_mode(existing, process_umask());
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Write several files so that either all are replaced or none is: each is staged in full
/// (a full disk fails here, before anything is replaced, and the staged files are removed),
/// then all are renamed into place.
pub fn write_all_atomic(files: &[(PathBuf, &[u8])]) -> std::io::Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        let tmp = stage(path, |w| w.write_all(bytes)).map_err(|e| {
            std::io::Error::new(e.kind(), format!("{}: cannot write: {e}", path.display()))
        })?;
        staged.push((path, tmp));
    }
    for (path, tmp) in staged {
        tmp.persist(path).map_err(|e| {
            std::io::Error::new(
                e.error.kind(),
                format!("{}: cannot write: {}", path.display(), e.error),
            )
        })?;
    }
    Ok(())
}

/// The replaced file's permission bits, else `0666` less the umask.
fn file_mode(existing: Option<u32>, umask: u32) -> u32 {
    existing.map_or(0o666 & !umask, |m| m & 0o777)
}

/// The process umask, read from `/proc/self/status` (setting it to read it would race with
/// other threads creating files); 022 where that is unavailable.
fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bans.rules");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666 & !process_umask());
        // A replaced file keeps the mode the operator gave it.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"three").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn new_files_respect_the_umask() {
        // Regression (issue 12, 15): outputs and state were forced to 0644 under umask 077.
        assert_eq!(file_mode(None, 0o077), 0o600);
        assert_eq!(file_mode(None, 0o022), 0o644);
        assert_eq!(file_mode(None, 0o027), 0o640);
        assert_eq!(file_mode(Some(0o100600), 0o022), 0o600);
        assert_eq!(
            file_mode(Some(0o104755), 0o022),
            0o755,
            "no setuid carried over"
        );
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("Umask:"), "this kernel reports the umask");
    }
}
