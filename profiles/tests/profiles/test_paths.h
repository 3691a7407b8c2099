#pragma once
// Locations of the shared test data and the package cache, as the tests see them.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "medicus/profiles/package_registry.h"

namespace medicus::profiles::test {

inline std::string testdata() {
  if (const char* env = std::getenv("MEDICUS_TESTDATA"); env && *env) return env;
  return MEDICUS_TESTDATA_DEFAULT;
}
inline bool haveTestdata(const std::string& sub) { return std::filesystem::exists(testdata() + "/" + sub); }
inline std::string coreFolder() { return PackageRegistry::defaultCacheDir() + "/hl7.fhir.r4.core#4.0.1/package"; }

}  // namespace medicus::profiles::test
