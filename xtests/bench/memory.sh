#!/usr/bin/env bash
# Memory and state under a spoofed-address flood (issue 12, 11): `analyze` and `follow` on
# xtests/bench/flood.py logs of N distinct clients; prints the BENCHMARKS.md rows.
#
#   BOUNCER=target/release/bouncer xtests/bench/memory.sh 1000000 3000000
#
# analyze: peak RSS (GNU time). follow: reads the log from the start (--from-start, dry run,
# --state), peak RSS (VmHWM) once every line is counted in status.json, the state files' size,
# then bytes written per second over 30 s of idleness (/proc/PID/io write_bytes).
set -euo pipefail
BOUNCER=${BOUNCER:-target/release/bouncer}
WORK=${WORK:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")" && pwd)
echo "| distinct IPs | lines | analyze peak RSS | follow peak RSS | follow state (bans.json + core.bin) | follow writes, idle |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in "$@"; do
  log="$WORK/flood-$n.log"
  [ -s "$log" ] || python3 "$HERE/flood.py" --ips "$n" --rate 5000 --out "$log" 2>/dev/null
  lines=$(wc -l < "$log")
  a_kb=$( { /usr/bin/time -f "%M" "$BOUNCER" analyze -q --no-report --out "$WORK/out-$n" "$log" >/dev/null; } 2>&1 | tail -1)
  state="$WORK/state-$n"; rm -rf "$state"
  "$BOUNCER" follow --dry-run --from-start --state "$state" "$log" 2>"$WORK/follow-$n.err" &
  pid=$!
  for _ in $(seq 1 600); do
    got=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['lines'])" "$state/status.json" 2>/dev/null || echo 0)
    [ "$got" -ge "$lines" ] && break
    sleep 1
  done
  sleep 35 # the core snapshot after the last requests (at most every 30 s)
  f_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  w0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
  sleep 30
  w1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
  size=$(( $(stat -c %s "$state/bans.json") + $(stat -c %s "$state/core.bin") ))
  kill -TERM "$pid"; wait "$pid" || true
  printf "| %s | %s | %d MB | %d MB | %.1f MB | %.1f kB/s |\n" "$n" "$lines" $((a_kb / 1024)) $((f_kb / 1024)) \
    "$(echo "$size / 1000000" | bc -l)" "$(echo "($w1 - $w0) / 30 / 1000" | bc -l)"
done
