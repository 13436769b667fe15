#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and starts PostgreSQL, the local Kafka
# broker and the five services on this machine. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh

STATE=${ORCHARD_STATE_DIR:-$PWD/.orchard/local}
CONFIG=${ORCHARD_BUILD_CONFIGURATION:-release}
mkdir -p "$STATE"
install_dependencies
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
log "building ($CONFIG)"
swift build -c "$CONFIG"
BIN=$(swift build -c "$CONFIG" --show-bin-path)

trap 'log "stopping"; stop_stack; exit 0' INT TERM
trap 'stop_stack' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_PG_PORT:-54329}"
start_broker "$BIN" "$STATE" "${ORCHARD_KAFKA_PORT:-19092}"
# Kept across runs: the KEK seals the keys stored in PostgreSQL, so a new one would make them unreadable.
[ -s "$STATE/kek" ] || head -c 32 /dev/urandom | base64 > "$STATE/kek"
[ -s "$STATE/admin-key" ] || echo "orchard_local_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" > "$STATE/admin-key"
export ORCHARD_KEK=${ORCHARD_KEK:-$(cat "$STATE/kek")}
export ORCHARD_ADMIN_API_KEY=${ORCHARD_ADMIN_API_KEY:-$(cat "$STATE/admin-key")}
export ORCHARD_PUBLIC_URL=${ORCHARD_PUBLIC_URL:-http://127.0.0.1:${ORCHARD_FIRST_PORT:-8080}}
start_services "$BIN" "${ORCHARD_FIRST_PORT:-8080}"
log "all services up; admin API: $ORCHARD_PUBLIC_URL/admin/v1 with 'Authorization: Bearer $ORCHARD_ADMIN_API_KEY'"
log "Ctrl-C stops everything"
wait
