#!/usr/bin/env python3
"""Randomized stress of durable file tailing (not part of CI: it is random
and takes half a minute or more).

Four writer threads append numbered lines to logs/app{0..3}.log in random
chunks; now and then a writer rotates its file by rename (app0.log.N) or by
copytruncate (copy to app0.log.N, truncate). Meanwhile ringway tails
logs/*.log* with --data-dir and small buffers and is killed with SIGKILL at
random moments (0.2-2.5 s apart) and restarted, for SECONDS; then a last run
drains everything and is stopped with SIGTERM. Checked: every line written
is in the output (missing=0), no line that was not written and no torn line
(foreign_or_torn=0); duplicates are counted (kills replay up to one
checkpoint interval).

  python3 scripts/stress-file-tailing.py [SEED] [SECONDS]    # defaults 1 25

It found a real bug once (a read at the old offset of a file truncated and
rewritten between two reads); keep it for changes to input/file.rs.
"""
import os, random, signal, subprocess, sys, threading, time, json
import shutil, tempfile
from pathlib import Path
BIN = str(Path(__file__).resolve().parent.parent / "target" / "release" / "ringway")
root = tempfile.mkdtemp(prefix="ringway-stress-")
os.makedirs(f"{root}/logs")
logs = f"{root}/logs"
out = f"{root}/out.log"
data = f"{root}/data"
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
stop = threading.Event()
written = {}  # tag -> count
lock = threading.Lock()

def writer(idx):
    r = random.Random(idx * 7919)
    path = f"{logs}/app{idx}.log"
    gen = 0
    f = open(path, "ab", buffering=0)
    n = 0
    rot = 0
    while not stop.is_set():
        k = r.randint(1, 200)
        tag = f"w{idx}"
        buf = b"".join(b"%s %09d payload-%s\n" % (tag.encode(), n + i, b"x" * r.randint(0, 80)) for i in range(k))
        f.write(buf)
        n += k
        with lock:
            written[tag] = n
        op = r.random()
        if op < 0.01:
            # rename rotation (rotated names still match the glob *.log*)
            rot += 1
            os.rename(path, f"{path}.{rot}")
            f = open(path, "ab", buffering=0)
        elif op < 0.02:
            # copytruncate (pause writes)
            rot += 1
            with open(path, "rb") as src, open(f"{path}.{rot}", "wb") as dst:
                dst.write(src.read())
            os.truncate(path, 0)
        time.sleep(r.random() * 0.004)

threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
for t in threads: t.start()
args = [BIN, "run", "--input", f"file:{logs}/*.log*", "--output", f"file:{out}", "--data-dir", data, "--stats-interval", "0", "--read-buf", "64KiB", "--max-line", "64KiB", "--max-open-files", "8"]
kills = 0
deadline = time.time() + float(sys.argv[2] if len(sys.argv) > 2 else 20)
errf = open(f"{root}/stderr.log", "ab")
while time.time() < deadline:
    p = subprocess.Popen(args, stderr=errf)
    time.sleep(rng.uniform(0.2, 2.5))
    if p.poll() is not None:
        print("ringway exited early", p.returncode); sys.exit(1)
    p.send_signal(signal.SIGKILL); p.wait(); kills += 1
stop.set()
for t in threads: t.join()
# final run: tail until output stable, then SIGTERM
p = subprocess.Popen(args, stderr=errf)
last = -1; stable = 0
while stable < 8:
    time.sleep(0.5)
    sz = os.path.getsize(out)
    stable = stable + 1 if sz == last else 0
    last = sz
p.send_signal(signal.SIGTERM); rc = p.wait()
# verify
seen = {}
bad = 0
with open(out, "rb") as fh:
    for line in fh:
        if not line.endswith(b"\n"): bad += 1; continue
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"payload-"):
            bad += 1; continue
        tag = parts[0].decode(); num = int(parts[1])
        seen.setdefault(tag, {}); seen[tag][num] = seen[tag].get(num, 0) + 1
missing = 0; dups = 0; total = 0
for tag, n in written.items():
    s = seen.get(tag, {})
    for i in range(n):
        c = s.get(i, 0)
        if c == 0: missing += 1
        else: dups += c - 1
    total += n
print(f"kills={kills} rc={rc} written={total} missing={missing} dups={dups} foreign_or_torn={bad}")
ok = rc == 0 and missing == 0 and bad == 0
if ok:
    shutil.rmtree(root)
else:
    print(f"kept {root} for a look (stderr.log, out.log, logs/)")
sys.exit(0 if ok else 1)
