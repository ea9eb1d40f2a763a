#!/usr/bin/env python3
"""Labelled evaluation of bouncer's detection on real logs and on labelled mixtures made from
real lines. Prints, per case: attackers banned (recall), benign clients banned (false bans),
other bans, time to ban, and whether the learned levels or the floors decided.

    xtests/eval/run.py [--bouncer PATH] [--shared DIR] [--json OUT] [--markdown]

Reads ../shared/data (real/ and wild/, never copied into the repository) and writes its
inputs to a temporary directory. Deterministic: python3 stdlib only; every "random" choice is a
hash of its key, so a re-run builds byte-identical inputs. The labels are in cases.json beside
this script (what each case is, where the ground truth comes from).

The synthesized cases are made from real lines: only the client address and the timestamp of
a line are rewritten; method, path, status, size, referer and user agent are the real ones.
"""

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LINE = re.compile(r'^(?P<vhost>\S+:\d+ )?(?P<ip>\S+) (?P<l>\S+) (?P<u>\S+) \[(?P<t>[^\]]+)\] (?P<rest>.*)$')
TIME_FMT = "%d/%b/%Y:%H:%M:%S %z"


def h(*key):
    """A stable number in [0, 1) from a key."""
    d = hashlib.blake2b("|".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2**64


def read_lines(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace").splitlines()


def parse(line):
    m = LINE.match(line)
    if not m:
        return None
    try:
        t = dt.datetime.strptime(m["t"], TIME_FMT)
    except ValueError:
        return None
    return m["ip"], int(t.timestamp()), m["rest"]


def fmt(ip, t, rest):
    stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f"{ip} - - [{stamp}] {rest}"


def status_of(rest):
    m = re.search(r'" (\d{3}) ', rest)
    return int(m.group(1)) if m else 0


def ua_of(rest):
    q = rest.rsplit('"', 2)
    return q[-2] if len(q) >= 3 else ""


def write(path, lines):
    lines = sorted(lines, key=lambda x: x[0])
    with open(path, "w") as f:
        for _, text in lines:
            f.write(text + "\n")


def background(shared, name):
    """(time, line) of a real background log, and its first and last time."""
    path = {
        "quiet": os.path.join(REPO, "fixtures", "quiet.log"),
        "ritajie": os.path.join(shared, "wild", "ritajie-shop-nginx-2018.log.gz"),
    }[name]
    out = []
    for line in read_lines(path):
        p = parse(line)
        if p:
            out.append((p[1], line))
    return out


# ---------------------------------------------------------------------------------------------
# Synthesized cases: each returns (lines, labels) where lines are (time, text).


def tor_campaign(shared):
    """A real scanner (Netsparker) thinned to 50–70 requests a minute, its source rotating
    through ten Tor exit addresses every 10 minutes, in a real day of background traffic."""
    bg = background(shared, "quiet")
    start = bg[0][0] + 4 * 3600
    scan = [parse(l) for l in read_lines(os.path.join(shared, "real", "scanner-netsparker.log"))]
    scan = [s for s in scan if s]
    ips = [f"185.220.101.{10 + i}" for i in range(10)]
    out, t, i = [], start, 0
    while t < start + 100 * 60 and i < len(scan):
        minute = (t - start) // 60
        per_min = 50 + int(20 * h("pace", minute))
        ip = ips[(t - start) // 600]
        for k in range(per_min):
            if i >= len(scan):
                break
            s = t + (k * 60) // per_min
            out.append((s, fmt(ip, s, scan[i][2])))
            i += 1
        t += 60
    return bg + out, {"attackers": ips, "benign": "rest"}


def shop_visitors(shared):
    """A real page view with its ~150 assets (one visitor of the shop log) replayed by 60
    other visitors over the day, on top of the shop's own real day."""
    bg = background(shared, "ritajie")
    src = "113.5.4.71"
    visit = [(t, line) for t, line in bg if line.startswith(src + " ")]
    t0 = visit[0][0]
    out = []
    for v in range(60):
        ip = f"203.0.113.{v + 1}"
        at = bg[0][0] + 1800 + int(h("visit", v) * 20 * 3600)
        for t, line in visit:
            p = parse(line)
            out.append((at + t - t0, fmt(ip, at + t - t0, p[2])))
    return bg + out, {"attackers": [], "benign": "rest"}


def nat_crowd(shared):
    """40 real visitors of the shop (their own requests and user agents, assets and all)
    behind one carrier-NAT address, overlapping within half an hour."""
    bg = background(shared, "ritajie")
    by_ip = {}
    for t, line in bg:
        p = parse(line)
        by_ip.setdefault(p[0], []).append((t, p[2]))
    agents, chosen = set(), []
    for ip, reqs in sorted(by_ip.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        ua = ua_of(reqs[0][1])
        if 20 <= len(reqs) <= 300 and ua not in agents and len({ua_of(r) for _, r in reqs}) == 1:
            agents.add(ua)
            chosen.append(reqs)
        if len(chosen) == 40:
            break
    nat = "100.64.12.34"
    at0 = bg[0][0] + 6 * 3600
    out = []
    for n, reqs in enumerate(chosen):
        shift = at0 + int(h("nat", n) * 1800) - reqs[0][0]
        out += [(t + shift, fmt(nat, t + shift, rest)) for t, rest in reqs]
    return bg + out, {"attackers": [], "benign": "rest"}


def rotating_bot(shared):
    """One stream that rotates through the same 40 real user agents as the NAT crowd, at the
    crowd's pace, on the same few paths, no assets, with errors: still one client."""
    lines, _ = nat_crowd(shared)
    crowd = [parse(l) for t, l in lines if l.startswith("100.64.12.34 ")]
    agents = sorted({ua_of(r) for _, _, r in crowd})
    bg = background(shared, "ritajie")
    ip = "198.51.100.77"
    t0 = bg[0][0] + 6 * 3600
    out = []
    paths = ["/login/nothing", "/api/user", "/admin/", "/wp-login.php", "/.env"]
    for i in range(len(crowd)):
        t = t0 + (i * 1800) // len(crowd)
        path = paths[i % len(paths)]
        status = 200 if i % 2 else 404
        rest = f'"GET {path} HTTP/1.1" {status} 512 "-" "{agents[i % len(agents)]}"'
        out.append((t, fmt(ip, t, rest)))
    return bg + out, {"attackers": [ip], "benign": "rest"}


def steady_monitors(shared):
    """Real uptime-monitor requests (PRTG's, from a stranger's log) every 3 s all day, and a
    page that polls once a second all day (the shop's real POST /physical/menu), in the
    shop's real day."""
    bg = background(shared, "ritajie")
    prtg = None
    d = os.path.join(shared, "wild", "dmjacas-vhost-2024", "other_vhosts_access.log")
    for line in read_lines(d):
        if "PRTG" in line:
            prtg = parse(line)
            break
    poll = next(parse(l) for _, l in bg if "POST /physical/menu" in l)
    out = []
    start, end = bg[0][0], bg[-1][0]
    for t in range(start, end, 3):
        out.append((t, fmt("192.0.2.10", t, prtg[2])))
    for t in range(start, end):
        out.append((t, fmt("192.0.2.20", t, poll[2])))
    return bg + out, {"attackers": [], "benign": "rest"}


def flood(shared):
    """The real ddoser flood (3 IPs, 3 s, 858 requests) in a real day of background."""
    bg = background(shared, "quiet")
    fl = [parse(l) for l in read_lines(os.path.join(shared, "real", "ddoser-flood.log"))]
    fl = [f for f in fl if f]
    shift = bg[0][0] + 10 * 3600 - fl[0][1]
    out = [(t + shift, fmt(ip, t + shift, rest)) for ip, t, rest in fl]
    attackers = ["192.236.195.162", "192.236.195.112", "192.236.194.162"]
    return bg + out, {"attackers": attackers, "benign": "rest"}


SYNTH = {
    "tor-campaign": tor_campaign,
    "shop-page-visitors": shop_visitors,
    "nat-crowd": nat_crowd,
    "rotating-ua-bot": rotating_bot,
    "steady-monitors": steady_monitors,
    "flood-in-background": flood,
}


# ---------------------------------------------------------------------------------------------


def run_case(bouncer, case, inputs, labels, work):
    out = os.path.join(work, "out-" + case["name"])
    cmd = [bouncer, "analyze", *inputs, "--out", out, "-q", "--no-report"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        return {"name": case["name"], "error": r.stderr.strip().splitlines()[-1:] or ["?"]}
    a = json.load(open(os.path.join(out, "decisions.json")))
    bans = [d for d in a["decisions"] if d["action"] == "ban"]
    banned = {d["ip"] for d in bans}
    first_seen = {}
    for d in bans:
        first_seen.setdefault(d["ip"], d)
    attackers = set(labels.get("attackers", []))
    benign = labels.get("benign", [])
    hostile = labels.get("hostile", [])
    if hostile == "labelled":  # every client of the log is a labelled attacker
        hostile = set(banned)
    hostile = set(hostile)
    if benign == "rest":
        false = banned - attackers - hostile
    else:
        false = banned & set(benign)
    found = banned & attackers
    ttb = []
    for ip in found:
        d = first_seen[ip]
        t = lambda s: int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())
        ttb.append(t(d["at"]) - t(d["first_seen"]))
    learned = sum(1 for d in bans if d.get("decided_by") == "learned")
    return {
        "name": case["name"],
        "kind": case["kind"],
        "requests": a["requests"],
        "attackers": len(attackers),
        "found": len(found),
        "missed": sorted(attackers - banned),
        "false_bans": sorted(false),
        "other_bans": sorted(banned & hostile),
        "bans": len(bans),
        "alerts": sum(1 for d in a["decisions"] if d["action"] == "alert"),
        "ttb_median": statistics.median(ttb) if ttb else None,
        "ttb_max": max(ttb) if ttb else None,
        "decided_learned": learned,
        "decided_floor": len(bans) - learned,
        "limits": {l["window"]: round(l["limit"], 1) for l in a.get("limits", [])},
        "windows": sorted({d["window"] for d in bans}),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bouncer", default=os.environ.get("BOUNCER", "bouncer"))
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    cases = json.load(open(os.path.join(HERE, "cases.json")))
    results = []
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            if case["kind"] == "synthesized":
                lines, labels = SYNTH[case["name"]](args.shared)
                path = os.path.join(work, case["name"] + ".log")
                write(path, lines)
                inputs = [path]
                labels = {**labels, **case.get("labels", {})}
            else:
                inputs = []
                for p in case["inputs"]:
                    base = REPO if p.startswith("fixtures/") else args.shared
                    full = os.path.join(base, p)
                    if os.path.isdir(full):
                        inputs += sorted(os.path.join(full, f) for f in os.listdir(full))
                    else:
                        inputs.append(full)
                labels = case["labels"]
                if "labels_file" in labels:
                    lf = json.load(open(os.path.join(REPO, labels["labels_file"])))
                    labels = {"attackers": lf["attackers"], "benign": lf["background_ips"]}
            results.append(run_case(args.bouncer, case, inputs, labels, work))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results, args.markdown)


def print_table(results, markdown):
    head = ["case", "kind", "requests", "attackers banned", "false bans", "other bans",
            "time to ban (median / max)", "decided by learned / floor", "windows"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["name"], "", "", "error: " + " ".join(r["error"]), "", "", "", "", ""])
            continue
        rec = f"{r['found']}/{r['attackers']}" if r["attackers"] else "–"
        ttb = "–" if r["ttb_median"] is None else f"{r['ttb_median']:.0f} s / {r['ttb_max']:.0f} s"
        rows.append([r["name"], r["kind"], str(r["requests"]), rec, str(len(r["false_bans"])),
                     str(len(r["other_bans"])), ttb,
                     f"{r['decided_learned']} / {r['decided_floor']}", " ".join(r["windows"])])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
        for row in [head] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in results:
        if r.get("missed") or r.get("false_bans"):
            print(f"  {r['name']}: missed {r.get('missed')} false bans {r.get('false_bans')}")


if __name__ == "__main__":
    sys.exit(main())
