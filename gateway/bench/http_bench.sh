#!/usr/bin/env bash
# Gateway pass-through benchmark, loopback only and bounded in time: wrk against
#   (a) nginx as a plain reverse proxy (keep-alive upstream pool) and
#   (b) medicus-gateway (validation off, no format conversion),
# both in front of the same upstream FHIR server (scripts/e2e/fhir-server.mjs), in the same run.
# GET of one Patient and POST of a ~3 KB Patient; prints requests/s, p50/p99 latency and the proxy's
# CPU time per request side by side. Same work on both sides: $PROXY_WORKERS (default 2) worker
# processes/threads each, keep-alive pools to the upstream, X-Forwarded-For/-Proto/-Host on the
# forwarded request (fields the upstream parses too), a JSON access log to a file (buffered on both);
# the gateway still routes, checks limits, sets deadlines, rewrites Content-Location and counts metrics.
# Then POST through a second gateway with validation on (enforce): R4 core plus the German base
# profiles and ISiK Basis from $MEDICUS_TESTDATA, with a ~3 KB Patient that claims ISiKPatient and is
# valid against it (checked first), against nginx forwarding the same body. Without that test data the
# validated runs use R4 core only and say so.
# Then latency at a fixed rate, half the gateway's peak (build/bin/http_load, open loop): p50/p99
# direct to the upstream, through nginx and through the gateway, and the p99 each proxy adds: its p99
# minus the direct p99 at the same rate. The upstream keeps only the 2000 newest Patients that POST
# created (--max-created): tens of thousands would grow a heap whose collections stall it for 100 ms and
# more, so its own p99 would hide what a proxy adds. Each run starts on a restarted upstream, and direct,
# nginx, direct, gateway take turns in 2 ms windows within one run (http_load --url ... --url ...), so
# a stall of the upstream (its garbage collections, 5 to 30 ms) or of this VM (CPU steal) falls on all
# alike (with 10 ms windows a stall fell mostly on one target, and the POST figures of three runs
# spread over 5 ms), and each proxy follows a direct window, not the other proxy's; five such runs per
# method, and the median of each figure counts. Then the same at the same rates over HTTPS: clients
# on TLS to a second nginx and gateway in front of node (direct stays plain, so what a proxy adds
# includes terminating TLS).
# Then the same GET and POST against a constant-time upstream (nginx answering from memory with the FHIR
# server's own replies): closed loop and at half the gateway's peak there. Against node, its one thread
# sets the pace of both proxies and its collections set the POST p99; here the proxies are the
# bottleneck, so those figures are the proxies' own.
# Then the proxy-bound closed-loop runs again over HTTPS: clients connect to both proxies with TLS 1.3
# (the same self-signed ECDSA P-256 certificate, made here with openssl, and the same cipher, checked),
# the constant upstream stays plain HTTP, as a platform service behind the gateway often is.
# Then the other way round: clients plain, the constant upstream over HTTPS (its certificate verified by
# both proxies), with the proxies' keep-alive pools and without one (a TCP connection and a TLS
# handshake per request, which both proxies resume with the session the upstream issued before: what a
# pool that reconnects costs).
# Against node, each run also prints the share of a core node's thread was on a CPU: node is the
# bottleneck there, so that share (and node's own cost per request, which this VM's load moves from run
# to run) sets the pace, and a proxy can only win by leaving node more of its core.
# Ends with a summary table against the targets; each closed-loop ratio comes with the lowest and
# highest ratio of its single rounds (gateway a+b over nginx a+b), a measure of the noise.
#
#   gateway/bench/http_bench.sh [BUILD_DIR] [SECONDS per run, default 10] [CONNECTIONS, default 32] [ROUNDS, default 2]
# Each closed-loop round runs nginx, gateway, gateway, nginx for GET and for POST (about 8 x SECONDS);
# the constant upstream's rounds as many again, three times (plain, HTTPS clients, HTTPS upstream), and
# the HTTPS upstream's GET without a pool half as many; the latency part takes about 120 x SECONDS more.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:-$repo/build}"
seconds="${2:-10}"
connections="${3:-32}"
rounds="${4:-2}"  # of the closed-loop runs: each round is nginx, gateway, gateway, nginx
# Worker processes of nginx and threads of the gateway, the same on both sides. On a 2-core machine the
# upstream (node, one thread) takes a core of its own; PROXY_WORKERS=1 leaves it that core.
proxy_workers="${PROXY_WORKERS:-2}"
gateway_bin="$build/bin/medicus-gateway"
load_bin="$build/bin/http_load"
for tool in wrk nginx node curl; do
  command -v "$tool" >/dev/null || { echo "http_bench: $tool is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
done
[ -x "$gateway_bin" ] || { echo "http_bench: build medicus-gateway first ($gateway_bin)" >&2; exit 2; }
[ -x "$load_bin" ] || { echo "http_bench: build http_load first ($load_bin)" >&2; exit 2; }

work="$(mktemp -d /tmp/medicus-http-bench-XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 100); do curl -sk -o /dev/null "$1" && return 0; sleep 0.1; done; echo "http_bench: $1 did not come up" >&2; exit 1; }

# Upstream: any free port first, the same port when restarted (the proxies keep their config).
start_upstream() {  # port
  : > "$work/upstream.log"
  node --experimental-websocket --no-warnings "$repo/scripts/e2e/fhir-server.mjs" --port "$1" --max-created 2000 \
    > "$work/upstream.log" 2>&1 &
  upstream_pid=$!
  pids+=($upstream_pid)
  for _ in $(seq 1 100); do grep -q listening "$work/upstream.log" && break; sleep 0.1; done
  upstream_port="$(awk '/listening/{print $2}' "$work/upstream.log")"
  [ -n "$upstream_port" ] || { echo "http_bench: the upstream did not start" >&2; cat "$work/upstream.log" >&2; exit 1; }
}
start_upstream 0

# nginx: plain reverse proxy with a keep-alive pool, like the gateway's.
# With upstream_tls_dir the upstream is https, verified against that folder's cert.pem (sessions
# reused, nginx's default); with pool "off" every request opens its own upstream connection.
start_nginx_proxy() {  # dir listen_port upstream_port [tls_dir: listen with TLS, its cert.pem and key.pem] [upstream_tls_dir] [pool: on|off]
  local tls_listen="" scheme=http upstream_tls="" keepalive="keepalive 64;"
  [ -n "${4:-}" ] && tls_listen=" ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $4/cert.pem; ssl_certificate_key $4/key.pem"
  if [ -n "${5:-}" ]; then
    scheme=https
    # TLS 1.3 as the gateway's (nginx 1.22 offers upstreams at most 1.2 by default; a 1.2 resumption
    # skips the key exchange that 1.3's does, and cost a quarter of the CPU per new connection).
    upstream_tls="proxy_ssl_protocols TLSv1.2 TLSv1.3; proxy_ssl_verify on; proxy_ssl_trusted_certificate $5/cert.pem;"
    upstream_tls+=" proxy_ssl_name 127.0.0.1;"
  fi
  [ "${6:-on}" = off ] && keepalive=""
  mkdir -p "$1/logs"
  cat > "$1/nginx.conf" <<CONF
worker_processes $proxy_workers;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 1024; }
http {
  log_format json escape=json '{"time":"\$time_iso8601","remote":"\$remote_addr","method":"\$request_method",'
                              '"path":"\$uri","status":\$status,"upstream_status":"\$upstream_status",'
                              '"bytes_in":\$request_length,"bytes_out":\$bytes_sent,"duration":\$request_time}';
  access_log $1/logs/access.log json buffer=32k flush=200ms;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fcgi; uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  upstream fhir { server 127.0.0.1:$3; $keepalive }
  server {
    listen 127.0.0.1:$2$tls_listen;
    client_max_body_size 10m;
    # The X-Forwarded-* fields a reverse proxy in front of a platform service sets, as the gateway does.
    location /fhir/ {
      proxy_pass $scheme://fhir; proxy_http_version 1.1; proxy_set_header Connection ""; $upstream_tls
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
}
CONF
  nginx -p "$1" -c "$1/nginx.conf" -g 'daemon off;' 2>"$1/stderr" &
  pids+=($!)
}
nginx_port="$(free_port)"
start_nginx_proxy "$work/nginx" "$nginx_port" "$upstream_port"

# Gateway.
# upstream_tls_dir and pool as for start_nginx_proxy.
write_gateway_conf() {  # file listen_port upstream_port access_log [tls_dir: listen with TLS, its cert.pem and key.pem] [upstream_tls_dir] [pool: on|off]
  local listener="{ name: bench, protocol: http, address: 127.0.0.1, port: $2 }" endpoint="http://127.0.0.1:$3/fhir" upstream_tls="" idle=64
  [ -n "${5:-}" ] && listener="{ name: bench, protocol: https, address: 127.0.0.1, port: $2, tls: { certificate: $5/cert.pem, private_key: $5/key.pem } }"
  [ -n "${6:-}" ] && endpoint="https://127.0.0.1:$3/fhir" upstream_tls=", tls: { ca: $6/cert.pem }"
  [ "${7:-on}" = off ] && idle=0
  cat > "$1" <<CONF
server: { workers: $proxy_workers, access_log: "$4" }
listeners: [$listener]
upstreams: [{ name: fhir, endpoints: [$endpoint], format: json, max_idle_connections: $idle$upstream_tls }]
routes:
  - name: fhir
    match: { path_prefix: /fhir }
    stages: [{ validate: { mode: off } }]
    forward: { upstream: fhir, rewrite_urls: true }
CONF
}
# Starts a gateway on $work/NAME.yaml, its log $work/NAME.log; $! is its pid.
start_gateway() {  # NAME
  "$gateway_bin" serve --config "$work/$1.yaml" 2>"$work/$1.log" &
  pids+=($!)
}
gateway_port="$(free_port)"
write_gateway_conf "$work/gateway.yaml" "$gateway_port" "$upstream_port" "$work/gateway-access.log"
start_gateway gateway
# The same gateway with validation on (enforce): R4 core from the package cache plus, when the test
# data is there ($MEDICUS_TESTDATA, see scripts/setup.sh), the German base profiles and ISiK Basis.
validating_port="$(free_port)"
testdata="${MEDICUS_TESTDATA:-}"
isik=""
if [ -n "$testdata" ] && [ -d "$testdata/isik-basismodul/conformance" ] && [ -d "$testdata/de-basisprofil-r4/conformance" ] &&
   [ -f "$testdata/isik-basismodul/examples/Patient-PatientinMusterfrau.json" ]; then
  isik="$testdata/isik-basismodul"
  validate_stage="validate: { mode: enforce, packages: [\"$testdata/de-basisprofil-r4/conformance\", \"$isik/conformance\"] }"
  validation_label="R4 core + ISiK Basis (de-basisprofil-r4, isik-basismodul); the POST claims ISiKPatient"
else
  validate_stage="validate: { mode: enforce }"
  validation_label="R4 core only: no ISiK test data (set MEDICUS_TESTDATA to the folder with isik-basismodul and de-basisprofil-r4); ISiK part skipped"
fi
sed -e "s/port: $gateway_port/port: $validating_port/" -e "s|validate: { mode: off }|$validate_stage|" \
  -e "s|gateway-access.log|gateway-validating-access.log|" \
  "$work/gateway.yaml" > "$work/gateway-validating.yaml"
start_gateway gateway-validating
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
# For the validated runs: the ISiK publisher's example Patient (claims ISiKPatient in meta.profile),
# without id and narrative, with phone numbers added to reach ~3 KB. It must be valid, else the runs
# would measure 422 replies; and a Patient claiming ISiKPatient without the required identifier must
# be rejected, else the profile is not being checked.
if [ -n "$isik" ]; then
  python3 - "$isik/examples/Patient-PatientinMusterfrau.json" "$work/patient-isik.json" "$work/patient-isik-invalid.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1], encoding="utf-8"))
p.pop("id", None); p.pop("text", None)
p["telecom"] = [{"system": "phone", "value": "+49 30 1234%03d" % i, "use": "home"} for i in range(18)]
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps(p, ensure_ascii=False, separators=(",", ":")))
bad = dict(p); bad.pop("identifier")
open(sys.argv[3], "w", encoding="utf-8").write(json.dumps(bad, ensure_ascii=False, separators=(",", ":")))
PY
  "$gateway_bin" validate --package "$testdata/de-basisprofil-r4/conformance" --package "$isik/conformance" \
    "$work/patient-isik.json" > "$work/patient-isik.check" 2>&1 ||
    { echo "http_bench: the ISiK Patient is not valid:" >&2; cat "$work/patient-isik.check" >&2; exit 1; }
  status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/fhir+json' \
            --data-binary @"$work/patient-isik-invalid.json" "http://127.0.0.1:$validating_port/fhir/Patient")"
  [ "$status" = 422 ] || { echo "http_bench: the validating gateway answered $status (not 422) to a Patient claiming ISiKPatient without identifier" >&2; exit 1; }
  validated_body="$work/patient-isik.json"
else
  echo "http_bench: no ISiK test data under MEDICUS_TESTDATA ('$testdata'): the validated runs use R4 core only"
  validated_body="$work/patient.json"
fi
validated_bytes=$(wc -c < "$validated_body")
# The GETs' Patient, made with PUT: --max-created forgets only what POST created.
create_patient() {
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p["id"]="bench-get"; print(json.dumps(p))' "$work/patient.json" |
    curl -s -X PUT -H 'Content-Type: application/fhir+json' --data-binary @- \
      "http://127.0.0.1:$upstream_port/fhir/Patient/bench-get" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
id="$(create_patient)"
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
local f = io.open("$work/patient.json", "r"); wrk.body = f:read("*a"); f:close()
LUA
sed "s|$work/patient.json|$validated_body|" "$work/post.lua" > "$work/post-validated.lua"

# A constant-time upstream for the proxy-bound runs: nginx answering from memory with what the FHIR
# server answered above (body, ETag, Location or Content-Location, its URLs pointing at this upstream).
# Against the FHIR server, node's one thread sets the pace of both proxies (their ratio says little)
# and its garbage collections set every POST p99 (what a proxy adds drowns in them); here the proxies
# are the bottleneck, so throughput and added latency are the proxies' own.
# One self-signed ECDSA P-256 certificate, made here, for every TLS listener of this run: the proxies'
# and the constant upstream's.
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>"$work/tls/openssl.log" ||
  { echo "http_bench: openssl could not make the test certificate" >&2; cat "$work/tls/openssl.log" >&2; exit 1; }
static_port="$(free_port)"
static_tls_port="$(free_port)"  # the same constant upstream over HTTPS
mkdir -p "$work/static/logs"
curl -s -D "$work/static/get.head" -o "$work/static/get.body" "http://127.0.0.1:$upstream_port/fhir/Patient/$id"
curl -s -D "$work/static/post.head" -o "$work/static/post.body" -X POST -H 'Content-Type: application/fhir+json' \
  --data-binary @"$work/patient.json" "http://127.0.0.1:$upstream_port/fhir/Patient"
python3 - "$work/static" "$upstream_port" "$static_port" "$id" "$static_tls_port" "$work/tls" <<'PY2'
import sys
folder, upstream_port, static_port, patient_id, static_tls_port, tls = sys.argv[1:]
# Its URLs name the listener a request came to (nginx's $scheme and $server_port), as the FHIR
# server's own name it: plain on static_port, https on static_tls_port.
own_base = "$scheme://127.0.0.1:$server_port"
def reply(name):
    fields = {}
    for line in open(f"{folder}/{name}.head", encoding="latin-1").read().splitlines()[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip().replace(f"http://127.0.0.1:{upstream_port}", own_base)
    body = open(f"{folder}/{name}.body", encoding="utf-8").read()
    if "'" in body or "\\" in body or "$" in body:
        sys.exit("http_bench: the upstream's reply has characters the constant upstream's config cannot quote")
    return fields, body.replace(f"http://127.0.0.1:{upstream_port}", own_base)
get_fields, get_body = reply("get")
post_fields, post_body = reply("post")
open(f"{folder}/nginx.conf", "w", encoding="utf-8").write(f"""worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off; server_tokens off; etag off;
  # Requests that carry X-Bench-Check (the checks before the runs, not wrk's) are logged with the TLS
  # their connection negotiated and whether it resumed a session.
  map $http_x_bench_check $bench_check {{ "" 0; default 1; }}
  log_format tls '$http_x_bench_check $ssl_protocol $ssl_cipher $ssl_session_reused';
  keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fcgi; uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
  default_type "{get_fields['content-type']}";
  server {{
    listen 127.0.0.1:{static_port};
    listen 127.0.0.1:{static_tls_port} ssl;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {tls}/cert.pem; ssl_certificate_key {tls}/key.pem;
    access_log {folder}/logs/tls.log tls if=$bench_check;
    client_max_body_size 10m;
    location = /fhir/Patient/{patient_id} {{
      add_header ETag '{get_fields['etag']}'; add_header Content-Location '{get_fields['content-location']}';
      return 200 '{get_body}';
    }}
    location = /fhir/Patient {{
      add_header ETag '{post_fields['etag']}'; add_header Location '{post_fields['location']}';
      return 201 '{post_body}';
    }}
  }}
}}
""")
PY2
nginx -p "$work/static" -c "$work/static/nginx.conf" -g 'daemon off;' 2>"$work/static/stderr" &
pids+=($!)
static_pid=$!
nginx_static_port="$(free_port)"
start_nginx_proxy "$work/nginx-static" "$nginx_static_port" "$static_port"
nginx_static_pid=$!
gateway_static_port="$(free_port)"
write_gateway_conf "$work/gateway-static.yaml" "$gateway_static_port" "$static_port" "$work/gateway-static-access.log"
start_gateway gateway-static
gateway_static_pid=$!
# The same two proxies in front of the constant upstream, listening with TLS.
nginx_tls_port="$(free_port)"
start_nginx_proxy "$work/nginx-tls" "$nginx_tls_port" "$static_port" "$work/tls"
nginx_tls_pid=$!
gateway_tls_port="$(free_port)"
write_gateway_conf "$work/gateway-tls.yaml" "$gateway_tls_port" "$static_port" "$work/gateway-tls-access.log" "$work/tls"
start_gateway gateway-tls
gateway_tls_pid=$!
# And both with TLS in front of the node FHIR server, for the p99 an HTTPS proxy adds at a fixed rate.
nginx_tls_node_port="$(free_port)"
start_nginx_proxy "$work/nginx-tls-node" "$nginx_tls_node_port" "$upstream_port" "$work/tls"
gateway_tls_node_port="$(free_port)"
write_gateway_conf "$work/gateway-tls-node.yaml" "$gateway_tls_node_port" "$upstream_port" "$work/gateway-tls-node-access.log" "$work/tls"
start_gateway gateway-tls-node
# And both in front of the constant upstream over HTTPS (verified against the certificate above), clients
# plain: with their keep-alive pools, and without (each request opens a connection, so a TLS handshake
# per request; both resume the session the upstream issued before).
nginx_up_tls_port="$(free_port)"
start_nginx_proxy "$work/nginx-up-tls" "$nginx_up_tls_port" "$static_tls_port" "" "$work/tls"
nginx_up_tls_pid=$!
gateway_up_tls_port="$(free_port)"
write_gateway_conf "$work/gateway-up-tls.yaml" "$gateway_up_tls_port" "$static_tls_port" "$work/gateway-up-tls-access.log" "" "$work/tls"
start_gateway gateway-up-tls
gateway_up_tls_pid=$!
nginx_up_tls_nopool_port="$(free_port)"
start_nginx_proxy "$work/nginx-up-tls-nopool" "$nginx_up_tls_nopool_port" "$static_tls_port" "" "$work/tls" off
nginx_up_tls_nopool_pid=$!
gateway_up_tls_nopool_port="$(free_port)"
write_gateway_conf "$work/gateway-up-tls-nopool.yaml" "$gateway_up_tls_nopool_port" "$static_tls_port" \
  "$work/gateway-up-tls-nopool-access.log" "" "$work/tls" off
start_gateway gateway-up-tls-nopool
gateway_up_tls_nopool_pid=$!
# Both must reach it with the same TLS, and without a pool resume sessions: three requests through
# each, which the constant upstream logs with what their connections negotiated.
for proxy in nginx:$nginx_up_tls_port gateway:$gateway_up_tls_port nginx-nopool:$nginx_up_tls_nopool_port \
             gateway-nopool:$gateway_up_tls_nopool_port; do
  wait_http "http://127.0.0.1:${proxy#*:}/fhir/Patient/$id"
  for _ in 1 2 3; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Bench-Check: ${proxy%%:*}" "http://127.0.0.1:${proxy#*:}/fhir/Patient/$id")" = 200 ] ||
      { echo "http_bench: the ${proxy%%:*} proxy does not reach the HTTPS constant upstream" >&2; exit 1; }
  done
done
upstream_tls_of() { awk -v who="$1" '$1 == who { print $2, $3 }' "$work/static/logs/tls.log" | sort -u | paste -sd/; }
resumed_of() { awk -v who="$1" '$1 == who && $4 == "r"' "$work/static/logs/tls.log" | wc -l; }
nginx_up_tls="$(upstream_tls_of nginx-nopool)" gateway_up_tls="$(upstream_tls_of gateway-nopool)"
[ -n "$nginx_up_tls" ] && [ "$nginx_up_tls" = "$gateway_up_tls" ] && [ "$(upstream_tls_of nginx)" = "$nginx_up_tls" ] &&
  [ "$(upstream_tls_of gateway)" = "$nginx_up_tls" ] ||
  { echo "http_bench: towards the HTTPS upstream nginx negotiates '$nginx_up_tls' and the gateway '$gateway_up_tls': not the same TLS" >&2; exit 1; }
# (Four connections each, wait_http's first; a session cache per nginx worker, one for the gateway: at
# least two of the three checked must have resumed.)
[ "$(resumed_of nginx-nopool)" -ge 2 ] && [ "$(resumed_of gateway-nopool)" -ge 2 ] ||
  { echo "http_bench: without a pool, of 3 connections to the HTTPS upstream nginx resumed $(resumed_of nginx-nopool) and the gateway $(resumed_of gateway-nopool)" >&2; exit 1; }
wait_http "https://127.0.0.1:$nginx_tls_node_port/fhir/Patient/$id"
wait_http "https://127.0.0.1:$gateway_tls_node_port/fhir/Patient/$id"
wait_http "http://127.0.0.1:$static_port/fhir/Patient/$id"
wait_http "http://127.0.0.1:$nginx_static_port/fhir/Patient/$id"
wait_http "http://127.0.0.1:$gateway_static_port/fhir/Patient/$id"
wait_http "https://127.0.0.1:$nginx_tls_port/fhir/Patient/$id"
wait_http "https://127.0.0.1:$gateway_tls_port/fhir/Patient/$id"
# What each negotiates with an OpenSSL client like wrk's: the comparison holds only if it is the same.
negotiated() { openssl s_client -connect "127.0.0.1:$1" -servername 127.0.0.1 </dev/null 2>/dev/null | awk '/^New, /{ sub(/,$/, "", $2); print $2, $NF; exit }'; }
nginx_tls="$(negotiated "$nginx_tls_port")" gateway_tls="$(negotiated "$gateway_tls_port")"
[ -n "$nginx_tls" ] && [ "$nginx_tls" = "$gateway_tls" ] ||
  { echo "http_bench: nginx negotiates '$nginx_tls' and the gateway '$gateway_tls': not the same TLS" >&2; exit 1; }

# CPU time (user + system) of a process and its children (the nginx workers), in clock ticks.
cpu_ticks() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# The VM's CPU steal (time the hypervisor gave the vCPUs to others) over the whole run, from /proc/stat:
# when it is high, every figure here is noisier; it is printed with the summary.
cpu_totals() { awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print $9, total; exit }' /proc/stat; }
read -r steal_before total_before < <(cpu_totals)

# Nanoseconds a thread has been on a CPU (/proc/PID/schedstat).
on_cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat" 2>/dev/null || echo 0; }
declare -A rps_of cpu_of share_of
# When set, run() also prints the share of a core this (single-threaded) upstream was on a CPU.
share_pid=""
run() {  # key name url pid [script]
  local key="$1" name="$2" url="$3" pid="$4" script="${5:-}" out before after on_before=0 on_after=0 share=""
  [ -n "$share_pid" ] && on_before=$(on_cpu_ns "$share_pid")
  before=$(cpu_ticks "$pid")
  if [ -n "$script" ]; then out="$(timeout $((seconds + 30)) wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$script" "$url")"
  else out="$(timeout $((seconds + 30)) wrk -t2 -c"$connections" -d"${seconds}s" --latency "$url")"; fi
  after=$(cpu_ticks "$pid")
  if [ -n "$share_pid" ]; then
    on_after=$(on_cpu_ns "$share_pid")
    share="$(awk -v d=$((on_after - on_before)) -v s="$seconds" 'BEGIN { printf "%.2f", d / 1e9 / s }')"
    share_of[$key]="${share_of[$key]:-} $share"
  fi
  local rps p50 p99 errors requests cpu
  rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
  p50="$(awk '$1=="50%"{print $2}' <<<"$out")"
  p99="$(awk '$1=="99%"{print $2}' <<<"$out")"
  errors="$(awk '/Non-2xx/{print $4}' <<<"$out")"
  requests="$(awk '/requests in/{print $1}' <<<"$out")"
  cpu="$(awk -v t=$((after - before)) -v n="${requests:-0}" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }')"
  printf "%-34s %10s req/s   p50 %-9s p99 %-9s cpu %6s us/req   non-2xx %s%s\n" "$name" "$rps" "$p50" "$p99" "$cpu" "${errors:-0}" \
    "${share:+   upstream on CPU $share}"
  rps_of[$key]="${rps_of[$key]:-} $rps"
  cpu_of[$key]="${cpu_of[$key]:-} $cpu"
}
mean() {  # values [decimals, default 1]
  awk -v d="${2:-1}" '{ s = 0; for (i = 1; i <= NF; i++) s += $i; if (NF) printf "%." d "f", s / NF; else print 0 }' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

nginx_pid=${pids[1]} gateway_pid=${pids[2]} validating_pid=${pids[3]}
echo "http_bench: ${seconds}s per run, $rounds rounds, $connections connections, 2 wrk threads, $proxy_workers proxy workers each; upstream $upstream_port (node), POST body $patient_bytes bytes"
run direct "upstream direct  GET Patient" "http://127.0.0.1:$upstream_port/fhir/Patient/$id" "$upstream_pid"
# Each round runs nginx, gateway, gateway, nginx (and the same for the validated POST), so drift
# falls on both alike: other load on the machine.
closed_loop_rounds() {  # key_suffix nginx_port nginx_pid gateway_port gateway_pid [scheme, default http] [methods, default "GET POST"]
  local suffix="$1" ngx="$2" ngx_pid="$3" gw="$4" gw_pid="$5" scheme="${6:-http}" methods="${7:-GET POST}" round a b method path script
  for method in $methods; do
    path="/fhir/Patient/$id" script=""
    [ "$method" = POST ] && path="/fhir/Patient" script="$work/post.lua"
    local key="${method,,}$suffix"
    for round in $(seq 1 "$rounds"); do
      a=$((2 * round - 1)) b=$((2 * round))
      run "nginx_$key" "nginx            $method Patient ($a)" "$scheme://127.0.0.1:$ngx$path" "$ngx_pid" $script
      run "gateway_$key" "gateway          $method Patient ($a)" "$scheme://127.0.0.1:$gw$path" "$gw_pid" $script
      run "gateway_$key" "gateway          $method Patient ($b)" "$scheme://127.0.0.1:$gw$path" "$gw_pid" $script
      run "nginx_$key" "nginx            $method Patient ($b)" "$scheme://127.0.0.1:$ngx$path" "$ngx_pid" $script
    done
  done
}
share_pid="$upstream_pid"
closed_loop_rounds "" "$nginx_port" "$nginx_pid" "$gateway_port" "$gateway_pid"
for round in $(seq 1 "$rounds"); do
  run validating_post "gateway+validate POST Patient ($round)" "http://127.0.0.1:$validating_port/fhir/Patient" "$validating_pid" "$work/post-validated.lua"
  run nginx_post_v "nginx       POST same body ($round)" "http://127.0.0.1:$nginx_port/fhir/Patient" "$nginx_pid" "$work/post-validated.lua"
done
echo "validation on: enforce, $validation_label; POST body $validated_bytes bytes (nginx forwards the same body)"

echo
echo "proxy-bound: the same GET and POST against a constant-time upstream (nginx answering from memory with the FHIR server's replies)"
share_pid=""
run direct_static "constant upstream direct GET" "http://127.0.0.1:$static_port/fhir/Patient/$id" "$static_pid"
closed_loop_rounds _static "$nginx_static_port" "$nginx_static_pid" "$gateway_static_port" "$gateway_static_pid"
echo
echo "proxy-bound over HTTPS: the same runs, clients on TLS to both proxies ($nginx_tls on both), the constant upstream plain HTTP"
closed_loop_rounds _tls "$nginx_tls_port" "$nginx_tls_pid" "$gateway_tls_port" "$gateway_tls_pid" https
echo
echo "proxy-bound to an HTTPS upstream: clients plain HTTP, the constant upstream over TLS ($nginx_up_tls on both, certificate verified by both), pooled"
closed_loop_rounds _up_tls "$nginx_up_tls_port" "$nginx_up_tls_pid" "$gateway_up_tls_port" "$gateway_up_tls_pid"
echo "the same without a pool: a new upstream connection and TLS handshake per request (sessions resumed by both)"
closed_loop_rounds _up_tls_nopool "$nginx_up_tls_nopool_port" "$nginx_up_tls_nopool_pid" \
  "$gateway_up_tls_nopool_port" "$gateway_up_tls_nopool_pid" http GET

# Latency at a fixed rate (open loop: latency counts from each request's due time). Direct, nginx,
# direct again and the gateway take turns in 2 ms windows within one http_load run, each over its own
# connections: shorter than the upstream's stalls, so each stall spans windows of all of them. Each
# proxy's window follows a direct one, and its p99 is set against that direct window's: with the
# order direct, nginx, gateway the gateway's windows began while nginx's requests of the window
# before were still finishing, and the same gateway binary measured ~0.15 ms more p50 and up to
# 0.5 ms more p99 in the third place than in the second (A/A runs against the constant upstream).
declare -A p99_of added_of
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }
field() { awk -v name="$2" '{ for (i = 1; i < NF; i++) if ($i == name) print $(i + 1) }' <<<"$1"; }
latency_round() {  # method rate upstream_port nginx_port gateway_port key_suffix [body file] [proxy scheme, default http]
  local method="$1" rate="$2" up="$3" ngx="$4" gw="$5" suffix="$6" body="${7:-}" scheme="${8:-http}" out path
  path="/fhir/Patient/$id"; [ "$method" = POST ] && path="/fhir/Patient"
  local args=(--url "http://127.0.0.1:$up$path" --url "$scheme://127.0.0.1:$ngx$path"
              --url "http://127.0.0.1:$up$path" --url "$scheme://127.0.0.1:$gw$path"
              --rate "$rate" --seconds $((4 * seconds)) --window 0.002 --connections "$connections")
  [ -n "$body" ] && args+=(--method POST --header "Content-Type: application/fhir+json" --body "$body")
  out="$(timeout $((4 * seconds + 30)) "$load_bin" "${args[@]}" || true)"
  local names=(direct nginx direct2 gateway) labels=("upstream direct " "nginx           " "upstream direct " "gateway         ") k line
  local direct_p99=""
  for k in 0 1 2 3; do
    line="$(sed -n "$((k + 1))p" <<<"$out")"
    printf "%s %-5s @ %s/s  %s\n" "${labels[$k]}" "$method" "$rate" "${line#* }"
    local key="${names[$k]}_${method}$suffix" p99
    p99="$(field "$line" p99)"
    p99_of[$key]="${p99_of[$key]:-} $p99"
    if [ "$k" = 0 ] || [ "$k" = 2 ]; then direct_p99="$p99"
    elif [ -n "$p99" ] && [ -n "$direct_p99" ]; then
      added_of[$key]="${added_of[$key]:-} $(awk -v a="$p99" -v b="$direct_p99" 'BEGIN { printf "%.3f", a - b }')"
    fi
  done
}
get_rate=$(awk -v r="$(mean "${rps_of[gateway_get]}")" 'BEGIN { printf "%d", r / 2 }')
post_rate=$(awk -v r="$(mean "${rps_of[gateway_post]}")" 'BEGIN { printf "%d", r / 2 }')
# Each run starts from a fresh upstream on the same port; the proxies' pooled connections to the old
# one are gone, so a short closed-loop warm-up through each lets them find that out before anything is
# measured.
fresh_upstream() {
  kill "$upstream_pid" 2>/dev/null || true
  wait "$upstream_pid" 2>/dev/null || true
  start_upstream "$upstream_port"
  id="$(create_patient)"
  local warm_port
  for warm_port in "$nginx_port" "$gateway_port"; do
    timeout 30 wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$warm_port/fhir/Patient/$id" > /dev/null
  done
  for warm_port in "$nginx_tls_node_port" "$gateway_tls_node_port"; do
    timeout 30 wrk -t1 -c"$connections" -d1s "https://127.0.0.1:$warm_port/fhir/Patient/$id" > /dev/null
  done
}
echo
echo "fixed rate, half the gateway's peak (http_load, $connections connections per target), each run on a restarted upstream:"
echo "GET $get_rate/s, POST $post_rate/s; direct, nginx, direct, gateway take turns in 2 ms windows of one run; five runs each"
for round in 1 2 3 4 5; do
  fresh_upstream
  latency_round GET "$get_rate" "$upstream_port" "$nginx_port" "$gateway_port" ""
  fresh_upstream
  latency_round POST "$post_rate" "$upstream_port" "$nginx_port" "$gateway_port" "" "$work/patient.json"
done
echo
echo "the same over HTTPS: clients on TLS to both proxies (direct stays plain HTTP, so 'adds' includes TLS), same rates; five runs each"
for round in 1 2 3 4 5; do
  fresh_upstream
  latency_round GET "$get_rate" "$upstream_port" "$nginx_tls_node_port" "$gateway_tls_node_port" _tls "" https
  fresh_upstream
  latency_round POST "$post_rate" "$upstream_port" "$nginx_tls_node_port" "$gateway_tls_node_port" _tls "$work/patient.json" https
done
static_get_rate=$(awk -v r="$(mean "${rps_of[gateway_get_static]}")" 'BEGIN { printf "%d", r / 2 }')
static_post_rate=$(awk -v r="$(mean "${rps_of[gateway_post_static]}")" 'BEGIN { printf "%d", r / 2 }')
echo
echo "fixed rate, half the gateway's peak against the constant-time upstream: GET $static_get_rate/s, POST $static_post_rate/s; interleaved as above, five runs each"
for round in 1 2 3 4 5; do
  latency_round GET "$static_get_rate" "$static_port" "$nginx_static_port" "$gateway_static_port" _static
  latency_round POST "$static_post_rate" "$static_port" "$nginx_static_port" "$gateway_static_port" _static "$work/patient.json"
done

echo
echo "summary (means of the runs above)"
printf "%-28s %12s %12s %7s %11s %14s %14s   %s\n" "" "nginx req/s" "gateway r/s" "ratio" "rounds" "nginx cpu/req" "gw cpu/req" "target"
# The lowest and highest ratio of single rounds (gateway a+b over nginx a+b), from the rates in rps_of,
# which hold each key's runs in the order they ran.
round_spread() {  # nginx_key gateway_key runs_per_round
  awk -v n="${rps_of[$1]:-}" -v g="${rps_of[$2]:-}" -v k="$3" 'BEGIN {
    runs = split(n, nginx, " "); split(g, gateway, " "); m = 0
    for (i = 1; i + k - 1 <= runs; i += k) {
      sn = 0; sg = 0; for (j = i; j < i + k; j++) { sn += nginx[j]; sg += gateway[j] }
      if (sn > 0) { r = sg / sn; if (m == 0 || r < low) low = r; if (m == 0 || r > high) high = r; m++ }
    }
    if (m) printf "%.2f-%.2f", low, high; else print "-" }'
}
throughput_row() {  # label nginx_key gateway_key target [runs per round: show the round spread]
  local nginx_rps gateway_rps
  nginx_rps="$(mean "${rps_of[$2]}")" gateway_rps="$(mean "${rps_of[$3]}")"
  printf "%-28s %12s %12s %7s %11s %11s us %11s us   %s\n" "$1" "$nginx_rps" "$gateway_rps" "$(ratio "$gateway_rps" "$nginx_rps")" \
    "$( [ -n "${5:-}" ] && round_spread "$2" "$3" "$5" || echo -)" "$(mean "${cpu_of[$2]}")" "$(mean "${cpu_of[$3]}")" "$4"
}
throughput_row "GET (pass-through)" nginx_get gateway_get ">= 1.0" 2
throughput_row "POST (pass-through)" nginx_post gateway_post ">= 1.0" 2
throughput_row "GET (proxy-bound)" nginx_get_static gateway_get_static ">= 1.0" 2
throughput_row "POST (proxy-bound)" nginx_post_static gateway_post_static ">= 1.0" 2
throughput_row "GET (proxy-bound, HTTPS)" nginx_get_tls gateway_get_tls ">= 1.0" 2
throughput_row "POST (proxy-bound, HTTPS)" nginx_post_tls gateway_post_tls ">= 1.0" 2
throughput_row "GET (HTTPS upstream)" nginx_get_up_tls gateway_get_up_tls ">= 1.0" 2
throughput_row "POST (HTTPS upstream)" nginx_post_up_tls gateway_post_up_tls ">= 1.0" 2
throughput_row "GET (HTTPS upstream, no pool)" nginx_get_up_tls_nopool gateway_get_up_tls_nopool "-" 2
throughput_row "POST, validation on" nginx_post_v validating_post ">= 0.7"
printf "(against node, the share of a core node's thread was on a CPU: behind nginx GET %s, POST %s; behind the gateway GET %s, POST %s)\n" \
  "$(mean "${share_of[nginx_get]:-}" 2)" "$(mean "${share_of[nginx_post]:-}" 2)" "$(mean "${share_of[gateway_get]:-}" 2)" "$(mean "${share_of[gateway_post]:-}" 2)"
printf "%-28s %12s %12s %7s %14s %14s   %s\n" "" "nginx p99" "gateway p99" "" "nginx adds" "gateway adds" ""
for case in GET POST GET_tls POST_tls GET_static POST_static; do
  method=${case%_static} method=${method%_tls}
  rate=$get_rate label="$method p99 @ $rate/s"
  [ "$method" = POST ] && rate=$post_rate label="$method p99 @ $rate/s"
  [ "${case%_tls}" != "$case" ] && label="$label, HTTPS"
  [ "$case" = GET_static ] && label="$method p99 @ $static_get_rate/s, const."
  [ "$case" = POST_static ] && label="$method p99 @ $static_post_rate/s, const."
  printf "%-28s %9s ms %9s ms %7s %11s ms %11s ms   %s\n" "$label" "$(median "${p99_of[nginx_$case]}")" \
    "$(median "${p99_of[gateway_$case]}")" "" "$(median "${added_of[nginx_$case]}")" "$(median "${added_of[gateway_$case]}")" \
    "gateway adds <= 1 ms"
done
printf "(direct p99: GET %s ms, POST %s ms; per run, gateway adds: GET%s ms, POST%s ms; nginx adds: GET%s ms, POST%s ms)\n" \
  "$(median "${p99_of[direct_GET]}")" "$(median "${p99_of[direct_POST]}")" "${added_of[gateway_GET]}" "${added_of[gateway_POST]}" \
  "${added_of[nginx_GET]}" "${added_of[nginx_POST]}"
printf "(HTTPS: per run, gateway adds: GET%s ms, POST%s ms; nginx adds: GET%s ms, POST%s ms)\n" \
  "${added_of[gateway_GET_tls]:-}" "${added_of[gateway_POST_tls]:-}" "${added_of[nginx_GET_tls]:-}" "${added_of[nginx_POST_tls]:-}"
printf "(constant upstream: direct p99 GET %s ms, POST %s ms; per run, gateway adds: GET%s ms, POST%s ms; nginx adds: GET%s ms, POST%s ms)\n" \
  "$(median "${p99_of[direct_GET_static]}")" "$(median "${p99_of[direct_POST_static]}")" "${added_of[gateway_GET_static]}" \
  "${added_of[gateway_POST_static]}" "${added_of[nginx_GET_static]}" "${added_of[nginx_POST_static]}"
read -r steal_after total_after < <(cpu_totals)
awk -v s=$((steal_after - steal_before)) -v t=$((total_after - total_before)) \
  'BEGIN { if (t > 0) printf "(VM CPU steal during the run: %.1f%% of all CPU time)\n", 100 * s / t }'
echo "(rounds: the lowest and highest ratio of single rounds, gateway a+b over nginx a+b; TLS: $nginx_tls on both)"
echo "(cpu/req: user+system time of the proxy processes over the run / requests; 'adds': p99 through the proxy minus p99 direct in the same interleaved run, median of five runs)"
