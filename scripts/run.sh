#!/usr/bin/env bash
# The README's run command: set-up, build, then the gateway's main job on its embedded default:
# HTTPS on 127.0.0.1:8443 (self-signed certificate made at first start) and HTTP on 127.0.0.1:8080,
# forwarding /fhir to a FHIR server on 127.0.0.1:8103. When nothing listens there, a demo upstream
# (the in-memory FHIR server of the end-to-end tests) is started for the session and stopped with it.
# Extra arguments go to `medicus-gateway serve` (e.g. --config gateway/config/gateway.yaml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/build.sh

upstream_pid=""
cleanup() { [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ $# -eq 0 ] && ! (exec 3<>/dev/tcp/127.0.0.1/8103) 2>/dev/null; then
  node --experimental-websocket --no-warnings scripts/e2e/fhir-server.mjs --port 8103 > build/demo-upstream.log 2>&1 &
  upstream_pid=$!
  echo "run: demo upstream FHIR server (in memory) on http://127.0.0.1:8103/fhir, log build/demo-upstream.log"
fi
echo "run: try  curl -sk https://127.0.0.1:8443/fhir/metadata | head -c 300"
build/bin/medicus-gateway serve "$@"
