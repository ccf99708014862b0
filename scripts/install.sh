#!/usr/bin/env bash
# scripts/install.sh: install ringway as a systemd service on a Linux log host.
#
#   $DESTDIR/usr/bin/ringway                         the binary
#   $DESTDIR/etc/ringway/ringway.toml                the config (an existing one is kept)
#   $DESTDIR/usr/lib/sysusers.d/ringway.conf         the `ringway` system user
#   $DESTDIR/usr/lib/systemd/system/ringway.service  the unit
#
# The binary is $BINARY, else $CARGO_TARGET_DIR/release/ringway, else
# target/release/ringway (build it first: cargo build --release).
# With DESTDIR set (packaging, tests) only those files are laid out. Without
# it, the user is created (systemd-sysusers, else useradd) and systemd is
# told of the unit (daemon-reload), and /var/lib/ringway and /var/log/ringway
# are made for it. It never enables or starts the service.
#
# Exit codes: 0 done, 1 failure, 2 bad usage.

set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
SVC_USER=ringway
STATE_DIR=/var/lib/ringway

usage() {
  cat <<EOF_USAGE
Usage: [DESTDIR=DIR] [BINARY=PATH] $PROG [--help]

Installs /usr/bin/ringway, /etc/ringway/ringway.toml (kept if present),
/usr/lib/sysusers.d/ringway.conf and /usr/lib/systemd/system/ringway.service.
With DESTDIR, lays them out under DIR only (no user, no systemctl).
Then: ringway check --config /etc/ringway/ringway.toml
      systemctl enable --now ringway
EOF_USAGE
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

case ${1:-} in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) printf "%s: error: unknown argument '%s'\nTry '%s --help'.\n" "$PROG" "$1" "$PROG" >&2; exit 2 ;;
esac

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
if [[ -n $DESTDIR && $DESTDIR != /* ]]; then
  DESTDIR=$PWD/$DESTDIR
fi

# The binary: BINARY=, else the cargo target directory, else target/.
binary=${BINARY:-}
if [[ -z $binary ]]; then
  candidates=()
  if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    target=$CARGO_TARGET_DIR
    [[ $target == /* ]] || target=$REPO/$target
    candidates+=("$target/release/ringway")
  fi
  candidates+=("$REPO/target/release/ringway")
  for candidate in "${candidates[@]}"; do
    if [[ -x $candidate ]]; then
      binary=$candidate
      break
    fi
  done
  [[ -n $binary ]] || die "no binary at ${candidates[*]}; run 'cargo build --release' or set BINARY=PATH"
fi
[[ -f $binary && -x $binary ]] || die "BINARY=$binary is not an executable file"

if [[ -z $DESTDIR && $EUID -ne 0 ]]; then
  die "this writes /usr and /etc: run it as root (or set DESTDIR=DIR to lay the files out elsewhere)"
fi

step "binary: $binary -> $DESTDIR/usr/bin/ringway"
install -d -m 0755 "$DESTDIR/usr/bin"
# Copy then rename: atomic, and works while an older ringway runs.
install -m 0755 "$binary" "$DESTDIR/usr/bin/.ringway.new"
mv -f "$DESTDIR/usr/bin/.ringway.new" "$DESTDIR/usr/bin/ringway"

config=$DESTDIR/etc/ringway/ringway.toml
install -d -m 0755 "$DESTDIR/etc/ringway"
if [[ -e $config ]]; then
  step "config: $config exists, kept (the shipped one is $SCRIPT_DIR/ringway.toml)"
else
  step "config: $config"
  install -m 0644 "$SCRIPT_DIR/ringway.toml" "$config"
fi

step "system user: $DESTDIR/usr/lib/sysusers.d/ringway.conf"
install -d -m 0755 "$DESTDIR/usr/lib/sysusers.d"
cat >"$DESTDIR/usr/lib/sysusers.d/.ringway.conf.new" <<EOF_SYSUSERS
# The user the ringway service runs as (scripts/install.sh).
u $SVC_USER - "ringway log data plane" $STATE_DIR
EOF_SYSUSERS
chmod 0644 "$DESTDIR/usr/lib/sysusers.d/.ringway.conf.new"
mv -f "$DESTDIR/usr/lib/sysusers.d/.ringway.conf.new" "$DESTDIR/usr/lib/sysusers.d/ringway.conf"

unit=$DESTDIR/usr/lib/systemd/system/ringway.service
step "systemd unit: $unit"
install -d -m 0755 "$DESTDIR/usr/lib/systemd/system"
if [[ -z $DESTDIR ]] && ! getent group adm >/dev/null 2>&1; then
  # SupplementaryGroups= naming a missing group fails the start.
  sed 's/^SupplementaryGroups=adm$/#SupplementaryGroups=adm  (no adm group on this host)/' \
    "$SCRIPT_DIR/ringway.service" >"$unit.new"
else
  cp "$SCRIPT_DIR/ringway.service" "$unit.new"
fi
chmod 0644 "$unit.new"
mv -f "$unit.new" "$unit"

if [[ -n $DESTDIR ]]; then
  echo "Laid out under $DESTDIR; no user created, systemd not told."
  exit 0
fi

if getent passwd "$SVC_USER" >/dev/null 2>&1; then
  step "user: '$SVC_USER' exists"
elif command -v systemd-sysusers >/dev/null 2>&1; then
  step "user: systemd-sysusers ringway.conf"
  systemd-sysusers ringway.conf
else
  step "user: useradd $SVC_USER"
  nologin=/usr/sbin/nologin
  [[ -x $nologin ]] || nologin=/sbin/nologin
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell "$nologin" --comment "ringway log data plane" "$SVC_USER"
fi

# The unit's StateDirectory= and LogsDirectory= would create these at the
# first start; made now so `ringway check` finds the output directory.
step "directories: $STATE_DIR /var/log/ringway (owner $SVC_USER)"
install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$STATE_DIR" /var/log/ringway

if [[ -d /run/systemd/system ]]; then
  step "systemctl daemon-reload"
  systemctl daemon-reload
else
  echo "systemd is not running here; run 'systemctl daemon-reload' on the target system"
fi

echo
echo "Installed; not enabled or started. Next:"
echo "  ringway check --config /etc/ringway/ringway.toml   # after editing it"
echo "  systemctl enable --now ringway; journalctl -u ringway -f"
echo "  $REPO/tuning/udp-host.sh                           # kernel settings for UDP/syslog"
