#!/usr/bin/env python3
"""TCP benchmark: ringway's tcp input against a bare TCP sink floor.

Scenarios, interleaved per rep (rep 1 of each, then rep 2, ...), each for
--duration seconds, once with 1 and once with 4 sender connections (--senders)
writing the same pre-generated NDJSON lines of about 225 B
(`loadgen tcp send`, bench/loadgen/tcp.rs) as fast as the server reads them:
  floor        `loadgen tcp floor`: one thread per connection, read(2) into a
               256 KiB buffer and discard
  ringway raw  ringway run --input tcp:127.0.0.1:0,format=raw --output null
  ringway json the same with format=json (every line checked with simd-json)
and each of them again over TLS (rustls, TLS 1.3, AES-128-GCM; the sender
trusts a CA made with openssl at start and finishes every handshake before
its clock starts):
  floor+tls    `loadgen tcp floor --tls-cert …`: the same sink behind rustls
  raw+tls      ringway --input tcp:127.0.0.1:0,tls,format=raw
  json+tls     the same with format=json
(--scenarios picks some; "TLS / plain" is the median of per-rep lines/s
ratios of each TLS row against its plaintext row.)

Measured per run: MB/s and lines/s from the sender (its clock stops when the
server has closed every connection after reading its end of stream, so
nothing still queued in socket buffers is counted as delivered); CPU seconds
of the server process over the sending window (/proc/PID/stat, sampled just
before the sender starts and 0.3 s after it ends) per GB sent; its peak RSS
(VmHWM, read just before SIGTERM). Every run is checked: the floor must have
read exactly the bytes sent; ringway must exit 0 after SIGTERM with summary
input records == lines sent, input bytes == bytes sent, no invalid or
truncated lines, output records == lines sent (otherwise FAIL is printed and
the exit status is 1).

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

from benchlib import (REPO, HOST, build, cell, floor_result, git_describe, loadgen_path, log,
                      make_certificates, measure_server, ratio_cell, ringway_summary, run_sender,
                      start_floor, start_ringway, target_dir)

SETTLE_S = 0.3
STOP_TIMEOUT_S = 60.0

SCENARIOS = [
    ("floor", "floor: bare TCP sink"),
    ("floor+tls", "floor over TLS: rustls sink"),
    ("raw", "ringway tcp,format=raw → null"),
    ("raw+tls", "ringway tcp,tls,format=raw → null"),
    ("json", "ringway tcp,format=json → null"),
    ("json+tls", "ringway tcp,tls,format=json → null"),
]


def send(sender, port, senders, args, tls):
    """A function that runs the TCP sender against port (for measure_server)."""
    argv = [sender, "tcp", "send", "--target", "%s:%d" % (HOST, port),
            "--duration", "%gs" % args.duration, "--connections", str(senders)]
    if tls:
        argv += ["--tls-ca", args.certificates["ca"]]
    return lambda: run_sender(argv, args.duration + 180, "loadgen tcp send")


def run_floor(kind, sender, senders, args):
    tls = kind.endswith("+tls")
    argv = [sender, "tcp", "floor", "--serve", "%s:0" % HOST]
    if tls:
        argv += ["--tls-cert", args.certificates["cert"], "--tls-key", args.certificates["key"]]
    process, port = start_floor(argv, "loadgen tcp floor")
    run = measure_server(process, send(sender, port, senders, args, tls), SETTLE_S,
                         STOP_TIMEOUT_S)
    server = floor_result(process, run["code"])
    failures = []
    if run["code"] != 0:
        failures.append("floor exited %s" % run["code"])
    elif server["bytes"] != run["result"]["bytes"]:
        failures.append("floor read %d bytes, sender sent %d"
                        % (server["bytes"], run["result"]["bytes"]))
    return finish(kind, senders, [argv, run["sender_argv"]], run, server, failures)


def run_ringway(kind, ringway, sender, senders, args, workdir):
    summary_path = workdir / ("summary-%s-%d.json" % (kind, senders))
    stderr_path = workdir / ("stderr-%s-%d.txt" % (kind, senders))
    summary_path.unlink(missing_ok=True)
    tls = kind.endswith("+tls")
    format_name = kind.split("+")[0]
    spec = "tcp:%s:0%s,format=%s" % (HOST, ",tls" if tls else "", format_name)
    argv = [str(ringway), "run", "--input", spec,
            "--output", "null", "--stats-interval", "0", "--summary-json", str(summary_path)]
    if tls:
        argv += ["--tls-cert", args.certificates["cert"], "--tls-key", args.certificates["key"]]
    argv += shlex.split(args.ringway_args)
    process, port = start_ringway(argv, stderr_path)
    run = measure_server(process, send(sender, port, senders, args, tls), SETTLE_S,
                         STOP_TIMEOUT_S)
    summary, failures = ringway_summary(run["code"], summary_path, stderr_path)
    result = run["result"]
    if summary:
        entry, output = summary["inputs"][0], summary["outputs"][0]
        for what, got, want in [("input records", entry.get("records"), result["lines"]),
                                ("input bytes", entry.get("bytes"), result["bytes"]),
                                ("output records", output.get("records"), result["lines"]),
                                ("invalid", entry.get("invalid"), 0),
                                ("truncated", entry.get("truncated"), 0),
                                ("connections_accepted", entry.get("connections_accepted"),
                                 senders)] + ([("tls_handshakes", entry.get("tls_handshakes"),
                                                senders)] if tls else []):
            if got != want:
                failures.append("ringway summary %s %s != %s" % (what, got, want))
    return finish(kind, senders, [argv, run["sender_argv"]], run, summary, failures)


def finish(kind, senders, commands, run, server, failures):
    result, cpu_s = run["result"], run["cpu_s"]
    if result.get("exit_code"):
        failures.append("loadgen tcp send exited %d: %s" % (result["exit_code"], result.get("error", "")))
    if result.get("unclosed"):
        failures.append("%d connection(s) not closed by the server within 60 s of the sender's "
                        "end of stream" % result["unclosed"])
    if result["bytes"] == 0:
        failures.append("nothing was sent")
    gb = max(result["bytes"], 1) / 1e9
    return {
        "scenario": kind,
        "senders": senders,
        "commands": [" ".join(shlex.quote(str(part)) for part in command)
                     for command in commands],
        "sender": result,
        "server": server,
        "mb_per_s": result["mb_per_s"],
        "lines_per_s": result["lines_per_s"],
        "cpu_s": cpu_s,
        "cpu_total_s": run["cpu_total_s"],
        "cores": cpu_s / max(result["elapsed_s"], 1e-9),
        "cpu_s_per_gb": cpu_s / gb,
        "rss_mib": run["rss_mib"],
        "sender_cpu_s": result.get("cpu_s", 0.0),
        "failures": failures,
    }


def supports_tcp(ringway):
    try:
        done = subprocess.run([str(ringway), "run", "--help"], capture_output=True, text=True,
                              timeout=30)
    except OSError:
        return False
    return "--tcp-max-connections" in done.stdout + done.stderr


def markdown(runs, args, date, command_line):
    lines = [
        "# ringway TCP input benchmark",
        "",
        "- date (UTC): %s; commit %s" % (date.strftime("%Y-%m-%dT%H:%M:%SZ"), git_describe()),
        "- machine: nproc=%d, kernel %s" % (os.cpu_count(), platform.release()),
        "- NDJSON lines of %s B on average, %g s per run, %d rep(s), interleaved; "
        "median (min–max)" % (
            next(("%.0f" % r["sender"]["avg_line_bytes"] for rs in runs.values() for r in rs),
                 "?"), args.duration, args.reps),
        "- command: `%s`" % command_line,
        "",
        "| scenario | senders | MB/s | lines/s | server CPU s/GB | server cores | peak RSS MiB "
        "| vs floor | TLS / plain | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for senders in args.senders:
        for kind, title in SCENARIOS:
            kind_runs = runs.get((kind, senders), [])
            if not kind_runs:
                continue
            tls = kind.endswith("+tls")
            floor = runs.get(("floor+tls" if tls else "floor", senders), [])
            plain = runs.get((kind.split("+")[0], senders), [])
            failed = sum(1 for run in kind_runs if run["failures"])
            vs_floor = "1.00×" if kind.startswith("floor") else ratio_cell(
                [r["mb_per_s"] for r in kind_runs], [r["mb_per_s"] for r in floor])
            vs_plain = ratio_cell([r["lines_per_s"] for r in kind_runs],
                                  [r["lines_per_s"] for r in plain]) if tls else ""
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                title, senders, cell(kind_runs, "mb_per_s", "%.0f"),
                cell(kind_runs, "lines_per_s", "%.0f"), cell(kind_runs, "cpu_s_per_gb", "%.2f"),
                cell(kind_runs, "cores", "%.2f"), cell(kind_runs, "rss_mib", "%.1f"),
                vs_floor, vs_plain, "ok" if not failed else "FAIL ×%d" % failed))
    lines += [
        "",
        "MB/s and lines/s are the sender's: bytes and whole lines written, over the time from "
        "every connection open to every connection closed by the server after it read the "
        "sender's end of stream. Server CPU is user+sys of the server process over the sending "
        "window (+%.1f s), per 1e9 bytes sent; server cores = that CPU / the run's wall time. "
        "Senders and server share the machine's %d cores: the sender's own CPU "
        "(`sender.cpu_s` in the JSON) is what the server could not use. vs floor: median of "
        "per-rep MB/s ratios against the floor (the TLS floor for TLS rows) with the same "
        "number of senders. TLS / plain: median of per-rep lines/s ratios against the same "
        "row without TLS."
        % (SETTLE_S, os.cpu_count()),
    ]
    failures = [("%s/%d" % (run["scenario"], run["senders"]), failure)
                for kind_runs in runs.values() for run in kind_runs for failure in run["failures"]]
    if failures:
        lines += ["", "Failures:", ""] + ["- %s: %s" % item for item in failures]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per scenario [5]")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run [10]")
    parser.add_argument("--senders", default="1,4",
                        help="comma-separated sender connection counts [1,4]")
    parser.add_argument("--ringway", default=None, help="ringway binary [TARGET/release/ringway]")
    parser.add_argument("--ringway-args", default="", help="extra flags for every ringway run")
    parser.add_argument("--scenarios", default=",".join(kind for kind, _ in SCENARIOS),
                        help="comma-separated scenarios to run [%(default)s]")
    parser.add_argument("--floor-only", action="store_true",
                        help="only the floor rows (no ringway build or runs)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    parser.add_argument("--results-dir", default=None,
                        help="where tcp.md and tcp.json go [bench/results/<UTC date>/]")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 rep of 3 s")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.duration = 1, 3.0
    try:
        args.senders = [int(n) for n in args.senders.split(",") if n.strip()]
    except ValueError:
        parser.error("--senders takes comma-separated integers")
    if args.reps < 1 or args.duration <= 0 or not args.senders or min(args.senders) < 1:
        parser.error("--reps, --duration and --senders must be positive")

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
        kinds = [kind for kind in kinds if kind.startswith("floor")]
    elif not os.access(ringway, os.X_OK) or not supports_tcp(ringway):
        log("warning: %s has no tcp input (`ringway run --help` lacks --tcp-max-connections): "
            "running the floor rows only" % ringway)
        kinds = [kind for kind in kinds if kind.startswith("floor")]

    workdir = Path(tempfile.mkdtemp(prefix="ringway-tcp-bench-"))
    args.certificates = make_certificates(workdir)
    date = datetime.datetime.now(datetime.timezone.utc)
    runs = {}
    for rep in range(args.reps):
        for senders in args.senders:
            for kind in kinds:
                try:
                    if kind.startswith("floor"):
                        run = run_floor(kind, sender, senders, args)
                    else:
                        run = run_ringway(kind, ringway, sender, senders, args, workdir)
                except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as error:
                    log("FAIL %s/%d rep %d: %s" % (kind, senders, rep + 1, error))
                    raise SystemExit(1)
                runs.setdefault((kind, senders), []).append(run)
                log("rep %d %-9s %d sender(s) %8.1f MB/s %11.0f lines/s  server %.2f cores, "
                    "%.2f CPU-s/GB, %.1f MiB peak RSS"
                    % (rep + 1, kind, senders, run["mb_per_s"], run["lines_per_s"],
                       run["cores"], run["cpu_s_per_gb"], run["rss_mib"]))
                for failure in run["failures"]:
                    log("FAIL %s/%d rep %d: %s" % (kind, senders, rep + 1, failure))

    command_line = "python3 bench/tcp_throughput.py " + " ".join(
        shlex.quote(arg) for arg in sys.argv[1:])
    text = markdown(runs, args, date, command_line.strip())
    print(text)
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path(tempfile.gettempdir()) / "ringway-tcp-quick" if args.quick
        else REPO / "bench" / "results" / date.strftime("%Y-%m-%d"))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "tcp.md").write_text(text)
    (results_dir / "tcp.json").write_text(json.dumps({
        "date": date.isoformat(), "commit": git_describe(), "args": vars(args),
        "runs": {"%s/%d" % key: value for key, value in runs.items()}}, indent=2, default=str))
    log("wrote %s/tcp.md and tcp.json" % results_dir)
    if any(run["failures"] for kind_runs in runs.values() for run in kind_runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
