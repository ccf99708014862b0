#!/usr/bin/env python3
"""UDP benchmark: ringway's udp input against the machine's floors.

Scenarios, each repeated --reps times, medians reported:
  probe     loadgen udp send --max-rate-probe: the sender's own unthrottled rate
  capacity  a socket pre-filled with --count datagrams of --size bytes, then
            drained: the bare recvmmsg loop (loadgen udp floor --prefill) vs ringway
            (udp -> null; held with SIGSTOP while the socket fills, timed from
            SIGCONT until the socket's queue in /proc/net/udp is empty)
  live      loadgen udp send at fractions of its own max rate -> ringway -> null
            for --live-seconds: received, kernel drops, CPU-seconds per
            million datagrams (ringway's own rusage)

Every ringway run is checked: records + kernel_drops == datagrams sent.
Python 3 standard library only; needs target/release/ringway and the
example loadgen (cargo build --release --example loadgen).
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import (HOST, REPO, free_port, loadgen_path, log, target_dir, udp_socket_row,
                      wait_udp_bound)

RELEASE = target_dir() / "release"
RINGWAY = RELEASE / "ringway"
LOADGEN = loadgen_path()
BLASTER = [str(LOADGEN), "udp", "send"]
FLOOR = [str(LOADGEN), "udp", "floor"]


def wait_bound(port):
    if not wait_udp_bound(port):
        raise SystemExit("nothing bound %s:%d" % (HOST, port))


def blast(port, count, rate, size, duration=None):
    argv = BLASTER + ["--to", "%s:%d" % (HOST, port), "--count", str(count),
            "--rate", str(int(rate)), "--size", str(size)]
    if duration:
        argv += ["--duration", str(duration)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("other_errors", 0):
        raise SystemExit("loadgen udp send: %d send errors other than ENOBUFS/EAGAIN (nothing bound?)"
                         % result["other_errors"])
    return result


def probe_rate(seconds):
    done = subprocess.run(BLASTER + ["--max-rate-probe", str(seconds)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["rate_per_s"]


def blaster_into_floor(seconds, size):
    """The blaster unthrottled into a live bare receiver: the most it can
    push into a socket that is being read (on loopback the receive path runs
    on the sender's CPU, so this is well below the sink probe)."""
    port = free_port(socket.SOCK_DGRAM)
    floor = subprocess.Popen(FLOOR + ["--bind", "%s:%d" % (HOST, port), "--idle-exit", "500ms"],
                             stdout=subprocess.PIPE, text=True)
    ready = floor.stdout.readline()
    if not ready.startswith("ready"):
        raise SystemExit("loadgen udp floor did not start: %r" % ready)
    sender = blast(port, 0, 0, size, duration=seconds)
    result = json.loads(floor.stdout.read().strip().splitlines()[-1])
    floor.wait()
    if result["received"] + result["kernel_drops"] != sender["sent"]:
        raise SystemExit("floor: received %d + drops %d != sent %d"
                         % (result["received"], result["kernel_drops"], sender["sent"]))
    return {"rate_per_s": sender["rate_per_s"], "sent": sender["sent"],
            "floor_kernel_drops": result["kernel_drops"]}


def floor_drain(count, size):
    port = free_port(socket.SOCK_DGRAM)
    floor = subprocess.Popen(FLOOR + ["--bind", "%s:%d" % (HOST, port), "--rcvbuf", "1GiB",
                              "--prefill", str(count)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = floor.stdout.readline()
    if not ready.startswith("ready"):
        raise SystemExit("loadgen udp floor did not start: %r" % ready)
    sent = blast(port, count, 0, size)["sent"]
    floor.stdin.write("go\n")
    floor.stdin.close()
    result = json.loads(floor.stdout.read().strip().splitlines()[-1])
    floor.wait()
    return {"sent": sent, "received": result["received"], "kernel_drops": result["kernel_drops"],
            "drain_s": result["elapsed_s"], "rate_per_s": result["rate_per_s"]}


def start_ringway(port, summary, rcvbuf=None):
    spec = "udp:%s:%d" % (HOST, port) + (",rcvbuf=%s" % rcvbuf if rcvbuf else "")
    argv = [str(RINGWAY), "run", "--input", spec,
            "--output", "null", "--stats-interval", "0", "--summary-json", str(summary)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_bound(port)
    return process


def stop_ringway(process, summary):
    hwm_kib = 0
    with open("/proc/%d/status" % process.pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                hwm_kib = int(line.split()[1])
    process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit("ringway exited %d: %s" % (process.returncode, process.stderr.read()))
    data = json.loads(Path(summary).read_text())["inputs"][0]
    return data, usage.ru_utime + usage.ru_stime, hwm_kib / 1024


def wait_queue_empty(port, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (udp_socket_row(port) or (None, None))[0] == 0:
            return time.monotonic()
        time.sleep(0.0005)
    raise SystemExit("socket %d never drained" % port)


def ringway_drain(count, size, workdir):
    port = free_port(socket.SOCK_DGRAM)
    summary = workdir / "summary.json"
    process = start_ringway(port, summary, rcvbuf="1GiB")
    os.kill(process.pid, signal.SIGSTOP)
    sent = blast(port, count, 0, size)["sent"]
    started = time.monotonic()
    os.kill(process.pid, signal.SIGCONT)
    emptied = wait_queue_empty(port)
    data, cpu_s, rss_mib = stop_ringway(process, summary)
    if data["records"] + data["kernel_drops"] != sent:
        raise SystemExit("ringway: records %d + kernel_drops %d != sent %d"
                         % (data["records"], data["kernel_drops"], sent))
    # Datagrams that reached ringway's ring before SIGSTOP took effect are
    # few (its provided buffers, 512): the drain is timed for the rest.
    drain_s = emptied - started
    return {"sent": sent, "received": data["records"], "kernel_drops": data["kernel_drops"],
            "drain_s": drain_s, "rate_per_s": data["records"] / drain_s, "cpu_s": cpu_s,
            "rss_mib": rss_mib}


def ringway_live(rate, seconds, size, workdir):
    port = free_port(socket.SOCK_DGRAM)
    summary = workdir / "summary.json"
    process = start_ringway(port, summary)
    count = int(rate * seconds) if rate else 0
    sender = blast(port, count, rate, size, duration=None if rate else seconds)
    sent = sender["sent"]
    wait_queue_empty(port)
    time.sleep(0.05)
    data, cpu_s, rss_mib = stop_ringway(process, summary)
    if data["records"] + data["kernel_drops"] != sent:
        raise SystemExit("ringway: records %d + kernel_drops %d != sent %d"
                         % (data["records"], data["kernel_drops"], sent))
    # On loopback the receive path runs on the sender's CPU, so the blaster
    # may fall behind its target: report the rate it achieved.
    return {"rate": rate, "achieved_rate": sender["rate_per_s"], "sent": sent,
            "received": data["records"],
            "kernel_drops": data["kernel_drops"],
            "loss_pct": 100.0 * data["kernel_drops"] / max(sent, 1),
            "cpu_s": cpu_s, "cpu_s_per_million": cpu_s / max(data["records"], 1) * 1e6,
            "rss_mib": rss_mib}


def median(runs, key):
    values = [run[key] for run in runs]
    return statistics.median(values), min(values), max(values)


def cell(runs, key, fmt):
    mid, low, high = median(runs, key)
    return "%s (%s–%s)" % (fmt % mid, fmt % low, fmt % high) if len(runs) > 1 else fmt % mid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="datagrams to pre-fill [1000000]")
    parser.add_argument("--size", type=int, default=200, help="payload bytes [200]")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per scenario [3]")
    parser.add_argument("--live-seconds", type=float, default=5.0, help="length of each live run [5]")
    parser.add_argument("--fractions", default="0.5,0.7,0.9",
                        help="live rates as fractions of the blaster's max [0.5,0.7,0.9]")
    parser.add_argument("--results-dir", default=None,
                        help="where udp.json and udp.md go [bench/results/<UTC date>/]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 100k datagrams, 1 rep, 2 s live runs")
    args = parser.parse_args()
    if args.quick:
        args.count, args.reps, args.live_seconds = 100_000, 1, 2.0
    for binary in (RINGWAY, LOADGEN):
        if not os.access(binary, os.X_OK):
            raise SystemExit("%s not found (cargo build --release --examples)" % binary)
    workdir = Path(tempfile.mkdtemp(prefix="ringway-udp-bench-"))
    date = datetime.datetime.now(datetime.timezone.utc)

    log("probe: the blaster's own max rate, into a sink and into a live bare receiver")
    probes = [{"rate_per_s": probe_rate(2)} for _ in range(args.reps)]
    into_floor = [blaster_into_floor(3, args.size) for _ in range(args.reps)]
    sink_rate = median(probes, "rate_per_s")[0]
    max_rate = median(into_floor, "rate_per_s")[0]
    log("  %.0f datagrams/s into a sink, %.0f into a live receiver" % (sink_rate, max_rate))

    floors, drains = [], []
    for rep in range(args.reps):
        floors.append(floor_drain(args.count, args.size))
        log("  capacity rep %d: floor %.0f/s" % (rep + 1, floors[-1]["rate_per_s"]))
        drains.append(ringway_drain(args.count, args.size, workdir))
        log("  capacity rep %d: ringway %.0f/s (%d received, %d dropped)"
            % (rep + 1, drains[-1]["rate_per_s"], drains[-1]["received"], drains[-1]["kernel_drops"]))

    live = {}
    for fraction in [float(f) for f in args.fractions.split(",")] + [0.0]:
        # 0.0 stands for unthrottled: the blaster's max into ringway itself.
        rate = max_rate * fraction
        live[fraction] = []
        for rep in range(args.reps):
            live[fraction].append(ringway_live(rate, args.live_seconds, args.size, workdir))
            run = live[fraction][-1]
            log("  live %.0f%% rep %d: %.0f/s (achieved %.0f/s) sent %d, received %d, dropped %d"
                % (fraction * 100, rep + 1, rate, run["achieved_rate"], run["sent"], run["received"],
                   run["kernel_drops"]))

    floor_rate = median(floors, "rate_per_s")[0]
    ringway_rate = median(drains, "rate_per_s")[0]
    lines = [
        "# ringway UDP benchmark",
        "",
        "- date (UTC): %s" % date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "- machine: nproc=%d, kernel %s" % (os.cpu_count(), platform.release()),
        "- datagrams of %d bytes on 127.0.0.1; %d reps, median (min–max)" % (args.size, args.reps),
        "- command: `python3 bench/udp_throughput.py%s`" % (" --quick" if args.quick else ""),
        "",
        "Blaster's own max rate (sendmmsg, unthrottled): %s datagrams/s into a sink it never reads; "
        "%s datagrams/s into a live bare `recvmmsg` receiver (kernel drops there: %s) — the max rate below"
        % (cell(probes, "rate_per_s", "%.0f"), cell(into_floor, "rate_per_s", "%.0f"),
           cell(into_floor, "floor_kernel_drops", "%d")),
        "",
        "Capacity: a socket pre-filled with %d datagrams, drained:" % args.count,
        "",
        "| drainer | datagrams/s | drain s | received | kernel drops |",
        "|---|---:|---:|---:|---:|",
        "| bare recvmmsg loop (floor) | %s | %s | %s | %s |" % (
            cell(floors, "rate_per_s", "%.0f"), cell(floors, "drain_s", "%.3f"),
            cell(floors, "received", "%d"), cell(floors, "kernel_drops", "%d")),
        "| ringway udp → null | %s | %s | %s | %s |" % (
            cell(drains, "rate_per_s", "%.0f"), cell(drains, "drain_s", "%.3f"),
            cell(drains, "received", "%d"), cell(drains, "kernel_drops", "%d")),
        "",
        "ringway / floor: %.2f×" % (ringway_rate / floor_rate),
        "",
        "Live: blaster at shares of its max rate into a live receiver, for %.0f s → ringway → null (default flags: 8 MiB receive buffer):" % args.live_seconds,
        "",
        "| target rate (share of max) | achieved rate (share) | sent | received | kernel drops | loss % | CPU s per million | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fraction, runs in live.items():
        achieved = median(runs, "achieved_rate")[0]
        target = "unthrottled" if fraction == 0 else "%.0f/s (%.0f%%)" % (max_rate * fraction, fraction * 100)
        lines.append("| %s | %s (%.0f%%) | %s | %s | %s | %s | %s | %s |" % (
            target, cell(runs, "achieved_rate", "%.0f"),
            100.0 * achieved / max_rate, cell(runs, "sent", "%d"), cell(runs, "received", "%d"),
            cell(runs, "kernel_drops", "%d"), cell(runs, "loss_pct", "%.3f"),
            cell(runs, "cpu_s_per_million", "%.2f"), cell(runs, "rss_mib", "%.1f")))
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path(tempfile.gettempdir()) / "ringway-udp-quick" if args.quick
        else REPO / "bench" / "results" / date.strftime("%Y-%m-%d"))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "udp.md").write_text(markdown)
    (results_dir / "udp.json").write_text(json.dumps({
        "probe": probes, "into_floor": into_floor, "capacity": {"floor": floors, "ringway": drains},
        "live": {str(fraction): runs for fraction, runs in live.items()},
        "size": args.size, "count": args.count}, indent=2))
    log("wrote %s/udp.md and udp.json" % results_dir)


if __name__ == "__main__":
    main()
