#!/usr/bin/env bash
# PostgreSQL restarted while ADE devices ask for their profile (and devices do account-driven discovery):
#   ./Deploy/fault-ade-postgres.sh
# Prints every answer the devices got, in order, counted in runs: a database that is away must be a 503 with
# Retry-After (the device retries), never a 500, and the profile comes back once PostgreSQL is.
set -uo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-ade-pgr.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
PG_PORT=55743
start_postgres "$STATE/postgres" $PG_PORT >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_abm_standin 38745 >/dev/null 2>&1
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0
start_measured_services "$BIN" "$STATE" 38480 38843 > "$STATE/services.log" 2>&1
ADMIN="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1"
AUTH="Authorization: Bearer $ORCHARD_ADMIN_API_KEY"
upload_push_certificate "$STATE" pgr
# One device assigned to a token with a default profile; its MachineInfo signed by the test Apple CA (openssl).
abm_uploaded_token "$STATE" CK_pgr
abm_assign_devices CK_pgr 1 PGR
curl -fs -o /dev/null -X POST -H "$AUTH" "$ADMIN/abm/tokens/$ABM_TOKEN_ID/sync"
curl -fs -o /dev/null -X POST -H "$AUTH" -H 'Content-Type: application/json' "$ADMIN/abm/tokens/$ABM_TOKEN_ID/profiles" \
  -d '{"profile": {"profile_name": "PG restart", "is_supervised": true}, "default": true}'
curl -fs -o /dev/null -X PUT -H "$AUTH" -H 'Content-Type: application/json' "$ADMIN/account-domains/pgr.example.com" -d '{"mode": "mdm-byod"}'
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$STATE/dev.key" -out "$STATE/dev.csr" -subj "/CN=PGR-DEVICE" 2>/dev/null
openssl x509 -req -in "$STATE/dev.csr" -CA "$STATE/pki/apple-ca.pem" -CAkey "$STATE/pki/apple-ca.key" -CAcreateserial -days 2 -out "$STATE/dev.pem" 2>/dev/null
cat > "$STATE/info.plist" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>UDID</key><string>00008030-00PGR0000000RESTART</string><key>SERIAL</key><string>PGR0000000</string>
<key>PRODUCT</key><string>iPhone17,1</string><key>VERSION</key><string>22B83</string><key>OS_VERSION</key><string>18.2</string></dict></plist>
PLIST
openssl cms -sign -nodetach -binary -outform DER -in "$STATE/info.plist" -signer "$STATE/dev.pem" -inkey "$STATE/dev.key" -out "$STATE/info.der"
until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$STATE/info.der" "$ORCHARD_URL_CHECKIN_GATEWAY/mdm/ade/enroll")" = 200 ]; do sleep 0.5; done
out="$STATE/codes"
( end=$((SECONDS+25)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -D - -X POST -H 'Content-Type: application/pkcs7-signature' --data-binary @"$STATE/info.der" \
      "$ORCHARD_URL_CHECKIN_GATEWAY/mdm/ade/enroll" | status_of "ade:" >> "$out"
    curl -s -o /dev/null -D - "$ORCHARD_URL_USER_ENROLLMENT_AUTH/.well-known/com.apple.remotemanagement?user-identifier=a@pgr.example.com&model-family=iPhone" \
      | status_of "discovery:" >> "$out"
    sleep 0.05
  done ) &
loop=$!
sleep 5
echo "restarting PostgreSQL"
restart_postgres "$PG_PORT" 4
echo "PostgreSQL back"
wait $loop
echo "ADE profile requests (status, in order, counted in runs):"
grep "^ade:" "$out" | uniq -c
echo "account-driven discovery:"
grep "^discovery:" "$out" | uniq -c
