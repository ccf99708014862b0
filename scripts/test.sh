#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
# Installs what the tests need, checks formatting and lints, then runs the
# unit and integration tests in release mode (the tests move real data
# through real io_uring, files and FIFOs; debug builds are too slow for that).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
# rustfmt and clippy ship as rustup components; add them when missing.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
# Real clients the tests drive: util-linux logger (Debian: bsdutils) for the
# UDP tests, Debian's logrotate for the rotation tests.
missing=()
command -v logger >/dev/null 2>&1 || missing+=(bsdutils)
command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || missing+=(logrotate)
# curl and Python (with venv) for the OTLP tests.
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# tmux for the `ringway top` test (tests/it/metrics.rs).
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# openssl makes the TLS tests' certificates (openssl req) and is their TLS
# client (openssl s_client) (tests/it/tls.rs).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# OpenSSL's headers and pkg-config: the bundled librdkafka of the kafka:
# output is built with TLS and SASL against the system's OpenSSL (rdkafka's
# `ssl` feature; libssl is linked dynamically).
pkg-config --exists openssl >/dev/null 2>&1 || missing+=(libssl-dev pkg-config)
# systemd-analyze verifies the installed unit (tests/it/config.rs).
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
# The official OpenTelemetry Python SDK and OTLP/HTTP exporter, pinned, in a
# venv under target/: tests/it/otlp.rs exports through it (RINGWAY_TEST_PYTHON).
# The same venv holds the official Prometheus client, whose parser
# tests/it/metrics.rs reads /metrics with, and DuckDB, which
# tests/it/sql_differential.rs checks --sql against, and PyYAML, which
# tests/it/seccomp.rs parses deploy/kubernetes/daemonset.yaml with, and
# confluent-kafka (it bundles librdkafka 2.12.1, the version ringway's kafka
# output builds), which tests/it/kafka.rs reads topics back with.
otel_version=1.45.2
prometheus_client_version=0.21.1
duckdb_version=2.0.0
pyyaml_version=6.0.3
confluent_kafka_version=2.12.1
otel_venv=target/otel-venv
if [ ! -x "$otel_venv/bin/python" ]; then
    mkdir -p target
    python3 -m venv "$otel_venv"
fi
if ! "$otel_venv/bin/python" -c "
import sys
from opentelemetry.sdk.version import __version__ as sdk
from opentelemetry.exporter.otlp.proto.http.version import __version__ as exporter
import opentelemetry.proto
from importlib.metadata import version
import prometheus_client.parser
import duckdb
import yaml
import confluent_kafka
sys.exit(not (sdk == exporter == '$otel_version'
              and version('prometheus-client') == '$prometheus_client_version'
              and duckdb.__version__ == '$duckdb_version'
              and yaml.__version__ == '$pyyaml_version'
              and confluent_kafka.version()[0] == '$confluent_kafka_version'))" >/dev/null 2>&1; then
    "$otel_venv/bin/pip" install --quiet --disable-pip-version-check \
        "opentelemetry-api==$otel_version" \
        "opentelemetry-sdk==$otel_version" \
        "opentelemetry-exporter-otlp-proto-http==$otel_version" \
        "opentelemetry-proto==$otel_version" \
        "prometheus-client==$prometheus_client_version" \
        "duckdb==$duckdb_version" \
        "pyyaml==$pyyaml_version" \
        "confluent-kafka==$confluent_kafka_version"
fi
export RINGWAY_TEST_PYTHON="$PWD/$otel_venv/bin/python"
# tansu 0.6.0, a Kafka-protocol broker, built once into a cache outside the
# clone (~/.cache/ringway; 15-60 min the first time on 2 cores): the real
# broker tests/it/kafka.rs starts on 127.0.0.1 for the kafka: output.
RINGWAY_TEST_TANSU="$(bash scripts/fetch-tansu.sh)"
export RINGWAY_TEST_TANSU
# Debian's rsyslog, unpacked under target/rsyslog by apt-get download +
# dpkg -x (never installed: it conflicts with syslog-ng-core, and it must not
# run as a service): tests/it/tcp.rs runs `rsyslogd -n` from there as a real
# RFC 6587 octet-counting sender, plaintext and over TLS (rsyslog-openssl).
bash scripts/fetch-rsyslog.sh >/dev/null
export RINGWAY_TEST_RSYSLOG_ROOT="$PWD/target/rsyslog/root"
# The side-by-side benchmark's tools (tests/it/compare.rs runs its quick mode):
# syslog-ng-core from Debian (apt, no service started; unpacked privately
# where installing would touch the host's logging), matplotlib (pinned) in
# target/bench-venv. See bench/compare.sh.
bash bench/compare.sh --install-only

if [ ! -d ../shared/data/loghub ]; then
    echo "scripts/test.sh: note: ../shared/data/loghub is absent; the loghub tests print 'not run' (and fail under CI)" >&2
fi

cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
# Four tests at a time on any machine: most of a test's time is waiting for
# ringway (a file to settle, a socket, a broker), not CPU (about 70 CPU-s in
# 100-160 s of a 2-core run), so four at once take ~100 s where two took
# ~160 s. The tests that race rotations at full speed take a lock so no two
# of them overlap (tests/it/common.rs). RUST_TEST_THREADS set by the caller
# wins.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
cargo test --release "$@"
