#!/usr/bin/env python3
"""A small, bounded HTTP load driver for the CrowdSec tests (stdlib only).

Sends GET requests to http://HOST:PORT/PATH from each source address in turn, at RATE requests
a second in all, for SECS seconds, each on a new connection bound to its source address, and
prints one JSON line: requests sent, answered, failed. Only ever talks to the address it is given
(the tests give it nginx inside their own network namespace).
"""
import argparse
import http.client
import json
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--path", default="/")
    p.add_argument("--src", required=True, help="comma-separated source addresses")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--timeout", type=float, default=0.3)
    a = p.parse_args()
    sources = a.src.split(",")
    start = time.monotonic()
    sent = answered = failed = 0
    while True:
        now = time.monotonic()
        if now - start >= a.secs:
            break
        due = start + sent / a.rate
        if due > now:
            time.sleep(due - now)
        src = sources[sent % len(sources)]
        sent += 1
        try:
            c = http.client.HTTPConnection(a.host, a.port, timeout=a.timeout, source_address=(src, 0))
            c.request("GET", a.path)
            c.getresponse().read()
            c.close()
            answered += 1
        except OSError:
            failed += 1
    print(json.dumps({"sent": sent, "answered": answered, "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
