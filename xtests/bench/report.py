#!/usr/bin/env python3
"""Turn run.sh's measurements into a table (stdout) and BENCHMARKS.md (repo root).

Called by run.sh with the run's facts in the environment; run alone
(`python3 xtests/bench/report.py`) it re-renders from $BENCH_DIR/last-run.json, the last run's. Hand-written findings (profile, causes, fixes) live in xtests/bench/FINDINGS.md and
are appended verbatim, so a re-run never loses them.
"""

import collections
import json
import os
import platform
import statistics
import subprocess

E = dict(os.environ)
if "RES" not in E:
    # Standalone: re-render from the last run's measurements.
    _bench = E.get("BENCH_DIR") or os.path.expanduser("~/.cache/bouncer-bench")
    with open(os.path.join(_bench, "last-run.json"), encoding="utf-8") as _f:
        E.update({k: v for k, v in json.load(_f).items()})
    E["BENCH_DIR"] = _bench
ROOT, BENCH = E["ROOT"], E["BENCH_DIR"]


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "?"


def rows(path, n):
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == n:
                    out.append(parts)
    return out


def fmt_s(ms):
    return "%.2f s" % (ms / 1000.0)


def fmt_rate(lines, ms):
    r = lines / (ms / 1000.0)
    return "%.2f M/s" % (r / 1e6) if r >= 1e6 else "%.0f k/s" % (r / 1e3)


def fmt_mb(kb):
    return "%.0f MB" % (kb / 1024.0)


# ---------------------------------------------------------------- analyze runs
runs = collections.OrderedDict()   # (section, name) -> dict(walls, rss, lines)
for section, name, _run, wall, rss, lines, cpu, load in rows(E["RES"], 8):
    r = runs.setdefault((section, name), {"walls": [], "rss": [], "cpu": [], "load": [],
                                          "lines": int(lines)})
    r["load"].append(float(load))
    r["walls"].append(int(wall))
    r["rss"].append(int(rss))
    r["cpu"].append(int(cpu))
med = {k: statistics.median(v["walls"]) for k, v in runs.items()}

SECTION_TITLE = {
    "combined": "1 M lines, combined",
    "json": "1 M lines, nginx JSON",
    "floor-variants": "1 M lines, nginx JSON (floor variants, informational)",
    "big": "10 M lines",
    "report-cost": "1 M lines, combined (without the HTML report, informational)",
    "log-format": "1 M lines, combined, `--log-format` (nginx docs' `combined`) vs the built-in reader",
    "base-combined": "1 M lines, combined: this build vs the base build",
    "base-json": "1 M lines, nginx JSON: this build vs the base build",
    "follow": "1 M lines, combined, appended to a file `follow` tails",
}
RIVAL = {"combined": ("goaccess", "GoAccess"), "json": ("polars floor", "floor")}

table = ["| input | program | median wall | lines/s | CPU (user+sys) | peak RSS (median / max) | "
         "runs | load avg (max) | ratio (wall) |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for (section, name), r in runs.items():
    m = med[(section, name)]
    ratio = ""
    if section in RIVAL and name == "bouncer analyze" and (section, RIVAL[section][0]) in med:
        rv = med[(section, RIVAL[section][0])]
        if section == "json":   # the target is phrased as a multiple of the floor's time
            ratio = "**%.2f×** the %s's time" % (m / rv, RIVAL[section][1])
        elif rv >= m:
            ratio = "**%.2f× faster** than %s" % (rv / m, RIVAL[section][1])
        else:
            ratio = "**%.2f× slower** than %s" % (m / rv, RIVAL[section][1])
    if section == "report-cost" and ("combined", "bouncer analyze") in med:
        with_report = med[("combined", "bouncer analyze")]
        ratio = ("with the report %+.2f s (%+.0f%%)%s" % (
            (with_report - m) / 1000.0, 100.0 * (with_report - m) / with_report,
            ": no measurable cost, the difference is run-to-run noise"
            if with_report <= m or with_report - m < 0.1 * with_report else ""))
    if section == "floor-variants" and ("json", "polars floor") in med:
        ratio = "%.2f× the floor's time" % (m / med[("json", "polars floor")])
    if section == "log-format" and name != "bouncer analyze" and ("log-format", "bouncer analyze") in med:
        ratio = "**%.2f×** the built-in reader's time" % (m / med[("log-format", "bouncer analyze")])
    if section.startswith("base-") and name == "bouncer analyze" and (section, "base bouncer analyze") in med:
        b = (section, "base bouncer analyze")
        ratio = "**%.2f×** the base's time (CPU %.2f×)" % (
            m / med[b], statistics.median(r["cpu"]) / statistics.median(runs[b]["cpu"]))
    if section == "follow" and name != "bouncer follow" and ("follow", "bouncer follow") in runs:
        base = statistics.median(runs[("follow", "bouncer follow")]["cpu"])
        mine = statistics.median(r["cpu"])
        ratio = "CPU **%+.1f%%** vs without the live view" % (100.0 * (mine - base) / base)
    table.append("| %s | %s | %s | %s | %s | %s / %s | %d | %.1f | %s |" % (
        SECTION_TITLE.get(section, section), name, fmt_s(m), fmt_rate(r["lines"], m),
        fmt_s(statistics.median(r["cpu"])),
        fmt_mb(statistics.median(r["rss"])), fmt_mb(max(r["rss"])), len(r["walls"]),
        max(r["load"]), ratio))

# ---------------------------------------------------------------- firewall
fw = collections.defaultdict(lambda: collections.defaultdict(list))
for setup, what, value in rows(E["FW"], 3):
    fw[setup][what].append(value)


def fmed(setup, what):
    v = fw.get(setup, {}).get(what)
    return statistics.median(float(x) for x in v) if v else None


fw_table = []
if fw:
    base_req = fmed("none", "request_ms")
    base_ping = fmed("none", "ping_us")
    fw_table = ["| setup | load 100 k: wall (CPU) | reload: wall (CPU) | `bouncer export` | "
                "one request (median of 200) | vs no rules | ping round trip (avg of 3000) | "
                "ban works |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
    label = {"none": "no rules", "ipset": "`ipset restore < bans.ipset` + 1 match rule",
             "nft": "`nft -f bans.nft`",
             "iptables": "`iptables-restore --noflush < bans.rules` + jump"}

    def ms(v):
        return "-" if v is None else "%.0f ms" % v

    for setup in ("none", "ipset", "nft", "iptables"):
        if setup not in fw:
            continue
        exp, req = fmed(setup, "export_ms"), fmed(setup, "request_ms")
        png = fmed(setup, "ping_us")
        fw_table.append("| %s | %s (%s) | %s (%s) | %s | %s | %s | %s | %s |" % (
            label[setup],
            ms(fmed(setup, "load_ms")), ms(fmed(setup, "load_cpu_ms")),
            ms(fmed(setup, "reload_ms")), ms(fmed(setup, "reload_cpu_ms")),
            "%.2f s" % (exp / 1000) if exp is not None else "-",
            "%.3f ms" % req if req is not None else "-",
            "%.2f×" % (req / base_req) if req and base_req else "-",
            "-" if png is None else "%.0f µs" % png,
            "-" if setup == "none" else "yes (198.18.0.1 gets no answer)"
            if fw[setup]["blocked"] == ["yes"] else "**NO**"))

# ---------------------------------------------------------------- targets
targets = ["| target | measured | |", "|---|---|---|"]


def target(text, value, ok):
    targets.append("| %s | %s | %s |" % (text, value, "met" if ok else "**missed**"))


if ("combined", "goaccess") in med and ("combined", "bouncer analyze") in med:
    x = med[("combined", "goaccess")] / med[("combined", "bouncer analyze")]
    target("combined 1 M: bouncer ≥ 20× faster than GoAccess", "%.2f×" % x, x >= 20)
if ("json", "polars floor") in med and ("json", "bouncer analyze") in med:
    x = med[("json", "bouncer analyze")] / med[("json", "polars floor")]
    target("JSON 1 M: bouncer within 1.5× of the polars floor", "%.2f× the floor's time" % x,
           x <= 1.5)
if ("log-format", "bouncer analyze") in med and ("log-format", "bouncer analyze --log-format") in med:
    x = med[("log-format", "bouncer analyze --log-format")] / med[("log-format", "bouncer analyze")]
    target("combined 1 M: `--log-format` within 1.3× of the built-in reader", "%.2f× its time" % x,
           x <= 1.3)
for section in ("base-combined", "base-json"):
    if (section, "bouncer analyze") in med and (section, "base bouncer analyze") in med:
        x = med[(section, "bouncer analyze")] / med[(section, "base bouncer analyze")]
        target("%s: within 1.2× of the base build's time" % SECTION_TITLE[section].split(":")[0],
               "%.2f× its time" % x, x <= 1.2)
if ("follow", "bouncer follow") in runs and ("follow", "bouncer follow --listen, 1 client") in runs:
    base = statistics.median(runs[("follow", "bouncer follow")]["cpu"])
    mine = statistics.median(runs[("follow", "bouncer follow --listen, 1 client")]["cpu"])
    x = 100.0 * (mine - base) / base
    target("`follow` 1 M lines: the live view with one client costs ≤ 5 % more CPU",
           "%+.1f%% (%s vs %s CPU, medians)" % (x, fmt_s(mine), fmt_s(base)), x <= 5.0)
    m = med[("follow", "bouncer follow")]
    rate = runs[("follow", "bouncer follow")]["lines"] / (m / 1000.0)
    target("`follow` sustains ≥ 200 k lines/s through the tail path", "%s (median wall %s)" % (
        fmt_rate(runs[("follow", "bouncer follow")]["lines"], m), fmt_s(m)), rate >= 200e3)
for (section, name), r in runs.items():
    if section == "big":
        peak = max(r["rss"])
        target("10 M lines: peak RSS ≤ 1 GB (%s)" % name.split("(")[-1].rstrip(")"),
               "%s (max of %d runs)" % (fmt_mb(peak), len(r["rss"])), peak <= 1024 * 1024)
for setup in ("ipset", "nft"):
    load = fmed(setup, "load_ms")
    if load is not None:
        target("100 k bans applied in < 1 s with %s" % setup, "%.0f ms wall (%.0f ms CPU)" % (
            load, fmed(setup, "load_cpu_ms") or 0), load < 1000)

# ---------------------------------------------------------------- context
metas = {}
for name in ("bench-1m", "bench-10m"):
    p = os.path.join(BENCH, name + ".meta.json")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            metas[name] = json.load(f)
inputs = ["| file | lines | combined | JSON | distinct IPs | span (log time) | attack lines |",
          "|---|---:|---:|---:|---:|---|---:|"]
for name, m in metas.items():
    inputs.append("| %s | %d | %.0f MB | %.0f MB | %d | %s … %s (%d days) | %d |" % (
        name, m["lines"], m["bytes"][".log"] / 1e6, m["bytes"][".jsonl"] / 1e6,
        m["distinct_ips"], m["span"][0], m["span"][1], m["days"], m["attack_lines"]))

cpu = "?"
with open("/proc/cpuinfo", encoding="utf-8") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
with open("/proc/meminfo", encoding="utf-8") as f:
    mem_gb = int(f.readline().split()[1]) / 1024 / 1024
git = E.get("GIT_REV", "?")
dirty = " (with uncommitted changes in src/)" if E.get("GIT_DIRTY") else ""
floor_out = ""
p = os.path.join(BENCH, "floor-1m.txt")
if os.path.exists(p):
    floor_out = open(p, encoding="utf-8").read().strip()
outputs = E.get("OUTPUTS", "").split()
report_note = ("includes the HTML report (`report.html`)" if "report.html" in outputs else
               "**does not include an HTML report**: this build writes no `report.html`")

now = E.get("RUN_AT", "?")
md = []
md.append("# Benchmarks\n")
md.append("Written by `xtests/bench/run.sh` (see README, \"Performance\"); re-run it to "
          "reproduce. Timings are medians of alternated runs after one warm-up run each; "
          "peak RSS is GNU time's maximum resident set size. Nothing here is asserted by a test.\n")
md.append("- command: `%s`" % E["COMMAND"].strip())
md.append("- run: %s; `%s` from `%s` (built %s), work tree at commit `%s`%s" % (
    now, E.get("BOUNCER_VERSION", "?"), E.get("BOUNCER_SRC", "?"), E.get("BOUNCER_BUILT", "?"),
    git, dirty))
md.append("- machine: %s cores (%s), %.0f GB RAM, Linux %s; 1-minute load average %s at the "
          "start, %s at the end (anything above 0 is other work sharing the cores: compare the "
          "CPU column too)" % (os.cpu_count(), cpu, mem_gb, platform.release(),
                               E.get("LOAD_START", "?"), E.get("LOAD_END", "?")))
md.append("- rivals: %s (`goaccess FILE --log-format=COMBINED -o out.json`); polars floor "
          "(`xtests/bench/polars-floor`, polars 0.55.2 like bouncer; output `%s`)" % (
              sh("goaccess", "--version").splitlines()[0] if sh("goaccess", "--version") else "GoAccess ?",
              floor_out))
md.append("- each timed `bouncer analyze` writes %s into `--out`; it %s.\n" % (
    ", ".join("`%s`" % o for o in outputs) or "?", report_note))
md.append("## Inputs\n")
md.append("Generated by `xtests/bench/gen.py` from the real logs in `../shared/data/real` (never "
          "committed): the de-anonymised elastic traffic replayed with remapped addresses, plus "
          "the real ddoser flood and scanner runs mixed in every few hours; the JSON file holds "
          "the same requests as nginx `escape=json` lines.\n")
md.extend(inputs)
md.append("")
md.append("## Results\n")
md.append("\"load avg (max)\": the highest 1-minute load average seen at the start of that "
          "row's runs; 0–1 is this benchmark alone, above ~2 other work shared the two cores "
          "and wall times of that row are inflated (the CPU column much less).\n")
md.extend(table)
md.append("")
if fw_table:
    md.append("## Firewall load: 100 000 bans\n")
    md.append("Each load in a fresh network namespace (three times; median), then loaded again "
              "over itself (\"reload\", the path a re-run takes). CPU = user + sys of the loading "
              "processes (the kernel's netlink work runs in their context). The ban files are "
              "`bouncer export` renderings of a decisions.json with 100 000 bans from "
              "198.18.0.0/15 (RFC 2544 benchmark range). \"One request\": curl from the unbanned "
              "127.0.0.2 to a python http.server on 127.0.0.1 inside the namespace, 200 "
              "requests, each a new TCP connection, so every packet crosses `INPUT` (noisy: a python "
              "server on a shared machine). \"Ping\": 3000 echo round trips 127.0.0.2 → "
              "127.0.0.1 (no server; both packets cross `INPUT`), 1 µs resolution. iptables is "
              "%s.\n" % (sh("iptables", "--version") or "?"))
    md.extend(fw_table)
    md.append("")
md.append("## Targets\n")
md.extend(targets)
md.append("")
findings = os.path.join(ROOT, "xtests", "bench", "FINDINGS.md")
if os.path.exists(findings):
    md.append(open(findings, encoding="utf-8").read().rstrip() + "\n")

text = "\n".join(md)
print("\n".join(table + [""] + fw_table + [""] + targets))
if E.get("ONLY_SECTION"):
    # A run of one section: its rows replace that section's rows of the existing file (or are
    # added at the end of its tables); everything else stays as the last full run wrote it.
    section = E["ONLY_SECTION"]
    title = SECTION_TITLE.get(section, section)
    path = os.path.join(ROOT, "BENCHMARKS.md")
    old = open(path, encoding="utf-8").read().split("\n")
    new_rows = [r for r in table[2:] if r.startswith("| %s |" % title)]
    marker = {"log-format": "--log-format", "follow": "`follow`"}.get(section, section)
    new_targets = [t for t in targets[2:] if marker in t]
    out, in_results, in_targets = [], False, False
    for line in old:
        if line.startswith("## "):
            in_results, in_targets = line == "## Results", line == "## Targets"
        if in_results and line.startswith("| %s |" % title):
            continue
        if in_targets and line.startswith("|") and marker in line:
            continue
        out.append(line)
    for rows_, header in ((new_rows, "## Results"), (new_targets, "## Targets")):
        start = out.index(header)
        end = start + 1
        while end < len(out) and not out[end].startswith("|"):
            end += 1
        while end < len(out) and out[end].startswith("|"):
            end += 1
        out[end:end] = rows_
    note = ("- the rows \"%s\" and their target are from a run of that section alone: `%s`, %s, "
            "`%s` at commit `%s`%s; load average %s at the start, %s at the end" % (
                title, E["COMMAND"].strip(), now, E.get("BOUNCER_VERSION", "?"), git, dirty,
                E.get("LOAD_START", "?"), E.get("LOAD_END", "?")))
    out = [l for l in out if not l.startswith("- the rows \"%s\"" % title)]
    first_blank = out.index("", out.index("# Benchmarks") + 2)
    last_bullet = first_blank + 1
    while last_bullet < len(out) and out[last_bullet].startswith("- "):
        last_bullet += 1
    out.insert(last_bullet, note)
    text = "\n".join(out)
if E.get("WRITE", "1") == "1":
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print("\nwrote %s" % os.path.join(ROOT, "BENCHMARKS.md"))
