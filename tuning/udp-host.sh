#!/usr/bin/env bash
# tuning/udp-host.sh — kernel settings for a host that receives logs over UDP
# (ringway `--input udp:...`), sized to ringway's `--udp-rcvbuf` and
# `--udp-sockets`.
#
# Default (dry run): prints current vs recommended values, each with a
# one-line reason, the sysctl.d drop-in --apply would write, and the kernel's
# UDP drop counters (which say which knob a loss points at). Changes nothing.
#
#   --apply            write /etc/sysctl.d/61-ringway-udp.conf (root) and load
#                      it with `sysctl -p FILE`; re-read and verify
#   --rcvbuf SIZE      the --udp-rcvbuf ringway runs with [8MiB]
#   --sockets N        UDP sockets ringway opens in total: --udp-sockets /
#                      sockets= summed over UDP inputs [1]
#   --file FILE        drop-in path [/etc/sysctl.d/61-ringway-udp.conf]
#   --help
#
# Every recommendation is a floor: values already higher are left alone and
# written to the drop-in only as comments; nothing is ever lowered. This
# complements tuning/sysctl.sh: the same floors for rmem_max, rmem_default,
# netdev_max_backlog and udp_rmem_min; a higher udp_mem, whose first field is
# the one that limits UDP; the UDP-only keys; scaling to the flags above.
#
# Exit codes: 0 done, 1 write/load/verify failed or not root, 2 bad usage.
#
# Environment (for testing; the defaults are what you want in production):
#   RINGWAY_PROC_SYS  where to read current values      [/proc/sys]
#   RINGWAY_PROC_NET  where to read snmp, softnet_stat   [/proc/net]
#   RINGWAY_SYSCTL    the sysctl program --apply runs    [sysctl]
#   RINGWAY_SYSCTL_DIRS, RINGWAY_SYSCTL_CONF  where boot-time sysctl files are
#                     looked for, to warn about later files that override ours

set -euo pipefail
shopt -s extglob nullglob

PROG=${0##*/}
PROC_SYS=${RINGWAY_PROC_SYS:-/proc/sys}
PROC_NET=${RINGWAY_PROC_NET:-/proc/net}
SYSCTL=${RINGWAY_SYSCTL:-sysctl}
DEFAULT_FILE=/etc/sysctl.d/61-ringway-udp.conf
# Directories systemd-sysctl / `sysctl --system` read, in precedence order,
# and the file `sysctl --system` reads last.
read -r -a SYSCTL_DIRS <<<"${RINGWAY_SYSCTL_DIRS:-/etc/sysctl.d /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d /lib/sysctl.d}"
SYSCTL_CONF=${RINGWAY_SYSCTL_CONF:-/etc/sysctl.conf}

PAGE_SIZE=$(getconf PAGESIZE 2>/dev/null || echo 4096)
[[ $PAGE_SIZE =~ ^[0-9]+$ && $PAGE_SIZE -gt 0 ]] || PAGE_SIZE=4096
KiB=1024
MiB=$((1024 * KiB))
GiB=$((1024 * MiB))

# ringway's defaults (DESIGN §7: --udp-rcvbuf 8MiB, one socket per input).
RCVBUF=$((8 * MiB))
SOCKETS=1

usage() {
  cat <<EOF
Usage: $PROG [--apply] [--rcvbuf SIZE] [--sockets N] [--file FILE] | --help

Kernel settings for a ringway host that receives UDP (syslog) traffic.
Without --apply this is a dry run: it prints current vs recommended values
with the reason for each, the sysctl.d drop-in --apply would write, and the
kernel's UDP drop counters. Nothing is changed.

  --apply          write the drop-in (default $DEFAULT_FILE) and load it
                   with 'sysctl -p FILE' (needs root); only values below the
                   recommendation are set, nothing is lowered
  --rcvbuf SIZE    ringway's --udp-rcvbuf (8MiB, 64MiB, 1GiB or bytes) [8MiB]
  --sockets N      UDP sockets ringway opens in total (sum of --udp-sockets /
                   sockets= over all UDP inputs) [1]
  --file FILE      drop-in path [$DEFAULT_FILE]
  -h, --help       this text

ringway asks for --udp-rcvbuf with SO_RCVBUFFORCE, which needs CAP_NET_ADMIN
and ignores net.core.rmem_max; without the capability it falls back to
SO_RCVBUF, which the kernel clamps to net.core.rmem_max. Either way the
kernel doubles the value (getsockopt reports 2x) to cover skb overhead.

Exit status: 0 done, 1 write/load/verify failed or not root, 2 usage error.
EOF
}

die_usage() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  printf "Try '%s --help'.\n" "$PROG" >&2
  exit 2
}

warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

# "8MiB" / "64KiB" / "1GiB" / "123" -> bytes; fails on anything else.
parse_size() {
  local text=$1 n unit
  [[ $text =~ ^([0-9]+)(B|KiB|MiB|GiB)?$ ]] || return 1
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  n=$((10#$n))
  case $unit in
    KiB) n=$((n * KiB)) ;;
    MiB) n=$((n * MiB)) ;;
    GiB) n=$((n * GiB)) ;;
  esac
  printf '%s' "$n"
}

human() { # bytes -> "8 MiB" when exact, else bytes
  local b=$1
  if ((b > 0 && b % GiB == 0)); then
    printf '%d GiB' $((b / GiB))
  elif ((b > 0 && b % MiB == 0)); then
    printf '%d MiB' $((b / MiB))
  elif ((b > 0 && b % KiB == 0)); then
    printf '%d KiB' $((b / KiB))
  else
    printf '%d B' "$b"
  fi
}

max() { if (($1 > $2)); then echo "$1"; else echo "$2"; fi; }

# key_path, read_key, num_cmp, target_value, evaluate: the same as
# tuning/sysctl.sh's.
# shellcheck source=tuning/keys.sh
source "$(dirname "${BASH_SOURCE[0]}")/keys.sh"

# ---------------------------------------------------------------------------
# Recommendations (filled in by recommend(), after the flags are known)
# ---------------------------------------------------------------------------
KEYS=(
  net.core.rmem_max
  net.core.rmem_default
  net.ipv4.udp_mem
  net.ipv4.udp_rmem_min
  net.core.netdev_max_backlog
  net.core.netdev_budget
  net.core.netdev_budget_usecs
  net.core.optmem_max
)
declare -A REC WHY SCOPE

recommend() {
  # Bytes one socket may hold: the kernel doubles the request (sk_rcvbuf =
  # 2 x rcvbuf) and charges every queued datagram its skb truesize against it.
  local per_socket=$((2 * RCVBUF))
  local all_sockets=$((SOCKETS * per_socket))

  # Only matters without CAP_NET_ADMIN (SO_RCVBUF is clamped to it), but then
  # it silently caps ringway's --udp-rcvbuf; 32 MiB is tuning/sysctl.sh's floor.
  REC[net.core.rmem_max]=$(max $((32 * MiB)) "$RCVBUF")
  SCOPE[net.core.rmem_max]=host
  WHY[net.core.rmem_max]="cap on SO_RCVBUF without CAP_NET_ADMIN; below --udp-rcvbuf ($(human "$RCVBUF")) ringway silently gets less (SO_RCVBUFFORCE ignores it)"

  REC[net.core.rmem_default]=$((8 * MiB))
  SCOPE[net.core.rmem_default]=host
  WHY[net.core.rmem_default]="rcvbuf of sockets that do not set one (relays, other agents); ringway sets its own"

  # UDP has no memory-pressure mode: once all UDP sockets together hold more
  # than udp_mem[0] ("min") pages, a socket may only queue more while it holds
  # less than udp_rmem_min; everything else is dropped (MemErrors). The other
  # two fields follow tcp_mem's format and do not limit UDP (kernel commit
  # 69dfccbc1186, Documentation/networking/ip-sysctl.rst). So min must cover
  # every ringway socket full at once, twice over for other UDP users.
  local min_bytes
  min_bytes=$(max $((512 * MiB)) $((2 * all_sockets)))
  REC[net.ipv4.udp_mem]="$((min_bytes / PAGE_SIZE)) $((min_bytes * 3 / 2 / PAGE_SIZE)) $((min_bytes * 2 / PAGE_SIZE))"
  SCOPE[net.ipv4.udp_mem]=host
  WHY[net.ipv4.udp_mem]="pages; the 1st field is UDP's real global cap (beyond it sockets drop, MemErrors); >= 2 x $SOCKETS socket(s) x $(human "$per_socket")"
  UDP_MEM_MIN_BYTES=$min_bytes

  REC[net.ipv4.udp_rmem_min]=16384
  SCOPE[net.ipv4.udp_rmem_min]=netns
  WHY[net.ipv4.udp_rmem_min]="bytes each UDP socket may still queue once udp_mem[0] is exceeded; default one page = 2-3 datagrams"

  REC[net.core.netdev_max_backlog]=30000
  SCOPE[net.core.netdev_max_backlog]=host
  WHY[net.core.netdev_max_backlog]="per-CPU queue ahead of the IP stack (also loopback); overflow is /proc/net/softnet_stat col 2, invisible to sockets"

  REC[net.core.netdev_budget]=600
  SCOPE[net.core.netdev_budget]=host
  WHY[net.core.netdev_budget]="packets one NET_RX softirq round may process; a rise in softnet_stat col 3 (time_squeeze) says 300 is too few"

  REC[net.core.netdev_budget_usecs]=8000
  SCOPE[net.core.netdev_budget_usecs]=host
  WHY[net.core.netdev_budget_usecs]="time limit of that round (default 2 jiffies: 2000 us at HZ=1000, 8000 at HZ=250)"

  REC[net.core.optmem_max]=131072
  SCOPE[net.core.optmem_max]=netns
  WHY[net.core.optmem_max]="per-socket ancillary memory: socket filters (SO_REUSEPORT BPF steering), cmsg; older kernels default to 20 KiB, newer to 128 KiB"
}

# Files that systemd-sysctl / `sysctl --system` read after FILE and that set
# key $2 (a later file wins at boot). Prints their paths.
later_settings() {
  local file=$1 key=$2 base=${1##*/} d f
  local -A seen=()
  local -a found=()
  for d in "${SYSCTL_DIRS[@]}"; do
    for f in "$d"/*.conf; do
      local b=${f##*/}
      [[ -n ${seen[$b]:-} ]] && continue # an earlier directory masks it
      seen[$b]=1
      [[ $f == "$file" ]] && continue
      [[ $b > $base ]] || continue
      grep -Eq "^[[:space:]]*-?${key//./[./]}[[:space:]]*=" "$f" 2>/dev/null && found+=("$f")
    done
  done
  if [[ -r $SYSCTL_CONF ]] && grep -Eq "^[[:space:]]*-?${key//./[./]}[[:space:]]*=" "$SYSCTL_CONF"; then
    found+=("$SYSCTL_CONF")
  fi
  ((${#found[@]} == 0)) || printf '%s\n' "${found[@]}" | sort -u
}

# Settings an earlier run wrote to the drop-in (key -> value), so a re-run
# keeps them even though the kernel now already meets the recommendation.
declare -A PREV=()
load_previous() {
  local file=$1 line
  [[ -r $file ]] || return 0
  while IFS= read -r line; do
    [[ $line =~ ^([a-z0-9_.]+)\ =\ (.*)$ ]] && PREV[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
  done <"$file"
}

# Number of keys below the recommendation.
count_low() {
  local k n=0
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    [[ $STATE == low ]] && n=$((n + 1))
  done
  echo "$n"
}

# The drop-in --apply writes, on stdout.
render_dropin() {
  local file=$1 k
  echo "# Written by ringway $PROG for $(uname -n)."
  echo "# UDP receive settings for ringway --udp-rcvbuf $(human "$RCVBUF") x $SOCKETS socket(s)."
  echo "# Only values that were below the recommendation (or that an earlier run set)"
  echo "# are set; the others are comments, so the kernel's own (often RAM-scaled)"
  echo "# defaults are not pinned."
  echo "# Load now: sysctl -p $file"
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    echo
    echo "# ${WHY[$k]}"
    case $STATE in
      low) printf '%s = %s\n' "$k" "$TGT" ;;
      ok)
        if [[ -n ${PREV[$k]:-} ]]; then
          # sysctl.d has no trailing comments, so the note goes above.
          printf '# (kept from the previous %s; current %s already >= recommended %s)\n' "${file##*/}" "$CUR" "${REC[$k]}"
          printf '%s = %s\n' "$k" "$(target_value "$CUR" "${PREV[$k]}" || echo "$CUR")"
        else
          printf '# %s = %s  (current %s already >= recommended)\n' "$k" "${REC[$k]}" "$CUR"
        fi
        ;;
      absent) printf '# %s = %s  (absent on this kernel)\n' "$k" "${REC[$k]}" ;;
      odd) printf '# %s = %s  (current value unparsable: %s)\n' "$k" "${REC[$k]}" "$CUR" ;;
    esac
  done
}

print_table() {
  local k st
  printf '%-29s %-6s %-24s %-24s %s\n' KEY SCOPE CURRENT RECOMMENDED STATUS
  for k in "${KEYS[@]}"; do
    evaluate "$k"
    case $STATE in
      ok) st="ok" ;;
      low) st="LOW -> $TGT" ;;
      absent) st="absent (skipped)" ;;
      odd) st="unparsable (skipped)" ;;
    esac
    printf '%-29s %-6s %-24s %-24s %s\n' "$k" "${SCOPE[$k]}" "${CUR:--}" "${REC[$k]}" "$st"
    printf '    why: %s\n' "${WHY[$k]}"
  done
}

# Kernel counters that tell where UDP datagrams were lost (since boot).
print_counters() {
  echo "UDP drop counters since boot (host-wide; watch which one grows under load):"
  local -a names values
  local line i header_seen=0
  if [[ -r $PROC_NET/snmp ]]; then
    while IFS= read -r line; do
      [[ $line == "Udp: "* ]] || continue
      if ((header_seen == 0)); then
        read -r -a names <<<"$line"
        header_seen=1
      else
        read -r -a values <<<"$line"
        break
      fi
    done <"$PROC_NET/snmp"
    for i in "${!names[@]}"; do
      case ${names[i]} in
        RcvbufErrors) printf '  %-22s %12s  a socket buffer was full: raise --udp-rcvbuf (and rmem_max), or ringway is falling behind\n' "Udp RcvbufErrors" "${values[i]:-?}" ;;
        MemErrors) printf '  %-22s %12s  udp_mem[0] reached: all UDP sockets together hold too much\n' "Udp MemErrors" "${values[i]:-?}" ;;
        InErrors) printf '  %-22s %12s  all UDP receive errors: RcvbufErrors + MemErrors + checksum errors\n' "Udp InErrors" "${values[i]:-?}" ;;
        NoPorts) printf '  %-22s %12s  datagrams to a port nobody listens on (ringway down or wrong port?)\n' "Udp NoPorts" "${values[i]:-?}" ;;
      esac
    done
  fi
  if [[ -r $PROC_NET/snmp6 ]]; then
    local v6
    v6=$(awk '$1 == "Udp6RcvbufErrors" {print $2}' "$PROC_NET/snmp6")
    [[ -n $v6 ]] && printf '  %-22s %12s  the same as RcvbufErrors, for IPv6\n' "Udp6RcvbufErrors" "$v6"
  fi
  if [[ -r $PROC_NET/softnet_stat ]]; then
    local dropped=0 squeezed=0 drop squeeze
    while read -r _ drop squeeze _; do
      [[ $drop =~ ^[0-9a-fA-F]+$ && $squeeze =~ ^[0-9a-fA-F]+$ ]] || continue
      dropped=$((dropped + 16#$drop))
      squeezed=$((squeezed + 16#$squeeze))
    done <"$PROC_NET/softnet_stat"
    printf '  %-22s %12s  per-CPU backlog overflow: raise netdev_max_backlog (or spread with RPS)\n' "softnet dropped" "${dropped:-?}"
    printf '  %-22s %12s  softirq ran out of budget with work left: raise netdev_budget(_usecs)\n' "softnet time_squeeze" "${squeezed:-?}"
  fi
  echo "  Per socket: ringway's summary-json 'kernel_drops' (SO_MEMINFO), or 'ss -uamn' (the d<N> in skmem)."
}

do_dry_run() {
  local file=$1
  echo "# $PROG: dry run, nothing is changed"
  echo "# Sized for ringway --udp-rcvbuf $(human "$RCVBUF") x $SOCKETS UDP socket(s); page size $PAGE_SIZE."
  echo "# scope (as on Linux 6.18): host = one value for the whole machine, read-only or"
  echo "# invisible inside a container; netns = per network namespace: set it in the"
  echo "# namespace ringway runs in (e.g. the container's), not only on the host."
  echo
  print_table
  local mem_kb
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || true)
  if [[ $mem_kb =~ ^[0-9]+$ ]] && ((UDP_MEM_MIN_BYTES > mem_kb * 1024 / 2)); then
    warn "udp_mem[0] of $(human "$UDP_MEM_MIN_BYTES") is more than half of this host's RAM; lower --rcvbuf or --sockets"
  fi
  echo
  local dropin n_low
  dropin=$(render_dropin "$file")
  n_low=$(count_low)
  echo "# --apply would write $file ($n_low setting(s) raised) and run: $SYSCTL -p $file"
  echo "# ---- $file ----"
  printf '%s\n' "$dropin"
  echo "# ---- end ----"
  local k later
  for k in "${KEYS[@]}"; do
    later=$(later_settings "$file" "$k")
    [[ -z $later ]] || warn "$k is also set in $(echo "$later" | paste -sd, -), read after ${file##*/} at boot; that value wins"
  done
  echo
  print_counters
}

do_apply() {
  local file=$1
  if [[ $PROC_SYS == /proc/sys && $EUID -ne 0 ]]; then
    printf '%s: error: --apply needs root (try: sudo %s --apply; the dry run shows what it would do)\n' "$PROG" "$0" >&2
    exit 1
  fi
  local dir=${file%/*}
  [[ $dir == "$file" ]] && dir=.
  if [[ ! -d $dir ]]; then
    printf '%s: error: directory %s does not exist\n' "$PROG" "$dir" >&2
    exit 1
  fi
  local dropin n_low tmp
  dropin=$(render_dropin "$file")
  n_low=$(count_low)
  if ((n_low == 0)); then
    echo "nothing to raise: every present setting already meets the recommendation; $file left as it is"
    return 0
  fi
  tmp=$(mktemp "$dir/.${file##*/}.XXXXXX") || {
    printf '%s: error: cannot write in %s\n' "$PROG" "$dir" >&2
    exit 1
  }
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -f -- '$tmp'" EXIT
  printf '%s\n' "$dropin" >"$tmp"
  chmod 0644 "$tmp"
  mv -f -- "$tmp" "$file"
  trap - EXIT
  printf 'wrote %s (%d setting(s) raised)\n' "$file" "$n_low"
  if ! "$SYSCTL" -p "$file"; then
    warn "'$SYSCTL -p $file' failed (read-only /proc/sys, e.g. in a container without privileges?)"
    exit 1
  fi
  # Verify: every key the file sets must now read back at least as high.
  local k want now line fail=0
  while IFS= read -r line; do
    [[ $line =~ ^([a-z0-9_.]+)\ =\ (.*)$ ]] || continue
    k=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
    now=$(read_key "$k")
    if [[ $(target_value "$now" "$want" 2>/dev/null || true) != "$now" ]]; then
      warn "$k reads back as '$now' after loading '$want'"
      fail=1
    fi
  done <"$file"
  for k in "${KEYS[@]}"; do
    local later
    later=$(later_settings "$file" "$k")
    [[ -z $later ]] || warn "$k is also set in $(echo "$later" | paste -sd, -), read after ${file##*/} at boot; that value wins"
  done
  ((fail == 0)) && echo "loaded and verified."
  return "$fail"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
apply=0
file=$DEFAULT_FILE
while (($# > 0)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --apply) apply=1 ;;
    --dry-run | -n) apply=0 ;;
    --rcvbuf=* | --rcvbuf)
      if [[ $1 == --rcvbuf ]]; then
        (($# > 1)) || die_usage "--rcvbuf needs a size"
        shift; v=$1
      else
        v=${1#--rcvbuf=}
      fi
      RCVBUF=$(parse_size "$v") || die_usage "--rcvbuf '$v': expected a size such as 8MiB, 64MiB or 1GiB"
      ((RCVBUF > 0)) || die_usage "--rcvbuf must be above 0"
      ;;
    --sockets=* | --sockets)
      if [[ $1 == --sockets ]]; then
        (($# > 1)) || die_usage "--sockets needs a number"
        shift; v=$1
      else
        v=${1#--sockets=}
      fi
      [[ $v =~ ^[1-9][0-9]{0,3}$ ]] || die_usage "--sockets '$v': expected 1..9999"
      SOCKETS=$v
      ;;
    --file=* | --file)
      if [[ $1 == --file ]]; then
        (($# > 1)) || die_usage "--file needs a path"
        shift; file=$1
      else
        file=${1#--file=}
      fi
      [[ -n $file ]] || die_usage "--file needs a path"
      ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done

if [[ ! -d $PROC_SYS ]]; then
  printf '%s: error: %s not found (is /proc mounted?)\n' "$PROG" "$PROC_SYS" >&2
  exit 1
fi

recommend
load_previous "$file"
if ((apply)); then
  do_apply "$file"
else
  do_dry_run "$file"
fi
