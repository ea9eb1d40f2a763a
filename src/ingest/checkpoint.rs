//! Checkpoints for incremental runs: where each input was left, and how to recognise it again.
//!
//! A checkpoint names a file by device and inode and by a fingerprint of its first bytes. A file
//! whose inode and fingerprint match resumes at its offset; one that was rotated (renamed) is
//! found by inode under its new name; one that was truncated or replaced is read from the start.
//! gzip archives cannot be resumed mid-stream: an unchanged archive is skipped, a changed one is
//! read again.

use super::Pending;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::Path;

const FINGERPRINT_BYTES: u64 = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    /// Offset just after the last complete line consumed.
    pub offset: u64,
    /// Line number of that line.
    pub line: u64,
    /// File size when the checkpoint was written.
    pub size: u64,
    pub fingerprint: u64,
    pub fingerprint_len: u64,
    pub gzip: bool,
    /// Requests read but still in the reorder buffer.
    pub pending: Vec<Pending>,
}

/// What to do with a file given the previous run's checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Read from the start (first run, new file, truncated or replaced).
    Start(Option<String>),
    /// Continue at this checkpoint.
    At(Checkpoint, Option<String>),
    /// Nothing new (unchanged gzip archive).
    Skip(Checkpoint),
}

/// Identity of a file on disk: (dev, inode, size).
pub fn identity(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((m.dev(), m.ino(), m.len()))
    }
    #[cfg(not(unix))]
    Ok((0, 0, m.len()))
}

/// FNV-1a over the first `len` bytes: stable across builds and platforms.
pub fn fingerprint(path: &Path, len: u64) -> std::io::Result<u64> {
    let mut buf = Vec::new();
    File::open(path)?.take(len).read_to_end(&mut buf)?;
    Ok(fnv(&buf))
}

/// FNV-1a of `bytes`.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Decide how to read `path` given the saved checkpoints.
pub fn plan(path: &Path, saved: &[Checkpoint]) -> std::io::Result<Resume> {
    let (dev, inode, size) = identity(path)?;
    let name = path.display().to_string();
    let same_file = saved.iter().find(|c| c.dev == dev && c.inode == inode);
    let Some(c) = same_file else {
        let note = saved
            .iter()
            .any(|c| c.path == name)
            .then(|| "replaced since last run: read from the start".to_string());
        return Ok(Resume::Start(note));
    };
    let fp_ok = size >= c.fingerprint_len && fingerprint(path, c.fingerprint_len)? == c.fingerprint;
    if !fp_ok || size < c.offset {
        return Ok(Resume::Start(Some(
            "truncated or rewritten since last run: read from the start".into(),
        )));
    }
    let renamed = (c.path != name).then(|| format!("rotated from {}: resumed", c.path));
    if c.gzip {
        return Ok(if size == c.size {
            Resume::Skip(c.clone())
        } else {
            Resume::Start(Some("archive changed: read again".into()))
        });
    }
    Ok(Resume::At(c.clone(), renamed))
}

/// A checkpoint for a file read up to `offset`.
pub fn make(
    path: &Path,
    offset: u64,
    line: u64,
    gzip: bool,
    pending: Vec<Pending>,
) -> std::io::Result<Checkpoint> {
    let (dev, inode, size) = identity(path)?;
    let fingerprint_len = FINGERPRINT_BYTES.min(size);
    Ok(Checkpoint {
        path: path.display().to_string(),
        dev,
        inode,
        offset,
        line,
        size,
        fingerprint: fingerprint(path, fingerprint_len)?,
        fingerprint_len,
        gzip,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn grown_rotated_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        std::fs::write(&log, b"line one\nline two\n").unwrap();
        let cp = make(&log, 18, 2, false, vec![]).unwrap();
        assert_eq!(plan(&log, &[]).unwrap(), Resume::Start(None));
        // Grown: resume where we were.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert!(
            matches!(plan(&log, std::slice::from_ref(&cp)).unwrap(), Resume::At(c, None) if c.offset == 18)
        );
        // Rotated by rename: found by inode under its new name.
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&log, &rotated).unwrap();
        assert!(
            matches!(plan(&rotated, std::slice::from_ref(&cp)).unwrap(), Resume::At(_, Some(n)) if n.contains("rotated"))
        );
        // A new file under the old name starts from the beginning.
        std::fs::write(&log, b"new\n").unwrap();
        assert!(matches!(
            plan(&log, std::slice::from_ref(&cp)).unwrap(),
            Resume::Start(Some(_))
        ));
        // copytruncate: same inode, shorter → from the start.
        std::fs::write(&rotated, b"x\n").unwrap();
        assert!(
            matches!(plan(&rotated, std::slice::from_ref(&cp)).unwrap(), Resume::Start(Some(n)) if n.contains("truncated"))
        );
    }
}
