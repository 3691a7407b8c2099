// Fuzz target: FHIR JSON parsing and, when it succeeds, both serialisers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "medicus/fhir/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = medicus::fhir::parseJson(text);
  if (r.document) {
    (void)medicus::fhir::writeJson(*r.document->root());
    (void)medicus::fhir::writeXml(*r.document->root());
  }
  return 0;
}
