#!/usr/bin/env python3
"""ringway side by side with rsyslog and syslog-ng, on this host.

Run it through bench/compare.sh, which installs what it needs first (see
there). Three workloads, each through every system in the same run, and each
verified by counting what arrived:

  file  an NDJSON file of --lines lines (~210 B, bench/gen_lines.py) -> a file:
        wall time from start until the output holds every line, lines/s,
        MB/s, CPU-seconds and peak RSS of the daemon; the output must be
        byte-for-byte the input (a `dd bs=1M` copy is the floor)
  udp   RFC 5424 syslog datagrams of --size bytes from `loadgen udp send` at
        each of --rates for --rate-seconds -> a file: datagrams received per
        second of sending, loss %, kernel drops (the socket's own counter in
        /proc/net/udp), loss inside the daemon (sent - received - kernel
        drops), CPU-seconds per million received (a bare recvmmsg loop,
        `loadgen udp floor`, is the floor)
  idle  every system started with its UDP config and left alone for
        --idle-seconds: CPU-seconds used and RSS at the end

Every system runs in the foreground with its own config, files and ports
under --workdir; nothing touches the host's logging. CPU time and memory are
read from /proc/PID/stat (utime + stime of all threads) and /proc/PID/status
(VmHWM, VmRSS) of the daemon itself, the same way for all three.

Reps are interleaved (rep 1 of every system, then rep 2, ...); medians with
(min-max) go to results.md, every run to results.json, and the plots
throughput.svg and loss.svg are drawn with matplotlib. Exit 1 if any check
fails (a count that does not add up, a daemon that died, a timeout).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (REPO, HOST, free_port, log, proc_cpu_s,
                      proc_status_kib, stop as stop_process, udp_socket_row)

SYSTEMS = ["ringway", "rsyslog", "syslog-ng"]
# Receive buffer every UDP socket asks for: 4 MiB, or net.core.rmem_max when
# that is lower. rsyslog and ringway set it with SO_RCVBUFFORCE (as root),
# syslog-ng with SO_RCVBUF, which rmem_max clamps; asking all three for at
# most rmem_max gives each the same buffer. The granted size is read back
# from each socket; sizes that differ are reported (results.md, stderr).
RCVBUF_BYTES = 4 * 1024 * 1024


def rcvbuf_to_ask():
    try:
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return RCVBUF_BYTES
    return min(RCVBUF_BYTES, rmem_max)
# A run whose output stops growing for this long before it is complete fails.
STALL_S = 60
POLL_S = 0.002


class Failure(Exception):
    """A check that did not hold; the message says which and why."""


def parse_count(text):
    text = text.strip()
    scale = {"k": 1_000, "K": 1_000, "M": 1_000_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a count (e.g. 1M, 50k, 1000)" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("%r must be above 0" % text)
    return value


def parse_rates(text):
    rates = []
    for part in text.split(","):
        part = part.strip()
        rates.append(0 if part in ("max", "unthrottled") else parse_count(part))
    return rates


def rate_label(rate):
    if rate == 0:
        return "max"
    if rate % 1_000_000 == 0:
        return "%dM" % (rate // 1_000_000)
    if rate % 1_000 == 0:
        return "%dk" % (rate // 1_000)
    return str(rate)


# --------------------------------------------------------------------------
# processes: CPU, memory, sockets


def proc_cpu_ns(pid):
    """Run time of every live thread of pid in nanoseconds
    (/proc/PID/task/*/schedstat): finer than the 10 ms ticks of stat, for
    the idle workload, where no thread ends."""
    total = 0
    for task in Path("/proc/%d/task" % pid).iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def granted_rcvbuf(port):
    """The receive buffer the kernel granted the socket on port (ss -m rb)."""
    try:
        out = subprocess.run(["ss", "-uanmH", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\brb(\d+)", out)
    return int(found.group(1)) if found else None


class Daemon:
    """One system running in the foreground; its output goes to files."""

    def __init__(self, name, argv, env, rundir):
        self.name = name
        self.argv = argv
        self.rundir = rundir
        self.stdout = rundir / "stdout"
        self.stderr = rundir / "stderr"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=err, start_new_session=True)
        self.pid = self.process.pid
        self.total_cpu_s = None

    def alive(self):
        """Running (or a zombie not yet reaped: stop() reaps it, with its
        rusage)."""
        if self.process.returncode is not None:
            return False
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return info is None

    def cpu_s(self):
        return proc_cpu_s(self.pid)

    def diagnostics(self):
        def tail(path):
            try:
                return path.read_text(errors="replace")[-3000:]
            except OSError:
                return ""
        text = "command: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            shlex.join(self.argv), tail(self.stdout), tail(self.stderr))
        internal = self.rundir / "rsyslog-internal.log"
        if internal.exists():
            text += "\n--- rsyslog's own messages ---\n%s" % tail(internal)
        return text

    def check_alive(self, what):
        if not self.alive():
            raise Failure("%s exited (status %s) during %s\n%s"
                          % (self.name, self.stop(), what, self.diagnostics()))

    def stop(self):
        """SIGTERM, then SIGKILL after 20 s; returns the exit status. Reaps
        the daemon with wait4, so `total_cpu_s` holds all the CPU it used,
        its exit (and any flush there) included."""
        if self.process.returncode is None:
            code, self.total_cpu_s = stop_process(self.process, 20, kill_group=True)
            if code is None:
                log("%s ignored SIGTERM for 20 s; killed it" % self.name)
        return self.process.returncode


# --------------------------------------------------------------------------
# the three systems: how each is started for each workload


# rsyslog sends its own messages (start, stop, errors) to the system log
# (/dev/log) unless they go through its own rules; the rule below keeps them
# in the run directory, out of the measured output. They come from input
# "rsyslogd"; some are tagged "rsyslogd-NNNN" (an error number), not
# "rsyslogd": a queue worker's "terminated" notice once reached out.log.
RSYSLOG_INTERNAL = 'processInternalMessages="on"'


def rsyslog_internal_rule(rundir):
    return ('if $inputname == "rsyslogd" or $programname startswith "rsyslogd" then {\n'
            '  action(type="omfile" file="%s")\n'
            '  stop\n'
            '}\n' % (rundir / "rsyslog-internal.log"))


def rsyslog_config(rundir, global_extra, module, input_line, output):
    """rsyslog's config: one input, every message's text as a line of
    `output`, its own messages to the run directory."""
    work = rundir / "work"
    work.mkdir()
    return ('global(workDirectory="%s" %s %s)\n'
            'module(load="%s")\n'
            '%s\n'
            'template(name="line" type="string" string="%%msg%%\\n")\n'
            '%s'
            '*.* action(type="omfile" file="%s" template="line")\n'
            % (work, global_extra, RSYSLOG_INTERNAL, module, input_line,
               rsyslog_internal_rule(rundir), output))


def syslog_ng_config(source, output, log_flags):
    """syslog-ng's config: one source, every message's text as a line of
    `output`."""
    return ("@version: 3.38\n"
            "options { stats_freq(0); };\n"
            "source s_in { %s; };\n"
            'destination d_out { file("%s" template("${MESSAGE}\\n")); };\n'
            "log { source(s_in); destination(d_out);%s };\n" % (source, output, log_flags))


class Systems:
    def __init__(self, args):
        self.rcvbuf = args.rcvbuf
        self.ringway = Path(args.ringway)
        self.rsyslog_root = Path(args.rsyslog_root)
        self.syslog_ng = args.syslog_ng
        self.syslog_ng_env = None
        self.syslog_ng_extra = []
        if args.syslog_ng_root:
            # Unpacked with dpkg -x, not installed: its libraries and modules
            # are found through LD_LIBRARY_PATH and --module-path.
            root = Path(args.syslog_ng_root)
            self.syslog_ng = str(root / "usr/sbin/syslog-ng")
            self.syslog_ng_env = dict(os.environ)
            self.syslog_ng_env["LD_LIBRARY_PATH"] = ":".join(
                str(d) for d in (root / "usr/lib/syslog-ng", root / "usr/lib/x86_64-linux-gnu",
                                 root / "lib/x86_64-linux-gnu", root / "usr/lib/aarch64-linux-gnu",
                                 root / "lib/aarch64-linux-gnu") if d.is_dir())
            modules = sorted(root.glob("usr/lib/syslog-ng/3.*/libaffile.so"))
            if not modules:
                raise Failure("no syslog-ng modules under %s/usr/lib/syslog-ng" % root)
            self.syslog_ng_extra = ["--module-path", str(modules[0].parent)]
        self.rsyslogd = self.rsyslog_root / "usr/sbin/rsyslogd"
        self.rsyslog_env = dict(os.environ)
        libdirs = [str(d) for d in (self.rsyslog_root / "usr/lib/x86_64-linux-gnu",
                                    self.rsyslog_root / "lib/x86_64-linux-gnu",
                                    self.rsyslog_root / "usr/lib/aarch64-linux-gnu",
                                    self.rsyslog_root / "lib/aarch64-linux-gnu") if d.is_dir()]
        self.rsyslog_env["LD_LIBRARY_PATH"] = ":".join(libdirs)
        modules = sorted(self.rsyslog_root.glob("usr/lib/*/rsyslog/imudp.so"))
        if not modules:
            raise Failure("no rsyslog/imudp.so under %s/usr/lib (run scripts/fetch-rsyslog.sh)"
                          % self.rsyslog_root)
        self.rsyslog_modules = modules[0].parent

    def versions(self):
        def first_line(argv, env=None):
            try:
                out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10)
                return (out.stdout or out.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired) as error:
                return "unknown (%s)" % error
        rsyslog = first_line([str(self.rsyslogd), "-v"], self.rsyslog_env)
        rsyslog_version = re.search(r"rsyslogd\s+(\S+)", rsyslog)
        syslog_ng = subprocess.run([self.syslog_ng, "--version"], capture_output=True,
                                   text=True, env=self.syslog_ng_env).stdout
        revision = re.search(r"Revision:\s*(\S+)", syslog_ng)
        return {
            "ringway": first_line([str(self.ringway), "--version"]),
            "rsyslog": "rsyslog %s" % (rsyslog_version.group(1) if rsyslog_version else rsyslog),
            "syslog-ng": "syslog-ng %s" % (revision.group(1) if revision else
                                           syslog_ng.splitlines()[0] if syslog_ng else "?"),
        }

    # --- file -> file

    def start_file(self, name, rundir, source, output):
        if name == "ringway":
            argv = [str(self.ringway), "run", "--input", "file:%s,format=json" % source,
                    "--output", "file:%s" % output, "--stats-interval", "0"]
            return Daemon(name, argv, None, rundir)
        if name == "rsyslog":
            conf = rundir / "rsyslog.conf"
            conf.write_text(rsyslog_config(
                rundir, 'maxMessageSize="64k"', "imfile",
                'input(type="imfile" file="%s" tag="bench")' % source, output))
            return self._rsyslogd(conf, rundir)
        if name == "syslog-ng":
            conf = rundir / "syslog-ng.conf"
            # flags(no-parse): the whole line is $MESSAGE. flow-control: the
            # file source waits for the destination instead of dropping
            # (syslog-ng's documented setting for lossless file reading).
            conf.write_text(syslog_ng_config(
                'file("%s" flags(no-parse) follow-freq(1))' % source, output,
                " flags(flow-control);"))
            return self._syslog_ng(conf, rundir)
        raise ValueError(name)

    # --- udp -> file

    def start_udp(self, name, rundir, port, output):
        if name == "ringway":
            argv = [str(self.ringway), "run", "--input",
                    "udp:%s:%d,format=syslog,rcvbuf=%d" % (HOST, port, self.rcvbuf),
                    "--output", "file:%s" % output, "--stats-interval", "0"]
            return Daemon(name, argv, None, rundir)
        if name == "rsyslog":
            conf = rundir / "rsyslog.conf"
            conf.write_text(rsyslog_config(
                rundir, "", "imudp",
                'input(type="imudp" address="%s" port="%d" rcvbufSize="%d")'
                % (HOST, port, self.rcvbuf), output))
            return self._rsyslogd(conf, rundir)
        if name == "syslog-ng":
            conf = rundir / "syslog-ng.conf"
            conf.write_text(syslog_ng_config(
                'syslog(ip("%s") port(%d) transport("udp") so-rcvbuf(%d))'
                % (HOST, port, self.rcvbuf), output, ""))
            return self._syslog_ng(conf, rundir)
        raise ValueError(name)

    def _rsyslogd(self, conf, rundir):
        argv = [str(self.rsyslogd), "-n", "-f", str(conf), "-i", str(rundir / "rsyslogd.pid"),
                "-M", str(self.rsyslog_modules)]
        return Daemon("rsyslog", argv, self.rsyslog_env, rundir)

    def _syslog_ng(self, conf, rundir):
        argv = [self.syslog_ng, "-F", "--no-caps", "-f", str(conf),
                "-R", str(rundir / "syslog-ng.persist"), "-p", str(rundir / "syslog-ng.pid"),
                "-c", str(rundir / "syslog-ng.ctl")] + self.syslog_ng_extra
        return Daemon("syslog-ng", argv, self.syslog_ng_env, rundir)


# --------------------------------------------------------------------------
# workload (a): file -> file


def make_input(args):
    data = Path(args.workdir) / ("lines-%d.ndjson" % args.lines)
    if not data.exists():
        log("generating %d lines -> %s" % (args.lines, data))
        subprocess.run([sys.executable, str(REPO / "bench/gen_lines.py"), "--lines",
                        str(args.lines), "--out", str(data), "--seed", "42", "--check"],
                       check=True, stdout=subprocess.DEVNULL)
    return data


def count_lines(path):
    lines = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 20)
            if not block:
                return lines
            lines += block.count(b"\n")


def same_bytes(a, b):
    with open(a, "rb") as left, open(b, "rb") as right:
        while True:
            x = left.read(1 << 20)
            y = right.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def same_lines(a, b):
    """The same lines, each as often, in any order."""
    with open(a, "rb") as left, open(b, "rb") as right:
        return sorted(left.read().split(b"\n")) == sorted(right.read().split(b"\n"))


def file_run(systems, name, source, lines_in, rundir):
    bytes_in = source.stat().st_size
    output = rundir / "out.log"
    start = time.monotonic()
    daemon = systems.start_file(name, rundir, source, output)
    try:
        size, grew = 0, time.monotonic()
        while True:
            now = time.monotonic()
            try:
                current = output.stat().st_size
            except FileNotFoundError:
                current = 0
            if current >= bytes_in:
                done = now
                break
            if current != size:
                size, grew = current, now
            elif now - grew > STALL_S:
                raise Failure("%s: output stuck at %d of %d bytes for %d s\n%s"
                              % (name, current, bytes_in, STALL_S, daemon.diagnostics()))
            daemon.check_alive("the file workload")
            time.sleep(POLL_S)
        cpu_s = daemon.cpu_s()
        peak_rss_kib = proc_status_kib(daemon.pid, "VmHWM")
    finally:
        status = daemon.stop()
    time.sleep(0.05)
    lines_out = count_lines(output)
    bytes_out = output.stat().st_size
    if lines_out != lines_in or bytes_out != bytes_in:
        raise Failure("%s: output has %d lines / %d bytes, input %d lines / %d bytes\n%s"
                      % (name, lines_out, bytes_out, lines_in, bytes_in, daemon.diagnostics()))
    # Byte for byte, or else the same lines in another order (rsyslog's
    # main queue runs several workers, which may reorder).
    in_order = same_bytes(source, output)
    if not in_order and not same_lines(source, output):
        raise Failure("%s: output has every line count and byte count right but not the "
                      "input's lines\n%s" % (name, daemon.diagnostics()))
    wall_s = done - start
    return {"wall_s": wall_s, "lines_in": lines_in, "lines_out": lines_out,
            "bytes_in": bytes_in, "bytes_out": bytes_out,
            "lines_per_s": lines_in / wall_s, "mb_per_s": bytes_in / wall_s / 1e6,
            "cpu_s": cpu_s, "peak_rss_mib": peak_rss_kib / 1024, "in_order": in_order,
            "exit_status": status}


def dd_floor(source, rundir):
    output = rundir / "out.log"
    start = time.monotonic()
    subprocess.run(["dd", "if=%s" % source, "of=%s" % output, "bs=1M", "status=none"], check=True)
    wall_s = time.monotonic() - start
    if output.stat().st_size != source.stat().st_size:
        raise Failure("dd copied %d of %d bytes" % (output.stat().st_size, source.stat().st_size))
    output.unlink()
    return {"wall_s": wall_s, "lines_per_s": None, "mb_per_s": source.stat().st_size / wall_s / 1e6}


# --------------------------------------------------------------------------
# workload (b): syslog over UDP -> file


def wait_bound(daemon, port, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if udp_socket_row(port) is not None:
            return
        daemon.check_alive("start-up")
        time.sleep(0.01)
    raise Failure("%s did not bind %s:%d within %d s\n%s"
                  % (daemon.name, HOST, port, timeout_s, daemon.diagnostics()))


def blast(loadgen, port, rate, seconds, size):
    argv = [str(loadgen), "udp", "send", "--to", "%s:%d" % (HOST, port), "--count", "0",
            "--duration", "%gs" % seconds, "--size", str(size), "--format", "syslog"]
    if rate:
        argv += ["--rate", str(rate)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise Failure("loadgen udp send failed (%d): %s" % (done.returncode, done.stderr.strip()))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result.get("other_errors", 0):
        raise Failure("loadgen udp send: %d send errors other than ENOBUFS/EAGAIN" % result["other_errors"])
    return result


class LineCounter:
    """Counts the lines of a file that is still being written, incrementally."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = 0

    def update(self):
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                while True:
                    block = handle.read(1 << 20)
                    if not block:
                        break
                    self.offset += len(block)
                    self.lines += block.count(b"\n")
        except FileNotFoundError:
            pass
        return self.lines


def settle(daemon, counter, port, expected, quiet_s=1.0, timeout_s=120):
    """Wait until the daemon wrote `expected` lines, or its output and socket
    stayed unchanged for quiet_s (it lost some). Returns the lines written."""
    deadline = time.monotonic() + timeout_s
    last, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        lines = counter.update()
        queued = (udp_socket_row(port) or (0, 0))[0]
        if lines >= expected and queued == 0:
            return lines
        now = time.monotonic()
        if lines != last or queued:
            last, changed = lines, now
        elif now - changed >= quiet_s:
            return lines
        daemon.check_alive("the UDP workload")
        time.sleep(0.01)
    raise Failure("%s: still writing after %d s (%d of %d lines)" % (daemon.name, timeout_s,
                                                                     counter.lines, expected))


def udp_run(systems, blaster, name, rate, args, rundir):
    port = free_port(socket.SOCK_DGRAM)
    output = rundir / "out.log"
    daemon = systems.start_udp(name, rundir, port, output)
    try:
        wait_bound(daemon, port)
        time.sleep(0.3)
        rcvbuf = granted_rcvbuf(port)
        drops_before = udp_socket_row(port)[1]
        cpu_before = daemon.cpu_s()
        sender = blast(blaster, port, rate, args.rate_seconds, args.size)
        counter = LineCounter(output)
        row = udp_socket_row(port)
        kernel_drops = row[1] - drops_before
        received = settle(daemon, counter, port, sender["sent"] - kernel_drops)
        kernel_drops = udp_socket_row(port)[1] - drops_before
        peak_rss_kib = proc_status_kib(daemon.pid, "VmHWM")
    finally:
        status = daemon.stop()
    # CPU from the start of sending to the daemon's exit, so lines flushed
    # while it stops are paid for too (they are counted below).
    cpu_s = daemon.total_cpu_s - cpu_before
    received = max(received, LineCounter(output).update())
    sent = sender["sent"]
    if received > sent:
        raise Failure("%s: %d lines written for %d datagrams sent\n%s"
                      % (name, received, sent, daemon.diagnostics()))
    lost = sent - received
    return {"rate": rate, "sent": sent, "send_s": sender["elapsed_s"],
            "sent_per_s": sent / sender["elapsed_s"], "received": received,
            "received_per_s": received / sender["elapsed_s"],
            "loss_pct": 100.0 * lost / sent if sent else 0.0,
            "kernel_drops": kernel_drops, "daemon_loss": max(0, lost - kernel_drops),
            "cpu_s": cpu_s, "cpu_s_per_million": cpu_s / received * 1e6 if received else None,
            "peak_rss_mib": peak_rss_kib / 1024, "rcvbuf_granted": rcvbuf, "exit_status": status}


def udp_floor_run(loadgen, rate, args):
    """The bare recvmmsg loop (`loadgen udp floor`) at the same rate."""
    port = free_port(socket.SOCK_DGRAM)
    process = subprocess.Popen([str(loadgen), "udp", "floor", "--bind", "%s:%d" % (HOST, port), "--rcvbuf",
                                str(args.rcvbuf), "--idle-exit", "1s"],
                               stdout=subprocess.PIPE, text=True)
    ready = process.stdout.readline()
    if not ready.startswith("ready"):
        raise Failure("loadgen udp floor did not start: %r" % ready)
    sender = blast(loadgen, port, rate, args.rate_seconds, args.size)
    result = json.loads(process.stdout.read().strip().splitlines()[-1])
    process.wait()
    sent, received = sender["sent"], result["received"]
    if received + result["kernel_drops"] != sent:
        raise Failure("loadgen udp floor: received %d + drops %d != sent %d"
                      % (received, result["kernel_drops"], sent))
    return {"rate": rate, "sent": sent, "send_s": sender["elapsed_s"],
            "sent_per_s": sent / sender["elapsed_s"], "received": received,
            "received_per_s": received / sender["elapsed_s"],
            "loss_pct": 100.0 * (sent - received) / sent if sent else 0.0,
            "kernel_drops": result["kernel_drops"], "daemon_loss": 0,
            "cpu_s": result["cpu_s"],
            "cpu_s_per_million": result["cpu_s"] / received * 1e6 if received else None}


# --------------------------------------------------------------------------
# workload (c): idle


def idle_rep(systems, args, repdir):
    """All systems at once, each with its UDP config, nothing sent."""
    daemons = {}
    try:
        for name in args.systems:
            rundir = repdir / name
            rundir.mkdir(parents=True)
            port = free_port(socket.SOCK_DGRAM)
            daemons[name] = systems.start_udp(name, rundir, port, rundir / "out.log")
            wait_bound(daemons[name], port)
        time.sleep(args.idle_settle)
        before = {name: proc_cpu_ns(d.pid) for name, d in daemons.items()}
        time.sleep(args.idle_seconds)
        runs = {}
        for name, daemon in daemons.items():
            daemon.check_alive("the idle workload")
            cpu_s = (proc_cpu_ns(daemon.pid) - before[name]) / 1e9
            runs[name] = {"seconds": args.idle_seconds, "cpu_s": cpu_s,
                          "cpu_pct": 100.0 * cpu_s / args.idle_seconds,
                          "rss_mib": proc_status_kib(daemon.pid, "VmRSS") / 1024,
                          "threads": proc_status_kib(daemon.pid, "Threads")}
        return runs
    finally:
        for daemon in daemons.values():
            daemon.stop()


# --------------------------------------------------------------------------
# summaries, tables, plots


def summarize(runs, keys):
    out = {}
    for key in keys:
        values = [run[key] for run in runs if run.get(key) is not None]
        if values:
            out[key] = {"median": statistics.median(values), "min": min(values),
                        "max": max(values), "n": len(values)}
    return out


def machine_info():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except OSError:
        rmem_max = None
    return {"cores": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "memory_gib": round(mem_kib / 1024 / 1024, 1), "rmem_max": rmem_max,
            "hostname": socket.gethostname()}


def fmt(stat, digits=0, scale=1.0, spread=True):
    if not stat:
        return "–"
    def one(value):
        value = value * scale
        if digits == 0:
            return "{:,.0f}".format(value)
        return "{:,.{}f}".format(value, digits)
    text = one(stat["median"])
    if spread and stat["n"] > 1:
        text += " (%s–%s)" % (one(stat["min"]), one(stat["max"]))
    return text


def markdown(results):
    m = results["machine"]
    s = results["settings"]
    out = []
    out.append("# ringway, rsyslog and syslog-ng on one host\n")
    out.append("Machine: %d cores (%s), %s GiB, Linux %s, net.core.rmem_max %s. %s UTC.\n"
               % (m["cores"], m["cpu_model"], m["memory_gib"], m["kernel"], m["rmem_max"],
                  results["date"]))
    out.append("Versions: %s.\n" % "; ".join("%s" % v for v in results["versions"].values()))
    out.append("Command: `%s`. Medians of %d reps, (min–max) when more than one.\n"
               % (results["command"], s["reps"]))
    out.append("\n## (a) NDJSON file → file, %s lines of ~%d B\n" % (
        "{:,}".format(s["lines"]), round(s["line_bytes"])))
    out.append("Wall time from start until the output holds every line. Every output was "
               "checked against the input: the same lines, each once; *in order* says in how "
               "many runs it was also byte for byte the input.\n")
    out.append("| system | wall s | lines/s | MB/s | CPU-s | peak RSS MiB | in order |")
    out.append("|---|---|---|---|---|---|---|")
    for name in s["systems"]:
        st = results["file"][name]["summary"]
        runs = results["file"][name]["runs"]
        out.append("| %s | %s | %s | %s | %s | %s | %d of %d |" % (
            name, fmt(st.get("wall_s"), 2), fmt(st.get("lines_per_s")), fmt(st.get("mb_per_s"), 1),
            fmt(st.get("cpu_s"), 2), fmt(st.get("peak_rss_mib"), 1),
            sum(1 for run in runs if run["in_order"]), len(runs)))
    st = results["file"]["floor"]["summary"]
    out.append("| floor: `dd bs=1M` copy | %s | – | %s | – | – | – |" % (
        fmt(st.get("wall_s"), 2), fmt(st.get("mb_per_s"), 1)))
    out.append("\n## (b) syslog over UDP → file, %d-byte RFC 5424 datagrams, %g s per rate\n"
               % (s["datagram_bytes"], s["rate_seconds"]))
    out.append("Loss = sent − written; kernel drops are the socket's own counter "
               "(/proc/net/udp); in daemon = loss the kernel did not count. "
               "Receive buffer asked for: %d bytes (granted: %s).%s\n"
               % (s["rcvbuf_asked"], ", ".join("%s %s" % (n, g) for n, g in
                                               results["udp_rcvbuf_granted"].items()),
                  "" if len(set(results["udp_rcvbuf_granted"].values())) <= 1 else
                  " **The systems got different receive buffers: their UDP figures are "
                  "not comparable.**"))
    out.append("| system | rate | sent/s | received/s | loss % | kernel drops | in daemon "
               "| CPU-s per M |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name in s["systems"] + ["floor"]:
        label = "floor: bare `recvmmsg` loop" if name == "floor" else name
        for rate in s["rates"]:
            st = results["udp"][name][rate_label(rate)]["summary"]
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, rate_label(rate), fmt(st.get("sent_per_s"), spread=False),
                fmt(st.get("received_per_s")), fmt(st.get("loss_pct"), 2),
                fmt(st.get("kernel_drops")), fmt(st.get("daemon_loss")),
                fmt(st.get("cpu_s_per_million"), 2)))
    out.append("\n## (c) idle, %g s with the UDP config, nothing sent\n" % s["idle_seconds"])
    out.append("| system | CPU ms | CPU % | RSS MiB | threads |")
    out.append("|---|---|---|---|---|")
    for name in s["systems"]:
        st = results["idle"][name]["summary"]
        out.append("| %s | %s | %s | %s | %s |" % (
            name, fmt(st.get("cpu_s"), 1, scale=1000), fmt(st.get("cpu_pct"), 3),
            fmt(st.get("rss_mib"), 1),
            fmt(st.get("threads"), spread=False)))
    out.append("\nPlots: [throughput.svg](throughput.svg), [loss.svg](loss.svg).")
    return "\n".join(out) + "\n"


COLORS = {"ringway": "#1b6ac9", "rsyslog": "#d9480f", "syslog-ng": "#2b8a3e", "floor": "#868e96"}


def plots(results, outdir):
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "ringway"   # reproducible ids
    plt.rcParams["svg.fonttype"] = "none"      # text stays text
    s = results["settings"]
    names = s["systems"]

    def err(stat):
        return [[stat["median"] - stat["min"]], [stat["max"] - stat["median"]]]

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, name in enumerate(names):
        st = results["file"][name]["summary"]["lines_per_s"]
        left.bar(i, st["median"] / 1e3, yerr=[[v / 1e3 for v in e] for e in err(st)],
                 color=COLORS[name], capsize=4)
    left.set_xticks(range(len(names)), names)
    left.set_ylabel("thousand lines/s")
    left.set_title("(a) NDJSON file → file, %s lines" % "{:,}".format(s["lines"]))
    width = 0.8 / len(names)
    labels = [rate_label(r) for r in s["rates"]]
    for i, name in enumerate(names):
        medians, errors = [], [[], []]
        for label in labels:
            st = results["udp"][name][label]["summary"]["received_per_s"]
            medians.append(st["median"] / 1e3)
            e = err(st)
            errors[0].append(e[0][0] / 1e3)
            errors[1].append(e[1][0] / 1e3)
        xs = [x + (i - (len(names) - 1) / 2) * width for x in range(len(labels))]
        sent = [results["udp"][name][label]["summary"]["sent_per_s"]["median"] / 1e3
                for label in labels]
        # Outline: what the blaster got onto the socket (unthrottled, that
        # depends on the CPU the receiver leaves it); filled: what was written.
        right.bar(xs, sent, width, fill=False, edgecolor=COLORS[name], linewidth=0.8,
                  linestyle="--")
        right.bar(xs, medians, width, yerr=errors, color=COLORS[name], capsize=3, label=name)
    right.set_xticks(range(len(labels)), ["%s/s" % l if l != "max" else "unthrottled"
                                          for l in labels])
    right.set_xlabel("send rate asked of the blaster")
    right.set_ylabel("thousand datagrams/s: written (dashed: sent)")
    right.set_title("(b) syslog over UDP → file")
    right.legend()
    figure.suptitle("median of %d reps, bars: min–max — %d cores, Linux %s"
                    % (s["reps"], results["machine"]["cores"], results["machine"]["kernel"]),
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(outdir / "throughput.svg", metadata={"Date": None})
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name in names + ["floor"]:
        xs, ys, lo, hi = [], [], [], []
        for rate in s["rates"]:
            summary = results["udp"][name][rate_label(rate)]["summary"]
            xs.append(summary["sent_per_s"]["median"] / 1e3)
            st = summary["loss_pct"]
            ys.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        axis.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=COLORS[name],
                      linestyle="--" if name == "floor" else "-",
                      label="bare recvmmsg loop (floor)" if name == "floor" else name)
    axis.set_xlabel("datagrams sent, thousand/s (last point: unthrottled)")
    axis.set_ylabel("loss % (sent − written)")
    axis.set_title("(b) syslog over UDP → file: loss against send rate", fontsize=11)
    axis.set_ylim(bottom=-2)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(outdir / "loss.svg", metadata={"Date": None})
    plt.close(figure)


# --------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 20k lines, one rep, 1 s per rate, 3 s idle")
    parser.add_argument("--lines", type=parse_count, help="lines of the file workload (1M)")
    parser.add_argument("--reps", type=int, help="repetitions of every run (3)")
    parser.add_argument("--rates", type=parse_rates,
                        help="UDP send rates, datagrams/s, 'max' = unthrottled (50k,100k,200k,max)")
    parser.add_argument("--rate-seconds", type=float, help="seconds of sending per rate (10)")
    parser.add_argument("--size", type=int, default=200, help="datagram bytes (200)")
    parser.add_argument("--idle-seconds", type=float, help="idle measurement per rep (60)")
    parser.add_argument("--idle-settle", type=float, default=2.0,
                        help="seconds after start-up before the idle measurement (2)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated subset of %s" % ",".join(SYSTEMS))
    parser.add_argument("--workdir", default="/tmp/ringway-compare",
                        help="data and scratch files (/tmp/ringway-compare)")
    parser.add_argument("--results-dir",
                        help="where results go (bench/results/<UTC date>; with --quick: "
                             "WORKDIR/results-quick)")
    parser.add_argument("--ringway", default=str(REPO / "target/release/ringway"),
                        help="the ringway binary (target/release/ringway)")
    parser.add_argument("--loadgen", default=str(REPO / "target/release/examples/loadgen"),
                        help="bench/loadgen/, built (target/release/examples/loadgen): the UDP "
                             "sender and the bare recvmmsg floor")
    parser.add_argument("--rsyslog-root", default=str(REPO / "target/rsyslog/root"),
                        help="rsyslog unpacked by scripts/fetch-rsyslog.sh (target/rsyslog/root)")
    parser.add_argument("--syslog-ng", default=shutil.which("syslog-ng") or "/usr/sbin/syslog-ng",
                        help="the syslog-ng binary (found on PATH)")
    parser.add_argument("--syslog-ng-root",
                        help="a syslog-ng-core unpacked with dpkg -x (instead of --syslog-ng)")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep every run's files under WORKDIR/runs (deleted by default)")
    parser.add_argument("--replot", metavar="DIR",
                        help="only rewrite DIR/results.md and the plots from DIR/results.json")
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.replot:
        results_dir = Path(args.replot)
        results = json.loads((results_dir / "results.json").read_text())
        (results_dir / "results.md").write_text(markdown(results))
        plots(results, results_dir)
        log("rewrote %s/{results.md,throughput.svg,loss.svg}" % results_dir)
        return 0
    quick = args.quick
    args.rcvbuf = rcvbuf_to_ask()
    args.lines = args.lines or (20_000 if quick else 1_000_000)
    args.reps = args.reps or (1 if quick else 3)
    args.rates = args.rates or [50_000, 100_000, 200_000, 0]
    args.rate_seconds = args.rate_seconds or (1.0 if quick else 10.0)
    args.idle_seconds = args.idle_seconds or (3.0 if quick else 60.0)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown or not args.systems:
        parser.error("--systems: unknown %s (choose from %s)" % (",".join(unknown) or "(none)",
                                                                ",".join(SYSTEMS)))
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.syslog_ng_root:
        args.syslog_ng = str(Path(args.syslog_ng_root) / "usr/sbin/syslog-ng")
    for what in ("ringway", "loadgen", "syslog_ng"):
        path = Path(getattr(args, what))
        if not (path.is_file() and os.access(path, os.X_OK)):
            parser.error("%s not found or not executable: %s (bench/compare.sh builds and "
                         "installs everything)" % (what.replace("_", "-"), path))
    date = datetime.datetime.now(datetime.timezone.utc)
    results_dir = Path(args.results_dir) if args.results_dir else (
        Path(args.workdir) / "results-quick" if quick
        else REPO / "bench/results" / date.strftime("%Y-%m-%d"))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs_dir = workdir / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir()

    try:
        systems = Systems(args)
        source = make_input(args)
        results = {
            "date": date.strftime("%Y-%m-%d %H:%M"),
            "command": args.command or shlex.join(["bench/compare.py"] + sys.argv[1:]),
            "machine": machine_info(),
            "versions": systems.versions(),
            "settings": {"systems": args.systems, "reps": args.reps, "lines": args.lines,
                         "line_bytes": source.stat().st_size / args.lines,
                         "rates": args.rates, "rate_seconds": args.rate_seconds,
                         "datagram_bytes": args.size, "idle_seconds": args.idle_seconds,
                         "rcvbuf_asked": args.rcvbuf, "quick": quick},
            "file": {}, "udp": {}, "idle": {}, "udp_rcvbuf_granted": {},
        }
        subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # warm cache

        file_runs = {name: [] for name in args.systems + ["floor"]}
        for rep in range(args.reps):
            for name in args.systems + ["floor"]:
                rundir = runs_dir / ("file-%s-%d" % (name, rep))
                rundir.mkdir()
                subprocess.run(["sync"], check=True)
                run = dd_floor(source, rundir) if name == "floor" else \
                    file_run(systems, name, source, args.lines, rundir)
                file_runs[name].append(run)
                log("file rep %d %-9s %6.2f s  %10s lines/s  %7.1f MB/s" % (
                    rep + 1, name, run["wall_s"],
                    "-" if run["lines_per_s"] is None else "{:,.0f}".format(run["lines_per_s"]),
                    run["mb_per_s"]))
                if not args.keep_outputs:
                    shutil.rmtree(rundir)
        for name, runs in file_runs.items():
            results["file"][name] = {"runs": runs, "summary": summarize(
                runs, ["wall_s", "lines_per_s", "mb_per_s", "cpu_s", "peak_rss_mib"])}

        udp_runs = {name: {rate_label(r): [] for r in args.rates}
                    for name in args.systems + ["floor"]}
        for rep in range(args.reps):
            for rate in args.rates:
                for name in args.systems + ["floor"]:
                    rundir = runs_dir / ("udp-%s-%s-%d" % (name, rate_label(rate), rep))
                    rundir.mkdir()
                    if name == "floor":
                        run = udp_floor_run(Path(args.loadgen), rate, args)
                    else:
                        run = udp_run(systems, Path(args.loadgen), name, rate, args, rundir)
                        results["udp_rcvbuf_granted"][name] = run["rcvbuf_granted"]
                    udp_runs[name][rate_label(rate)].append(run)
                    log("udp rep %d %-5s %-9s sent %9.0f/s  written %9.0f/s  loss %6.2f%%  "
                        "kernel drops %d  in daemon %d" % (
                            rep + 1, rate_label(rate), name, run["sent_per_s"],
                            run["received_per_s"], run["loss_pct"], run["kernel_drops"],
                            run["daemon_loss"]))
                    if not args.keep_outputs:
                        shutil.rmtree(rundir)
        granted = results["udp_rcvbuf_granted"]
        if len(set(granted.values())) > 1:
            log("compare: WARNING: the systems got different UDP receive buffers (%s): their "
                "UDP figures are not comparable" % granted)
        for name, by_rate in udp_runs.items():
            results["udp"][name] = {label: {"runs": runs, "summary": summarize(
                runs, ["sent_per_s", "received_per_s", "loss_pct", "kernel_drops",
                       "daemon_loss", "cpu_s_per_million"])} for label, runs in by_rate.items()}

        idle_runs = {name: [] for name in args.systems}
        for rep in range(args.reps):
            repdir = runs_dir / ("idle-%d" % rep)
            for name, run in idle_rep(systems, args, repdir).items():
                idle_runs[name].append(run)
                log("idle rep %d %-9s CPU %.3f s  RSS %.1f MiB" % (rep + 1, name, run["cpu_s"],
                                                                   run["rss_mib"]))
            if not args.keep_outputs:
                shutil.rmtree(repdir)
        for name, runs in idle_runs.items():
            results["idle"][name] = {"runs": runs, "summary": summarize(
                runs, ["cpu_s", "cpu_pct", "rss_mib", "threads"])}
    except Failure as failure:
        log("compare: FAILED: %s" % failure)
        return 1

    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (results_dir / "results.md").write_text(table)
    plots(results, results_dir)
    print(table)
    log("results: %s/{results.json,results.md,throughput.svg,loss.svg}" % results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
