#!/usr/bin/env bash
# The gateway's instructions per request, by kind, under valgrind's callgrind (release build, its own stack):
#   ./Deploy/bench-instructions.sh [devices, default 200]
# A number that does not depend on the machine's load: a change that makes a request costlier shows up here.
# (This machine has no hardware counters for `perf stat -e instructions`; callgrind counts instead, ~50x slower.)
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
DEVICES=${1:-200}
install_dependencies
command -v valgrind >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
release_bin
STATE=$(mktemp -d /tmp/orchard-bench-instr.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" 55753 >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0 ORCHARD_READY_TRIES=600
export ORCHARD_CALLGRIND_OUT="$STATE/callgrind.out"
export ORCHARD_WRAP_CHECKIN_GATEWAY="valgrind --tool=callgrind --callgrind-out-file=$ORCHARD_CALLGRIND_OUT --dump-instr=no --collect-systime=no"
start_measured_services "$BIN" "$STATE" 38580 38763
export ORCHARD_GATEWAY_PID=$(pgrep -f "callgrind.*checkin-gateway" | head -1)
"$BIN/orchard-bench" instructions --devices "$DEVICES"
