#!/usr/bin/env python3
"""Fold `perf script --inline` output of a bouncer run into where the time goes.

    perf script -i perf.data -F comm,tid,ip,sym --inline | perf_fold.py > profile.txt

Each sample is charged to the first stage it is in, walking its stack from the leaf up (inlined
frames included), so malloc/free/memmove are charged to the bouncer code that called them.
Prints: samples per thread kind, the stages with their share of all samples, and the top leaf
symbols.
"""

import collections
import sys

# (label, substrings): the first frame (leaf → root) containing one of the substrings decides.
STAGES = [
    ("ingest: reorder (per-second queues, release)", ["Reorder", "Worker::release"]),
    ("detect: TopK::add (paths, agents)", ["TopK"]),
    ("drop / free Request", ["drop_in_place<bouncer::parse::Request",
                             "drop_in_place<alloc::vec::Vec<bouncer::parse::Request"]),
    ("detect: baseline via polars", ["polars"]),
    ("detect: baseline (rest)", ["baseline::"]),
    ("parse: time", ["parse::time", "parse_time"]),
    ("parse: client IP", ["parse_ip", "net::parser"]),
    ("parse: request line", ["split_request"]),
    ("parse: JSON", ["parse::json", "serde_json"]),
    ("parse: combined fields", ["parse::combined"]),
    ("parse: Request::new (copy text, hash path and agent)", ["Request::new", "key_hash"]),
    ("parse: rest", ["parse::parse_line", "parse::"]),
    ("ingest: line reader", ["reader::", "LineReader", "next_line"]),
    ("ingest: reader thread (batch, errors)", ["Worker::next_batch", "record_error"]),
    ("detect: close second / period", ["close_second", "close_period", "evaluate_ip",
                                       "evaluate_global", "advance_to"]),
    ("detect: observe (HashMap, windows, status counts)", ["Detector::observe", "observe"]),
    ("emit: outputs", ["emit::", "write_atomic", "serde_json::ser"]),
    ("ingest: merge / stream (rest)", ["next_request", "ingest::"]),
    ("analyze: rest", ["analyze::run"]),
    ("rayon: waiting / scheduling", ["rayon"]),
    ("startup / exit (dynamic loader, munmap)", ["_dl_", "exit"]),
]


def samples(stream):
    head, frames = None, []
    for line in stream:
        if not line.strip():
            if head is not None:
                yield head, frames
            head, frames = None, []
        elif not line[0].isspace():
            if head is not None:
                yield head, frames
            head, frames = line.split()[0], []
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "?")
    if head is not None:
        yield head, frames


def main():
    threads = collections.Counter()
    stages = collections.Counter()
    stage_threads = collections.defaultdict(collections.Counter)
    leaves = collections.Counter()
    total = 0
    for comm, frames in samples(sys.stdin):
        total += 1
        kind = "reader thread" if comm.startswith("bouncer-read") else \
            "polars pool" if comm.startswith("polars") else \
            "main (reorder + detect)" if any("lang_start" in f for f in frames) else \
            "rayon pool (parse)" if any("rayon" in f for f in frames) else comm
        threads[kind] += 1
        label = "other"
        for f in frames:
            hit = next((name for name, keys in STAGES if any(k in f for k in keys)), None)
            if hit:
                label = hit
                break
        stages[label] += 1
        stage_threads[label][kind] += 1
        leaves[frames[0].replace(" (inlined)", "") if frames else "?"] += 1
    if not total:
        sys.exit("no samples")
    print("samples: %d" % total)
    print("by thread: " + ", ".join("%s %.1f%%" % (k, 100.0 * v / total)
                                      for k, v in threads.most_common()))
    print("\nstage (leaf → root, first match)                          share   threads")
    for label, n in stages.most_common():
        print("  %-56s %5.1f%%   %s" % (label, 100.0 * n / total, ", ".join(
            "%s %d" % kv for kv in stage_threads[label].most_common())))
    print("\ntop leaf symbols (self time)")
    for sym, n in leaves.most_common(20):
        print("  %5.1f%%  %s" % (100.0 * n / total, sym[:150]))


if __name__ == "__main__":
    main()
