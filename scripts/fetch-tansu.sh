#!/usr/bin/env bash
# Installs tansu 0.6.0, a Kafka-protocol broker written in Rust, from
# crates.io into a cache directory OUTSIDE the clone, once: the Kafka
# tests (tests/it/kafka.rs) start it on 127.0.0.1 with its in-memory
# storage as the real broker ringway's kafka output talks to.
#
# Its build is long (15-60 min on 2 cores), so it is kept across clones and
# CI runs in
#   ${RINGWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ringway}/tansu-0.6.0
# and built again only when that binary is missing or does not run. Cargo's
# own download cache (~/.cargo/registry) is used as for the project; the
# build's target directory is removed after the install.
#
# Idempotent. Prints the tansu binary's path on success.
set -euo pipefail

version=0.6.0
cache=${RINGWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ringway}
root="$cache/tansu-$version"
bin="$root/bin/tansu"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

mkdir -p "$cache"
build="$cache/tansu-$version-build"
echo "fetch-tansu.sh: building tansu $version into $root (once; 15-60 min on 2 cores)" >&2
start=$(date +%s)
# dynostore: the in-memory storage engine (memory://), which needs no
# PostgreSQL or S3. --locked: the crate's own Cargo.lock, as published.
CARGO_TARGET_DIR="$build" cargo install --quiet --locked --root "$root" \
    --version "=$version" --features dynostore tansu >&2
rm -rf "$build"
"$bin" --version >/dev/null
echo "fetch-tansu.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
