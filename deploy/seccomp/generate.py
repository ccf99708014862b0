#!/usr/bin/env python3
"""Builds deploy/seccomp/ringway.json from Docker's default seccomp profile.

The input is upstream/docker-28.5.2-default.json, Docker's default profile
in Docker's own format (archMap, and rules with includes/excludes on
architecture, capability and kernel version). containerd, which runs most
Kubernetes pods, reads a Localhost profile as a plain OCI runtime-spec
LinuxSeccomp and ignores those keys: every conditional rule would then apply
to every container. So this script resolves the conditions the way Docker
does when it starts a container (moby/profiles/seccomp, setupSeccomp), for
one architecture and a container holding none of the capabilities the
rules are conditional on, and writes the result in the plain OCI format,
which Docker, containerd and CRI-O all read the same way.

The only rule it adds is the first one: io_uring_setup, io_uring_enter and
io_uring_register, which Docker (since 25.0) and containerd (since 2.0)
removed from their defaults and ringway cannot run without.

Usage: generate.py [--arch amd64|arm64] [--check]
  --check  exit 1, saying so, when ringway.json differs from what this
           script writes (tests/it/seccomp.rs runs this).
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream" / "docker-28.5.2-default.json"
OUTPUT = HERE / "ringway.json"

IO_URING = ["io_uring_enter", "io_uring_register", "io_uring_setup"]

# Docker's names for the architectures (runtime.GOARCH spellings), and the
# seccomp architecture each maps to in the profile's archMap.
NATIVE_TO_SECCOMP = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}

# ringway needs Linux 5.11 or later (src/uring.rs, probe_kernel), so a rule
# conditional on an older minimum kernel always applies.
RINGWAY_MIN_KERNEL = (5, 11)


def kernel_at_least(version):
    wanted = tuple(int(part) for part in version.split("."))
    return RINGWAY_MIN_KERNEL >= wanted


def applies(rule, arch, caps):
    """Docker's setupSeccomp filter for one rule (same order of checks)."""
    excludes = rule.get("excludes") or {}
    if arch in (excludes.get("arches") or []):
        return False
    if any(cap in caps for cap in excludes.get("caps") or []):
        return False
    if excludes.get("minKernel") and kernel_at_least(excludes["minKernel"]):
        return False
    includes = rule.get("includes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(cap not in caps for cap in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and not kernel_at_least(includes["minKernel"]):
        return False
    return True


def oci_rule(rule):
    """The rule with Docker's condition and comment keys dropped."""
    out = {"names": rule["names"], "action": rule["action"]}
    if "errnoRet" in rule:
        out["errnoRet"] = rule["errnoRet"]
    if rule.get("args"):
        out["args"] = rule["args"]
    return out


def build(arch):
    upstream = json.loads(UPSTREAM.read_text())
    # ringway's containers hold no capability that a rule is conditional on
    # (deploy/kubernetes/daemonset.yaml drops them all).
    caps = set()
    seccomp_arch = NATIVE_TO_SECCOMP[arch]
    (arch_map,) = [a for a in upstream["archMap"] if a["architecture"] == seccomp_arch]
    syscalls = [{"names": IO_URING, "action": "SCMP_ACT_ALLOW"}]
    syscalls += [oci_rule(rule) for rule in upstream["syscalls"] if applies(rule, arch, caps)]
    return {
        "defaultAction": upstream["defaultAction"],
        "defaultErrnoRet": upstream["defaultErrnoRet"],
        "architectures": [arch_map["architecture"]] + (arch_map["subArchitectures"] or []),
        "syscalls": syscalls,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(NATIVE_TO_SECCOMP), default="amd64")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(build(args.arch), indent="\t") + "\n"
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is not what generate.py --arch {args.arch} writes; rerun it", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
