"""What the benchmark harnesses in bench/ share: progress lines, building,
the load generator (`loadgen`, bench/loadgen/), loopback ports, a process's
CPU and memory from /proc, stopping a process with its rusage, a UDP
socket's queue and drops, the scenario runner for a server measured under a
sender (`start_floor`, `start_ringway`, `measure_server`, `ringway_summary`),
the "median (min–max)" cells of the Markdown tables, and a CA-signed
certificate for the TLS scenarios (`make_certificates`, with openssl). Python 3 standard
library only; the scripts import it from their own directory.
"""

import json
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


def loadgen_path():
    """The load generator example (bench/loadgen/), built next to ringway."""
    return target_dir() / "release" / "examples" / "loadgen"


def build(floor_only, example="loadgen"):
    """cargo build --release of ringway (unless floor_only) and `example`."""
    commands = [] if floor_only else [["cargo", "build", "--release"]]
    commands.append(["cargo", "build", "--release", "--example", example])
    for command in commands:
        log("$ " + " ".join(command))
        if subprocess.run(command, cwd=REPO).returncode != 0:
            raise SystemExit("build failed: %s" % " ".join(command))


def make_certificates(directory):
    """A CA and a server certificate for "localhost" signed by it (P-256,
    2 days), made with `openssl` in directory: {"ca", "cert", "key"} paths.
    For the TLS scenarios: a client trusts "ca", a server serves "cert"
    with "key"."""
    directory = Path(directory)
    paths = {name: directory / ("%s.pem" % name) for name in ("ca", "ca-key", "cert", "key")}
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    commands = [
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=ringway bench CA",
         "-keyout", paths["ca-key"], "-out", paths["ca"]],
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=localhost", "-keyout", paths["key"], "-out", directory / "server.csr"],
        ["openssl", "x509", "-req", "-in", directory / "server.csr", "-CA", paths["ca"],
         "-CAkey", paths["ca-key"], "-CAcreateserial", "-days", "2", "-extfile", extensions,
         "-out", paths["cert"]],
    ]
    for command in commands:
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit("openssl failed (%s): %s" % (" ".join(map(str, command[:2])),
                                                          done.stderr.strip()))
    return {"ca": paths["ca"], "cert": paths["cert"], "key": paths["key"]}


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


def proc_threads_cpu_s(pid, prefix):
    """utime + stime of the threads of a live process whose name starts
    with `prefix` (/proc/PID/task/TID/stat), in seconds."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name.startswith(prefix):
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


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


def wait_udp_bound(port, process=None, timeout_s=20):
    """Until something binds UDP HOST:port (True), or the process exits or
    timeout_s passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if udp_socket_row(port) is not None:
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


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


def write_results(results_dir, stem, table, runs):
    """STEM.md (the table) and STEM.json (every run) in results_dir, when
    one is given."""
    if not results_dir:
        return
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, stem + ".md"), "w") as f:
        f.write(table)
    with open(os.path.join(results_dir, stem + ".json"), "w") as f:
        json.dump(runs, f, indent=1)


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


# --------------------------------------------------------------------------
# The scenario runner: a server (a loadgen floor or ringway) measured while
# a loadgen sender runs against it.
# --------------------------------------------------------------------------

def run_sender(argv, timeout_s, what):
    """Runs a loadgen sender to its end: (argv, its last stdout line as
    JSON, with "exit_code" and, on failure, "error" from its stderr)."""
    done = subprocess.run([str(part) for part in argv], capture_output=True, text=True,
                          timeout=timeout_s)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("%s printed nothing (exit %d): %s"
                           % (what, done.returncode, done.stderr.strip()))
    result = json.loads(lines[-1])
    result["exit_code"] = done.returncode
    if done.returncode != 0:
        result["error"] = done.stderr.strip()[-2000:]
    return argv, result


def start_floor(argv, what):
    """Starts a loadgen floor: (process, port from its `ready ADDR:PORT` line)."""
    process = subprocess.Popen([str(part) for part in argv], stdout=subprocess.PIPE, text=True)
    ready = process.stdout.readline()
    if not ready.startswith("ready "):
        process.kill()
        process.wait()
        raise RuntimeError("%s did not start: %r" % (what, ready))
    return process, int(ready.split()[1].rsplit(":", 1)[1])


def floor_result(process, code):
    """A stopped floor's JSON line ({} unless it exited 0)."""
    return json.loads(process.stdout.read().strip().splitlines()[-1]) if code == 0 else {}


def start_ringway(argv, stderr_path, port=None, timeout_s=20.0, probe_after_s=5.0):
    """Starts ringway with stderr to stderr_path and waits until it says
    `listening on HOST:PORT` (any port when `port` is None; after
    probe_after_s a connect() to `port` also counts). Returns (process,
    port)."""
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([str(part) for part in argv], stdout=subprocess.DEVNULL,
                                   stderr=stderr)
    started = time.monotonic()
    try:
        while time.monotonic() < started + timeout_s:
            if process.poll() is not None:
                raise RuntimeError("ringway exited %d at start: %s"
                                   % (process.returncode, Path(stderr_path).read_text().strip()))
            for line in Path(stderr_path).read_text(errors="replace").splitlines():
                if "listening on " in line:
                    address = line.split("listening on ", 1)[1].split()[0]
                    found = int(address.rsplit(":", 1)[1])
                    if port is None or found == port:
                        return process, found
            if port is not None and time.monotonic() > started + probe_after_s:
                try:
                    with socket.create_connection((HOST, port), timeout=0.5):
                        return process, port
                except OSError:
                    pass
            time.sleep(0.01)
        raise RuntimeError("ringway printed no 'listening on' line within %.0f s" % timeout_s)
    except BaseException:
        process.kill()
        process.wait()
        raise


def measure_server(process, send, settle_s, stop_timeout_s):
    """Runs send() (→ (argv, result)) against a started server, samples the
    server's CPU over the sending window plus settle_s and its peak RSS,
    then stops it. Returns a dict: sender_argv, result, cpu_s (the window),
    rss_mib, code (None: killed) and cpu_total_s (its whole run)."""
    try:
        cpu_before = proc_cpu_s(process.pid)
        sender_argv, result = send()
        time.sleep(settle_s)
        cpu_window = proc_cpu_s(process.pid) - cpu_before
        rss_mib = proc_hwm_mib(process.pid)
    except BaseException:
        process.kill()
        process.wait()
        raise
    code, cpu_total_s = stop(process, stop_timeout_s)
    return {"sender_argv": sender_argv, "result": result, "cpu_s": cpu_window,
            "rss_mib": rss_mib, "code": code, "cpu_total_s": cpu_total_s}


def ringway_summary(code, summary_path, stderr_path):
    """A stopped ringway's summary JSON ({} when unreadable) and the
    failures: a non-zero exit, no summary."""
    failures = []
    summary = {}
    if code != 0:
        failures.append("ringway exited %s after SIGTERM: %s"
                        % (code, Path(stderr_path).read_text().strip()[-2000:]))
    try:
        summary = json.loads(Path(summary_path).read_text())
    except (OSError, ValueError) as error:
        failures.append("no readable summary %s: %s" % (summary_path, error))
    return summary, failures
