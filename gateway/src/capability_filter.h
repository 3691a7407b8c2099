#pragma once
// GET [base]/metadata through the gateway: the upstream's CapabilityStatement, narrowed to what the
// gateway's routes let a client do (http://hl7.org/fhir/R4/capabilitystatement.html). Resource types no
// route allows are dropped, and interactions whose HTTP method no route allows for that type.
#include <vector>

#include "medicus/fhir/node.h"
#include "medicus/gateway/config.h"

namespace medicus::gateway {

// `routes`: the routes a client sees under this base (same path prefix, matching client identity).
void restrictCapabilities(fhir::Document& capabilities, const std::vector<const RouteConfig*>& routes);

}  // namespace medicus::gateway
