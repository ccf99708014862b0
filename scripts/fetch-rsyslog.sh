#!/usr/bin/env bash
# Unpacks Debian's rsyslog (and the few libraries it needs that the base
# system lacks) into target/rsyslog/root, WITHOUT installing it: tests/it/tcp.rs
# runs `rsyslogd -n` from there as a real RFC 6587 octet-counting sender, in
# plaintext and over TLS (RFC 5425) with rsyslog-openssl's lmnsd_ossl driver.
#
# rsyslog is never installed as a package nor started as a service here: it
# conflicts with syslog-ng-core in apt, and a test must not touch the
# machine's logging. `apt-get download` + `dpkg -x` only.
#
# Idempotent: does nothing when target/rsyslog/root/usr/sbin/rsyslogd exists
# and runs and the TLS driver is there. Prints the rsyslogd path on success.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=target/rsyslog
root="$dest/root"
rsyslogd="$root/usr/sbin/rsyslogd"

libdirs() {
    local dirs=()
    for d in "$PWD/$root/usr/lib/x86_64-linux-gnu" "$PWD/$root/lib/x86_64-linux-gnu" \
             "$PWD/$root/usr/lib/aarch64-linux-gnu" "$PWD/$root/lib/aarch64-linux-gnu"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    local IFS=:
    echo "${dirs[*]:-}"
}

works() {
    [ -x "$rsyslogd" ] && LD_LIBRARY_PATH="$(libdirs)" "$rsyslogd" -v >/dev/null 2>&1 &&
        compgen -G "$root/usr/lib/*/rsyslog/lmnsd_ossl.so" >/dev/null
}

if works; then
    echo "$PWD/$rsyslogd"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || { echo "fetch-rsyslog.sh: apt-get not found (Debian/Ubuntu only)" >&2; exit 1; }
command -v dpkg >/dev/null 2>&1 || { echo "fetch-rsyslog.sh: dpkg not found" >&2; exit 1; }

mkdir -p "$dest/debs"
# rsyslog itself plus its libraries that a minimal Debian lacks. Libraries
# already installed on the system are used from there.
packages=(rsyslog rsyslog-openssl)
for lib in libestr0 libfastjson4 liblognorm5; do
    dpkg -s "$lib" >/dev/null 2>&1 || packages+=("$lib")
done
download() {
    (cd "$dest/debs" && apt-get download -qq "${packages[@]}")
}
if ! download; then
    # An empty or stale package list: refresh it once, then retry.
    apt-get update -qq
    download
fi
rm -rf "$root"
mkdir -p "$root"
for deb in "$dest"/debs/*.deb; do
    dpkg -x "$deb" "$root"
done

if ! works; then
    echo "fetch-rsyslog.sh: $rsyslogd was unpacked but does not run:" >&2
    LD_LIBRARY_PATH="$(libdirs)" ldd "$rsyslogd" >&2 || true
    LD_LIBRARY_PATH="$(libdirs)" "$rsyslogd" -v >&2 || true
    exit 1
fi
echo "$PWD/$rsyslogd"
