#!/usr/bin/env bash
# Fleet soak: the local trial's stack (release build, stand-ins), then `orchard-sim fleet`: N devices enrolled through
# links, each checking in every S seconds and answering its commands (woken by the APNs stand-in's pushes), for M
# minutes; every service's resident memory every minute, and the fleet's own progress every 10 s.
#   ./Deploy/soak-fleet.sh [devices, default 10000] [interval s, default 60] [minutes, default 10]
# ORCHARD_BENCH_BIN=<folder> runs another build's binaries (as bench-enrollment.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
source Deploy/scripts/trial.sh
DEVICES=${1:-10000}
INTERVAL=${2:-60}
MINUTES=${3:-10}
install_dependencies
install_directory_dependencies
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
release_bin
STATE=$(mktemp -d /tmp/orchard-soak-fleet.XXXXXX)
chmod 755 "$STATE"
trap '{ [ -n "${SAMPLER:-}" ] && kill "$SAMPLER"; } 2>/dev/null || true; stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_SOAK_PG_PORT:-55733}" >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_trial_bench_stack "$STATE" "$BIN" "${ORCHARD_SOAK_FIRST_PORT:-29180}"
SERVICE_PIDS=("${ORCHARD_PIDS[@]}")
rss() { for pid in "${SERVICE_PIDS[@]}" "$ORCHARD_BROKER_PID"; do
  [ -r "/proc/$pid/status" ] || continue
  printf "%s=%s " "$(tr '\0' ' ' < /proc/$pid/cmdline | awk '{print $1}' | xargs basename)" "$(awk '/VmRSS/ {printf "%.0fMB", $2/1024}' /proc/$pid/status)"
done; echo; }
echo "memory before the fleet: $(rss)"
# Sampled every minute once the fleet is enrolled (the fleet prints "checking in every" then).
( until grep -q "checking in every" "$STATE/fleet.log" 2>/dev/null; do sleep 1; done
  minute=0
  while true; do echo "memory at minute $minute of the soak: $(rss)"; minute=$((minute + 1)); sleep 60; done ) &
SAMPLER=$!
stdbuf -oL "$BIN/orchard-sim" fleet --devices "$DEVICES" --interval "$INTERVAL" --duration $((MINUTES * 60)) --state "$STATE/fleet" \
  --concurrency 16 2>&1 | tee "$STATE/fleet.log"
status=${PIPESTATUS[0]}
kill "$SAMPLER" 2>/dev/null || true
echo "memory after the soak: $(rss)"
echo "PostgreSQL: $(psql "$ORCHARD_DATABASE_URL" -tAc "SELECT pg_size_pretty(pg_database_size(current_database()))")"
exit "$status"
