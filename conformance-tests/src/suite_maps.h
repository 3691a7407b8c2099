#pragma once
// The v2 -> FHIR maps a suite runs with: --map DIR when given, else the shipped folder. Include only
// where medicus/mappers is built (the suites guard that with __has_include).
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "medicus/mappers/maps_location.h"
#include "medicus/mappers/v2_to_fhir.h"

namespace medicus::conformance {

// Loads the maps for `suite` (its name prefixes every message); on failure says why on stderr and
// returns null (the suite then exits 2).
inline std::shared_ptr<const mappers::MapSet> loadSuiteMaps(const char* suite, std::string map_dir) {
  if (map_dir.empty()) {
    auto shipped = mappers::shippedMapsDirectory();
    if (!shipped) {
      std::fprintf(stderr, "%s: no map folder found; give --map DIR or set MEDICUS_MAPS_DIR\n", suite);
      return nullptr;
    }
    map_dir = shipped->string();
  }
  try {
    return mappers::MapSet::loadDirectory(map_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: maps in %s: %s\n", suite, map_dir.c_str(), e.what());
    return nullptr;
  }
}

}  // namespace medicus::conformance
