#!/usr/bin/env bash
# Fault check for the ABM device mirror (ADE issue): abm-sync is killed (SIGKILL) in the middle of a
# multi-page fetch and started again; the sync resumes at the first page it had not committed.
#   ./Deploy/fault-abm-sync.sh [devices, default 20000]
# Prints the mirror against the stand-in's device list and the events on orchard.abm-device-events.v1.
# Expected: the same serials; every device added once (no event missing, none doubled).
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
DEVICES=${1:-20000}
install_dependencies
swift build >/dev/null
BIN=$(swift build --show-bin-path)
STATE=$(mktemp -d /tmp/orchard-fault-abm.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; [ -n "${ORCHARD_FAULTS_KEEP:-}" ] || rm -rf "$STATE"' EXIT
PG=55753
start_postgres "$STATE/postgres" $PG >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_abm_standin 38845 >/dev/null 2>&1
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=60
start_measured_services "$BIN" "$STATE" 38580 38943
CK="CK_fault_$$"
abm_uploaded_token "$STATE" "$CK"
abm_assign_devices "$CK" "$DEVICES" K
# Slow pages, so that the kill lands in the middle of the fetch.
curl -fs -X POST -H 'Content-Type: application/json' "$ORCHARD_ABM_URL/_control/delay" -d "{\"consumer_key\":\"$CK\",\"ms\":400}"
sql() { as_pg_owner "$(pg_bin)/psql" -h 127.0.0.1 -p $PG -U orchard -d orchard -tAc "$1"; }
mirrored() { sql "SELECT count(*) FROM abm_sync.abm_devices WHERE token_id = '$ABM_TOKEN_ID' AND deleted_at IS NULL"; }
curl -s -o /dev/null -X POST -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" "$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1/abm/tokens/$ABM_TOKEN_ID/sync" &
request=$!
for _ in $(seq 1 300); do [ "$(mirrored)" -ge $((DEVICES / 3)) ] && break; sleep 0.1; done
kill -KILL "$(service_pid abm-sync)"
echo "abm-sync killed with $(mirrored) of $DEVICES devices mirrored (cursor: $(sql "SELECT cursor_kind || ' ' || coalesce(cursor, '-') FROM abm_sync.abm_tokens WHERE id = '$ABM_TOKEN_ID'"))"
wait $request || true
start_service "$BIN" abm-sync 38583 >> "$STATE/services.log" 2>&1
wait_ready abm-sync 38583
# The restarted replica (same instance id) takes its lease back; the schedule resumes the fetch.
for _ in $(seq 1 900); do
  [ "$(sql "SELECT last_sync_at IS NOT NULL AND cursor_kind = 'sync' FROM abm_sync.abm_tokens WHERE id = '$ABM_TOKEN_ID'")" = t ] && break
  sleep 0.2
done
echo "after restart: $(mirrored) devices mirrored; sync state: $(sql "SELECT cursor_kind || ', last sync ' || coalesce(last_sync_at::text, 'never') || ', error ' || coalesce(last_sync_error, 'none') FROM abm_sync.abm_tokens WHERE id = '$ABM_TOKEN_ID'")"
curl -fs "$ORCHARD_ABM_URL/_control/devices?consumer_key=$CK" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))' > "$STATE/standin.txt"
sql "SELECT serial_number FROM abm_sync.abm_devices WHERE token_id = '$ABM_TOKEN_ID' AND deleted_at IS NULL ORDER BY 1" > "$STATE/mirror.txt"
if diff -q "$STATE/standin.txt" "$STATE/mirror.txt" >/dev/null; then
  echo "mirror = the stand-in's device list ($(wc -l < "$STATE/mirror.txt") serials)"
else
  echo "MIRROR DIFFERS: $(diff "$STATE/standin.txt" "$STATE/mirror.txt" | grep -c '^[<>]') serials"
fi
"$BIN/orchard-bench" abm-events --token "$ABM_TOKEN_ID"
