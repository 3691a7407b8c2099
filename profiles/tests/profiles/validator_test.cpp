#include "medicus/profiles/validator.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "medicus/fhir/format.h"
#include "test_paths.h"
#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
using Fixture = testing::ValidatorFixture;

using testing::errors;
using testing::hasRule;
using testing::describe;
Fixture& fixture() {
  static Fixture f;
  return f;
}
}  // namespace

TEST_CASE("a valid Patient has no errors against core", "[validator]") {
  auto issues = fixture().validate(R"({"resourceType":"Patient","id":"p1","gender":"female",
    "name":[{"family":"Muster","given":["Erika"]}],"birthDate":"1970-01-01"})");
  INFO(describe(issues));
  CHECK(errors(issues) == 0);
}

TEST_CASE("required bindings reject codes outside the value set", "[validator]") {
  auto issues = fixture().validate(R"({"resourceType":"Patient","gender":"femme"})");
  INFO(describe(issues));
  CHECK(errors(issues) >= 1);
  CHECK(hasRule(issues, "Patient.gender:binding"));
  for (const auto& i : issues) {
    if (i.rule_id == "Patient.gender:binding") {
      CHECK(i.expression == "Patient.gender");
      CHECK(i.position.line == 1);
    }
  }
}

TEST_CASE("cardinality of the base definition is enforced", "[validator]") {
  // Observation.status and Observation.code are 1..1.
  auto issues = fixture().validate(R"({"resourceType":"Observation","valueString":"x"})");
  INFO(describe(issues));
  CHECK(hasRule(issues, "Observation.status:min"));
  CHECK(hasRule(issues, "Observation.code:min"));
}

TEST_CASE("profiles from meta.profile are applied: vital signs", "[validator]") {
  const char* good = R"({"resourceType":"Observation","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/heartrate"]},
    "status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
    "code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/1"},
    "effectiveDateTime":"2020-01-01","valueQuantity":{"value":60,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}})";
  auto issues = fixture().validate(good);
  INFO(describe(issues));
  CHECK(errors(issues) == 0);

  // Missing the VSCat category slice and the LOINC code slice: both slices report their minimum.
  const char* bad = R"({"resourceType":"Observation","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/heartrate"]},
    "status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},"subject":{"reference":"Patient/1"},
    "effectiveDateTime":"2020-01-01","valueQuantity":{"value":60,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}})";
  auto bad_issues = fixture().validate(bad);
  INFO(describe(bad_issues));
  CHECK(hasRule(bad_issues, "Observation.category:min"));
  CHECK(hasRule(bad_issues, "Observation.code.coding:HeartRateCode:min"));
}

TEST_CASE("an Observation with a vital sign code must conform to the core vital signs profile", "[validator]") {
  // SNOMED CT body temperature without the LOINC 8310-5 coding the bodytemp profile requires, and no
  // vital-signs category: the profile applies although meta.profile does not name it.
  const char* temp = R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://snomed.info/sct","code":"276885007"}]},"subject":{"reference":"Patient/1"},
    "effectiveDateTime":"2020-01-01","valueQuantity":{"value":36.5,"unit":"Cel","system":"http://unitsofmeasure.org","code":"Cel"}})";
  auto issues = fixture().validate(temp);
  INFO(describe(issues));
  CHECK(hasRule(issues, "validator.vital-signs"));
  CHECK(hasRule(issues, "Observation.code.coding:BodyTempCode:min"));
  CHECK(hasRule(issues, "Observation.category:min"));

  profiles::ValidationOptions off;
  off.vital_signs_profiles = false;
  auto plain = fixture().validate(temp, off);
  INFO(describe(plain));
  CHECK_FALSE(hasRule(plain, "validator.vital-signs"));
  CHECK(errors(plain) == 0);

  // Not a vital sign: nothing is added.
  auto other = fixture().validate(R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"valueString":"x"})");
  CHECK_FALSE(hasRule(other, "validator.vital-signs"));

  // Oxygen saturation with a FiO2 flow component in L/min: the vital signs units binding of
  // component.value[x] is extensible (published R4 erratum), a warning rather than an error.
  const char* spo2 = R"({"resourceType":"Observation","status":"final",
    "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
    "code":{"coding":[{"system":"http://loinc.org","code":"2708-6"}]},"subject":{"reference":"Patient/1"},
    "effectiveDateTime":"2020-01-01","valueQuantity":{"value":95,"unit":"%","system":"http://unitsofmeasure.org","code":"%"},
    "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"3151-8"}]},
      "valueQuantity":{"value":6,"unit":"L/min","system":"http://unitsofmeasure.org","code":"L/min"}}]})";
  auto sat = fixture().validate(spo2);
  INFO(describe(sat));
  CHECK(hasRule(sat, "validator.vital-signs"));
  CHECK(errors(sat) == 0);
}

TEST_CASE("a SearchParameter keeps the type and bases of the one it derives from, and its expression its bases",
          "[validator]") {
  auto sp = [](std::string_view base, std::string_view type, std::string_view expression) {
    return std::string(R"({"resourceType":"SearchParameter","url":"http://example.org/SearchParameter/n","name":"n",
      "derivedFrom":"http://hl7.org/fhir/SearchParameter/Organization-name","status":"active",
      "description":"d","code":"name","base":[")") + std::string(base) + R"("],"type":")" + std::string(type) +
      R"(","expression":")" + std::string(expression) + R"("})";
  };
  auto good = fixture().validate(sp("Organization", "string", "Organization.name | (Organization.alias)"));
  INFO(describe(good));
  CHECK_FALSE(hasRule(good, "SearchParameter.derivedFrom:type"));
  CHECK_FALSE(hasRule(good, "SearchParameter.derivedFrom:base"));
  CHECK_FALSE(hasRule(good, "SearchParameter.expression:base"));

  auto type = fixture().validate(sp("Organization", "token", "Organization.name"));
  CHECK(hasRule(type, "SearchParameter.derivedFrom:type"));
  CHECK_FALSE(hasRule(type, "SearchParameter.derivedFrom:base"));

  auto base = fixture().validate(sp("Patient", "string", "Organization.name | Organization.alias"));
  INFO(describe(base));
  CHECK(hasRule(base, "SearchParameter.derivedFrom:base"));
  size_t expression_errors = 0;
  for (const auto& i : base) expression_errors += i.rule_id == "SearchParameter.expression:base";
  CHECK(expression_errors == 1);  // once per expression

  // A union over several bases, and a part that starts with a function, are fine.
  auto multi = fixture().validate(R"({"resourceType":"SearchParameter","url":"http://example.org/SearchParameter/m",
    "name":"m","status":"active","description":"d","code":"m","base":["Patient","Practitioner"],"type":"string",
    "expression":"Patient.name.family | Practitioner.name.family | extension('http://example.org/x').value"})");
  INFO(describe(multi));
  CHECK_FALSE(hasRule(multi, "SearchParameter.expression:base"));
}

TEST_CASE("ele-1 is not reported again on an element whose only content was an unknown element", "[validator]") {
  auto issues = fixture().validate(R"({"resourceType":"Patient","contact":[{"nickname":"x"}]})");
  INFO(describe(issues));
  CHECK_FALSE(hasRule(issues, "Patient.contact:ele-1"));
  // An element that is empty in the source still fails ele-1.
  auto empty = fixture().validate(R"({"resourceType":"Patient","contact":[{}]})");
  INFO(describe(empty));
  CHECK(hasRule(empty, "Patient.contact:ele-1"));
}

TEST_CASE("caller-given profiles are applied and unknown ones reported", "[validator]") {
  ValidationOptions options;
  options.profiles = {"http://hl7.org/fhir/StructureDefinition/bp"};
  auto issues = fixture().validate(R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})", options);
  INFO(describe(issues));
  CHECK(hasRule(issues, "Observation.component:min"));
  options.profiles = {"http://example.org/nope"};
  auto unknown = fixture().validate(R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})", options);
  CHECK(hasRule(unknown, "validator.profile-unknown"));
}

TEST_CASE("entry profiles apply to the root Bundle's entries of their type, and to nothing else", "[validator]") {
  ValidationOptions options;
  options.entry_profiles = {"http://hl7.org/fhir/StructureDefinition/bp"};
  const char* bundle = R"({"resourceType":"Bundle","type":"batch","entry":[
    {"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"}},"request":{"method":"POST","url":"Observation"}}]})";
  auto issues = fixture().validate(bundle, options);
  INFO(describe(issues));
  CHECK(hasRule(issues, "Observation.component:min"));
  CHECK_FALSE(hasRule(issues, "validator.profile-type"));  // not applied to the Patient or the Bundle
  // Without them, the entry meets core alone.
  CHECK_FALSE(hasRule(fixture().validate(bundle), "Observation.component:min"));
  // Only entries of the root Bundle: the same Observation as the root resource is not concerned.
  CHECK_FALSE(hasRule(fixture().validate(R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})", options),
                      "Observation.component:min"));
}

TEST_CASE("unknown modifier extensions are errors, unknown extensions are reported", "[validator]") {
  auto issues = fixture().validate(R"({"resourceType":"Patient",
    "modifierExtension":[{"url":"http://example.org/mod","valueBoolean":true}],
    "extension":[{"url":"http://example.org/plain","valueBoolean":true}]})");
  INFO(describe(issues));
  CHECK(hasRule(issues, "extension.modifier-unknown"));
  CHECK(hasRule(issues, "extension.unknown"));
  CHECK(errors(issues) == 1);
}

TEST_CASE("known extensions are validated against their definition", "[validator]") {
  // patient-birthPlace takes an Address; a boolean is wrong.
  auto issues = fixture().validate(R"({"resourceType":"Patient","extension":[
    {"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueBoolean":true}]})");
  INFO(describe(issues));
  CHECK(errors(issues) >= 1);
  auto ok = fixture().validate(R"({"resourceType":"Patient","extension":[
    {"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"city":"Berlin"}}]})");
  INFO(describe(ok));
  CHECK(errors(ok) == 0);
}

TEST_CASE("Bundle entries are validated and fullUrl must match the id", "[validator]") {
  auto issues = fixture().validate(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://example.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"2","gender":"nope"}}]})");
  INFO(describe(issues));
  CHECK(hasRule(issues, "Bundle.entry.fullUrl:id-match"));
  CHECK(hasRule(issues, "Patient.gender:binding"));
}

// Correctness only; its time per entry against a 1,000-entry Bundle (linear handling) is measured by
// profiles_bench, not asserted here.
TEST_CASE("a 10,000-entry Bundle with references between entries validates", "[validator]") {
  std::string json = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  for (int i = 0; i < 10000; ++i) {
    if (i) json += ",\n";
    json += R"({"fullUrl":"http://ex.org/Patient/)" + std::to_string(i) + R"(","resource":{"resourceType":"Patient","id":")" +
            std::to_string(i) + R"(","gender":"male","link":[{"other":{"reference":"Patient/)" + std::to_string((i + 1) % 10000) +
            R"("},"type":"seealso"}]}})";
  }
  json += "]}";
  auto issues = fixture().validate(json);
  INFO(describe(issues).substr(0, 2000));
  CHECK(errors(issues) == 0);
}

TEST_CASE("invariants are evaluated when the FHIRPath engine is built in", "[validator]") {
  if (!fhirpathInvariantEngine()) { WARN("skipped: built without medicus::fhirpath"); return; }
  // pat-1: contact must have details or an organization.
  auto issues = fixture().validate(R"({"resourceType":"Patient","contact":[{"gender":"male"}]})");
  INFO(describe(issues));
  CHECK(hasRule(issues, "Patient.contact:pat-1"));
}

TEST_CASE("examples of the German profiles validate against their declared profiles", "[validator][german]") {
  if (!test::haveTestdata("isik-basismodul")) { WARN("skipped: isik-basismodul absent"); return; }
  Fixture f;
  REQUIRE(f.registry.load(test::testdata() + "/de-basisprofil-r4/conformance"));
  REQUIRE(f.registry.load(test::testdata() + "/isik-basismodul/conformance"));
  size_t files = 0, clean = 0;
  std::string report;
  for (std::string folder : {"/de-basisprofil-r4/examples", "/isik-basismodul/examples"}) {
    for (const auto& entry : std::filesystem::directory_iterator(test::testdata() + folder)) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      auto parsed = fhir::parseJson(text.str());
      if (!parsed.document) continue;
      ++files;
      fhir::Issues issues = parsed.issues;
      f.validator->validate(*parsed.document, {}, issues);
      if (errors(issues) == 0) ++clean;
      else report += entry.path().filename().string() + ":\n" + describe(issues);
    }
  }
  INFO(report);
  CHECK(files > 30);
  // Every publisher example should be clean; the known exceptions are listed in the report.
  CHECK(clean * 10 >= files * 7);
}

TEST_CASE("conformsTo() in an invariant terminates on its own profile and on resources linking each other",
          "[validator]") {
  if (!fhirpathInvariantEngine()) { WARN("skipped: built without medicus::fhirpath"); return; }
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  REQUIRE(registry.addResourceText(R"j({"resourceType":"StructureDefinition","id":"self","url":"http://x.test/sd/self",
    "name":"Self","status":"active","kind":"resource","abstract":false,"type":"Patient",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","derivation":"constraint",
    "differential":{"element":[{"id":"Patient","path":"Patient","constraint":[{"key":"rec-1","severity":"error",
    "human":"self","expression":"conformsTo('http://x.test/sd/self')"}]}]}})j", "self.json"));
  REQUIRE(registry.addResourceText(R"j({"resourceType":"StructureDefinition","id":"linked","url":"http://x.test/sd/linked",
    "name":"Linked","status":"active","kind":"resource","abstract":false,"type":"Patient",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","derivation":"constraint",
    "differential":{"element":[{"id":"Patient","path":"Patient","constraint":[{"key":"lnk-1","severity":"error",
    "human":"linked patients conform too","expression":"link.other.all(resolve().conformsTo('http://x.test/sd/linked'))"},
    {"key":"lnk-2","severity":"error","human":"linked patients have a name",
    "expression":"link.other.all(resolve().name.exists())"}]}]}})j", "linked.json"));
  ProfileStore store(registry);
  Terminology tx(registry);
  Validator validator(store, tx);
  auto run = [&](std::string_view json) {
    auto parsed = fhir::parseJson(json);
    REQUIRE(parsed.document);
    fhir::Issues issues = parsed.issues;
    validator.validate(*parsed.document, {}, issues);
    return issues;
  };

  auto self = run(R"({"resourceType":"Patient","id":"a","meta":{"profile":["http://x.test/sd/self"]}})");
  INFO(describe(self));
  CHECK(errors(self) == 0);

  const char* cyclic = R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://srv.test/fhir/Patient/a","resource":{"resourceType":"Patient","id":"a","name":[{"family":"A"}],
     "meta":{"profile":["http://x.test/sd/linked"]},"link":[{"other":{"reference":"Patient/b"},"type":"seealso"}]}},
    {"fullUrl":"http://srv.test/fhir/Patient/b","resource":{"resourceType":"Patient","id":"b",%NAME%
     "meta":{"profile":["http://x.test/sd/linked"]},"link":[{"other":{"reference":"Patient/a"},"type":"seealso"}]}}]})";
  std::string good = cyclic, bad = cyclic;
  good.replace(good.find("%NAME%"), 6, R"("name":[{"family":"B"}],)");
  bad.replace(bad.find("%NAME%"), 6, "");
  auto ok = run(good);
  INFO(describe(ok));
  CHECK(errors(ok) == 0);
  // b has no name: a fails lnk-2 and, since b does not conform, lnk-1; the cycle still ends.
  auto failing = run(bad);
  INFO(describe(failing));
  CHECK(hasRule(failing, "Patient:lnk-2"));
  CHECK(hasRule(failing, "Patient:lnk-1"));
}

TEST_CASE("a profile pass does not repeat base issues on elements whose names start with resource or contained",
          "[validator]") {
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  REQUIRE(registry.addResourceText(R"j({"resourceType":"StructureDefinition","id":"es","url":"http://x.test/sd/es",
    "name":"Es","status":"active","kind":"resource","abstract":false,"type":"ExampleScenario",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/ExampleScenario","derivation":"constraint",
    "differential":{"element":[{"id":"ExampleScenario.name","path":"ExampleScenario.name","min":1}]}})j", "es.json"));
  ProfileStore store(registry);
  Terminology tx(registry);
  Validator validator(store, tx);
  auto parsed = fhir::parseJson(R"({"resourceType":"ExampleScenario","status":"draft","name":"x",
    "meta":{"profile":["http://x.test/sd/es"]},
    "instance":[{"resourceId":"i1","resourceType":"NoSuchType"}],
    "contained":[{"resourceType":"Patient","gender":"femme"}]})");
  REQUIRE(parsed.document);
  fhir::Issues issues = parsed.issues;
  validator.validate(*parsed.document, {}, issues);
  INFO(describe(issues));
  size_t own = 0, nested = 0;
  for (const auto& i : issues) {
    own += i.rule_id == "ExampleScenario.instance.resourceType:binding";
    nested += i.rule_id == "Patient.gender:binding";
  }
  CHECK(own == 1);
  CHECK(nested == 1);
}

TEST_CASE("example and DICOM domains are told by the URL's host, not by a substring", "[validator]") {
  ValidationOptions no_examples;
  no_examples.allow_example_urls = false;
  auto example = [&](std::string_view url) {
    auto issues = fixture().validate(R"({"resourceType":"Patient","implicitRules":")" + std::string(url) + "\"}", no_examples);
    return hasRule(issues, "uri.example");
  };
  CHECK(example("http://example.org/rules"));
  CHECK(example("https://www.Example.org:8443/rules"));
  CHECK(example("http://user@acme.com/x"));
  CHECK_FALSE(example("http://example.org.evil.test/rules"));
  CHECK_FALSE(example("http://notexample.org/rules"));
  CHECK_FALSE(example("http://rules.test/example.org"));
  CHECK_FALSE(example("urn:example.org"));

  ValidationOptions strict;
  strict.allow_unknown_extensions = false;
  auto unknown = [&](std::string_view url) {
    auto issues = fixture().validate(R"({"resourceType":"Patient","extension":[{"url":")" + std::string(url) +
                                     R"(","valueString":"x"}]})", strict);
    INFO(describe(issues));
    return errors(issues) > 0;
  };
  CHECK_FALSE(unknown("http://dicom.nema.org/extension/x"));
  CHECK(unknown("http://evil.test/nema.org/x"));
  CHECK(unknown("http://nema.org.evil.test/x"));
}

TEST_CASE("a relative canonical is a warning (legal R4 uri), absolute and fragment canonicals are silent", "[validator]") {
  auto check = [](std::string_view canonical) {
    return fixture().validate(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":")" +
                              std::string(canonical) + "\"}");
  };
  auto relative = check("Questionnaire/gcs");
  INFO(describe(relative));
  CHECK(hasRule(relative, "canonical.absolute"));
  CHECK(errors(relative) == 0);
  for (const auto* fine : {"http://hl7.org/fhir/Questionnaire/gcs|1.0", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}) {
    auto issues = check(fine);
    INFO(fine << describe(issues));
    CHECK_FALSE(hasRule(issues, "canonical.absolute"));
    CHECK(errors(issues) == 0);
  }
}

TEST_CASE("an element context matches elements defined by contentReference to it", "[validator]") {
  // operationdefinition-allowed-type has the context OperationDefinition.parameter; parameter.part
  // (and part.part) are defined as #OperationDefinition.parameter, so it may be used on them too.
  auto operation = [](std::string_view parameter_extension, std::string_view part_extension) {
    return fixture().validate(
        std::string(R"({"resourceType":"OperationDefinition","name":"x","status":"draft","kind":"operation","code":"x",)"
                    R"("system":false,"type":false,"instance":false,"parameter":[{"name":"p","use":"out","min":0,"max":"1",)") +
        std::string(parameter_extension) + R"("part":[{"name":"q","use":"out","min":0,"max":"1",)" +
        std::string(part_extension) + R"("type":"string"}]}]})");
  };
  const std::string allowed = R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/operationdefinition-allowed-type","valueUri":"code"}],)";
  auto on_part = operation("", allowed);
  INFO(describe(on_part));
  CHECK_FALSE(hasRule(on_part, "extension.context"));
  CHECK(errors(on_part) == 0);
  // A context elsewhere still fails: structuredefinition-normative-version is for StructureDefinition
  // (widened, as R4 core uses it, to any artifact: a resource, not one of its parts).
  const std::string normative = R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version","valueCode":"4.0.1"}],)";
  auto elsewhere = operation("", normative);
  INFO(describe(elsewhere));
  CHECK(hasRule(elsewhere, "extension.context"));
}

TEST_CASE("core extensions used where the R4 specification itself puts them are not context errors", "[validator]") {
  // normative-version on an OperationDefinition (R4 core's own normative operations carry it).
  auto operation = fixture().validate(
      R"({"resourceType":"OperationDefinition","name":"x","status":"draft","kind":"operation","code":"x","system":false,)"
      R"("type":false,"instance":false,"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version","valueCode":"4.0.1"}]})");
  INFO(describe(operation));
  CHECK_FALSE(hasRule(operation, "extension.context"));
  // regex and fhir-type on ElementDefinition.type, as in every primitive's published snapshot.
  auto type = fixture().validate(
      R"({"resourceType":"StructureDefinition","url":"http://x.test/sd/s","name":"S","status":"draft","kind":"logical",)"
      R"("abstract":false,"type":"S","baseDefinition":"http://hl7.org/fhir/StructureDefinition/Element","derivation":"specialization",)"
      R"("differential":{"element":[{"id":"S","path":"S"},{"id":"S.value","path":"S.value","min":0,"max":"1","type":[{)"
      R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type","valueUrl":"string"},)"
      R"({"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"[^ ]+"}],)"
      R"("code":"http://hl7.org/fhirpath/System.String"}]}]}})");
  INFO(describe(type));
  CHECK_FALSE(hasRule(type, "extension.context"));
  // Elsewhere regex still needs its contexts: not on an Observation.
  auto observation = fixture().validate(
      R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
      R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"x"}]})");
  INFO(describe(observation));
  CHECK(hasRule(observation, "extension.context"));
}

TEST_CASE("an unresolvable meta.profile says which part fails: a doubled |version, an unloaded version, the url", "[validator]") {
  auto check = [](std::string_view profile) {
    auto issues = fixture().validate(R"({"resourceType":"Patient","meta":{"profile":[")" + std::string(profile) + "\"]}}");
    std::string message;
    for (const auto& i : issues) {
      if (i.rule_id == "validator.meta-profile-unknown") message = i.message;
    }
    INFO(describe(issues));
    CHECK(errors(issues) == 0);  // not checkable is a warning, never a crash or an error
    return message;
  };
  // The MII labor example's quirk: "...ServiceRequestLab|2026.0.0|2026.0.0".
  CHECK_THAT(check("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1|4.0.1"),
             Catch::Contains("not a valid canonical") && Catch::Contains("more than one '|'"));
  CHECK_THAT(check("http://hl7.org/fhir/StructureDefinition/Patient|9.9"),
             Catch::Contains("version 9.9 of http://hl7.org/fhir/StructureDefinition/Patient is not loaded (loaded: 4.0.1)"));
  CHECK_THAT(check("http://fhir.test/StructureDefinition/absent"), Catch::Contains("is not loaded (add its package"));
  CHECK(check("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1").empty());
}

TEST_CASE("ref-1 and dom-3 over contained resources: natively, one id set per container", "[validator]") {
  auto report = [](std::string_view contained, std::string_view rest) {
    return std::string(R"({"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"contained":[)") +
           std::string(contained) + "]" + std::string(rest) + "}";
  };
  const char* obs1 = R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}})";
  const char* obs2 = R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"}})";
  auto both = std::string(obs1) + "," + obs2;
  // Every contained resource referenced: neither fails.
  auto ok = fixture().validate(report(both, R"(,"result":[{"reference":"#o1"},{"reference":"#o2"}])"));
  INFO(describe(ok));
  CHECK_FALSE(hasRule(ok, "Reference:ref-1"));
  CHECK_FALSE(hasRule(ok, "DiagnosticReport:dom-3"));
  // A local reference to no contained resource fails ref-1; o2, referenced by nothing, fails dom-3.
  auto bad = fixture().validate(report(both, R"(,"result":[{"reference":"#o1"},{"reference":"#o3"}])"));
  INFO(describe(bad));
  CHECK(hasRule(bad, "Reference:ref-1"));
  CHECK(hasRule(bad, "DiagnosticReport:dom-3"));
  // Referenced from the narrative only, or referring to the container ("#"): dom-3 holds.
  auto narrative = fixture().validate(report(both, R"(,"text":{"status":"generated","div":
    "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href='#o2'>o2</a></div>"},"result":[{"reference":"#o1"}])"));
  INFO(describe(narrative));
  CHECK_FALSE(hasRule(narrative, "DiagnosticReport:dom-3"));
  auto back = fixture().validate(report(std::string(obs1) + R"(,{"resourceType":"Observation","id":"o2","status":"final",
    "code":{"text":"x"},"derivedFrom":[{"reference":"#"}]})", R"(,"result":[{"reference":"#o1"}])"));
  INFO(describe(back));
  CHECK_FALSE(hasRule(back, "DiagnosticReport:dom-3"));
  CHECK_FALSE(hasRule(back, "Reference:ref-1"));
  // A contained resource's reference to a sibling resolves against the container's ids.
  auto sibling = fixture().validate(report(std::string(obs1) + R"(,{"resourceType":"Observation","id":"o2","status":"final",
    "code":{"text":"x"},"hasMember":[{"reference":"#o1"}]})", R"(,"result":[{"reference":"#o2"}])"));
  INFO(describe(sibling));
  CHECK_FALSE(hasRule(sibling, "Reference:ref-1"));
  CHECK_FALSE(hasRule(sibling, "DiagnosticReport:dom-3"));
}
