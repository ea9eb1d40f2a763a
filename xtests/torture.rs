//! Torture (issue 12, items 7-9): a writer and a rotator against `follow --state`, every line
//! numbered, every number checked in what `follow` took (its `BOUNCER_TAP` record): none lost,
//! none twice.
//!
//! The writer appends like nginx (`O_APPEND`, one line at a time, reopening its log only when
//! told); the rotator cycles through rename + create, nginx-style reopen (rename, the writer
//! keeps writing to the renamed file for a while, then reopens), copytruncate (copy, then
//! truncate: the writer is paused in between, as logrotate cannot pause nginx this is the only
//! inherent loss of copytruncate, and not bouncer's), delete + recreate (only while `follow` runs
//! and has the file open: a deleted file nobody holds is gone for anyone), and compresses the
//! second-newest rotation now and then (logrotate's `delaycompress`). Meanwhile `follow` is
//! paused (SIGSTOP) across rotations and stopped and restarted (SIGTERM) across them.
//!
//! 35 s of writing by default (about 50 s in all); longer by hand:
//! `BOUNCER_TORTURE_SECS=600 BOUNCER_TORTURE_RATE=3000 cargo test --release torture -- --nocapture`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RenameCreate,
    NginxReopen,
    CopyTruncate,
    DeleteRecreate,
}

const KINDS: [Kind; 4] = [
    Kind::RenameCreate,
    Kind::CopyTruncate,
    Kind::NginxReopen,
    Kind::DeleteRecreate,
];

/// Rotated files kept (enough that nothing unread is ever removed).
const KEEP: usize = 40;

struct Writer {
    log: PathBuf,
    file: File,
    seq: u64,
    /// After a rename or delete: the writer goes on with the old file until then.
    reopen_at: Option<Instant>,
    opened: Instant,
}

impl Writer {
    fn open(log: &Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log")
    }

    fn write(&mut self, n: u64) {
        let now = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000");
        let mut text = String::new();
        for _ in 0..n {
            self.seq += 1;
            let s = self.seq;
            text.push_str(&format!(
                "198.18.{}.{} - - [{now}] \"GET /s/{s} HTTP/1.1\" 200 {} \"-\" \"torture\"\n",
                (s / 250) % 250,
                1 + s % 250,
                100 + s % 900
            ));
        }
        // One write per line, as nginx does (a reader may see any prefix of the batch).
        for line in text.split_inclusive('\n') {
            self.file.write_all(line.as_bytes()).expect("write");
        }
    }

    fn reopen_if_due(&mut self) {
        if self.reopen_at.is_some_and(|t| Instant::now() >= t) {
            self.file = Writer::open(&self.log);
            self.reopen_at = None;
            self.opened = Instant::now();
        }
    }
}

fn rotated(log: &Path, i: usize, gz: bool) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(format!(".{i}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

/// logrotate's numbering: PATH.1 → PATH.2 … (and their .gz), the oldest removed.
fn shift(log: &Path) {
    for gz in [false, true] {
        let _ = std::fs::remove_file(rotated(log, KEEP, gz));
    }
    for i in (1..KEEP).rev() {
        for gz in [false, true] {
            let from = rotated(log, i, gz);
            if from.exists() {
                std::fs::rename(&from, rotated(log, i + 1, gz)).expect("shift");
            }
        }
    }
}

/// delaycompress: PATH.2 → PATH.2.gz (a new file; the plain one removed).
fn compress_second(log: &Path) -> bool {
    let plain = rotated(log, 2, false);
    let Ok(text) = std::fs::read(&plain) else {
        return false;
    };
    let f = File::create(rotated(log, 2, true)).expect("gz");
    let mut g = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    g.write_all(&text).expect("gzip");
    g.finish().expect("gzip");
    std::fs::remove_file(plain).expect("rm");
    true
}

#[derive(Debug)]
enum Follow {
    Running(Instant),
    Paused,
    Stopping,
    Stopped,
}

struct Follower {
    child: Option<Child>,
    state: PathBuf,
    log: PathBuf,
    tap: PathBuf,
    stderr: PathBuf,
    starts: u32,
}

impl Follower {
    fn start(&mut self) {
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .expect("stderr");
        let bin = std::env::var("BOUNCER_E2E_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_bouncer").to_owned());
        let child = Command::new(bin)
            .args(["follow", "--dry-run", "--state"])
            .arg(&self.state)
            .arg(&self.log)
            .env("BOUNCER_TAP", &self.tap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn follow");
        self.child = Some(child);
        self.starts += 1;
        // Started = the log file opened (the startup line comes after).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .matches("following 1 file")
            .count()
            .eq(&(self.starts as usize))
        {
            assert!(
                Instant::now() < deadline,
                "follow did not start:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn exited(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => {
                assert!(
                    status.success(),
                    "follow exited {status}:\n{}",
                    self.log_text()
                );
                self.child = None;
                true
            }
            None => true,
            _ => false,
        }
    }

    fn log_text(&self) -> String {
        let t = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How often each sequence number appears in the tap.
fn seen(tap: &Path, n: u64) -> Vec<u32> {
    let mut count = vec![0u32; n as usize + 1];
    for line in std::fs::read_to_string(tap).unwrap_or_default().lines() {
        if let Some(s) = line
            .rsplit_once("/s/")
            .and_then(|(_, s)| s.parse::<usize>().ok())
        {
            if let Some(c) = count.get_mut(s) {
                *c += 1;
            }
        }
    }
    count
}

#[test]
fn torture_follow_loses_and_repeats_no_line_across_rotations_pauses_and_restarts() {
    let secs = env_num("BOUNCER_TORTURE_SECS", 35);
    let rate = env_num("BOUNCER_TORTURE_RATE", 2000);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    File::create(&log).unwrap();
    let mut f = Follower {
        child: None,
        state: dir.path().join("state"),
        log: log.clone(),
        tap: dir.path().join("tap.txt"),
        stderr: dir.path().join("follow.stderr"),
        starts: 0,
    };
    f.start();
    let mut follow = Follow::Running(Instant::now());
    let mut w = Writer {
        log: log.clone(),
        file: Writer::open(&log),
        seq: 0,
        reopen_at: None,
        opened: Instant::now(),
    };
    let start = Instant::now();
    let mut rotations = [0u32; 4];
    let (mut pauses, mut restarts, mut compressed) = (0u32, 0u32, 0u32);
    let mut next_rotation = start + Duration::from_millis(400);
    let mut next_event = start + Duration::from_secs(3);
    let mut last_delete = start;
    let mut turn = 0usize;
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    while start.elapsed() < Duration::from_secs(secs) {
        let t0 = Instant::now();
        w.reopen_if_due();
        w.write(per_tick);
        let now = Instant::now();
        if now >= next_rotation && w.reopen_at.is_none() {
            // Delete only a file follow has had time to open (it polls every 50 ms).
            let follower_settled = matches!(follow, Follow::Running(since) if since.elapsed() > Duration::from_millis(600));
            let mut kind = KINDS[turn % KINDS.len()];
            if kind == Kind::DeleteRecreate
                && !(follower_settled && w.opened.elapsed() > Duration::from_millis(250))
            {
                kind = Kind::RenameCreate;
            }
            turn += 1;
            shift(&log);
            match kind {
                Kind::RenameCreate => {
                    std::fs::rename(&log, rotated(&log, 1, false)).unwrap();
                    File::create(&log).unwrap();
                    w.reopen_at = Some(now + Duration::from_millis(50));
                }
                Kind::NginxReopen => {
                    std::fs::rename(&log, rotated(&log, 1, false)).unwrap();
                    w.reopen_at = Some(now + Duration::from_millis(250));
                }
                Kind::CopyTruncate => {
                    std::fs::copy(&log, rotated(&log, 1, false)).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&log)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                Kind::DeleteRecreate => {
                    std::fs::remove_file(&log).unwrap();
                    w.reopen_at = Some(now + Duration::from_millis(150));
                    last_delete = now;
                }
            }
            rotations[KINDS.iter().position(|k| *k == kind).unwrap()] += 1;
            if turn.is_multiple_of(3) && compress_second(&log) {
                compressed += 1;
            }
            next_rotation = now + Duration::from_millis(300 + (turn as u64 * 137) % 500);
        }
        // The follower's life: running → paused → running → stopped → restarted …
        follow = match follow {
            Follow::Running(since) if now >= next_event => {
                if (pauses + restarts) % 2 == 0 {
                    f.signal("-STOP");
                    pauses += 1;
                    next_event = now + Duration::from_millis(1500);
                    Follow::Paused
                } else if last_delete.elapsed() > Duration::from_secs(1) {
                    f.signal("-TERM");
                    restarts += 1;
                    Follow::Stopping
                } else {
                    Follow::Running(since)
                }
            }
            Follow::Paused if now >= next_event => {
                f.signal("-CONT");
                next_event = now + Duration::from_secs(4);
                Follow::Running(now)
            }
            Follow::Stopping if f.exited() => {
                next_event = now + Duration::from_millis(1500);
                Follow::Stopped
            }
            Follow::Stopped if now >= next_event => {
                f.start();
                next_event = Instant::now() + Duration::from_secs(4);
                Follow::Running(Instant::now())
            }
            other => other,
        };
        if let Some(rest) = tick.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    // Writing is over: let the follower catch up, then stop it.
    w.reopen_at = w.reopen_at.map(|_| Instant::now());
    w.reopen_if_due();
    match follow {
        Follow::Paused => f.signal("-CONT"),
        Follow::Stopping => {
            while !f.exited() {
                std::thread::sleep(Duration::from_millis(20));
            }
            f.start();
        }
        Follow::Stopped => f.start(),
        Follow::Running(_) => {}
    }
    let written = w.seq;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut counts = seen(&f.tap, written);
    while counts[1..].contains(&0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        counts = seen(&f.tap, written);
    }
    f.signal("-TERM");
    let stop = Instant::now() + Duration::from_secs(15);
    while !f.exited() {
        assert!(Instant::now() < stop, "follow did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let counts = seen(&f.tap, written);
    let lost: Vec<usize> = (1..counts.len()).filter(|s| counts[*s] == 0).collect();
    let repeated: Vec<usize> = (1..counts.len()).filter(|s| counts[*s] > 1).collect();
    let total: u32 = rotations.iter().sum();
    eprintln!(
        "torture: {written} lines in {secs} s; {total} rotations (rename+create {}, copytruncate {}, nginx-style reopen {}, delete+recreate {}), {compressed} compressed; follow paused {pauses}×, restarted {restarts}×; lost {}, repeated {}",
        rotations[0],
        rotations[1],
        rotations[2],
        rotations[3],
        lost.len(),
        repeated.len()
    );
    assert!(
        lost.is_empty() && repeated.is_empty(),
        "lost {} (first {:?}), repeated {} (first {:?}); follow said:\n{}",
        lost.len(),
        &lost[..lost.len().min(10)],
        repeated.len(),
        &repeated[..repeated.len().min(10)],
        f.log_text()
    );
    assert!(
        total >= 20 && restarts >= 1 && pauses >= 1,
        "too little happened"
    );
}
