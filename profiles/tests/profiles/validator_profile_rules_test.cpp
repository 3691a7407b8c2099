// Profile rules of the validator, one TEST_CASE per rule: slices inheriting the sliced element's
// constraints, additional bindings, value alternatives, extension re-slices, invariants with empty
// results, global profiles of ImplementationGuides, target profiles and reference resolution.
#include "medicus/profiles/validator.h"

#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "medicus/fhir/format.h"
#include "medicus/profiles/folder_resolver.h"
#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
using Fixture = testing::ValidatorFixture;

using testing::errors;
using testing::countRule;
using testing::describe;
}  // namespace

TEST_CASE("a slice inherits the constraints on the sliced element's children", "[validator][slicing]") {
  // Parameters.parameter.extension max 0 is said before the slices: it holds inside slice p1 as
  // well, and the slice's rule and the sliced element's are reported each.
  Fixture f({{R"j({"resourceType":"StructureDefinition","id":"pp","url":"http://x.test/sd/pp","name":"Pp",
    "status":"active","kind":"resource","abstract":false,"type":"Parameters","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Parameters","differential":{"element":[
      {"id":"Parameters.parameter","path":"Parameters.parameter","slicing":{"discriminator":[{"type":"value",
        "path":"name"}],"rules":"open"}},
      {"id":"Parameters.parameter.extension","path":"Parameters.parameter.extension","max":"0"},
      {"id":"Parameters.parameter:p1","path":"Parameters.parameter","sliceName":"p1","min":1,"max":"1"},
      {"id":"Parameters.parameter:p1.name","path":"Parameters.parameter.name","fixedString":"p1"}]}})j", "pp.json"}});
  ValidationOptions options;
  options.profiles = {"http://x.test/sd/pp"};
  auto issues = f.validate(R"({"resourceType":"Parameters","parameter":[
    {"extension":[{"url":"http://example.org/ext","valueString":"x"}],"name":"p1","valueString":"a"},
    {"extension":[{"url":"http://example.org/ext","valueString":"x"}],"name":"other","valueString":"b"}]})", options);
  INFO(describe(issues));
  CHECK(countRule(issues, "Parameters.parameter.extension:max") == 2);  // both items
  CHECK(countRule(issues, "Parameters.parameter:p1.extension:max") == 1);  // the slice's item
  CHECK(errors(issues) == 3);
}

TEST_CASE("additional bindings: required needs a coding in the value set, maximum every coding", "[validator][binding]") {
  const char* vs = R"j({"resourceType":"ValueSet","id":"ab","url":"http://x.test/vs/ab","status":"active",
    "compose":{"include":[{"system":"http://x.test/cs","concept":[{"code":"a"},{"code":"b"}]}]}})j";
  auto profile = [](std::string_view purpose, std::string_view more = {}) {
    return std::string(R"j({"resourceType":"StructureDefinition","id":"ob","url":"http://x.test/sd/ob","name":"Ob",
      "status":"active","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
        {"id":"Observation.code","path":"Observation.code","binding":{"strength":"example",
         "valueSet":"http://hl7.org/fhir/ValueSet/observation-codes","extension":[{
           "url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional",
           "extension":[{"url":"purpose","valueCode":")j") + std::string(purpose) +
           R"j("},{"url":"valueSet","valueCanonical":"http://x.test/vs/ab"})j" + std::string(more) + "]}]}}]}}";
  };
  auto run = [&](const std::string& sd, std::string_view codings) {
    Fixture f({{sd, "ob.json"}, {vs, "vs.json"}});
    ValidationOptions options;
    options.profiles = {"http://x.test/sd/ob"};
    auto issues = f.validate(R"({"resourceType":"Observation","status":"final","code":{"coding":[)" +
                             std::string(codings) + "]}}", options);
    INFO(describe(issues));
    return countRule(issues, "Observation.code:additional-binding");
  };
  const char* in = R"({"system":"http://x.test/cs","code":"a"})";
  const char* out = R"({"system":"http://x.test/cs","code":"z"})";
  CHECK(run(profile("required"), in) == 0);
  CHECK(run(profile("required"), out) == 1);
  CHECK(run(profile("current"), out) == 1);
  CHECK(run(profile("required"), std::string(in) + "," + out) == 0);  // one coding in the value set suffices
  CHECK(run(profile("maximum"), std::string(in) + "," + out) == 1);   // every coding must be in it
  CHECK(run(profile("preferred"), out) == 0);
  // Limited to a usage context: not applied.
  CHECK(run(profile("required", R"j(,{"url":"usage","valueUsageContext":{"code":{"system":
    "http://terminology.hl7.org/CodeSystem/usage-context-type","code":"focus"},"valueCodeableConcept":{"text":"x"}}})j"),
            out) == 0);
}

TEST_CASE("mustHaveValue and valueAlternatives: a primitive without a value needs a named alternative extension",
          "[validator][value-alternatives]") {
  auto profile = [](std::string_view extension) {
    return R"j({"resourceType":"StructureDefinition","id":"pa","url":"http://x.test/sd/pa","name":"Pa",
      "status":"active","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
        {"id":"Patient.active","path":"Patient.active","extension":[)j" + std::string(extension) + "]}]}}";
  };
  const std::string alternatives = profile(R"j({"url":
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives",
    "valueCanonical":"http://hl7.org/fhir/StructureDefinition/data-absent-reason"})j");
  const std::string must = profile(R"j({"url":
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.mustHaveValue","valueBoolean":true})j");
  auto run = [](const std::string& sd, std::string_view active) {
    Fixture f({{sd, "pa.json"}});
    ValidationOptions options;
    options.profiles = {"http://x.test/sd/pa"};
    auto issues = f.validate(R"({"resourceType":"Patient",)" + std::string(active) + "}", options);
    INFO(describe(issues));
    return countRule(issues, "Patient.active:value-alternatives") + countRule(issues, "Patient.active:must-have-value");
  };
  const char* absent = R"("_active":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason",
    "valueCode":"unknown"}]})";
  const char* null_flavor = R"("_active":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor",
    "valueCode":"MSK"}]})";
  CHECK(run(alternatives, R"("active":true)") == 0);
  CHECK(run(alternatives, absent) == 0);
  CHECK(run(alternatives, null_flavor) == 1);  // an extension, but not one of the alternatives
  CHECK(run(must, R"("active":true)") == 0);
  CHECK(run(must, absent) == 1);
}

TEST_CASE("slices discriminated by an extension's value, re-sliced per slice, with a dotted extension url",
          "[validator][slicing]") {
  // action sliced by extension('http://x.test/sd/kind').value; each slice re-slices the extension
  // slice (kind/Single) and fixes its value. The url's dots are inside the argument, not path steps.
  Fixture f({{R"j({"resourceType":"StructureDefinition","id":"kind","url":"http://x.test/sd/kind","name":"Kind",
    "status":"active","kind":"complex-type","abstract":false,"type":"Extension","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension","context":[{"type":"element",
    "expression":"PlanDefinition.action"}],"differential":{"element":[{"id":"Extension","path":"Extension"},
      {"id":"Extension.url","path":"Extension.url","fixedUri":"http://x.test/sd/kind"},
      {"id":"Extension.value[x]","path":"Extension.value[x]","type":[{"code":"code"}]}]}})j", "kind.json"},
    {R"j({"resourceType":"StructureDefinition","id":"pd","url":"http://x.test/sd/pd","name":"Pd","status":"active",
    "kind":"resource","abstract":false,"type":"PlanDefinition","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/PlanDefinition","differential":{"element":[
      {"id":"PlanDefinition.action","path":"PlanDefinition.action","slicing":{"discriminator":[{"type":"value",
        "path":"extension('http://x.test/sd/kind').value"}],"rules":"open"}},
      {"id":"PlanDefinition.action.extension:kind","path":"PlanDefinition.action.extension","sliceName":"kind",
        "type":[{"code":"Extension","profile":["http://x.test/sd/kind"]}]},
      {"id":"PlanDefinition.action:single","path":"PlanDefinition.action","sliceName":"single","min":1},
      {"id":"PlanDefinition.action:single.extension:kind/Single","path":"PlanDefinition.action.extension",
        "sliceName":"kind/Single","min":1,"max":"1","type":[{"code":"Extension","profile":["http://x.test/sd/kind"]}]},
      {"id":"PlanDefinition.action:single.extension:kind/Single.valueCode","path":"PlanDefinition.action.extension.valueCode",
        "fixedCode":"Single"},
      {"id":"PlanDefinition.action:single.title","path":"PlanDefinition.action.title","min":1},
      {"id":"PlanDefinition.action:alternate","path":"PlanDefinition.action","sliceName":"alternate","min":1},
      {"id":"PlanDefinition.action:alternate.extension:kind/Alternate","path":"PlanDefinition.action.extension",
        "sliceName":"kind/Alternate","min":1,"max":"1","type":[{"code":"Extension","profile":["http://x.test/sd/kind"]}]},
      {"id":"PlanDefinition.action:alternate.extension:kind/Alternate.valueCode",
        "path":"PlanDefinition.action.extension.valueCode","fixedCode":"Alternate"},
      {"id":"PlanDefinition.action:alternate.selectionBehavior","path":"PlanDefinition.action.selectionBehavior","min":1}
    ]}})j", "pd.json"}});
  ValidationOptions options;
  options.profiles = {"http://x.test/sd/pd"};
  auto validate = [&](std::string_view second_title) {
    return f.validate(R"({"resourceType":"PlanDefinition","status":"active","action":[
      {"extension":[{"url":"http://x.test/sd/kind","valueCode":"Single"}],"title":"a"},
      {"extension":[{"url":"http://x.test/sd/kind","valueCode":"Alternate"}],"selectionBehavior":"exactly-one")" +
                      std::string(second_title) + "}]}", options);
  };
  auto good = validate("");
  INFO(describe(good));
  CHECK(errors(good) == 0);
  // Each action lands in its own slice: the Alternate one is not held to the single slice's title.
  CHECK(countRule(good, "PlanDefinition.action:single.title:min") == 0);
  CHECK(countRule(good, "PlanDefinition.action:alternate:min") == 0);
}

TEST_CASE("an invariant whose result is empty does not hold (per-1 on a date against a dateTime)", "[validator][invariants]") {
  static Fixture f;
  auto period = [&](std::string_view start, std::string_view end) {
    auto issues = f.validate(R"({"resourceType":"Encounter","status":"finished","class":{"system":
      "http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"period":{"start":")" + std::string(start) +
                             R"(","end":")" + std::string(end) + R"("}})");
    INFO(describe(issues));
    return countRule(issues, "Period:per-1");
  };
  CHECK(period("2023-06-21T05:00:00Z", "2023-06-21T06:20:00Z") == 0);
  CHECK(period("2023-06-22T05:00:00Z", "2023-06-21T06:20:00Z") == 1);  // false
  CHECK(period("2023-06-20", "2023-06-21T06:20:00Z") == 0);  // the day before: true at day precision
  CHECK(period("2023-06-21", "2023-06-21T06:20:00Z") == 1);  // same day, other precision: empty, not met
}

TEST_CASE("the global profiles of a loaded ImplementationGuide apply to every resource of their type",
          "[validator][global-profiles]") {
  Fixture f({{R"j({"resourceType":"StructureDefinition","id":"named","url":"http://x.test/sd/named","name":"Named",
    "status":"active","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
      {"id":"Patient.name","path":"Patient.name","min":1}]}})j", "named.json"},
    {R"j({"resourceType":"ImplementationGuide","id":"ig","url":"http://x.test/ig","name":"Ig","status":"active",
    "packageId":"x.test.ig","fhirVersion":["4.0.1"],"global":[{"type":"Patient","profile":"http://x.test/sd/named"}]})j",
     "ig.json"}});
  auto nameless = f.validate(R"({"resourceType":"Patient","active":true})");
  INFO(describe(nameless));
  CHECK(countRule(nameless, "Patient.name:min") == 1);
  CHECK(countRule(nameless, "validator.global-profile") == 1);
  // Other types are not concerned, and the option turns the guide's profiles off.
  CHECK(errors(f.validate(R"({"resourceType":"Organization","name":"x"})")) == 0);
  ValidationOptions off;
  off.use_global_profiles = false;
  CHECK(countRule(f.validate(R"({"resourceType":"Patient","active":true})", off), "Patient.name:min") == 0);
}

namespace {
// Resources by "Type/id", parsed from JSON texts: a ReferenceResolver for the tests.
class MapResolver final : public ReferenceResolver {
 public:
  void add(std::string_view json) {
    auto parsed = fhir::parseJson(json);
    REQUIRE(parsed.document);
    const fhir::Node* root = parsed.document->root();
    std::string key = std::string(root->type()->name) + "/" + std::string(root->child("id")->value());
    docs_[key] = std::move(parsed.document);
  }
  const fhir::Node* resolve(std::string_view reference) override {
    ++calls;
    auto it = docs_.find(std::string(reference));
    return it == docs_.end() ? nullptr : it->second->root();
  }
  int calls = 0;

 private:
  std::map<std::string, std::unique_ptr<fhir::Document>> docs_;
};

// Patient.gender fixed to 'other'; Patient.link.other must be a Patient of this same profile.
const char* kCircleProfile = R"j({"resourceType":"StructureDefinition","id":"circle","url":"http://x.test/sd/circle",
  "name":"Circle","status":"active","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
    {"id":"Patient.gender","path":"Patient.gender","fixedCode":"other"},
    {"id":"Patient.link.other","path":"Patient.link.other","type":[{"code":"Reference",
      "targetProfile":["http://x.test/sd/circle"]}]}]}})j";

std::string linkedPatient(std::string_view id, std::string_view gender, std::string_view target) {
  return R"({"resourceType":"Patient","id":")" + std::string(id) + R"(","gender":")" + std::string(gender) +
         R"(","link":[{"other":{"reference":")" + std::string(target) + R"("},"type":"seealso"}]})";
}
}  // namespace

TEST_CASE("Reference.targetProfile: a target in the Bundle must conform to one of the profiles", "[validator][target-profile]") {
  Fixture f({{R"j({"resourceType":"StructureDefinition","id":"idp","url":"http://x.test/sd/idp","name":"Idp",
    "status":"active","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
      {"id":"Patient.identifier","path":"Patient.identifier","min":1}]}})j", "idp.json"},
    {R"j({"resourceType":"StructureDefinition","id":"obs","url":"http://x.test/sd/obs","name":"Obs",
    "status":"active","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
      {"id":"Observation.subject","path":"Observation.subject","type":[{"code":"Reference",
        "targetProfile":["http://x.test/sd/idp"]}]}]}})j", "obs.json"}});
  auto bundle = [&](std::string_view patient) {
    ValidationOptions options;
    options.use_meta_profiles = true;
    auto issues = f.validate(R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"http://x.test/Observation/o1","resource":{"resourceType":"Observation","id":"o1",
        "meta":{"profile":["http://x.test/sd/obs"]},"status":"final","code":{"text":"x"},
        "subject":{"reference":"Patient/p1"}}},
      {"fullUrl":"http://x.test/Patient/p1","resource":)" + std::string(patient) + "}]}", options);
    INFO(describe(issues));
    return countRule(issues, "Observation.subject:targetProfile");
  };
  CHECK(bundle(R"({"resourceType":"Patient","id":"p1","identifier":[{"value":"1"}]})") == 0);
  CHECK(bundle(R"({"resourceType":"Patient","id":"p1"})") == 1);
  // Two references to the same target: the verdict is reused, each reference is reported.
  ValidationOptions options;
  auto twice = f.validate(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://x.test/Observation/o1","resource":{"resourceType":"Observation","id":"o1",
      "meta":{"profile":["http://x.test/sd/obs"]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}},
    {"fullUrl":"http://x.test/Observation/o2","resource":{"resourceType":"Observation","id":"o2",
      "meta":{"profile":["http://x.test/sd/obs"]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}},
    {"fullUrl":"http://x.test/Patient/p1","resource":{"resourceType":"Patient","id":"p1"}}]})", options);
  INFO(describe(twice));
  CHECK(countRule(twice, "Observation.subject:targetProfile") == 2);
  CHECK(countRule(twice, "Observation.subject:targetProfile-detail") == 2);
}

TEST_CASE("a ReferenceResolver supplies external targets; targets linking back are taken to conform",
          "[validator][target-profile]") {
  Fixture f({{kCircleProfile, "circle.json"}});
  ValidationOptions options;
  options.profiles = {"http://x.test/sd/circle"};
  MapResolver resolver;
  resolver.add(linkedPatient("bad-target", "male", "Patient/nobody"));
  resolver.add(linkedPatient("back", "other", "Patient/source"));
  options.reference_resolver = &resolver;

  // The target is a male Patient: it does not meet the profile's fixed gender.
  auto bad = f.validate(linkedPatient("source", "other", "Patient/bad-target"), options);
  INFO(describe(bad));
  CHECK(countRule(bad, "Patient.link.other:targetProfile") == 1);
  CHECK(countRule(bad, "Patient.link.other:targetProfile-detail") == 1);
  CHECK(errors(bad) == 1);
  // The target links back to the resource under validation: no endless loop, and it conforms.
  auto circle = f.validate(linkedPatient("source", "other", "Patient/back"), options);
  INFO(describe(circle));
  CHECK(errors(circle) == 0);
  // Unknown targets are not errors here (nothing to check), and without a resolver nothing is looked up.
  CHECK(errors(f.validate(linkedPatient("source", "other", "Patient/unknown"), options)) == 0);
  const int calls = resolver.calls;
  options.reference_resolver = nullptr;
  CHECK(errors(f.validate(linkedPatient("source", "other", "Patient/bad-target"), options)) == 0);
  CHECK(resolver.calls == calls);
}

namespace {
// Observation.status fixed to 'final'; every hasMember must be an Observation of this same profile.
const char* kMemberLoopProfile = R"j({"resourceType":"StructureDefinition","id":"loop","url":"http://x.test/sd/loop",
  "name":"Loop","status":"active","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
    {"id":"Observation.status","path":"Observation.status","fixedCode":"final"},
    {"id":"Observation.hasMember","path":"Observation.hasMember","type":[{"code":"Reference",
      "targetProfile":["http://x.test/sd/loop"]}]}]}})j";

// A batch of n Observations claiming that profile, each naming all the others in hasMember.
std::string memberClique(size_t n, size_t amended) {
  auto url = [](size_t i) { return "urn:uuid:0c3e1b4a-3333-4d2e-9d7a-" + std::string(12 - std::to_string(i).size(), '0') + std::to_string(i); };
  std::string entries;
  for (size_t i = 0; i < n; ++i) {
    std::string members;
    for (size_t j = 0; j < n; ++j) {
      if (j != i) members += std::string(members.empty() ? "" : ",") + R"({"reference":")" + url(j) + R"("})";
    }
    entries += std::string(entries.empty() ? "" : ",") + R"({"fullUrl":")" + url(i) + R"(","resource":{
      "resourceType":"Observation","meta":{"profile":["http://x.test/sd/loop"]},"status":")" +
               (i == amended ? "amended" : "final") + R"(","code":{"text":"x"},"hasMember":[)" + members +
               R"(]},"request":{"method":"POST","url":"Observation"}})";
  }
  return R"({"resourceType":"Bundle","type":"batch","entry":[)" + entries + "]}";
}
}  // namespace

TEST_CASE("targets that all name each other are tried once each, not once per path through them",
          "[validator][target-profile]") {
  // Trying every (target, profile) pair again whenever its verdict rested on a circle's assumption
  // made this n! trials (n = 9 took a minute); each pair now is tried once.
  Fixture f({{kMemberLoopProfile, "loop.json"}});
  constexpr size_t n = 16;
  auto valid = f.validate(memberClique(n, n));
  INFO(describe(valid));
  CHECK(errors(valid) == 0);
  // One of them breaks the profile: every Observation names a target that does not conform (it, or
  // one naming it), the amended one included.
  auto amended = f.validate(memberClique(n, 3));
  INFO(describe(amended));
  CHECK(countRule(amended, "Observation.status:fixed") == 1);
  CHECK(countRule(amended, "Observation.hasMember:targetProfile") == n * (n - 1));
}

TEST_CASE("slices by resolve() profile over targets that name each other are tried once each",
          "[validator][target-profile][slicing]") {
  // hasMember sliced by the profile of what it resolves to, the slice's targets of this same profile:
  // matching a slice tried the target, which matched its own hasMember against the slice, ... down
  // to max_depth (6 Observations took more than 100 s).
  std::string sliced = kMemberLoopProfile;
  const std::string member = R"({"id":"Observation.hasMember","path":"Observation.hasMember","type")";
  sliced.replace(sliced.find(member), member.size(), R"j({"id":"Observation.hasMember","path":"Observation.hasMember",
    "slicing":{"discriminator":[{"type":"profile","path":"resolve()"}],"rules":"open"}},
    {"id":"Observation.hasMember:m","path":"Observation.hasMember","sliceName":"m","type")j");
  Fixture f({{sliced, "sliced.json"}});
  constexpr size_t n = 16;
  auto valid = f.validate(memberClique(n, n));
  INFO(describe(valid));
  CHECK(errors(valid) == 0);
  // The amended one breaks the profile itself; the others' references to it fall outside the open
  // slice and so break nothing.
  auto amended = f.validate(memberClique(n, 3));
  INFO(describe(amended));
  CHECK(countRule(amended, "Observation.status:fixed") == 1);
  CHECK(errors(amended) == 1);
}

TEST_CASE("target profiles from an indexed package are checked (their derivation is in the definition)",
          "[validator][target-profile]") {
  // R4 core comes with a .index.json, which does not list derivation: vitalsigns is a constraint all
  // the same, so a heart rate's hasMember must be a vital signs Observation (Reference(vitalsigns | ...)).
  auto bundle = [](bool member_has_category) {
    const std::string category = member_has_category ? R"("category":[{"coding":[{"system":
      "http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],)" : "";
    return R"({"resourceType":"Bundle","type":"collection","entry":[
      {"fullUrl":"http://x.test/Observation/hr","resource":{"resourceType":"Observation","id":"hr","status":"final",
        "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
        "code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/x"},
        "effectiveDateTime":"2026-01-01","valueQuantity":{"value":70,"unit":"/min","system":"http://unitsofmeasure.org",
        "code":"/min"},"hasMember":[{"reference":"Observation/member"}]}},
      {"fullUrl":"http://x.test/Observation/member","resource":{"resourceType":"Observation","id":"member","status":"final",)" +
           category + R"("code":{"text":"x"},"subject":{"reference":"Patient/x"},"effectiveDateTime":"2026-01-01",
        "valueString":"x"}}]})";
  };
  static Fixture f;
  auto vital = f.validate(bundle(true));
  INFO(describe(vital));
  CHECK(countRule(vital, "Observation.hasMember:targetProfile") == 0);
  auto plain = f.validate(bundle(false));  // vitalsigns wants the vital-signs category
  INFO(describe(plain));
  CHECK(countRule(plain, "Observation.hasMember:targetProfile") == 1);
}

TEST_CASE("FolderResolver finds Type/id in a folder by file name and checks the file holds that resource",
          "[validator][target-profile]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("medicus-folder-resolver-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto write = [&](const std::string& name, std::string_view text) { std::ofstream(dir / name) << text; };
  write("Patient-bad-target.json", linkedPatient("bad-target", "male", "Patient/nobody"));
  write("back.xml", R"(<Patient xmlns="http://hl7.org/fhir"><id value="back"/><gender value="other"/>
    <link><other><reference value="Patient/source"/></other><type value="seealso"/></link></Patient>)");
  write("Patient-mislabelled.json", R"({"resourceType":"Patient","id":"someone-else"})");
  FolderResolver resolver(dir.string());
  REQUIRE(resolver.resolve("Patient/bad-target"));
  CHECK(resolver.resolve("http://server.test/fhir/Patient/bad-target/_history/2") == resolver.resolve("Patient/bad-target"));
  REQUIRE(resolver.resolve("Patient/back"));  // by id alone, XML
  CHECK(resolver.resolve("Patient/mislabelled") == nullptr);  // the file holds another id
  CHECK(resolver.resolve("Observation/back") == nullptr);     // and another type
  CHECK(resolver.resolve("Patient/..") == nullptr);
  CHECK(resolver.resolve("no-slash") == nullptr);

  Fixture f({{kCircleProfile, "circle.json"}});
  ValidationOptions options;
  options.profiles = {"http://x.test/sd/circle"};
  options.reference_resolver = &resolver;
  CHECK(errors(f.validate(linkedPatient("source", "other", "Patient/bad-target"), options)) == 1);
  CHECK(errors(f.validate(linkedPatient("source", "other", "Patient/back"), options)) == 0);
  fs::remove_all(dir);
}
