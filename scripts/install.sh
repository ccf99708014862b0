#!/usr/bin/env bash
# scripts/install.sh — build and install ringway on a Linux log host.
#
#   1. cargo build --release                 (skip with --no-build)
#   2. install target/release/ringway to ${PREFIX:-/usr/local}/bin/ringway
#   3. create the `ringway` system user/group if absent
#   4. with --systemd: install scripts/ringway.service to /etc/systemd/system
#      and run `systemctl daemon-reload`
#
# It never enables or starts the service; it prints the commands to do so.
# Recommended flow: build as yourself, install as root:
#   cargo build --release && sudo scripts/install.sh --no-build --systemd
#
# Exit codes: 0 done, 1 failure, 2 bad usage.

set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
UNIT_SRC=$SCRIPT_DIR/ringway.service
UNIT_DIR=/etc/systemd/system
UNIT_DST=$UNIT_DIR/ringway.service
SVC_USER=ringway
STATE_DIR=/var/lib/ringway
UNIT_BIN=/usr/local/bin/ringway # the path ExecStart= uses in $UNIT_SRC

PREFIX=${PREFIX:-/usr/local}
build=1
systemd=0
dry_run=0

usage() {
  cat <<EOF
Usage: $PROG [--no-build] [--systemd] [--prefix DIR] [--dry-run] [--help]

Build ringway and install it on this host. Never enables or starts the
service; prints the commands for that instead.

  --no-build     do not run 'cargo build --release'; install the existing
                 ${CARGO_TARGET_DIR:-target}/release/ringway
  --systemd      also install scripts/ringway.service as $UNIT_DST
                 (ExecStart rewritten to \$PREFIX/bin/ringway) and run
                 'systemctl daemon-reload'
  --prefix DIR   install the binary to DIR/bin (default: \$PREFIX or /usr/local;
                 currently $PREFIX)
  --dry-run, -n  print every step and command, change nothing
  -h, --help     this text

Creates the '$SVC_USER' system user and group (home $STATE_DIR, no login
shell) if absent. Needs root unless --dry-run (or the user exists, --systemd
is not given and DIR/bin is writable).

Typical use:
  cargo build --release
  sudo $0 --no-build --systemd
EOF
}

die_usage() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  printf "Try '%s --help'.\n" "$PROG" >&2
  exit 2
}
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
step() { printf '==> %s\n' "$*"; }

# Run a command, or only show it under --dry-run.
run() {
  if ((dry_run)); then
    printf '  would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    printf '  +'
    printf ' %q' "$@"
    printf '\n'
    "$@"
  fi
}

while (($# > 0)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --no-build) build=0 ;;
    --systemd) systemd=1 ;;
    --dry-run | -n) dry_run=1 ;;
    --prefix)
      (($# > 1)) || die_usage "--prefix needs a directory"
      PREFIX=$2
      shift
      ;;
    --prefix=*) PREFIX=${1#--prefix=} ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done

[[ $PREFIX == /* ]] || die_usage "prefix must be an absolute path, got '$PREFIX'"
PREFIX=${PREFIX%/}
[[ -n $PREFIX ]] || PREFIX=/ # "/" stripped to ""
BIN_DIR=${PREFIX%/}/bin
BIN_DST=$BIN_DIR/ringway
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
BIN_SRC=$TARGET_DIR/release/ringway

if ((systemd)); then
  [[ $BIN_DST != *[[:space:]]* ]] || die "--systemd: binary path '$BIN_DST' contains whitespace; pick another --prefix"
  [[ -r $UNIT_SRC ]] || die "unit file $UNIT_SRC not found"
  case $BIN_DST in
    /home/* | /root/* | /run/user/*)
      warn "$BIN_DST is hidden from the service by ProtectHome=yes; use a prefix such as /usr/local or /opt/ringway"
      ;;
  esac
fi

((dry_run)) && echo "Dry run: nothing will be changed."

# ---------------------------------------------------------------------------
# Root check (up front, so nothing is half-done).
# ---------------------------------------------------------------------------
user_exists=0
getent passwd "$SVC_USER" >/dev/null 2>&1 && user_exists=1

nearest_existing() { # deepest existing ancestor of $1
  local d=$1
  while [[ ! -e $d && $d != / ]]; do d=$(dirname -- "$d"); done
  printf '%s' "$d"
}
need_root=0
((user_exists)) || need_root=1
((systemd)) && need_root=1
[[ -w $(nearest_existing "$BIN_DIR") ]] || need_root=1
if ((need_root && EUID != 0 && !dry_run)); then
  hint="sudo $0 --no-build"
  ((systemd)) && hint+=" --systemd"
  die "this needs root (creating user '$SVC_USER', writing $BIN_DIR or $UNIT_DIR). Build as yourself, then: $hint"
fi

# ---------------------------------------------------------------------------
# 1. Build
# ---------------------------------------------------------------------------
if ((build)); then
  step "build: cargo build --release (in $REPO)"
  # Under sudo, build as the invoking user: their toolchain, their target/.
  build_as=()
  cargo_bin=""
  if ((EUID == 0)) && [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    [[ -x $sudo_home/.cargo/bin/cargo ]] && cargo_bin=$sudo_home/.cargo/bin/cargo
    build_as=(sudo -u "$SUDO_USER" -H)
  fi
  [[ -n $cargo_bin ]] || cargo_bin=$(command -v cargo || true)
  if [[ -z $cargo_bin && -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    cargo_bin=$HOME/.cargo/bin/cargo
  fi
  if [[ -z $cargo_bin ]]; then
    ((dry_run)) || die "cargo not found. Build first (cargo build --release) and re-run with --no-build."
    warn "cargo not found; a real run would fail here (build first and use --no-build)"
    cargo_bin=cargo
  fi
  run "${build_as[@]}" "$cargo_bin" build --release --manifest-path "$REPO/Cargo.toml"
else
  step "build: skipped (--no-build)"
fi

if [[ ! -x $BIN_SRC ]]; then
  if ((dry_run)); then
    warn "$BIN_SRC does not exist yet (a real run builds it first, or fails with --no-build)"
  else
    die "$BIN_SRC not found or not executable; run 'cargo build --release' first"
  fi
fi

# ---------------------------------------------------------------------------
# 2. Binary (copy next to the target, then rename: atomic, and works while
#    an older ringway is running — no "Text file busy").
# ---------------------------------------------------------------------------
step "install binary: $BIN_SRC -> $BIN_DST"
run install -d -m 0755 "$BIN_DIR"
run install -m 0755 "$BIN_SRC" "$BIN_DIR/.ringway.new"
run mv -f "$BIN_DIR/.ringway.new" "$BIN_DST"

# ---------------------------------------------------------------------------
# 3. Service user
# ---------------------------------------------------------------------------
if ((user_exists)); then
  step "user: '$SVC_USER' already exists ($(getent passwd "$SVC_USER" | cut -d: -f3,4,6 | tr : ' ')), left alone"
  getent group "$SVC_USER" >/dev/null 2>&1 ||
    warn "group '$SVC_USER' does not exist; the unit's Group=$SVC_USER will fail to start"
else
  step "user: creating system user and group '$SVC_USER'"
  command -v useradd >/dev/null 2>&1 || die "useradd not found; create a system user '$SVC_USER' by hand and re-run"
  nologin=/usr/sbin/nologin
  [[ -x $nologin ]] || nologin=/sbin/nologin
  [[ -x $nologin ]] || nologin=/bin/false
  run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell "$nologin" --comment "ringway log data plane" "$SVC_USER"
fi

# ---------------------------------------------------------------------------
# 4. systemd unit
# ---------------------------------------------------------------------------
have_adm=0
getent group adm >/dev/null 2>&1 && have_adm=1

render_unit() { # the unit as installed on this host
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "ExecStart=$UNIT_BIN "* ]]; then
      line="ExecStart=$BIN_DST ${line#"ExecStart=$UNIT_BIN "}"
    elif [[ $line == SupplementaryGroups=adm ]] && ((!have_adm)); then
      line="#SupplementaryGroups=adm  (commented out by install.sh: no 'adm' group on this host)"
    fi
    printf '%s\n' "$line"
  done <"$UNIT_SRC"
}

if ((systemd)); then
  step "systemd unit: $UNIT_SRC -> $UNIT_DST"
  [[ $BIN_DST == "$UNIT_BIN" ]] || echo "  ExecStart rewritten to use $BIN_DST"
  ((have_adm)) || echo "  no 'adm' group here: SupplementaryGroups=adm commented out"
  rendered=$(render_unit)
  if [[ -e $UNIT_DST ]]; then
    if [[ $(<"$UNIT_DST") == "$rendered" ]]; then
      echo "  $UNIT_DST is already up to date"
    else
      echo "  $UNIT_DST exists and differs; the old one is kept as $UNIT_DST.bak"
      run cp -p "$UNIT_DST" "$UNIT_DST.bak"
    fi
  fi
  if ((dry_run)); then
    printf '  would write %s (mode 0644) with:\n' "$UNIT_DST"
    printf '%s\n' "$rendered" | grep -E '^(ExecStart|User|Group|#?SupplementaryGroups|StateDirectory|LogsDirectory|LimitNOFILE|LimitMEMLOCK|TimeoutStopSec)=' | sed 's/^/      /'
  else
    tmp=$(mktemp "$UNIT_DIR/.ringway.service.XXXXXX")
    # shellcheck disable=SC2064 # expand $tmp now
    trap "rm -f -- '$tmp'" EXIT
    printf '%s\n' "$rendered" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$UNIT_DST"
    trap - EXIT
    echo "  wrote $UNIT_DST"
  fi
  if [[ -d /run/systemd/system ]]; then
    run systemctl daemon-reload
  else
    warn "systemd is not running here; run 'systemctl daemon-reload' on the target system"
  fi
fi

# ---------------------------------------------------------------------------
# Next steps (printed, never run)
# ---------------------------------------------------------------------------
echo
if ((dry_run)); then
  echo "Dry run complete; nothing was changed."
else
  echo "Installed $BIN_DST."
fi
echo "Not enabled or started. Next steps:"
echo "  $REPO/tuning/sysctl.sh --check        # kernel settings (then: sudo ... --apply / --persist)"
echo "  $REPO/tuning/limits.sh                # RLIMIT_NOFILE / RLIMIT_MEMLOCK"
if ((systemd)); then
  echo "  sudo systemctl edit ringway                  # set your real inputs/outputs (ExecStart=)"
  echo "  sudo systemctl enable --now ringway.service  # enable at boot and start"
  echo "  systemctl status ringway; journalctl -u ringway -f"
else
  echo "  $BIN_DST run --input file:/var/log/*.log,from=end --output stdout"
  echo "  (re-run with --systemd to install the service unit)"
fi
