#!/usr/bin/env bash
# The directory (slapd) stopped for 10 s and started again while a user signs in over and over:
#   ./Deploy/fault-directory-restart.sh
# Prints the sign-in page's answers, in order, counted in runs. While the directory is away the answer must be 503
# with Retry-After (the page says the directory cannot be reached), never a 500 or "wrong password"; once it is back,
# sign-ins succeed at once: the connections user-enrollment-auth kept open died with slapd, and a check that meets
# one runs again on new connections instead of failing.
set -uo pipefail
cd "$(dirname "$0")/.."
source Deploy/scripts/stack.sh
install_dependencies
install_test_dependencies
release_bin
STATE=$(mktemp -d /tmp/orchard-dir-fault.XXXXXX); chmod 755 "$STATE"
trap 'stop_stack; [ -f "$STATE/ldap/slapd.pid" ] && kill "$(cat "$STATE/ldap/slapd.pid")" 2>/dev/null; rm -rf "$STATE"' EXIT
start_account_stack "$STATE" 55763 38399 38680 38953
put_byod_domain ', "timeoutSeconds": 2'
sign_in() {  # prints the sign-in's status: "308", or the status and Retry-After
  local headers code retry
  headers=$(sign_in_headers "$STATE" dave@byod.example.com dave-correct-horse)
  code=$(echo "$headers" | awk 'NR==1 {print $2}')
  retry=$(echo "$headers" | sed -nE 's/^[Rr]etry-[Aa]fter: (.*)/ Retry-After \1/p')
  echo "$code$retry"
}
until [ "$(sign_in)" = 308 ]; do sleep 0.5; done
out="$STATE/codes"
( end=$((SECONDS+30)); while [ $SECONDS -lt $end ]; do sign_in >> "$out"; sleep 0.05; done ) &
loop=$!
sleep 5
echo "stopping slapd"; kill "$(cat "$STATE/ldap/slapd.pid")"
sleep 10
/usr/sbin/slapd -d 0 -f "$STATE/ldap/slapd.conf" -h "$ORCHARD_TEST_LDAP_URL" >> "$STATE/ldap/slapd.log" 2>&1 &
until ldapsearch -x -H "$ORCHARD_TEST_LDAP_URL" -b dc=example,dc=com -s base >/dev/null 2>&1; do sleep 0.1; done
echo "slapd back"
wait $loop
echo "sign-ins (status, in order, counted in runs):"
uniq -c "$out"
