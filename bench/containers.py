#!/usr/bin/env python3
"""Kubernetes node logs: CRI parse and reassembly, pod metadata and multiline
joins, beside the plain raw and json figures of the same lines, in one run.

The lines are bench/gen_lines.py's JSON lines (seed 42, ~200 B). Files, all
made here once per --lines:

  lines.ndjson          the lines as they are (json and raw scenarios)
  pods/shop_web-…/app/0.log
                        the same lines written as containerd writes them
                        (`TIME stdout F LINE`, nanosecond times with trailing
                        zeros trimmed); every 20th line split in two at its
                        middle (`P` then `F`), so the joins are exercised
                        (containerd splits at 16 KiB; these lines are short)
  java.log              the lines as plain text with a 7-line Java stack
                        trace after every 10th line (a realistic share for a
                        service that logs its exceptions)

Scenarios (ringway run --exit-on-eof; each checked: exit 0, the output's
records == what the input holds, no invalid lines):

  json file→null               format=json
  raw file→null                format=raw (the floor the others are put beside):
                               each line passed on as it is, no byte rewritten
  raw as JSON file→null        format=raw,source=true: each line written as a
                               {"body":…,"log.file.path":…} record, escaped as
                               CRI bodies are, so CRI's rows beside it show what
                               parsing and joining cost on top of writing JSON
  cri file→null                format=cri,k8s=false: parse + reassembly
  cri+k8s file→null            format=cri (pod fields from the path)
  cri+k8s file→file            the same, written to a file (on --workdir)
  raw file→file                the raw floor of the row above
  raw java.log→null            java.log line by line
  multiline=java java.log→null java.log with its traces joined

"vs" is the median of per-rep records/s ratios against the row named
(reps are interleaved, so each ratio pairs runs made close in time). The
issue's target: CRI parse + reassembly ≥ 70% of raw throughput, RSS ≤ 64
MiB. CPU s is ringway's user+sys (wait4); peak RSS its ru_maxrss.

Then, when target/release/examples/cri_convert is built, the same CRI file
goes through the CPU stage's work alone on one core (bench/cri_convert.rs:
lines counted as format=raw does, bytes copied, lines escaped, lines
converted to records), so the pipeline's CRI figure can be put beside what
one core converts and what the raw floor costs on this machine.

Python 3 standard library only; needs target/release/ringway
(CARGO_TARGET_DIR is honoured). Medians (min–max) go to containers.md,
every run to containers.json in --results-dir.

Usage:
  containers.py [--lines 2M] [--reps 5] [--workdir DIR] [--results-dir DIR] [--quick]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from benchlib import cell, git_describe, log, ratio_cell, target_dir, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
POD_DIR = "pods/shop_web-7d4b9c-x2lq_0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/app"
SPLIT_EVERY = 20
TRACE_EVERY = 10
JAVA_TRACE = [
    "java.lang.IllegalStateException: order %d failed",
    "\tat com.example.shop.Orders.place(Orders.java:118)",
    "\tat com.example.shop.Api.handle(Api.java:52)",
    "\tat com.example.shop.Main.main(Main.java:9)",
    "Caused by: java.sql.SQLTransientConnectionException: pool exhausted",
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
    "\t... 3 more",
]

# (name, input file, input options, output, the rows "vs" compares with)
SCENARIOS = [
    ("json file→null", "lines", ",format=json", "null", ["raw file→null"]),
    ("raw file→null", "lines", ",format=raw", "null", []),
    ("raw as JSON file→null", "lines", ",format=raw,source=true", "null", ["raw file→null"]),
    ("cri file→null", "cri", ",format=cri,k8s=false", "null",
     ["raw file→null", "raw as JSON file→null"]),
    ("cri+k8s file→null", "cri", ",format=cri", "null",
     ["raw file→null", "raw as JSON file→null"]),
    ("cri+k8s file→file", "cri", ",format=cri", "file", ["raw file→file"]),
    ("raw file→file", "lines", ",format=raw", "file", []),
    ("raw java.log→null", "java", ",format=raw", "null", []),
    ("multiline=java java.log→null", "java", ",multiline=java", "null", ["raw java.log→null"]),
]


def count(text):
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def make_files(workdir, lines):
    """Writes the three input files (once per line count); returns their
    paths and {kind: records the output must hold} ("java_lines": java.log
    read line by line)."""
    base = os.path.join(workdir, "%d" % lines)
    paths = {
        "lines": os.path.join(base, "lines.ndjson"),
        "cri": os.path.join(base, POD_DIR, "0.log"),
        "java": os.path.join(base, "java.log"),
    }
    counts_path = os.path.join(base, "counts.json")
    if os.path.exists(counts_path):
        return paths, json.load(open(counts_path))
    os.makedirs(os.path.dirname(paths["cri"]), exist_ok=True)
    log("generating %d lines" % lines)
    subprocess.run([sys.executable, os.path.join(HERE, "gen_lines.py"), "--lines", str(lines),
                    "--out", paths["lines"], "--seed", "42"], check=True)
    traces = 0
    with open(paths["lines"], "rb") as source, open(paths["cri"], "wb") as cri, \
            open(paths["java"], "wb") as java:
        for number, line in enumerate(source):
            line = line.rstrip(b"\n")
            # containerd's times: UTC, nanoseconds with trailing zeros trimmed.
            nanos = ("%09d" % (number * 1_000_003 % 1_000_000_000)).rstrip("0") or "0"
            time_text = b"2026-12-02T04:%02d:%02d.%sZ" % (
                number // 60 % 60, number % 60, nanos.encode())
            if number % SPLIT_EVERY == 0 and len(line) > 1:
                middle = len(line) // 2
                cri.write(b"%s stdout P %s\n" % (time_text, line[:middle]))
                cri.write(b"%s stdout F %s\n" % (time_text, line[middle:]))
            else:
                cri.write(b"%s stdout F %s\n" % (time_text, line))
            java.write(line + b"\n")
            if number % TRACE_EVERY == 0:
                traces += 1
                java.write(("\n".join(JAVA_TRACE) % number).encode() + b"\n")
    counts = {"lines": lines, "cri": lines, "java": lines + traces,
              "java_lines": lines + traces * len(JAVA_TRACE)}
    with open(counts_path, "w") as f:
        json.dump(counts, f)
    return paths, counts


def run_ringway(ringway, input_spec, output, workdir, expected, extra):
    summary = os.path.join(workdir, "summary.json")
    stderr_path = os.path.join(workdir, "ringway.stderr")
    for path in (summary, os.path.join(workdir, "out.ndjson")):
        if os.path.exists(path):
            os.remove(path)
    if output == "file":
        output = "file:" + os.path.join(workdir, "out.ndjson")
    command = [ringway, "run", "--input", input_spec, "--output", output, "--exit-on-eof",
               "--stats-interval", "0", "--summary-json", summary] + extra
    started = time.perf_counter()
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    result = json.load(open(summary)) if os.path.exists(summary) else None
    out = result["outputs"][0] if result else {}
    invalid = result["inputs"][0].get("invalid", 0) if result else None
    if code != 0 or out.get("records") != expected or invalid != 0:
        raise SystemExit("run failed: %s\nexit %s, expected %d records\nsummary %s\nstderr:\n%s" % (
            " ".join(command), code, expected, json.dumps(result),
            open(stderr_path).read()[-3000:]))
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "records_per_s": expected / wall,
        "mb_per_s": result["inputs"][0]["bytes"] / wall / 1e6,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="2M")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workdir", default="/tmp/ringway-bench-containers")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--ringway", default=None)
    parser.add_argument("--ringway-args", default="")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 20k lines, 1 rep (overrides --lines and --reps)")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.reps = "20k", 1
    lines = count(args.lines)
    ringway = args.ringway or os.path.join(str(target_dir()), "release", "ringway")
    os.makedirs(args.workdir, exist_ok=True)
    paths, counts = make_files(args.workdir, lines)
    for path in paths.values():
        subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    extra = args.ringway_args.split()

    runs = {name: [] for name, *_ in SCENARIOS}
    for rep in range(args.reps):
        for name, kind, options, output, _ in SCENARIOS:
            joined = kind != "java" or "multiline" in options
            records = counts[kind if joined else "java_lines"]
            result = run_ringway(ringway, "file:" + paths[kind] + options, output,
                                 args.workdir, records, extra)
            runs[name].append(result)
            log("rep %d %-30s %9.0f records/s  %6.1f MB/s  cpu %.2f s  rss %.1f MiB" % (
                rep + 1, name, result["records_per_s"], result["mb_per_s"], result["cpu_s"],
                result["peak_rss_mib"]))

    rows = []
    for name, _, _, _, versus in SCENARIOS:
        rs = runs[name]
        ratio = "; ".join(
            "%s of %s" % (ratio_cell([r["records_per_s"] for r in rs],
                                     [r["records_per_s"] for r in runs[other]]), other)
            for other in versus) or "–"
        for r in rs:
            r["cpu_s_per_m_records"] = r["cpu_s"] / (r["records_per_s"] * r["wall_s"]) * 1e6
        rows.append("| %s | %s | %s | %s | %s | %s |" % (
            name, cell(rs, "records_per_s", "%.0f"), cell(rs, "mb_per_s", "%.0f"),
            cell(rs, "cpu_s_per_m_records", "%.2f"), cell(rs, "peak_rss_mib", "%.1f"), ratio))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    table = "\n".join([
        "# Kubernetes node logs (%s, %s, %d lines, %d reps, `%s`)" % (
            date, git_describe(), lines, args.reps, " ".join(sys.argv)),
        "",
        "| scenario | records/s | MB/s (input) | CPU s per M records | peak RSS MiB | vs |",
        "|---|---:|---:|---:|---:|---|",
    ] + rows + [
        "",
        "records/s counts the records written (a joined trace is one); MB/s the input's "
        "bytes. vs: median (min–max) of per-rep records/s ratios; reps are interleaved. "
        "The CRI file holds the same lines with a `TIME stdout F ` prefix, every %dth "
        "split in two parts; java.log has a 7-line trace after every %dth line."
        % (SPLIT_EVERY, TRACE_EVERY),
    ]) + "\n"
    one_core = one_core_split(paths["cri"], runs["cri file→null"], runs["raw file→null"])
    if one_core:
        runs["one core"] = one_core["result"]
        table += "\n" + one_core["table"]
    print(table)
    write_results(args.results_dir, "containers", table, runs)


def median_rate(runs):
    return sorted(r["records_per_s"] for r in runs)[len(runs) // 2]


def one_core_split(cri_path, cri_runs, raw_runs):
    """bench/cri_convert.rs on the CRI file: {"result", "table"}, or None
    when the example is not built."""
    tool = os.path.join(str(target_dir()), "release", "examples", "cri_convert")
    if not os.path.exists(tool):
        log("no %s (cargo build --release --example cri_convert): one-core split left out" % tool)
        return None
    log("one-core split: %s %s" % (tool, cri_path))
    result = json.loads(subprocess.run([tool, cri_path], check=True, capture_output=True,
                                       text=True).stdout)
    cri, raw = median_rate(cri_runs), median_rate(raw_runs)
    modes = [("count", "lines counted (format=raw's framing)"),
             ("copy", "bytes copied into a 1 MiB buffer"),
             ("escape", "each line escaped as JSON string content"),
             ("cri", "each line parsed as CRI and written as its record")]
    rows = ["| %s | %s | %.0f | %.0f | %.2f× |" % (
        mode, what, result[mode + "_lines_per_s"], result[mode + "_mb_per_s"],
        result[mode + "_lines_per_s"] / result["count_lines_per_s"]) for mode, what in modes]
    table = "\n".join([
        "## The CPU stage's work alone, one core (`%s %s`, %d passes, median of 5 runs)" % (
            os.path.relpath(tool), cri_path, result["passes"]),
        "",
        "| mode | what each line gets | lines/s | MB/s | vs count |",
        "|---|---|---:|---:|---:|",
    ] + rows + [
        "",
        "In the pipeline (medians above): cri file→null %.0f records/s, %.2f× of one core's "
        "cri conversion; raw file→null %.0f records/s. One core's cri conversion alone, "
        "with no I/O or pipeline, is %.2f× of the raw pipeline." % (
            cri, cri / result["cri_lines_per_s"], raw, result["cri_lines_per_s"] / raw),
    ]) + "\n"
    return {"result": result, "table": table}


if __name__ == "__main__":
    sys.exit(main())
