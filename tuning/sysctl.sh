#!/usr/bin/env bash
# tuning/sysctl.sh — check and raise the kernel settings a ringway log host needs.
#
# Sized for a busy, dedicated log host receiving ~1 Gbit/s of syslog over UDP
# (~125 MB/s; at ~300-byte messages that is ~400k datagrams/s) while tailing
# many files. Every recommendation is a *floor*: a value that is already higher
# is left alone, nothing is ever lowered.
#
# Modes (exactly one; --check is the default):
#   --check           print current vs recommended; exit 1 if any value is below
#   --dry-run         print the `sysctl -w` commands --apply would run; change nothing
#   --apply           raise the low values now with `sysctl -w` (root)
#   --persist [FILE]  write a sysctl.d file (default /etc/sysctl.d/60-ringway.conf)
#                     so the raised values survive a reboot (root for /etc)
#   --help
#
# Exit codes: 0 ok / done, 1 a value is below the recommendation (--check) or a
# write failed, 2 bad usage.
#
# Environment (for testing; the defaults are what you want in production):
#   RINGWAY_PROC_SYS  where to read current values   [/proc/sys]
#   RINGWAY_SYSCTL    the sysctl program --apply runs [sysctl]

set -euo pipefail
shopt -s extglob

PROG=${0##*/}
PROC_SYS=${RINGWAY_PROC_SYS:-/proc/sys}
SYSCTL=${RINGWAY_SYSCTL:-sysctl}
DEFAULT_PERSIST=/etc/sysctl.d/60-ringway.conf

PAGE_SIZE=$(getconf PAGESIZE 2>/dev/null || echo 4096)
[[ $PAGE_SIZE =~ ^[0-9]+$ && $PAGE_SIZE -gt 0 ]] || PAGE_SIZE=4096
MiB=$((1024 * 1024))

# ---------------------------------------------------------------------------
# Recommendations. Order here is the order of every table and file we print.
# ---------------------------------------------------------------------------
KEYS=(
  net.core.rmem_max
  net.core.rmem_default
  net.core.netdev_max_backlog
  net.ipv4.udp_mem
  net.ipv4.udp_rmem_min
  fs.inotify.max_user_watches
  fs.inotify.max_user_instances
  fs.file-max
)
declare -A REC WHY

# Upper bound for SO_RCVBUF a process may ask for (ringway's --udp-rcvbuf /
# `rcvbuf=`). 1 Gbit/s is ~125 MB/s; the kernel charges each queued datagram
# its skb truesize (often 1-2 KiB for a 300-byte message), so 32 MiB (the
# kernel doubles it to 64 MiB of truesize) rides out a ~100-250 ms stall of the
# reader (GC pause elsewhere, disk hiccup, CPU contention) without drops. The
# kernel default (208 KiB) overflows in about a millisecond at this rate.
REC[net.core.rmem_max]=$((32 * MiB))
WHY[net.core.rmem_max]="max SO_RCVBUF a socket may request; 32 MiB absorbs ~100-250 ms reader stall at 1 Gbit/s"

# Receive buffer of sockets that do NOT set SO_RCVBUF themselves (other
# syslog daemons, relays, test tools). ringway sets its own; 8 MiB gives
# everything else on a dedicated log host a fighting chance without making
# every idle socket's ceiling the full 32 MiB.
REC[net.core.rmem_default]=$((8 * MiB))
WHY[net.core.rmem_default]="rcvbuf for sockets that do not set SO_RCVBUF; 8 MiB"

# Per-CPU queue between the NIC driver and the protocol stack (packets that
# arrived but softirq has not processed yet). Default 1000 overflows under
# ~400k small datagrams/s bursts, and those drops show up only in
# /proc/net/softnet_stat (2nd column), not in the UDP counters. 30000 is the
# common value for 10 GbE / high-pps receivers.
REC[net.core.netdev_max_backlog]=30000
WHY[net.core.netdev_max_backlog]="per-CPU backlog before the stack; 1000 drops bursts silently (softnet_stat)"

# udp_mem is min/pressure/max in pages for all UDP sockets together. For UDP
# the first field is the real global cap: once all UDP receive queues hold
# more than udp_mem[0] pages, every UDP socket drops (Udp MemErrors),
# whatever its own rcvbuf (ip-sysctl.rst; tuning/udp-host.sh sizes it from
# ringway's --udp-rcvbuf and --udp-sockets). 512 MiB / 768 MiB / 1 GiB,
# converted to pages of this host; the kernel sizes its default from RAM,
# so large hosts are usually already above this and are left alone. Each
# field is compared on its own.
REC[net.ipv4.udp_mem]="$((512 * MiB / PAGE_SIZE)) $((768 * MiB / PAGE_SIZE)) $((1024 * MiB / PAGE_SIZE))"
WHY[net.ipv4.udp_mem]="global UDP pages; for UDP the 1st field (512 MiB) is the cap beyond which every UDP socket drops"

# Memory each UDP socket is still guaranteed while udp_mem is under pressure.
# The default (one 4 KiB page) holds 2-3 datagrams; 16 KiB keeps a trickle
# flowing on every listener instead of starving the quiet ones.
REC[net.ipv4.udp_rmem_min]=16384
WHY[net.ipv4.udp_rmem_min]="per-socket rcvbuf guaranteed under udp_mem pressure; 16 KiB"

# inotify watches per user (ringway watches every directory a glob can match
# and every open file). Older kernels default to 8192, which one busy
# /var/log/containers tree can exhaust; each used watch costs ~1 KiB of kernel
# memory, unused ones cost nothing.
REC[fs.inotify.max_user_watches]=524288
WHY[fs.inotify.max_user_watches]="inotify watches per user (dirs + files followed); ~1 KiB kernel memory per used watch"

# inotify instances per user (one or more per process that uses inotify).
# Default 128 is shared by all processes of a user; log hosts often run
# several agents as the same user (root).
REC[fs.inotify.max_user_instances]=1024
WHY[fs.inotify.max_user_instances]="inotify instances per user; default 128 is shared by all that user's processes"

# System-wide cap on open file handles (all processes). ringway's own cap is
# RLIMIT_NOFILE (see tuning/limits.sh, LimitNOFILE= in the unit); this only
# has to be comfortably larger than the sum of all services' limits.
REC[fs.file-max]=2097152
WHY[fs.file-max]="system-wide open files; must exceed the sum of per-process LimitNOFILE"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
usage() {
  cat <<EOF
Usage: $PROG [--check | --dry-run | --apply | --persist [FILE] | --help]

Check and raise the kernel settings a ringway log host needs (UDP receive
buffers, network backlog, UDP memory, inotify limits, open files).
Values below the recommendation are raised; values already higher are left
alone; nothing is ever lowered. Keys this kernel does not have are reported as
"absent" and skipped.

  --check           (default) table of current vs recommended values;
                    exit 1 if any value is below the recommendation
  --dry-run         print exactly the 'sysctl -w' commands --apply would run
                    (the output is a valid shell script); change nothing
  --apply           run those 'sysctl -w' commands now (needs root), then
                    re-read and verify; not persistent across reboots
  --persist [FILE]  write a sysctl.d file with the raised values
                    (default $DEFAULT_PERSIST); load it with
                    'sysctl -p FILE' or --apply, or reboot
  -h, --help        this text

Recommended floors (page size $PAGE_SIZE):
EOF
  local k
  for k in "${KEYS[@]}"; do
    printf '  %-30s %-22s %s\n' "$k" "${REC[$k]}" "${WHY[$k]}"
  done
  cat <<EOF

Exit status: 0 ok, 1 below recommendation (--check) or a write failed,
2 usage error.
EOF
}

die_usage() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  printf "Try '%s --help'.\n" "$PROG" >&2
  exit 2
}

warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

# key_path, read_key, num_cmp, target_value, evaluate.
# shellcheck source=tuning/keys.sh
source "$(dirname "${BASH_SOURCE[0]}")/keys.sh"

# The shell-quoted command --apply runs for key $1 = value $2.
sysctl_cmd() {
  if [[ $2 == *" "* ]]; then
    printf 'sysctl -w %s="%s"' "$1" "$2"
  else
    printf 'sysctl -w %s=%s' "$1" "$2"
  fi
}

# ---------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------
do_check() {
  local k low=0 absent=0 st
  printf '%-30s %-26s %-26s %s\n' KEY CURRENT RECOMMENDED STATUS
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    case $STATE in
      ok) st="ok" ;;
      low) st="LOW -> ${TGT}"; low=$((low + 1)) ;;
      absent) st="absent (skipped)"; absent=$((absent + 1)) ;;
      odd) st="unparsable (skipped)"; absent=$((absent + 1)) ;;
    esac
    printf '%-30s %-26s %-26s %s\n' "$k" "${CUR:--}" "${REC[$k]}" "$st"
  done
  echo
  if ((low > 0)); then
    printf '%d setting(s) below the recommendation. Preview: %s --dry-run; raise: sudo %s --apply; persist: sudo %s --persist\n' \
      "$low" "$0" "$0" "$0"
    return 1
  fi
  printf 'All present settings meet the recommendation'
  ((absent > 0)) && printf ' (%d absent/skipped)' "$absent"
  printf '.\n'
}

do_dry_run() {
  local k n=0
  echo "# $PROG --dry-run: commands --apply would run (nothing is changed)"
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    case $STATE in
      low)
        printf '%s   # now: %s\n' "$(sysctl_cmd "$k" "$TGT")" "$CUR"
        n=$((n + 1))
        ;;
      ok) printf '# %s = %s already >= %s, left alone\n' "$k" "$CUR" "${REC[$k]}" ;;
      absent) printf '# %s absent on this kernel, skipped\n' "$k" ;;
      odd) printf '# %s has an unexpected value (%s), skipped\n' "$k" "$CUR" ;;
    esac
  done
  printf '# %d command(s) would run.\n' "$n"
}

do_apply() {
  if [[ $PROC_SYS == /proc/sys && $EUID -ne 0 ]]; then
    printf '%s: error: --apply needs root (try: sudo %s --apply, or --dry-run to preview)\n' "$PROG" "$0" >&2
    exit 1
  fi
  local k n=0 fail=0 now
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    case $STATE in
      low)
        printf 'raising %s: %s -> %s\n' "$k" "$CUR" "$TGT"
        if ! "$SYSCTL" -q -w "$k=$TGT" >/dev/null; then
          warn "failed: $(sysctl_cmd "$k" "$TGT") (read-only /proc/sys, e.g. in a container?)"
          fail=$((fail + 1))
          continue
        fi
        now=$(read_key "$k")
        if [[ $(target_value "$now" "$TGT" 2>/dev/null || true) != "$now" ]]; then
          warn "$k reads back as '$now' after setting '$TGT'"
          fail=$((fail + 1))
        else
          n=$((n + 1))
        fi
        ;;
      ok) printf 'ok      %s = %s (>= %s)\n' "$k" "$CUR" "${REC[$k]}" ;;
      absent) printf 'absent  %s (skipped)\n' "$k" ;;
      odd) printf 'skip    %s: unexpected value %s\n' "$k" "$CUR" ;;
    esac
  done
  printf '%d setting(s) raised, %d failed. Not persistent: run %s --persist to keep them across reboots.\n' \
    "$n" "$fail" "$PROG"
  ((fail == 0))
}

do_persist() {
  local file=$1 k tmp n=0
  local dir=${file%/*}
  [[ $dir == "$file" ]] && dir=.
  if [[ ! -d $dir ]]; then
    printf '%s: error: directory %s does not exist\n' "$PROG" "$dir" >&2
    exit 1
  fi
  tmp=$(mktemp "$dir/.${file##*/}.XXXXXX") || {
    printf '%s: error: cannot write in %s (need root?)\n' "$PROG" "$dir" >&2
    exit 1
  }
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -f -- '$tmp'" EXIT
  {
    echo "# Written by ringway $PROG --persist on $(date -u +%Y-%m-%dT%H:%M:%SZ) for $(uname -n)."
    echo "# Kernel settings for a ringway log host. Only values that were below the"
    echo "# recommendation are set; settings already higher are listed as comments so"
    echo "# the kernel's own (often RAM-scaled) defaults are not pinned."
    echo "# Load now: sysctl -p $file"
    for k in "${KEYS[@]}"; do
      evaluate "$k"
      echo
      echo "# ${WHY[$k]}"
      case $STATE in
        low) printf '%s = %s\n' "$k" "$TGT"; n=$((n + 1)) ;;
        ok) printf '# %s = %s  (current %s already >= recommended)\n' "$k" "${REC[$k]}" "$CUR" ;;
        absent) printf '# %s = %s  (absent on this kernel)\n' "$k" "${REC[$k]}" ;;
        odd) printf '# %s = %s  (current value unparsable: %s)\n' "$k" "${REC[$k]}" "$CUR" ;;
      esac
    done
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f -- "$tmp" "$file"
  trap - EXIT
  printf 'wrote %s (%d setting(s) set, others commented). Load now with: sudo sysctl -p %s\n' "$file" "$n" "$file"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
mode=""
persist_file=""
set_mode() {
  [[ -z $mode || $mode == "$1" ]] || die_usage "--$mode and --$1 are mutually exclusive"
  mode=$1
}
while (($# > 0)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --check) set_mode check ;;
    --dry-run | -n) set_mode dry-run ;;
    --apply) set_mode apply ;;
    --persist=*)
      set_mode persist
      persist_file=${1#--persist=}
      [[ -n $persist_file ]] || die_usage "--persist= needs a file name"
      ;;
    --persist)
      set_mode persist
      if (($# > 1)) && [[ $2 != -* ]]; then
        persist_file=$2
        shift
      fi
      ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done

if [[ ! -d $PROC_SYS ]]; then
  printf '%s: error: %s not found (is /proc mounted?)\n' "$PROG" "$PROC_SYS" >&2
  exit 1
fi

case ${mode:-check} in
  check) do_check ;;
  dry-run) do_dry_run ;;
  apply) do_apply ;;
  persist) do_persist "${persist_file:-$DEFAULT_PERSIST}" ;;
esac
