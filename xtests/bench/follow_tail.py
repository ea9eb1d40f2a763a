#!/usr/bin/env python3
"""One timed run of `bouncer follow` through the tail path (not --replay), for run.sh.

    follow_tail.py BOUNCER LOG SCRATCH (plain|dashboard) RUN

Starts `bouncer follow --dry-run` on an empty file in SCRATCH (with `--listen 127.0.0.1:PORT`
and one connected event-stream client reading every update for `dashboard`), appends LOG to the
file as fast as it can, and waits until follow has read every line: SIGUSR1 every 50 ms makes it
print its status line ("N lines (…)") at its next tick. Prints one tab-separated line for
run.sh's results.tsv: wall ms (append start → all lines read), peak RSS KB, lines, CPU ms of the
follow process over that span (utime + stime from /proc, all its threads), the 1-minute load
average at the start; then, for run.sh's log, the updates the client received and the CPU ms of
the live view's own threads (hub, HTTP, event stream) since follow started.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

bouncer, log, scratch, mode, run = sys.argv[1:6]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // TICK


def view_threads_cpu_ms(pid):
    """CPU of the live view's own threads (hub, HTTP workers, event streams)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            if name == "dashboard" or name.startswith("http-"):
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) * 1000 // TICK
        except OSError:
            pass
    return total


def peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


lines = sum(1 for _ in open(log, "rb"))
tailed = os.path.join(scratch, "follow-%s-%s.log" % (mode, run))
err_path = tailed + ".err"
open(tailed, "wb").close()
args = [bouncer, "follow", "--dry-run"]
port = None
if mode == "dashboard":
    port = free_port()
    args += ["--listen", "127.0.0.1:%d" % port]
args.append(tailed)
err = open(err_path, "wb")
p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)


def stderr_text():
    with open(err_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


deadline = time.time() + 20
while "following 1 file" not in stderr_text():
    if time.time() > deadline or p.poll() is not None:
        sys.exit("follow did not start:\n" + stderr_text())
    time.sleep(0.05)

received = [0]
if port:
    # One dashboard open: read the event stream for the whole run.
    def client():
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        while True:
            b = s.recv(65536)
            if not b:
                return
            received[0] += b.count(b"data: ")

    threading.Thread(target=client, daemon=True).start()
    deadline = time.time() + 10
    while received[0] == 0:
        if time.time() > deadline:
            sys.exit("no update on the event stream")
        time.sleep(0.05)

time.sleep(1.0)   # settle: the tail has opened the file at its end
load = open("/proc/loadavg").read().split()[0]
cpu0 = cpu_ms(p.pid)
t0 = time.time()
with open(log, "rb") as src, open(tailed, "ab") as dst:
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            break
        dst.write(chunk)
pattern = re.compile(r"status: (\d+) lines")
seen = 0
deadline = t0 + 300
while seen < lines:
    if time.time() > deadline or p.poll() is not None:
        sys.exit("follow read %d of %d lines:\n%s" % (seen, lines, stderr_text()[-2000:]))
    os.kill(p.pid, signal.SIGUSR1)
    time.sleep(0.05)
    found = pattern.findall(stderr_text())
    if found:
        seen = int(found[-1])
t1 = time.time()
cpu1 = cpu_ms(p.pid)
view_cpu = view_threads_cpu_ms(p.pid)
rss = peak_rss_kb(p.pid)
p.send_signal(signal.SIGTERM)
p.wait(timeout=30)
os.remove(tailed)
print("%d\t%d\t%d\t%d\t%s\t%d\t%d" % (
    (t1 - t0) * 1000, rss, lines, cpu1 - cpu0, load, received[0], view_cpu))
