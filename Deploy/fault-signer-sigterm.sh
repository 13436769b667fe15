#!/usr/bin/env bash
# profile-signer stopped (SIGTERM) shortly after start, while its RSA device-key pool is still filling, N times:
#   ./Deploy/fault-signer-sigterm.sh [runs, default 30]
# Prints how each run ended. A clean stop exits 0; the hardening issue saw one segfault here.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
RUNS=${1:-30}
install_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-signer-term.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" 55833 >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64) ORCHARD_LOG_LEVEL=warning
export ORCHARD_DEVICE_KEY_TYPE=rsa2048 ORCHARD_DEVICE_KEY_POOL_SIZE=32
declare -A outcomes=()
for run in $(seq 1 "$RUNS"); do
  ORCHARD_HTTP_PORT=38982 ORCHARD_INSTANCE_ID="signer-$run" "$BIN/profile-signer" > "$STATE/run.log" 2>&1 &
  pid=$!
  # Stop it at a different moment each run: 0.2 to 3 s after start (the pool fills for several seconds).
  sleep "$(python3 -c "import random; print(round(random.uniform(0.2, 3.0), 2))")"
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  case $rc in 0) what="exit 0";; 1) what="exit 1";; *) what="status $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")";; esac
  outcomes[$what]=$(( ${outcomes[$what]:-0} + 1 ))
  [ "$rc" -gt 128 ] && { echo "run $run: $what"; cp "$STATE/run.log" "/tmp/signer-crash-$run.log"; grep -m3 -E "^[0-9]+ .* in " "$STATE/run.log" || tail -3 "$STATE/run.log"; }
done
for what in "${!outcomes[@]}"; do echo "$what: ${outcomes[$what]} of $RUNS runs"; done
