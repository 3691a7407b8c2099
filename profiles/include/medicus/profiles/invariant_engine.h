#pragma once
// Invariants (ElementDefinition.constraint.expression) are FHIRPath. The validator reaches the engine
// through this small interface so that it can run without one (invariants are then reported as
// not checked) and tests can count evaluations.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/fhir/node.h"

namespace medicus::profiles {

// What invariants may ask of the validator: memberOf() and subsumes() against the local terminology,
// conformsTo() and slice() against the loaded profiles, elementDefinition(), resolve() of references
// outside the resource (Bundle entries).
class InvariantServices {
 public:
  virtual ~InvariantServices() = default;
  // Is the code / Coding / CodeableConcept `node` (or, when node is nullptr, the bare code `text`)
  // in the value set? An error string when that cannot be decided locally.
  virtual tl::expected<bool, std::string> memberOf(const fhir::Node* node, std::string_view text,
                                                   std::string_view value_set) const = 0;
  virtual tl::expected<bool, std::string> conformsTo(const fhir::Node& resource, std::string_view url) const = 0;
  virtual const fhir::Node* resolve(std::string_view reference) const = 0;
  // Is `ancestor` an ancestor of (or equal to) `descendant` in code system `system`? An error when
  // that cannot be decided locally.
  virtual tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                                   std::string_view descendant) const {
    return tl::make_unexpected(std::string("subsumes() is not available here"));
  }
  // The ElementDefinition node for `element` (it must outlive the evaluation); nullptr when none.
  virtual tl::expected<const fhir::Node*, std::string> elementDefinition(const fhir::Node& element) const {
    return tl::make_unexpected(std::string("elementDefinition() is not available here"));
  }
  // Does `element` match the slice `slice_name` of the profile `structure`? An error when the
  // profile or the slice is unknown.
  virtual tl::expected<bool, std::string> inSlice(const fhir::Node& element, std::string_view structure,
                                                  std::string_view slice_name) const {
    return tl::make_unexpected(std::string("slice() is not available here"));
  }
};

class CompiledInvariant {
 public:
  virtual ~CompiledInvariant() = default;
  // True when the invariant holds on `focus` (%resource = resource, %rootResource = root): when the
  // expression evaluates to true. An empty result (an unknown comparison such as a date against a
  // dateTime of another precision) does not hold, as the reference validator and the FHIR community
  // reading of constraints have it.
  // An error string when the expression fails at run time. `extension` is %extension (context
  // invariants of extension definitions), nullptr otherwise.
  virtual tl::expected<bool, std::string> holds(const fhir::Node& focus, const fhir::Node& resource,
                                                const fhir::Node& root, const InvariantServices* services = nullptr,
                                                const fhir::Node* extension = nullptr) const = 0;
  // The nodes the expression selects from `focus` (extension contexts of type fhirpath).
  virtual tl::expected<std::vector<const fhir::Node*>, std::string> select(
      const fhir::Node& focus, const fhir::Node& resource, const fhir::Node& root,
      const InvariantServices* services = nullptr) const = 0;
};

class InvariantEngine {
 public:
  virtual ~InvariantEngine() = default;
  // `context_type` is the type the expression starts on ("Patient", "HumanName"); may be empty.
  virtual tl::expected<std::shared_ptr<const CompiledInvariant>, std::string> compile(
      std::string_view expression, std::string_view context_type) const = 0;
};

// The FHIRPath engine (medicus::fhirpath) when the library was built with it; nullptr otherwise.
std::shared_ptr<const InvariantEngine> fhirpathInvariantEngine();

}  // namespace medicus::profiles
