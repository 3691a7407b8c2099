#pragma once
// ElementDefinition nodes for FHIRPath's elementDefinition() (http://hl7.org/fhir/R4/fhirpath.html#functions).
// The validator works on compiled profiles (ElementDef), not on FHIR trees of the StructureDefinitions,
// so the definition an invariant asks for is built on demand: the snapshot element of the core
// definition that declares the element (Patient.name for a Patient's name, HumanName.given for a
// given name, the root element of the resource type for a resource), read into its own Document.
// It is the base definition, not the one a profile constrains the element with.
#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "medicus/fhir/node.h"
#include "medicus/profiles/profile_store.h"

namespace medicus::profiles {

// A Document whose snapshot.element[0] is the definition of `element` (a StructureDefinition holding
// only that element); nullptr when the core definition has no element for it (built nodes without a
// definition). An error when the core StructureDefinition is not loaded.
tl::expected<std::unique_ptr<fhir::Document>, std::string> coreElementDefinition(ProfileStore& store,
                                                                                const fhir::Node& element);
// The ElementDefinition node inside such a Document.
const fhir::Node* elementDefinitionNode(const fhir::Document& document);

}  // namespace medicus::profiles
