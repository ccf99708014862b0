#!/usr/bin/env python3
"""File-throughput benchmark: ringway file input vs. a `cat` floor.

For each data size it generates a JSON-lines file once (bench/gen_lines.py),
warms the page cache with one untimed `cat FILE > /dev/null`, then runs every
scenario --reps times, interleaved (rep 1 of every scenario, then rep 2, ...):

  cat > /dev/null          floor for file->null
  cat > OUT                floor for file->file
  ringway file->null json  --input file:FILE,format=json --output null
  ringway file->null raw   --input file:FILE,format=raw  --output null
  ringway file->file json  --input file:FILE,format=json --output file:OUT

Each run is timed (wall clock) and its own child's rusage is read with
os.wait4 (user+sys CPU, peak RSS). Every ringway run is verified (exit 0,
summary input/output records == N, OUT size == FILE size); any mismatch
aborts the benchmark with the command and its output.

Python 3 standard library only. Run `file_throughput.py --help` for flags.
"""

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
GEN_LINES = BENCH_DIR / "gen_lines.py"
EST_BYTES_PER_LINE = 215          # for the up-front disk-space check
SEED = 42


class BenchError(Exception):
    """A failed run or verification; aborts the benchmark."""


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

class Scenario:
    def __init__(self, key, label, floor=None, fmt=None, output=None):
        self.key = key          # stable id used in file.json
        self.label = label      # human-readable name for the table
        self.floor = floor      # key of the floor scenario to compare with
        self.fmt = fmt          # ringway input format (None: a cat floor)
        self.output = output    # "null" | "file" | None (cat floors)

    @property
    def is_ringway(self):
        return self.fmt is not None


SCENARIOS = [
    Scenario("cat_null", "cat > /dev/null (floor)"),
    Scenario("cat_file", "cat > OUT (floor)"),
    # read(2)+write(2) through a 1 MiB user buffer: the floor for any
    # user-space pipeline that writes a file (GNU cat uses copy_file_range,
    # an in-kernel copy no pipeline that looks at the bytes can use).
    Scenario("dd_file", "dd bs=1M > OUT (floor)"),
    # simd-json alone checking every line on one core, the file already in
    # memory: the floor for format=json (bench/json_floor.rs). Its time is
    # the check loop's, as the program reports it, not the process's.
    Scenario("json_floor", "simd-json alone, 1 core (floor)"),
    Scenario("ringway_null_json", "ringway file→null json", "json_floor", "json", "null"),
    Scenario("ringway_null_raw", "ringway file→null raw", "cat_null", "raw", "null"),
    Scenario("ringway_file_json", "ringway file→file json", "dd_file", "json", "file"),
]


# --------------------------------------------------------------------------
# Machine / environment
# --------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "no commits"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ringway_version(ringway):
    try:
        out = subprocess.run([ringway, "--version"], capture_output=True,
                             text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def machine_info():
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "mem_total_gib": mem_total_gib(),
    }


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_data(lines, workdir, regen):
    """Generate workdir/lines-N.jsonl unless an identical one is cached."""
    path = workdir / ("lines-%d.jsonl" % lines)
    meta_path = path.with_suffix(".meta.json")
    want = {"lines": lines, "seed": SEED, "generator_sha256": file_sha256(GEN_LINES)}
    if not regen and path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if ({k: meta.get(k) for k in want} == want
                    and meta.get("bytes") == path.stat().st_size):
                log("data: reusing %s (%d bytes)" % (path, meta["bytes"]))
                return path, meta["bytes"]
        except (OSError, ValueError):
            pass
    log("data: generating %d lines into %s ..." % (lines, path))
    meta_path.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(GEN_LINES), "--lines", str(lines),
                    "--out", str(path), "--seed", str(SEED), "--check"], check=True)
    size = path.stat().st_size
    meta_path.write_text(json.dumps(dict(want, bytes=size)) + "\n")
    return path, size


# --------------------------------------------------------------------------
# Running one child
# --------------------------------------------------------------------------

# The child is started by a throwaway /bin/sh, not by this Python process:
# ru_maxrss counts the memory image a process had *before* exec, so a child
# spawned straight from Python would report Python's RSS (~15+ MiB) as its
# floor. sh forks the child from its own tiny image and exits; as a child
# subreaper we inherit the orphan and can wait4() it for its own rusage.
LAUNCHER = ('exec <"$1" >"$2" 2>"$3"; shift 3; '
            '"$@" 3>&- & echo $! >&3')
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def run_child(argv, stdout_path, stderr_path, timeout_s):
    """Run argv with stdout/stderr redirected to files; wait4 for it.

    Returns wall seconds, CPU seconds (user+sys) and peak RSS of that child
    alone, plus its exit code (negative = killed by that signal). Wall time
    includes starting the /bin/sh launcher (~1 ms).
    """
    rfd, wfd = os.pipe()
    t0 = time.perf_counter()
    try:
        sh = os.posix_spawn("/bin/sh", ["sh", "-c", LAUNCHER, "sh", os.devnull,
                                        str(stdout_path), str(stderr_path)] + list(argv),
                            os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, wfd, 3)])
    finally:
        os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        pid_line = r.readline()
    _, sh_status = os.waitpid(sh, 0)
    if os.waitstatus_to_exitcode(sh_status) != 0 or not pid_line.strip():
        raise BenchError("could not launch %s (stderr: %s)" % (argv, tail(stderr_path)))
    pid = int(pid_line)
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        os.kill(pid, signal.SIGKILL)

    watchdog = threading.Timer(timeout_s, kill)
    watchdog.start()
    try:
        _, status, ru = os.wait4(pid, 0)
    finally:
        watchdog.cancel()
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "rss_mib": ru.ru_maxrss / 1024.0,      # Linux reports KiB
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out.is_set(),
    }


def tail(path, limit=2000):
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    text = data[-limit:].decode("utf-8", "replace")
    return ("…" if len(data) > limit else "") + text


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------

def ringway_argv(ringway, scen, data, out, summary, extra):
    output = "null" if scen.output == "null" else "file:%s" % out
    return [ringway, "run",
            "--input", "file:%s,format=%s" % (data, scen.fmt),
            "--output", output,
            "--exit-on-eof", "--stats-interval", "0",
            "--summary-json", str(summary)] + extra


def verify_ringway(run, scen, lines, size, out, summary_path, cmd_str, stderr_path):
    """Raise BenchError unless the run did exactly what it should."""
    problems, warnings = [], []
    fail = problems.append

    if run["exit_code"] != 0:
        fail("exit code %d (expected 0)%s" % (
            run["exit_code"], " -- killed by --timeout" if run["timed_out"] else ""))
    summary = None
    try:
        summary = json.loads(Path(summary_path).read_text())
    except (OSError, ValueError) as e:
        fail("cannot read --summary-json %s: %s" % (summary_path, e))
    if summary is not None:
        inputs, outputs = summary.get("inputs") or [], summary.get("outputs") or []
        if len(inputs) != 1 or len(outputs) != 1:
            fail("summary has %d inputs / %d outputs (expected 1 / 1)"
                 % (len(inputs), len(outputs)))
        else:
            inp, outp = inputs[0], outputs[0]
            if inp.get("records") != lines:
                fail("input records = %r (expected %d)" % (inp.get("records"), lines))
            if outp.get("records") != lines:
                fail("output records = %r (expected %d)" % (outp.get("records"), lines))
            for where, obj, keys in (("input", inp, ("invalid", "truncated", "read_errors")),
                                     ("output", outp, ("write_errors",))):
                for k in keys:
                    if k not in obj:
                        warnings.append("summary %s lacks %r" % (where, k))
                    elif obj[k] != 0:
                        fail("%s %s = %r (expected 0 for this data)" % (where, k, obj[k]))
            for where, obj in (("input", inp), ("output", outp)):
                if obj.get("bytes") != size:
                    warnings.append("summary %s bytes = %r, file has %d"
                                    % (where, obj.get("bytes"), size))
            run["ringway_elapsed_s"] = summary.get("elapsed_s")
    if scen.output == "file":
        got = out.stat().st_size if out.exists() else None
        if got != size:
            fail("OUT size = %r bytes (expected %d, the input size)" % (got, size))
    err = tail(stderr_path)
    # ringway ends with one "ringway: done in ..." line; anything else is news.
    other = [l for l in err.splitlines() if l.strip() and not l.startswith("ringway: done")]
    if other and not problems:
        warnings.append("unexpected stderr: %s" % other[0][:200])
    if problems:
        raise BenchError(
            "ringway run failed verification (%s):\n  %s\n  command: %s\n"
            "  summary: %s\n  stderr (tail):\n%s"
            % (scen.label, "\n  ".join(problems), cmd_str,
               json.dumps(summary) if summary is not None else "-",
               "\n".join("    " + l for l in err.splitlines()) or "    (empty)"))
    return warnings


def run_scenario(scen, args, data, lines, size, workdir):
    out = workdir / "out.data"
    summary = workdir / "summary.json"
    stdout_path, stderr_path = workdir / "child.stdout", workdir / "child.stderr"
    for p in (out, summary):
        p.unlink(missing_ok=True)
    os.sync()    # untimed: don't let earlier writeback bleed into this run

    if scen.is_ringway:
        argv = ringway_argv(args.ringway, scen, data, out, summary, args.extra)
        child_stdout = stdout_path
    elif scen.key == "json_floor":
        argv = [str(json_floor_binary(args.ringway)), str(data), "1"]
        child_stdout = stdout_path
    elif scen.key == "dd_file":
        argv = ["dd", "if=%s" % data, "of=%s" % out, "bs=1M", "status=none"]
        child_stdout = os.devnull
    else:
        argv = ["cat", str(data)]
        child_stdout = os.devnull if scen.key == "cat_null" else out
    cmd_str = " ".join(shlex.quote(a) for a in argv)
    if child_stdout != stdout_path:
        cmd_str += " > " + shlex.quote(str(child_stdout))

    run = run_child(argv, child_stdout, stderr_path, args.timeout)
    try:
        if scen.is_ringway:
            run["warnings"] = verify_ringway(run, scen, lines, size, out, summary,
                                             cmd_str, stderr_path)
            if stdout_path.stat().st_size:
                run["warnings"].append("ringway wrote %d bytes to stdout"
                                       % stdout_path.stat().st_size)
        elif scen.key == "json_floor":
            if run["exit_code"] != 0:
                raise BenchError("%s exited %d: %s" % (cmd_str, run["exit_code"], tail(stderr_path)))
            floor = json.loads(stdout_path.read_text())
            if floor["lines"] != lines or floor["invalid"] != 0:
                raise BenchError("%s checked %d lines (%d invalid), expected %d valid"
                                 % (cmd_str, floor["lines"], floor["invalid"], lines))
            # The check loop alone: reading the file into memory is not timed.
            run["wall_s"] = floor["per_line_median_s"]
            run["cpu_s"] = floor["per_line_median_s"]
            run["warnings"] = []
        else:
            if run["exit_code"] != 0:
                raise BenchError("%s exited %d%s: %s" % (
                    cmd_str, run["exit_code"], " (killed by --timeout)" if run["timed_out"] else "",
                    tail(stderr_path)))
            if scen.key in ("cat_file", "dd_file") and out.stat().st_size != size:
                raise BenchError("%s wrote %d bytes, expected %d"
                                 % (cmd_str, out.stat().st_size, size))
            run["warnings"] = []
    finally:
        for p in (out, summary, stdout_path, stderr_path):
            p.unlink(missing_ok=True)
    run["command"] = cmd_str
    run["lines_per_s"] = lines / run["wall_s"]
    run["mb_per_s"] = size / 1e6 / run["wall_s"]
    run["cpu_s_per_gb"] = run["cpu_s"] / (size / 1e9)
    return run


def json_floor_binary(ringway):
    """bench/json_floor.rs, built next to the ringway binary."""
    return Path(ringway).parent / "examples" / "json_floor"


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def bench_size(lines, args, workdir):
    data, size = ensure_data(lines, workdir, args.regen)
    log("warm-up: cat %s > /dev/null (untimed, fills the page cache)" % data)
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)

    scenarios = [s for s in SCENARIOS
                 if not ((s.is_ringway or s.key == "json_floor") and args.floor_only)]
    runs = {s.key: [] for s in scenarios}
    for rep in range(1, args.reps + 1):
        for scen in scenarios:
            run = run_scenario(scen, args, data, lines, size, workdir)
            runs[scen.key].append(run)
            log("  N=%d rep %d/%d %-26s %7.3fs  %8.1f MB/s  cpu %6.3fs  rss %7.1f MiB"
                % (lines, rep, args.reps, scen.label, run["wall_s"], run["mb_per_s"],
                   run["cpu_s"], run["rss_mib"]))
            for w in run["warnings"]:
                log("    warning: " + w)

    results = []
    for scen in scenarios:
        rs = runs[scen.key]
        entry = {
            "scenario": scen.key,
            "label": scen.label,
            "lines": lines,
            "bytes": size,
            "reps": len(rs),
            "command": rs[0]["command"],
            "floor": scen.floor,
        }
        for metric in ("wall_s", "lines_per_s", "mb_per_s", "cpu_s", "cpu_s_per_gb", "rss_mib"):
            entry[metric] = summarize([r[metric] for r in rs])
        entry["runs"] = rs
        results.append(entry)
    by_key = {e["scenario"]: e for e in results}
    for e in results:
        floor = by_key.get(e["floor"]) if e["floor"] else None
        e["vs_floor"] = (e["mb_per_s"]["median"] / floor["mb_per_s"]["median"]
                         if floor else None)
    return results


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def fmt_spread(s, fmt, scale=1.0, suffix=""):
    med, lo, hi = (s["median"] / scale, s["min"] / scale, s["max"] / scale)
    if fmt % lo == fmt % hi:
        return (fmt % med) + suffix
    return "%s%s (%s–%s)" % (fmt % med, suffix, fmt % lo, fmt % hi)


def markdown_table(results):
    head = ("| lines | scenario | lines/s | MB/s | CPU s/GB | peak RSS MiB | vs floor |\n"
            "|---:|---|---:|---:|---:|---:|---:|\n")
    rows = []
    for e in results:
        rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(e["lines"]),
            e["label"],
            fmt_spread(e["lines_per_s"], "%.2f", 1e6, "M"),
            fmt_spread(e["mb_per_s"], "%.0f"),
            fmt_spread(e["cpu_s_per_gb"], "%.2f"),
            fmt_spread(e["rss_mib"], "%.1f"),
            "%.2f×" % e["vs_floor"] if e["vs_floor"] is not None else "—",
        ))
    return head + "\n".join(rows) + "\n"


def header_lines(meta):
    m = meta["machine"]
    return [
        "# ringway file-throughput benchmark",
        "",
        "- date (UTC): %s" % meta["date_utc"],
        "- machine: nproc=%d, kernel %s, CPU %s, RAM %s GiB"
        % (m["nproc"], m["kernel"], m["cpu_model"], m["mem_total_gib"]),
        "- ringway: `%s` (%s), repo revision %s"
        % (meta["ringway"], meta["ringway_version"] or "version unknown", meta["git_revision"]),
        "- extra ringway args: `%s`" % (meta["ringway_args"] or "(none)"),
        "- reps per scenario: %d (interleaved); table shows median (min–max)" % meta["reps"],
        "- page cache: NOT dropped; one untimed `cat FILE > /dev/null` warm-up per size, "
        "so every scenario reads from page cache. OUT is not fsynced (page-cache writes).",
        "- data: `bench/gen_lines.py --seed %d`, JSON lines of ~210 B; MB = 1e6 bytes"
        % SEED,
        "",
    ]


def footnotes():
    return ("\nlines/s and MB/s: input lines (bytes) / wall time of the process. "
            "CPU s/GB: user+sys CPU of the process per 1e9 input bytes. "
            "peak RSS: ru_maxrss of the process. simd-json alone: bench/json_floor.rs "
            "checking every line on one core with the file already in memory; its "
            "time is the check loop only. vs floor: median MB/s over the median MB/s "
            "of the matching floor (file→null json vs simd-json alone, file→null raw "
            "vs `cat > /dev/null`, file→file json vs `dd bs=1M`, the read+write floor; "
            "`cat > OUT` copies inside the kernel with copy_file_range).\n")


def warnings_section(results):
    lines = []
    for e in results:
        seen = []
        for r in e["runs"]:
            for w in r["warnings"]:
                if w not in seen:
                    seen.append(w)
        lines += ["- %s, %s: %s" % ("{:,}".format(e["lines"]), e["label"], w) for w in seen]
    return ("\n## Warnings\n\n" + "\n".join(lines) + "\n") if lines else ""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_count(text):
    text = text.strip().replace("_", "")
    mult = {"k": 10**3, "K": 10**3, "m": 10**6, "M": 10**6}.get(text[-1:], 1)
    if mult != 1:
        text = text[:-1]
    n = int(float(text) * mult)
    if n <= 0:
        raise ValueError("line count must be > 0")
    return n


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="ringway file-throughput benchmark (see bench/README.md)")
    ap.add_argument("--lines", help="comma-separated line counts [1000000,10000000]; "
                    "k/M suffixes allowed")
    ap.add_argument("--reps", type=int, help="runs per scenario [3]")
    ap.add_argument("--workdir", default="/tmp/ringway-bench",
                    help="data files and scratch output [/tmp/ringway-bench]")
    ap.add_argument("--results-dir", help="where file.json/file.md go "
                    "[bench/results/<UTC date>/; with --quick: WORKDIR/results-quick/]")
    ap.add_argument("--ringway", default=str(REPO_ROOT / "target" / "release" / "ringway"),
                    help="ringway binary [REPO/target/release/ringway]")
    ap.add_argument("--ringway-args", default="",
                    help='extra flags appended to every ringway run, e.g. "--read-buf 4MiB"')
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 100000 lines, 1 rep (unless --lines/--reps given)")
    ap.add_argument("--regen", action="store_true", help="regenerate data files even if cached")
    ap.add_argument("--timeout", type=float, default=900,
                    help="kill a single run after this many seconds [900]")
    ap.add_argument("--floor-only", action="store_true",
                    help="run only the cat floors (no ringway binary needed)")
    args = ap.parse_args(argv)

    try:
        default_lines = "100000" if args.quick else "1000000,10000000"
        args.lines = [parse_count(x) for x in (args.lines or default_lines).split(",") if x.strip()]
    except ValueError as e:
        ap.error("--lines: %s" % e)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    args.workdir = Path(args.workdir).resolve()
    if "," in str(args.workdir):
        ap.error("--workdir must not contain ',' (it separates ringway input spec options)")
    if args.results_dir is None:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        args.results_dir = (args.workdir / "results-quick" if args.quick
                            else BENCH_DIR / "results" / date)
    args.results_dir = Path(args.results_dir)
    args.extra = shlex.split(args.ringway_args)
    if not args.floor_only and not (os.path.isfile(args.ringway)
                                    and os.access(args.ringway, os.X_OK)):
        ap.error("ringway binary not found or not executable: %s "
                 "(cargo build --release, or pass --ringway PATH)" % args.ringway)
    if not args.floor_only and not os.access(json_floor_binary(args.ringway), os.X_OK):
        ap.error("%s not found (cargo build --release --example json_floor)"
                 % json_floor_binary(args.ringway))
    return args


def main(argv=None):
    args = parse_args(argv)
    become_subreaper()
    args.workdir.mkdir(parents=True, exist_ok=True)

    # Worst case on disk: the largest data file plus one OUT copy of it.
    need = 2 * max(args.lines) * EST_BYTES_PER_LINE
    free = shutil.disk_usage(args.workdir).free
    if free < need:
        log("error: %s has %.1f GB free, need about %.1f GB"
            % (args.workdir, free / 1e9, need / 1e9))
        return 1

    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "ringway": args.ringway,
        "ringway_version": None if args.floor_only else ringway_version(args.ringway),
        "ringway_args": args.ringway_args,
        "git_revision": git_revision(),
        "reps": args.reps,
        "lines": args.lines,
        "workdir": str(args.workdir),
        "page_cache": "warm: one untimed `cat FILE > /dev/null` per size; caches not dropped",
        "seed": SEED,
    }
    header = header_lines(meta)
    print("\n".join(header), flush=True)

    results = []
    try:
        for lines in args.lines:
            results.extend(bench_size(lines, args, args.workdir))
    except BenchError as e:
        log("\nBENCHMARK FAILED: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130

    table = markdown_table(results) + footnotes() + warnings_section(results)
    print(table, end="", flush=True)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "file.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, ensure_ascii=False) + "\n")
    (args.results_dir / "file.md").write_text("\n".join(header) + "\n" + table)
    log("wrote %s and %s" % (args.results_dir / "file.json", args.results_dir / "file.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
