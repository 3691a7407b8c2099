#include "profiles/core_invariant_errata.h"

namespace medicus::profiles {
namespace {
struct Erratum {
  std::string_view key;
  std::string_view published;
  std::string_view corrected;
};

constexpr Erratum kErrata[] = {
    // Questionnaire.item: the human text says "more than one enableWhen"; R4 published "> 2", so two
    // conditions without enableBehavior slipped through (fixed in R4B).
    {"que-12", "enableWhen.count() > 2 implies enableBehavior.exists()",
     "enableWhen.count() > 1 implies enableBehavior.exists()"},
    // Questionnaire.item.enableWhen: "Boolean" names System.Boolean, which a FHIR boolean answer is not
    // (FHIRPath type specifiers are case-sensitive); R4B tests the FHIR type.
    {"que-7", "operator = 'exists' implies (answer is Boolean)", "operator = 'exists' implies (answer is boolean)"},
};
}  // namespace

std::string_view correctedCoreExpression(std::string_view key, std::string_view expression) {
  for (const Erratum& e : kErrata) {
    if (e.key == key && e.published == expression) return e.corrected;
  }
  return expression;
}

}  // namespace medicus::profiles
