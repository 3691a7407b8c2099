#pragma once
// FHIR package loading and canonical resolution (http://hl7.org/fhir/packages.html).
//
// A registry holds the conformance resources (StructureDefinition, ValueSet, CodeSystem, ...) of any
// number of packages: .tgz archives, unpacked folders (with package.json, or plain folders of JSON/XML
// files), the package cache (~/.fhir/packages/<name>#<version>/package, MEDICUS_FHIR_PACKAGES
// overrides) and Bundle files of definitions. Loading only indexes (from .index.json when present,
// else by a scan); a resource's JSON is parsed the first time it is asked for.
//
// Thread safety: load*() must not run concurrently with anything else. Lookups and json() may be
// called from many threads at once.
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <rapidjson/fwd.h>
#include <tl/expected.hpp>

namespace medicus::profiles {

// Hash of std::string keys that lookups may give as string_view (with std::equal_to<>): a find()
// by a view into a document then needs no std::string copy.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct ResourceInfo {
  std::string resource_type;  // "StructureDefinition"
  std::string id;
  std::string url;      // canonical, without |version
  std::string version;  // business version; may be empty
  std::string kind;     // StructureDefinition.kind
  std::string type;     // StructureDefinition.type
  std::string derivation;  // StructureDefinition.derivation
  std::string package;  // "hl7.fhir.r4.core#4.0.1", or the file/folder it came from
};

class PackageRegistry {
 public:
  PackageRegistry();
  ~PackageRegistry();
  PackageRegistry(const PackageRegistry&) = delete;
  PackageRegistry& operator=(const PackageRegistry&) = delete;

  // $MEDICUS_FHIR_PACKAGES, else ~/.fhir/packages.
  static std::string defaultCacheDir();
  void setCacheDir(std::string dir) { cache_dir_ = std::move(dir); }
  const std::string& cacheDir() const { return cache_dir_; }

  // Loads a package given as a path (.tgz, folder, single JSON/XML resource or Bundle) or as
  // "name#version" / "name" from the cache. Dependencies in package.json are loaded from the cache;
  // ones not found there are listed in warnings(). Loading the same package twice is a no-op.
  tl::expected<void, std::string> load(std::string_view spec);
  // hl7.fhir.r4.core#4.0.1 from the cache.
  tl::expected<void, std::string> loadCore();
  // One resource or Bundle given as text (JSON or XML); `origin` names it in messages.
  tl::expected<void, std::string> addResourceText(std::string text, std::string origin);

  // "url" or "url|version". Without a version the highest loaded version wins. A version given as
  // "1.5" also matches "1.5.x". nullptr when unknown. `resource_type` empty: any.
  const ResourceInfo* findCanonical(std::string_view canonical, std::string_view resource_type = {}) const;
  // The core StructureDefinition of a type or resource ("Patient", "string", "Quantity").
  const ResourceInfo* findTypeDefinition(std::string_view type_name) const;
  // The resource's JSON (numbers kept as strings, see kJsonParseFlags); nullptr if it cannot be
  // read or parsed (the reason is in warnings()). The value lives as long as the registry.
  const rapidjson::Value* json(const ResourceInfo& info) const;

  void forEach(std::string_view resource_type, const std::function<void(const ResourceInfo&)>& visit) const;
  size_t size() const { return resources_.size(); }
  std::vector<std::string> warnings() const;
  std::vector<std::string> loadedPackages() const { return loaded_packages_; }

  struct Source;  // where a resource's bytes come from (file, archive member, Bundle entry)

 private:
  struct Entry;
  tl::expected<void, std::string> loadFolder(const std::string& dir, const std::string& label, int depth);
  tl::expected<void, std::string> loadArchive(const std::string& path);
  tl::expected<void, std::string> loadFromCache(std::string_view name, std::string_view version, int depth);
  tl::expected<void, std::string> loadManifestDependencies(std::string_view manifest_json, int depth);
  void indexText(std::shared_ptr<const std::string> text, std::string file, const std::string& package);
  void addEntry(std::unique_ptr<Entry> entry);
  void warn(std::string message) const;

  std::string cache_dir_;
  std::vector<std::unique_ptr<Entry>> resources_;
  std::unordered_map<std::string, std::vector<Entry*>, StringViewHash, std::equal_to<>> by_url_;
  // type name -> base StructureDefinition
  std::unordered_map<std::string, Entry*, StringViewHash, std::equal_to<>> core_types_;
  std::vector<std::string> loaded_packages_;
  mutable std::mutex mutex_;  // guards lazy parsing and warnings_
  mutable std::vector<std::string> warnings_;
};

}  // namespace medicus::profiles
