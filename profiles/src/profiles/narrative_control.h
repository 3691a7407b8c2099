#pragma once
// Narrative control extensions a profile puts on a Narrative element (FHIR extensions pack):
// - narrative-language-control "_yes": the div must have language sections (child elements with
//   lang/xml:lang); "_no": it must have none. Other values are not checked here.
// - narrative-source-control <severity>: every piece of narrative content must sit inside an element
//   whose class attribributes its source (boilerplate, generated, original, extensions, additional);
//   content that does not is reported with that severity ("success" or empty: not checked).
#include <string>
#include <string_view>
#include <vector>

#include "medicus/fhir/issue.h"

namespace medicus::profiles {

struct NarrativeFinding {
  fhir::Severity severity;
  std::string message;
  std::string rule_id;
};

// `div` is the narrative's XHTML source text; `profile` names the profile in the messages.
std::vector<NarrativeFinding> checkNarrativeControls(std::string_view div, std::string_view language_control,
                                                     std::string_view source_control, std::string_view profile);

}  // namespace medicus::profiles
