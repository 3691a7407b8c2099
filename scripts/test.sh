#!/usr/bin/env bash
# The README's test command: set-up, build, then every test (unit, fuzz corpus replay, conformance
# suites on ../shared/testdata, end-to-end). Ends with ctest's summary line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/build.sh
export MEDICUS_TESTDATA="${MEDICUS_TESTDATA:-$(cd .. && pwd)/shared/testdata}"
cd build
ctest --output-on-failure -j"${MEDICUS_TEST_JOBS:-2}" --timeout 900
