#pragma once
// R4 vital signs (http://hl7.org/fhir/R4/observation-vitalsigns.html): "if a data element is a vital
// sign, it SHALL conform to the vital signs profile" for it. An Observation whose code carries one of
// the vital sign codes (LOINC, or an equivalent SNOMED CT concept) is checked against the matching
// core profile as if it were in its meta.profile, as the HL7 Java validator does.
#include <string_view>

#include "medicus/fhir/node.h"

namespace medicus::profiles {

struct VitalSign {
  std::string_view profile;  // canonical of the core profile, e.g. http://hl7.org/fhir/StructureDefinition/bodytemp
  std::string_view name;     // e.g. "Body temperature"
  std::string_view system;   // "LOINC" or "SNOMED CT": the code system of the coding that matched
  std::string_view code;     // the matching code
};

// The vital sign an Observation is, by its code.coding (LOINC codings are looked at before SNOMED CT);
// false when it is none.
bool vitalSignOf(const fhir::Node& observation, VitalSign& out);

}  // namespace medicus::profiles
