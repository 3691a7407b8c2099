#!/usr/bin/env bash
# Gateway pass-through benchmark, loopback only and bounded in time: wrk against
#   (a) nginx as a plain reverse proxy (keep-alive upstream pool) and
#   (b) medicus-gateway (validation off, no format conversion),
# both in front of the same upstream FHIR server (scripts/e2e/fhir-server.mjs), in the same run.
# GET of one Patient and POST of a ~3 KB Patient; prints requests/s and p50/p99 latency side by side.
#
#   gateway/bench/http_bench.sh [BUILD_DIR] [SECONDS per run, default 10] [CONNECTIONS, default 32]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:-$repo/build}"
seconds="${2:-10}"
connections="${3:-32}"
gateway_bin="$build/bin/medicus-gateway"
for tool in wrk nginx node curl; do
  command -v "$tool" >/dev/null || { echo "http_bench: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
done
[ -x "$gateway_bin" ] || { echo "http_bench: build medicus-gateway first ($gateway_bin)" >&2; exit 2; }

work="$(mktemp -d /tmp/medicus-http-bench-XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "http_bench: $1 did not come up" >&2; exit 1; }

# Upstream.
node --experimental-websocket --no-warnings "$repo/scripts/e2e/fhir-server.mjs" --port 0 > "$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/upstream.log" && break; sleep 0.1; done
upstream_port="$(awk '/listening/{print $2}' "$work/upstream.log")"
[ -n "$upstream_port" ] || { echo "http_bench: the upstream did not start" >&2; cat "$work/upstream.log" >&2; exit 1; }

# nginx: plain reverse proxy with a keep-alive pool, like the gateway's.
nginx_port="$(free_port)"
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  upstream fhir { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    client_max_body_size 10m;
    location /fhir/ { proxy_pass http://fhir; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx/stderr" &
pids+=($!)

# Gateway.
gateway_port="$(free_port)"
cat > "$work/gateway.yaml" <<CONF
server: { workers: 2, access_log: off }
listeners: [{ name: bench, protocol: http, address: 127.0.0.1, port: $gateway_port }]
upstreams: [{ name: fhir, endpoints: [http://127.0.0.1:$upstream_port/fhir], format: json, max_idle_connections: 64 }]
routes:
  - name: fhir
    match: { path_prefix: /fhir }
    stages: [{ validate: { mode: off } }]
    forward: { upstream: fhir, rewrite_urls: true }
CONF
"$gateway_bin" serve --config "$work/gateway.yaml" 2>"$work/gateway.log" &
pids+=($!)
# The same gateway with validation on (enforce, R4 core from the package cache).
validating_port="$(free_port)"
sed -e "s/port: $gateway_port/port: $validating_port/" -e "s/validate: { mode: off }/validate: { mode: enforce }/" \
  "$work/gateway.yaml" > "$work/gateway-validating.yaml"
"$gateway_bin" serve --config "$work/gateway-validating.yaml" 2>"$work/gateway-validating.log" &
pids+=($!)
wait_http "http://127.0.0.1:$nginx_port/fhir/metadata"
wait_http "http://127.0.0.1:$gateway_port/healthz"
wait_http "http://127.0.0.1:$validating_port/healthz"

# ~3 KB Patient.
python3 - "$work/patient.json" <<'PY'
import json, sys
p = {"resourceType": "Patient", "active": True, "gender": "female", "birthDate": "1964-08-12",
     "identifier": [{"system": "urn:oid:1.2.276.0.76.4.8", "value": "X1100%04d" % i} for i in range(16)],
     "name": [{"use": "official", "family": "Mustermann", "given": ["Erika", "Maria"]}],
     "telecom": [{"system": "phone", "value": "+49 30 1234%03d" % i, "use": "home"} for i in range(14)],
     "address": [{"line": ["Musterstrasse %d" % i], "city": "Berlin", "postalCode": "10115", "country": "DE"} for i in range(12)]}
open(sys.argv[1], "w").write(json.dumps(p))
PY
patient_bytes=$(wc -c < "$work/patient.json")
id="$(curl -s -X POST -H 'Content-Type: application/fhir+json' --data-binary @"$work/patient.json" \
      "http://127.0.0.1:$upstream_port/fhir/Patient" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
local f = io.open("$work/patient.json", "r"); wrk.body = f:read("*a"); f:close()
LUA

run() {  # name url [script]
  local out
  if [ -n "${3:-}" ]; then out="$(timeout $((seconds + 30)) wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$3" "$2")"
  else out="$(timeout $((seconds + 30)) wrk -t2 -c"$connections" -d"${seconds}s" --latency "$2")"; fi
  local rps p50 p99 errors
  rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
  p50="$(awk '$1=="50%"{print $2}' <<<"$out")"
  p99="$(awk '$1=="99%"{print $2}' <<<"$out")"
  errors="$(awk '/Non-2xx/{print $4}' <<<"$out")"
  printf "%-34s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n" "$1" "$rps" "$p50" "$p99" "${errors:-0}"
}

echo "http_bench: ${seconds}s per run, $connections connections, 2 wrk threads; upstream $upstream_port (node), POST body $patient_bytes bytes"
run "upstream direct  GET Patient" "http://127.0.0.1:$upstream_port/fhir/Patient/$id"
run "nginx            GET Patient" "http://127.0.0.1:$nginx_port/fhir/Patient/$id"
run "gateway          GET Patient" "http://127.0.0.1:$gateway_port/fhir/Patient/$id"
# The in-memory upstream slows down as every POST adds a resource, so POST runs alternate
# (nginx, gateway, gateway, nginx) to spread that drift evenly.
run "nginx            POST Patient (1)" "http://127.0.0.1:$nginx_port/fhir/Patient" "$work/post.lua"
run "gateway          POST Patient (1)" "http://127.0.0.1:$gateway_port/fhir/Patient" "$work/post.lua"
run "gateway          POST Patient (2)" "http://127.0.0.1:$gateway_port/fhir/Patient" "$work/post.lua"
run "nginx            POST Patient (2)" "http://127.0.0.1:$nginx_port/fhir/Patient" "$work/post.lua"
run "gateway+validate POST Patient (1)" "http://127.0.0.1:$validating_port/fhir/Patient" "$work/post.lua"
run "nginx            POST Patient (3)" "http://127.0.0.1:$nginx_port/fhir/Patient" "$work/post.lua"
run "gateway+validate POST Patient (2)" "http://127.0.0.1:$validating_port/fhir/Patient" "$work/post.lua"
echo "validation on: enforce with R4 core only (no ISiK package in the package cache)"
