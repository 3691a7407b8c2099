#!/usr/bin/env bash
# SIGHUP reload of the HL7 v2 intake in `medicus-gateway serve` (issue 6: maps "compiled at start and
# reloaded with the config"): a listener's charset policy and a delivery route's maps change on SIGHUP; a
# reload whose maps do not load keeps what runs and says why. Real process, real MLLP, a recording upstream.
#   mllp_reload_test.sh MEDICUS_GATEWAY MAPS_DIR
set -euo pipefail
source "$(dirname "$0")/mllp_test_common.sh"
mllp_test_setup reload "$1" "$2"
exec 2> >(grep -v -E "Killed|^$" >&2)  # bash's job notice for the upstream we kill at the end

write_config() {  # charset, maps line
  write_gateway_config ", charset: { mode: force, default: $1 }" ", poll_interval: 50ms, initial_backoff: 100ms $2"
}
fail() {
  echo "RELOAD TEST FAILED: $1"
  echo "--- gateway log"; cat "$work/gateway.log"
  exit 1
}
expect_ack() {  # control id, charset of the umlauts, expected MSA-1
  local got
  got=$(python3 "$tools" ack "$mllp_port" "$1" "P-$1" "$2")
  [ "$got" = "$3" ] || fail "message $1 ($2) was answered $got, expected $3"
}
wait_for() {  # file, text, what
  for _ in $(seq 100); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$3"
}
reload() {
  local before
  before=$(grep -c "SIGHUP" "$work/gateway.log" || true)
  kill -HUP "$gateway_pid"
  for _ in $(seq 100); do
    [ "$(grep -c "hl7v2 reload" "$work/gateway.log" || true)" -gt "$before" ] && return 0
    sleep 0.1
  done
  fail "no hl7v2 reload line after SIGHUP"
}

start_upstream
write_config "UNICODE UTF-8" ""
start_gateway

# UTF-8 forced, no maps: Latin-1 bytes are refused (AE); a UTF-8 message is stored but not delivered.
expect_ack L1 latin-1 AE
expect_ack U1 utf-8 AA
sleep 0.5
[ ! -s "$work/posted.log" ] || fail "a route without maps delivered something"

# SIGHUP: Latin-1 forced and the shipped maps. Latin-1 is accepted; both stored messages are delivered.
write_config "8859/1" ", maps: $maps"
reload
grep -q "hl7v2 reload: listener policies, maps and 1 delivery route(s) active" "$work/gateway.log" || fail "reload not active"
expect_ack L2 latin-1 AA
wait_for "$work/posted.log" "KIS|KLINIKUM U1" "U1 was not delivered after the reload"
wait_for "$work/posted.log" "KIS|KLINIKUM L2" "L2 was not delivered after the reload"

# SIGHUP with maps that do not load (and UTF-8 again): refused with the reason; Latin-1 and maps stay.
# check-config compiles the maps as serve does, and says the same.
"$gateway" check-config "$work/gw.yaml" > /dev/null || fail "check-config refused the running config"
write_config "UNICODE UTF-8" ", maps: $work/no-such-maps"
if "$gateway" check-config "$work/gw.yaml" 2> "$work/check.err" > /dev/null; then fail "check-config accepted missing maps"; fi
grep -q "delivery route to-fhir: maps in $work/no-such-maps" "$work/check.err" || fail "check-config did not name the maps"
reload
grep -q "hl7v2 reload failed; keeping the running listeners, maps and delivery routes" "$work/gateway.log" ||
  fail "the failed reload was not reported"
grep -q "delivery route to-fhir: maps in $work/no-such-maps" "$work/gateway.log" || fail "the reason was not named"
expect_ack L3 latin-1 AA
wait_for "$work/posted.log" "KIS|KLINIKUM L3" "L3 was not delivered with the kept maps"

kill -TERM "$gateway_pid"
wait "$gateway_pid" || fail "the gateway did not stop cleanly"
echo "reload test passed: charset policy and maps changed on SIGHUP; a failing reload kept them and said why"
