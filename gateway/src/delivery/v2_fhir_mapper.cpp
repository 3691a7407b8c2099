// BundleMapper over medicus::mappers, compiled only when that module is part of the build
// (MEDICUS_HAVE_MAPPERS); otherwise loading reports that mapping is unavailable.
#include "delivery/bundle_mapper.h"

#ifdef MEDICUS_HAVE_MAPPERS
#include "medicus/fhir/format.h"
#include "medicus/hl7v2/message.h"
#include "medicus/mappers/v2_to_fhir.h"
#endif

namespace medicus::gateway::delivery {

tl::expected<BundleMapper, std::string> loadV2ToFhirMapper(const std::string& folder) {
#ifdef MEDICUS_HAVE_MAPPERS
  std::shared_ptr<const mappers::MapSet> maps;
  try {
    maps = mappers::MapSet::loadDirectory(folder);
  } catch (const std::exception& e) {
    return tl::unexpected(std::string(e.what()));
  }
  return BundleMapper([maps](const store::DeliveryTask& task) -> tl::expected<std::string, MappingFailure> {
    auto message = hl7v2::parseMessage(task.text);
    if (!message) return tl::unexpected(MappingFailure{"stored message does not parse: " + message.error().describe()});
    auto mapped = maps->map(*message);
    if (!mapped) return tl::unexpected(MappingFailure{"cannot map " + task.message_type + ": " + mapped.error().describe()});
    if (!mapped->bundle || !mapped->bundle->root()) return tl::unexpected(MappingFailure{"the map produced no Bundle"});
    return fhir::writeJson(*mapped->bundle->root());
  });
#else
  return tl::unexpected("HL7 v2 -> FHIR mapping (medicus::mappers) is not part of this build; maps in '" + folder +
                        "' cannot be used");
#endif
}

}  // namespace medicus::gateway::delivery
