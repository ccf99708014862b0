#!/usr/bin/env python3
"""Generate deterministic newline-delimited JSON log lines for benchmarks.

Each line is a JSON object of ~200 bytes with 8-11 fields. The data exercises
the parts of a JSON scanner that matter: escaped quotes (\\"), escaped
backslashes (\\\\), \\uXXXX escapes, and raw multi-byte UTF-8.

Speed: a pool of a few thousand varied line templates is built once (seeded,
so the output is byte-for-byte reproducible), each with a "%d" slot for the
"seq" field. Blocks of the pool are then rendered with a single bytes
%-format call per block, so 10M lines (~2 GB) take seconds, not minutes.

Every template is checked with json.loads when the pool is built, so every
generated line is valid JSON. --check additionally re-reads a sample of the
written file and parses it.

Usage:
  gen_lines.py --lines N --out PATH [--seed S] [--check]
  gen_lines.py --out PATH --check          # check an existing file only
"""

import argparse
import json
import os
import random
import sys
import time

POOL_SIZE = 4096          # distinct line templates, rendered cyclically
TARGET_MIN, TARGET_MAX = 130, 230   # per-line length target -> ~200 B mean

LEVELS = ["info"] * 6 + ["debug"] * 2 + ["warn", "error"]
SERVICES = ["api-gateway", "checkout", "auth", "search", "billing",
            "inventory", "notifier", "média-sync", "日志服务"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
PATHS = ["/v1/orders", "/v1/users/me", "/healthz", "/v2/search?q=caf%C3%A9",
         "/static/app.js", "/v1/cart/items", "/api/ünïcode/päth"]
WORDS = ["request", "completed", "cache", "miss", "upstream", "timeout",
         "retrying", "connection", "reset", "by", "peer", "user", "logged",
         "in", "payload", "accepted", "queue", "depth", "ok", "slow"]
# Fragments that force the interesting escape paths in a JSON encoder/decoder.
# Rendered with ensure_ascii=False: quotes and backslashes become \" and \\,
# control characters become \uXXXX, and non-ASCII stays raw UTF-8.
SPICE = [
    'said "hello"',
    'path C:\\Users\\svc\\logs',
    'regex ^\\d+\\s*$',
    'tab\there',
    'bell\x07and\x1bescape',
    'naïve café — résumé',
    'Grüße aus München',
    '東京 データ 送信',
    'emoji 🚀 ok ✅',
    'nested {"k": "v\\n"}',
]
# Field rendered with ensure_ascii=True, so its non-ASCII text becomes
# \uXXXX escapes (including surrogate pairs for the emoji).
ESCAPED_UA = [
    "Mozilla/5.0 (X11; Linux x86_64) naïve/1.0",
    "curl/8.5.0",
    "client-é/2.3 (ß; 漢字)",
    "bot 🤖/0.9",
    "Go-http-client/1.1",
]


def _js(value, ascii_only=False):
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))


def build_template(rng, i):
    """One line as text with a single '%d' slot for seq (other '%' escaped)."""
    ts = "2024-05-%02dT%02d:%02d:%02d.%03dZ" % (
        1 + i % 28, rng.randrange(24), rng.randrange(60), rng.randrange(60),
        rng.randrange(1000))
    msg_words = [rng.choice(WORDS) for _ in range(rng.randint(0, 1))]
    msg_words.insert(rng.randrange(len(msg_words) + 1), rng.choice(SPICE))
    fields = [
        ("ts", _js(ts)),
        ("level", _js(rng.choice(LEVELS))),
        ("svc", _js(rng.choice(SERVICES))),
        ("req", _js(rng.choice(METHODS) + " " + rng.choice(PATHS))),
        ("status", str(rng.choice([200, 200, 200, 201, 204, 301, 404, 500, 503]))),
        ("ms", "%.2f" % rng.uniform(0.1, 900.0)),
        ("seq", "\0SEQ\0"),   # placeholder, becomes %d below
        ("msg", None),        # filled last, padded to the target length
    ]
    if rng.random() < 0.5:
        fields.insert(3, ("host", _js("web-%03d" % rng.randrange(200))))
    if rng.random() < 0.5:
        fields.insert(6, ("trace", _js("%016x" % rng.getrandbits(64))))
    if rng.random() < 0.4:
        fields.insert(4, ("ua", _js(rng.choice(ESCAPED_UA), ascii_only=True)))
    target = rng.randint(TARGET_MIN, TARGET_MAX)

    def render(msg):
        parts = ['"%s":%s' % (k, _js(msg) if v is None else v) for k, v in fields]
        return "{" + ",".join(parts) + "}"

    msg = " ".join(msg_words)
    # Estimate with a 7-digit seq; pad the message with words up to target.
    while len(render(msg).encode()) - len("\0SEQ\0") + 7 < target:
        msg += " " + rng.choice(WORDS)
    line = render(msg)
    return line.replace("%", "%%").replace("\0SEQ\0", "%d")


def build_pool(seed, size=POOL_SIZE):
    rng = random.Random(seed)
    pool = []
    for i in range(size):
        tmpl = build_template(rng, i)
        json.loads(tmpl % 1234567)   # every template must yield valid JSON
        pool.append(tmpl.encode("utf-8") + b"\n")
    return pool


def generate(lines, out_path, seed, block_lines=POOL_SIZE):
    """Write `lines` lines to out_path; return bytes written."""
    pool = build_pool(seed, block_lines)
    block_fmt = b"".join(pool)
    written = 0
    tmp_path = out_path + ".tmp"
    with open(tmp_path, "wb", buffering=0) as f:
        seq = 0
        full_blocks, rest = divmod(lines, block_lines)
        for _ in range(full_blocks):
            data = block_fmt % tuple(range(seq, seq + block_lines))
            f.write(data)
            written += len(data)
            seq += block_lines
        if rest:
            data = b"".join(pool[:rest]) % tuple(range(seq, seq + rest))
            f.write(data)
            written += len(data)
    os.replace(tmp_path, out_path)
    return written


def check(path, sample=200_000, expected_lines=None):
    """Parse a sample of lines spread over the file; raise on any problem.

    With expected_lines, also count every newline in the file.
    """
    size = os.path.getsize(path)
    if size == 0 and expected_lines == 0:
        return 0
    if size == 0:
        raise ValueError("%s is empty" % path)
    checked = 0
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) != b"\n":
            raise ValueError("%s does not end with a newline" % path)
        # ~64 evenly spaced windows, each parsing a run of consecutive lines.
        windows = 64
        per_window = max(1, sample // windows)
        covered = 0                     # never parse a line twice
        for w in range(windows):
            offset = size * w // windows
            if offset < covered:
                f.seek(covered)
            else:
                f.seek(offset)
                if offset:
                    f.readline()        # skip the partial line we landed in
            for _ in range(per_window):
                line = f.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    raise ValueError("unterminated line at end of %s" % path)
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise ValueError("invalid JSON near byte %d: %s: %r"
                                     % (f.tell() - len(line), e, line[:120]))
                if not isinstance(obj, dict) or len(obj) < 6:
                    raise ValueError("not an object with >= 6 fields: %r" % line[:120])
                checked += 1
            covered = f.tell()
        if expected_lines is not None:
            f.seek(0)
            count = 0
            while True:
                chunk = f.read(16 << 20)
                if not chunk:
                    break
                count += chunk.count(b"\n")
            if count != expected_lines:
                raise ValueError("%s has %d lines, expected %d"
                                 % (path, count, expected_lines))
    return checked


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, help="number of lines to write")
    ap.add_argument("--out", required=True, help="output file path")
    ap.add_argument("--seed", type=int, default=42, help="RNG seed [42]")
    ap.add_argument("--check", action="store_true",
                    help="parse a sample of the file with json.loads "
                         "(after generating, or on an existing file without --lines)")
    ap.add_argument("--sample", type=int, default=200_000,
                    help="lines parsed by --check [200000]")
    args = ap.parse_args(argv)
    if args.lines is None and not args.check:
        ap.error("--lines is required unless only --check is given")
    if args.lines is not None and args.lines < 0:
        ap.error("--lines must be >= 0")

    if args.lines is not None:
        t0 = time.perf_counter()
        nbytes = generate(args.lines, args.out, args.seed)
        dt = time.perf_counter() - t0
        avg = nbytes / args.lines if args.lines else 0
        print("wrote %d lines, %d bytes (%.1f B/line avg) to %s in %.2fs"
              % (args.lines, nbytes, avg, args.out, dt), file=sys.stderr)
    if args.check:
        try:
            n = check(args.out, args.sample, args.lines)
        except (OSError, ValueError) as e:
            print("check FAILED: %s" % e, file=sys.stderr)
            return 1
        print("check ok: %d sampled lines parsed as JSON objects" % n,
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
