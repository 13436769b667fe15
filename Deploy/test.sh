#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, starts PostgreSQL, the local Kafka
# broker and the five services once, runs every test against them, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh

STATE=$(mktemp -d /tmp/orchard-test.XXXXXX)
chmod 755 "$STATE"
install_dependencies
install_test_dependencies
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
# The layout rules (no folder cycles in a service, SQL only under Storage/): seconds, before the build.
python3 Deploy/scripts/check-folders.py
log "building"
swift build --build-tests
BIN=$(swift build --show-bin-path)

trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_TEST_PG_PORT:-55433}"
start_broker "$BIN" "$STATE"
export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64)
make_test_pki "$STATE/pki"
FIRST_PORT=${ORCHARD_TEST_FIRST_PORT:-18080}
export ORCHARD_TEST_PKI="$STATE/pki" ORCHARD_TEST_APNS_PORT=${ORCHARD_TEST_APNS_PORT:-18443}
export ORCHARD_ADMIN_API_KEY="orchard_test_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
export ORCHARD_PUBLIC_URL="http://127.0.0.1:$FIRST_PORT"
export ORCHARD_APNS_URL="https://127.0.0.1:$ORCHARD_TEST_APNS_PORT" ORCHARD_APNS_CA_PEM="$STATE/pki/ca.pem"
export ORCHARD_DEVICE_IDENTITY_ROOTS="$STATE/pki/ca.pem" ORCHARD_DEVICE_KEY_POOL_SIZE=8
export ORCHARD_APPLE_DEVICE_ROOTS="$STATE/pki/apple-ca.pem" ORCHARD_CLIENT_CERT_HEADER=X-Client-Cert
start_abm_standin "${ORCHARD_TEST_ABM_PORT:-18445}"
start_abm_api_standin "${ORCHARD_TEST_ABM_API_PORT:-18447}"
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0  # syncs on demand only: the tests drive each one
start_oidc_standin "${ORCHARD_TEST_OIDC_PORT:-18446}"
start_apps_books_standin "${ORCHARD_TEST_APPS_BOOKS_PORT:-18448}" "$STATE/apps-metadata"
start_slapd "$STATE/ldap" "${ORCHARD_TEST_LDAP_PORT:-13389}" Tests/Fixtures/ldap/directory.ldif
# A revoked token, an expired one or a user disabled in the directory is noticed within 10 s here (within a minute by default).
export ORCHARD_ACCOUNT_TOKEN_CACHE_SECONDS=5 ORCHARD_DIRECTORY_RECHECK_SECONDS=5
export ORCHARD_FORWARDED_FOR_HEADER=X-Forwarded-For  # the sign-in's per-address limits: each test says its own address
export ORCHARD_TEST_ARTIFACTS=${ORCHARD_TEST_ARTIFACTS:-$PWD/.build/test-artifacts}
mkdir -p "$ORCHARD_TEST_ARTIFACTS"
export ORCHARD_ADE_RELEASE_DEADLINE_SECONDS=30  # an ADE device whose setup items stall is released after 30 s (900 by default)
start_services "$BIN" "$FIRST_PORT" 2> >(sed -u 's/^/  /' >&2) > "$STATE/services.log"
export ORCHARD_TEST_STACK=1 ORCHARD_BIN_DIR="$BIN"
log "running tests"
set +e
swift test --skip-build "$@" 2>&1 | tee "$STATE/swift-test.log"
status=${PIPESTATUS[0]}
set -e
# XCTest's summary, as one plain closing line (swift test's own last line is Swift Testing's, which runs none here).
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$STATE/swift-test.log" | tail -n 1)
executed=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
if [ -z "$summary" ]; then
  log "no XCTest summary found"
  [ $status -eq 0 ] && status=1
else
  echo "orchard: $((executed - failed)) passed, $failed failed"
fi
if [ $status -ne 0 ]; then
  log "tests failed; last service log lines:"
  tail -n 40 "$STATE/services.log" >&2 || true
fi
exit $status
