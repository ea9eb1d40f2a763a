#!/usr/bin/env python3
"""Seed corpora for the fuzz targets from the real lines of ../shared/data (never committed):

    python3 fuzz/seed.py CORPUS_DIR

writes CORPUS_DIR/<target>/<n> files: single lines of every real and wild log (plain, gzip
decoded), the same lines wrapped as syslog and Docker json-file records and converted to the
JSON logs of nginx, Caddy and Traefik; file heads for `detect`; preset definitions with a
matching line for `format_compiler`; small nginx configurations for `nginx_conf`; tail
checkpoints for `tail_checkpoint`. With BOUNCER=PATH (a built bouncer), also what it writes and
reads back: decisions.json of the fixtures for `decisions_export`, and the bans.json and core.bin
of a `follow --state` run on the mixture for `state_bans` and `state_core`.
"""
import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
out = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
rng = random.Random(10)


def files():
    for base, _dirs, names in sorted(os.walk(DATA)):
        for n in sorted(names):
            if not n.endswith(".md"):
                yield os.path.join(base, n)


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


lines = []
for path in files():
    text = read(path)
    put("detect", text[:4096])
    ls = [l for l in text.split(b"\n") if l.strip()]
    lines.extend(ls[:20] + rng.sample(ls, min(20, len(ls))))

for l in lines:
    for t in ("line_auto", "line_combined", "line_log_format"):
        put(t, l)
for l in rng.sample(lines, 120):
    s = l.decode("utf-8", "replace")
    put("line_auto", b"<190>Sep 15 16:13:46 web nginx[2869]: " + l)
    put("line_auto", b"<190>1 2021-09-15T16:13:46.003Z web nginx 2869 - - " + l)
    put("line_auto", json.dumps({"log": s + "\n", "stream": "stdout", "time": "2024-08-06T00:01:35.1Z"}).encode())
    parts = s.split(" ")
    ip = parts[0]
    nginx = {"time_iso8601": "2015-05-17T10:05:03+00:00", "remote_addr": ip, "request": " ".join(parts[5:8]).strip('"'),
             "status": "200", "body_bytes_sent": 512, "http_user_agent": "Mozilla/5.0", "http_x_forwarded_for": "10.0.0.1"}
    caddy = {"level": "info", "ts": 1431857103.5, "logger": "http.log.access", "request": {"remote_ip": "10.0.0.1", "client_ip": ip,
             "method": "GET", "uri": "/a?b", "headers": {"User-Agent": ["curl/8"], "X-Forwarded-For": [ip]}}, "size": 12, "status": 404}
    traefik = {"ClientHost": ip, "StartUTC": "2015-05-17T10:05:03.1Z", "DownstreamStatus": 200, "RequestMethod": "HEAD",
               "RequestPath": "/", "DownstreamContentSize": 1, "request_User-Agent": "x"}
    for v in (nginx, caddy, traefik):
        put("line_json", json.dumps(v).encode())
        put("line_auto", json.dumps(v).encode())
for l in rng.sample(lines, 40):
    put("line_json", l)

sys.path.insert(0, ROOT)
presets = [
    "combined", "common", "vhost_combined", "nginx-main", "npm-proxy",
    "log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n  '$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"';",
    'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined',
    "escape=json '{\"t\":\"$time_iso8601\",\"ip\":\"$remote_addr\",\"r\":\"$request\",\"s\":$status}'",
    "%h %l %u %{%Y-%m-%d %H:%M:%S}t \"%m %U%q %H\" %400,501{User-agent}i %>s %b",
    "$proxy_add_x_forwarded_for - [$time_local] \"$request\" $status $upstream_status ${request_time}ms",
]
for d in presets:
    for l in rng.sample(lines, 8):
        put("format_compiler", d.encode() + b"\0" + l)

confs = [
    "http {\n  log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n    '$status $body_bytes_sent';\n  access_log /var/log/nginx/access.log main buffer=32k;\n  include conf.d/*.conf;\n}\n",
    "events { worker_connections 768; }\nhttp { server { listen 80; location / { content_by_lua_block { ngx.say(\"}\") } access_log off; } } }\n",
    "log_format j escape=json '{\"ip\":\"$remote_addr\",\"t\":\"$msec\"}';\naccess_log syslog:server=unix:/dev/log j;\naccess_log /a.log j;\n",
    "map $http_upgrade $c { default upgrade; '' close; }\nserver { access_log /var/log/$host.log; }\n",
]
for c in confs:
    put("nginx_conf", c.encode())
for i, (offset, line, gz) in enumerate([(0, 0, False), (4913, 40, False), (100000, 7, True), (120, 1, False)]):
    cp = {"path": "access.log", "dev": 0, "inode": i, "offset": offset, "line": line, "size": offset + 10,
          "fingerprint": 1234567 * i, "fingerprint_len": min(offset, 1024), "gzip": gz, "pending": []}
    tail = {"path": "access.log", "files": [cp] + ([dict(cp, inode=i + 1, offset=0)] if i % 2 else []),
            "known": [], "at": 1700000000 + i}
    put("tail_checkpoint", json.dumps(tail).encode())


def bouncer_seeds(exe):
    fixtures = os.path.join(ROOT, "fixtures")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mixture.log", "quiet.log", "flood-only.log"):
            outdir = os.path.join(tmp, name)
            subprocess.run([exe, "analyze", "-q", "--no-report", "--out", outdir, os.path.join(fixtures, name)],
                           check=True, stdout=subprocess.DEVNULL)
            put("decisions_export", open(os.path.join(outdir, "decisions.json"), "rb").read())
        state = os.path.join(tmp, "state")
        log = os.path.join(fixtures, "mixture.log")
        lines = sum(1 for _ in open(log, "rb"))
        p = subprocess.Popen([exe, "follow", "--dry-run", "--from-start", "--state", state, log],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if json.load(open(os.path.join(state, "status.json")))["lines"] >= lines:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.2)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        put("state_bans", open(os.path.join(state, "bans.json"), "rb").read())
        put("state_core", open(os.path.join(state, "core.bin"), "rb").read())


if os.environ.get("BOUNCER"):
    bouncer_seeds(os.environ["BOUNCER"])

print("seeds in %s: %s" % (out, ", ".join("%s %d" % (t, len(os.listdir(os.path.join(out, t)))) for t in sorted(os.listdir(out)))))
