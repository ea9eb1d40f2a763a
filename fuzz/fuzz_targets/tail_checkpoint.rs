//! A followed log resumed from any checkpoint (JSON `TailCheckpoint`: offsets, line numbers,
//! fingerprint lengths, gzip flags as a damaged or hostile state could hold them) among real
//! rotated files — plain, renamed, gzip — then polled. Never a panic, never a line longer than
//! the limit.
#![no_main]
use bouncer_fuzz::ingest::tail::{StartAt, TailCheckpoint, TailFile};
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// access.log, access.log.1, access.log.2.gz in a directory made once.
fn logs() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bouncer-fuzz-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |i: u32| format!("198.51.100.{} - - [17/May/2015:10:05:03 +0000] \"GET /{i} HTTP/1.1\" 200 5 \"-\" \"f\"\n", i % 250);
        let text = |a: u32, b: u32| (a..b).map(line).collect::<String>();
        std::fs::write(dir.join("access.log"), text(0, 40)).unwrap();
        std::fs::write(dir.join("access.log.1"), text(40, 80)).unwrap();
        let gz = std::fs::File::create(dir.join("access.log.2.gz")).unwrap();
        let mut g = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        g.write_all(text(80, 120).as_bytes()).unwrap();
        g.finish().unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut cp) = serde_json::from_slice::<TailCheckpoint>(data) else {
        return;
    };
    let path = logs().join("access.log");
    cp.path = path.display().to_string();
    // dev 0: one of the real files (by inode % 3), so that resuming by identity is reached.
    for f in &mut cp.files {
        if f.dev == 0 {
            let name = ["access.log", "access.log.1", "access.log.2.gz"][(f.inode % 3) as usize];
            let real = logs().join(name);
            let m = std::fs::metadata(&real).unwrap();
            use std::os::unix::fs::MetadataExt;
            (f.path, f.dev, f.inode) = (real.display().to_string(), m.dev(), m.ino());
        }
    }
    let Ok(mut t) = TailFile::open(&path, Some(&cp), StartAt::End) else {
        return;
    };
    for _ in 0..3 {
        let mut out = Vec::new();
        if t.poll(256, &mut out).is_err() {
            return;
        }
        for (_, l) in &out {
            assert!(l.bytes.len() <= 256);
        }
    }
    let _ = t.checkpoint();
});
