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

TEST_CASE("/metadata without an upstream: the gateway builds the CapabilityStatement from its routes") {
  RouteConfig patients;
  patients.match.resource_types = {"Patient", "Encounter"};
  patients.match.methods = {"GET", "PUT"};
  RouteConfig observations;
  observations.match.resource_types = {"Observation"};
  observations.match.methods = {"POST"};
  auto document = buildCapabilities({&patients, &observations}, "https://gw.example/fhir", "2026-12-01", "upstream down");
  REQUIRE(document);
  std::string json = fhir::writeJson(*document->root());
  // It reads back as a valid FHIR resource.
  auto again = fhir::parseJson(json);
  REQUIRE(again.ok());
  CHECK_THAT(json, Catch::Contains(R"("resourceType":"CapabilityStatement")"));
  CHECK_THAT(json, Catch::Contains(R"("url":"https://gw.example/fhir")"));
  CHECK_THAT(json, Catch::Contains(R"({"type":"Encounter","interaction":[{"code":"read"},{"code":"vread"},{"code":"update"},)"
                                   R"({"code":"history-instance"},{"code":"history-type"},{"code":"search-type"}]})"));
  CHECK_THAT(json, Catch::Contains(R"({"type":"Observation","interaction":[{"code":"create"}]})"));
  CHECK(json.find("\"Condition\"") == std::string::npos);
  // Typed routes only: no system interactions.
  CHECK(json.find("\"transaction\"") == std::string::npos);

  RouteConfig any;  // no restriction: every R4 resource type, and the system interactions
  auto all = buildCapabilities({&any}, "http://localhost/fhir", "2026-12-01", "upstream down");
  REQUIRE(all);
  std::string all_json = fhir::writeJson(*all->root());
  CHECK(fhir::parseJson(all_json).ok());
  CHECK_THAT(all_json, Catch::Contains(R"("type":"Patient")") && Catch::Contains(R"("type":"ValueSet")") &&
                           Catch::Contains(R"({"code":"transaction"},{"code":"batch"},{"code":"search-system"})"));
  CHECK(all_json.find(R"("type":"DomainResource")") == std::string::npos);
  CHECK_THAT(all_json, Catch::Contains(R"({"code":"patch"})"));
}
