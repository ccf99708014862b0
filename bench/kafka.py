#!/usr/bin/env python3
"""file → kafka throughput, beside file → null, file → otlp and confluent-kafka's
producer as the reference client, in one interleaved run.

One file of JSON lines (bench/gen_lines.py, seed 42, ~200 B a line) goes:

  file→null                  ringway's own floor for this file
  file→otlp → null receiver  OTLP/HTTP to `loadgen otlp floor`
  file→kafka lz4             ringway's kafka: output, compression=lz4 (its default)
  file→kafka none            the same, compression=none
  confluent-kafka lz4        the Python client (librdkafka 2.12.1, as ringway
                             links) producing each line of the same file with
                             the same settings: acks=all, idempotence,
                             linger.ms=5, the same queue bound, then flush()
  confluent-kafka none       the same without compression

The broker is tansu 0.6.0 with its in-memory store on 127.0.0.1, started
afresh for each kafka run (a memory store that holds the earlier runs'
messages slows the later ones), with a topic of 3 partitions; its
CPU-seconds during each run are reported beside the producer's. A ringway
run counts when it exits 0 with every line in its summary's output records
(acknowledged by the broker) and no reject; a confluent run when its
delivery reports say every message was delivered.

records/s is lines over wall time; CPU-s is the producer process's (all its
threads, librdkafka's included; for confluent-kafka, Python's reading of the
file too). The target (issue 19): ringway's kafka msgs/s ≥ 2× the
reference client's, at ≤ ½ its CPU a message, per rep, median.

Usage:
  kafka.py [--lines 1M] [--reps 5] [--tansu PATH] [--python PATH] [--workdir DIR] [--results-dir DIR]
  kafka.py --produce BOOTSTRAP TOPIC FILE CODEC QUEUE_KBYTES   (the reference producer; internal)
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (REPO, free_port, git_describe, loadgen_path, log, proc_cpu_s,
                      start_floor, target_dir)

HERE = Path(__file__).resolve().parent


def produce_reference(bootstrap, topic, path, codec, queue_kbytes):
    """confluent-kafka's producer over the file's lines; prints a JSON line."""
    from confluent_kafka import Producer
    state = {"delivered": 0, "failed": 0}

    def on_delivery(error, _message):
        if error is None:
            state["delivered"] += 1
        else:
            state["failed"] += 1

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.codec": codec,
        "linger.ms": 5,
        "message.timeout.ms": 0,
        "queue.buffering.max.kbytes": queue_kbytes,
        "queue.buffering.max.messages": 2_000_000,
    })
    started = time.perf_counter()
    sent = 0
    with open(path, "rb") as lines:
        for line in lines:
            while True:
                try:
                    producer.produce(topic, line.rstrip(b"\n"), on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            sent += 1
            if sent % 1000 == 0:
                producer.poll(0)
    producer.flush()
    wall = time.perf_counter() - started
    usage = os.times()
    print(json.dumps({"sent": sent, "delivered": state["delivered"], "failed": state["failed"],
                      "wall_s": wall, "cpu_s": usage.user + usage.system}))


def tansu_path(given):
    if given:
        return Path(given)
    if os.environ.get("RINGWAY_TEST_TANSU"):
        return Path(os.environ["RINGWAY_TEST_TANSU"])
    cache = Path(os.environ.get("RINGWAY_CACHE_DIR")
                 or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ringway")
    return cache / "tansu-0.6.0" / "bin" / "tansu"


class Broker:
    def __init__(self, tansu, workdir):
        self.tansu = str(tansu)
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        url = "tcp://" + self.address
        self.log = open(os.path.join(workdir, "tansu.log"), "w")
        self.process = subprocess.Popen(
            [self.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=self.log, stderr=self.log)
        import socket
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("tansu did not start; see %s" % self.log.name)
                time.sleep(0.1)

    def create_topic(self, topic):
        subprocess.run([self.tansu, "topic", "create", topic, "--broker", "tcp://" + self.address,
                        "--partitions", "3"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def cpu_s(self):
        return proc_cpu_s(self.process.pid)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_ringway(ringway, data, output, workdir, lines, size):
    summary = os.path.join(workdir, "summary.json")
    stderr_path = os.path.join(workdir, "ringway.stderr")
    command = [ringway, "run", "--input", "file:" + data, "--output", output,
               "--exit-on-eof", "--stats-interval", "0", "--summary-json", summary]
    started = time.perf_counter()
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    result = json.load(open(summary)) if os.path.exists(summary) else None
    out = result["outputs"][0] if result else {}
    if code != 0 or out.get("records") != lines or out.get("rejects", 0) != 0:
        raise SystemExit("run failed: %s\nexit %s\nsummary %s\nstderr:\n%s" % (
            " ".join(command), code, json.dumps(result), open(stderr_path).read()[-3000:]))
    return {"command": " ".join(command), "wall_s": wall, "records_per_s": lines / wall,
            "mb_per_s": size / wall / 1e6, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024, "retries": out.get("retries", 0)}


def run_reference(python, broker, topic, data, codec, queue_kbytes, lines, size):
    command = [python, str(HERE / "kafka.py"), "--produce", broker.address, topic, data, codec,
               str(queue_kbytes)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    result = json.loads(out.strip().splitlines()[-1])
    if os.waitstatus_to_exitcode(status) != 0 or result["delivered"] != lines:
        raise SystemExit("reference producer failed: %s: %s" % (" ".join(command), out))
    # Throughput over the producer's own produce-to-flush time (without
    # Python's start and imports); CPU over the whole process.
    return {"command": " ".join(command), "wall_s": result["wall_s"],
            "process_wall_s": wall, "records_per_s": lines / result["wall_s"],
            "mb_per_s": size / result["wall_s"] / 1e6,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
            "retries": 0}


SCENARIOS = ["file→null", "file→otlp → null receiver", "file→kafka lz4", "file→kafka none",
             "confluent-kafka lz4", "confluent-kafka none"]


def cell(values, fmt):
    return "%s (%s–%s)" % (fmt(statistics.median(values)), fmt(min(values)), fmt(max(values)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="1M")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tansu", default=None)
    parser.add_argument("--python", default=str(REPO / "target/otel-venv/bin/python"),
                        help="a Python with confluent-kafka 2.12.1 (scripts/test.sh's venv)")
    parser.add_argument("--ringway", default=None)
    parser.add_argument("--workdir", default="/tmp/ringway-bench-kafka")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--produce", nargs=5, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        bootstrap, topic, path, codec, queue_kbytes = args.produce
        produce_reference(bootstrap, topic, path, codec, int(queue_kbytes))
        return

    text = args.lines.lower()
    lines = int(float(text.rstrip("km")) * {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1))
    ringway = args.ringway or str(target_dir() / "release" / "ringway")
    tansu = tansu_path(args.tansu)
    for path, what in [(ringway, "ringway (cargo build --release)"),
                       (loadgen_path(), "loadgen (cargo build --release --example loadgen)"),
                       (tansu, "tansu (scripts/fetch-tansu.sh)"), (args.python, "--python")]:
        if not Path(path).exists():
            raise SystemExit("kafka.py: %s not found: %s" % (what, path))
    os.makedirs(args.workdir, exist_ok=True)
    data = os.path.join(args.workdir, "lines-%d.ndjson" % lines)
    if not os.path.exists(data):
        subprocess.run([sys.executable, str(HERE / "gen_lines.py"), "--lines", str(lines),
                        "--out", data, "--seed", "42"], check=True)
    size = os.path.getsize(data)
    # The reference client's queue bound: what ringway gives its producer
    # (a batch for each of the 2 default output workers and one more, at the
    # default --batch-bytes and --max-line, 1 MiB).
    queue_kbytes = 3 * 1024

    broker = Broker(tansu, args.workdir)
    floor, floor_port = start_floor([loadgen_path(), "otlp", "floor", "--serve", "127.0.0.1:0"],
                                    "loadgen otlp floor")
    runs = {name: [] for name in SCENARIOS}
    topic_number = 0
    try:
        for rep in range(args.reps):
            order = SCENARIOS if rep % 2 == 0 else list(reversed(SCENARIOS))
            for name in order:
                broker_before = broker.cpu_s()
                if name.startswith("file→kafka") or name.startswith("confluent"):
                    # A fresh broker for each run: tansu's memory store keeps
                    # every message, and a broker holding the earlier runs'
                    # millions served later runs more slowly (its CPU for the
                    # same 1M lines with codec none went from 0.4 s in the
                    # first rep to 1.9-2.1 s in the later ones), whichever
                    # client produced.
                    broker.stop()
                    broker = Broker(tansu, args.workdir)
                    broker_before = broker.cpu_s()
                    topic_number += 1
                    topic = "bench-%d" % topic_number
                    broker.create_topic(topic)
                    codec = name.rsplit(" ", 1)[1]
                if name == "file→null":
                    run = run_ringway(ringway, data, "null", args.workdir, lines, size)
                elif name.startswith("file→otlp"):
                    run = run_ringway(ringway, data, "otlp:http://127.0.0.1:%d/v1/logs" % floor_port,
                                      args.workdir, lines, size)
                elif name.startswith("file→kafka"):
                    run = run_ringway(ringway, data, "kafka:%s/%s,compression=%s"
                                      % (broker.address, topic, codec), args.workdir, lines, size)
                else:
                    run = run_reference(args.python, broker, topic, data, codec, queue_kbytes,
                                        lines, size)
                run["broker_cpu_s"] = broker.cpu_s() - broker_before
                run["cpu_s_per_gb"] = run["cpu_s"] / (size / 1e9)
                runs[name].append(run)
                log("rep %d %-28s %10.0f records/s %7.1f MB/s CPU %6.2f s broker CPU %6.2f s RSS %6.1f MiB"
                    % (rep + 1, name, run["records_per_s"], run["mb_per_s"], run["cpu_s"],
                       run["broker_cpu_s"], run["peak_rss_mib"]))
    finally:
        broker.stop()
        floor.terminate()
        floor.wait()

    def ratios(a, b, key, invert=False):
        values = [(x[key] / y[key]) if not invert else (y[key] / x[key])
                  for x, y in zip(runs[a], runs[b])]
        return values

    date = datetime.datetime.now(datetime.timezone.utc)
    results_dir = Path(args.results_dir or REPO / "bench" / "results" / date.strftime("%Y-%m-%d"))
    results_dir.mkdir(parents=True, exist_ok=True)
    command = "python3 bench/kafka.py --lines %s --reps %d" % (args.lines, args.reps)
    out = ["# file → kafka beside file → null, file → otlp and confluent-kafka", "",
           "- date (UTC): %s; commit %s; nproc=%d; kernel %s" % (
               date.strftime("%Y-%m-%dT%H:%M:%SZ"), git_describe(), os.cpu_count(),
               os.uname().release),
           "- %d lines (%.1f MB, gen_lines.py --seed 42); broker tansu 0.6.0, memory store, "
           "a fresh broker and a topic of 3 partitions a run; %d interleaved reps; medians (min–max)"
           % (lines, size / 1e6, args.reps),
           "- command: `%s`" % command, "",
           "| scenario | records/s | MB/s | CPU-s | CPU-s per GB | broker CPU-s | peak RSS MiB |",
           "|---|---|---|---|---|---|---|"]
    for name in SCENARIOS:
        r = runs[name]
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, cell([x["records_per_s"] for x in r], lambda v: "{:,.0f}".format(v)),
            cell([x["mb_per_s"] for x in r], lambda v: "%.1f" % v),
            cell([x["cpu_s"] for x in r], lambda v: "%.2f" % v),
            cell([x["cpu_s_per_gb"] for x in r], lambda v: "%.2f" % v),
            cell([x["broker_cpu_s"] for x in r], lambda v: "%.2f" % v),
            cell([x["peak_rss_mib"] for x in r], lambda v: "%.1f" % v)))
    out += ["", "## Target (issue 19): ≥ 2× the reference client's messages/s at ≤ ½ its CPU a message",
            "", "| codec | ringway / confluent-kafka messages/s | ringway / confluent-kafka CPU-s a message | holds |",
            "|---|---|---|---|"]
    for codec in ["lz4", "none"]:
        speed = ratios("file→kafka " + codec, "confluent-kafka " + codec, "records_per_s")
        cpu = ratios("file→kafka " + codec, "confluent-kafka " + codec, "cpu_s")
        holds = statistics.median(speed) >= 2 and statistics.median(cpu) <= 0.5
        out.append("| %s | %s | %s | %s |" % (codec, cell(speed, lambda v: "%.2f×" % v),
                                              cell(cpu, lambda v: "%.2f" % v),
                                              "yes" if holds else "**no**"))
    out += ["", "Per rep ratios are paired within a rep (the reps are interleaved)."]
    (results_dir / "kafka.md").write_text("\n".join(out) + "\n")
    (results_dir / "kafka.json").write_text(json.dumps(runs, indent=1) + "\n")
    print("\n".join(out))
    log("wrote %s/kafka.md and kafka.json" % results_dir)


if __name__ == "__main__":
    main()
