#!/usr/bin/env bash
# The local trial (./Deploy/run-local.sh, unless ORCHARD_LOCAL_TRIAL=0): stand-ins for what Orchard needs from Apple,
# on loopback only, so that simulated devices enroll through every flow on this machine. Source it after stack.sh.
#   - an APNs stand-in (`orchard-sim apns`) that takes the gateway's pushes, and a push certificate from a local CA;
#   - a stand-in Apple device CA for MachineInfo (the gateway trusts it only with ORCHARD_LOCAL_TRIAL=1 and a loopback
#     ORCHARD_PUBLIC_URL: its subject says "Orchard stand-in");
#   - the ABM stand-in with a connected server token;
#   - a demo directory (slapd, Deploy/trial/directory.ldif) behind byod.example.com (User Enrollment) and
#     adde.example.com (Device Enrollment).
# Ports: the services' first port + 10 (ABM), + 11 (APNs), + 12 (the APNs stand-in's feed), + 13 (slapd).

TRIAL_CONSUMER_KEY=CK_orchard_local_trial

# start_trial_standins STATE BIN FIRST_PORT: the stand-ins, and the services' settings that point at them.
start_trial_standins() {
  local state=$1 bin=$2 first=$3 dir="$1/trial"
  mkdir -p "$dir"
  log "LOCAL TRIAL: stand-ins for Apple's services on 127.0.0.1 (ORCHARD_LOCAL_TRIAL=0 gives the bare stack)"
  # Kept across runs (the push certificate's topic and the devices' trust depend on them); ten years, as nothing leaves.
  [ -s "$dir/pki/apple-ca.pem" ] || make_test_pki "$dir/pki" 3650
  export ORCHARD_LOCAL_TRIAL=1
  start_abm_standin $((first + 10))
  start_apps_books_standin $((first + 14)) "$dir/apps-metadata"
  "$bin/orchard-sim" apns --port $((first + 11)) --cert "$dir/pki/apns-server.pem" --key "$dir/pki/apns-server.key" \
    --client-ca "$dir/pki/ca.pem" --feed-port $((first + 12)) > >(sed -u 's/^/[apns-standin] /') 2>&1 &
  ORCHARD_PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$((first + 12))/healthz" && break; sleep 0.1; done
  log "APNs stand-in on https://127.0.0.1:$((first + 11))"
  rm -rf "$dir/ldap"
  # TRIAL_DIRECTORY_LDIF: another directory (the flow benchmarks add a user per enrollment).
  start_slapd "$dir/ldap" $((first + 13)) "${TRIAL_DIRECTORY_LDIF:-Deploy/trial/directory.ldif}"
  export ORCHARD_APNS_URL="https://127.0.0.1:$((first + 11))" ORCHARD_APNS_CA_PEM="$dir/pki/ca.pem"
  export ORCHARD_APPLE_DEVICE_ROOTS="$dir/pki/apple-ca.pem" TRIAL_PUSH_FEED="http://127.0.0.1:$((first + 12))"
}

# trial_setup STATE FIRST_PORT: once the services are up: the push certificate, the ABM server token, watch enrollment
# for every supervised iPhone, the two demo domains; then the config file orchardctl and orchard-sim read.
trial_setup() {
  local state=$1 first=$2 dir="$1/trial" admin="$ORCHARD_URL_CHECKIN_GATEWAY/admin/v1" auth
  auth="Authorization: Bearer $ORCHARD_ADMIN_API_KEY"
  if [ ! -s "$dir/push.pem" ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/push.key" -out "$dir/push.csr" \
      -subj "/CN=APSP:orchard-local-trial/UID=com.apple.mgmt.External.orchard-local-trial/O=Orchard stand-in" 2>/dev/null
    openssl x509 -req -in "$dir/push.csr" -CA "$dir/pki/ca.pem" -CAkey "$dir/pki/ca.key" -CAcreateserial -days 3650 \
      -out "$dir/push.pem" 2>/dev/null
  fi
  python3 -c 'import json,sys; print(json.dumps({"certificate": open(sys.argv[1]).read(), "privateKey": open(sys.argv[2]).read()}))' \
    "$dir/push.pem" "$dir/push.key" | curl -fs -o /dev/null -X PUT -H "$auth" -H 'Content-Type: application/json' "$admin/push-certificate" --data-binary @-
  # The stand-in keeps nothing across runs: it learns the token's credentials again, and the ADE profiles Orchard defined
  # with it (Orchard keeps the token it uploaded and the profiles' uuids, as it would with Apple's).
  if curl -fs -H "$auth" "$admin/abm/tokens" | python3 -c 'import json,sys; sys.exit(0 if any(t.get("consumerKey") == sys.argv[1] and t.get("hasServerToken") for t in json.load(sys.stdin)["items"]) else 1)' "$TRIAL_CONSUMER_KEY"; then
    curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' "$ORCHARD_ABM_URL/_control/tokens" \
      -d "{\"consumer_key\":\"$TRIAL_CONSUMER_KEY\",\"consumer_secret\":\"cs\",\"access_token\":\"at\",\"access_secret\":\"as\",\"org_name\":\"Orchard trial\"}"
    curl -fs -H "$auth" "$admin/abm/profiles" | python3 -c '
import json, sys
profiles = {p["profileUUID"]: json.loads(p["profile"]) for p in json.load(sys.stdin)["items"] if p.get("profileUUID") and p.get("profile")}
print(json.dumps({"consumer_key": sys.argv[1], "profiles": profiles}))' "$TRIAL_CONSUMER_KEY" |
      curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' "$ORCHARD_ABM_URL/_control/profiles" --data-binary @-
  else
    abm_uploaded_token "$dir" "$TRIAL_CONSUMER_KEY"
  fi
  curl -fs -o /dev/null -X PUT -H "$auth" -H 'Content-Type: application/json' "$admin/watch-enrollment" -d '{"mode": "all-supervised"}'
  local ldap="{\"url\": \"ldap://127.0.0.1:$((first + 13))/\", \"baseDN\": \"ou=people,dc=example,dc=com\", \"userFilter\": \"(mail={user})\",
    \"disabledFilter\": \"(employeeType=disabled)\", \"bindDN\": \"uid=orchard,ou=people,dc=example,dc=com\", \"bindPassword\": \"orchard-trial-search\"}"
  for pair in byod.example.com:mdm-byod adde.example.com:mdm-adde; do
    curl -fs -o /dev/null -X PUT -H "$auth" -H 'Content-Type: application/json' "$admin/account-domains/${pair%%:*}" \
      -d "{\"mode\": \"${pair##*:}\", \"ldap\": $ldap}"
  done
  write_tool_config "$state" "$first" "{\"enrollmentAuthURL\": \"$ORCHARD_URL_USER_ENROLLMENT_AUTH\", \"appleCA\": \"$dir/pki\",
    \"abmStandIn\": \"$ORCHARD_ABM_URL\", \"abmConsumerKey\": \"$TRIAL_CONSUMER_KEY\", \"pushFeed\": \"$TRIAL_PUSH_FEED\", \"appsBooksStandIn\": \"${ORCHARD_TEST_APPS_BOOKS_URL:-}\",
    \"byodUser\": \"ava@byod.example.com\", \"byodPassword\": \"ava-orchard-trial\",
    \"addeUser\": \"noah@adde.example.com\", \"addePassword\": \"noah-orchard-trial\"}"
}

# write_tool_config STATE FIRST_PORT [TRIAL_JSON]: the config file orchardctl and orchard-sim read (the admin API's URL and
# key, each service's URL, and the trial's stand-ins), in STATE and in ~/.config/orchard (replacing only one this
# script wrote; TRIAL_HOME_CONFIG=0: only in STATE). Readable by its owner only: it holds the admin key.
write_tool_config() {
  local state=$1 first=$2 trial=${3:-null} file home_file="${HOME:-/root}/.config/orchard/orchardctl.json"
  file="$state/orchardctl.json"
  (umask 077; cat > "$file" <<EOF
{"writtenBy": "Deploy/run-local.sh", "url": "$ORCHARD_PUBLIC_URL", "apiKey": "$ORCHARD_ADMIN_API_KEY",
 "services": {"checkin-gateway": "http://127.0.0.1:$first", "token-service": "http://127.0.0.1:$((first + 1))",
              "profile-signer": "http://127.0.0.1:$((first + 2))", "abm-sync": "http://127.0.0.1:$((first + 3))",
              "user-enrollment-auth": "http://127.0.0.1:$((first + 4))"},
 "trial": $trial}
EOF
  )
  [ "${TRIAL_HOME_CONFIG:-1}" = 1 ] || return 0
  if [ ! -e "$home_file" ] || grep -q '"writtenBy": "Deploy/run-local.sh"' "$home_file"; then
    mkdir -p "$(dirname "$home_file")" && cp "$file" "$home_file" && chmod 600 "$home_file"
  fi
}

# start_trial_bench_stack STATE BIN FIRST_PORT: after PostgreSQL and the broker, the services of a benchmark or soak on
# the trial's stand-ins (quiet logs, a fresh admin key, P-256 link identities and no RSA key pool competing for the
# cores), set up as run-local.sh does; the config file in STATE only (ORCHARD_CONFIG points at it).
start_trial_bench_stack() {
  local state=$1 bin=$2 first=$3
  export TRIAL_HOME_CONFIG=0 ORCHARD_LOG_LEVEL=warning ORCHARD_DEVICE_KEY_POOL_SIZE=0 ORCHARD_DEVICE_KEY_TYPE=p256
  export ORCHARD_KEK=$(head -c 32 /dev/urandom | base64) ORCHARD_PUBLIC_URL="http://127.0.0.1:$first"
  export ORCHARD_ADMIN_API_KEY="orchard_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  start_trial_standins "$state" "$bin" "$first" > "$state/standins.log" 2>&1
  start_services "$bin" "$first" > "$state/services.log" 2>&1
  trial_setup "$state" "$first"
  export ORCHARD_CONFIG="$state/orchardctl.json"
}
