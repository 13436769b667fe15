#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, starts PostgreSQL, the local Kafka
# broker and the five services once, runs every test against them, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh

STATE=$(mktemp -d /tmp/orchard-test.XXXXXX)
chmod 755 "$STATE"
install_dependencies
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
log "building"
swift build --build-tests
BIN=$(swift build --show-bin-path)

trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_TEST_PG_PORT:-55433}"
start_broker "$BIN" "$STATE"
export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64)
start_services "$BIN" "${ORCHARD_TEST_FIRST_PORT:-18080}" 2> >(sed -u 's/^/  /' >&2) > "$STATE/services.log"
export ORCHARD_TEST_STACK=1 ORCHARD_BIN_DIR="$BIN"
log "running tests"
set +e
swift test --skip-build "$@"
status=$?
set -e
if [ $status -ne 0 ]; then
  log "tests failed; last service log lines:"
  tail -n 40 "$STATE/services.log" >&2 || true
fi
exit $status
