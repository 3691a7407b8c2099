#!/usr/bin/env bash
# Every gateway config the repository ships passes `check-config`: gateway/config/*.yaml, the compose
# setup's docker/gateway.yaml (its relative `maps` reaches mappers/maps through the docker/maps link, as
# /etc/medicus/maps in the image), and each ```yaml snippet of the Markdown docs. A snippet that is one
# section (the README's `hl7v2:` block) is checked as the documented sample gateway/config/gateway.yaml
# extended by it, from that folder, so its relative paths mean what the README says. The embedded default
# of `serve` must be gateway/config/default.yaml. Also: a missing certificate fails check-config and serve with file:line.
#   shipped_configs_test.sh MEDICUS_GATEWAY SOURCE_DIR
set -euo pipefail
gateway="$(realpath "$1")"
src="$(realpath "$2")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "SHIPPED CONFIG TEST FAILED: $1"
  exit 1
}
check() {  # file, what
  if ! "$gateway" check-config "$1" > "$work/out" 2>&1; then
    cat "$work/out"
    fail "check-config refused $2"
  fi
  grep -q ": ok (" "$work/out" || fail "check-config did not say ok for $2"
  echo "ok: $2"
}

checked=0
for file in "$src"/gateway/config/*.yaml "$src"/docker/gateway.yaml; do
  check "$file" "${file#"$src"/}"
  checked=$((checked + 1))
done
# docker/gateway.yaml from the image's point of view: from its own folder, as /etc/medicus/gateway.yaml.
(cd "$src/docker" && check gateway.yaml "docker/gateway.yaml from docker/")

# Snippets are checked where the sample lives (gateway/config), with the repository's mappers/ beside it.
mkdir -p "$work/gateway/config"
ln -s "$src/mappers" "$work/mappers"
snippets=0
while IFS= read -r -d '' doc; do
  n=0
  # Each ```yaml ... ``` block of the document, in order, into its own file.
  awk -v out="$work/snippet" '/^```yaml[[:space:]]*$/ {n++; file = out "-" n ".yaml"; printf "" > file; next}
                              /^```/ {file = ""; next}
                              file != "" {print > file}' "$doc"
  for snippet in "$work"/snippet-*.yaml; do
    [ -e "$snippet" ] || continue
    n=$((n + 1))
    name="${doc#"$src"/} yaml block $n"
    target="$work/gateway/config/snippet.yaml"
    if grep -q '^listeners:' "$snippet" && grep -q '^routes:' "$snippet"; then
      cp "$snippet" "$target"  # a whole config
    else
      # One section: the sample config with it added (a section the sample has already is replaced).
      section="$(grep -m1 -o '^[a-z0-9_]*:' "$snippet")"
      awk -v drop="$section" '/^[a-z0-9_]*:/ {skip = ($1 == drop)} !skip' "$src/gateway/config/gateway.yaml" > "$target"
      cat "$snippet" >> "$target"
    fi
    check "$target" "$name"
    rm -f "$snippet"
    snippets=$((snippets + 1))
  done
done < <(find "$src" -name '*.md' -not -path '*/node_modules/*' -not -path "$src/build*" -not -path '*/.git/*' -print0 | sort -z)
[ "$snippets" -gt 0 ] || fail "no yaml snippet found in the docs (the README shows the hl7v2 section)"

# The embedded default (kDefaultConfig in serve_command.cpp) is the shipped default.yaml, comments aside.
sed -n '/kDefaultConfig = R"(/,/^)";/p' "$src/gateway/src/cli/serve_command.cpp" | sed '1s/.*R"(//; $d' | grep -v '^#' > "$work/embedded.yaml"
grep -v '^#' "$src/gateway/config/default.yaml" > "$work/default.yaml"
diff -u "$work/default.yaml" "$work/embedded.yaml" || fail "gateway/config/default.yaml differs from serve's embedded default"

# check-config loads the certificates a config names: a missing one is refused with file:line and the fix.
sed 's|self_signed_if_missing: true|self_signed_if_missing: false|' "$src/docker/gateway.yaml" > "$work/gateway/config/no-cert.yaml"
if "$gateway" check-config "$work/gateway/config/no-cert.yaml" > /dev/null 2> "$work/err"; then
  fail "check-config accepted a listener whose certificate does not exist"
fi
grep -q "no-cert.yaml:[0-9]*:[0-9]*: listener 'https' tls: certificate '/var/lib/medicus/tls/gateway.crt' does not exist" "$work/err" ||
  { cat "$work/err"; fail "check-config did not name the missing certificate with file:line"; }
# serve says the same before it binds anything, and exits 1.
status=0
timeout 20 "$gateway" serve --config "$work/gateway/config/no-cert.yaml" > /dev/null 2> "$work/err" || status=$?
[ "$status" = 1 ] || { cat "$work/err"; fail "serve with a missing certificate exited $status, not 1"; }
grep -q "no-cert.yaml:[0-9]*:[0-9]*: listener 'https' tls: certificate '/var/lib/medicus/tls/gateway.crt' does not exist" "$work/err" ||
  { cat "$work/err"; fail "serve did not name the missing certificate with file:line"; }

echo "shipped configs test passed: $checked config files and $snippets doc snippets pass check-config"
