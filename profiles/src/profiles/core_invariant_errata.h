#pragma once
// Invariants of the published R4 core definitions (hl7.fhir.r4.core 4.0.1) whose FHIRPath is known to
// be wrong, with the corrected expression from the later technical corrections (R4B 4.3.0 carries the
// fixed text). The reference validator judges by the corrected rules, and so do we.
#include <string_view>

namespace medicus::profiles {

// The expression to evaluate for constraint `key` of a core definition: the correction when one is
// known for exactly this published `expression`, else `expression` itself.
std::string_view correctedCoreExpression(std::string_view key, std::string_view expression);

}  // namespace medicus::profiles
