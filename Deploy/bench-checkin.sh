#!/usr/bin/env bash
# Check-in and command-loop throughput: starts PostgreSQL, the local broker and the five services
# (release build), enrolls simulated devices against the gateway and prints rates and latencies.
# Usage: ./Deploy/bench-checkin.sh [--devices 1000] [-c 16]
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
swift build -c release >/dev/null
BIN=$(swift build -c release --show-bin-path)
STATE=$(mktemp -d /tmp/orchard-bench.XXXXXX)
chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_BENCH_PG_PORT:-55533}"
start_broker "$BIN" "$STATE" >/dev/null
make_test_pki "$STATE/pki"
export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64) ORCHARD_TEST_PKI="$STATE/pki"
export ORCHARD_ADMIN_API_KEY="orchard_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
export ORCHARD_DEVICE_IDENTITY_ROOTS="$STATE/pki/ca.pem" ORCHARD_LOG_LEVEL=warning
# Bench devices bring their own identities: no RSA key pool competing for the two cores.
export ORCHARD_DEVICE_KEY_POOL_SIZE=0
start_services "$BIN" "${ORCHARD_BENCH_FIRST_PORT:-28080}" > "$STATE/services.log" 2>&1
"$BIN/orchard-bench" checkin "$@"
