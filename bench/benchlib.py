"""What the benchmark harnesses in bench/ share: progress lines, building,
loopback ports, a process's CPU and memory from /proc, stopping a process
with its rusage, a UDP socket's queue and drops, and the "median (min–max)"
cells of the Markdown tables. Python 3 standard library only; the scripts
import it from their own directory.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(message, file=sys.stderr, flush=True)


def target_dir():
    """cargo's target directory: $CARGO_TARGET_DIR (relative to the repo) or target/."""
    configured = os.environ.get("CARGO_TARGET_DIR")
    if not configured:
        return REPO / "target"
    path = Path(configured)
    return path if path.is_absolute() else REPO / path


def build(example, floor_only):
    """cargo build --release of ringway (unless floor_only) and `example`."""
    commands = [] if floor_only else [["cargo", "build", "--release"]]
    commands.append(["cargo", "build", "--release", "--example", example])
    for command in commands:
        log("$ " + " ".join(command))
        if subprocess.run(command, cwd=REPO).returncode != 0:
            raise SystemExit("build failed: %s" % " ".join(command))


def free_port(kind=socket.SOCK_STREAM):
    """A port on HOST that nothing is bound to right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def proc_cpu_s(pid):
    """utime + stime of a live process, all its threads, in seconds
    (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    """A kB field of /proc/PID/status (VmHWM, VmRSS, …; Threads is a count)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_hwm_mib(pid):
    """Peak resident memory of a live process, MiB."""
    return proc_status_kib(pid, "VmHWM") / 1024


def stop(process, timeout_s, kill_group=False):
    """SIGTERM, then reap with wait4: (exit code, CPU seconds of the whole
    run). SIGKILL (the process group with kill_group) after timeout_s; the
    exit code is then None."""
    # os.kill, not Popen.send_signal: that polls first, and would reap an
    # exited process (and its rusage) before wait4 can. Unreaped, the pid
    # cannot have been reused.
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            if kill_group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return None, usage.ru_utime + usage.ru_stime
        time.sleep(0.01)


def udp_socket_row(port):
    """(bytes queued, drops) of the UDP socket bound to HOST:port, from
    /proc/net/udp, or None when nothing is bound there."""
    wanted = "%08X:%04X" % (0x0100007F, port)
    with open("/proc/net/udp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == wanted:
                return int(fields[4].split(":")[1], 16), int(fields[12])
    return None


def cell(runs, key, fmt):
    """"median (min–max)" of run[key] over runs, or just the median when
    the spread does not show in fmt."""
    values = [run[key] for run in runs]
    mid, low, high = statistics.median(values), min(values), max(values)
    if len(values) > 1 and fmt % low != fmt % high:
        return "%s (%s–%s)" % (fmt % mid, fmt % low, fmt % high)
    return fmt % mid


def ratio_cell(numerators, denominators):
    """Median (min–max) of per-rep ratios, paired by rep."""
    ratios = [n / d for n, d in zip(numerators, denominators) if d]
    if not ratios:
        return "–"
    mid, low, high = statistics.median(ratios), min(ratios), max(ratios)
    if len(ratios) > 1 and "%.2f" % low != "%.2f" % high:
        return "%.2f× (%.2f–%.2f)" % (mid, low, high)
    return "%.2f×" % mid


def git_describe():
    """The short commit, marked when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"
