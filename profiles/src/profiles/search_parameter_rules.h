#pragma once
// SearchParameter rules the StructureDefinition cannot express (http://hl7.org/fhir/R4/searchparameter.html),
// as the HL7 Java validator checks them:
// - a SearchParameter derived from another (derivedFrom, resolved among the loaded resources) keeps its
//   type, and every one of its base resource types is a base of the parameter it derives from;
// - each part of the expression ("A.x | B.y") that starts with a resource type name starts with one of
//   the parameter's base types (or a type they derive from, such as Resource or DomainResource).
// When derivedFrom is not loaded, only the expression is checked.
#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/package_registry.h"

namespace medicus::profiles {

void checkSearchParameter(const fhir::Node& parameter, const PackageRegistry& registry, const fhir::Document& document,
                          fhir::Issues& issues);

}  // namespace medicus::profiles
