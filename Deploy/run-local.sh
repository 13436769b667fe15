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
start_broker "$BIN" "$STATE"
export ORCHARD_KEK=${ORCHARD_KEK:-$(head -c 32 /dev/urandom | base64)}
start_services "$BIN" "${ORCHARD_FIRST_PORT:-8080}"
log "all services up; Ctrl-C stops them"
wait
