#pragma once
// Small helpers over instance nodes, shared by the validator's rule files.
#include <string_view>

#include "medicus/fhir/node.h"

namespace medicus::profiles {

// The value of the primitive child `name`, or empty when it is absent or has no value (only extensions).
inline std::string_view childValue(const fhir::Node& node, std::string_view name) {
  const fhir::Node* c = node.child(name);
  return c && c->hasValue() ? c->value() : std::string_view();
}

}  // namespace medicus::profiles
