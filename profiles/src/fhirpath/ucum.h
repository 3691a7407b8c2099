#pragma once
// The part of UCUM (https://ucum.org/ucum) FHIRPath quantity operators need: SI prefixes on metric
// atoms; mass, length, volume, time, amount (mol = eq), pressure (Pa, bar, mm[Hg], cm[H2O]), energy,
// power, electricity, frequency, customary units ([lb_av], [in_i], ...), powers of ten (10*9/L),
// annotations ({beats}/min) and their products/quotients, reduced to base units for comparison and
// arithmetic; plus the FHIRPath calendar duration keywords (http://hl7.org/fhirpath/N1/#time-valued-quantities).
// Only commensurable units convert: mmol/L and mg/dL do not (that needs a molar mass), nor Cel and
// [degF] (offset scales), nor arbitrary units ([iU], U) to anything but their prefixed forms.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "medicus/fhirpath/value.h"

namespace medicus::fhirpath::detail {

struct CanonicalQuantity {
  Decimal value;                       // in base units (g, m, s, ...)
  std::map<std::string, int> dims;     // base unit -> exponent
};

// Reduces to base units; nullopt for units this table does not know.
std::optional<CanonicalQuantity> canonicalize(const Quantity& q);
// Unit string for a dimension map ("g/m", "m2", "1").
std::string unitOf(const std::map<std::string, int>& dims);
// Calendar keyword ("year", "days") to its UCUM counterpart ("a", "d"); the input if not a keyword.
std::string_view calendarToUcum(std::string_view unit);
bool isCalendarKeyword(std::string_view unit);

}  // namespace medicus::fhirpath::detail
