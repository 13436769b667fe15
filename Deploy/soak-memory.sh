#!/usr/bin/env bash
# Memory soak: one local stack, then ROUNDS rounds of N new devices each (enrollment link → profile →
# Authenticate → TokenUpdate → the command loop, by orchard-bench checkin), printing every service's
# resident memory after each round. Steady load should level off after warm-up.
#   ./Deploy/soak-memory.sh [rounds, default 10] [devices per round, default 2000]
# ORCHARD_SOAK_BULK=N then queues N admin bulk commands, each for a different number (100-6,000) of the
# enrolled devices, printing memory every 10.
# ORCHARD_BENCH_BIN=<folder> runs another build's binaries (as bench-enrollment.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
ROUNDS=${1:-10}
DEVICES=${2:-2000}
install_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-soak.XXXXXX)
chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
start_postgres "$STATE/postgres" "${ORCHARD_SOAK_PG_PORT:-55633}" >/dev/null
start_broker "$BIN" "$STATE" >/dev/null
start_measured_services "$BIN" "$STATE" "${ORCHARD_SOAK_FIRST_PORT:-29080}" "${ORCHARD_SOAK_APNS_PORT:-29443}"
rss() { for pid in "${ORCHARD_PIDS[@]}"; do
  printf "%s=%s " "$(tr '\0' ' ' < /proc/$pid/cmdline | awk '{print $1}' | xargs basename)" "$(awk '/VmRSS/ {printf "%.0fMB", $2/1024}' /proc/$pid/status)"
done; echo; }
echo "round 0 (started):  $(rss)"
for round in $(seq 1 "$ROUNDS"); do
  "$BIN/orchard-bench" checkin --devices "$DEVICES" -c 16 > "$STATE/round.log" 2>&1 || { tail -5 "$STATE/round.log"; exit 1; }
  rate=$(grep -o "[0-9]* check-ins/s" "$STATE/round.log" | head -1)
  echo "round $round ($rate): $(rss)"
done
BULK=${ORCHARD_SOAK_BULK:-0}
if [ "$BULK" -gt 0 ]; then
  ids="$STATE/ids.json"
  python3 - "$ORCHARD_URL_CHECKIN_GATEWAY" "$ORCHARD_ADMIN_API_KEY" "$ids" <<'PY'
import json, sys, urllib.request
base, key, out = sys.argv[1:4]
ids, after = [], ""
while len(ids) < 6000:
    req = urllib.request.Request(f"{base}/admin/v1/devices?limit=1000&after={after}", headers={"Authorization": f"Bearer {key}"})
    items = json.load(urllib.request.urlopen(req))["items"]
    if not items: break
    ids += [i["id"] for i in items]; after = ids[-1]
json.dump(ids, open(out, "w"))
PY
  for i in $(seq 1 "$BULK"); do
    python3 - "$ORCHARD_URL_CHECKIN_GATEWAY" "$ORCHARD_ADMIN_API_KEY" "$ids" "$i" <<'PY'
import json, random, sys, urllib.request
base, key, path, i = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ids = json.load(open(path)); random.seed(i)
n = min(len(ids), random.randint(100, 6000))
body = json.dumps({"enrollmentIDs": ids[:n], "command": {"type": "DeviceInformation"}}).encode()
req = urllib.request.Request(f"{base}/admin/v1/commands", data=body, method="POST",
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
try: urllib.request.urlopen(req).read()
except urllib.error.HTTPError as e: print(f"bulk command {i} for {n}: HTTP {e.code}")
PY
    [ $((i % 10)) -eq 0 ] && echo "bulk $i: $(rss)"
  done
fi
