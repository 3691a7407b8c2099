#!/usr/bin/env bash
# Installs the end-to-end tests' upstream FHIR server (@medplum/fhir-router, pinned in package-lock.json)
# into scripts/e2e/node_modules. Called from scripts/setup.sh; idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -f "$here/node_modules/.package-lock.json" ] && cmp -s "$here/package-lock.json" "$here/node_modules/.medicus-lock"; then
  echo "setup: e2e FHIR server already installed in $here/node_modules"
  exit 0
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
cp "$here/package-lock.json" "$here/node_modules/.medicus-lock"
echo "setup: e2e FHIR server installed in $here/node_modules"
