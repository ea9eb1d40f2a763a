#!/usr/bin/env bash
# bouncer's benchmark program: analyze speed and memory against GoAccess and the polars floor,
# and firewall load at 100 k bans. Writes BENCHMARKS.md at the repo root.
#
#   xtests/bench/run.sh [--runs N] [--runs-10m N] [--skip-10m] [--skip-firewall]
#                       [--skip-analyze] [--only-log-format] [--only-follow] [--skip-follow]
#                       [--profile] [--no-write]
#
# Environment:
#   BENCH_DIR          generated inputs and scratch (default ~/.cache/bouncer-bench; never the repo)
#   BOUNCER            bouncer binary to measure (default: cargo build --release, then
#                      $CARGO_TARGET_DIR/release/bouncer, CARGO_TARGET_DIR defaulting to ./target)
#   BOUNCER_BASE       an earlier bouncer binary (e.g. built from the last release): section 0
#                      alternates it with this one on the 1 M combined and JSON files (target:
#                      this build within 1.2× of its time)
#   FLOOR_TARGET_DIR   target dir of the polars floor (default ~/.cache/bouncer-floor-target)
#
# Sections (all in one run, each command alternated with its rival, RUNS times, after one
# untimed warm-up run each; medians reported):
#   1. bouncer analyze vs GoAccess (`goaccess FILE --log-format=COMBINED -o out.json`), 1 M combined
#   2. bouncer analyze vs the polars floor (xtests/bench/polars-floor), the same 1 M requests as JSON
#   3. bouncer analyze on 10 M lines (combined and JSON): wall time and peak RSS
#   4. 100 k bans loaded with ipset restore, nft -f, iptables-restore in fresh network namespaces,
#      and the per-request and per-packet cost of each setup (curl and ping on lo in the namespace)
#   5. bouncer analyze --log-format '<nginx docs' combined>' vs the built-in reader, 1 M combined
#      (target: within 1.3× of its time). --only-log-format runs just this section and puts its
#      rows into the existing BENCHMARKS.md (the other rows stay as the last full run wrote them).
#      The parser alone, without the rest of analyze: `cargo bench --bench parse_formats`.
#   6. bouncer follow through the tail path (not --replay): the 1 M combined file appended to a
#      tailed file, CPU of the follow process until it has read every line, without and with the
#      live view (--listen, one event-stream client connected); xtests/bench/follow_tail.py does
#      one run. Targets: the dashboard costs ≤ 5 % more CPU; ≥ 200 k lines/s. --only-follow runs
#      just this section and puts its rows into the existing BENCHMARKS.md.
#   --profile: perf record of bouncer on both 1 M files, folded by stage (perf_fold.py) into
#              $BENCH_DIR/profile-1m-{log,jsonl}.txt
# Wall time: date +%s%N around the command; peak RSS: GNU time's %M (maximum resident set size).
# Timings are never asserted; tests don't run this.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/xtests/bench"
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/bouncer-bench}
FLOOR_TARGET_DIR=${FLOOR_TARGET_DIR:-$HOME/.cache/bouncer-floor-target}
RUNS=5
RUNS_10M=3
DO_10M=1
DO_ANALYZE=1
DO_FW=1
DO_PROFILE=0
DO_LOGFMT=1
ONLY_LOGFMT=0
DO_FOLLOW=1
ONLY_FOLLOW=0
WRITE=1
COMMAND="${BOUNCER:+BOUNCER=$BOUNCER }${BOUNCER_BASE:+BOUNCER_BASE=$BOUNCER_BASE }xtests/bench/run.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --runs-10m) RUNS_10M=$2; shift 2 ;;
        --skip-10m) DO_10M=0; shift ;;
        --skip-firewall) DO_FW=0; shift ;;
        --skip-analyze) DO_ANALYZE=0; DO_10M=0; DO_LOGFMT=0; shift ;;
        --only-log-format) ONLY_LOGFMT=1; DO_ANALYZE=0; DO_10M=0; DO_FW=0; DO_FOLLOW=0; shift ;;
        --only-follow) ONLY_FOLLOW=1; DO_ANALYZE=0; DO_10M=0; DO_FW=0; DO_LOGFMT=0; shift ;;
        --skip-follow) DO_FOLLOW=0; shift ;;
        --profile) DO_PROFILE=1; shift ;;
        --no-write) WRITE=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
    esac
done

say() { printf '\n== %s\n' "$*" >&2; }
note() { printf '   %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools (installed only if missing, loudly)
need_pkgs=()
[ $DO_ANALYZE = 1 ] && { command -v goaccess >/dev/null || need_pkgs+=(goaccess); }
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ $DO_PROFILE = 1 ]; then command -v perf >/dev/null || need_pkgs+=(linux-perf); fi
if [ $DO_FW = 1 ]; then
    command -v ipset >/dev/null || need_pkgs+=(ipset)
    command -v nft >/dev/null || need_pkgs+=(nftables)
    command -v iptables-restore >/dev/null || need_pkgs+=(iptables)
    command -v curl >/dev/null || need_pkgs+=(curl)
    command -v ip >/dev/null || need_pkgs+=(iproute2)
    command -v ping >/dev/null || need_pkgs+=(iputils-ping)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing missing packages: apt-get install -y ${need_pkgs[*]}"
    [ "$(id -u)" = 0 ] || { echo "run.sh: need root to install ${need_pkgs[*]}" >&2; exit 1; }
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_pkgs[@]}" >&2
fi
if [ $DO_FW = 1 ] && { [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; }; then
    note "firewall section needs root and ip netns: skipped"
    DO_FW=0
fi

mkdir -p "$BENCH_DIR"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
RES="$BENCH_DIR/results.tsv"      # section name run wall_ms rss_kb lines cpu_ms loadavg
: > "$RES"
SCRATCH=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
NETNS=()
SERVER_PIDS=()
cleanup() {
    local p ns
    for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

# ------------------------------------------------------------------ builds
if [ -z "${BOUNCER:-}" ]; then
    say "building bouncer (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
    BOUNCER="${CARGO_TARGET_DIR:-$ROOT/target}/release/bouncer"
fi
# Measure a private copy: a shared target dir may be rebuilt while this runs.
BOUNCER_SRC=$BOUNCER
BOUNCER_BUILT=$(date -u -r "$BOUNCER" +%Y-%m-%dT%H:%MZ)
cp "$BOUNCER" "$SCRATCH/bouncer"
BOUNCER="$SCRATCH/bouncer"
note "bouncer: $BOUNCER_SRC, built $BOUNCER_BUILT ($("$BOUNCER" --version))"
if [ $DO_ANALYZE = 1 ]; then
    say "building the polars floor (own target dir $FLOOR_TARGET_DIR; first build compiles polars)"
    CARGO_TARGET_DIR="$FLOOR_TARGET_DIR" cargo build --release --quiet \
        --manifest-path "$HERE/polars-floor/Cargo.toml"
    FLOOR="$FLOOR_TARGET_DIR/release/polars-floor"
fi

# ------------------------------------------------------------------ inputs
gen() {   # name lines days
    local meta="$BENCH_DIR/$1.meta.json"
    if [ -f "$meta" ] && python3 -c "import json,sys; m=json.load(open('$meta')); sys.exit(m['lines']!=$2 or m['days']!=$3)"; then
        note "$1: reusing $BENCH_DIR/$1.{log,jsonl}"
    else
        say "generating $1 ($2 lines over $3 days) from $ROOT/../shared/data/real"
        python3 "$HERE/gen.py" --lines "$2" --days "$3" --out "$BENCH_DIR" --name "$1"
    fi
}
if [ $DO_ANALYZE = 1 ] || [ $DO_LOGFMT = 1 ] || [ $DO_FOLLOW = 1 ]; then gen bench-1m 1000000 3; fi
if [ $DO_10M = 1 ]; then gen bench-10m 10000000 21; fi

# ------------------------------------------------------------------ measuring
# measure SECTION NAME LINES CMD... : one timed run, appended to $RES.
measure() {
    local section=$1 name=$2 lines=$3 run=$4; shift 4
    local t0 t1 rss cpu load
    load=$(cut -d' ' -f1 /proc/loadavg)   # other work on the machine, as seen at the start
    t0=$(date +%s%N)
    if ! /usr/bin/time -f '%M %U %S' -o "$SCRATCH/time" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"; then
        echo "run.sh: failed: $*" >&2; tail -5 "$SCRATCH/err" >&2; exit 1
    fi
    t1=$(date +%s%N)
    read -r rss cpu < <(tail -1 "$SCRATCH/time" | awk '{printf "%d %d\n", $1, ($2 + $3) * 1000}')
    if [ "$run" != warmup ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$name" "$run" \
            "$(( (t1 - t0) / 1000000 ))" "$rss" "$lines" "$cpu" "$load" >> "$RES"
    fi
    printf '   %-28s run %-6s %8s ms wall %8s ms cpu %6d MB\n' "$name" "$run" \
        "$(( (t1 - t0) / 1000000 ))" "$cpu" "$(( rss / 1024 ))" >&2
}
# alternate SECTION RUNS "name|lines|cmd" ... : a warm-up of each, then RUNS rounds in turn.
alternate() {
    local section=$1 runs=$2; shift 2
    local spec name lines cmd i
    for i in warmup $(seq 1 "$runs"); do
        for spec in "$@"; do
            IFS='|' read -r name lines cmd <<<"$spec"
            # shellcheck disable=SC2086  # cmd is a word list we built ourselves
            measure "$section" "$name" "$lines" "$i" $cmd
        done
    done
}

OUT="$SCRATCH/out-bouncer"
OUTPUTS=""
if [ $DO_ANALYZE = 1 ]; then
    L1=$(python3 -c "import json; print(json.load(open('$BENCH_DIR/bench-1m.meta.json'))['lines'])")
    # Which outputs does this build write (report.html is new)?
    "$BOUNCER" analyze "$BENCH_DIR/bench-1m.log" --out "$OUT" > "$BENCH_DIR/bouncer-1m-summary.txt" 2>&1
    OUTPUTS=$(cd "$OUT" && ls | tr '\n' ' ')
    note "bouncer analyze writes: $OUTPUTS"

    if [ -n "${BOUNCER_BASE:-}" ]; then
        cp "$BOUNCER_BASE" "$SCRATCH/bouncer-base"
        note "base: $BOUNCER_BASE ($("$SCRATCH/bouncer-base" --version)), built $(date -u -r "$BOUNCER_BASE" +%Y-%m-%dT%H:%MZ)"
        say "0. 1 M lines: this build vs the base (\$BOUNCER_BASE)"
        alternate base-combined "$RUNS" \
            "bouncer analyze|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.log --out $OUT" \
            "base bouncer analyze|$L1|$SCRATCH/bouncer-base analyze $BENCH_DIR/bench-1m.log --out $SCRATCH/out-base"
        alternate base-json "$RUNS" \
            "bouncer analyze|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.jsonl --out $OUT" \
            "base bouncer analyze|$L1|$SCRATCH/bouncer-base analyze $BENCH_DIR/bench-1m.jsonl --out $SCRATCH/out-base"
    fi

    say "1. combined, 1 M lines: bouncer analyze vs GoAccess"
    alternate combined "$RUNS" \
        "bouncer analyze|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.log --out $OUT" \
        "goaccess|$L1|goaccess $BENCH_DIR/bench-1m.log --log-format=COMBINED -o $SCRATCH/goaccess.json"

    # What the HTML report costs (informational): the same run without it, if this build has
    # the (hidden) --no-report flag; clap rejects an unknown flag before it prints --help.
    if "$BOUNCER" analyze --no-report --help >/dev/null 2>&1; then
        alternate report-cost 3 \
            "bouncer analyze --no-report|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.log --out $OUT --no-report"
    fi

    say "2. nginx JSON, 1 M lines: bouncer analyze vs the polars floor"
    alternate json "$RUNS" \
        "bouncer analyze|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.jsonl --out $OUT" \
        "polars floor|$L1|$FLOOR $BENCH_DIR/bench-1m.jsonl"
    "$FLOOR" "$BENCH_DIR/bench-1m.jsonl" > "$BENCH_DIR/floor-1m.txt"
    # What the floor's parts cost (informational, not a target): time as the raw string, in-memory engine.
    alternate floor-variants 3 \
        "floor: time_local unparsed|$L1|$FLOOR $BENCH_DIR/bench-1m.jsonl raw" \
        "floor: in-memory engine|$L1|$FLOOR $BENCH_DIR/bench-1m.jsonl parse in-memory"
fi

if [ $DO_10M = 1 ]; then
    L10=$(python3 -c "import json; print(json.load(open('$BENCH_DIR/bench-10m.meta.json'))['lines'])")
    say "3. 10 M lines: bouncer analyze"
    alternate big "$RUNS_10M" \
        "bouncer analyze (combined)|$L10|$BOUNCER analyze $BENCH_DIR/bench-10m.log --out $OUT" \
        "bouncer analyze (JSON)|$L10|$BOUNCER analyze $BENCH_DIR/bench-10m.jsonl --out $OUT"
    "$BOUNCER" analyze "$BENCH_DIR/bench-10m.log" --out "$OUT" > "$BENCH_DIR/bouncer-10m-summary.txt" 2>&1
fi

# ------------------------------------------------------------------ 5. --log-format
# nginx's `combined` as the nginx docs define it, pasted as a user would.
NGINX_COMBINED="log_format combined '\$remote_addr - \$remote_user [\$time_local] \"\$request\" \$status \$body_bytes_sent \"\$http_referer\" \"\$http_user_agent\"';"
if [ $DO_LOGFMT = 1 ]; then
    L1=$(python3 -c "import json; print(json.load(open('$BENCH_DIR/bench-1m.meta.json'))['lines'])")
    say "5. combined, 1 M lines: --log-format (the nginx docs' combined) vs the built-in reader"
    # alternate splits its commands on spaces: the format goes through a file and a wrapper.
    printf '%s' "$NGINX_COMBINED" > "$SCRATCH/format.txt"
    printf '#!/bin/sh\nexec "$1" analyze "$2" --out "$3" --log-format "$(cat "$4")"\n' \
        > "$SCRATCH/with-format"
    chmod +x "$SCRATCH/with-format"
    alternate log-format "$RUNS" \
        "bouncer analyze|$L1|$BOUNCER analyze $BENCH_DIR/bench-1m.log --out $OUT" \
        "bouncer analyze --log-format|$L1|$SCRATCH/with-format $BOUNCER $BENCH_DIR/bench-1m.log $OUT $SCRATCH/format.txt"
fi

# ------------------------------------------------------------------ 6. follow, tail path
if [ $DO_FOLLOW = 1 ]; then
    say "6. follow through the tail path, 1 M combined lines appended: without and with the live view"
    for i in warmup $(seq 1 "$RUNS"); do
        for mode in plain dashboard; do
            name="bouncer follow"
            [ $mode = dashboard ] && name="bouncer follow --listen, 1 client"
            read -r wall rss lines cpu load updates view_cpu < <(python3 "$HERE/follow_tail.py" \
                "$BOUNCER" "$BENCH_DIR/bench-1m.log" "$SCRATCH" "$mode" "$i")
            [ "$i" = warmup ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' follow "$name" "$i" \
                "$wall" "$rss" "$lines" "$cpu" "$load" >> "$RES"
            printf '   %-34s run %-6s %8s ms wall %8s ms cpu %6d MB %s updates, view threads %s ms cpu\n' \
                "$name" "$i" "$wall" "$cpu" "$(( rss / 1024 ))" "$updates" "$view_cpu" >&2
        done
    done
fi

# ------------------------------------------------------------------ 4. firewall
FW="$BENCH_DIR/firewall.tsv"   # setup  what  value
: > "$FW"
NBANS=100000
if [ $DO_FW = 1 ]; then
    say "4. firewall: $NBANS bans (198.18.0.0/15, RFC 2544 benchmark range) in network namespaces"
    "$BOUNCER" analyze "$ROOT/fixtures/mixture.log" --out "$SCRATCH/mix" > /dev/null 2>&1
    python3 "$HERE/bans.py" "$SCRATCH/mix/decisions.json" "$NBANS" > "$SCRATCH/decisions.json"
    for f in ipset nft iptables; do
        t0=$(date +%s%N)
        "$BOUNCER" export --format "$f" "$SCRATCH/decisions.json" > "$SCRATCH/bans.$f"
        t1=$(date +%s%N)
        printf '%s\texport_ms\t%s\n' "$f" "$(( (t1 - t0) / 1000000 ))" >> "$FW"
    done
    mkdir -p "$SCRATCH/www" && echo ok > "$SCRATCH/www/index.html"
    PORT=8089
    ns_new() {   # a fresh namespace with lo up and a banned source address
        ip netns add "$1"; NETNS+=("$1")
        ip -n "$1" link set lo up
        ip -n "$1" addr add 198.18.0.1/32 dev lo   # banned (first address of the list)
    }
    ns_server() {
        ip netns exec "$1" python3 -m http.server "$PORT" --bind 127.0.0.1 \
            --directory "$SCRATCH/www" >/dev/null 2>&1 &
        SERVER_PIDS+=($!)
        for _ in $(seq 50); do
            ip netns exec "$1" curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" && return 0
            sleep 0.1
        done
        echo "run.sh: web server in $1 did not start" >&2; exit 1
    }
    ns_del() {
        local p
        for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        SERVER_PIDS=()
        ip netns del "$1"
    }
    # fw NS CMD... [< FILE via sh -c]: run in the namespace, adding its CPU time to $SCRATCH/fwcpu.
    fw() {
        local ns=$1; shift
        /usr/bin/time -f '%U %S' -a -o "$SCRATCH/fwcpu" ip netns exec "$ns" "$@"
    }
    load() {   # setup ns
        case "$1" in
            ipset)
                fw "$2" ipset restore -file "$SCRATCH/bans.ipset"
                fw "$2" iptables -C INPUT -m set --match-set bouncer4 src -j DROP 2>/dev/null \
                    || fw "$2" iptables -I INPUT -m set --match-set bouncer4 src -j DROP ;;
            nft)
                fw "$2" nft -f "$SCRATCH/bans.nft" ;;
            iptables)
                fw "$2" sh -c 'exec iptables-restore --noflush < "$1"' sh "$SCRATCH/bans.iptables"
                fw "$2" iptables -C INPUT -j BOUNCER 2>/dev/null \
                    || fw "$2" iptables -I INPUT -j BOUNCER ;;
            none) ;;
        esac
    }
    # timed_load SETUP NS WHAT: wall and CPU (user+sys of the loading processes) into $FW.
    timed_load() {
        local t0 t1
        : > "$SCRATCH/fwcpu"
        t0=$(date +%s%N); load "$1" "$2"; t1=$(date +%s%N)
        printf '%s\t%s_ms\t%s\n' "$1" "$3" "$(( (t1 - t0) / 1000000 ))" >> "$FW"
        printf '%s\t%s_cpu_ms\t%s\n' "$1" "$3" \
            "$(grep -E '^[0-9.]+ [0-9.]+$' "$SCRATCH/fwcpu" | awk '{s += $1 + $2} END {printf "%d", s * 1000}')" >> "$FW"
    }
    # Per-request cost: 200 requests in one curl (the server speaks HTTP/1.0, so each is a new
    # TCP connection: every packet of the handshake, request and close crosses INPUT), from the
    # unbanned 127.0.0.2 to 127.0.0.1; median of curl's time_total.
    per_request() {   # ns -> median seconds
        local urls=() i
        for i in $(seq 200); do urls+=(-o /dev/null "http://127.0.0.1:$PORT/?$i"); done
        # warm-up (the server's first requests are slower), not counted
        ip netns exec "$1" curl -s --interface 127.0.0.2 "${urls[@]:0:40}"
        ip netns exec "$1" curl -s --interface 127.0.0.2 -w '%{time_total}\n' "${urls[@]}" \
            | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
    }
    # Per-packet cost without a server in the way: average round trip of 3000 pings from the
    # unbanned 127.0.0.2 (request and reply both cross INPUT), in microseconds.
    per_packet() {   # ns -> µs
        ip netns exec "$1" ping -q -c 3000 -i 0 -I 127.0.0.2 127.0.0.1 \
            | awk -F/ '/^rtt/ {printf "%.1f", $5 * 1000}'
    }
    banned_blocked() {   # ns -> yes/no: a request from the banned 198.18.0.1 gets no answer
        if ip netns exec "$1" curl -s -o /dev/null --max-time 1 --interface 198.18.0.1 \
            "http://127.0.0.1:$PORT/"; then echo no; else echo yes; fi
    }
    for setup in none ipset nft iptables; do
        for rep in 1 2 3; do
            ns="bouncer-bench-$$-$setup$rep"
            ns_new "$ns"
            if [ "$setup" != none ]; then
                timed_load "$setup" "$ns" load
                timed_load "$setup" "$ns" reload
            fi
            if [ $rep = 1 ]; then
                sleep 2   # let the kernel finish freeing what the reload replaced
                ns_server "$ns"
                printf '%s\trequest_ms\t%s\n' "$setup" "$(per_request "$ns" | awk '{print $1 * 1000}')" >> "$FW"
                printf '%s\tping_us\t%s\n' "$setup" "$(per_packet "$ns")" >> "$FW"
                printf '%s\tblocked\t%s\n' "$setup" "$(banned_blocked "$ns")" >> "$FW"
            fi
            ns_del "$ns"; NETNS=("${NETNS[@]/$ns}")
            note "$setup #$rep done"
        done
    done
fi

# ------------------------------------------------------------------ profile
if [ $DO_PROFILE = 1 ]; then
    say "profile: perf record (cpu-clock, DWARF call graphs) of bouncer on the 1 M files"
    for f in log jsonl; do
        perf record -q -e cpu-clock -F 499 --call-graph dwarf,32768 -o "$SCRATCH/perf.data" -- \
            "$BOUNCER" analyze "$BENCH_DIR/bench-1m.$f" --out "$OUT" > /dev/null 2>&1
        # --inline resolves inlined frames (slow: a few minutes with addr2line on this binary).
        perf script -i "$SCRATCH/perf.data" -F comm,tid,ip,sym --inline 2>/dev/null \
            | python3 "$HERE/perf_fold.py" > "$BENCH_DIR/profile-1m-$f.txt"
        note "$BENCH_DIR/profile-1m-$f.txt"; cat "$BENCH_DIR/profile-1m-$f.txt" >&2
    done
fi

# ------------------------------------------------------------------ report
say "results"
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no -- src 2>/dev/null | head -1)
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
BOUNCER_VERSION=$("$BOUNCER" --version)
RUN_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
export GIT_REV GIT_DIRTY LOAD_END BOUNCER_VERSION RUN_AT
ONLY_SECTION=$([ $ONLY_LOGFMT = 1 ] && echo log-format || true)
[ $ONLY_FOLLOW = 1 ] && ONLY_SECTION=follow
export BENCH_DIR ROOT COMMAND OUTPUTS RES FW BOUNCER FLOOR WRITE LOAD_START BOUNCER_SRC BOUNCER_BUILT ONLY_SECTION
# Kept so `python3 xtests/bench/report.py` can re-render BENCHMARKS.md (e.g. after editing
# FINDINGS.md) from this run's measurements without measuring again.
[ -n "$ONLY_SECTION" ] || python3 -c 'import json, os, sys; json.dump({k: os.environ.get(k, "") for k in sys.argv[2:]}, open(sys.argv[1], "w"), indent=1)' \
    "$BENCH_DIR/last-run.json" ROOT COMMAND OUTPUTS RES FW LOAD_START BOUNCER_SRC BOUNCER_BUILT \
    GIT_REV GIT_DIRTY LOAD_END BOUNCER_VERSION RUN_AT
python3 "$HERE/report.py"
