#!/usr/bin/env bash
# ringway's SQL transform beside rsyslog, syslog-ng and DuckDB: one command.
#
#   bench/sql.sh            # 1M lines, 3 interleaved reps (a few minutes)
#   bench/sql.sh --quick    # smoke test: 100k lines, 1 rep
#   bench/sql.sh --help     # every flag of bench/sql.py
#
# Installs what it needs as bench/compare.sh does (rsyslog and syslog-ng
# never as services, matplotlib in target/bench-venv, ringway built; see
# there), plus DuckDB's Python package (pinned) in the same venv. Results:
# bench/results/<UTC date>/{sql.json,sql.md,sql.svg} (with --quick:
# /tmp/ringway-sql-bench/results-quick/). Every other argument goes to
# bench/sql.py.
set -euo pipefail
cd "$(dirname "$0")/.."

duckdb_version=2.0.0
venv=target/bench-venv

for arg in "$@"; do
    case "$arg" in
        -h|--help) exec python3 bench/sql.py --help ;;
    esac
done

bash bench/compare.sh --install-only
if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$duckdb_version')" 2>/dev/null; then
    echo "sql.sh: installing duckdb $duckdb_version into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "duckdb==$duckdb_version"
fi

# syslog-ng as compare.sh found or unpacked it: on PATH, /usr/sbin, or
# private under target/syslog-ng/root.
syslog_ng_args=()
if [ "${COMPARE_PRIVATE_SYSLOG_NG:-0}" != 1 ] && command -v syslog-ng >/dev/null 2>&1; then
    syslog_ng_args=(--syslog-ng "$(command -v syslog-ng)")
elif [ "${COMPARE_PRIVATE_SYSLOG_NG:-0}" != 1 ] && [ -x /usr/sbin/syslog-ng ]; then
    syslog_ng_args=(--syslog-ng /usr/sbin/syslog-ng)
else
    syslog_ng_args=(--syslog-ng-root "$PWD/target/syslog-ng/root")
fi

# The command as typed, quoted so that it can be pasted back.
command=$(python3 -c 'import shlex, sys; print(shlex.join(sys.argv[1:]))' bench/sql.sh "$@")

exec "$venv/bin/python" bench/sql.py \
    --command "$command" \
    --ringway "${RINGWAY_BIN:-${CARGO_TARGET_DIR:-target}/release/ringway}" \
    --rsyslog-root "$PWD/target/rsyslog/root" \
    --duckdb-python "$venv/bin/python" \
    "${syslog_ng_args[@]}" \
    "$@"
