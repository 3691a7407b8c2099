#pragma once
// Where the shipped mapping files (mappers/maps) are found at run time, so that commands work without
// a --map option both from the build tree and from an installed layout.

#include <filesystem>
#include <optional>

namespace medicus::mappers {

// The first of: $MEDICUS_MAPS_DIR (when set and non-empty, taken as is); <exe dir>/../share/medicus/maps;
// <exe dir>/maps; the source tree's mappers/maps recorded at build time. nullopt when none exists.
std::optional<std::filesystem::path> shippedMapsDirectory();

}  // namespace medicus::mappers
