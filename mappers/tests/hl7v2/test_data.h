#pragma once
// Shared test data location (MEDICUS_TESTDATA, default from CMake) and file helpers.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace medicus::hl7v2::testing {

inline std::filesystem::path testDataRoot() {
  if (const char* env = std::getenv("MEDICUS_TESTDATA"); env && *env) return env;
  return MEDICUS_TESTDATA_DEFAULT;
}

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace medicus::hl7v2::testing
