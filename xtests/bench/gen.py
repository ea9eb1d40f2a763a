#!/usr/bin/env python3
"""Generate bouncer's benchmark inputs from the real logs in ../shared/data/real.

Deterministic (python3 stdlib only, no randomness: every "random-looking" choice is a blake2b
hash of its key), so a re-run writes byte-identical files. Nothing it writes is committed: the
files go to a work directory outside the repo (run.sh passes ${BENCH_DIR}).

    gen.py --lines 1000000 --days 3 --out DIR --name bench-1m

writes DIR/NAME.log (combined), DIR/NAME.jsonl (the same requests as nginx `escape=json`
lines: time_local, remote_addr, request, status, body_bytes_sent, http_referer,
http_user_agent) and DIR/NAME.meta.json (what was generated).

How the traffic is made
- Background: elastic-apache.log (10 000 real requests of a personal site, 17-20 May 2015,
  ~84 hours). Its minute field was anonymised to :05; as in fixtures/make_fixtures.py each
  (ip, hour) is put back on a hashed minute (here the hash also includes the replica, below);
  the seconds are the real ones.
- The template is replayed R = ceil(background lines / 10 000) times ("replicas"). Replica r
  is shifted by (r mod DAYS) whole days, so the time-of-day pattern is kept and the copies
  cover the whole span (hours past the span's end wrap to its start). Each (ip, replica) is
  remapped to one address of a pool of --ips public-looking IPv4 addresses (hashed), so the
  distinct IPs grow with the size (default 5 000 x (lines / 1 M)^0.75: ~5 000 for 1 M,
  ~28 000 for 10 M) while every pool address stays a mix of real sessions.
- Attacks, mixed in at several times (offsets from the span's start; each occurrence gets its
  own addresses): the real ddoser flood (858 lines, 3 s, 3 IPs) every 11 h from +5 h, and the
  real scanner runs (acunetix 28 min, netsparker 18 min, w3af 2 h 45 min), one every 17 h from
  +9 h, in turn. The scanner logs are shuffled in time; here every output hour is sorted by time.
- Lines the combined parser of make_fixtures.py cannot split into fields are left out of both
  files, so the two files hold exactly the same requests. All times are written in +0000.
"""

import argparse
import bisect
import datetime as dt
import hashlib
import json
import math
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "fixtures"))
# Same parsing (escape-aware combined regex, unescaping) as the committed fixtures.
import make_fixtures as mf  # noqa: E402

MONTHS = mf.MONTHS
TEMPLATE_LINES = 10_000
FLOOD_EVERY_H, FLOOD_FIRST_H = 11, 5
SCAN_EVERY_H, SCAN_FIRST_H = 17, 9
SCANNERS = ["scanner-acunetix.log", "scanner-netsparker.log", "scanner-w3af.log"]
# Public /8s the pool addresses are drawn from (no private, loopback, CGNAT, multicast or
# documentation ranges; nothing bouncer skips by default).
POOL_FIRST_OCTETS = [2, 5, 24, 31, 37, 41, 46, 50, 62, 66, 77, 78, 79, 80, 81, 82, 83, 84, 85,
                     86, 87, 88, 89, 90, 91, 93, 94, 95, 109, 176, 178, 185, 188, 193, 194, 195,
                     200, 201, 203, 207, 208, 209, 212, 213, 217]


def h64(key):
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def pool_ip(p):
    h = h64("pool|%d" % p)
    a = POOL_FIRST_OCTETS[h % len(POOL_FIRST_OCTETS)]
    h //= len(POOL_FIRST_OCTETS)
    return "%d.%d.%d.%d" % (a, (h >> 16) & 255, (h >> 8) & 255, 1 + (h & 255) % 254)


def epoch(t):
    return int(t.timestamp())


class Req:
    """One source request, split into what changes (ip, time) and what doesn't."""
    __slots__ = ("ip", "t", "mid", "tail", "jrest")

    def __init__(self, line):
        f = mf.parse_fields(line)
        if f is None:
            raise ValueError
        m = mf.TS_FIELD.search(line)
        self.ip = f["ip"]
        self.t = epoch(f["ts"])
        self.mid = line[len(self.ip):m.start(1)]   # ' - - ['
        self.tail = line[m.end(1):]                # '] "GET / HTTP/1.1" 200 …'
        rest = json.dumps({
            "request": f["request"], "status": f["status"], "body_bytes_sent": f["bytes"],
            "http_referer": f["referer"], "http_user_agent": f["ua"],
        }, ensure_ascii=False, separators=(",", ":"))
        self.jrest = rest[1:]                      # '"request":…}'


def load(src, name):
    reqs, dropped = [], 0
    for line in read_lines(src, name):
        try:
            reqs.append(Req(line))
        except ValueError:
            dropped += 1
    return reqs, dropped


def read_lines(src, name):
    with open(os.path.join(src, name), encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l.rstrip("\r") for l in lines]


def shift_ip(ip, k, octet):
    """Occurrence k of an attack: move one octet of the address by k."""
    parts = ip.split(".")
    parts[octet] = str((int(parts[octet]) + k) % 256)
    return ".".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--days", type=int, required=True)
    ap.add_argument("--ips", type=int, default=0, help="address pool (default grows with lines)")
    ap.add_argument("--src", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "real"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    a = ap.parse_args()
    pool = a.ips or int(round(5000 * (a.lines / 1e6) ** 0.75))
    span_h = 24 * a.days
    started = time.time()

    # ---------------------------------------------------------------- sources
    template, dropped_bg = load(a.src, "elastic-apache.log")
    assert len(template) == TEMPLATE_LINES, len(template)
    hour0 = min(r.t for r in template) // 3600 * 3600
    start = hour0 // 86400 * 86400            # midnight UTC of the template's first day
    h0_clock = (hour0 - start) // 3600        # the template starts at this hour of day
    by_th = {}                                # template hour -> [(index, req)]
    for i, r in enumerate(template):
        by_th.setdefault((r.t - hour0) // 3600, []).append((i, r))
    flood, dropped_fl = load(a.src, "ddoser-flood.log")
    scans = [(n,) + load(a.src, n) for n in SCANNERS]

    # ---------------------------------------------------------------- attacks
    attacks = []   # (t, seq, ip, req)
    placed = []
    span_s = span_h * 3600
    f0 = min(r.t for r in flood)
    k, h = 0, FLOOD_FIRST_H
    while h * 3600 < span_s - 3600:
        at = start + h * 3600 + 30
        for r in flood:
            attacks.append((at + r.t - f0, len(attacks), shift_ip(r.ip, 2 * k, 2), r))
        placed.append({"what": "ddoser-flood", "at": at, "lines": len(flood),
                       "ips": sorted({shift_ip(r.ip, 2 * k, 2) for r in flood})})
        k, h = k + 1, h + FLOOD_EVERY_H
    k, h = 0, SCAN_FIRST_H
    while h * 3600 < span_s - 3 * 3600:
        name, reqs, _ = scans[k % len(scans)]
        s0 = min(r.t for r in reqs)
        at = start + h * 3600 + 600
        for r in reqs:
            attacks.append((at + r.t - s0, len(attacks), shift_ip(r.ip, k, 2), r))
        placed.append({"what": name[:-4], "at": at, "lines": len(reqs),
                       "span_secs": max(r.t for r in reqs) - s0,
                       "ips": sorted({shift_ip(r.ip, k, 2) for r in reqs})})
        k, h = k + 1, h + SCAN_EVERY_H
    attacks = [x for x in attacks if x[0] < start + span_s]
    attacks.sort()
    if len(attacks) >= a.lines:
        raise SystemExit("--lines %d is smaller than the attacks (%d lines)" % (a.lines, len(attacks)))

    # ---------------------------------------------------------------- background plan
    background = a.lines - len(attacks)
    replicas = math.ceil(background / TEMPLATE_LINES)
    last_keep = background - TEMPLATE_LINES * (replicas - 1)   # lines of the last replica
    plan = {}      # output hour -> [(replica, template hour)]
    for r in range(replicas):
        for th in by_th:
            oh = (h0_clock + th + 24 * (r % a.days)) % span_h
            plan.setdefault(oh, []).append((r, th))
    ip_map = {}

    def remap(ip, r):
        key = (ip, r)
        v = ip_map.get(key)
        if v is None:
            v = ip_map[key] = pool_ips[h64("%s|%d" % key) % pool]
        return v

    pool_ips = [pool_ip(p) for p in range(pool)]

    # ---------------------------------------------------------------- write, hour by hour
    os.makedirs(a.out, exist_ok=True)
    paths = {ext: os.path.join(a.out, a.name + ext) for ext in (".log", ".jsonl", ".meta.json")}
    tmp = {ext: p + ".tmp" for ext, p in paths.items()}
    seen_ips = set()
    n_out = 0
    ai = 0
    ts_cache = {}
    with open(tmp[".log"], "w", encoding="utf-8", newline="\n") as fc, \
            open(tmp[".jsonl"], "w", encoding="utf-8", newline="\n") as fj:
        for oh in range(span_h):
            hour_start = start + oh * 3600
            rows = []   # (t, seq, ip, req)
            for r, th in plan.get(oh, ()):
                for i, q in by_th[th]:
                    if r == replicas - 1 and i >= last_keep:
                        continue
                    minute = h64("%s|%d|%d" % (q.ip, th, r)) % 60
                    rows.append((hour_start + minute * 60 + q.t % 60, r * TEMPLATE_LINES + i,
                                 remap(q.ip, r), q))
            lo = ai
            ai = bisect.bisect_left(attacks, (hour_start + 3600,), lo)
            rows.extend((t, -1 - s, ip, q) for t, s, ip, q in attacks[lo:ai])
            rows.sort(key=lambda x: (x[0], x[1]))
            cl, jl = [], []
            for t, _, ip, q in rows:
                ts = ts_cache.get(t)
                if ts is None:
                    g = time.gmtime(t)
                    ts = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
                        g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)
                    ts_cache[t] = ts
                cl.append(ip + q.mid + ts + q.tail)
                jl.append('{"time_local":"' + ts + '","remote_addr":"' + ip + '",' + q.jrest)
                seen_ips.add(ip)
            ts_cache.clear()
            if cl:
                fc.write("\n".join(cl))
                fc.write("\n")
                fj.write("\n".join(jl))
                fj.write("\n")
            n_out += len(rows)
    assert n_out == a.lines, (n_out, a.lines)

    def when(t):
        return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    meta = {
        "generator": "xtests/bench/gen.py", "lines": n_out, "days": a.days,
        "span": [when(start), when(start + span_s - 1)], "ip_pool": pool,
        "distinct_ips": len(seen_ips), "replicas": replicas,
        "background_lines": background, "attack_lines": len(attacks),
        "dropped_unparseable": {"elastic-apache.log": dropped_bg, "ddoser-flood.log": dropped_fl,
                                **{n: d for n, _, d in scans}},
        "bytes": {ext: os.path.getsize(tmp[ext]) for ext in (".log", ".jsonl")},
        "attacks": [dict(p, at=when(p["at"])) for p in placed],
    }
    with open(tmp[".meta.json"], "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    for ext in (".log", ".jsonl", ".meta.json"):   # meta last: its presence means complete
        os.replace(tmp[ext], paths[ext])
    print("%s: %d lines (%d background in %d replicas, %d attack), %d distinct IPs, %s .. %s, "
          "%.0f MB combined, %.0f MB JSON, %.0f s"
          % (a.name, n_out, background, replicas, len(attacks), len(seen_ips), meta["span"][0],
             meta["span"][1], meta["bytes"][".log"] / 1e6, meta["bytes"][".jsonl"] / 1e6,
             time.time() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
