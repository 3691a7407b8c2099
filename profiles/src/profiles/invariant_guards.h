#pragma once
// Invariants whose outcome often follows from the focus's children alone. Most core invariants
// start with a test of an optional element: "code.empty() or system.exists()" (qty-3),
// "fullUrl.exists() implies ..." (bdl-8), "contained.contained.empty()" (dom-2),
// "reference.startsWith('#').not() or ..." (ref-1). When that test is true the FHIRPath engine
// would stop right there (or/implies short-circuit left to right), so the validator may skip it.
//
// Only the leading disjuncts that cannot fail at run time are used: a guard after a disjunct the
// engine might report an error for would change the outcome, so parsing stops there. Paths are
// plain lower-case element names (no functions, variables, type names or `value` of a primitive).
#include <optional>
#include <string_view>
#include <vector>

#include "medicus/fhir/node.h"
#include "medicus/profiles/structure_definition.h"

namespace medicus::profiles {

// The guards of an invariant expression, in evaluation order; empty when none apply.
std::vector<InvariantGuard> parseInvariantGuards(std::string_view expression);

// True when a guard shows the invariant holds on `focus`; false when the engine must decide.
bool invariantHoldsByGuard(const fhir::Node& focus, const std::vector<InvariantGuard>& guards);

}  // namespace medicus::profiles
