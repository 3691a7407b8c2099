#pragma once
// Picks the route for a request: the first route (in config order) whose path prefix, method,
// resource type and client identity all match. Tells "no route" (404) from "route exists for this
// path but not this method" (405).
#include <string>
#include <string_view>

#include "medicus/gateway/config.h"

namespace medicus::gateway {

struct RouteSelection {
  enum class Outcome : uint8_t { Matched, NoRoute, MethodNotAllowed };
  Outcome outcome = Outcome::NoRoute;
  const RouteConfig* route = nullptr;
  std::string_view resource_type;  // the path segment after the prefix when it names a type
  std::string_view rest;           // the path after the route prefix ("/Patient/1"; "" for the prefix itself)
};

RouteSelection selectRoute(const GatewayConfig& config, std::string_view method, std::string_view path,
                           std::string_view client_identity);

// For a 405 reply's Allow header (RFC 9110 section 15.5.6): the methods of the routes that fit the
// path, resource type and client, in config order without repeats ("GET, POST").
std::string allowedMethods(const GatewayConfig& config, std::string_view path, std::string_view client_identity);

// "/fhir/Patient/1" with prefix "/fhir" -> true and rest "/Patient/1"; "/fhirx" does not match "/fhir".
bool matchesPrefix(std::string_view path, std::string_view prefix, std::string_view& rest);

}  // namespace medicus::gateway
