#!/usr/bin/env bash
# Fault check: admin and device-facing requests while PostgreSQL stops for 4 s and starts again.
#   ./Deploy/fault-postgres-restart.sh
# Prints the answers in order, counted in runs. Expected: 200/404 before, only 503 with Retry-After while
# the database is away (never a bare 500), 200/404 again at once after (the pool reconnects).
set -uo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
swift build >/dev/null
BIN=$(swift build --show-bin-path)
STATE=$(mktemp -d /tmp/orchard-pgr.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" 55733
start_broker "$BIN" "$STATE" >/dev/null
export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64) ORCHARD_ADMIN_API_KEY="orchard_pgr_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
export ORCHARD_PUBLIC_URL="http://127.0.0.1:38080" ORCHARD_DEVICE_KEY_POOL_SIZE=0 ORCHARD_DEVICE_KEY_TYPE=p256 ORCHARD_LOG_LEVEL=warning
start_services "$BIN" 38080 > "$STATE/services.log" 2>&1
out="$STATE/codes"
( end=$((SECONDS+25)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -D - -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" localhost:38080/admin/v1/devices \
      | status_of "" >> "$out"
    curl -s -o /dev/null -D - localhost:38080/enroll/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \
      | status_of "device:" >> "$out"
    sleep 0.05
  done ) &
loop=$!
sleep 5
echo "restarting PostgreSQL"
restart_postgres 55733 4
echo "PostgreSQL back"
wait $loop
echo "admin answers (status, in order, counted in runs):"
grep -v device: "$out" | uniq -c
echo "device answers (profile download, unknown link: 404 when the database answers):"
grep device: "$out" | uniq -c
echo "gateway log, by message:"
grep -h "checkin-gateway" "$STATE/services.log" | grep -o '"message":"[^"]*' | cut -c1-120 | sort | uniq -c | sort -rn | head -8
