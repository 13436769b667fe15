#!/usr/bin/env bash
# Measures the Kafka request/reply round trip (p50/p99 at 1, 16 and 64 concurrent requests, responder in
# another process) and producer throughput, on the local broker, with a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
swift build -c release --product orchard-bench --product orchard-local-broker >/dev/null
BIN=$(swift build -c release --show-bin-path)
STATE=$(mktemp -d /tmp/orchard-bench.XXXXXX)
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_broker "$BIN" "$STATE" >/dev/null
"$BIN/orchard-bench" respond >/dev/null 2>&1 &
ORCHARD_PIDS+=($!)
"$BIN/orchard-bench" all "$@"
