//! Offline decisions do not depend on the order of the input: files in any order, a rotated set
//! piped in the shell's glob order, a file whose blocks are out of order, in memory or sorted
//! through runs on disk.

use crate::common::{analyze_ok, fixture, read_json, wild_log};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// `cat`/`zcat -f` of `files` in the given order.
fn concatenate(files: &[std::path::PathBuf]) -> Vec<u8> {
    let mut all = Vec::new();
    for f in files {
        let raw = std::fs::read(f).unwrap();
        if raw.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut all)
                .unwrap();
        } else {
            all.extend_from_slice(&raw);
        }
        if !all.is_empty() && !all.ends_with(b"\n") {
            all.push(b'\n');
        }
    }
    all
}

fn analyze_piped(input: &[u8], out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bouncer"))
        .args(["analyze", "-", "-q", "--out"])
        .arg(out)
        .args(extra)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_json(&out.join("decisions.json"))
}

/// Regression (issue 9): `zcat -f access.log* | bouncer analyze -` in the shell's glob order
/// (.1, .10.gz, .11.gz … .2.gz) marked most lines late and banned monitors at "47 883 requests in
/// 60 s". It must decide exactly what the files decide.
#[test]
fn a_rotated_set_piped_in_glob_order_decides_like_the_files() {
    let dir = wild_log("plemma-apache-2022");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("access.log")
        })
        .collect();
    files.sort(); // the shell's glob order
    let out = tempfile::tempdir().unwrap();
    let args: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let by_files = analyze_ok(&args, &out.path().join("files"), &[]);
    let piped = analyze_piped(&concatenate(&files), &out.path().join("piped"), &[]);
    assert_eq!(piped["decisions"], by_files["decisions"]);
    assert_eq!(piped["requests"], by_files["requests"]);
    assert_eq!(piped["late_requests"], 0);
    let notes = piped["inputs"][0]["notes"].to_string();
    assert!(notes.contains("sorted by time"), "{notes}");
    // Reversed file order: the same again.
    let mut rev = args.clone();
    rev.reverse();
    let reversed = analyze_ok(&rev, &out.path().join("rev"), &[]);
    assert_eq!(reversed["decisions"], by_files["decisions"]);
}

/// Regression (issue 9): a real file whose blocks are out of order (advertools) banned a user
/// at "177 requests in 60 s" whose real peak was 22/min; its sorted copy bans nobody.
#[test]
fn a_file_with_blocks_out_of_order_decides_like_its_sorted_copy() {
    let src = wild_log("advertools-nginx-2021.log");
    let text = std::fs::read_to_string(&src).unwrap();
    let time = |l: &str| {
        let t = &l[l.find('[').unwrap() + 1..l.find(']').unwrap()];
        bouncer::parse::parse_time_local(t).unwrap()
    };
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| time(l)); // stable: ties keep the file's order
    let dir = tempfile::tempdir().unwrap();
    let sorted = dir.path().join("sorted.log");
    std::fs::write(&sorted, lines.join("\n") + "\n").unwrap();
    let a = analyze_ok(&[&src], &dir.path().join("a"), &[]);
    let b = analyze_ok(&[&sorted], &dir.path().join("b"), &[]);
    assert_eq!(a["decisions"], b["decisions"]);
    assert!(crate::common::banned(&a).is_empty(), "{}", a["decisions"]);
    assert!(a["inputs"][0]["out_of_order"].as_u64().unwrap() > 0);
    assert_eq!(b["inputs"][0]["out_of_order"], 0);
}

/// Sorting spills to disk past --sort-memory and gives the same sequence: the mixture's lines
/// in reversed blocks, sorted through runs on disk, decide what the mixture decides.
#[test]
fn sorting_through_runs_on_disk_gives_the_same_decisions() {
    let text = std::fs::read_to_string(fixture("mixture.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut shuffled = String::new();
    for block in lines.chunks(97).rev() {
        for l in block {
            shuffled.push_str(l);
            shuffled.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let whole = analyze_ok(&[&fixture("mixture.log")], &dir.path().join("w"), &[]);
    let out = analyze_piped(
        shuffled.as_bytes(),
        &dir.path().join("s"),
        &["--sort-memory", "256K"],
    );
    assert_eq!(out["decisions"], whole["decisions"]);
    let notes = out["inputs"][0]["notes"].to_string();
    assert!(notes.contains("sorted runs on disk"), "{notes}");
}
