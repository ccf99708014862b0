#!/usr/bin/env bash
# Before/after benchmark of two git revisions of ringway on this machine:
# builds each in a git worktree of its own under target/before-after/ (with
# the release profile of its own Cargo.toml: fat LTO, one codegen unit),
# builds the load generator from the "after" revision, then runs
# bench/before_after.py: file→null json, file→file json and UDP at max rate,
# interleaved A B, B A, A B … (alternating by rep), medians and ratios in a Markdown table.
#
#   bench/before_after.sh                          # bd5486c vs HEAD, 5 reps
#   bench/before_after.sh --before bd5486c --after HEAD --reps 7 --lines 5000000
#   bench/before_after.sh --quick                  # smoke test: 2 reps, 200k lines, 2 s UDP
#
# Flags: --before REV [bd5486c], --after REV [HEAD], --reps N [5],
# --lines N [2000000], --udp-seconds S [5], --out FILE
# [bench/results/<UTC date>/before_after.md], --workdir DIR (data, summaries
# and file→file's output; a tmpfs such as /dev/shm/ringway-ba keeps
# file→file off the disk's writeback noise) [a temp dir], --fast-build (thin builds:
# LTO off, 16 codegen units, for a smoke test only; both sides alike),
# --target-dir DIR (cargo's target directory for the builds, shared by both
# revisions [target/before-after/target]), --quick. A commit built once is
# not built again (its binaries stay in target/before-after/bin-<commit>).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

before=bd5486c
after=HEAD
reps=5
lines=2000000
udp_seconds=5
out=
workdir=
fast_build=0
target_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --before) before=$2; shift 2 ;;
        --after) after=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --udp-seconds) udp_seconds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --workdir) workdir=$2; shift 2 ;;
        --fast-build) fast_build=1; shift ;;
        --target-dir) target_dir=$2; shift 2 ;;
        --quick) reps=2; lines=200000; udp_seconds=2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "before_after.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Both sides are built alike: the caller's profile overrides do not apply
# unless --fast-build asks for thin builds on both.
unset CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS CARGO_PROFILE_RELEASE_INCREMENTAL
if [ "$fast_build" = 1 ]; then
    export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
base_dir=$repo/target/before-after
suffix=
[ "$fast_build" = 1 ] && suffix=-fast
target_dir=${target_dir:-$base_dir/target$suffix}

# build REV EXAMPLE...: builds REV's ringway (and the examples) in its own
# worktree, into one target directory shared by all revisions (dependencies
# compile once), and copies the binaries to a directory of that commit,
# whose path it prints. A commit already built is not built again.
build() {
    local rev=$1; shift
    local commit
    commit=$(git rev-parse --verify "$rev^{commit}")
    local short=${commit:0:12}
    local tree=$base_dir/src-$short
    local bin=$base_dir/bin-$short$suffix
    if [ -x "$bin/ringway" ] && { [ $# = 0 ] || [ -x "$bin/$1" ]; }; then
        echo "before_after.sh: reusing $bin" >&2
        echo "$bin"
        return
    fi
    if [ ! -d "$tree" ]; then
        mkdir -p "$base_dir"
        git worktree add --detach --quiet "$tree" "$commit" >&2
    fi
    local what=(--bin ringway)
    for example in "$@"; do what+=(--example "$example"); done
    echo "before_after.sh: building $rev ($short) in $tree" >&2
    (cd "$tree" && CARGO_TARGET_DIR=$target_dir cargo build --release --quiet "${what[@]}") >&2
    mkdir -p "$bin"
    cp "$target_dir/release/ringway" "$bin/"
    for example in "$@"; do cp "$target_dir/release/examples/$example" "$bin/"; done
    echo "$bin"
}

# "REV (commit)", or just the commit when REV is one.
label() {
    local short
    short=$(git rev-parse --short "$1")
    case "$short" in "$1"*) echo "$short" ;; *) echo "$1 ($short)" ;; esac
}
# Each revision is resolved to its commit once, here: a commit made while
# the run goes on (HEAD moving) must not relabel what was built.
before_label=$(label "$before")
after_label=$(label "$after")
before=$(git rev-parse --verify "$before^{commit}")
after=$(git rev-parse --verify "$after^{commit}")
started=$(date +%s)
before_bin=$(build "$before")
after_bin=$(build "$after" loadgen)
echo "before_after.sh: built in $(( $(date +%s) - started )) s" >&2

args=(--a "$before_bin/ringway" --a-label "$before_label"
      --b "$after_bin/ringway" --b-label "$after_label"
      --loadgen "$after_bin/loadgen"
      --reps "$reps" --lines "$lines" --udp-seconds "$udp_seconds")
[ -n "$out" ] && args+=(--out "$out")
[ -n "$workdir" ] && args+=(--workdir "$workdir")
python3 bench/before_after.py "${args[@]}"
echo "before_after.sh: done in $(( $(date +%s) - started )) s" >&2
