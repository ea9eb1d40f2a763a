#!/usr/bin/env python3
"""A stand-in for Slack's incoming webhook, for the end-to-end tests (stdlib only).

Listens on HOST:PORT (default 127.0.0.1:9099), answers every POST with 200 "ok" (Slack's
answer), and appends one JSON line per request to --out:

    {"at": <unix seconds, float>, "path": "/hook", "body": "<request body as text>",
     "json": <the body parsed as JSON, or null>}

--slow SECS sleeps that long before answering each request (a slow Slack). "Down" is simply
not running it: the port is closed and connections are refused.

Run it inside the test's network namespace:
    ip netns exec NS python3 xtests/slack_receiver.py --port 9099 --out FILE [--slow 5]
It writes "listening" on stdout once the socket is bound.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9099)
    ap.add_argument("--out", required=True, help="JSON lines file, one per request")
    ap.add_argument("--slow", type=float, default=0.0, help="seconds to wait before answering")
    args = ap.parse_args()

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            received = time.time()
            text = body.decode("utf-8", "replace")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            record = {"at": received, "path": self.path, "body": text, "json": parsed}
            with LOCK, open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if args.slow > 0:
                time.sleep(args.slow)
            reply = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_PUT = do_POST

        def log_message(self, fmt, *a):  # keep stderr quiet; the file is the record
            pass

    server = ThreadingHTTPServer((args.host, args.port), Hook)
    server.daemon_threads = True
    print("listening", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
