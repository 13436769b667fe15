#!/usr/bin/env bash
# The Apple Business Manager API's inventory read against its stand-in (release build, its own stack):
#   ./Deploy/bench-abm-api.sh [devices, default 100000]
# Prints the time to read N devices (GET /v1/orgDevices, pages of 1,000, each upserted in one statement) and
# abm-sync's peak resident memory growth during it; then a second read of the same inventory (every row updated).
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
DEVICES=${1:-100000}
install_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-bench-abm-api.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" 55743 >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_abm_api_standin 38655 >/dev/null 2>&1
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0
start_measured_services "$BIN" "$STATE" 38480 38753
ADMIN="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1"
AUTH="Authorization: Bearer $ORCHARD_ADMIN_API_KEY"
openssl ecparam -name prime256v1 -genkey -noout -out "$STATE/ec.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$STATE/ec.pem" -out "$STATE/key.pem"
openssl pkey -in "$STATE/key.pem" -pubout -out "$STATE/pub.pem"
python3 - "$ORCHARD_ABM_API_URL" "$STATE" "$DEVICES" <<'PY'
import json, sys, urllib.request
url, state, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def control(path, body):
    req = urllib.request.Request(url + "/_control/" + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
control("accounts", {"client_id": "BUSINESSAPI.bench", "key_id": "bench-key", "public_key_pem": open(state + "/pub.pem").read(), "scope": "business.api"})
control("devices", {"prefix": "BA", "count": count})
PY
python3 -c 'import json,sys; print(json.dumps({"clientID": "BUSINESSAPI.bench", "keyID": "bench-key", "privateKey": open(sys.argv[1]).read()}))' "$STATE/key.pem" \
  | curl -sf -o /dev/null -X PUT -H "$AUTH" -H 'Content-Type: application/json' "$ADMIN/abm/api-accounts/bench" --data-binary @-
ABM_PID=$(service_pid abm-sync)
rss() { awk '/VmRSS/ {print $2}' /proc/$ABM_PID/status; }
timed_read() {
  local base peak now started
  base=$(rss); peak=$base; started=$(date +%s.%N)
  curl -s -o "$STATE/answer.json" -X POST -H "$AUTH" "$ADMIN/abm/api-accounts/bench/inventory/sync" &
  local call=$!
  while kill -0 $call 2>/dev/null; do now=$(rss); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.25; done
  wait $call
  printf '%s: %s, %.1f s wall; abm-sync RSS %d MB before, peak growth %d MB\n' "$1" "$(cat "$STATE/answer.json")" \
    "$(python3 -c "print($(date +%s.%N) - $started)")" $((base / 1024)) $(((peak - base) / 1024))
}
timed_read "first inventory read of $DEVICES devices"
timed_read "second read (every row updated)"
