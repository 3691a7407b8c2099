#pragma once
// Snapshot generation (http://hl7.org/fhir/R4/profiling.html#snapshot): applies a differential to the
// snapshot of its baseDefinition. Elements are arranged as a tree keyed by element id segments
// ("component:SystolicBP"); complex types are expanded from their type's (or type profile's) snapshot
// when the differential reaches into them; slices start as copies of the unconstrained base element.
#include <functional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <tl/expected.hpp>

namespace medicus::profiles {

// Returns the snapshot element array of a type name ("Identifier") or profile canonical; nullptr if
// it cannot be resolved.
using SnapshotLookup = std::function<const rapidjson::Value*(std::string_view type_or_url)>;

// Writes the snapshot elements into `out` (an array using out's allocator). Errors name the
// differential element that could not be placed; other elements are still applied.
// `specialization` (StructureDefinition.derivation, e.g. a logical model on Element): the differential
// renames the root and may define elements the base does not have (their base is themselves).
struct SnapshotResult {
  std::vector<std::string> problems;
};
SnapshotResult generateSnapshot(const rapidjson::Value& base_elements, const rapidjson::Value& differential_elements,
                                const SnapshotLookup& lookup, rapidjson::Value& out,
                                rapidjson::Document::AllocatorType& allocator, bool specialization = false);

// Gives every element an id when the source (older profiles) has only path + sliceName.
void assignElementIds(rapidjson::Value& elements, rapidjson::Document::AllocatorType& allocator);

}  // namespace medicus::profiles
