#!/usr/bin/env bash
# ringway side by side with rsyslog and syslog-ng on this host: one command.
#
#   bench/compare.sh                 # full run: 1M lines, 3 reps, 10 s per UDP rate,
#                                    # an idle minute (about 15 minutes)
#   bench/compare.sh --quick         # smoke test: 20k lines, 1 rep, 1 s per rate, 3 s idle
#   bench/compare.sh --install-only  # only install and build what the comparison needs
#   bench/compare.sh --help          # every flag of bench/compare.py
#
# It installs what it needs when absent, without touching the host's logging:
# - syslog-ng: Debian's syslog-ng-core with apt on a container or CI machine
#   (PID 1 is no init system, or CI is set), when that removes no package and
#   apt may start no service (a policy-rc.d that exits 101, added for the
#   install when there is none). Anywhere else (a booted host, whose init
#   would start it; another syslog daemon installed) the packages apt would
#   install are fetched with `apt-get download` and unpacked with `dpkg -x`
#   into target/syslog-ng/root instead, never installed.
# - rsyslog: always `apt-get download` + `dpkg -x` into target/rsyslog/root
#   (scripts/fetch-rsyslog.sh); it conflicts with syslog-ng-core in apt.
# - matplotlib (pinned) from PyPI in a venv, target/bench-venv.
# - ringway and loadgen (the UDP sender and floor): cargo build --release.
# Both daemons then run only in the foreground with their own config files,
# state files and ports under the work directory (/tmp/ringway-compare), and
# are stopped at the end of each run: never as system services.
#
# Results: bench/results/<UTC date>/{results.json,results.md,throughput.svg,
# loss.svg} (with --quick: /tmp/ringway-compare/results-quick/). Every other
# argument goes to bench/compare.py.
set -euo pipefail
cd "$(dirname "$0")/.."

matplotlib_version=3.10.8
venv=target/bench-venv

# --help needs nothing installed (matplotlib is imported only to plot).
for arg in "$@"; do
    case "$arg" in
        -h|--help) exec python3 bench/compare.py --help ;;
    esac
done

install_only=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--install-only" ]; then install_only=1; else args+=("$arg"); fi
done

say() { echo "compare.sh: $*" >&2; }

# True on a machine whose services nobody boots: a container or a CI job
# (PID 1 is not an init system). Elsewhere apt would enable syslog-ng's boot
# script or unit, so it is unpacked privately instead.
throwaway_machine() {
    [ -n "${CI:-}" ] && return 0
    case "$(cat /proc/1/comm 2>/dev/null)" in
        systemd|init|openrc-init|runit|s6-svscan|busybox) return 1 ;;
    esac
    return 0
}

# True when apt may not start services: no policy-rc.d (this script adds
# one for the install) or one that forbids starting syslog-ng (exit 101).
services_blocked() {
    [ ! -e /usr/sbin/policy-rc.d ] && return 0
    local verdict=0
    /usr/sbin/policy-rc.d syslog-ng start >/dev/null 2>&1 || verdict=$?
    [ "$verdict" = 101 ]
}

# Debian's syslog-ng-core. Prints nothing; sets syslog_ng_args for compare.py.
syslog_ng_args=()
ensure_syslog_ng() {
    local private=target/syslog-ng
    if [ "${COMPARE_PRIVATE_SYSLOG_NG:-0}" != 1 ]; then
        if command -v syslog-ng >/dev/null 2>&1; then
            syslog_ng_args=(--syslog-ng "$(command -v syslog-ng)")
            return
        fi
        if [ -x /usr/sbin/syslog-ng ]; then
            syslog_ng_args=(--syslog-ng /usr/sbin/syslog-ng)
            return
        fi
    fi
    if [ -x "$private/root/usr/sbin/syslog-ng" ]; then
        syslog_ng_args=(--syslog-ng-root "$PWD/$private/root")
        return
    fi
    command -v apt-get >/dev/null 2>&1 || { say "apt-get not found: install syslog-ng yourself (Debian/Ubuntu only here)"; exit 1; }
    local plan
    if ! plan=$(apt-get install -s --no-install-recommends syslog-ng-core 2>&1); then
        apt-get update -qq
        plan=$(apt-get install -s --no-install-recommends syslog-ng-core)
    fi
    if [ "${COMPARE_PRIVATE_SYSLOG_NG:-0}" != 1 ] && ! grep -q '^Remv' <<<"$plan" \
        && throwaway_machine && services_blocked; then
        say "installing syslog-ng-core with apt (no service is started)"
        local guard=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            # Tell invoke-rc.d not to start the daemon apt installs (man
            # invoke-rc.d: exit 101 = action forbidden); removed afterwards.
            guard=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$guard"
            chmod 755 "$guard"
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            syslog-ng-core >/dev/null
        if [ -n "$guard" ]; then rm -f "$guard"; trap - EXIT; fi
        syslog_ng_args=(--syslog-ng "$(command -v syslog-ng || echo /usr/sbin/syslog-ng)")
        return
    fi
    # Installing would remove a package (the host's own syslog daemon),
    # enable a service on a booted machine, or let apt start it: unpack
    # privately instead.
    say "unpacking syslog-ng-core into $private/root (apt-get download + dpkg -x; not installed)"
    local packages
    packages=$(awk '/^Inst /{print $2}' <<<"$plan")
    [ -n "$packages" ] || packages=syslog-ng-core
    rm -rf "$private"
    mkdir -p "$private/debs" "$private/root"
    # shellcheck disable=SC2086
    (cd "$private/debs" && apt-get download -qq $packages)
    for deb in "$private"/debs/*.deb; do dpkg -x "$deb" "$private/root"; done
    syslog_ng_args=(--syslog-ng-root "$PWD/$private/root")
}

ensure_syslog_ng
rsyslogd=$(bash scripts/fetch-rsyslog.sh)
say "rsyslog: $rsyslogd"

command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || {
    say "installing python3-venv with apt"
    apt-get install -y -qq python3 python3-venv >/dev/null
}
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p target
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import matplotlib, sys; sys.exit(matplotlib.__version__ != '$matplotlib_version')" 2>/dev/null; then
    say "installing matplotlib $matplotlib_version into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$matplotlib_version"
fi

# RINGWAY_BIN / RINGWAY_LOADGEN: use these binaries as they are (tests pass
# cargo's own); otherwise build them.
if [ -z "${RINGWAY_BIN:-}" ] || [ -z "${RINGWAY_LOADGEN:-}" ]; then
    cargo build --release --quiet --bin ringway --example loadgen
fi
[ "$install_only" = 1 ] && exit 0

exec "$venv/bin/python" bench/compare.py \
    --command "bench/compare.sh${*:+ $*}" \
    --ringway "${RINGWAY_BIN:-target/release/ringway}" \
    --loadgen "${RINGWAY_LOADGEN:-target/release/examples/loadgen}" \
    --rsyslog-root "$(cd "$(dirname "$rsyslogd")/../.." && pwd)" \
    "${syslog_ng_args[@]}" \
    "${args[@]}"
