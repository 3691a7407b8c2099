#include "profiles/capability_statement_rules.h"

#include <catch2/catch.hpp>

#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
using testing::countRule;
}  // namespace

TEST_CASE("a CapabilityStatement search parameter has the type of its SearchParameter definition", "[validator]") {
  testing::ValidatorFixture f;
  auto statement = [](std::string_view type, std::string_view definition) {
    return std::string(R"({"resourceType":"CapabilityStatement","status":"draft","date":"2024-01-01",
      "kind":"requirements","fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server","resource":[
      {"type":"AllergyIntolerance","searchParam":[{"name":"clinical-status","definition":")") +
           std::string(definition) + R"(","type":")" + std::string(type) + R"("}]}]}]})";
  };
  constexpr std::string_view kRule = "CapabilityStatement.rest.resource.searchParam:type";
  const std::string core = "http://hl7.org/fhir/SearchParameter/AllergyIntolerance-clinical-status";
  CHECK(countRule(f.validate(statement("token", core)), kRule) == 0);
  CHECK(countRule(f.validate(statement("date", core)), kRule) == 1);
  // A definition that is not loaded cannot be compared.
  CHECK(countRule(f.validate(statement("date", "http://example.org/SearchParameter/unknown")), kRule) == 0);
}
