#pragma once
// The FHIR packages a suite validates with: the core package and each --package. Include only where
// medicus/profiles is built.
#include <cstdio>
#include <string>
#include <vector>

#include "medicus/profiles/package_registry.h"

namespace medicus::conformance {

// Loads the core package and `packages` into `registry`; on failure says why on stderr (prefixed by
// `suite`) and returns false (the suite then exits 2).
inline bool loadSuitePackages(const char* suite, profiles::PackageRegistry& registry,
                              const std::vector<std::string>& packages) {
  if (auto core = registry.loadCore(); !core) {
    std::fprintf(stderr, "%s: %s\n", suite, core.error().c_str());
    return false;
  }
  for (const auto& p : packages) {
    if (auto loaded = registry.load(p); !loaded) {
      std::fprintf(stderr, "%s: --package %s: %s\n", suite, p.c_str(), loaded.error().c_str());
      return false;
    }
  }
  return true;
}

}  // namespace medicus::conformance
