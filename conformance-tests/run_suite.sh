#!/usr/bin/env bash
# ctest wrapper: run_suite.sh BINARY SUITE --data RELATIVE_DIR [options...]
# Resolves --data against $MEDICUS_TESTDATA and exits 77 (skipped) with a clear message when absent.
set -u
bin="$1"; shift
suite="$1"; shift
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--data" ]; then
    dir="${MEDICUS_TESTDATA:-../shared/testdata}/$2"
    if [ ! -d "$dir" ]; then
      echo "SKIPPED: test data $dir is absent (set MEDICUS_TESTDATA to the shared testdata folder)"
      exit 77
    fi
    args+=(--data "$dir"); shift 2
  else
    args+=("$1"); shift
  fi
done
exec "$bin" "$suite" "${args[@]}"
