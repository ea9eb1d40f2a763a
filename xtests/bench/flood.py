#!/usr/bin/env python3
"""A spoofed-address flood for the memory benchmark (issue 12, 11): N distinct public IPv4
clients, each sending 1-3 requests (a third each), at RATE lines per second of log time, in
the combined format, with a few steady normal clients around it. Deterministic (no randomness:
addresses and counts come from a hash of the client's number), stdlib only.

    flood.py --ips 3000000 --rate 5000 --out FILE

3 M clients at 5000 lines/s: 6 M lines, 20 minutes of log, every client new and every one of
them alive in the detector's windows at once (a client is forgotten 31 minutes after its last
request).
"""
import argparse
import hashlib
import sys

START = 1_431_820_800  # 2015-05-17T00:00:00Z
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
PATHS = ["/", "/index.php", "/login", "/search?q=x", "/api/v1/items", "/wp-login.php"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "curl/7.68.0", "python-requests/2.25"]


def h(i):
    return int.from_bytes(hashlib.blake2b(b"%d" % i, digest_size=8).digest(), "big")


def stamp(t):
    import time
    g = time.gmtime(t)
    return "%02d/%s/%d:%02d:%02d:%02d +0000" % (g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year,
                                                g.tm_hour, g.tm_min, g.tm_sec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ips", type=int, required=True)
    ap.add_argument("--rate", type=int, default=5000, help="lines per second of log time")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    lines = 0
    with open(a.out, "w", buffering=1 << 20) as f:
        # Each client's requests land within a few seconds of its first one.
        pending = []  # (second, line) waiting for their second
        t = START
        in_second = 0
        stamps = {}
        for i in range(a.ips):
            x = h(i)
            ip = "%d.%d.%d.%d" % (1 + x % 223, (x >> 8) & 255, (x >> 16) & 255, 1 + (x >> 24) % 254)
            if ip.startswith(("10.", "127.", "100.", "169.254.", "172.", "192.168.")):
                ip = "45." + ip.split(".", 1)[1]
            for k in range(1 + (x >> 40) % 3):
                sec = t + k
                s = stamps.get(sec) or stamps.setdefault(sec, stamp(sec))
                path = PATHS[(x >> (44 + k)) % len(PATHS)]
                agent = AGENTS[(x >> 50) % len(AGENTS)]
                pending.append((sec, '%s - - [%s] "GET %s HTTP/1.1" 200 512 "-" "%s"\n' % (ip, s, path, agent)))
                in_second += 1
            if in_second >= a.rate:
                # Background: 20 steady clients, one request each every 10 s.
                for c in range(20):
                    if (t + c) % 10 == 0:
                        pending.append((t, '198.51.100.%d - - [%s] "GET /news HTTP/1.1" 200 2048 "-" "%s"\n'
                                        % (c + 1, stamps.get(t) or stamp(t), AGENTS[0])))
                ready = [p for p in pending if p[0] <= t]
                pending = [p for p in pending if p[0] > t]
                f.writelines(l for _, l in ready)
                lines += len(ready)
                t += 1
                in_second = 0
                if len(stamps) > 8:
                    stamps = {k: v for k, v in stamps.items() if k >= t}
        pending.sort(key=lambda p: p[0])
        f.writelines(l for _, l in pending)
        lines += len(pending)
    print("%s: %d lines, %d clients, %d s of log" % (a.out, lines, a.ips, t - START), file=sys.stderr)


if __name__ == "__main__":
    main()
