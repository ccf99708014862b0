#!/usr/bin/env python3
"""What durable tailing costs: file->file throughput with checkpoints on
(--data-dir) and off, and the time from a restart to the first delivered line.

Throughput (interleaved: rep 1 of every scenario, then rep 2, ...):

  dd bs=1M > OUT                       floor: read(2)+write(2), no scanning
  ringway file->file raw|json          no --data-dir (acks still kept, not saved)
  ringway file->file raw|json +ckpt    --data-dir (fresh each run), 1 s interval
  baseline file->file raw|json         --baseline BINARY, e.g. a build from
                                       before acks existed (optional)

Every ringway run must exit 0 with OUT identical in size to the input; with
--data-dir its checkpoint must end at the input's size.

Restart to first line: a 1M-line file is read to its end once with
--data-dir; then, per rep, one line is appended and ringway is started
again (tailing, same --data-dir): the time from spawn until that line is in
the output, which must hold exactly that line (the restart resumed at the
checkpoint, nothing replayed). `ringway --version` wall time is the
process-start floor beside it.

Python 3 standard library only; shares file_throughput.py's helpers.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import file_throughput as ft  # noqa: E402

REPO_ROOT = BENCH_DIR.parent


def log(msg):
    print("[checkpoint_cost] " + msg, file=sys.stderr, flush=True)


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def ringway_run(binary, data, fmt, out, data_dir, workdir, timeout):
    argv = [binary, "run", "--input", "file:%s,format=%s" % (data, fmt),
            "--output", "file:%s" % out, "--exit-on-eof", "--stats-interval", "0"]
    if data_dir:
        argv += ["--data-dir", str(data_dir)]
    run = ft.run_child(argv, workdir / "stdout", workdir / "stderr", timeout)
    if run["exit_code"] != 0:
        raise ft.BenchError("%s exited %s: %s" % (argv, run["exit_code"],
                                                   ft.tail(workdir / "stderr")))
    return run, argv


def throughput(args, data, size, workdir):
    scenarios = [("dd_file", "dd bs=1M > OUT (floor)", None, None, False)]
    for fmt in ("raw", "json"):
        scenarios.append(("off_%s" % fmt, "ringway file→file %s, no --data-dir" % fmt,
                          args.ringway, fmt, False))
        scenarios.append(("on_%s" % fmt, "ringway file→file %s, --data-dir" % fmt,
                          args.ringway, fmt, True))
        if args.baseline:
            scenarios.append(("base_%s" % fmt, "baseline build file→file %s" % fmt,
                              args.baseline, fmt, False))
    results = {key: {"label": label, "mb_s": [], "cpu_s": [], "rss_mib": []}
               for key, label, *_ in scenarios}
    out = workdir / "out"
    commands = {}
    for rep in range(args.reps):
        for key, label, binary, fmt, ckpt in scenarios:
            out.unlink(missing_ok=True)
            data_dir = workdir / "data-dir"
            shutil.rmtree(data_dir, ignore_errors=True)
            if binary is None:
                argv = ["dd", "if=%s" % data, "of=%s" % out, "bs=1M", "status=none"]
                run = ft.run_child(argv, workdir / "stdout", workdir / "stderr", args.timeout)
                if run["exit_code"] != 0:
                    raise ft.BenchError("dd failed: %s" % ft.tail(workdir / "stderr"))
            else:
                run, argv = ringway_run(binary, data, fmt, out, data_dir if ckpt else None,
                                        workdir, args.timeout)
            if out.stat().st_size != size:
                raise ft.BenchError("%s: output is %d bytes, input %d" %
                                    (label, out.stat().st_size, size))
            if ckpt:
                state = json.loads((data_dir / "checkpoints.json").read_text())
                offsets = [f["offset"] for files in state["inputs"].values() for f in files]
                if offsets != [size]:
                    raise ft.BenchError("%s: checkpoint %s, expected [%d]" % (label, offsets, size))
            commands[key] = " ".join(str(a) for a in argv)
            r = results[key]
            r["mb_s"].append(size / run["wall_s"] / 1e6)
            r["cpu_s"].append(run["cpu_s"])
            r["rss_mib"].append(run["rss_mib"])
            log("rep %d %-40s %8.0f MB/s" % (rep + 1, label, r["mb_s"][-1]))
    for key, r in results.items():
        r["command"] = commands[key]
        for field in ("mb_s", "cpu_s", "rss_mib"):
            r[field] = stats(r[field])
    return results


def restart_to_first_line(args, data, workdir):
    tail_file = workdir / "tail.log"
    shutil.copyfile(data, tail_file)
    data_dir = workdir / "restart-data-dir"
    shutil.rmtree(data_dir, ignore_errors=True)
    first_out = workdir / "first.out"
    first_out.unlink(missing_ok=True)
    # Read it all once, so the checkpoint sits at the end.
    argv = [args.ringway, "run", "--input", "file:%s" % tail_file, "--output",
            "file:%s" % first_out, "--data-dir", str(data_dir), "--exit-on-eof",
            "--stats-interval", "0"]
    subprocess.run(argv, check=True, stderr=subprocess.DEVNULL)
    first_out.unlink()
    firsts, floors = [], []
    for rep in range(args.reps):
        line = ('{"restart":%d,"msg":"first line after a restart"}\n' % rep).encode()
        with open(tail_file, "ab") as f:
            f.write(line)
        out = workdir / "restart.out"
        out.unlink(missing_ok=True)
        argv = [args.ringway, "run", "--input", "file:%s" % tail_file, "--output",
                "file:%s" % out, "--data-dir", str(data_dir), "--stats-interval", "0"]
        t0 = time.perf_counter()
        child = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        deadline = t0 + 30
        while time.perf_counter() < deadline:
            try:
                if out.stat().st_size >= len(line):
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.0005)
        elapsed = time.perf_counter() - t0
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        got = out.read_bytes()
        if got != line:
            raise ft.BenchError("restart %d delivered %r, expected exactly %r" % (rep, got[:200], line))
        firsts.append(elapsed * 1000)
        t0 = time.perf_counter()
        subprocess.run([args.ringway, "--version"], check=True, stdout=subprocess.DEVNULL)
        floors.append((time.perf_counter() - t0) * 1000)
        log("restart %d: first line after %.1f ms (process start floor %.1f ms)"
            % (rep + 1, firsts[-1], floors[-1]))
    return {"first_line_ms": stats(firsts), "version_ms": stats(floors),
            "file_bytes": tail_file.stat().st_size, "command": " ".join(str(a) for a in argv)}


def markdown(meta, lines, size, tp, restart, command):
    def spread(s, fmt="%.0f"):
        return (fmt + " (" + fmt + "–" + fmt + ")") % (s["median"], s["min"], s["max"])
    rows = ["# Checkpoint cost — %s" % meta["date"], "",
            "Machine: %s, %s cores, kernel %s; ringway %s." % (
                meta["cpu_model"], meta["nproc"], meta["kernel"], meta["git"]),
            "", "Command: `%s`" % command, "",
            "## file→file throughput, %d lines (%.0f MB), %d reps, median (min–max)" % (
                lines, size / 1e6, tp["dd_file"]["mb_s"]["n"]), "",
            "| scenario | MB/s | CPU s | peak RSS MiB |", "|---|---|---|---|"]
    for key, r in tp.items():
        rows.append("| %s | %s | %s | %s |" % (r["label"], spread(r["mb_s"]),
                                              spread(r["cpu_s"], "%.2f"),
                                              spread(r["rss_mib"], "%.1f")))
    rows += ["", "Cost of checkpointing, paired per rep (the runs of one rep are back to back), "
             "as the median (min–max) over reps of 1 − on/off; positive = slower:", "",
             "| format | compared with | throughput cost % | CPU-time cost % |", "|---|---|---|---|"]
    for fmt in ("raw", "json"):
        on = tp["on_%s" % fmt]
        for other_key, other_label in (("off_%s" % fmt, "no --data-dir"),
                                       ("base_%s" % fmt, "baseline build (no acks)")):
            if other_key not in tp:
                continue
            other = tp[other_key]
            slower = [100 * (1 - a / b) for a, b in zip(on["mb_s"]["values"], other["mb_s"]["values"])]
            cpu = [100 * (a / b - 1) for a, b in zip(on["cpu_s"]["values"], other["cpu_s"]["values"])]
            rows.append("| %s | %s | %s | %s |" % (fmt, other_label, spread(stats(slower), "%+.1f"),
                                                  spread(stats(cpu), "%+.1f")))
    rows += ["", "## Restart to first delivered line", "",
             "A %.0f MB file, checkpointed at its end; one line appended; ringway started again." % (
                 restart["file_bytes"] / 1e6), "",
             "| measure | ms, median (min–max) |", "|---|---|",
             "| spawn → the new line is in the output | %s |" % spread(restart["first_line_ms"], "%.1f"),
             "| `ringway --version` (process start floor) | %s |" % spread(restart["version_ms"], "%.1f"),
             ""]
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in the data file [1000000]")
    ap.add_argument("--reps", type=int, default=7, help="runs per scenario [7]")
    ap.add_argument("--workdir", default="/tmp/ringway-bench", help="data and scratch [/tmp/ringway-bench]")
    ap.add_argument("--ringway", default=str(REPO_ROOT / "target" / "release" / "ringway"))
    ap.add_argument("--baseline", help="another ringway binary to compare (e.g. before acks)")
    ap.add_argument("--results-dir", help="default bench/results/<today>")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    ft.become_subreaper()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data, size = ft.ensure_data(args.lines, workdir, False)
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)
    tp = throughput(args, data, size, workdir)
    restart = restart_to_first_line(args, data, workdir)
    meta = ft.machine_info()
    meta["date"] = datetime.date.today().isoformat()
    meta["git"] = ft.git_revision()
    command = "python3 bench/checkpoint_cost.py " + " ".join(sys.argv[1:])
    results_dir = Path(args.results_dir or REPO_ROOT / "bench" / "results" / meta["date"])
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "checkpoint.json").write_text(json.dumps(
        {"meta": meta, "command": command, "lines": args.lines, "bytes": size,
         "throughput": tp, "restart": restart}, indent=2) + "\n")
    text = markdown(meta, args.lines, size, tp, restart, command)
    (results_dir / "checkpoint.md").write_text(text)
    print(text)


if __name__ == "__main__":
    try:
        main()
    except ft.BenchError as error:
        print("checkpoint_cost: " + str(error), file=sys.stderr)
        sys.exit(1)
