#pragma once
// Reading FHIR package archives: a gzip-compressed POSIX/ustar tar (https://registry.fhir.org packages,
// `npm pack` layout with every file under package/). Only regular files are returned.
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace medicus::profiles {

struct TarEntry {
  std::string name;     // path inside the archive, e.g. "package/StructureDefinition-Patient.json"
  std::string content;  // file bytes
};

// Decompresses a gzip stream; fails on corrupt data or when the output would exceed max_bytes.
tl::expected<std::string, std::string> gunzip(std::string_view compressed, size_t max_bytes);

// Splits an uncompressed tar image into its regular files (ustar prefix and GNU long names handled).
tl::expected<std::vector<TarEntry>, std::string> readTar(std::string_view tar);

}  // namespace medicus::profiles
