#!/usr/bin/env bash
# user-enrollment-auth killed (SIGKILL) for 40 s while account-driven devices ask for their profile and sign in:
#   ./Deploy/fault-account-auth.sh
# or PostgreSQL restarted (6 s away) meanwhile instead:
#   ./Deploy/fault-account-auth.sh postgres
# Prints the answers, in order, counted in runs. A device holding a token the gateway validated moments ago keeps
# getting its profile from the gateway's cache; past the cache, the answer must be 503 with Retry-After (the device
# retries), never a 500 or a refusal of a good token; and everything works again once the service is back.
set -uo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
install_test_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-acct-fault.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
FAULT=${1:-service}
export ORCHARD_ACCOUNT_TOKEN_CACHE_SECONDS=3  # the outage shows past the gateway's cache sooner than with the default 20 s
PG_PORT=55753
start_account_stack "$STATE" $PG_PORT 38389 38580 38943
upload_push_certificate "$STATE" acct
put_byod_domain
# The device's request: MachineInfo without UDID or serial, signed by openssl with an identity from the test Apple CA.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$STATE/dev.key" -out "$STATE/dev.csr" -subj "/CN=BYOD-FAULT" 2>/dev/null
openssl x509 -req -in "$STATE/dev.csr" -CA "$STATE/pki/apple-ca.pem" -CAkey "$STATE/pki/apple-ca.key" -CAcreateserial -days 2 -out "$STATE/dev.pem" 2>/dev/null
cat > "$STATE/info.plist" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>PRODUCT</key><string>iPhone17,2</string><key>VERSION</key><string>22D63</string>
<key>OS_VERSION</key><string>18.3</string><key>LANGUAGE</key><string>en-US</string></dict></plist>
PLIST
openssl cms -sign -nodetach -binary -outform DER -in "$STATE/info.plist" -signer "$STATE/dev.pem" -inkey "$STATE/dev.key" -out "$STATE/info.der"
BASE="$ORCHARD_URL_CHECKIN_GATEWAY/mdm/account/enroll/byod.example.com"
sign_in() {  # prints the access token of a sign-in as alice, or nothing
  sign_in_headers "$STATE" alice@byod.example.com alice-correct-horse | sed -nE 's/^[Ll]ocation: .*access-token=([A-Za-z0-9_-]+).*/\1/p'
}
TOKEN=$(sign_in)
[ -n "$TOKEN" ] || { echo "sign-in failed"; exit 1; }
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" --data-binary @"$STATE/info.der" "$BASE")" = 200 ]; do sleep 0.5; done
out="$STATE/codes"
DURATION=65; [ "$FAULT" = postgres ] && DURATION=30
( end=$((SECONDS + DURATION)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -D - -H 'Content-Type: application/pkcs7-signature' -H "Authorization: Bearer $TOKEN" --data-binary @"$STATE/info.der" \
      "$BASE" | status_of "profile (bearer):" >> "$out"
    curl -s -o /dev/null -D - -H 'Content-Type: application/pkcs7-signature' --data-binary @"$STATE/info.der" \
      "$BASE" | status_of "first POST:" >> "$out"
    sleep 0.05
  done ) &
loop=$!
sleep 5
if [ "$FAULT" = postgres ]; then
  echo "restarting PostgreSQL"; restart_postgres "$PG_PORT" 6; echo "PostgreSQL back"
else
  echo "killing user-enrollment-auth (SIGKILL)"; kill -9 "$(service_pid user-enrollment-auth)"
  sleep 40
  port=${ORCHARD_URL_USER_ENROLLMENT_AUTH##*:}
  start_service "$BIN" user-enrollment-auth "$port" >> "$STATE/services.log" 2>&1
  wait_ready user-enrollment-auth "$port" && echo "user-enrollment-auth back"
fi
wait $loop
echo "profile requests with a good bearer (status, in order, counted in runs):"
grep "^profile" "$out" | uniq -c
echo "first POST without a bearer (the challenge):"
grep "^first POST" "$out" | uniq -c
echo "a new sign-in after the restart: $( [ -n "$(sign_in)" ] && echo 308 with a token || echo failed)"
