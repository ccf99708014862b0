#!/usr/bin/env bash
# tuning/limits.sh — print / check the per-process resource limits ringway needs.
#
#   RLIMIT_NOFILE   every tailed file, directory watch, socket and connection is
#                   a file descriptor. Recommended soft limit: 65536.
#   RLIMIT_MEMLOCK  io_uring: before Linux 5.12 the submission/completion rings
#                   are charged to RLIMIT_MEMLOCK; on every kernel, registered
#                   (fixed) buffers are pinned and charged to it (unless the
#                   process has CAP_IPC_LOCK). Recommended: >= 64 MiB, or
#                   unlimited (LimitMEMLOCK=infinity in the systemd unit).
#
# By default the limits of this process are shown — i.e. the limits inherited
# from the shell that ran it. Use --pid to inspect a running ringway instead
# (e.g. --pid "$(systemctl show -p MainPID --value ringway)").
#
# Exit codes: 0 ok (or report only), 1 --check found a limit below the
# recommendation, 2 bad usage.

set -euo pipefail

PROG=${0##*/}
NOFILE_MIN=65536
MEMLOCK_MIN=$((64 * 1024 * 1024)) # bytes

usage() {
  cat <<EOF
Usage: $PROG [--check] [--pid PID] [--help]

Show RLIMIT_NOFILE (open files) and RLIMIT_MEMLOCK (locked memory, used by
io_uring) and the systemd settings ringway's unit should carry.

  --check      exit 1 if a soft limit is below the recommendation
               (NOFILE >= $NOFILE_MIN, MEMLOCK >= $((MEMLOCK_MIN / 1024 / 1024)) MiB or unlimited)
  --pid PID    inspect the limits of process PID (from /proc/PID/limits)
               instead of the current shell
  -h, --help   this text

Without --check the report is printed and the exit status is 0.
EOF
}

die_usage() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  printf "Try '%s --help'.\n" "$PROG" >&2
  exit 2
}

# Human-readable bytes (or "unlimited").
human() {
  local b=$1
  if [[ $b == unlimited ]]; then
    echo unlimited
  elif ((b >= 1073741824 && b % 1073741824 == 0)); then
    echo "$((b / 1073741824)) GiB"
  elif ((b >= 1048576 && b % 1048576 == 0)); then
    echo "$((b / 1048576)) MiB"
  elif ((b >= 1024 && b % 1024 == 0)); then
    echo "$((b / 1024)) KiB"
  else
    echo "$b B"
  fi
}

# ge VALUE MIN: VALUE (number or "unlimited") >= MIN
ge() { [[ $1 == unlimited ]] || (($1 >= $2)); }

check=0
pid=""
while (($# > 0)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --check) check=1 ;;
    --pid)
      (($# > 1)) || die_usage "--pid needs a process id"
      pid=$2
      shift
      ;;
    --pid=*) pid=${1#--pid=} ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done

if [[ -n $pid ]]; then
  [[ $pid =~ ^[0-9]+$ && $pid -gt 0 ]] || die_usage "--pid wants a positive number, got '$pid'"
  [[ -r /proc/$pid/limits ]] || {
    printf '%s: error: cannot read /proc/%s/limits (no such process, or not permitted)\n' "$PROG" "$pid" >&2
    exit 1
  }
  # Lines look like: "Max open files            1024      524288    files"
  read -r nofile_soft nofile_hard < <(awk '/^Max open files/ {print $4, $5}' "/proc/$pid/limits")
  read -r memlock_soft memlock_hard < <(awk '/^Max locked memory/ {print $4, $5}' "/proc/$pid/limits")
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')
  subject="process $pid ($comm)"
else
  nofile_soft=$(ulimit -S -n)
  nofile_hard=$(ulimit -H -n)
  # ulimit -l is in KiB; normalise to bytes like /proc/PID/limits.
  memlock_soft=$(ulimit -S -l)
  memlock_hard=$(ulimit -H -l)
  [[ $memlock_soft == unlimited ]] || memlock_soft=$((memlock_soft * 1024))
  [[ $memlock_hard == unlimited ]] || memlock_hard=$((memlock_hard * 1024))
  subject="current shell (pid $PPID, via $PROG)"
fi

kernel=$(uname -r)
nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo '?')
uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo absent)

problems=0
# status SOFT HARD MIN -> text (runs in $(...); problems are counted by the caller)
status() {
  if ge "$1" "$3"; then
    echo "ok"
  else
    if ge "$2" "$3"; then
      echo "LOW (soft below; the hard limit allows raising it)"
    else
      echo "LOW (soft and hard below)"
    fi
  fi
}
st_nofile=$(status "$nofile_soft" "$nofile_hard" "$NOFILE_MIN")
ge "$nofile_soft" "$NOFILE_MIN" || problems=$((problems + 1))
st_memlock=$(status "$memlock_soft" "$memlock_hard" "$MEMLOCK_MIN")
ge "$memlock_soft" "$MEMLOCK_MIN" || problems=$((problems + 1))

echo "Resource limits of $subject, kernel $kernel"
printf '%-16s %-12s %-12s %-12s %s\n' LIMIT SOFT HARD RECOMMENDED STATUS
printf '%-16s %-12s %-12s %-12s %s\n' RLIMIT_NOFILE "$nofile_soft" "$nofile_hard" ">= $NOFILE_MIN" "$st_nofile"
printf '%-16s %-12s %-12s %-12s %s\n' RLIMIT_MEMLOCK "$(human "$memlock_soft")" "$(human "$memlock_hard")" \
  ">= $(human "$MEMLOCK_MIN")" "$st_memlock"
echo
echo "fs.nr_open (ceiling for any NOFILE limit): $nr_open"
if [[ $nr_open =~ ^[0-9]+$ ]] && ((nr_open < NOFILE_MIN)); then
  echo "  warning: fs.nr_open < $NOFILE_MIN; LimitNOFILE=$NOFILE_MIN will fail — raise fs.nr_open first." >&2
fi
case $uring_disabled in
  0) echo "kernel.io_uring_disabled: 0 (io_uring available to all users)" ;;
  1) echo "kernel.io_uring_disabled: 1 (io_uring only for root/CAP_SYS_ADMIN or members of kernel.io_uring_group)" ;;
  2) echo "kernel.io_uring_disabled: 2 (io_uring DISABLED for everyone)" >&2 ;;
  absent) echo "kernel.io_uring_disabled: absent (kernel < 6.6; io_uring not restricted by sysctl)" ;;
  *) echo "kernel.io_uring_disabled: $uring_disabled" ;;
esac
if [[ $uring_disabled == 1 || $uring_disabled == 2 ]]; then
  echo "  warning: ringway uses io_uring; set kernel.io_uring_disabled=0 (or add the ringway user to kernel.io_uring_group when it is 1)." >&2
fi

cat <<EOF

Suggested settings:
  systemd (scripts/ringway.service already has these; for an existing unit
  use 'systemctl edit ringway'):
    [Service]
    LimitNOFILE=$NOFILE_MIN
    LimitMEMLOCK=infinity
  running by hand in this shell (up to the hard limit; raising the hard limit
  needs root):
    ulimit -n $NOFILE_MIN; ulimit -l unlimited
  non-systemd login sessions (/etc/security/limits.d/60-ringway.conf):
    ringway  -  nofile   $NOFILE_MIN
    ringway  -  memlock  unlimited
EOF

if ((check)); then
  if ((problems > 0)); then
    echo
    echo "check: FAILED — a soft limit is below the recommendation."
    exit 1
  fi
  echo
  echo "check: ok"
fi
