#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine: the packages the build and the tests need,
# and the FHIR R4 core definitions (4.0.1) in the standard FHIR package cache layout.
# Only Debian's and npm's registries are used.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

debian_packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev rapidjson-dev libpugixml-dev libssl-dev zlib1g-dev
  catch2 prometheus-cpp-dev libyaml-cpp-dev libsqlite3-dev libpq-dev libexpected-dev
  libmimalloc-dev  # the gateway executable's allocator (gateway/CMakeLists.txt)
  # set-up and tests: npm for the definitions and the upstream FHIR server, real peers for end-to-end runs
  nodejs npm openssl sqlite3 postgresql nginx wrk ca-certificates python3
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${debian_packages[@]}"; do
  # npm/nodejs may come from elsewhere (a node toolchain already on PATH): keep it.
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$here/install-fhir-core.sh"
"$here/e2e/install.sh"  # the gateway end-to-end tests' upstream FHIR server (npm, pinned)
echo "setup: done"
