#include <catch2/catch.hpp>

#include "medicus/gateway/config.h"
#include "route_table.h"

using namespace medicus::gateway;

namespace {
GatewayConfig makeConfig() {
  GatewayConfig config;
  RouteConfig patients;
  patients.name = "patients-from-kis";
  patients.match.path_prefix = "/fhir";
  patients.match.resource_types = {"Patient"};
  patients.match.clients = {"kis.example"};
  RouteConfig read_only;
  read_only.name = "read-only";
  read_only.match.path_prefix = "/fhir";
  read_only.match.methods = {"GET"};
  config.routes = {patients, read_only};
  return config;
}
}  // namespace

TEST_CASE("routes match by prefix / resource type / client and method / first match wins") {
  GatewayConfig config = makeConfig();
  auto kis = selectRoute(config, "POST", "/fhir/Patient", "kis.example");
  REQUIRE(kis.outcome == RouteSelection::Outcome::Matched);
  CHECK(kis.route->name == "patients-from-kis");
  CHECK(kis.resource_type == "Patient");
  CHECK(kis.rest == "/Patient");

  auto anonymous_read = selectRoute(config, "GET", "/fhir/Patient/1", "");
  REQUIRE(anonymous_read.outcome == RouteSelection::Outcome::Matched);
  CHECK(anonymous_read.route->name == "read-only");

  CHECK(selectRoute(config, "POST", "/fhir/Patient", "other").outcome == RouteSelection::Outcome::MethodNotAllowed);
  CHECK(selectRoute(config, "GET", "/other/Patient", "").outcome == RouteSelection::Outcome::NoRoute);
  CHECK(selectRoute(config, "GET", "/fhirx/Patient", "").outcome == RouteSelection::Outcome::NoRoute);
  auto base = selectRoute(config, "GET", "/fhir", "");
  REQUIRE(base.outcome == RouteSelection::Outcome::Matched);
  CHECK(base.rest.empty());
  CHECK(base.resource_type.empty());
  CHECK(selectRoute(config, "GET", "/fhir/metadata", "").resource_type.empty());
}

TEST_CASE("a 405's Allow header lists the methods of the routes that fit path, type and client") {
  GatewayConfig config = makeConfig();
  RouteConfig writes;
  writes.name = "observation-writes";
  writes.match.path_prefix = "/fhir";
  writes.match.resource_types = {"Observation"};
  writes.match.methods = {"POST", "GET", "PUT"};
  config.routes.push_back(writes);
  CHECK(allowedMethods(config, "/fhir/Patient", "other") == "GET");
  CHECK(allowedMethods(config, "/fhir/Observation/1", "") == "GET, POST, PUT");
  CHECK(allowedMethods(config, "/other", "").empty());
}

TEST_CASE("prefix matching respects segment boundaries") {
  std::string_view rest;
  CHECK(matchesPrefix("/fhir/Patient", "/fhir", rest));
  CHECK(rest == "/Patient");
  CHECK_FALSE(matchesPrefix("/fhirx", "/fhir", rest));
  CHECK(matchesPrefix("/anything", "/", rest));
  CHECK(rest == "/anything");
}
