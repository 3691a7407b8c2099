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
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "medicus/fhir/node.h"
#include "medicus/profiles/structure_definition.h"

namespace medicus::profiles {

// The guards of an invariant expression, in evaluation order; empty when none apply. `complete`
// (optional) is set when the guards are the whole expression: the invariant holds exactly when one
// of them does ("text.`div`.exists()", "code.empty() or system.exists()").
std::vector<InvariantGuard> parseInvariantGuards(std::string_view expression, bool* complete = nullptr);

// True when a guard shows the invariant holds on `focus`; false when the engine must decide.
bool invariantHoldsByGuard(const fhir::Node& focus, const std::vector<InvariantGuard>& guards);

// Which core invariant the validator answers natively, if any: bdl-7 of the core Bundle, ele-1,
// txt-2, dom-3, ext-1, and ref-1 in its R4 form (kRef1Expression).
inline constexpr std::string_view kRef1Expression =
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))";
NativeInvariant nativeInvariantOf(std::string_view key, std::string_view expression, std::string_view profile_url);

// As invariantHoldsByGuard, and with `complete` guards (see parseInvariantGuards) also Fails when
// every test was decided and no guard holds: the engine would answer false.
enum class GuardOutcome : uint8_t { Holds, Fails, Undecided };
GuardOutcome decideByGuards(const fhir::Node& focus, const std::vector<InvariantGuard>& guards, bool complete);

}  // namespace medicus::profiles
