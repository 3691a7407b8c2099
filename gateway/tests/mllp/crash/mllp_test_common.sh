# Sourced by mllp_crash_test.sh and mllp_reload_test.sh (not run on its own): the common set-up of a
# real `medicus-gateway serve` with one MLLP listener and a recording upstream, both on 127.0.0.1.
# Ports: the upstream and the gateway's MLLP listener both bind port 0 and report the port they got
# (the upstream in a file, the gateway in its log), so no port is chosen before its server binds it.
#   mllp_test_setup NAME MEDICUS_GATEWAY MAPS_DIR   sets gateway, maps, tools, work (a fresh folder,
#                                                   removed at exit) and pids (killed at exit)
#   write_gateway_config LISTENER_EXTRA DELIVERY_EXTRA   writes $work/gw.yaml
#   start_upstream                                  sets upstream_port; posts go to $work/posted.log
#   start_gateway                                   sets gateway_pid and mllp_port once it accepts
mllp_test_setup() {
  gateway=$2
  maps=$(cd "$3" && pwd)
  tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mllp_tools.py"
  work=$(mktemp -d "/tmp/medicus-$1-XXXXXX")
  pids=()
  trap mllp_test_cleanup EXIT
}

mllp_test_cleanup() {
  for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

write_gateway_config() {  # extra listener settings, extra delivery settings (each ", key: value ..." or "")
  cat > "$work/gw.yaml" <<YAML
server: { workers: 1, access_log: "off" }
listeners:
  - { name: http, protocol: http, address: 127.0.0.1, port: 0 }
upstreams:
  - { name: fhir, endpoints: [http://127.0.0.1:$upstream_port/fhir] }
routes:
  - { name: fhir, match: { path_prefix: /fhir }, forward: { upstream: fhir } }
hl7v2:
  store: { file: $work/messages.db }
  listeners:
    - { name: mllp-main, address: 127.0.0.1, port: 0, route: to-fhir$1 }
  delivery:
    - { name: to-fhir, upstream: fhir$2 }
YAML
}

start_upstream() {
  touch "$work/posted.log"
  rm -f "$work/upstream.port"
  python3 "$tools" upstream 0 "$work/posted.log" "$work/upstream.port" &
  pids+=($!)
  for _ in $(seq 100); do
    [ -s "$work/upstream.port" ] && upstream_port=$(cat "$work/upstream.port") && return 0
    sleep 0.1
  done
  echo "the upstream did not start"; exit 1
}

start_gateway() {
  local before line
  touch "$work/gateway.log"
  before=$(grep -c "mllp listener mllp-main on " "$work/gateway.log" || true)
  "$gateway" serve --config "$work/gw.yaml" 2>>"$work/gateway.log" &
  gateway_pid=$!
  pids+=($gateway_pid)
  for _ in $(seq 100); do
    if [ "$(grep -c "mllp listener mllp-main on " "$work/gateway.log" || true)" -gt "$before" ]; then
      line=$(grep -o "mllp listener mllp-main on 127.0.0.1:[0-9]*" "$work/gateway.log" | tail -1)
      mllp_port=${line##*:}
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $mllp_port), timeout=1)" 2>/dev/null && return 0
    fi
    sleep 0.1
  done
  echo "gateway did not start:"; cat "$work/gateway.log"; exit 1
}
