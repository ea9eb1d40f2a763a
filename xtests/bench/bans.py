#!/usr/bin/env python3
"""Write a decisions.json with N ban decisions for the firewall-load benchmark.

    bans.py TEMPLATE_DECISIONS.json N > decisions.json

TEMPLATE is a real `bouncer analyze` output (run.sh uses fixtures/mixture.log); its first ban
is copied N times with only the address changed, so `bouncer export` renders the ban lists from
a file of exactly the shape analyze writes. Addresses: 198.18.0.0/15, the range RFC 2544
reserves for benchmarking (131 072 addresses), counted up from 198.18.0.1, skipping .0 and
.255 of each /24. Deterministic.
"""

import ipaddress
import json
import sys


def addresses(n):
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    end = int(ipaddress.IPv4Address("198.19.255.255"))
    i = base
    while n:
        if i > end:
            raise SystemExit("198.18.0.0/15 has fewer usable addresses than requested")
        if i & 255 not in (0, 255):
            yield str(ipaddress.IPv4Address(i))
            n -= 1
        i += 1


def main():
    template, n = sys.argv[1], int(sys.argv[2])
    with open(template, encoding="utf-8") as f:
        d = json.load(f)
    ban = next(x for x in d["decisions"] if x["action"] == "ban")
    ban = dict(ban, reason="benchmark ban", top_paths=[], user_agents=[], status_mix={})
    d["decisions"] = [dict(ban, ip=ip) for ip in addresses(n)]
    json.dump(d, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
