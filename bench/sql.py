#!/usr/bin/env python3
"""ringway's SQL transform beside rsyslog, syslog-ng and DuckDB, on this host.

Run it through bench/sql.sh, which installs what it needs first (the tools
of bench/compare.sh, and DuckDB's Python package into the same venv). One
NDJSON file of --lines lines (~200 B, 10 fields, written here with a seeded
generator) goes file -> file through every system, in one run with the reps
interleaved (rep 1 of every scenario and system, then rep 2, ..., each rep in
an order of its own, seeded, and every run after a sync and a compaction of
free memory):

  baseline  ringway without a query (the file as it is)
  a         SELECT * FROM logs
  b         SELECT ts, level, service, msg, status, duration_ms FROM logs
  c         SELECT * FROM logs WHERE level IN ('WARN','ERROR')   (~30% kept)

and for each of a, b, c:

  ringway    --sql with the query
  rsyslog    imfile, mmjsonparse, then (a) every line, (b) a template of the
             six fields (the parsed JSON values, types kept), (c) a
             RainerScript `if $!level == "WARN" or $!level == "ERROR"`
  syslog-ng  json-parser, then (a) every line, (b) format-json of the six
             fields (with int64()/double() type hints), (c) a filter on
             ${.json.level}
  duckdb     the Python package: COPY (the query over read_ndjson with the
             columns' types given) TO the output (FORMAT JSON)

The daemons (ringway, rsyslog, syslog-ng) are measured as bench/compare.py
measures its file workload, with its own classes: started, then timed until
the output holds every expected line; CPU-seconds from /proc/PID/stat and
peak RSS (VmHWM) of the daemon itself. DuckDB runs to its end; its lines/s
are over the COPY statement as timed inside the process (without starting
Python and importing duckdb), its CPU and peak RSS (ru_maxrss) are the
whole process's, from wait4.

Every output is checked against the expected records, computed here from the
generated records (not from any system's output): the count, and each
record's content. Where a system writes the line as it was, its bytes must
be the input's kept lines; otherwise each line is parsed and compared as
JSON values (key order aside, as the systems order keys differently). A
check that fails stops the run (exit 1).

Medians (min-max) go to sql.md, every run to sql.json, and sql.svg is drawn
with matplotlib.
"""

import argparse
import datetime
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import REPO, log, proc_status_kib, proc_threads_cpu_s
from compare import (POLL_S, Daemon, Failure, LineCounter, Systems, machine_info, parse_count,
                     rsyslog_internal_rule, RSYSLOG_INTERNAL, summarize)

QUERIES = {
    "a": "SELECT * FROM logs",
    "b": "SELECT ts, level, service, msg, status, duration_ms FROM logs",
    "c": "SELECT * FROM logs WHERE level IN ('WARN','ERROR')",
}
PROJECTED = ["ts", "level", "service", "msg", "status", "duration_ms"]
KEPT_LEVELS = ("WARN", "ERROR")
SCENARIOS = ["baseline", "a", "b", "c"]
SYSTEMS = ["ringway", "rsyslog", "syslog-ng", "duckdb"]
# The columns and their types, for DuckDB's read_ndjson.
COLUMNS = [("ts", "VARCHAR"), ("level", "VARCHAR"), ("service", "VARCHAR"),
           ("host", "VARCHAR"), ("method", "VARCHAR"), ("path", "VARCHAR"),
           ("status", "BIGINT"), ("duration_ms", "DOUBLE"), ("trace_id", "VARCHAR"),
           ("msg", "VARCHAR")]
# A run whose output stops growing for this long before it is complete fails.
STALL_S = 30
GENERATOR_VERSION = 1


# --------------------------------------------------------------------------
# the data


LEVELS = ["INFO"] * 11 + ["DEBUG"] * 3 + ["WARN"] * 4 + ["ERROR"] * 2   # 30% WARN|ERROR
SERVICES = ["api-gateway", "checkout", "auth", "search", "billing", "inventory",
            "média-sync", "日志服务"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
PATHS = ["/v1/orders", "/v1/users/me", "/healthz", "/v2/search?q=caf%C3%A9",
         "/static/app.js", "/v1/cart/items"]
WORDS = ["request", "completed", "cache", "miss", "upstream", "timeout", "retrying",
         "connection", "reset", "by", "peer", "user", "logged", "in", "queue", "ok"]
# Escapes and multi-byte UTF-8 in the message: quotes and backslashes become
# \" and \\, control characters \uXXXX or \n, non-ASCII stays raw UTF-8.
SPICE = ['said "hello"', 'path C:\\Users\\svc', 'tab\there', 'two\nlines', 'café — résumé',
         '東京 データ', 'emoji 🚀 ok']


def make_records(lines, seed):
    rng = random.Random(seed)
    for i in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(SPICE))
        yield {
            "ts": "2026-12-02T%02d:%02d:%02d.%03dZ" % (i // 3_600_000 % 24, i // 60_000 % 60,
                                                       i // 1000 % 60, i % 1000),
            "level": rng.choice(LEVELS),
            "service": rng.choice(SERVICES),
            "host": "web-%03d" % rng.randrange(200),
            "method": rng.choice(METHODS),
            "path": rng.choice(PATHS),
            "status": rng.choice([200, 200, 200, 201, 204, 301, 404, 500, 503]),
            "duration_ms": round(rng.uniform(0.1, 900.0), 2),
            "trace_id": "%016x" % rng.getrandbits(64),
            "msg": " ".join(words),
        }


def encode(record):
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def make_input(workdir, lines):
    path = workdir / ("sql-lines-%d-v%d.ndjson" % (lines, GENERATOR_VERSION))
    if not path.exists():
        log("generating %d lines -> %s" % (lines, path))
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for record in make_records(lines, 16):
                out.write(encode(record))
        tmp.replace(path)
    return path


class Expected:
    """What each scenario must output, from the generated records."""

    def __init__(self, source, lines):
        self.data = source.read_bytes()
        raw = self.data.split(b"\n")[:-1]
        records = list(make_records(lines, 16))
        if len(raw) != lines or any(encode(r) != l + b"\n" for r, l in zip(records[:1000], raw)):
            raise Failure("%s is not what the generator writes: delete it" % source)
        kept = [i for i, r in enumerate(records) if r["level"] in KEPT_LEVELS]
        self.lines = {"baseline": lines, "a": lines, "b": lines, "c": len(kept)}
        # Bytes of the scenarios whose output may be the input's lines as they were.
        self.raw = {"baseline": self.data, "a": self.data,
                    "c": b"".join(raw[i] + b"\n" for i in kept)}
        # Records as JSON values, canonical (keys sorted), for parsed comparison.
        self.canonical = {
            "a": [canonical(r) for r in records],
            "b": [canonical({k: r[k] for k in PROJECTED}) for r in records],
            "c": [canonical(records[i]) for i in kept],
        }
        self.kept_share = len(kept) / lines


def canonical(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def check_output(name, scenario, output, expected):
    """Raises Failure unless `output` holds the expected records. Returns
    (how it was checked, whether the records are in input order)."""
    data = output.read_bytes()
    want = expected.lines[scenario]
    got = data.count(b"\n")
    if got != want or (data and not data.endswith(b"\n")):
        raise Failure("%s %s: %d lines in the output, expected %d" % (name, scenario, got, want))
    raw = expected.raw.get(scenario)
    if raw is not None and data == raw:
        return "bytes", True
    if raw is not None and name != "duckdb" and sorted(data.split(b"\n")) == sorted(raw.split(b"\n")):
        return "bytes, reordered", False
    records = []
    for number, line in enumerate(data.split(b"\n")[:-1]):
        try:
            records.append(canonical(json.loads(line)))
        except ValueError as error:
            raise Failure("%s %s: line %d is not JSON (%s): %r"
                          % (name, scenario, number + 1, error, line[:200]))
    wanted = expected.canonical[scenario]
    if records == wanted:
        return "parsed JSON", True
    if sorted(records) == sorted(wanted):
        return "parsed JSON, reordered", False
    for number, (a, b) in enumerate(zip(records, wanted)):
        if a != b:
            raise Failure("%s %s: record %d differs\n  got:      %s\n  expected: %s"
                          % (name, scenario, number + 1, a, b))
    raise Failure("%s %s: the records differ" % (name, scenario))


# --------------------------------------------------------------------------
# the systems


def rsyslog_conf(rundir, source, output, scenario):
    work = rundir / "work"
    work.mkdir()
    head = ('global(workDirectory="%s" maxMessageSize="64k" %s)\n'
            'module(load="imfile")\n'
            'module(load="mmjsonparse")\n'
            'input(type="imfile" file="%s" tag="bench")\n'
            'template(name="line" type="string" string="%%msg%%\\n")\n'
            # $.p holds the projected fields: assigning a JSON value keeps
            # its type, and %$.p% writes them as one JSON object.
            'template(name="projection" type="string" string="%%$.p%%\\n")\n'
            % (work, RSYSLOG_INTERNAL, source)) + rsyslog_internal_rule(rundir)
    # cookie="": the line is JSON as it is (no "@cee:" prefix).
    parse = 'action(type="mmjsonparse" cookie="")\n'
    if scenario == "a":
        rule = 'action(type="omfile" file="%s" template="line")\n' % output
    elif scenario == "b":
        rule = "".join("set $.p!%s = $!%s;\n" % (f, f) for f in PROJECTED)
        rule += 'action(type="omfile" file="%s" template="projection")\n' % output
    elif scenario == "c":
        rule = ('if $!level == "WARN" or $!level == "ERROR" then {\n'
                '  action(type="omfile" file="%s" template="line")\n'
                '}\n' % output)
    else:
        raise ValueError(scenario)
    return head + parse + rule


def syslog_ng_conf(source, output, scenario):
    if scenario == "b":
        pairs = " ".join("%s=%s" % (f, {"status": "int64(${.json.status})",
                                        "duration_ms": "double(${.json.duration_ms})"}
                                    .get(f, "${.json.%s}" % f)) for f in PROJECTED)
        template = "$(format-json %s)\\n" % pairs
    else:
        template = "${MESSAGE}\\n"
    filt = ""
    if scenario == "c":
        filt = ' filter { "${.json.level}" eq "WARN" or "${.json.level}" eq "ERROR" };'
    return ("@version: 3.38\n"
            "options { stats_freq(0); };\n"
            # flags(no-parse): the whole line is $MESSAGE. flow-control: the
            # file source waits for the destination instead of dropping.
            'source s_in { file("%s" flags(no-parse) follow-freq(1)); };\n'
            'destination d_out { file("%s" template("%s")); };\n'
            'log { source(s_in); parser { json-parser(prefix(".json.")); };%s '
            "destination(d_out); flags(flow-control); };\n" % (source, output, template, filt))


def start(systems, name, scenario, rundir, source, output):
    if name == "ringway":
        argv = [str(systems.ringway), "run", "--input", "file:%s,format=json" % source,
                "--output", "file:%s" % output, "--stats-interval", "0"]
        if scenario != "baseline":
            argv += ["--sql", QUERIES[scenario]]
        return Daemon(name, argv, None, rundir)
    if name == "rsyslog":
        conf = rundir / "rsyslog.conf"
        conf.write_text(rsyslog_conf(rundir, source, output, scenario))
        return systems._rsyslogd(conf, rundir)
    if name == "syslog-ng":
        conf = rundir / "syslog-ng.conf"
        conf.write_text(syslog_ng_conf(source, output, scenario))
        return systems._syslog_ng(conf, rundir)
    raise ValueError(name)


def daemon_run(systems, name, scenario, source, expected, rundir):
    """Started, then timed until the output holds every expected line."""
    output = rundir / "out.ndjson"
    want = expected.lines[scenario]
    counter = LineCounter(output)
    start_t = time.monotonic()
    daemon = start(systems, name, scenario, rundir, source, output)
    try:
        seen, grew = 0, time.monotonic()
        while True:
            now = time.monotonic()
            lines = counter.update()
            if lines >= want:
                done = now
                break
            if lines != seen:
                seen, grew = lines, now
            elif now - grew > STALL_S:
                raise Failure("%s %s: output stuck at %d of %d lines for %d s\n%s"
                              % (name, scenario, lines, want, STALL_S, daemon.diagnostics()))
            daemon.check_alive("scenario %s" % scenario)
            time.sleep(POLL_S)
        cpu_s = daemon.cpu_s()
        # ringway's CPU stage alone (its ringway-cpu-* threads): what the
        # transform changes, without the file writes' kernel time, which
        # swings 2-4x from run to run on this VM.
        cpu_stage_s = proc_threads_cpu_s(daemon.pid, "ringway-cpu") if name == "ringway" else None
        peak_rss_kib = proc_status_kib(daemon.pid, "VmHWM")
    finally:
        status = daemon.stop()
    time.sleep(0.05)
    try:
        checked, in_order = check_output(name, scenario, output, expected)
    except Failure as failure:
        raise Failure("%s\n%s" % (failure, daemon.diagnostics()))
    wall_s = done - start_t
    return {"wall_s": wall_s, "lines_in": expected.lines["a"], "lines_out": want,
            "lines_per_s": expected.lines["a"] / wall_s,
            "mb_per_s": len(expected.data) / wall_s / 1e6, "cpu_s": cpu_s,
            "cpu_stage_s": cpu_stage_s, "peak_rss_mib": peak_rss_kib / 1024, "checked": checked, "in_order": in_order,
            "exit_status": status, "argv": daemon.argv}


DUCKDB_SCRIPT = r"""
import duckdb, sys, time
query, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
started = time.monotonic()
con.execute("COPY (%s) TO '%s' (FORMAT JSON)" % (query, out.replace("'", "''")))
print(time.monotonic() - started)
"""


def duckdb_query(scenario, source):
    columns = ", ".join("'%s': '%s'" % c for c in COLUMNS)
    return QUERIES[scenario].replace(
        "FROM logs", "FROM read_ndjson('%s', columns={%s})" % (source, columns))


def duckdb_run(python, scenario, source, expected, rundir):
    output = rundir / "out.ndjson"
    query = duckdb_query(scenario, source)
    argv = [python, "-c", DUCKDB_SCRIPT, query, str(output)]
    start_t = time.monotonic()
    with open(rundir / "stderr", "wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        text = process.stdout.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process_s = time.monotonic() - start_t
    if process.returncode != 0:
        raise Failure("duckdb %s exited %d: %s" % (scenario, process.returncode,
                                                   (rundir / "stderr").read_text()[-2000:]))
    copy_s = float(text.strip().splitlines()[-1])
    checked, in_order = check_output("duckdb", scenario, output, expected)
    return {"wall_s": copy_s, "process_s": process_s, "lines_in": expected.lines["a"],
            "lines_out": expected.lines[scenario],
            "lines_per_s": expected.lines["a"] / copy_s,
            "mb_per_s": len(expected.data) / copy_s / 1e6,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "checked": checked, "in_order": in_order, "exit_status": process.returncode,
            "query": query}


def versions(systems, python):
    found = systems.versions()
    out = subprocess.run([python, "-c", "import duckdb; print(duckdb.__version__)"],
                         capture_output=True, text=True)
    found["duckdb"] = "duckdb %s (Python package)" % out.stdout.strip()
    return found


# --------------------------------------------------------------------------
# results


def key(scenario, name):
    return "%s/%s" % (scenario, name)


def combos(systems, rep=None):
    """The runs of one rep: rep None gives the table's order; a rep's runs
    come in an order shuffled with the rep's number as seed, so that no
    scenario always runs first or always after the same system (a run just
    after DuckDB, which frees 1.8 GiB, pays for the memory it left behind)."""
    runs = [("baseline", "ringway")] if "ringway" in systems else []
    runs += [(scenario, name) for scenario in "abc" for name in systems]
    if rep is not None:
        random.Random(rep).shuffle(runs)
    return runs


def settle():
    """Before each run: dirty pages written back and free memory compacted
    (root only; skipped otherwise), so that every run starts from the same
    state whatever ran before it: the huge pages ringway's pools ask for
    are then there without the kernel compacting during the run."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/compact_memory", "w") as knob:
            knob.write("1\n")
    except OSError:
        pass


TARGETS = {"a": 0.85, "b": 0.60, "c": 0.85}


def ratio(runs_a, runs_b, field="lines_per_s"):
    """Median of per-rep ratios a/b (reps paired by index), with min-max."""
    values = [a[field] / b[field] for a, b in zip(runs_a, runs_b) if b[field]]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt_stat(stat, digits=0, scale=1.0):
    if not stat:
        return "–"

    def one(v):
        return "{:,.{}f}".format(v * scale, digits)
    text = one(stat["median"])
    if stat.get("n", 1) > 1 and one(stat["min"]) != one(stat["max"]):
        text += " (%s–%s)" % (one(stat["min"]), one(stat["max"]))
    return text


def fmt_ratio(r, suffix="×"):
    if not r:
        return "–"
    text = "%.2f%s" % (r["median"], suffix)
    if "%.2f" % r["min"] != "%.2f" % r["max"]:
        text += " (%.2f–%.2f)" % (r["min"], r["max"])
    return text


def verdicts(results):
    """Each target, its measured median and whether it holds."""
    runs = results["runs"]
    base = runs.get(key("baseline", "ringway"))
    out = []
    if not base:
        return out
    for scenario in "abc":
        mine = runs.get(key(scenario, "ringway"))
        if not mine:
            continue
        r = ratio(mine, base)
        out.append(("(%s) ≥ %d%% of ringway without a query" % (scenario, TARGETS[scenario] * 100),
                    fmt_ratio(r, ""), r["median"] >= TARGETS[scenario]))
        r = ratio(base, mine, "cpu_s")
        out.append(("(%s) the same in CPU: no-query CPU-s / this CPU-s ≥ %.2f"
                    % (scenario, TARGETS[scenario]), fmt_ratio(r, ""),
                    r["median"] >= TARGETS[scenario]))
        if all(run.get("cpu_stage_s") for run in base + mine):
            r = ratio(base, mine, "cpu_stage_s")
            out.append(("(%s) the same in the CPU stage's CPU-s (ringway-cpu threads) ≥ %.2f"
                        % (scenario, TARGETS[scenario]), fmt_ratio(r, ""),
                        r["median"] >= TARGETS[scenario]))
        for other, need in (("rsyslog", 5), ("syslog-ng", 5), ("duckdb", 1)):
            if key(scenario, other) in runs:
                r = ratio(mine, runs[key(scenario, other)])
                out.append(("(%s) ≥ %d× %s's lines/s" % (scenario, need, other),
                            fmt_ratio(r), r["median"] >= need))
        rss = statistics.median(run["peak_rss_mib"] for run in mine)
        out.append(("(%s) ringway peak RSS ≤ 64 MiB" % scenario, "%.1f MiB" % rss, rss <= 64))
    return out


def markdown(results):
    m, s = results["machine"], results["settings"]
    out = ["# ringway's SQL transform beside rsyslog, syslog-ng and DuckDB\n"]
    out.append("Machine: %d cores (%s), %s GiB, Linux %s. %s UTC. Commit %s.\n"
               % (m["cores"], m["cpu_model"], m["memory_gib"], m["kernel"], results["date"],
                  results["commit"]))
    out.append("Versions: %s.\n" % "; ".join(results["versions"].values()))
    out.append("Command: `%s`. %s lines (%.0f B each on average, %.1f MB), file → file; "
               "medians of %d interleaved reps, (min–max) when more than one. (c) keeps "
               "%.1f%% of the lines.\n" % (results["command"], "{:,}".format(s["lines"]),
                                          s["line_bytes"], s["bytes"] / 1e6, s["reps"],
                                          100 * s["kept_share"]))
    if results.get("note"):
        out.append("**%s**\n" % results["note"])
    out.append("| scenario | system | lines/s | MB/s | CPU-s | peak RSS MiB | lines/s vs "
               "ringway without a query | its CPU-s vs this one's | checked |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    runs = results["runs"]
    base = runs.get(key("baseline", "ringway"))
    for scenario, name in combos(s["systems"]):
        if key(scenario, name) not in runs:
            continue
        rs = runs[key(scenario, name)]
        st = summarize(rs, ["lines_per_s", "mb_per_s", "cpu_s", "peak_rss_mib"])
        checked = sorted(set(run["checked"] for run in rs))
        label = {"baseline": "no query"}.get(scenario, "(%s)" % scenario)
        against_base = base and name == "ringway" and scenario != "baseline"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, name, fmt_stat(st.get("lines_per_s")), fmt_stat(st.get("mb_per_s"), 1),
            fmt_stat(st.get("cpu_s"), 2), fmt_stat(st.get("peak_rss_mib"), 1),
            fmt_ratio(ratio(rs, base), "") if against_base else "",
            # CPU is what a busy machine disturbs least: the baseline's
            # CPU-s over this run's, paired by rep (1.00 = as cheap).
            fmt_ratio(ratio(base, rs, "cpu_s"), "") if against_base else "",
            ", ".join(checked)))
    out.append("\nQueries: (a) `%s`; (b) `%s`; (c) `%s`.\n" % (QUERIES["a"], QUERIES["b"],
                                                            QUERIES["c"]))
    out.append("lines/s are input lines over the wall time until the output held every "
               "expected line (DuckDB: over its COPY statement as timed in the process, "
               "without Python's start and `import duckdb`; its CPU-s and RSS are the whole "
               "process's). *its CPU-s vs this one's* is ringway's CPU-s without a query over "
               "its CPU-s with it, paired by rep: the throughput ratio in CPU terms, which a "
               "busy machine disturbs less than wall time. *checked*: how every output was "
               "compared with the expected records (bytes: the input's kept lines byte for "
               "byte; parsed JSON: every line parsed and compared value by value, key order "
               "aside).\n")
    out.append("## Targets (issue 16)\n")
    out.append("| target | measured (median of per-rep ratios) | holds |")
    out.append("|---|---|---|")
    for what, measured, holds in verdicts(results):
        out.append("| %s | %s | %s |" % (what, measured, "yes" if holds else "**no**"))
    out.append("\nPlot: [sql.svg](sql.svg).")
    return "\n".join(out) + "\n"


COLORS = {"ringway": "#1b6ac9", "rsyslog": "#d9480f", "syslog-ng": "#2b8a3e",
          "duckdb": "#f59f00", "baseline": "#74c0fc"}


def plot(results, outdir):
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "ringway"   # reproducible ids
    plt.rcParams["svg.fonttype"] = "none"      # text stays text
    s, runs = results["settings"], results["runs"]
    names = s["systems"]
    lines = s["lines"]
    panels = [("lines_per_s", 1e-3, "thousand input lines/s (higher is better)"),
              ("cpu_s", 1e6 / lines, "CPU-s per million lines (lower is better)"),
              ("peak_rss_mib", 1, "peak RSS, MiB (log scale)")]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    width = 0.8 / len(names)
    for axis, (field, scale, label) in zip(axes, panels):
        for i, name in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for x, scenario in enumerate("abc"):
                rs = runs.get(key(scenario, name))
                if not rs:
                    continue
                values = [r[field] * scale for r in rs]
                mid = statistics.median(values)
                xs.append(x + (i - (len(names) - 1) / 2) * width)
                ys.append(mid)
                lo.append(mid - min(values))
                hi.append(max(values) - mid)
            axis.bar(xs, ys, width, yerr=[lo, hi], capsize=3, color=COLORS[name], label=name)
        base = runs.get(key("baseline", "ringway"))
        if base:
            mid = statistics.median(r[field] * scale for r in base)
            axis.axhline(mid, color=COLORS["baseline"], linestyle="--",
                         label="ringway without a query")
        if field == "peak_rss_mib":
            axis.axhline(64, color="#c92a2a", linestyle=":", label="64 MiB target")
            # DuckDB's GiB would flatten the others: log scale.
            axis.set_yscale("log")
        axis.set_xticks(range(3), ["(a) SELECT *", "(b) 6 columns", "(c) WHERE level IN"])
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    # One legend for the three panels, below them, off the bars.
    handles, labels = {}, []
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    figure.legend([handles[l] for l in labels], labels, loc="lower center", ncol=len(labels),
                  fontsize=9, frameon=False)
    figure.suptitle("SQL over an NDJSON file → file, %s lines: median of %d reps, bars min–max "
                    "— %d cores, Linux %s" % ("{:,}".format(lines), s["reps"],
                                             results["machine"]["cores"],
                                             results["machine"]["kernel"]), fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(outdir / "sql.svg", metadata={"Date": None})
    plt.close(figure)


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: 100k lines, one rep")
    parser.add_argument("--lines", type=parse_count, help="lines of the file (1M)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated subset of %s" % ",".join(SYSTEMS))
    parser.add_argument("--workdir", default="/tmp/ringway-sql-bench",
                        help="data and scratch files (/tmp/ringway-sql-bench)")
    parser.add_argument("--results-dir", help="where results go (bench/results/<UTC date>; "
                        "with --quick: WORKDIR/results-quick)")
    parser.add_argument("--note", help="a line printed above the table (e.g. how busy the "
                        "machine was)")
    parser.add_argument("--ringway", default=str(REPO / "target/release/ringway"))
    parser.add_argument("--rsyslog-root", default=str(REPO / "target/rsyslog/root"))
    parser.add_argument("--syslog-ng", default=shutil.which("syslog-ng") or "/usr/sbin/syslog-ng")
    parser.add_argument("--syslog-ng-root",
                        help="a syslog-ng-core unpacked with dpkg -x (instead of --syslog-ng)")
    parser.add_argument("--duckdb-python", default=sys.executable,
                        help="a Python that can import duckdb (this one)")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep every run's files under WORKDIR/runs")
    parser.add_argument("--replot", metavar="DIR",
                        help="only rewrite DIR/sql.md and DIR/sql.svg from DIR/sql.json")
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replot:
        outdir = Path(args.replot)
        results = json.loads((outdir / "sql.json").read_text())
        (outdir / "sql.md").write_text(markdown(results))
        plot(results, outdir)
        return 0
    args.lines = args.lines or (100_000 if args.quick else 1_000_000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown or not args.systems:
        parser.error("--systems: a subset of %s" % ",".join(SYSTEMS))
    if args.syslog_ng_root:
        args.syslog_ng = str(Path(args.syslog_ng_root) / "usr/sbin/syslog-ng")
    args.rcvbuf = 0   # compare.Systems wants it; no UDP here
    date = datetime.datetime.now(datetime.timezone.utc)
    outdir = Path(args.results_dir) if args.results_dir else (
        Path(args.workdir) / "results-quick" if args.quick
        else REPO / "bench/results" / date.strftime("%Y-%m-%d"))
    workdir = Path(args.workdir)
    runs_dir = workdir / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir(parents=True)
    try:
        systems = Systems(args)
        source = make_input(workdir, args.lines)
        expected = Expected(source, args.lines)
        results = {
            "date": date.strftime("%Y-%m-%d %H:%M"),
            "command": args.command or shlex.join(["bench/sql.py"] + sys.argv[1:]),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                     capture_output=True, text=True).stdout.strip(),
            "note": args.note,
            "machine": machine_info(),
            "versions": versions(systems, args.duckdb_python),
            "settings": {"systems": args.systems, "reps": args.reps, "lines": args.lines,
                         "bytes": len(expected.data),
                         "line_bytes": len(expected.data) / args.lines,
                         "kept_share": expected.kept_share, "queries": QUERIES,
                         "quick": args.quick},
            "runs": {},
        }
        log("(c) keeps %.1f%% of the lines" % (100 * expected.kept_share))
        for rep in range(args.reps):
            for scenario, name in combos(args.systems, rep):
                rundir = runs_dir / ("%s-%s-%d" % (scenario, name, rep))
                rundir.mkdir()
                settle()
                if name == "duckdb":
                    run = duckdb_run(args.duckdb_python, scenario, source, expected, rundir)
                else:
                    run = daemon_run(systems, name, scenario, source, expected, rundir)
                results["runs"].setdefault(key(scenario, name), []).append(run)
                log("rep %d %-8s %-9s %6.2f s %11s lines/s %7.1f MB/s CPU %5.2f s "
                    "RSS %6.1f MiB  %s" % (rep + 1, scenario, name, run["wall_s"],
                                           "{:,.0f}".format(run["lines_per_s"]),
                                           run["mb_per_s"], run["cpu_s"], run["peak_rss_mib"],
                                           run["checked"]))
                if not args.keep_outputs:
                    shutil.rmtree(rundir)
    except Failure as failure:
        log("sql bench: FAILED: %s" % failure)
        return 1
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "sql.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    table = markdown(results)
    (outdir / "sql.md").write_text(table)
    plot(results, outdir)
    print(table)
    log("results: %s/{sql.json,sql.md,sql.svg}" % outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
