#include <catch2/catch.hpp>

#include "capability_filter.h"
#include "medicus/fhir/format.h"

using namespace medicus;
using namespace medicus::gateway;

TEST_CASE("/metadata: types and interactions no route allows are dropped from the CapabilityStatement") {
  auto parsed = fhir::parseJson(R"({"resourceType":"CapabilityStatement","status":"active","date":"2026","kind":"instance",
    "fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server","resource":[
      {"type":"Patient","interaction":[{"code":"read"},{"code":"create"},{"code":"delete"}]},
      {"type":"Observation","interaction":[{"code":"read"},{"code":"create"}]},
      {"type":"Encounter","interaction":[{"code":"read"}]}]}]})");
  REQUIRE(parsed.document);
  RouteConfig patients;
  patients.match.resource_types = {"Patient"};
  patients.match.methods = {"get", "POST"};
  RouteConfig observations_read;
  observations_read.match.resource_types = {"Observation"};
  observations_read.match.methods = {"GET"};
  restrictCapabilities(*parsed.document, {&patients, &observations_read});
  std::string json = fhir::writeJson(*parsed.document->root());
  CHECK(json.find("\"Encounter\"") == std::string::npos);
  CHECK(json.find("\"delete\"") == std::string::npos);
  CHECK(json.find(R"({"type":"Patient","interaction":[{"code":"read"},{"code":"create"}]})") != std::string::npos);
  CHECK(json.find(R"({"type":"Observation","interaction":[{"code":"read"}]})") != std::string::npos);
}
