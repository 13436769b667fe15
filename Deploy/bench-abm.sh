#!/usr/bin/env bash
# ABM device sync against the stand-in (release build, its own stack):
#   ./Deploy/bench-abm.sh [devices, default 100000]
# Prints the time of the initial fetch of N devices (pages of 1,000, each committed with its events and cursor),
# abm-sync's peak resident memory growth during it, when the gateway's copy (from the device events) had them all,
# the time of a 1,000-device delta sync, and the assignment of a default profile to all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
DEVICES=${1:-100000}
install_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-bench-abm.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" 55733 >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_abm_standin 38645 >/dev/null 2>&1
export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0
start_measured_services "$BIN" "$STATE" 38380 38743
ADMIN="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1"
AUTH="Authorization: Bearer $ORCHARD_ADMIN_API_KEY"
CK="CK_bench_$$"
abm_uploaded_token "$STATE" "$CK"
ID=$ABM_TOKEN_ID
abm_assign_devices "$CK" "$DEVICES" B
ABM_PID=$(service_pid abm-sync)
rss() { awk '/VmRSS/ {print $2}' /proc/$ABM_PID/status; }
count() { as_pg_owner "$(pg_bin)/psql" -h 127.0.0.1 -p 55733 -U orchard -d orchard -tAc "SELECT count(*) FROM abm_sync.abm_devices WHERE token_id = '$ID'"; }
synced_at() { as_pg_owner "$(pg_bin)/psql" -h 127.0.0.1 -p 55733 -U orchard -d orchard -tAc "SELECT coalesce(last_sync_at::text, '') FROM abm_sync.abm_tokens WHERE id = '$ID'"; }
# The admin call answers 503 after 30 s while the sync goes on; wait for the token's last_sync_at instead.
timed_sync() {
  local before; before=$(synced_at)
  local started; started=$(date +%s.%N)
  curl -s -o /dev/null -X POST -H "$AUTH" "$ADMIN/abm/tokens/$ID/sync$1" &
  local peak=0 now
  while [ "$(synced_at)" = "$before" ]; do now=$(rss); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.5; done
  wait
  echo "$(python3 -c "print($(date +%s.%N) - $started)") $peak"
}
# The gateway's copy of the mirror (from abm-sync's device events): ADE devices enroll from it.
copied() { as_pg_owner "$(pg_bin)/psql" -h 127.0.0.1 -p 55733 -U orchard -d orchard -tAc "SELECT count(*) FROM checkin_gateway.ade_devices WHERE token_id = '$ID'"; }
base=$(rss)
fetch_started=$(date +%s.%N)
read -r seconds peak < <(timed_sync "")
n=$(count)
printf 'initial fetch: %d devices in %.1f s (%.0f devices/s); abm-sync RSS %d MB before, peak growth %d MB\n' \
  "$n" "$seconds" "$(python3 -c "print($n / $seconds)")" $((base / 1024)) $(((peak - base) / 1024))
while [ "$(copied)" -lt "$n" ]; do sleep 0.5; done
printf "the gateway's copy: %d devices %.1f s after the fetch began\n" "$n" "$(python3 -c "print($(date +%s.%N) - $fetch_started)")"
python3 - "$ORCHARD_ABM_URL" "$CK" <<'PY'
import json, sys, urllib.request
url, key = sys.argv[1], sys.argv[2]
devices = [{"serial_number": "B%07d" % i, "profile_status": "assigned", "profile_uuid": "BENCH"} for i in range(1000)]
req = urllib.request.Request(url + "/_control/devices", data=json.dumps({"consumer_key": key, "devices": devices, "op_type": "modified"}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(req).read()
PY
read -r seconds peak < <(timed_sync "")
printf 'delta sync: 1,000 modified devices in %.2f s\n' "$seconds"
# Assignment: a default profile makes every device of the token due (1,000 of them carry another profile);
# abm-sync assigns them in calls of 1,000. The admin call answers 503 after 60 s while it goes on.
assigned() { as_pg_owner "$(pg_bin)/psql" -h 127.0.0.1 -p 55733 -U orchard -d orchard -tAc "SELECT count(*) FROM abm_sync.abm_devices WHERE token_id = '$ID' AND assign_state = 'assigned'"; }
started=$(date +%s.%N)
base=$(rss); peak=$base
curl -s -o /dev/null -X POST -H "$AUTH" -H 'Content-Type: application/json' "$ADMIN/abm/tokens/$ID/profiles" \
  -d '{"profile": {"profile_name": "Bench", "is_supervised": true}, "default": true}' &
define=$!
while [ "$(assigned)" -lt "$n" ]; do now=$(rss); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.5; done
seconds=$(python3 -c "print($(date +%s.%N) - $started)")
wait $define || true
printf 'assignment: %d serials in %.1f s (%.0f serials/s, %d calls to ABM); abm-sync RSS peak growth %d MB\n' \
  "$n" "$seconds" "$(python3 -c "print($n / $seconds)")" "$(( (n + 999) / 1000 ))" $(((peak - base) / 1024))
