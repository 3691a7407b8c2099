#include "medicus/mappers/maps_location.h"

#include <cstdlib>
#include <system_error>

namespace medicus::mappers {
namespace fs = std::filesystem;

std::optional<fs::path> shippedMapsDirectory() {
  if (const char* env = std::getenv("MEDICUS_MAPS_DIR"); env != nullptr && *env != '\0') {
    return fs::path(env);  // an explicit choice: a missing folder is reported by the loader, not skipped
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // Linux; other systems use the build-time path
  if (!ec) {
    for (fs::path candidate : {exe.parent_path() / ".." / "share" / "medicus" / "maps", exe.parent_path() / "maps"}) {
      if (fs::is_directory(candidate, ec)) return candidate.lexically_normal();
    }
  }
#ifdef MEDICUS_SHIPPED_MAPS_DIR
  if (fs::is_directory(MEDICUS_SHIPPED_MAPS_DIR, ec)) return fs::path(MEDICUS_SHIPPED_MAPS_DIR);
#endif
  return std::nullopt;
}

}  // namespace medicus::mappers
