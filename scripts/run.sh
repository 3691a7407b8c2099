#!/usr/bin/env bash
# The README's run command: set-up, build, then the gateway's main job on its embedded default.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/build.sh
if [ -x build/bin/medicus-gateway ] && build/bin/medicus-gateway --help | grep -q '^  serve '; then
  exec build/bin/medicus-gateway serve "$@"
fi
# Until the server is wired in: convert the bundled sample Patient from JSON to XML and back.
build/bin/medicus-gateway convert --pretty examples/patient-example.json
