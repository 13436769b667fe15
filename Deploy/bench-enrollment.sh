#!/usr/bin/env bash
# Enrollment benchmarks against the real services (release build), each on a fresh local stack:
#   ./Deploy/bench-enrollment.sh checkin [--devices 1000] [-c 16]   check-in and command-loop throughput
#   ./Deploy/bench-enrollment.sh messages [--devices 2000] [-c 16] [--rounds 1]   server CPU and context switches per request by message type
#     (checkin and messages: ORCHARD_BENCH_PRELOAD_ENROLLMENTS=N ORCHARD_BENCH_PRELOAD_FINISHED_COMMANDS=M first write N
#     enrolled devices and M finished commands with SQL, to see the rates stay flat)
#   ./Deploy/bench-enrollment.sh instructions [--devices 200] [-c 4]   the messages phases with the gateway and the broker
#     under callgrind: instructions per request per process, a count this machine's noise does not move
#     (ORCHARD_CALLGRIND_SERVICES to choose: default "checkin-gateway orchard-local-broker";
#     ORCHARD_BENCH_CALLGRIND_KEEP=<folder> keeps each phase's dump for Deploy/scripts/callgrind-by-library.py)
#   ./Deploy/bench-enrollment.sh link|ipad|mac|watch|ade|byod|adde [--devices 1000] [--closed 16] [--rate 20]
#     one flow's complete enrollments by `orchard-sim load` against the local trial's stand-ins (APNs, Apple's device
#     CA, ABM, a directory with a user per enrollment): --devices closed loop at --closed, then --devices paced at --rate
#     (--rate 0: the closed loop only);
#     enrollments/s, p50/p99 per step and each process's CPU per enrollment (byod: then check-ins with the bearer vs plain, and a Mac's user channel vs its device channel)
#   ./Deploy/bench-enrollment.sh apps [--devices 1000] [--closed 16]
#     a paired app rolled out to --devices simulated iPhone+watch pairs (enrolled first): time to all installed
#   ./Deploy/bench-enrollment.sh ade-sign-in-attack [--devices 200] [-c 8] [--attackers 8] [--seconds 20]
#     Idle latency of enrolled devices, quiet and while clients flood one ADE device's sign-in page with unknown accounts
set -euo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
MODE=${1:?usage: bench-enrollment.sh checkin|messages|instructions|link|ipad|mac|watch|ade|byod|adde|apps|ade-sign-in-attack [options]}
shift
case "$MODE" in link|ipad|mac|watch|ade|byod|adde|apps) FLOW=1 ;; checkin|ade-sign-in-attack) FLOW=0 ;;
  messages) FLOW=0 ;;
  instructions) FLOW=0
    for tool in valgrind:valgrind objcopy:binutils gcc:gcc; do
      command -v "${tool%%:*}" >/dev/null || apt-get install -y -qq "${tool##*:}" >/dev/null
    done ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;; esac
install_dependencies
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
# ORCHARD_BENCH_BIN: run binaries from another folder, to compare two builds in one sitting.
release_bin
STATE=$(mktemp -d /tmp/orchard-bench.XXXXXX)
chmod 755 "$STATE"
trap 'stop_stack; rm -rf "$STATE"' EXIT
if [ "$MODE" = instructions ]; then
  export ORCHARD_CALLGRIND_DIR="$STATE/callgrind"
  export ORCHARD_CALLGRIND_SERVICES=${ORCHARD_CALLGRIND_SERVICES:-"checkin-gateway orchard-local-broker"}
  # The local broker holds every fetch for this long (real Kafka answers when data arrives). The scripts' usual 1 ms
  # makes every consumer fetch a thousand times a second: under callgrind, that idle traffic would outweigh the requests.
  export ORCHARD_KAFKA_FETCH_WAIT_MAX_MS=1000
  # Fewer devices: under callgrind a request costs 50-100 times its CPU.
  [[ " $* " == *" --devices "* ]] || set -- "$@" --devices 200
  [[ " $* " == *" -c "* ]] || set -- "$@" -c 4
fi
# ORCHARD_BENCH_PG_STATS=1: print the statements PostgreSQL spent its time on (pg_stat_statements).
[ "${ORCHARD_BENCH_PG_STATS:-0}" = 1 ] && export ORCHARD_PG_EXTRA_OPTIONS="-c shared_preload_libraries=pg_stat_statements"
# ORCHARD_BENCH_PG_SLOW_MS=N: print the statements (COMMIT included) PostgreSQL took longer than N ms over.
[ -n "${ORCHARD_BENCH_PG_SLOW_MS:-}" ] && export ORCHARD_PG_EXTRA_OPTIONS="${ORCHARD_PG_EXTRA_OPTIONS:-} -c log_min_duration_statement=$ORCHARD_BENCH_PG_SLOW_MS"
start_postgres "$STATE/postgres" "${ORCHARD_BENCH_PG_PORT:-55533}"
start_broker "$BIN" "$STATE" >/dev/null
if [ "$FLOW" = 1 ]; then
  source Deploy/scripts/trial.sh
  install_directory_dependencies
  # The trial's directory plus 2,000 users of each demo domain (bench0000@byod.example.com … and @adde.example.com,
  # password bench-password): each account-driven enrollment signs in as its own user, as a real roll-out does.
  cp Deploy/trial/directory.ldif "$STATE/directory.ldif"
  for domain in byod adde; do
    for i in $(seq -w 0 1999); do
      printf '\ndn: uid=bench-%s%s,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: bench-%s%s\ncn: Bench %s\nsn: Bench\nmail: bench%s@%s.example.com\nuserPassword: bench-password\n' \
        "$domain" "$i" "$domain" "$i" "$i" "$i" "$domain"
    done
  done >> "$STATE/directory.ldif"
  export TRIAL_DIRECTORY_LDIF="$STATE/directory.ldif"
  start_trial_bench_stack "$STATE" "$BIN" "${ORCHARD_BENCH_FIRST_PORT:-28080}"
  DEVICES=1000 CLOSED=16 RATE=20 KILL_AFTER=
  while [ $# -gt 0 ]; do
    case "$1" in --devices) DEVICES=$2 ;; --closed|-c) CLOSED=$2 ;; --rate) RATE=$2 ;; --kill-gateway-after) KILL_AFTER=$2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;; esac
    shift 2
  done
  export ORCHARD_BENCH_PIDS="${ORCHARD_PIDS[*]} $ORCHARD_BROKER_PID"
  if [ "$MODE" = apps ]; then
    # A paired app rolled out to DEVICES iPhone+watch pairs: licences, the iPhones, then the watches (orchard-sim apps).
    # --kill-gateway-after N: once N installs have moved (licensed, installing or installed), kill -9 the gateway and
    # start it again on its port (as an orchestrator would); then check that no device was sent the app twice and every
    # install still finished.
    if [ -z "$KILL_AFTER" ]; then "$BIN/orchard-sim" apps --pairs "$DEVICES" --closed "$CLOSED"; exit $?; fi
    "$BIN/orchard-sim" apps --pairs "$DEVICES" --closed "$CLOSED" --timeout 600 &
    SIM=$!
    first=${ORCHARD_BENCH_FIRST_PORT:-28080}
    moved() {
      curl -fs -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" "http://127.0.0.1:$first/admin/v1/apps/assignments" 2>/dev/null |
        python3 -c 'import json,sys; print(sum(n for i in json.load(sys.stdin)["items"] for s, n in i.get("states", {}).items() if s != "assigned"))' \
        2>/dev/null || echo 0
    }
    states() {
      curl -fs -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" "http://127.0.0.1:$first/admin/v1/apps/assignments" 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join("%s=%d" % kv for i in json.load(sys.stdin)["items"] for kv in sorted(i.get("states", {}).items())))' 2>/dev/null
    }
    while kill -0 $SIM 2>/dev/null && [ "$(moved)" -lt "$KILL_AFTER" ]; do sleep 0.05; done
    gateway=$(service_pid checkin-gateway)
    log "FAULT: installs $(states); kill -9 of checkin-gateway (pid $gateway), restarted 2 s later"
    kill -KILL "$gateway"
    sleep 2
    start_service "$BIN" checkin-gateway "$first" >> "$STATE/services.log" 2>&1
    wait_ready checkin-gateway "$first"
    wait $SIM; status=$?
    psql_bin=$(ls /usr/lib/postgresql/*/bin/psql | tail -1)
    doubled=$("$psql_bin" "$ORCHARD_DATABASE_URL" -tAc "SELECT count(*) FROM (SELECT q.enrollment_id FROM checkin_gateway.command_queue q
      JOIN checkin_gateway.commands c ON c.uuid = q.command_uuid WHERE c.request_type = 'InstallApplication' GROUP BY 1 HAVING count(*) > 1) d")
    sent=$("$psql_bin" "$ORCHARD_DATABASE_URL" -tAc "SELECT count(*) FROM checkin_gateway.command_queue q
      JOIN checkin_gateway.commands c ON c.uuid = q.command_uuid WHERE c.request_type = 'InstallApplication'")
    echo "apps (gateway killed once $KILL_AFTER installs had moved): InstallApplication sent $sent times; devices sent it more than once: $doubled; orchard-sim exit $status"
    exit $status
  fi
  ACCOUNTS=()
  [ "$MODE" = byod ] && ACCOUNTS=(--byod-user 'bench{n}@byod.example.com:bench-password' --accounts 2000)
  [ "$MODE" = adde ] && ACCOUNTS=(--adde-user 'bench{n}@adde.example.com:bench-password' --accounts 2000)
  "$BIN/orchard-sim" load --flow "$MODE" --devices "$DEVICES" --closed "$CLOSED" "${ACCOUNTS[@]}"
  # --rate 0: the closed loop only.
  if [ "$RATE" != 0 ]; then
    echo
    "$BIN/orchard-sim" load --flow "$MODE" --devices "$DEVICES" --rate "$RATE" "${ACCOUNTS[@]}"
  fi
  if [ "$MODE" = byod ]; then
    echo
    "$BIN/orchard-bench" bearer-checkins --devices "$DEVICES" -c "$CLOSED"
    echo
    "$BIN/orchard-bench" bearer-checkins --devices "$DEVICES" -c "$CLOSED" --platform macOS
  fi
  exit 0
fi
if [ "$MODE" = ade-sign-in-attack ]; then
  start_abm_standin "${ORCHARD_BENCH_ABM_PORT:-28445}" >/dev/null 2>&1
  export ORCHARD_ABM_SYNC_INTERVAL_SECONDS=0
fi
[ "$MODE" = ade-sign-in-attack ] && export ORCHARD_FORWARDED_FOR_HEADER=X-Forwarded-For
start_measured_services "$BIN" "$STATE" "${ORCHARD_BENCH_FIRST_PORT:-28080}" "${ORCHARD_BENCH_APNS_PORT:-28443}"
# CPU used by each process while the benchmark runs (utime + stime from /proc), to see where time goes.
cpu_ticks() {
  for pid in "${ORCHARD_PIDS[@]}" "$ORCHARD_BROKER_PID" $(pgrep -u postgres postgres); do
    local name; name=$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | awk '{print $1}' | xargs -r basename)
    [ -n "$name" ] && echo "$name $(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null)"
  done | awk '{t[$1]+=$2} END {for (n in t) print n, t[n]}'
}
if [ "$MODE" = ade-sign-in-attack ]; then
  # One device assigned a profile that requires the sign-in page; the attack posts its form. The gateway takes the
  # client address from X-Forwarded-For, as behind a TLS terminator.
  PREFIX="SIA$$"
  abm_uploaded_token "$STATE" "CK_sia_$$"
  abm_assign_devices "CK_sia_$$" 1 "$PREFIX"
  ADMIN="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1"
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" "$ADMIN/abm/tokens/$ABM_TOKEN_ID/sync"
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" -H 'Content-Type: application/json' \
    "$ADMIN/abm/tokens/$ABM_TOKEN_ID/profiles" -d '{"profile": {"profile_name": "Bench sign-in", "is_supervised": true}, "default": true, "signIn": true}'
  until [ "$(psql "$ORCHARD_DATABASE_URL" -tAc "SELECT count(*) FROM checkin_gateway.ade_devices d JOIN checkin_gateway.ade_profiles p USING (profile_uuid) WHERE serial_number LIKE '$PREFIX%'")" -ge 1 ]; do sleep 0.5; done
  set -- "$@" --prefix "$PREFIX"
fi
# ORCHARD_BENCH_PRELOAD_ENROLLMENTS=N and ORCHARD_BENCH_PRELOAD_FINISHED_COMMANDS=M (checkin, messages): N enrolled
# devices and M finished commands spread over them, written with SQL before measuring (does the rate stay flat?).
PRELOAD_N=${ORCHARD_BENCH_PRELOAD_ENROLLMENTS:-0} PRELOAD_M=${ORCHARD_BENCH_PRELOAD_FINISHED_COMMANDS:-0}
if [ "$PRELOAD_M" -gt 0 ] && [ "$PRELOAD_N" -lt 1 ]; then PRELOAD_N=1000; fi
if [ "$PRELOAD_N" -gt 0 ]; then
  started=$(date +%s)
  psql "$ORCHARD_DATABASE_URL" -qv ON_ERROR_STOP=1 <<SQL
SET search_path TO checkin_gateway;
SET session_replication_role = replica;  -- no foreign-key triggers for rows written consistent by construction
INSERT INTO enrollments (id, udid, enrollment_kind, status, identity_fingerprint, topic, serial_number, product_name, enrolled_at, last_seen_at)
SELECT 'PRELOAD-' || lpad(i::text, 9, '0'), 'PRELOAD-' || lpad(i::text, 9, '0'), 'device', 'enrolled', 'preload-' || i,
       'com.apple.mgmt.External.bench', 'P' || i, 'iPhone15,2', now(), now()
FROM generate_series(1, $PRELOAD_N) i;
INSERT INTO commands (uuid, request_type, plist, requested_by)
SELECT 'preload-command-' || j, 'DeviceInformation', '\x00'::bytea, 'preload'
FROM generate_series(1, GREATEST(1, ($PRELOAD_M + $PRELOAD_N - 1) / $PRELOAD_N)) j;
INSERT INTO command_queue (enrollment_id, command_uuid, status, sent_at, completed_at, result)
SELECT 'PRELOAD-' || lpad((n % $PRELOAD_N + 1)::text, 9, '0'), 'preload-command-' || (n / $PRELOAD_N + 1), 'acknowledged', now(), now(), '\x00'::bytea
FROM generate_series(0, $PRELOAD_M - 1) n;
SQL
  psql "$ORCHARD_DATABASE_URL" -qc "VACUUM ANALYZE checkin_gateway.enrollments" -c "VACUUM ANALYZE checkin_gateway.command_queue" -c "VACUUM ANALYZE checkin_gateway.commands" -c "CHECKPOINT"
  echo "preloaded $PRELOAD_N enrolled devices and $PRELOAD_M finished commands with SQL in $(( $(date +%s) - started )) s"
fi
before=$(cpu_ticks)
# The benchmark reads these processes' CPU itself at the start and end of its timed phase.
export ORCHARD_BENCH_PIDS="${ORCHARD_PIDS[*]} $ORCHARD_BROKER_PID $(pgrep -u postgres postgres | tr '\n' ' ')"
if [ "$MODE" = instructions ]; then
  counted=""
  for name in $ORCHARD_CALLGRIND_SERVICES; do
    case "$name" in
      orchard-local-broker) counted+=" orchard-local-broker=$ORCHARD_BROKER_PID" ;;
      *) counted+=" $name=$(service_pid "$name")" ;;
    esac
  done
  export ORCHARD_BENCH_CALLGRIND="$counted"
  MODE=messages
fi
/usr/bin/time -f "%U %S" -o "$STATE/client.time" stdbuf -oL "$BIN/orchard-bench" "$MODE" "$@"
after=$(cpu_ticks)
echo "CPU while measuring (core-seconds, setup included):"
awk -v c="$(cat "$STATE/client.time")" 'NR==FNR {b[$1]=$2; next} {printf "  %-22s %6.2f\n", $1, ($2-b[$1])/100} END {split(c, x, " "); printf "  %-22s %6.2f\n", "orchard-bench (client)", x[1]+x[2]}' \
  <(echo "$before") <(echo "$after") | sort -k2 -nr
if [ "${ORCHARD_BENCH_PG_STATS:-0}" = 1 ]; then
  echo "PostgreSQL statements by total time (calls, total ms, mean µs):"
  psql "$ORCHARD_DATABASE_URL" -qAtF ' | ' -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
    -c "SELECT calls, round(total_exec_time::numeric, 0), round((1000 * total_exec_time / calls)::numeric, 0), left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25"
fi
if [ -n "${ORCHARD_BENCH_PG_SLOW_MS:-}" ]; then
  echo "PostgreSQL statements over ${ORCHARD_BENCH_PG_SLOW_MS} ms (time, duration, statement):"
  grep -h "duration:" "$ORCHARD_PG_DIR"/postgres.log 2>/dev/null | grep -v "CREATE\|ALTER\|pg_advisory" |
    sed -E 's/^([0-9-]+ [0-9:.]+) UTC.*duration: ([0-9.]+ ms) +(statement|execute|bind|parse)[^:]*: */\1  \2  /' | cut -c1-140 | tail -40
fi
