// Fuzz target: any ER7 text that parses is mapped with the shipped maps and written as JSON; mapping
// must never crash, and the same input must give the same Bundle twice (deterministic ids).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "medicus/fhir/format.h"
#include "medicus/hl7v2/message.h"
#include "medicus/mappers/v2_to_fhir.h"

using namespace medicus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const mappers::MapSet> maps =
      mappers::MapSet::loadDirectory(std::string(MEDICUS_MAPPERS_DIR) + "/maps");
  auto message = hl7v2::parseMessage(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!message) return 0;
  auto first = maps->map(*message);
  if (!first) return 0;
  auto second = maps->map(*message);
  if (!second || fhir::writeJson(*first->bundle->root()) != fhir::writeJson(*second->bundle->root())) {
    __builtin_trap();
  }
  return 0;
}
