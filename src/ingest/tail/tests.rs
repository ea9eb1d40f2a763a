use super::*;
use std::io::Write;

fn append(p: &Path, s: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

/// What a reader thread would hand out now: every line polled, each marked consumed.
fn lines(t: &mut TailFile) -> Vec<String> {
    let mut out = Vec::new();
    t.poll(1024, &mut out).unwrap();
    out.into_iter()
        .map(|(id, l)| {
            t.consumed(
                id,
                &LineMeta {
                    number: l.number,
                    end_offset: l.end_offset,
                    too_long: l.too_long,
                },
            );
            String::from_utf8(l.bytes).unwrap()
        })
        .collect()
}

/// Poll until nothing more comes (a big backlog takes several polls).
fn all_lines(t: &mut TailFile) -> Vec<String> {
    let mut v = Vec::new();
    loop {
        let got = lines(t);
        if got.is_empty() {
            return v;
        }
        v.extend(got);
    }
}

fn gzip(p: &Path, text: &str) {
    let f = std::fs::File::create(p).unwrap();
    let mut g = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    g.write_all(text.as_bytes()).unwrap();
    g.finish().unwrap();
}

#[test]
fn partial_lines_wait_and_rotations_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "old\n");
    let mut t = TailFile::open(&p, None, StartAt::End).unwrap();
    assert!(lines(&mut t).is_empty(), "starts at the end");
    append(&p, "a\nb");
    assert_eq!(lines(&mut t), vec!["a"]);
    append(&p, "c\n");
    assert_eq!(lines(&mut t), vec!["bc"]);
    // rename + create, with a last line written to the old file after the rename
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&p, &rotated).unwrap();
    append(&rotated, "late-in-old\n");
    append(&p, "new1\n");
    assert_eq!(lines(&mut t), vec!["late-in-old", "new1"]);
    // nginx goes on writing to the renamed file until it reopens: still read
    append(&rotated, "later-in-old\n");
    assert_eq!(lines(&mut t), vec!["later-in-old"]);
    // copytruncate
    std::fs::copy(&p, dir.path().join("access.log.2")).unwrap();
    std::fs::write(&p, "").unwrap();
    append(&p, "x\n");
    assert_eq!(lines(&mut t), vec!["x"]);
    // delete + recreate
    std::fs::remove_file(&p).unwrap();
    assert!(lines(&mut t).is_empty());
    append(&p, "fresh\n");
    assert_eq!(lines(&mut t), vec!["fresh"]);
    // restart from a checkpoint: nothing re-read, nothing missed
    let cp = t.checkpoint();
    append(&p, "after\n");
    let mut t2 = TailFile::open(&p, Some(&cp), StartAt::End).unwrap();
    assert_eq!(lines(&mut t2), vec!["after"]);
}

#[test]
fn a_backlog_longer_than_a_poll_is_read_to_its_end_before_the_new_file() {
    // Regression (issue 12, 7): at most 8 MiB more was read from the rotated file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "");
    let mut t = TailFile::open(&p, None, StartAt::End).unwrap();
    let n = 400_000; // ~20 MB: several polls
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("line {i:08} {}\n", "x".repeat(40)));
    }
    append(&p, &text);
    std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
    append(&p, "new\n");
    let got = all_lines(&mut t);
    assert_eq!(got.len(), n + 1);
    assert!(got[n - 1].starts_with(&format!("line {:08}", n - 1)));
    assert_eq!(got[n], "new");
}

#[test]
fn copytruncate_refilled_past_the_old_offset_is_noticed() {
    // Regression (issue 12, 9): truncated and refilled beyond the old offset before the next
    // poll went unnoticed; the new file's start and the old file's tail were lost.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "one\ntwo\n");
    let mut t = TailFile::open(&p, None, StartAt::Beginning).unwrap();
    assert_eq!(lines(&mut t), vec!["one", "two"]);
    append(&p, "three\n");
    // logrotate copytruncate: copy, then truncate; refilled past the old offset at once
    std::fs::copy(&p, dir.path().join("access.log.1")).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    append(&p, "fresh-1 that is long\nfresh-2\n");
    assert_eq!(
        lines(&mut t),
        vec!["three", "fresh-1 that is long", "fresh-2"]
    );
    // and a copy that was compressed at once
    append(&p, "fresh-3\n");
    let text = std::fs::read_to_string(&p).unwrap();
    gzip(&dir.path().join("access.log.1.gz"), &text);
    std::fs::remove_file(dir.path().join("access.log.1")).unwrap();
    std::fs::write(&p, "").unwrap();
    append(&p, "newest, longer than anything before it\n");
    assert_eq!(
        lines(&mut t),
        vec!["fresh-3", "newest, longer than anything before it"]
    );
}

#[test]
fn rotations_missed_while_lagging_are_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "a1\n");
    let mut t = TailFile::open(&p, None, StartAt::Beginning).unwrap();
    assert_eq!(lines(&mut t), vec!["a1"]);
    append(&p, "a2\n");
    // Two rotations before the next poll: B comes and goes unseen.
    std::fs::rename(&p, dir.path().join("access.log.2")).unwrap();
    append(&p, "b1\nb2\n");
    std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
    append(&p, "c1\n");
    assert_eq!(all_lines(&mut t), vec!["a2", "b1", "b2", "c1"]);
}

#[test]
fn a_restart_finds_the_file_it_left_among_the_rotations_gzip_or_not() {
    // Regression (issue 12, 8): lines left in the renamed file when follow stopped were
    // skipped ("replaced since last run").
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    let history = dir.path().join("access.log.3.gz");
    gzip(&history, "ancient\n");
    append(&p, "a1\n");
    let mut t = TailFile::open(&p, None, StartAt::Beginning).unwrap();
    assert_eq!(lines(&mut t), vec!["a1"]);
    let cp = t.checkpoint();
    drop(t);
    // While stopped: more lines, a rotation with immediate compression, another rotation.
    append(&p, "a2\na3\n");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    gzip(&dir.path().join("access.log.2.gz"), &text);
    append(&p, "b1\n");
    std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
    append(&p, "c1\n");
    let mut t = TailFile::open(&p, Some(&cp), StartAt::End).unwrap();
    assert_eq!(all_lines(&mut t), vec!["a2", "a3", "b1", "c1"]);
    assert!(
        t.notes.iter().any(|n| n.contains("access.log.2.gz")),
        "{:?}",
        t.notes
    );

    // Renamed, not compressed, and still written to by a writer that has not reopened.
    let cp = t.checkpoint();
    drop(t);
    append(&p, "c2\n");
    std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
    append(&dir.path().join("access.log.1"), "c3\n");
    append(&p, "d1\n");
    let mut t = TailFile::open(&p, Some(&cp), StartAt::End).unwrap();
    assert_eq!(all_lines(&mut t), vec!["c2", "c3", "d1"]);
}

#[test]
fn checkpoints_count_only_lines_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "1\n2\n3\n");
    let t = TailFile::open(&p, None, StartAt::Beginning).unwrap();
    let mut src = TailSource::new(t, 1024);
    let mut buf = Vec::new();
    assert!(matches!(src.next_line_into(&mut buf), Next::Line(_)));
    let cp = src.checkpoint().unwrap();
    assert_eq!((cp.files[0].offset, cp.files[0].line), (2, 1));
    drop(src);
    let mut t = TailFile::open(&p, Some(&cp), StartAt::End).unwrap();
    assert_eq!(lines(&mut t), vec!["2", "3"]);
}

#[test]
fn missing_file_is_waited_for_and_long_lines_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("later.log");
    let mut t = TailFile::open(&p, None, StartAt::End).unwrap();
    assert!(lines(&mut t).is_empty());
    let long = "y".repeat(5000);
    append(&p, &format!("first\n{long}\nlast\n"));
    let mut out = Vec::new();
    t.poll(1024, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[1].1.too_long, Some(5000));
    assert_eq!(out[1].1.bytes.len(), 1024);
    assert_eq!(out[2].1.bytes, b"last");
}
