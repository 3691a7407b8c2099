#include "medicus/profiles/folder_resolver.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "medicus/fhir/format.h"
#include "profiles/node_util.h"

namespace medicus::profiles {
namespace {

// Resource type and id as file name parts: [A-Za-z0-9\-\.]{1,64} (an id, R4 datatypes.html#id), and
// never a name that leaves the folder.
bool safePart(std::string_view s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  for (char ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.') return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

const fhir::Node* FolderResolver::resolve(std::string_view reference) {
  std::string_view ref = reference;
  if (size_t h = ref.find("/_history/"); h != std::string_view::npos) ref = ref.substr(0, h);
  size_t last = ref.rfind('/');
  if (last == std::string_view::npos || last == 0) return nullptr;
  size_t prev = ref.rfind('/', last - 1);
  std::string_view type = ref.substr(prev == std::string_view::npos ? 0 : prev + 1, last - (prev == std::string_view::npos ? 0 : prev + 1));
  std::string_view id = ref.substr(last + 1);
  if (!safePart(type) || !safePart(id)) return nullptr;
  std::string key = std::string(type) + "/" + std::string(id);

  std::lock_guard lock(mutex_);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second ? it->second->document->root() : nullptr;
  std::unique_ptr<Loaded> found;
  const std::string stem = std::string(type) + "-" + std::string(id);
  const std::vector<std::string> names = {stem, lower(stem), std::string(id), lower(std::string(id))};
  namespace fs = std::filesystem;
  for (const auto& name : names) {
    for (const char* ext : {".json", ".xml"}) {
      fs::path path = fs::path(dir_) / (name + ext);
      std::error_code ec;
      if (!fs::is_regular_file(path, ec)) continue;
      std::ifstream in(path, std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      auto loaded = std::make_unique<Loaded>();
      loaded->text = s.str();
      fhir::ParseResult parsed = fhir::parse(loaded->text);
      if (!parsed.document || !parsed.document->root()) continue;
      const fhir::Node& root = *parsed.document->root();
      if (root.type()->name != type || childValue(root, "id") != id) continue;  // another resource
      loaded->document = std::move(parsed.document);
      found = std::move(loaded);
      break;
    }
    if (found) break;
  }
  const fhir::Node* result = found ? found->document->root() : nullptr;
  cache_.emplace(std::move(key), std::move(found));
  return result;
}

}  // namespace medicus::profiles
