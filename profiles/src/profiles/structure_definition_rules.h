#pragma once
// StructureDefinition rules the StructureDefinition of StructureDefinition cannot express
// (http://hl7.org/fhir/R4/profiling.html), as the HL7 Java validator checks a profile's differential
// against the snapshot of its baseDefinition:
// - a type profile (type.profile) constrains the element's type: the profile's type is the type code;
// - slicing is not allowed on the root element;
// - a slicing discriminator has one of the discriminator types, and its path names an element of the
//   sliced element's type (paths with functions such as resolve() or extension() are not judged);
// - a slice does not redefine the slicing the differential gives the element it slices;
// - a renamed choice in a path (Observation.valueQuantity) names one of the choice's types;
// - differential elements follow the order of the base snapshot among their siblings: an element
//   that comes after a sibling defined later in the base is not matched (nor are its children);
// - a binding sits on an element with a bindable type (code, Coding, CodeableConcept, Quantity,
//   string, uri, CodeableReference).
// The base snapshot and the type definitions come from the store; what cannot be resolved there is
// not checked.
#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/profile_store.h"

namespace medicus::profiles {

void checkStructureDefinition(const fhir::Node& definition, ProfileStore& store, const fhir::Document& document,
                              fhir::Issues& issues);

}  // namespace medicus::profiles
