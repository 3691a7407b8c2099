#pragma once
// Turns a stored HL7 v2 message into the FHIR transaction Bundle (JSON) that the delivery posts.
// The real one uses medicus::mappers (mapping files); when that module is not built, none exists and
// the delivery of a route leaves its messages pending instead of sending anything made up.
#include <functional>
#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "medicus/gateway/store/message_store.h"

namespace medicus::gateway::delivery {

// Why a message cannot be mapped. Mapping is deterministic: the same message fails again, so the
// delivery dead-letters it at once (fix the map, then replay).
struct MappingFailure {
  std::string message;
};

using BundleMapper = std::function<tl::expected<std::string, MappingFailure>(const store::DeliveryTask& task)>;

// Loads the mapping files of `folder` (medicus::mappers::MapSet). Error text when the folder has errors
// or the mapping module is not part of this build.
tl::expected<BundleMapper, std::string> loadV2ToFhirMapper(const std::string& folder);

}  // namespace medicus::gateway::delivery
