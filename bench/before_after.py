#!/usr/bin/env python3
"""Before/after: two ringway builds, the same workloads, interleaved.

Runs ringway A (before) and B (after) through three workloads, A B, B A,
A B … (the order alternates by rep) for --reps reps each, and reports each build's median, the ratio of the
medians B/A and the median of the per-rep ratios (runs of one rep are back
to back, so a pair shares the machine's state):

  file→null json   file:DATA,format=json → null, --exit-on-eof (framing and
                   simd-json checking): lines/s from spawn to exit
  file→file json   the same → file:OUT (the whole pipeline, output I/O)
  udp max rate     `loadgen udp send` unthrottled for --udp-seconds into
                   udp:127.0.0.1:PORT → null; records ringway counted per
                   second of sending (sender and ringway share the cores)

Every run is checked (exit 0; file: records == lines, OUT as long as DATA;
udp: records + kernel drops == sent); a failed check stops the run.
bench/before_after.sh builds both at given git revisions and calls this.
Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import HOST, REPO, free_port, log, stop, udp_socket_row, wait_udp_bound

GEN_LINES = REPO / "bench" / "gen_lines.py"
SEED = 42
SCENARIOS = [
    ("file_null_json", "file→null json", "lines/s"),
    ("file_file_json", "file→file json", "lines/s"),
    ("udp_max", "udp max rate → null", "records/s"),
]


class Failure(Exception):
    pass


def ensure_data(lines, workdir):
    path = workdir / ("lines-%d-seed%d.jsonl" % (lines, SEED))
    if not path.exists():
        log("data: generating %d lines into %s" % (lines, path))
        subprocess.run([sys.executable, str(GEN_LINES), "--lines", str(lines), "--out",
                        str(path) + ".tmp", "--seed", str(SEED)], check=True)
        os.replace(str(path) + ".tmp", path)
    return path


def summary_entry(path, side):
    summary = json.loads(Path(path).read_text())
    return summary[side][0]


def run_file(ringway, data, lines, out, workdir, tag):
    """file → null (out None) or → file:out, format=json; lines/s."""
    summary = workdir / ("summary-%s.json" % tag)
    summary.unlink(missing_ok=True)
    if out:
        out.unlink(missing_ok=True)
    argv = [str(ringway), "run", "--input", "file:%s,format=json" % data,
            "--output", "file:%s" % out if out else "null",
            "--exit-on-eof", "--stats-interval", "0", "--summary-json", str(summary)]
    subprocess.run(["sync"], check=False)
    stderr_path = workdir / ("stderr-%s.txt" % tag)
    with open(stderr_path, "w") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise Failure("%s exited %d: %s" % (" ".join(argv), process.returncode,
                                            stderr_path.read_text(errors="replace")[-2000:]))
    records = summary_entry(summary, "inputs").get("records")
    if records != lines:
        raise Failure("%s: input records %s != %d" % (tag, records, lines))
    if out:
        if out.stat().st_size != data.stat().st_size:
            raise Failure("%s: output %d bytes, input %d" % (tag, out.stat().st_size,
                                                          data.stat().st_size))
        out.unlink()
    return {"value": lines / wall, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "command": " ".join(shlex.quote(a) for a in argv)}


def run_udp(ringway, loadgen, seconds, workdir, tag):
    """loadgen udp send, unthrottled, into ringway udp → null."""
    port = free_port(socket.SOCK_DGRAM)
    summary = workdir / ("summary-%s.json" % tag)
    summary.unlink(missing_ok=True)
    argv = [str(ringway), "run", "--input", "udp:%s:%d" % (HOST, port), "--output", "null",
            "--stats-interval", "0", "--summary-json", str(summary)]
    stderr_path = workdir / ("stderr-%s.txt" % tag)
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        if not wait_udp_bound(port, process):
            raise Failure("ringway did not bind udp %d: %s"
                          % (port, stderr_path.read_text(errors="replace")[-2000:]))
        sender_argv = [str(loadgen), "udp", "send", "--to", "%s:%d" % (HOST, port),
                       "--count", "0", "--duration", "%gs" % seconds]
        done = subprocess.run(sender_argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise Failure("loadgen udp send exited %d: %s" % (done.returncode, done.stderr))
        sent = json.loads(done.stdout.strip().splitlines()[-1])
        # Until ringway has taken everything queued on its socket.
        deadline = time.monotonic() + 30
        while (udp_socket_row(port) or (0, 0))[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    except BaseException:
        process.kill()
        process.wait()
        raise
    code, cpu_s = stop(process, 60)
    if code != 0:
        raise Failure("ringway exited %s: %s"
                      % (code, stderr_path.read_text(errors="replace")[-2000:]))
    entry = summary_entry(summary, "inputs")
    records, drops = entry.get("records", 0), entry.get("kernel_drops", 0)
    if records + drops != sent["sent"]:
        raise Failure("%s: records %d + kernel drops %d != sent %d"
                      % (tag, records, drops, sent["sent"]))
    return {"value": records / sent["elapsed_s"], "sent_per_s": sent["rate_per_s"],
            "loss_pct": 100.0 * drops / max(sent["sent"], 1), "cpu_s": cpu_s,
            "command": " ".join(shlex.quote(a) for a in argv)}


def spread(values, fmt):
    mid = statistics.median(values)
    if len(values) > 1 and fmt % min(values) != fmt % max(values):
        return "%s (%s–%s)" % (fmt % mid, fmt % min(values), fmt % max(values))
    return fmt % mid


def markdown(runs, args, date):
    lines = [
        "# ringway before/after",
        "",
        "- date (UTC): %s; machine: nproc=%d, kernel %s"
        % (date.strftime("%Y-%m-%dT%H:%M:%SZ"), os.cpu_count(), platform.release()),
        "- A (before): `%s`%s" % (args.a, " (%s)" % args.a_label if args.a_label else ""),
        "- B (after): `%s`%s" % (args.b, " (%s)" % args.b_label if args.b_label else ""),
        "- %d rep(s), interleaved A B, B A, A B …; %d JSON lines (gen_lines.py --seed %d); UDP: "
        "`loadgen udp send` unthrottled for %g s, 200-byte syslog datagrams"
        % (args.reps, args.lines, SEED, args.udp_seconds),
        "- cells: median (min–max); B/A of medians; per-rep: median (min–max) of B/A "
        "within each rep",
        "",
        "| workload | unit | A (before) | B (after) | B/A | per-rep B/A |",
        "|---|---|---|---|---|---|",
    ]
    for key, title, unit in SCENARIOS:
        if key not in runs["A"]:
            continue
        a = [run["value"] for run in runs["A"][key]]
        b = [run["value"] for run in runs["B"][key]]
        paired = [y / x for x, y in zip(a, b) if x]
        lines.append("| %s | %s | %s | %s | %.3f | %s |" % (
            title, unit, spread([v / 1e6 for v in a], "%.3fM"),
            spread([v / 1e6 for v in b], "%.3fM"),
            statistics.median(b) / statistics.median(a), spread(paired, "%.3f")))
    if "udp_max" in runs["A"]:
        lines.append("")
        lines.append("UDP loss %% (kernel drops / sent): A %s, B %s." % (
            spread([run["loss_pct"] for run in runs["A"]["udp_max"]], "%.1f"),
            spread([run["loss_pct"] for run in runs["B"]["udp_max"]], "%.1f")))
    lines += ["", "Command: `%s`" % " ".join(shlex.quote(a) for a in [
        "python3", "bench/before_after.py"] + sys.argv[1:])]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="ringway binary A (before)")
    parser.add_argument("--b", required=True, help="ringway binary B (after)")
    parser.add_argument("--a-label", default="", help="what A is (e.g. its commit)")
    parser.add_argument("--b-label", default="", help="what B is")
    parser.add_argument("--loadgen", required=True, help="the loadgen example (UDP sender)")
    parser.add_argument("--reps", type=int, default=5, help="reps per build and workload [5]")
    parser.add_argument("--lines", type=int, default=2_000_000,
                        help="lines of the file workloads [2000000]")
    parser.add_argument("--udp-seconds", type=float, default=5.0,
                        help="seconds of UDP sending per run [5]")
    parser.add_argument("--scenarios", default=",".join(key for key, _, _ in SCENARIOS),
                        help="comma-separated subset of %s" % ",".join(k for k, _, _ in SCENARIOS))
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(),
                                                          "ringway-before-after"))
    parser.add_argument("--out", default=None,
                        help="markdown file [bench/results/<UTC date>/before_after.md]; "
                             "a .json with every run goes beside it")
    args = parser.parse_args()
    if args.reps < 1 or args.lines < 1 or args.udp_seconds <= 0:
        parser.error("--reps, --lines and --udp-seconds must be positive")
    wanted = [key for key in args.scenarios.split(",") if key]
    unknown = set(wanted) - {key for key, _, _ in SCENARIOS}
    if unknown:
        parser.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args.lines, workdir)
    out = workdir / "out.jsonl"
    date = datetime.datetime.now(datetime.timezone.utc)
    builds = {"A": args.a, "B": args.b}
    runs = {name: {key: [] for key in wanted} for name in builds}
    # Warm the page cache once; every file run then reads from memory.
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)
    started = time.monotonic()
    try:
        for rep in range(args.reps):
            for key in wanted:
                # A B in even reps, B A in odd ones: on this VM the first
                # run of a back-to-back pair is often the slow one (its
                # file writes land on memory the host must hand back), so
                # a fixed order favours B by up to 2.5x in file→file.
                order = list(builds.items())
                if rep % 2:
                    order.reverse()
                for name, ringway in order:
                    tag = "%s-%s-%d" % (key, name, rep)
                    if key == "udp_max":
                        run = run_udp(ringway, args.loadgen, args.udp_seconds, workdir, tag)
                    else:
                        run = run_file(ringway, data, args.lines,
                                       out if key == "file_file_json" else None, workdir, tag)
                    runs[name][key].append(run)
                    log("rep %d %-15s %s %12.0f /s" % (rep + 1, key, name, run["value"]))
    except (Failure, subprocess.SubprocessError, OSError, ValueError, KeyError) as error:
        log("FAIL: %s" % error)
        sys.exit(1)
    log("measured in %.0f s" % (time.monotonic() - started))
    text = markdown(runs, args, date)
    print(text)
    out_md = Path(args.out) if args.out else (
        REPO / "bench" / "results" / date.strftime("%Y-%m-%d") / "before_after.md")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text)
    out_md.with_suffix(".json").write_text(json.dumps(
        {"date": date.isoformat(), "args": vars(args), "runs": runs}, indent=2))
    log("wrote %s and %s" % (out_md, out_md.with_suffix(".json").name))


if __name__ == "__main__":
    main()
