#!/usr/bin/env bash
# Shared by run-local.sh and test.sh: installs what Orchard needs and starts PostgreSQL, the local
# Kafka broker and the five services as local processes. Source it; it defines functions only.

ORCHARD_SERVICES=(checkin-gateway token-service profile-signer abm-sync user-enrollment-auth)
# The mock broker holds every fetch for fetch.wait.max.ms even when data is waiting (docs/decisions.md).
export ORCHARD_KAFKA_FETCH_WAIT_MAX_MS=${ORCHARD_KAFKA_FETCH_WAIT_MAX_MS:-1}
ORCHARD_PIDS=()
ORCHARD_BROKER_PID=""

log() { printf '\033[1m[orchard]\033[0m %s\n' "$*" >&2; }

# Debian packages for building and running, installed only when missing.
install_dependencies() {
  local needed=(librdkafka-dev libpq-dev libssl-dev libldap-dev postgresql pkg-config openssl python3 python3-oauthlib)
  local missing=()
  for p in "${needed[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A real directory (slapd, with ldapsearch to wait for it): the tests' and the local trial's.
install_directory_dependencies() {
  local needed=(slapd ldap-utils) missing=() p
  for p in "${needed[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages for the directory: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system slapd on port 389 when it installs one; Orchard's scripts run their own.
  pkill -x slapd 2>/dev/null || true
}

# What only the test command needs: a real directory (slapd, with ldapsearch to wait for it) and a real browser
# for the sign-in page (chromium, driven over the DevTools protocol by Debian's python3-websocket).
install_test_dependencies() {
  local needed=(slapd ldap-utils chromium python3-websocket) missing=() p
  for p in "${needed[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages for the tests: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system slapd on port 389 when it installs one; the tests run their own.
  pkill -x slapd 2>/dev/null || true
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# Runs a command as the PostgreSQL owner: `postgres` when we are root (PostgreSQL refuses root).
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Instruction counts (./Deploy/bench-enrollment.sh instructions): with ORCHARD_CALLGRIND_DIR set, the programs named
# in ORCHARD_CALLGRIND_SERVICES (services, orchard-local-broker) run under callgrind with instrumentation off until
# the benchmark turns it on (`callgrind_control`). They run as copies without DWARF: valgrind 3.19 cannot read the
# DWARF 5 Swift writes and gives up; the symbol table, which names functions, stays. (Not PostgreSQL: the backends
# it forks under callgrind have no channel for callgrind_control, so they cannot be counted phase by phase.)
callgrind_wanted() {
  [ -n "${ORCHARD_CALLGRIND_DIR:-}" ] && [[ " ${ORCHARD_CALLGRIND_SERVICES:-} " == *" $1 "* ]]
}

# callgrind_prefix PROGRAM: the command that runs PROGRAM under callgrind (its copy without DWARF for ours).
callgrind_prefix() {
  local program=$1 name; name=$(basename "$1")
  mkdir -p "$ORCHARD_CALLGRIND_DIR/bin"; chmod 777 "$ORCHARD_CALLGRIND_DIR"
  [ -f "$ORCHARD_CALLGRIND_DIR/sigsuspend.so" ] ||
    gcc -shared -fPIC -O2 -o "$ORCHARD_CALLGRIND_DIR/sigsuspend.so" Deploy/scripts/callgrind-sigsuspend.c
  objcopy --strip-debug "$program" "$ORCHARD_CALLGRIND_DIR/bin/$name"
  program="$ORCHARD_CALLGRIND_DIR/bin/$name"
  echo env "LD_PRELOAD=$ORCHARD_CALLGRIND_DIR/sigsuspend.so" valgrind --tool=callgrind --instr-atstart=no --vgdb=yes \
    "--callgrind-out-file=$ORCHARD_CALLGRIND_DIR/$name.%p.out" "$program"
}

# start_postgres DIR PORT: a cluster in DIR (created on first use) listening on 127.0.0.1:PORT.
# Sets ORCHARD_DATABASE_URL.
start_postgres() {
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  [ -n "$bin" ] || { log "PostgreSQL binaries not found under /usr/lib/postgresql"; return 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    # PostgreSQL runs as `postgres`; it must be able to reach the directory.
    if ! runuser -u postgres -- test -w "$dir"; then
      dir=$(mktemp -d /tmp/orchard-pg.XXXXXX); chown postgres:postgres "$dir"
      log "project directory not reachable by user postgres; using $dir"
    fi
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg_owner "$bin/initdb" -D "$dir/data" -U orchard --auth=trust -E UTF8 >/dev/null
  fi
  # A cluster left running by an earlier, killed session is stopped first.
  as_pg_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && as_pg_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  as_pg_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 ${ORCHARD_PG_EXTRA_OPTIONS:-}" start >/dev/null
  ORCHARD_PG_DIR=$dir
  as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U orchard -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='orchard'" | grep -q 1 ||
    as_pg_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U orchard orchard
  export ORCHARD_DATABASE_URL="postgres://orchard@127.0.0.1:$port/orchard"
  log "PostgreSQL on 127.0.0.1:$port (data in $dir/data)"
}

stop_postgres() {
  if [ -n "${ORCHARD_PG_DIR:-}" ]; then
    as_pg_owner "$(pg_bin)/pg_ctl" -D "$ORCHARD_PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  fi
  ORCHARD_PG_DIR=""
}

# start_broker BIN_DIR STATE_DIR [PORT]: the embedded mock Kafka cluster. Sets KAFKA_BOOTSTRAP_SERVERS.
# With PORT it listens on 127.0.0.1:PORT and is supervised: if it dies (kill -9, a crash) it is started
# again on the same address, which the services find again, and the log says what was lost (the broker
# keeps nothing on disk; see docs/decisions.md). Its current pid is in STATE_DIR/kafka.pid.
start_broker() {
  local bin=$1 state=$2 port=${3:-}
  rm -f "$state/kafka.bootstrap" "$state/kafka.snapshot"
  if [ -z "$port" ]; then
    local run=("$bin/orchard-local-broker")
    callgrind_wanted orchard-local-broker && read -ra run <<< "$(callgrind_prefix "$bin/orchard-local-broker")"
    "${run[@]}" --bootstrap-file "$state/kafka.bootstrap" > >(sed -u 's/^/[kafka] /') 2>&1 &
    ORCHARD_BROKER_PID=$!
  else
    supervise_broker "$bin" "$state" "$port" > >(sed -u 's/^/[kafka] /') 2>&1 &
    ORCHARD_BROKER_PID=$!
  fi
  for _ in $(seq 1 100); do [ -s "$state/kafka.bootstrap" ] && break; sleep 0.1; done
  [ -s "$state/kafka.bootstrap" ] || { log "the local broker did not start"; return 1; }
  export KAFKA_BOOTSTRAP_SERVERS=$(cat "$state/kafka.bootstrap")
  log "Kafka (local mock cluster) on $KAFKA_BOOTSTRAP_SERVERS"
}

# supervise_broker BIN_DIR STATE_DIR PORT: runs the broker, restarting it when it dies; SIGTERM stops both.
supervise_broker() {
  local bin=$1 state=$2 port=$3 child="" stopping="" rc
  trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
  while [ -z "$stopping" ]; do
    "$bin/orchard-local-broker" --port "$port" --bootstrap-file "$state/kafka.bootstrap" \
      --snapshot-file "$state/kafka.snapshot" &
    child=$!
    echo "$child" > "$state/kafka.pid"
    rc=0; wait "$child" || rc=$?
    # A trapped signal interrupts `wait`: wait again for the broker itself to finish.
    [ -n "$stopping" ] && { wait "$child" 2>/dev/null || true; break; }
    log "the local broker stopped (exit status $rc); starting it again on 127.0.0.1:$port"
    log "it keeps nothing on disk, so what it held is gone; its last snapshot:"
    [ -s "$state/kafka.snapshot" ] && sed 's/^/    /' "$state/kafka.snapshot" >&2
    log "consumer groups start again from the beginning of the new, empty topics; services reconnect on their own"
    sleep 1
  done
  rm -f "$state/kafka.pid"
}

# start_service BIN_DIR NAME PORT [INSTANCE]: one service (or a further replica) in the background; its
# pid is in ORCHARD_SERVICE_PID and joins ORCHARD_PIDS, so stop_stack stops it.
start_service() {
  local bin=$1 name=$2 port=$3 instance=${4:-$2-local}
  local run=("$bin/$name")
  callgrind_wanted "$name" && read -ra run <<< "$(callgrind_prefix "$bin/$name")"
  ORCHARD_HTTP_PORT=$port ORCHARD_INSTANCE_ID="$instance" "${run[@]}" > >(sed -u "s/^/[$instance] /") 2>&1 &
  ORCHARD_SERVICE_PID=$!
  ORCHARD_PIDS+=($ORCHARD_SERVICE_PID)
}

# service_pid NAME: the pid of the running service NAME (the first, if replicas run) among ORCHARD_PIDS.
service_pid() {
  local pid
  for pid in "${ORCHARD_PIDS[@]}"; do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "/$1 "; then echo "$pid"; return 0; fi
  done
  return 1
}

# wait_ready NAME PORT: until the service's /readyz answers 200 (at most 60 s).
wait_ready() {
  local name=$1 port=$2 tries=120
  [ -n "${ORCHARD_CALLGRIND_DIR:-}" ] && tries=1200  # under valgrind a start takes minutes
  for _ in $(seq 1 $tries); do
    if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$name did not become ready on port $port"
  return 1
}

# start_services BIN_DIR FIRST_PORT: the five services on consecutive ports; waits for /readyz.
start_services() {
  local bin=$1 port=$2 name
  # user-enrollment-auth is the fifth service: abm-sync registers its discovery URL with ABM.
  export ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL=${ORCHARD_ENROLLMENT_AUTH_PUBLIC_URL:-http://127.0.0.1:$((port + 4))}
  for name in "${ORCHARD_SERVICES[@]}"; do
    start_service "$bin" "$name" "$port"
    eval "export ORCHARD_URL_$(echo "$name" | tr 'a-z-' 'A-Z_')=http://127.0.0.1:$port"
    port=$((port + 1))
  done
  port=$2
  for name in "${ORCHARD_SERVICES[@]}"; do
    wait_ready "$name" "$port" || return 1
    log "$name ready on http://127.0.0.1:$port"
    port=$((port + 1))
  done
}

# start_abm_standin PORT: the tests' stand-in for Apple's device-assignment API (Deploy/standins/abm_standin.py,
# Debian's python3 and python3-oauthlib); sets ORCHARD_ABM_URL. Stopped with the stack.
start_abm_standin() {
  local port=$1
  /usr/bin/python3 Deploy/standins/abm_standin.py "$port" > >(sed -u 's/^/[abm-standin] /') 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/_control/requests" && break; sleep 0.1; done
  export ORCHARD_ABM_URL="http://127.0.0.1:$port" ORCHARD_TEST_ABM_PORT=$port
  log "ABM stand-in on $ORCHARD_ABM_URL"
}

# start_abm_api_standin PORT: the tests' stand-in for the Apple Business Manager API (Deploy/standins/abm_api_standin.py:
# OAuth 2 client credentials with ES256 client assertions checked by the openssl tool, JSON:API inventory, jobs); sets
# ORCHARD_ABM_API_URL and ORCHARD_ABM_API_TOKEN_URL. Stopped with the stack.
start_abm_api_standin() {
  local port=$1
  /usr/bin/python3 Deploy/standins/abm_api_standin.py "$port" > >(sed -u 's/^/[abm-api-standin] /') 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/_control/stats" && break; sleep 0.1; done
  export ORCHARD_ABM_API_URL="http://127.0.0.1:$port" ORCHARD_ABM_API_TOKEN_URL="http://127.0.0.1:$port/auth/oauth2/token" \
    ORCHARD_TEST_ABM_API_PORT=$port
  log "ABM API stand-in on $ORCHARD_ABM_API_URL"
}

# status_of LABEL: reads `curl -s -o /dev/null -D -` output on stdin and prints LABEL<status>, with +Retry-After when
# the answer had one (the fault scripts count these lines in runs).
status_of() {
  awk -v label="$1" 'NR==1 {c=$2} tolower($1)=="retry-after:" {r="+Retry-After"} END {print label c r}'
}

# restart_postgres [PORT] [DOWN_SECONDS]: stops the stack's PostgreSQL (fast), keeps it away DOWN_SECONDS (4), starts it
# again on PORT ($PG_PORT by default).
restart_postgres() {
  local port=${1:-$PG_PORT} down=${2:-4}
  as_pg_owner "$(pg_bin)/pg_ctl" -D "$ORCHARD_PG_DIR/data" -m fast stop >/dev/null
  sleep "$down"
  as_pg_owner "$(pg_bin)/pg_ctl" -D "$ORCHARD_PG_DIR/data" -l "$ORCHARD_PG_DIR/postgres.log" -w \
    -o "-p $port -k $ORCHARD_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
}

# start_account_stack STATE PG_PORT LDAP_PORT FIRST_PORT APNS_PORT: PostgreSQL, the broker, a slapd with the tests'
# directory and the five services (their log in STATE/services.log), for the account-driven fault scripts.
start_account_stack() {
  local state=$1
  start_postgres "$state/postgres" "$2" >/dev/null
  start_broker "$BIN" "$state" >/dev/null
  start_slapd "$state/ldap" "$3" Tests/Fixtures/ldap/directory.ldif >/dev/null 2>&1
  start_measured_services "$BIN" "$state" "$4" "$5" > "$state/services.log" 2>&1
}

# put_byod_domain [EXTRA]: byod.example.com as a User Enrollment domain signed in against the test slapd (the tests'
# search account); EXTRA adds fields to its ldap settings (such as ', "timeoutSeconds": 2').
put_byod_domain() {
  curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" -H 'Content-Type: application/json'     "$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1/account-domains/byod.example.com" -d "{\"mode\": \"mdm-byod\",
    \"ldap\": {\"url\": \"$ORCHARD_TEST_LDAP_URL\", \"baseDN\": \"ou=people,dc=example,dc=com\", \"userFilter\": \"(mail={user})\",
               \"bindDN\": \"uid=orchard,ou=people,dc=example,dc=com\", \"bindPassword\": \"orchard-search-secret\"${1:-}}}"
}

# sign_in_headers STATE USER PASSWORD: the sign-in page's form filled and sent as a browser does (its CSRF cookie
# and field); prints the answer's status line and headers, without carriage returns.
sign_in_headers() {
  local state=$1 user=$2 password=$3 page csrf
  page=$(curl -s -c "$state/cookies" "$ORCHARD_URL_USER_ENROLLMENT_AUTH/account/sign-in?user-identifier=$user")
  csrf=$(echo "$page" | sed -nE 's/.*name="csrf" value="([^"]+)".*/\1/p')
  curl -s -o /dev/null -D - -b "$state/cookies" --data-urlencode "csrf=$csrf" --data-urlencode "user=$user" \
    --data-urlencode "password=$password" "$ORCHARD_URL_USER_ENROLLMENT_AUTH/account/sign-in" | tr -d '\r'
}

# upload_push_certificate STATE NAME: a push certificate from the test CA (its UID is the topic
# com.apple.mgmt.External.NAME), uploaded through the admin API as an administrator uploads Apple's.
upload_push_certificate() {
  local state=$1 name=$2
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$state/push.key" -out "$state/push.csr" \
    -subj "/CN=APSP:$name/UID=com.apple.mgmt.External.$name" 2>/dev/null
  openssl x509 -req -in "$state/push.csr" -CA "$state/pki/ca.pem" -CAkey "$state/pki/ca.key" -CAcreateserial -days 2 \
    -out "$state/push.pem" 2>/dev/null
  python3 - "$state" > "$state/push.json" <<'PY'
import json, sys
print(json.dumps({"certificate": open(sys.argv[1] + "/push.pem").read(), "privateKey": open(sys.argv[1] + "/push.key").read()}))
PY
  curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" -H 'Content-Type: application/json' \
    "$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1/push-certificate" --data-binary @"$state/push.json"
}

# start_apps_books_standin PORT [KEYDIR]: the stand-in for Apple's Apps and Books API (Deploy/standins/apps_books_standin.py:
# content tokens, assets, licence events, app metadata); sets ORCHARD_APPS_BOOKS_URL and ORCHARD_TEST_APPS_BOOKS_URL, and
# the app metadata API's URL and developer key (made in KEYDIR). Stopped with the stack.
start_apps_books_standin() {
  local port=$1
  /usr/bin/python3 Deploy/standins/apps_books_standin.py "$port" > >(sed -u 's/^/[apps-books-standin] /') 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/_control/stats" && break; sleep 0.1; done
  export ORCHARD_APPS_BOOKS_URL="http://127.0.0.1:$port/mdm/v2" ORCHARD_TEST_APPS_BOOKS_URL="http://127.0.0.1:$port"
  # The app metadata API wants a developer token: a P-256 key as Apple's developer account gives one (a .p8), registered
  # with the stand-in under a key id and team id of Apple's form.
  local keys=${2:-$(mktemp -d)}
  mkdir -p "$keys"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/metadata-key.p8" 2>/dev/null
  python3 - "$keys/metadata-key.p8" "http://127.0.0.1:$port" <<'PY'
import json, subprocess, sys, urllib.request
pem = subprocess.run(["openssl", "pkey", "-in", sys.argv[1], "-pubout"], capture_output=True, check=True, text=True).stdout
request = urllib.request.Request(sys.argv[2] + "/_control/developer-key", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"keyId": "ORCHKEY001", "teamId": "ORCHTEAM01", "publicKeyPEM": pem}).encode())
urllib.request.urlopen(request).read()
PY
  export ORCHARD_APPS_METADATA_URL="http://127.0.0.1:$port/v1" ORCHARD_APPS_METADATA_KEY_FILE="$keys/metadata-key.p8"
  export ORCHARD_APPS_METADATA_KEY_ID=ORCHKEY001 ORCHARD_APPS_METADATA_TEAM_ID=ORCHTEAM01
  log "Apps and Books stand-in on $ORCHARD_TEST_APPS_BOOKS_URL (app metadata on $ORCHARD_APPS_METADATA_URL)"
}

# start_oidc_standin PORT: the tests' stand-in OpenID Connect provider (Deploy/standins/oidc_standin.py: discovery
# document, JWKS, RS256 tokens signed by the openssl tool); sets ORCHARD_TEST_OIDC_URL. Stopped with the stack.
start_oidc_standin() {
  local port=$1
  /usr/bin/python3 Deploy/standins/oidc_standin.py "$port" > >(sed -u 's/^/[oidc-standin] /') 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/jwks" && break; sleep 0.1; done
  export ORCHARD_TEST_OIDC_URL="http://127.0.0.1:$port"
  log "OIDC stand-in on $ORCHARD_TEST_OIDC_URL"
}

# abm_uploaded_token STATE CONSUMER_KEY: a server-token entry in the admin API whose .p7m (made here with
# openssl smime, as ABM makes it) carries credentials the stand-in knows; sets ABM_TOKEN_ID.
abm_uploaded_token() {
  local state=$1 ck=$2 admin="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1" created
  curl -fs -X POST -H 'Content-Type: application/json' "$ORCHARD_ABM_URL/_control/tokens" \
    -d "{\"consumer_key\":\"$ck\",\"consumer_secret\":\"cs\",\"access_token\":\"at\",\"access_secret\":\"as\",\"org_name\":\"Orchard trial\"}"
  # abm-sync answers once its consumer has joined its group on a fresh broker: a 503 before that is retried.
  for _ in $(seq 1 60); do
    created=$(curl -fs -X POST -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" -H 'Content-Type: application/json' \
      "$admin/abm/tokens" -d "{\"name\":\"$ck\"}") && break
    sleep 0.5
  done
  ABM_TOKEN_ID=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificatePEM"])' > "$state/$ck.pem"
  printf 'Content-Type: text/plain\r\n\r\n-----BEGIN MESSAGE-----\n{"consumer_key":"%s","consumer_secret":"cs","access_token":"at","access_secret":"as","access_token_expiry":"2030-01-01T00:00:00Z"}\n-----END MESSAGE-----\n' \
    "$ck" > "$state/$ck.message"
  openssl smime -encrypt -aes256 -in "$state/$ck.message" -out "$state/$ck.p7m" "$state/$ck.pem"
  curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $ORCHARD_ADMIN_API_KEY" -H 'Content-Type: application/pkcs7-mime' \
    --data-binary @"$state/$ck.p7m" "$admin/abm/tokens/$ABM_TOKEN_ID/server-token"
}

# abm_assign_devices CONSUMER_KEY COUNT PREFIX [JSON_EXTRA]: COUNT devices assigned in the stand-in (off the sync
# feed, as after a long time: only a fetch shows them), serials PREFIX0000000….
abm_assign_devices() {
  python3 - "$ORCHARD_ABM_URL" "$1" "$2" "$3" <<'PY'
import json, sys, urllib.request
url, key, total, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for start in range(0, total, 10000):
    devices = [{"serial_number": "%s%07d" % (prefix, i), "model": "iPhone 16", "os": "iOS", "device_family": "iPhone",
                "profile_status": "empty", "device_assigned_by": "admin@example.com"} for i in range(start, min(start + 10000, total))]
    req = urllib.request.Request(url + "/_control/devices", data=json.dumps({"consumer_key": key, "devices": devices, "hidden": True}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
PY
}

# make_test_pki DIR [DAYS]: a CA and a TLS server certificate for 127.0.0.1, for the tests' APNs stand-in.
# The same CA signs the tests' push certificate and their "external SCEP" device identities. Both CAs say
# "Orchard stand-in" in their subject: the gateway trusts them only with ORCHARD_LOCAL_TRIAL=1 (exported here) and a
# loopback ORCHARD_PUBLIC_URL.
make_test_pki() {
  local dir=$1 days=${2:-30}
  mkdir -p "$dir"
  export ORCHARD_LOCAL_TRIAL=1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -days "$days" -subj "/CN=Orchard Test CA/O=Orchard stand-in" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/apns-server.key" \
    -out "$dir/apns-server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext"
  openssl x509 -req -in "$dir/apns-server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/apns-server.pem" -days "$days" -extfile "$dir/server.ext" 2>/dev/null
  # Stands in for Apple's device CA: it signs the simulated watches' MachineInfo identities.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/apple-ca.key" -out "$dir/apple-ca.pem" \
    -days "$days" -subj "/CN=Test Apple Device CA/O=Orchard stand-in" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# stop_processes PID…: SIGTERM, up to 10 s to finish, then SIGKILL.
stop_processes() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# start_slapd DIR PORT LDIF: a real OpenLDAP slapd (Debian's) on 127.0.0.1:PORT with the entries of LDIF under
# dc=example,dc=com (root dn cn=admin,dc=example,dc=com); sets ORCHARD_TEST_LDAP_URL. Stopped with the stack.
start_slapd() {
  local dir=$1 port=$2 ldif=$3
  mkdir -p "$dir/db"
  cat > "$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
database mdb
maxsize 104857600
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw admin-secret
directory $dir/db
index mail eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
  /usr/sbin/slapadd -q -f "$dir/slapd.conf" -l "$ldif" >/dev/null 2>&1 || { log "slapadd failed"; /usr/sbin/slapadd -f "$dir/slapd.conf" -l "$ldif"; return 1; }
  /usr/sbin/slapd -d 0 -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" > "$dir/slapd.log" 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$port/" -b dc=example,dc=com -s base >/dev/null 2>&1 && break
    sleep 0.1
  done
  export ORCHARD_TEST_LDAP_URL="ldap://127.0.0.1:$port/"
  log "slapd on $ORCHARD_TEST_LDAP_URL"
}

# Stops the services first (they commit offsets, leave their groups and flush, which needs the broker),
# then the broker, then PostgreSQL. Runs from EXIT traps, where `set -e` still applies: nothing may fail.
stop_stack() {
  stop_processes "${ORCHARD_PIDS[@]}"
  ORCHARD_PIDS=()
  [ -n "$ORCHARD_BROKER_PID" ] && stop_processes "$ORCHARD_BROKER_PID"
  ORCHARD_BROKER_PID=""
  stop_postgres
}

# release_bin: sets BIN to the release build's folder (building it), or to ORCHARD_BENCH_BIN when set,
# to run another build's binaries (to compare two builds in one sitting).
release_bin() {
  if [ -n "${ORCHARD_BENCH_BIN:-}" ]; then BIN=$ORCHARD_BENCH_BIN; return; fi
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)
}

# start_measured_services BIN STATE FIRST_PORT APNS_PORT: the five services as the benchmark and soak scripts
# run them (test PKI, quiet logs, a fresh admin key); sets ORCHARD_URL_CHECKIN_GATEWAY.
start_measured_services() {
  local bin=$1 state=$2 first=$3
  make_test_pki "$state/pki"
  export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64) ORCHARD_TEST_PKI="$state/pki" ORCHARD_LOG_LEVEL=warning
  export ORCHARD_ADMIN_API_KEY="orchard_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  export ORCHARD_DEVICE_IDENTITY_ROOTS="$state/pki/ca.pem" ORCHARD_APPLE_DEVICE_ROOTS="$state/pki/apple-ca.pem"
  export ORCHARD_PUBLIC_URL="http://127.0.0.1:$first" ORCHARD_TEST_APNS_PORT=$4
  export ORCHARD_APNS_URL="https://127.0.0.1:$ORCHARD_TEST_APNS_PORT" ORCHARD_APNS_CA_PEM="$state/pki/ca.pem"
  # Devices are set up through enrollment links: P-256 identities keep the setup quick, and no RSA key
  # pool competes for the two cores while measuring. (Watch identities are P-256 by default.)
  export ORCHARD_DEVICE_KEY_POOL_SIZE=0 ORCHARD_DEVICE_KEY_TYPE=p256
  start_services "$bin" "$first" > "$state/services.log" 2>&1
  export ORCHARD_URL_CHECKIN_GATEWAY="http://127.0.0.1:$first"
}
