#pragma once
// GET [base]/metadata through the gateway: the upstream's CapabilityStatement, narrowed to what the
// gateway's routes let a client do (http://hl7.org/fhir/R4/capabilitystatement.html). Resource types no
// route allows are dropped, and interactions whose HTTP method no route allows for that type.
#include <memory>
#include <string_view>
#include <vector>

#include "medicus/fhir/node.h"
#include "medicus/gateway/config.h"

namespace medicus::gateway {

// `routes`: the routes a client sees under this base (same path prefix, matching client identity).
void restrictCapabilities(fhir::Document& capabilities, const std::vector<const RouteConfig*>& routes);

// The gateway's own CapabilityStatement for when the upstream cannot be asked (unreachable, no healthy
// endpoint): what the routes under this base allow, each resource type a route names (every R4 resource
// type when a route takes any) with the interactions its methods permit, plus the system interactions
// (transaction, batch, search-system, history-system) of routes without a type restriction.
// `date` is YYYY-MM-DD; `base_url` the gateway's base as the client sees it; `description` says why the
// gateway answered itself. Never null.
std::unique_ptr<fhir::Document> buildCapabilities(const std::vector<const RouteConfig*>& routes, std::string_view base_url,
                                                  std::string_view date, std::string_view description);

}  // namespace medicus::gateway
