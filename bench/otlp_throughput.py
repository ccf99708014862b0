#!/usr/bin/env python3
"""OTLP/HTTP benchmark: ringway's otlp input against the machine's floors.

Scenarios, interleaved per rep (rep 1 of each, then rep 2, ...), each for
--duration seconds with --connections keep-alive connections posting the same
pre-built ExportLogsServiceRequest protobufs (`loadgen otlp send`,
bench/loadgen/otlp.rs, on ringway's own HTTP client):
  floor            `loadgen otlp floor`: a bare HTTP/1.1 sink (thread per
                   connection) that reads each request and answers 200
                   without looking at the body
  decode floor     the same sink with --decode: it also gunzips (with --gzip)
                   and prost-decodes every body
  ringway accepted ringway run --input otlp:... --output null --otlp-ack accepted
  ringway delivered the same with --otlp-ack delivered
and over HTTPS (rustls; the sender trusts a CA made with openssl at start):
  floor+tls        the bare sink behind rustls (`loadgen otlp floor --tls-cert …`)
  accepted+tls     ringway run --input otlp:...,tls --otlp-ack accepted
  delivered+tls    the same with --otlp-ack delivered
(--scenarios picks some; "TLS / plain" is the median of per-rep records/s
ratios of each HTTPS row against the same row in plain HTTP.)

Measured per run: records/s and MB/s (request body bytes, as sent) from the
sender; CPU seconds of the server process over the sending window (from
/proc/PID/stat, sampled just before the sender starts and 0.3 s after it
ends); its peak RSS (VmHWM, read just before SIGTERM); 429/503 responses;
request latency p50/p99. Every run is checked: the floors must have answered
every request, the decode floor must count records_ok records, and ringway
must exit 0 after SIGTERM with summary records == the sender's records_ok
(otherwise FAIL is printed and the exit status is 1).

Python 3 standard library only. Builds ringway and the loadgen example
first (cargo build --release; cargo build --release --example loadgen),
in $CARGO_TARGET_DIR if set, else target/.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import (REPO, HOST, build, cell, floor_result, free_port, git_describe,
                      loadgen_path, log, make_certificates, measure_server, ratio_cell,
                      ringway_summary, run_sender, start_floor, start_ringway, target_dir)

# After the sender ends, let the server finish what it holds before sampling
# its CPU time and stopping it.
SETTLE_S = 0.3
STOP_TIMEOUT_S = 60.0

SCENARIOS = [
    ("floor", "floor: bare HTTP sink"),
    ("decode", "decode floor: sink + prost decode"),
    ("accepted", "ringway otlp → null, --otlp-ack accepted"),
    ("delivered", "ringway otlp → null, --otlp-ack delivered"),
    ("floor+tls", "floor over HTTPS: rustls sink"),
    ("accepted+tls", "ringway otlp,tls → null, --otlp-ack accepted"),
    ("delivered+tls", "ringway otlp,tls → null, --otlp-ack delivered"),
]
RINGWAY_SCENARIOS = ("accepted", "delivered", "accepted+tls", "delivered+tls")


def send(sender, port, args, tls=False):
    """A function that runs the OTLP sender against port (for measure_server)."""
    argv = [sender, "otlp", "send", "--target", "%s:%d" % (HOST, port),
            "--duration", str(args.duration), "--connections", str(args.connections),
            "--records-per-request", str(args.records_per_request)]
    if args.gzip:
        argv.append("--gzip")
    if tls:
        argv += ["--tls-ca", args.certificates["ca"]]

    def run():
        argv_, result = run_sender(argv, args.duration + 120, "loadgen otlp send")
        if result.get("error"):
            result["error"] = result["error"].splitlines()[-1]
        return argv_, result
    return run


def run_floor(kind, sender, args):
    tls = kind.endswith("+tls")
    argv = [sender, "otlp", "floor", "--serve", "%s:0" % HOST] + (
        ["--decode"] if kind == "decode" else [])
    if tls:
        argv += ["--tls-cert", args.certificates["cert"], "--tls-key", args.certificates["key"]]
    process, port = start_floor(argv, "loadgen otlp floor")
    run = measure_server(process, send(sender, port, args, tls), SETTLE_S, STOP_TIMEOUT_S)
    server = floor_result(process, run["code"])
    result = run["result"]
    failures = []
    if run["code"] != 0:
        failures.append("floor server exited %s" % run["code"])
    elif server["requests"] != result["requests_ok"] or server["bad_requests"]:
        failures.append("floor answered %d requests (%d bad), sender got %d 2xx"
                        % (server["requests"], server["bad_requests"], result["requests_ok"]))
    elif kind == "decode" and server["records"] != result["records_ok"]:
        failures.append("decode floor decoded %d records, sender records_ok %d"
                        % (server["records"], result["records_ok"]))
    return finish(kind, [argv, run["sender_argv"]], run, server, failures)


def run_ringway(kind, ringway, sender, args, workdir):
    port = free_port()
    summary_path = workdir / ("summary-%s.json" % kind)
    stderr_path = workdir / ("stderr-%s.txt" % kind)
    summary_path.unlink(missing_ok=True)
    tls = kind.endswith("+tls")
    argv = [str(ringway), "run", "--input", "otlp:%s:%d%s" % (HOST, port, ",tls" if tls else ""),
            "--output", "null", "--otlp-ack", kind.split("+")[0], "--stats-interval", "0",
            "--summary-json", str(summary_path)]
    if tls:
        argv += ["--tls-cert", args.certificates["cert"], "--tls-key", args.certificates["key"]]
    argv += shlex.split(args.ringway_args)
    # No probe connection before ringway says it listens (it would show in
    # its counters); after 5 s a connect() also counts.
    process, _ = start_ringway(argv, stderr_path, port=port)
    run = measure_server(process, send(sender, port, args, tls), SETTLE_S, STOP_TIMEOUT_S)
    summary, failures = ringway_summary(run["code"], summary_path, stderr_path)
    result = run["result"]
    if summary:
        entry = summary["inputs"][0]
        if entry.get("records") != result["records_ok"]:
            failures.append("ringway summary records %s != sender records_ok %d"
                            % (entry.get("records"), result["records_ok"]))
        responses = entry.get("http_responses", {})
        if responses.get("429", 0) != result["status_429"]:
            log("  warning: ringway sent %s × 429, the sender counted %d"
                % (responses.get("429", 0), result["status_429"]))
    return finish(kind, [argv, run["sender_argv"]], run, summary, failures)


def finish(kind, commands, run, server, failures):
    result, cpu_s = run["result"], run["cpu_s"]
    if result.get("exit_code"):
        failures.append("loadgen otlp send exited %d: %s" % (result["exit_code"], result.get("error", "")))
    if result.get("other_status"):
        failures.append("unexpected statuses: %s" % result["other_status"])
    if result["requests_ok"] == 0:
        failures.append("no request was answered 2xx")
    records = max(result["records_ok"], 1)
    return {
        "scenario": kind,
        "commands": [" ".join(shlex.quote(str(part)) for part in command)
                     for command in commands],
        "sender": result,
        "server": server,
        "records_per_s": result["records_per_s"],
        "mb_per_s": result["mb_per_s"],
        "requests_per_s": result["requests_per_s"],
        "cpu_s": cpu_s,
        "cpu_total_s": run["cpu_total_s"],
        "cores": cpu_s / max(result["elapsed_s"], 1e-9),
        "cpu_s_per_m_records": cpu_s / records * 1e6,
        "cpu_s_per_gb": cpu_s / max(result.get("bytes_ok", 0), 1) * 1e9,
        "rss_mib": run["rss_mib"],
        "status_429": result["status_429"] + result.get("status_503", 0),
        "retry_wait_s": result.get("retry_wait_s", 0.0),
        "latency_ms_p50": result["latency_ms_p50"],
        "latency_ms_p99": result["latency_ms_p99"],
        "sender_cpu_s": result.get("cpu_s", 0.0),
        "failures": failures,
    }


def supports_otlp(ringway):
    try:
        done = subprocess.run([str(ringway), "run", "--help"], capture_output=True, text=True,
                              timeout=30)
    except OSError:
        return False
    return "--otlp-ack" in done.stdout + done.stderr


def markdown(runs, args, date, command_line):
    floor = runs.get("floor", [])
    lines = [
        "# ringway OTLP/HTTP benchmark",
        "",
        "- date (UTC): %s; commit %s" % (date.strftime("%Y-%m-%dT%H:%M:%SZ"), git_describe()),
        "- machine: nproc=%d, kernel %s" % (os.cpu_count(), platform.release()),
        "- %d connection(s), one request in flight each, %d records per request%s, %g s per run, "
        "%d rep(s), interleaved; median (min–max)"
        % (args.connections, args.records_per_request, ", gzip" if args.gzip else "",
           args.duration, args.reps),
        "- command: `%s`" % command_line,
        "",
    ]
    if floor:
        sender = floor[0]["sender"]
        lines += ["Request body: %.0f B on average (%.0f B per record)%s."
                  % (sender["bytes_ok"] / max(sender["requests_ok"], 1),
                     sender["bytes_ok"] / max(sender["records_ok"], 1),
                     ", gzip; %.0f B before" % (sender["raw_bytes_ok"] / max(sender["requests_ok"], 1))
                     if args.gzip else ""), ""]
    lines += [
        "| scenario | records/s | MB/s | server CPU s per M records | server CPU s per GB "
        "| server cores | peak RSS MiB "
        "| 429/503 | Retry-After wait s | p50 ms | p99 ms | vs floor | vs decode floor "
        "| TLS / plain | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, title in SCENARIOS:
        kind_runs = runs.get(kind, [])
        if not kind_runs:
            continue
        tls = kind.endswith("+tls")
        floor = runs.get("floor+tls" if tls else "floor", [])
        vs_plain = ratio_cell([r["records_per_s"] for r in kind_runs],
                              [r["records_per_s"] for r in runs.get(kind.split("+")[0], [])]
                              ) if tls else ""
        good = [run for run in kind_runs if not run["failures"]]
        failed = len(kind_runs) - len(good)
        check = "ok" if not failed else "FAIL ×%d" % failed
        shown = kind_runs
        vs_floor = ratio_cell([r["records_per_s"] for r in kind_runs],
                              [r["records_per_s"] for r in floor]
                              ) if not kind.startswith("floor") else "1.00×"
        decode = runs.get("decode", [])
        vs_decode = (ratio_cell([r["records_per_s"] for r in kind_runs],
                                [r["records_per_s"] for r in decode])
                     if kind in RINGWAY_SCENARIOS and decode and not tls else "")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            title, cell(shown, "records_per_s", "%.0f"), cell(shown, "mb_per_s", "%.1f"),
            cell(shown, "cpu_s_per_m_records", "%.3f"), cell(shown, "cpu_s_per_gb", "%.2f"),
            cell(shown, "cores", "%.2f"),
            cell(shown, "rss_mib", "%.1f"), cell(shown, "status_429", "%d"),
            cell(shown, "retry_wait_s", "%.1f"),
            cell(shown, "latency_ms_p50", "%.2f"), cell(shown, "latency_ms_p99", "%.2f"),
            vs_floor, vs_decode, vs_plain, check))
    accepted, delivered = runs.get("accepted", []), runs.get("delivered", [])
    if accepted and delivered:
        lines += [
            "",
            "Delivered vs accepted, paired per rep: throughput %s, server CPU per record %s, "
            "p50 latency %s."
            % (ratio_cell([r["records_per_s"] for r in delivered],
                          [r["records_per_s"] for r in accepted]),
               ratio_cell([r["cpu_s_per_m_records"] for r in delivered],
                          [r["cpu_s_per_m_records"] for r in accepted]),
               ratio_cell([r["latency_ms_p50"] for r in delivered],
                          [r["latency_ms_p50"] for r in accepted])),
        ]
    lines += [
        "",
        "records/s and MB/s (request body bytes as sent) are the sender's, over its run. Server CPU "
        "is user+sys of the server process over the sending window (+%.1f s); server cores = that "
        "CPU / the run's wall time. Sender and server share the machine's %d cores. vs floor: "
        "median of per-rep records/s ratios (against the HTTPS floor for HTTPS rows). "
        "TLS / plain: median of per-rep records/s ratios against the same row in plain HTTP."
        % (SETTLE_S, os.cpu_count()),
    ]
    failures = [(run["scenario"], failure) for kind_runs in runs.values() for run in kind_runs
                for failure in run["failures"]]
    if failures:
        lines += ["", "Failures:", ""] + ["- %s: %s" % item for item in failures]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per scenario [5]")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run [10]")
    parser.add_argument("--connections", type=int, default=4, help="sender connections [4]")
    parser.add_argument("--records-per-request", type=int, default=512,
                        help="LogRecords per request [512]")
    parser.add_argument("--gzip", action="store_true", help="send gzip-compressed bodies")
    parser.add_argument("--ringway", default=None, help="ringway binary [TARGET/release/ringway]")
    parser.add_argument("--ringway-args", default="", help="extra flags for every ringway run")
    parser.add_argument("--scenarios", default=",".join(kind for kind, _ in SCENARIOS),
                        help="comma-separated scenarios to run [%(default)s]")
    parser.add_argument("--floor-only", action="store_true",
                        help="only the floor rows (no ringway build or runs)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    parser.add_argument("--results-dir", default=None,
                        help="where otlp.md and otlp.json go [bench/results/<UTC date>/]")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 rep of 3 s")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 3.0
    if args.reps < 1 or args.duration <= 0 or args.connections < 1:
        parser.error("--reps, --duration and --connections must be positive")

    if not args.no_build:
        build(args.floor_only)
    release = target_dir() / "release"
    sender = loadgen_path()
    ringway = Path(args.ringway) if args.ringway else release / "ringway"
    if not os.access(sender, os.X_OK):
        raise SystemExit("%s not found (cargo build --release --example loadgen)" % sender)
    known = [kind for kind, _ in SCENARIOS]
    kinds = [kind for kind in args.scenarios.split(",") if kind.strip()]
    if not kinds or any(kind not in known for kind in kinds):
        parser.error("--scenarios takes a comma-separated list of %s" % ", ".join(known))
    if args.floor_only:
        kinds = [kind for kind in kinds if kind not in RINGWAY_SCENARIOS]
    elif not os.access(ringway, os.X_OK) or not supports_otlp(ringway):
        log("warning: %s has no otlp input (`ringway run --help` lacks --otlp-ack): "
            "running the floor rows only" % ringway)
        kinds = [kind for kind in kinds if kind not in RINGWAY_SCENARIOS]

    workdir = Path(tempfile.mkdtemp(prefix="ringway-otlp-bench-"))
    args.certificates = make_certificates(workdir)
    date = datetime.datetime.now(datetime.timezone.utc)
    runs = {kind: [] for kind in kinds}
    for rep in range(args.reps):
        for kind in kinds:
            try:
                if kind in RINGWAY_SCENARIOS:
                    run = run_ringway(kind, ringway, sender, args, workdir)
                else:
                    run = run_floor(kind, sender, args)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as error:
                log("FAIL %s rep %d: %s" % (kind, rep + 1, error))
                raise SystemExit(1)
            runs[kind].append(run)
            log("rep %d %-12s %10.0f records/s %7.1f MB/s  server %.2f cores, %.3f CPU-s/M rec, "
                "%.1f MiB  429/503 %d (waited %.1f s)  p50 %.2f ms p99 %.2f ms"
                % (rep + 1, kind, run["records_per_s"], run["mb_per_s"], run["cores"],
                   run["cpu_s_per_m_records"], run["rss_mib"], run["status_429"],
                   run["retry_wait_s"], run["latency_ms_p50"], run["latency_ms_p99"]))
            for failure in run["failures"]:
                log("FAIL %s rep %d: %s" % (kind, rep + 1, failure))

    command_line = "python3 bench/otlp_throughput.py " + " ".join(
        shlex.quote(arg) for arg in sys.argv[1:])
    text = markdown(runs, args, date, command_line.strip())
    print(text)
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path(tempfile.gettempdir()) / "ringway-otlp-quick" if args.quick
        else REPO / "bench" / "results" / date.strftime("%Y-%m-%d"))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "otlp.md").write_text(text)
    (results_dir / "otlp.json").write_text(json.dumps({
        "date": date.isoformat(), "commit": git_describe(), "args": vars(args),
        "runs": runs}, indent=2, default=str))
    log("wrote %s/otlp.md and otlp.json" % results_dir)
    if any(run["failures"] for kind_runs in runs.values() for run in kind_runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
