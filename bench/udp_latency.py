#!/usr/bin/env python3
"""Trickle latency of the UDP input: one datagram at a time, how long until
it is in ringway's file output.

Starts `ringway run --input udp:127.0.0.1:PORT --output file:OUT`, then sends
N single datagrams 50 ms apart and, for each, polls OUT (every 0.2 ms) until
it grew. Reports the median and range in ms. With a trickle every datagram
waits out --batch-linger once (in the UDP reader), so the figure is about
that linger plus the pipeline's own time.

  python3 bench/udp_latency.py [--ringway PATH] [--port P] [--count N] [--ringway-args "..."]

Python 3 standard library only.
"""

import argparse
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def file_size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ringway", default=str(REPO_ROOT / "target" / "release" / "ringway"))
    ap.add_argument("--port", type=int, default=5699)
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--ringway-args", default="", help="extra flags for ringway run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.log"
        argv = [args.ringway, "run", "--input", "udp:127.0.0.1:%d" % args.port,
                "--output", "file:%s" % out, "--stats-interval", "0"] + shlex.split(args.ringway_args)
        child = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            latencies = []
            for n in range(args.count):
                before = file_size(out)
                start = time.perf_counter()
                sender.sendto(b"latency probe %d" % n, ("127.0.0.1", args.port))
                deadline = start + 5
                while file_size(out) <= before:
                    if time.perf_counter() > deadline:
                        sys.exit("udp_latency: datagram %d did not arrive within 5 s" % n)
                    time.sleep(0.0002)
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.05)
        finally:
            child.terminate()
            child.wait(timeout=30)
    print("%s %s: one datagram to the output file: median %.1f ms (%.1f–%.1f), %d datagrams"
          % (args.ringway, args.ringway_args, statistics.median(latencies),
             min(latencies), max(latencies), len(latencies)))


if __name__ == "__main__":
    main()
