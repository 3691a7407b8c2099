// The validate stage with the medicus::profiles provider, built from YAML as users write it.
#include <catch2/catch.hpp>

#include <algorithm>

#include "medicus/fhir/format.h"
#include "medicus/gateway/config.h"
#include "medicus/gateway/profile_validator_provider.h"
#include "medicus/gateway/resource_validator.h"
#include "medicus/profiles/package_registry.h"
#include "validate_operation.h"

using namespace medicus;
using namespace medicus::gateway;

namespace {

bool coreAvailable() {
  static const bool available = [] {
    profiles::PackageRegistry registry;
    return static_cast<bool>(registry.loadCore());
  }();
  return available;
}

std::string allErrors(const ConfigErrors& errors) {
  std::string out;
  for (const auto& e : errors) out += formatConfigError(e) + "\n";
  return out;
}

auto loadWithStage(const std::string& stage_yaml) {
  installProfileValidatorProvider();
  std::string yaml = "listeners: [{ name: l, port: 0 }]\n"
                     "upstreams: [{ name: u, endpoints: [http://127.0.0.1:1/] }]\n"
                     "routes:\n"
                     "  - name: r\n"
                     "    stages:\n"
                     "      - validate: " + stage_yaml + "\n"
                     "    forward: { upstream: u }\n";
  return loadConfigText(yaml, "gw.yaml", "/etc/medicus");
}

struct Run {
  StageResult result;
  std::vector<std::pair<std::string, std::string>> headers;
};

Run runStage(const Stage& stage, const std::string& body) {
  fhir::ParseResult parsed = fhir::parse(body);
  REQUIRE(parsed.document);
  Exchange exchange;
  exchange.method = "POST";
  exchange.path = "/fhir/Patient";
  exchange.resource = parsed.document.get();
  Run run{stage.onRequest(exchange), exchange.response_headers};
  return run;
}

// gender "x" breaks the required binding; birthDate is fine.
const char* kBadPatient = R"({"resourceType":"Patient","gender":"x","birthDate":"1970-01-01"})";
const char* kGoodPatient = R"({"resourceType":"Patient","gender":"female","birthDate":"1970-01-01"})";

}  // namespace

TEST_CASE("validate stage, enforce: errors answer 422 with the issues and their expressions") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found ($MEDICUS_FHIR_PACKAGES or ~/.fhir/packages)");
    return;
  }
  auto config = loadWithStage("{ mode: enforce }");
  REQUIRE(config);
  const Stage& stage = *(*config)->routes[0].stages[0].stage;
  REQUIRE(stage.needsResource());

  Run bad = runStage(stage, kBadPatient);
  CHECK(bad.result.action == StageResult::Action::Respond);
  CHECK(bad.result.http_status == 422);
  REQUIRE_FALSE(bad.result.issues.empty());
  CHECK(std::any_of(bad.result.issues.begin(), bad.result.issues.end(), [](const fhir::Issue& i) {
    return i.severity <= fhir::Severity::Error && i.expression.find("Patient.gender") != std::string::npos;
  }));

  Run good = runStage(stage, kGoodPatient);
  CHECK(good.result.action == StageResult::Action::Continue);
}

TEST_CASE("validate stage, report: forwards and summarises the outcome in a response header") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found");
    return;
  }
  auto config = loadWithStage("{ mode: report }");
  REQUIRE(config);
  Run bad = runStage(*(*config)->routes[0].stages[0].stage, kBadPatient);
  CHECK(bad.result.action == StageResult::Action::Continue);
  REQUIRE(bad.headers.size() == 1);
  CHECK(bad.headers[0].first == "X-Medicus-Validation");
  CHECK_THAT(bad.headers[0].second, Catch::StartsWith("errors=") && !Catch::StartsWith("errors=0;"));
  CHECK_THAT(bad.headers[0].second, Catch::Contains("; warnings="));

  Run good = runStage(*(*config)->routes[0].stages[0].stage, kGoodPatient);
  REQUIRE(good.headers.size() == 1);
  CHECK_THAT(good.headers[0].second, Catch::StartsWith("errors=0;"));
}

TEST_CASE("validate stage, off: the request is untouched and needs no parsing") {
  auto config = loadWithStage("{ mode: off }");
  REQUIRE(config);
  const Stage& stage = *(*config)->routes[0].stages[0].stage;
  CHECK_FALSE(stage.needsResource());
  Run run = runStage(stage, kBadPatient);
  CHECK(run.result.action == StageResult::Action::Continue);
  CHECK(run.headers.empty());
}

TEST_CASE("validate stage: every entry of a transaction Bundle is validated") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found");
    return;
  }
  auto config = loadWithStage("{ mode: enforce }");
  REQUIRE(config);
  const char* bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:0c3e1b4a-1111-4d2e-9d7a-000000000001","resource":{"resourceType":"Patient","gender":"female"},
     "request":{"method":"POST","url":"Patient"}},
    {"fullUrl":"urn:uuid:0c3e1b4a-1111-4d2e-9d7a-000000000002","resource":{"resourceType":"Patient","gender":"x"},
     "request":{"method":"POST","url":"Patient"}}]})";
  Run run = runStage(*(*config)->routes[0].stages[0].stage, bundle);
  CHECK(run.result.http_status == 422);
  CHECK(std::any_of(run.result.issues.begin(), run.result.issues.end(), [](const fhir::Issue& i) {
    return i.severity <= fhir::Severity::Error && i.expression.find("entry[1]") != std::string::npos &&
           i.expression.find("gender") != std::string::npos;
  }));
  CHECK_FALSE(std::any_of(run.result.issues.begin(), run.result.issues.end(), [](const fhir::Issue& i) {
    return i.severity <= fhir::Severity::Error && i.expression.find("entry[0]") != std::string::npos;
  }));
}

TEST_CASE("validate stage: a route's profiles apply to the resources they constrain, Bundle entries included") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found");
    return;
  }
  // The R4 core body weight profile (Observation): a route for several types names profiles of each.
  auto config = loadWithStage("{ mode: enforce, profiles: [http://hl7.org/fhir/StructureDefinition/bodyweight] }");
  REQUIRE(config);
  const Stage& stage = *(*config)->routes[0].stages[0].stage;
  auto errorsAt = [](const Run& run, const std::string& path) {
    return std::count_if(run.result.issues.begin(), run.result.issues.end(), [&](const fhir::Issue& i) {
      return i.severity <= fhir::Severity::Error && i.expression.find(path) != std::string::npos;
    });
  };
  auto typeMismatch = [](const Run& run) {
    return std::any_of(run.result.issues.begin(), run.result.issues.end(),
                       [](const fhir::Issue& i) { return i.rule_id == "validator.profile-type"; });
  };
  const std::string weight = R"({"resourceType":"Observation","status":"final",
    "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
    "code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"urn:uuid:0c3e1b4a-2222-4d2e-9d7a-000000000001"},
    "effectiveDateTime":"2026-01-01","valueQuantity":{"value":72.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}})";
  const std::string plain = R"({"resourceType":"Observation","status":"final","code":{"text":"Gewicht"},"valueString":"72,5 kg"})";

  // A Patient: the Observation profile does not apply to it (no "is a Patient but ..." error).
  Run patient = runStage(stage, kGoodPatient);
  CHECK(patient.result.action == StageResult::Action::Continue);
  // An Observation must conform.
  Run observation = runStage(stage, plain);
  CHECK(observation.result.http_status == 422);
  CHECK_FALSE(typeMismatch(observation));

  auto batch = [](const std::string& type, const std::string& observation_json) {
    return R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[
      {"fullUrl":"urn:uuid:0c3e1b4a-2222-4d2e-9d7a-000000000001","resource":)" + std::string(kGoodPatient) +
           R"(,"request":{"method":"POST","url":"Patient"}},
      {"fullUrl":"urn:uuid:0c3e1b4a-2222-4d2e-9d7a-000000000002","resource":)" + observation_json +
           R"(,"request":{"method":"POST","url":"Observation"}}]})";
  };
  for (const std::string type : {"batch", "transaction"}) {
    INFO(type);
    // Every entry against core, the Observation entry against the profile too; the Bundle itself is no Observation.
    Run conforming = runStage(stage, batch(type, weight));
    CHECK(conforming.result.action == StageResult::Action::Continue);
    CHECK_FALSE(typeMismatch(conforming));
    Run failing = runStage(stage, batch(type, plain));
    CHECK(failing.result.http_status == 422);
    CHECK(errorsAt(failing, "Bundle.entry[1]") > 0);
    CHECK(errorsAt(failing, "Bundle.entry[0]") == 0);
    CHECK_FALSE(typeMismatch(failing));
  }
}

TEST_CASE("validate stage: unknown profiles and packages are config errors at the stage's line") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found");
    return;
  }
  auto unknown_profile = loadWithStage("{ mode: enforce, profiles: [http://example.org/StructureDefinition/nope] }");
  REQUIRE_FALSE(unknown_profile);
  CHECK_THAT(allErrors(unknown_profile.error()),
             Catch::Contains("gw.yaml:6:") && Catch::Contains("http://example.org/StructureDefinition/nope"));

  auto unknown_package = loadWithStage("{ mode: report, packages: [no.such.package#9.9.9] }");
  REQUIRE_FALSE(unknown_package);
  CHECK_THAT(allErrors(unknown_package.error()), Catch::Contains("gw.yaml:6:") && Catch::Contains("no.such.package"));

  auto core_profile = loadWithStage("{ mode: enforce, profiles: [http://hl7.org/fhir/StructureDefinition/Patient] }");
  CHECK(core_profile);
}

TEST_CASE("$validate: Parameters are unwrapped (resource, profile) and the stage answers 200 whatever its mode") {
  if (!coreAvailable()) {
    WARN("skipped: FHIR R4 core package not found");
    return;
  }
  const char* parameters = R"({"resourceType":"Parameters","parameter":[
    {"name":"resource","resource":{"resourceType":"Patient","gender":"x"}},
    {"name":"profile","valueUri":"http://hl7.org/fhir/StructureDefinition/Patient"}]})";
  fhir::ParseResult parsed = fhir::parse(parameters);
  REQUIRE(parsed.document);
  ValidateOperationRequest op = unwrapValidateRequest(*parsed.document, "profile=http%3A%2F%2Fexample.org%2FP", "");
  REQUIRE(op.issues.empty());
  REQUIRE(op.resource);
  CHECK(op.resource->root()->name() == "Patient");
  CHECK(op.profiles == std::vector<std::string>{"http://example.org/P", "http://hl7.org/fhir/StructureDefinition/Patient"});

  auto no_resource = fhir::parse(R"({"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"create"}]})");
  CHECK_FALSE(unwrapValidateRequest(*no_resource.document, "", "").issues.empty());
  CHECK(unwrapValidateRequest(*no_resource.document, "", "Parameters").resource == no_resource.document.get());

  auto config = loadWithStage("{ mode: report }");
  REQUIRE(config);
  Exchange exchange;
  exchange.method = "POST";
  exchange.path = "/fhir/Patient/$validate";
  exchange.resource = op.resource;
  exchange.validate_operation = true;
  StageResult result = (*config)->routes[0].stages[0].stage->onRequest(exchange);
  CHECK(result.action == StageResult::Action::Respond);
  CHECK(result.http_status == 200);
  CHECK(std::any_of(result.issues.begin(), result.issues.end(),
                    [](const fhir::Issue& i) { return i.expression.find("Patient.gender") != std::string::npos; }));
  CHECK(exchange.response_headers.empty());

  // A profile the client names must hold for the resource, whatever its type: an Observation profile
  // for a Patient is an error (a route's own profiles apply only where their type is).
  exchange.operation_profiles = {"http://hl7.org/fhir/StructureDefinition/bodyweight"};
  StageResult wrong_type = (*config)->routes[0].stages[0].stage->onRequest(exchange);
  CHECK(std::any_of(wrong_type.issues.begin(), wrong_type.issues.end(),
                    [](const fhir::Issue& i) { return i.rule_id == "validator.profile-type"; }));

  CHECK(isValidateOperation("POST", "/fhir/Patient/$validate"));
  CHECK(isValidateOperation("POST", "/fhir/$validate"));
  CHECK_FALSE(isValidateOperation("GET", "/fhir/Patient/$validate"));
  CHECK_FALSE(isValidateOperation("POST", "/fhir/Patient/$validate-code"));
}
