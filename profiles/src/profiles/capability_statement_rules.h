#pragma once
// CapabilityStatement rules the StructureDefinition cannot express (http://hl7.org/fhir/R4/capabilitystatement.html),
// as the HL7 Java validator checks them:
// - a search parameter of a resource (rest.resource.searchParam) whose definition is a loaded
//   SearchParameter has that SearchParameter's type.
// Definitions that are not loaded are not checked.
#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/package_registry.h"

namespace medicus::profiles {

void checkCapabilityStatement(const fhir::Node& statement, const PackageRegistry& registry,
                              const fhir::Document& document, fhir::Issues& issues);

}  // namespace medicus::profiles
