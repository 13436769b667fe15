#!/usr/bin/env bash
# The fault suite (hardening issue): while a steady stream of device enrollments and Apple Watch pairings
# runs (`orchard-bench faults`, each device retrying as a real one does), one fault per scenario:
# kill -9 of each service (restarted 2 s later, as an orchestrator would), a PostgreSQL restart, a kill -9
# of the local broker (its supervisor restarts it on the same address), and replicas joining and leaving.
#   ./Deploy/fault-suite.sh [SECONDS_PER_SCENARIO]      (default 40; about 1 min per scenario in all)
# Prints one row per scenario: enrollments and pairings completed; those that could not complete (and why);
# device-visible 5xx other than 503 + Retry-After; audit entries and device events lost or doubled.
# Target: 0 could not, 0 bare 5xx, 0 lost, 0 doubled. Not part of the test command (it takes ~10 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
SECONDS_PER=${1:-40}
install_dependencies
command -v python3 >/dev/null || apt-get install -y -qq python3 >/dev/null
swift build >/dev/null || exit 1
BIN=$(swift build --show-bin-path)
STATE=$(mktemp -d /tmp/orchard-faults.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; [ -n "${ORCHARD_FAULTS_KEEP:-}" ] || rm -rf "$STATE"' EXIT
trap 'exit 1' INT TERM
PG_PORT=55833 FIRST=38180 KAFKA_PORT=39192 APNS_PORT=38643
start_postgres "$STATE/postgres" $PG_PORT || exit 1
start_broker "$BIN" "$STATE" $KAFKA_PORT >/dev/null 2>&1 || exit 1
start_measured_services "$BIN" "$STATE" $FIRST $APNS_PORT || exit 1
export ORCHARD_URL_CHECKIN_GATEWAY
log "stack up; services log to $STATE/services.log"

port_of() { local i; for i in "${!ORCHARD_SERVICES[@]}"; do [ "${ORCHARD_SERVICES[$i]}" = "$1" ] && echo $((FIRST + i)); done; }
pid_of() { local i; for i in "${!ORCHARD_SERVICES[@]}"; do [ "${ORCHARD_SERVICES[$i]}" = "$1" ] && echo "${ORCHARD_PIDS[$i]}"; done; }

kill_and_restart() {
  local name=$1 i
  kill -KILL "$(pid_of "$name")" 2>/dev/null
  sleep 2
  for i in "${!ORCHARD_SERVICES[@]}"; do
    if [ "${ORCHARD_SERVICES[$i]}" = "$name" ]; then
      start_service "$BIN" "$name" "$(port_of "$name")" >> "$STATE/services.log" 2>&1
      ORCHARD_PIDS[$i]=$ORCHARD_SERVICE_PID
      unset 'ORCHARD_PIDS[-1]'
    fi
  done
  wait_ready "$name" "$(port_of "$name")"
}

kill_broker() {
  kill -KILL "$(cat "$STATE/kafka.pid")"
  for _ in $(seq 1 100); do [ -s "$STATE/kafka.pid" ] && kill -0 "$(cat "$STATE/kafka.pid")" 2>/dev/null && break; sleep 0.1; done
}

# Replicas of the two services the gateway asks over Kafka join (their groups rebalance), serve for a
# while, then one leaves cleanly (SIGTERM) and the other dies (kill -9: its partitions wait out the session).
replicas_join_and_leave() {
  start_service "$BIN" token-service $((FIRST + 10)) token-service-replica >> "$STATE/services.log" 2>&1
  local token=$ORCHARD_SERVICE_PID
  start_service "$BIN" profile-signer $((FIRST + 11)) profile-signer-replica >> "$STATE/services.log" 2>&1
  local signer=$ORCHARD_SERVICE_PID
  wait_ready token-service $((FIRST + 10)); wait_ready profile-signer $((FIRST + 11))
  sleep $((SECONDS_PER / 4))
  kill -TERM "$token"; kill -KILL "$signer"
}

analyse() {
  python3 - "$1" "$2" "$PG_PORT" <<'PY'
import subprocess, sys, collections, time
name, path, port = sys.argv[1], sys.argv[2], sys.argv[3]
devices, watches, events, failures, answers = [], [], [], collections.Counter(), collections.Counter()
bare = unanswered = 0
for line in open(path):
    f = line.split()
    if not f: continue
    if f[0] == 'device': devices.append(f[1])
    elif f[0] == 'watch': watches.append(f[1])
    elif f[0] == 'event': events.append((f[1], f[2], f[3]))
    elif f[0] == 'failure': failures[f[1]] += int(f[2])
    elif f[0] == 'answer': answers[' '.join(f[1:-1])] += int(f[-1])
    elif f[0] == 'bare5xx': bare = int(f[1])
    elif f[0] == 'unanswered': unanswered = int(f[1])
def sql(q):
    out = subprocess.run(['psql', '-h', '127.0.0.1', '-p', port, '-U', 'orchard', '-d', 'orchard', '-tAF', '\t', '-c', q],
                         capture_output=True, text=True, check=True).stdout
    return [l.split('\t') for l in out.splitlines() if l]
udids = devices + watches
def audit():
    """(ids, lost, doubled) from the gateway's activity log."""
    if not udids: return {}, 0, 0
    quoted = ','.join("'%s'" % u for u in udids)
    ids = {udid: id for id, udid in sql(
        "SELECT id, udid FROM checkin_gateway.enrollments WHERE udid IN (%s) AND status = 'enrolled'" % quoted)}
    counts = collections.Counter()
    keys = list(ids.values()) + udids
    for device, action, n in sql("SELECT device_id, action, count(*) FROM checkin_gateway.activity_log WHERE device_id IN (%s) GROUP BY 1, 2"
                                 % ','.join("'%s'" % k for k in keys)):
        counts[(device, action)] = int(n)
    lost = doubled = 0
    # Exactly once per completed enrollment; at least once for steps a retry may legitimately repeat.
    for u in devices:
        n = counts[(ids[u], 'device.enrolled')] if u in ids else 0
        lost += n == 0; doubled += n > 1
    for u in watches:
        n = counts[(ids[u], 'watch.enrolled')] if u in ids else 0
        lost += n == 0; doubled += n > 1
        for action in ('security-token.issued', 'pairing-token.issued', 'pairing-token.redeemed', 'watch.enrollment-profile.served'):
            lost += counts[(u, action)] == 0
    return ids, lost, doubled
# Entries other services publish reach the log through their outboxes and Kafka: a service restarted by the
# fault publishes what it had not yet sent when it is back. Missing means still missing after 60 s.
deadline = time.time() + 60
ids, lost, doubled = audit()
while lost and time.time() < deadline:
    time.sleep(5)
    ids, lost, doubled = audit()
wanted = set(ids.values())
seen = collections.defaultdict(list)
for kind, enrollment, message in events:
    if kind == 'enrolled' and enrollment in wanted: seen[enrollment].append(message)
ev_lost = sum(1 for e in wanted if not seen[e])
ev_doubled = sum(1 for e in wanted if len(set(seen[e])) > 1)
ev_redelivered = sum(len(m) - len(set(m)) for m in seen.values())
not_enrolled = len(udids) - len(ids)
could_not = sum(failures.values())
why = ', '.join('%s %d' % (k, v) for k, v in failures.most_common(3)) or '-'
r503 = sum(v for k, v in answers.items() if k.endswith('503+Retry-After'))
print('| %-28s | %5d | %5d | %5d (%s) | %4d | %5d | %4d | %4d | %4d | %4d | %4d |' % (
    name, len(devices), len(watches), could_not + not_enrolled, why, bare, r503, unanswered, lost, doubled, ev_lost, ev_doubled))
if ev_redelivered: print('|   (%d device events delivered twice with the same message id: at-least-once, consumers deduplicate)' % ev_redelivered)
PY
}

# scenario KEY "DESCRIPTION" FAULT…: the load for SECONDS_PER seconds, the fault a third of the way in.
scenario() {
  local key=$1 name=$2; shift 2
  local out="$STATE/$key.load"
  "$BIN/orchard-bench" faults --seconds "$SECONDS_PER" --label "$key" --out "$out" > "$STATE/$key.bench.log" 2>&1 &
  local load=$!
  local started=""
  for _ in $(seq 1 600); do
    grep -q "for $SECONDS_PER s" "$STATE/$key.bench.log" && { started=1; break; }
    kill -0 $load 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] || { log "the load of $name did not start:"; tail -5 "$STATE/$key.bench.log"; kill $load 2>/dev/null; return; }
  sleep $((SECONDS_PER / 3))
  log "$name"
  "$@" >> "$STATE/faults.log" 2>&1
  wait $load || { log "load of $name failed:"; tail -5 "$STATE/$key.bench.log"; }
  [ -s "$out" ] && analyse "$name" "$out" >> "$STATE/table"
}

printf '| %-28s | %5s | %5s | %s | %4s | %5s | %4s | %4s | %4s | %4s | %4s |\n' scenario devices watches "could not complete (why)" \
  "bare 5xx" "503+RA" "no answer" "audit lost" "audit doubled" "events lost" "events doubled" > "$STATE/table"
scenario baseline "none (baseline)" true
scenario gateway "kill -9 checkin-gateway" kill_and_restart checkin-gateway
scenario tokens "kill -9 token-service" kill_and_restart token-service
scenario signer "kill -9 profile-signer" kill_and_restart profile-signer
scenario abm "kill -9 abm-sync" kill_and_restart abm-sync
scenario uea "kill -9 user-enrollment-auth" kill_and_restart user-enrollment-auth
scenario postgres "PostgreSQL restart" restart_postgres
scenario broker "kill -9 local broker" kill_broker
scenario replicas "replicas join and leave" replicas_join_and_leave
echo
cat "$STATE/table"
echo
echo "answers by step in the broker scenario (how devices saw it):"
grep '^answer' "$STATE/broker.load" 2>/dev/null | sed 's/^answer /  /'
