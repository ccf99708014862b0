#!/usr/bin/env python3
"""Network outputs: file → otlp / http output throughput, and retry overhead.

Every run reads the same file of JSON lines (bench/gen_lines.py, seed 42)
with `--exit-on-eof` and writes it to one output:

  file→null                      ringway's own floor for this file
  file→otlp → null receiver      OTLP/HTTP protobuf to `loadgen otlp floor`
                                 (bench/loadgen/otlp.rs: reads each request,
                                 answers 200, decodes nothing)
  file→otlp,gzip → null receiver the same with gzip bodies
  file→http → null receiver      NDJSON POSTs to the same floor sink
  file→http → py 200             NDJSON POSTs to a Python http.server that
                                 answers 200 to every request
  file→http → py 503 every 10th  the same server answering 503 (no
                                 Retry-After: ringway's backoff) to every
                                 10th request

The last two give the retry overhead; the Python server is slower than the
floor sink, so compare them with each other. Over TLS (rustls on both
sides; the output trusts a CA made with openssl at start, `ca=`):

  file→otlp:https → null receiver   `loadgen otlp floor --tls-cert …`
  file→https → null receiver        the same floor, NDJSON POSTs
  file→tcp → tcp floor              `loadgen tcp floor` (reads and counts)
  file→tcp,tls → tcp floor          `loadgen tcp floor --tls-cert …`

"TLS / plain" is the median of per-rep records/s ratios of a TLS row
against its plaintext row (reps are interleaved). --scenarios picks rows
by number (1-based, comma-separated). Reps are interleaved; medians
with (min–max). Each run is checked: exit 0, output records == lines,
no rejects. Python 3 standard library only; needs target/release/ringway
and target/release/examples/loadgen (`cargo build --release && cargo
build --release --example loadgen`; CARGO_TARGET_DIR is honoured).

Usage:
  outputs_throughput.py [--lines 1M] [--reps 3] [--scenarios 1,2,…] [--workdir DIR] [--results-dir DIR]
  outputs_throughput.py --serve-python PORT_FILE --fail-every N   (the Python server; internal)
"""

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import loadgen_path, log, make_certificates, start_floor, target_dir, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def count(text):
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


# ---------------------------------------------------------------------------
# The Python endpoint (run as a child of this script)


def serve_python(port_file, fail_every):
    lock = threading.Lock()
    state = {"requests": 0, "failed": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    return
                remaining -= len(chunk)
            with lock:
                state["requests"] += 1
                fail = fail_every > 0 and state["requests"] % fail_every == 0
                state["failed"] += fail
            self.send_response(503 if fail else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


# ---------------------------------------------------------------------------
# Runs


def start_python_server(workdir, fail_every):
    port_file = os.path.join(workdir, "py-port")
    if os.path.exists(port_file):
        os.remove(port_file)
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve-python", port_file,
         "--fail-every", str(fail_every)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file):
            return process, "127.0.0.1:" + open(port_file).read().strip()
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the Python endpoint did not start")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_ringway(ringway, data, output, workdir, lines, extra):
    summary = os.path.join(workdir, "summary.json")
    stderr_path = os.path.join(workdir, "ringway.stderr")
    command = [ringway, "run", "--input", "file:" + data, "--output", output,
               "--exit-on-eof", "--stats-interval", "0", "--summary-json", summary] + extra
    started = time.perf_counter()
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    result = json.load(open(summary)) if os.path.exists(summary) else None
    out = result["outputs"][0] if result else {}
    if process.returncode != 0 or out.get("records") != lines or out.get("rejects", 0) != 0:
        raise SystemExit("run failed: %s\nexit %s\nsummary %s\nstderr:\n%s" % (
            " ".join(command), process.returncode, json.dumps(result),
            open(stderr_path).read()[-3000:]))
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "records_per_s": lines / wall,
        "mb_per_s": result["inputs"][0]["bytes"] / wall / 1e6,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "retries": out.get("retries", 0),
    }


# (name, server, output, the plaintext row a TLS row is compared with)
SCENARIOS = [
    ("file→null", None, "null", None),
    ("file→otlp → null receiver", "floor", "otlp:http://{addr}/v1/logs", None),
    ("file→otlp,gzip → null receiver", "floor", "otlp:http://{addr}/v1/logs,gzip", None),
    ("file→http → null receiver", "floor", "http://{addr}/v1/logs", None),
    ("file→http → py 200", "py0", "http://{addr}/ingest", None),
    ("file→http → py 503 every 10th", "py10", "http://{addr}/ingest", None),
    ("file→otlp:https → null receiver", "floor+tls", "otlp:https://{addr}/v1/logs,ca={ca}",
     "file→otlp → null receiver"),
    ("file→https → null receiver", "floor+tls", "https://{addr}/v1/logs,ca={ca}",
     "file→http → null receiver"),
    ("file→tcp → tcp floor", "tcp", "tcp:{addr}", None),
    ("file→tcp,tls → tcp floor", "tcp+tls", "tcp:{addr},tls,ca={ca}", "file→tcp → tcp floor"),
]


def start_server(server, sender, workdir, certificates):
    """Starts the receiver of a scenario: (process or None, "host:port")."""
    tls = ["--tls-cert", str(certificates["cert"]), "--tls-key", str(certificates["key"])]
    if server in ("floor", "floor+tls"):
        process, port = start_floor([sender, "otlp", "floor", "--serve", "127.0.0.1:0"]
                                    + (tls if server.endswith("+tls") else []),
                                    "loadgen otlp floor")
        return process, "127.0.0.1:%d" % port
    if server in ("tcp", "tcp+tls"):
        process, port = start_floor([sender, "tcp", "floor", "--serve", "127.0.0.1:0"]
                                    + (tls if server.endswith("+tls") else []),
                                    "loadgen tcp floor")
        return process, "127.0.0.1:%d" % port
    if server and server.startswith("py"):
        return start_python_server(workdir, int(server[2:]))
    return None, ""


def fmt_stats(values, fmt):
    return "%s (%s–%s)" % (fmt(statistics.median(values)), fmt(min(values)), fmt(max(values)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="1M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/ringway-bench-outputs")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--ringway", default=None)
    parser.add_argument("--sender", default=None, help="the loadgen example [TARGET/release/examples/loadgen]")
    parser.add_argument("--ringway-args", default="")
    parser.add_argument("--scenarios", default=None,
                        help="rows to run, by number (1-based, comma-separated) [all]")
    parser.add_argument("--serve-python", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fail-every", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_python:
        return serve_python(args.serve_python, args.fail_every)

    lines = count(args.lines)
    ringway = args.ringway or os.path.join(str(target_dir()), "release", "ringway")
    sender = args.sender or str(loadgen_path())
    os.makedirs(args.workdir, exist_ok=True)
    data = os.path.join(args.workdir, "lines-%d.ndjson" % lines)
    if not os.path.exists(data):
        log("generating %d lines" % lines)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_lines.py"), "--lines", str(lines),
                        "--out", data, "--seed", "42"], check=True)
    subprocess.run(["cat", data], stdout=subprocess.DEVNULL, check=True)
    extra = args.ringway_args.split()

    scenarios = SCENARIOS
    if args.scenarios:
        try:
            picked = [int(n) for n in args.scenarios.split(",")]
            scenarios = [SCENARIOS[n - 1] for n in picked if n >= 1]
            assert len(scenarios) == len(picked)
        except (ValueError, IndexError, AssertionError):
            raise SystemExit("--scenarios: numbers from 1 to %d, comma-separated" % len(SCENARIOS))
    certificates = make_certificates(args.workdir)
    runs = {name: [] for name, _, _, _ in scenarios}
    for rep in range(args.reps):
        for name, server, output, _ in scenarios:
            process, addr = start_server(server, sender, args.workdir, certificates)
            try:
                result = run_ringway(ringway, data,
                                     output.format(addr=addr, ca=certificates["ca"]),
                                     args.workdir, lines, extra)
            finally:
                if process:
                    stop(process)
            runs[name].append(result)
            log("rep %d %-32s %9.0f records/s  %6.1f MB/s  cpu %.2f s  rss %.1f MiB  retries %d" % (
                rep + 1, name, result["records_per_s"], result["mb_per_s"], result["cpu_s"],
                result["peak_rss_mib"], result["retries"]))

    def median_rate(name):
        rates = [r["records_per_s"] for r in runs.get(name, [])]
        return statistics.median(rates) if rates else None

    floor, py200 = median_rate("file→null"), median_rate("file→http → py 200")
    rows = []
    for name, _, _, plain in scenarios:
        rs = runs[name]
        rate = [r["records_per_s"] for r in rs]
        if name == "file→http → py 503 every 10th" and py200:
            versus = "%.2f× of py 200" % (statistics.median(rate) / py200)
        elif floor:
            versus = "%.2f× of file→null" % (statistics.median(rate) / floor)
        else:
            versus = ""
        tls_vs_plain = ""
        if plain and runs.get(plain):
            ratios = [a["records_per_s"] / b["records_per_s"] for a, b in zip(rs, runs[plain])]
            tls_vs_plain = fmt_stats(ratios, lambda v: "%.2f" % v)
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name,
            fmt_stats(rate, lambda v: "%.0fk" % (v / 1e3)),
            fmt_stats([r["mb_per_s"] for r in rs], lambda v: "%.0f" % v),
            fmt_stats([r["cpu_s"] / lines * 1e6 for r in rs], lambda v: "%.2f" % v),
            fmt_stats([r["cpu_s"] / (r["mb_per_s"] * r["wall_s"] / 1e3) for r in rs],
                      lambda v: "%.2f" % v),
            fmt_stats([r["peak_rss_mib"] for r in rs], lambda v: "%.1f" % v),
            fmt_stats([r["retries"] for r in rs], lambda v: "%d" % v),
            versus, tls_vs_plain,
        ))
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    table = "\n".join([
        "# Network outputs (%s, %s, %d lines, %d reps, `%s`)" % (
            date, commit, lines, args.reps, " ".join(sys.argv)),
        "",
        "| scenario | records/s | MB/s (input) | CPU s per M records | CPU s per GB (input) "
        "| peak RSS MiB | retries | vs | TLS / plain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows + [
        "",
        "CPU is ringway's user+sys over its whole run (the receiver's is not counted). "
        "TLS / plain: median (min–max) of per-rep records/s ratios against the same output "
        "in plaintext; reps are interleaved.",
    ]) + "\n"
    print(table)
    write_results(args.results_dir, "outputs", table, runs)


if __name__ == "__main__":
    sys.exit(main())
