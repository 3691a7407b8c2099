#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"
#include "medicus/fhir/operation_outcome.h"

using namespace medicus::fhir;

TEST_CASE("OperationOutcome carries severity, code, text, expression, line and rule", "[operation_outcome]") {
  Issues issues{{Severity::Error, IssueType::Structure, "Unknown element 'foo'", "Patient.name[0]", {3, 7}, "json.unknown-element"}};
  auto oo = buildOperationOutcome(issues);
  std::string json = writeJson(*oo->root());
  CHECK(json ==
        R"({"resourceType":"OperationOutcome","issue":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line","valueInteger":3},{"url":"http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col","valueInteger":7},{"url":"http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id","valueString":"json.unknown-element"}],"severity":"error","code":"structure","details":{"text":"Unknown element 'foo'"},"expression":["Patient.name[0]"]}]})");
  // The outcome itself is valid FHIR: it reads back without issues.
  CHECK(parseJson(json).ok());
  CHECK(parseXml(writeXml(*oo->root())).ok());
}

TEST_CASE("an empty issue list gives one informational issue", "[operation_outcome]") {
  auto oo = buildOperationOutcome({});
  CHECK(writeJson(*oo->root()).find("\"severity\":\"information\"") != std::string::npos);
}
