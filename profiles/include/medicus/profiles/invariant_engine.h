#pragma once
// Invariants (ElementDefinition.constraint.expression) are FHIRPath. The validator reaches the engine
// through this small interface so that it can run without one (invariants are then reported as
// not checked) and tests can count evaluations.
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "medicus/fhir/node.h"

namespace medicus::profiles {

class CompiledInvariant {
 public:
  virtual ~CompiledInvariant() = default;
  // True when the invariant holds on `focus` (%resource = resource, %rootResource = root).
  // An error string when the expression fails at run time.
  virtual tl::expected<bool, std::string> holds(const fhir::Node& focus, const fhir::Node& resource,
                                                const fhir::Node& root) const = 0;
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
