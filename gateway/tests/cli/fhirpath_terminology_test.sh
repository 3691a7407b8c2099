#!/usr/bin/env bash
# `medicus-gateway fhirpath --package core`: memberOf() and subsumes()/subsumedBy() answered from the
# ValueSets and CodeSystems of R4 core (from the package cache); without --package they are errors.
#   fhirpath_terminology_test.sh MEDICUS_GATEWAY
set -euo pipefail
gateway="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/condition.json" <<'JSON'
{"resourceType":"Condition","subject":{"reference":"Patient/1"},
 "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"},
                             {"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"relapse"}]},
 "code":{"coding":[{"system":"http://snomed.info/sct","code":"39065001"},{"system":"http://snomed.info/sct","code":"64572001"}]}}
JSON
fail() { echo "FHIRPATH TERMINOLOGY TEST FAILED: $1"; exit 1; }
expect() {  # expected stdout, expected exit code, arguments...
  local want="$1" want_rc="$2" got rc=0
  shift 2
  got=$("$gateway" fhirpath "$@" 2>"$work/stderr") || rc=$?
  [ "$rc" = "$want_rc" ] || fail "fhirpath $* exited $rc, expected $want_rc ($(cat "$work/stderr"))"
  [ "$got" = "$want" ] || fail "fhirpath $* printed '$got', expected '$want'"
}
f="$work/condition.json"
t='[{"type":"boolean","value":true}]'
n='[{"type":"boolean","value":false}]'
# condition-clinical nests relapse under active.
expect "$t" 0 --package core "clinicalStatus.coding[0].subsumes(clinicalStatus.coding[1])" "$f"
expect "$n" 0 --package core "clinicalStatus.coding[1].subsumes(clinicalStatus.coding[0])" "$f"
expect "$t" 0 --package core "clinicalStatus.coding[1].subsumedBy(clinicalStatus.coding[0])" "$f"
expect "$t" 0 --package core "clinicalStatus.memberOf('http://hl7.org/fhir/ValueSet/condition-clinical')" "$f"
expect "$n" 0 --package core "clinicalStatus.memberOf('http://hl7.org/fhir/ValueSet/allergyintolerance-clinical')" "$f"
# SNOMED CT is not in the packages: an evaluation error naming the system, not a guess.
expect "" 1 --package core "code.coding[0].subsumes(code.coding[1])" "$f"
grep -q "http://snomed.info/sct is not available locally" "$work/stderr" || fail "SNOMED CT error: $(cat "$work/stderr")"
# Without --package there is no terminology.
expect "" 1 "clinicalStatus.coding[0].subsumes(clinicalStatus.coding[1])" "$f"
expect "" 2 --package no.such.package#9.9.9 "1"
echo "fhirpath terminology test passed"
