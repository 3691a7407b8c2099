#include "medicus/profiles/package_registry.h"

#include <rapidjson/document.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "medicus/fhir/format.h"
#include "profiles/json_util.h"
#include "profiles/tar_reader.h"

namespace medicus::profiles {
namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxArchiveBytes = 512u << 20;  // uncompressed
constexpr int kMaxDependencyDepth = 8;

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Compares dotted versions numerically where both parts are numbers ("1.10.0" > "1.9.2").
int compareVersions(std::string_view a, std::string_view b) {
  while (!a.empty() || !b.empty()) {
    auto split = [](std::string_view& s) {
      size_t dot = s.find('.');
      std::string_view part = s.substr(0, dot);
      s = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
      return part;
    };
    std::string_view pa = split(a), pb = split(b);
    bool na = !pa.empty() && std::all_of(pa.begin(), pa.end(), ::isdigit);
    bool nb = !pb.empty() && std::all_of(pb.begin(), pb.end(), ::isdigit);
    if (na && nb) {
      unsigned long va = std::strtoul(std::string(pa).c_str(), nullptr, 10);
      unsigned long vb = std::strtoul(std::string(pb).c_str(), nullptr, 10);
      if (va != vb) return va < vb ? -1 : 1;
    } else if (int c = pa.compare(pb); c != 0) {
      return c < 0 ? -1 : 1;
    }
  }
  return 0;
}

// SAX handler that records the top-level string properties naming a resource, without building a DOM.
struct ScanHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ScanHandler> {
  ResourceInfo info;
  int depth = 0;
  std::string key;
  bool Default() { return true; }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth != 1) return true;
    std::string_view v(s, n);
    if (key == "resourceType") info.resource_type = v;
    else if (key == "id") info.id = v;
    else if (key == "url") info.url = v;
    else if (key == "version") info.version = v;
    else if (key == "kind") info.kind = v;
    else if (key == "type") info.type = v;
    else if (key == "derivation") info.derivation = v;
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1) key.assign(s, n);
    return true;
  }
  bool StartObject() { ++depth; return true; }
  bool EndObject(rapidjson::SizeType) { --depth; return true; }
  bool StartArray() { ++depth; return true; }
  bool EndArray(rapidjson::SizeType) { --depth; return true; }
};

void fillInfo(const rapidjson::Value& resource, ResourceInfo& info) {
  info.resource_type = memberStr(resource, "resourceType");
  info.id = memberStr(resource, "id");
  info.url = memberStr(resource, "url");
  info.version = memberStr(resource, "version");
  info.kind = memberStr(resource, "kind");
  info.type = memberStr(resource, "type");
  info.derivation = memberStr(resource, "derivation");
}

// XML definitions (common in the validator test cases) are converted to JSON once, with the FHIR model.
tl::expected<std::string, std::string> toJsonText(std::string_view text) {
  if (fhir::detectFormat(text) == fhir::Format::Json) return std::string(text);
  fhir::ParseResult parsed = fhir::parseXml(text);
  if (!parsed.document) {
    return tl::make_unexpected(parsed.issues.empty() ? std::string("unreadable XML")
                                                     : parsed.issues.front().message);
  }
  return fhir::writeJson(*parsed.document->root());
}
}  // namespace

struct PackageRegistry::Entry : ResourceInfo {
  ResourceInfo& info = *this;
  std::string file;                                  // read lazily when text is null
  std::shared_ptr<const std::string> text;           // bytes, when already in memory
  std::shared_ptr<rapidjson::Document> bundle;       // Bundle entries: the parsed Bundle ...
  const rapidjson::Value* bundle_resource = nullptr;  // ... and the entry's resource in it
  mutable std::unique_ptr<rapidjson::Document> parsed;
  mutable bool failed = false;
};

PackageRegistry::PackageRegistry() : cache_dir_(defaultCacheDir()) {}
PackageRegistry::~PackageRegistry() = default;

std::string PackageRegistry::defaultCacheDir() {
  if (const char* env = std::getenv("MEDICUS_FHIR_PACKAGES"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.fhir/packages";
}

void PackageRegistry::warn(std::string message) const {
  std::lock_guard lock(mutex_);
  warnings_.push_back(std::move(message));
}

std::vector<std::string> PackageRegistry::warnings() const {
  std::lock_guard lock(mutex_);
  return warnings_;
}

tl::expected<void, std::string> PackageRegistry::loadCore() { return loadFromCache("hl7.fhir.r4.core", "4.0.1", 0); }

tl::expected<void, std::string> PackageRegistry::load(std::string_view spec) {
  std::string path(spec);
  std::error_code ec;
  if (fs::is_directory(path, ec)) return loadFolder(path, path, 0);
  if (fs::is_regular_file(path, ec)) {
    if (endsWith(path, ".tgz") || endsWith(path, ".tar.gz")) return loadArchive(path);
    auto text = readFile(path);
    if (!text) return tl::make_unexpected("cannot read " + path);
    return addResourceText(std::move(*text), path);
  }
  // "name#version" or "name" from the package cache.
  size_t hash = spec.find('#');
  if (hash == std::string_view::npos && spec.find('/') != std::string_view::npos) {
    return tl::make_unexpected("package not found: " + path + " (no such file or folder)");
  }
  return loadFromCache(spec.substr(0, hash), hash == std::string_view::npos ? "" : spec.substr(hash + 1), 0);
}

tl::expected<void, std::string> PackageRegistry::loadFromCache(std::string_view name, std::string_view version,
                                                               int depth) {
  std::string label = std::string(name) + "#" + std::string(version);
  if (!version.empty() && std::find(loaded_packages_.begin(), loaded_packages_.end(), label) != loaded_packages_.end()) {
    return {};
  }
  std::string folder;
  std::error_code ec;
  if (!version.empty()) {
    folder = cache_dir_ + "/" + label;
  } else {  // highest cached version
    std::string best;
    std::string prefix = std::string(name) + "#";
    for (const auto& e : fs::directory_iterator(cache_dir_, ec)) {
      std::string dir = e.path().filename().string();
      if (dir.rfind(prefix, 0) != 0) continue;
      if (best.empty() || compareVersions(dir.substr(prefix.size()), best.substr(prefix.size())) > 0) best = dir;
    }
    if (best.empty()) return tl::make_unexpected("package " + std::string(name) + " is not in the cache " + cache_dir_);
    folder = cache_dir_ + "/" + best;
    label = best;
  }
  if (std::find(loaded_packages_.begin(), loaded_packages_.end(), label) != loaded_packages_.end()) return {};
  if (fs::is_directory(folder + "/package", ec)) folder += "/package";
  if (!fs::is_directory(folder, ec)) {
    return tl::make_unexpected("package " + label + " is not in the cache " + cache_dir_ +
                               " (install it there or pass the .tgz/folder path)");
  }
  return loadFolder(folder, label, depth);
}

tl::expected<void, std::string> PackageRegistry::loadManifestDependencies(std::string_view manifest_json, int depth) {
  rapidjson::Document manifest;
  manifest.Parse<kJsonParseFlags>(manifest_json.data(), manifest_json.size());
  if (manifest.HasParseError() || !manifest.IsObject()) return tl::make_unexpected("package.json is not valid JSON");
  const rapidjson::Value* deps = member(manifest, "dependencies");
  if (!deps || !deps->IsObject()) return {};
  for (const auto& dep : deps->GetObject()) {
    std::string_view name = str(dep.name), version = str(dep.value);
    if (depth >= kMaxDependencyDepth) {
      warn("dependency chain deeper than " + std::to_string(kMaxDependencyDepth) + " at " + std::string(name));
      continue;
    }
    auto loaded = loadFromCache(name, version, depth + 1);
    if (!loaded) warn("dependency " + std::string(name) + "#" + std::string(version) + " not loaded: " + loaded.error());
  }
  return {};
}

tl::expected<void, std::string> PackageRegistry::loadFolder(const std::string& dir_in, const std::string& label_in,
                                                            int depth) {
  std::string dir = dir_in;
  std::error_code ec;
  if (!fs::exists(dir + "/package.json", ec) && fs::is_directory(dir + "/package", ec)) dir += "/package";
  std::string label = label_in;
  if (auto manifest = readFile(dir + "/package.json")) {
    rapidjson::Document m;
    m.Parse<kJsonParseFlags>(manifest->data(), manifest->size());
    if (!m.HasParseError() && m.IsObject() && member(m, "name")) {
      label = std::string(memberStr(m, "name")) + "#" + std::string(memberStr(m, "version"));
    }
    if (std::find(loaded_packages_.begin(), loaded_packages_.end(), label) != loaded_packages_.end()) return {};
    loaded_packages_.push_back(label);
    if (auto deps = loadManifestDependencies(*manifest, depth); !deps) warn(label + ": " + deps.error());
  } else {
    if (std::find(loaded_packages_.begin(), loaded_packages_.end(), label) != loaded_packages_.end()) return {};
    loaded_packages_.push_back(label);
  }

  // .index.json lists every resource with the properties we index: no file needs to be opened.
  if (auto index_text = readFile(dir + "/.index.json")) {
    rapidjson::Document index;
    index.Parse<kJsonParseFlags>(index_text->data(), index_text->size());
    const rapidjson::Value* files = index.HasParseError() ? nullptr : memberArray(index, "files");
    if (files) {
      for (const auto& f : files->GetArray()) {
        auto entry = std::make_unique<Entry>();
        fillInfo(f, entry->info);
        entry->info.package = label;
        entry->file = dir + "/" + std::string(memberStr(f, "filename"));
        if (entry->info.resource_type == "Bundle") {  // definitions inside Bundles need the entries
          if (auto text = readFile(entry->file)) indexText(std::make_shared<const std::string>(std::move(*text)), entry->file, label);
          continue;
        }
        addEntry(std::move(entry));
      }
      return {};
    }
    warn(dir + "/.index.json is unreadable; scanning the folder instead");
  }
  // No index: scan every JSON/XML file (recursively for plain folders like conformance/ + examples/).
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string path = it->path().string();
    std::string name = it->path().filename().string();
    if (name == "package.json" || name == ".index.json" || name.rfind('.', 0) == 0) continue;
    if (!endsWith(name, ".json") && !endsWith(name, ".xml")) continue;
    files.push_back(std::move(path));
  }
  if (ec) return tl::make_unexpected("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    auto text = readFile(path);
    if (!text) { warn("cannot read " + path); continue; }
    indexText(std::make_shared<const std::string>(std::move(*text)), path, label);
  }
  return {};
}

tl::expected<void, std::string> PackageRegistry::loadArchive(const std::string& path) {
  auto compressed = readFile(path);
  if (!compressed) return tl::make_unexpected("cannot read " + path);
  auto tar = gunzip(*compressed, kMaxArchiveBytes);
  if (!tar) return tl::make_unexpected(path + ": " + tar.error());
  auto entries = readTar(*tar);
  if (!entries) return tl::make_unexpected(path + ": " + entries.error());
  std::string label = path;
  for (auto& e : *entries) {
    if (e.name == "package/package.json") {
      rapidjson::Document m;
      m.Parse<kJsonParseFlags>(e.content.data(), e.content.size());
      if (!m.HasParseError() && m.IsObject()) {
        label = std::string(memberStr(m, "name")) + "#" + std::string(memberStr(m, "version"));
      }
      if (std::find(loaded_packages_.begin(), loaded_packages_.end(), label) != loaded_packages_.end()) return {};
      loaded_packages_.push_back(label);
      if (auto deps = loadManifestDependencies(e.content, 0); !deps) warn(label + ": " + deps.error());
      break;
    }
  }
  for (auto& e : *entries) {
    std::string_view name = e.name;
    // Only the package's own resources: not examples/, other/, openapi/ sub-folders.
    if (name.rfind("package/", 0) != 0 || name.find('/', 8) != std::string_view::npos) continue;
    std::string_view file = name.substr(8);
    if (!endsWith(file, ".json") || file == "package.json" || file.rfind('.', 0) == 0) continue;
    indexText(std::make_shared<const std::string>(std::move(e.content)), path + ":" + e.name, label);
  }
  return {};
}

tl::expected<void, std::string> PackageRegistry::addResourceText(std::string text, std::string origin) {
  if (fhir::detectFormat(text) == fhir::Format::Xml) {
    auto json = toJsonText(text);
    if (!json) return tl::make_unexpected(origin + ": " + json.error());
    text = std::move(*json);
  }
  size_t before = resources_.size();
  indexText(std::make_shared<const std::string>(std::move(text)), origin, origin);
  if (resources_.size() == before) return tl::make_unexpected(origin + ": not a FHIR resource");
  return {};
}

void PackageRegistry::indexText(std::shared_ptr<const std::string> text, std::string file, const std::string& package) {
  if (!text->empty() && fhir::detectFormat(*text) == fhir::Format::Xml) {
    auto json = toJsonText(*text);
    if (!json) { warn(file + ": " + json.error()); return; }
    text = std::make_shared<const std::string>(std::move(*json));
  }
  ScanHandler handler;
  rapidjson::Reader reader;
  rapidjson::StringStream stream(text->c_str());
  if (reader.Parse<kJsonParseFlags>(stream, handler).IsError() || handler.info.resource_type.empty()) {
    warn(file + ": not a JSON FHIR resource");
    return;
  }
  if (handler.info.resource_type == "Bundle") {
    auto bundle = std::make_shared<rapidjson::Document>();
    bundle->Parse<kJsonParseFlags>(text->data(), text->size());
    if (const rapidjson::Value* entries = bundle->HasParseError() ? nullptr : memberArray(*bundle, "entry")) {
      for (const auto& e : entries->GetArray()) {
        const rapidjson::Value* resource = member(e, "resource");
        if (!resource || !resource->IsObject()) continue;
        auto entry = std::make_unique<Entry>();
        fillInfo(*resource, entry->info);
        entry->info.package = package;
        entry->file = file;
        entry->bundle = bundle;
        entry->bundle_resource = resource;
        addEntry(std::move(entry));
      }
    }
    // The Bundle itself is indexed as well (it may be an instance the caller wants to resolve).
  }
  auto entry = std::make_unique<Entry>();
  static_cast<ResourceInfo&>(*entry) = std::move(handler.info);
  entry->info.package = package;
  entry->file = std::move(file);
  entry->text = std::move(text);
  addEntry(std::move(entry));
}

void PackageRegistry::addEntry(std::unique_ptr<Entry> entry) {
  Entry* raw = entry.get();
  resources_.push_back(std::move(entry));
  if (!raw->info.url.empty()) by_url_[raw->info.url].push_back(raw);
  const ResourceInfo& info = raw->info;
  // Core type definitions: derivation specialization, in the http://hl7.org/fhir/StructureDefinition/ space.
  // The type's own definition (its url ends in the type's name) wins whatever the load order; another
  // specialization of the same type is kept only while that one is missing.
  constexpr std::string_view kCoreSpace = "http://hl7.org/fhir/StructureDefinition/";
  if (info.resource_type == "StructureDefinition" && info.derivation != "constraint" &&
      info.url.rfind(kCoreSpace, 0) == 0 && !info.type.empty() && info.kind != "logical") {
    if (std::string_view(info.url).substr(kCoreSpace.size()) == info.type) core_types_[info.type] = raw;
    else core_types_.emplace(info.type, raw);
  }
}

const ResourceInfo* PackageRegistry::findCanonical(std::string_view canonical, std::string_view resource_type) const {
  std::string_view url = canonical, version;
  if (size_t bar = canonical.find('|'); bar != std::string_view::npos) {
    url = canonical.substr(0, bar);
    version = canonical.substr(bar + 1);
  }
  auto it = by_url_.find(url);
  if (it == by_url_.end()) return nullptr;
  const Entry* best = nullptr;
  for (const Entry* e : it->second) {
    if (!resource_type.empty() && e->info.resource_type != resource_type) continue;
    if (!version.empty()) {
      std::string_view v = e->info.version;
      bool matches = v == version || (v.size() > version.size() && v.substr(0, version.size()) == version &&
                                      v[version.size()] == '.');
      if (!matches) continue;
    }
    if (!best || compareVersions(e->info.version, best->info.version) > 0) best = e;
  }
  return best ? &best->info : nullptr;
}

const ResourceInfo* PackageRegistry::findTypeDefinition(std::string_view type_name) const {
  auto it = core_types_.find(type_name);
  if (it != core_types_.end()) return &it->second->info;
  // Types are also reachable by their canonical (http://hl7.org/fhir/StructureDefinition/<type>).
  return findCanonical("http://hl7.org/fhir/StructureDefinition/" + std::string(type_name), "StructureDefinition");
}

const rapidjson::Value* PackageRegistry::json(const ResourceInfo& info) const {
  // ResourceInfo is the first member of Entry: recover the entry without a lookup.
  // Every ResourceInfo handed out is the base of an Entry.
  const Entry& entry = static_cast<const Entry&>(info);
  if (entry.bundle_resource) return entry.bundle_resource;
  std::lock_guard lock(mutex_);
  if (entry.parsed) return entry.parsed.get();
  if (entry.failed) return nullptr;
  std::shared_ptr<const std::string> text = entry.text;
  if (!text) {
    auto bytes = readFile(entry.file);
    if (!bytes) {
      entry.failed = true;
      warnings_.push_back("cannot read " + entry.file);
      return nullptr;
    }
    text = std::make_shared<const std::string>(std::move(*bytes));
  }
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse<kJsonParseFlags>(text->data(), text->size());
  if (doc->HasParseError() || !doc->IsObject()) {
    entry.failed = true;
    warnings_.push_back(entry.file + ": invalid JSON");
    return nullptr;
  }
  entry.parsed = std::move(doc);
  return entry.parsed.get();
}

void PackageRegistry::forEach(std::string_view resource_type, const std::function<void(const ResourceInfo&)>& visit) const {
  for (const auto& e : resources_) {
    if (resource_type.empty() || e->info.resource_type == resource_type) visit(e->info);
  }
}

}  // namespace medicus::profiles
