#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and starts PostgreSQL, the local Kafka
# broker and the five services on this machine, with the local trial's stand-ins for Apple's services
# (Deploy/scripts/trial.sh; ORCHARD_LOCAL_TRIAL=0 gives the bare stack). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
source Deploy/scripts/trial.sh
TRIAL=${ORCHARD_LOCAL_TRIAL:-1}

STATE=${ORCHARD_STATE_DIR:-$PWD/.orchard/local}
CONFIG=${ORCHARD_BUILD_CONFIGURATION:-release}
mkdir -p "$STATE"
install_dependencies
[ "$TRIAL" = 1 ] && install_directory_dependencies
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
FIRST=${ORCHARD_FIRST_PORT:-8080}
if [ "$TRIAL" = 1 ]; then
  start_trial_standins "$STATE" "$BIN" "$FIRST"
else
  export ORCHARD_LOCAL_TRIAL=0
fi
start_services "$BIN" "$FIRST"
# orchardctl and orchard-sim on the PATH, when /usr/local/bin is ours to write.
TOOLS="$BIN/"
if [ -w /usr/local/bin ]; then
  ln -sf "$BIN/orchardctl" /usr/local/bin/orchardctl && ln -sf "$BIN/orchard-sim" /usr/local/bin/orchard-sim && TOOLS=""
fi
if [ "$TRIAL" = 1 ]; then
  trial_setup "$STATE" "$FIRST"
  log "LOCAL TRIAL ready: stand-ins for APNs, Apple's device CA and ABM, a demo directory (passwords below); loopback only"
  log "  directory accounts: ava@byod.example.com / ava-orchard-trial (User Enrollment), noah@adde.example.com / noah-orchard-trial (Device Enrollment)"
else
  write_tool_config "$STATE" "$FIRST"
fi
log "all services up; admin API: $ORCHARD_PUBLIC_URL/admin/v1 with 'Authorization: Bearer $ORCHARD_ADMIN_API_KEY'"
log "try, in another terminal in this folder:"
[ "$TRIAL" = 1 ] && log "  ${TOOLS}orchard-sim demo                 # a watch through its iPhone, an ADE Mac, a BYOD iPhone… each step printed"
log "  ${TOOLS}orchardctl devices list"
log "  ${TOOLS}orchardctl activity --follow"
log "Ctrl-C stops everything"
wait
