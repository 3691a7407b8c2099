// FHIRPath functions that reach into the validator from an invariant: subsumes()/subsumedBy()
// (CodeSystem hierarchies of the loaded packages), elementDefinition() (core definitions) and
// slice() (the validator's slice matching), each run as a profile invariant on R4 core.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "medicus/profiles/invariant_engine.h"
#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
constexpr std::string_view kProfiles = R"json({"resourceType":"Bundle","type":"collection","entry":[
 {"resource":{"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/hooks-subsumes",
  "name":"HooksSubsumes","status":"active","kind":"resource","abstract":false,"type":"Observation",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","derivation":"constraint",
  "differential":{"element":[{"id":"Observation","path":"Observation","constraint":[{"key":"hk-sub","severity":"error",
   "human":"a coded value is the observation's code or below it",
   "expression":"value.ofType(CodeableConcept).subsumedBy(code)"}]}]}}},
 {"resource":{"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/hooks-subsumes-coding",
  "name":"HooksSubsumesCoding","status":"active","kind":"resource","abstract":false,"type":"Observation",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","derivation":"constraint",
  "differential":{"element":[{"id":"Observation","path":"Observation","constraint":[{"key":"hk-sup","severity":"error",
   "human":"the observation's code subsumes the first coding of the value",
   "expression":"value.ofType(CodeableConcept).exists() implies code.coding.first().subsumes(value.ofType(CodeableConcept).coding.first())"}]}]}}},
 {"resource":{"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/hooks-eldef",
  "name":"HooksElementDefinition","status":"active","kind":"resource","abstract":false,"type":"Patient",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","derivation":"constraint",
  "differential":{"element":[{"id":"Patient","path":"Patient","constraint":[
   {"key":"hk-ed1","severity":"error","human":"definitions as published",
    "expression":"elementDefinition().path = 'Patient' and gender.elementDefinition().binding.strength = 'required' and name.first().elementDefinition().path = 'Patient.name' and name.given.first().elementDefinition().path = 'HumanName.given'"},
   {"key":"hk-ed2","severity":"error","human":"a name is single (false: Patient.name repeats)",
    "expression":"name.exists() implies name.first().elementDefinition().max = '1'"}]}]}}},
 {"resource":{"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/hooks-slice",
  "name":"HooksSlice","status":"active","kind":"resource","abstract":false,"type":"Observation",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","derivation":"constraint",
  "differential":{"element":[{"id":"Observation","path":"Observation","constraint":[
   {"key":"hk-sl1","severity":"error","human":"a systolic component (as the bp profile slices it)",
    "expression":"component.where(slice('http://hl7.org/fhir/StructureDefinition/bp', 'SystolicBP')).exists()"},
   {"key":"hk-sl2","severity":"error","human":"the same, the slice named by element id",
    "expression":"component.slice('http://hl7.org/fhir/StructureDefinition/bp', 'Observation.component:SystolicBP').count() <= 1"}]}]}}},
 {"resource":{"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/hooks-slice-unknown",
  "name":"HooksSliceUnknown","status":"active","kind":"resource","abstract":false,"type":"Observation",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","derivation":"constraint",
  "differential":{"element":[{"id":"Observation","path":"Observation","constraint":[
   {"key":"hk-sl3","severity":"error","human":"a slice the bp profile does not have",
    "expression":"component.where(slice('http://hl7.org/fhir/StructureDefinition/bp', 'MeanBP')).exists()"}]}]}}},
 {"resource":{"resourceType":"CodeSystem","url":"http://example.org/CodeSystem/parts","name":"Parts","status":"active",
  "content":"complete","hierarchyMeaning":"part-of","property":[{"code":"subsumedBy","type":"code"}],
  "concept":[{"code":"car","concept":[{"code":"wheel"}]},{"code":"vehicle"},
   {"code":"truck","property":[{"code":"subsumedBy","valueCode":"vehicle"}]}]}}
]})json";

testing::ValidatorFixture& fixture() {
  static testing::ValidatorFixture f({{kProfiles, "invariant_hooks_test"}});
  return f;
}

// The issues of `rule` (element id ":" key), as text for failure messages.
std::string issuesOf(const fhir::Issues& issues, std::string_view rule) {
  std::string out;
  for (const auto& i : issues) {
    if (i.rule_id == rule) out += fhir::formatIssue(i) + "\n";
  }
  return out;
}
bool failed(const fhir::Issues& issues, std::string_view rule) {
  for (const auto& i : issues) {
    if (i.rule_id == rule && i.severity == fhir::Severity::Error) return true;
  }
  return false;
}
const fhir::Issue* notEvaluated(const fhir::Issues& issues, std::string_view rule) {
  for (const auto& i : issues) {
    if (i.rule_id == rule && i.message.find("could not be evaluated") != std::string::npos) return &i;
  }
  return nullptr;
}

std::string observation(std::string_view code, std::string_view value) {
  return R"({"resourceType":"Observation","status":"final","code":{"coding":[)" + std::string(code) +
         R"(]},"valueCodeableConcept":{"coding":[)" + std::string(value) + "]}}";
}
constexpr std::string_view kClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
std::string coding(std::string_view system, std::string_view code) {
  return R"({"system":")" + std::string(system) + R"(","code":")" + std::string(code) + R"("})";
}

ValidationOptions against(std::string_view url) {
  ValidationOptions options;
  options.profiles = {std::string(url)};
  return options;
}
bool haveEngine() { return fhirpathInvariantEngine() != nullptr; }
}  // namespace

TEST_CASE("subsumedBy() in an invariant follows the CodeSystem's concept nesting", "[validator][hooks]") {
  if (!haveEngine()) return;
  const auto options = against("http://example.org/StructureDefinition/hooks-subsumes");
  // condition-clinical (R4 core): active > recurrence, relapse; inactive > remission, resolved.
  auto below = fixture().validate(observation(coding(kClinical, "active"), coding(kClinical, "relapse")), options);
  CHECK_FALSE(failed(below, "Observation:hk-sub"));
  CHECK(issuesOf(below, "Observation:hk-sub").empty());
  auto equal = fixture().validate(observation(coding(kClinical, "active"), coding(kClinical, "active")), options);
  CHECK(issuesOf(equal, "Observation:hk-sub").empty());
  auto sibling = fixture().validate(observation(coding(kClinical, "active"), coding(kClinical, "resolved")), options);
  CHECK(failed(sibling, "Observation:hk-sub"));
  auto above = fixture().validate(observation(coding(kClinical, "relapse"), coding(kClinical, "active")), options);
  INFO(issuesOf(above, "Observation:hk-sub"));
  CHECK(failed(above, "Observation:hk-sub"));
}

TEST_CASE("subsumes() in an invariant: is-a as written, unknown codes and unavailable systems are errors", "[validator][hooks]") {
  if (!haveEngine()) return;
  const auto options = against("http://example.org/StructureDefinition/hooks-subsumes-coding");
  auto ok = fixture().validate(observation(coding(kClinical, "inactive"), coding(kClinical, "remission")), options);
  INFO(issuesOf(ok, "Observation:hk-sup"));
  CHECK(issuesOf(ok, "Observation:hk-sup").empty());
  auto no = fixture().validate(observation(coding(kClinical, "remission"), coding(kClinical, "inactive")), options);
  CHECK(failed(no, "Observation:hk-sup"));
  // SNOMED CT is not in the packages: no guess, the invariant is reported as not evaluated.
  auto snomed = fixture().validate(observation(coding("http://snomed.info/sct", "404684003"),
                                               coding("http://snomed.info/sct", "64572001")), options);
  const fhir::Issue* s = notEvaluated(snomed, "Observation:hk-sup");
  REQUIRE(s != nullptr);
  INFO(s->message);
  CHECK(s->message.find("http://snomed.info/sct is not available locally") != std::string::npos);
  CHECK_FALSE(failed(snomed, "Observation:hk-sup"));
  auto unknown = fixture().validate(observation(coding(kClinical, "active"), coding(kClinical, "dormant")), options);
  const fhir::Issue* u = notEvaluated(unknown, "Observation:hk-sup");
  REQUIRE(u != nullptr);
  CHECK(u->message.find("unknown code 'dormant'") != std::string::npos);
}

TEST_CASE("Terminology::subsumes: a hierarchy that is not is-a only counts subsumedBy", "[terminology][hooks]") {
  Terminology& tx = *fixture().tx;
  constexpr std::string_view parts = "http://example.org/CodeSystem/parts";
  auto nested = tx.subsumes(parts, "car", "wheel");  // part-of nesting: a wheel is no car
  REQUIRE(nested);
  CHECK_FALSE(*nested);
  auto property = tx.subsumes(parts, "vehicle", "truck");
  REQUIRE(property);
  CHECK(*property);
  auto reverse = tx.subsumes(parts, "truck", "vehicle");
  REQUIRE(reverse);
  CHECK_FALSE(*reverse);
  auto is_a = tx.subsumes(std::string(kClinical), "active", "recurrence");
  REQUIRE(is_a);
  CHECK(*is_a);
  CHECK_FALSE(tx.subsumes("http://loinc.org", "LP1", "LP2"));
}

TEST_CASE("elementDefinition() in an invariant gives the core ElementDefinition of the element", "[validator][hooks]") {
  if (!haveEngine()) return;
  const auto options = against("http://example.org/StructureDefinition/hooks-eldef");
  auto issues = fixture().validate(R"({"resourceType":"Patient","gender":"female",
      "name":[{"family":"Chalmers","given":["Peter","James"]},{"given":["Jim"]}]})", options);
  INFO(issuesOf(issues, "Patient:hk-ed1") + issuesOf(issues, "Patient:hk-ed2"));
  CHECK(issuesOf(issues, "Patient:hk-ed1").empty());
  // Patient.name has max '*': the second invariant is false, so the definition was really read.
  CHECK(failed(issues, "Patient:hk-ed2"));
  auto nameless = fixture().validate(R"({"resourceType":"Patient","gender":"male"})", options);
  // Without a name hk-ed1's name comparisons are empty, and so is the whole 'and': an invariant
  // holds only when it evaluates to true, so it fails. hk-ed2 guards with implies and holds.
  CHECK(failed(nameless, "Patient:hk-ed1"));
  CHECK(issuesOf(nameless, "Patient:hk-ed2").empty());
}

TEST_CASE("slice() in an invariant uses the validator's slice matching of the named profile", "[validator][hooks]") {
  if (!haveEngine()) return;
  const auto options = against("http://example.org/StructureDefinition/hooks-slice");
  auto bp = [](std::string_view loinc) {
    return R"({"resourceType":"Observation","status":"final","code":{"text":"bp"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":")" +
           std::string(loinc) + R"("}]},"valueQuantity":{"value":120,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]})";
  };
  auto systolic = fixture().validate(bp("8480-6"), options);
  INFO(issuesOf(systolic, "Observation:hk-sl1") + issuesOf(systolic, "Observation:hk-sl2"));
  CHECK(issuesOf(systolic, "Observation:hk-sl1").empty());
  CHECK(issuesOf(systolic, "Observation:hk-sl2").empty());
  auto diastolic = fixture().validate(bp("8462-4"), options);
  CHECK(failed(diastolic, "Observation:hk-sl1"));
  CHECK(issuesOf(diastolic, "Observation:hk-sl2").empty());

  auto unknown = fixture().validate(bp("8480-6"), against("http://example.org/StructureDefinition/hooks-slice-unknown"));
  const fhir::Issue* u = notEvaluated(unknown, "Observation:hk-sl3");
  REQUIRE(u != nullptr);
  CHECK(u->message.find("has no slice 'MeanBP'") != std::string::npos);
}
