#pragma once
// Compiled StructureDefinitions on demand: published snapshots are used as they are; differential-only
// profiles get a generated snapshot along their baseDefinition chain. Every profile is compiled once
// and shared; lookups are thread-safe.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <rapidjson/fwd.h>
#include <tl/expected.hpp>

#include "medicus/profiles/invariant_engine.h"
#include "medicus/profiles/package_registry.h"
#include "medicus/profiles/structure_definition.h"

namespace medicus::profiles {

class ProfileStore {
 public:
  // `engine` compiles invariants; nullptr leaves them uncompiled (the validator then reports them
  // as not checked). The registry must outlive the store.
  explicit ProfileStore(const PackageRegistry& registry,
                        std::shared_ptr<const InvariantEngine> engine = fhirpathInvariantEngine());
  ~ProfileStore();

  const PackageRegistry& registry() const { return registry_; }
  const InvariantEngine* invariantEngine() const { return engine_.get(); }

  // A profile by canonical ("url" or "url|version"); the error says why it is unusable (unknown,
  // not a StructureDefinition, base missing, ...).
  tl::expected<const CompiledProfile*, std::string> profile(std::string_view canonical);
  // The base definition of a type or resource ("Patient", "HumanName"); nullptr when unknown.
  const CompiledProfile* typeDefinition(std::string_view type_name);

  // ImplementationGuide.global of the loaded guides: profiles every resource of a type covered by the
  // guide must conform to (http://hl7.org/fhir/R4/implementationguide.html).
  struct GlobalProfile {
    std::string type;     // "Patient"
    std::string profile;  // canonical
    std::string guide;    // the ImplementationGuide's url
  };
  const std::vector<GlobalProfile>& globalProfiles();

  // The snapshot element array of a profile or type (published or generated); for tests and tools.
  tl::expected<const rapidjson::Value*, std::string> snapshotElements(std::string_view canonical_or_type);
  // Problems met while generating the snapshot of `canonical` (elements that could not be placed).
  std::vector<std::string> snapshotProblems(std::string_view canonical);

 private:
  struct Generated;
  tl::expected<const rapidjson::Value*, std::string> snapshotLocked(const ResourceInfo& info, int depth);
  tl::expected<const CompiledProfile*, std::string> compileLocked(const ResourceInfo& info);
  const ResourceInfo* resolve(std::string_view canonical_or_type) const;
  std::shared_ptr<const CompiledInvariant> compileExpressionLocked(const std::string& expression,
                                                                  const std::string& context_type, std::string* error);
  void compileExtensionContexts(const rapidjson::Value& sd, CompiledProfile& profile);

  const PackageRegistry& registry_;
  std::shared_ptr<const InvariantEngine> engine_;
  std::recursive_mutex mutex_;
  std::unordered_map<const ResourceInfo*, std::unique_ptr<Generated>> snapshots_;
  std::unordered_map<const ResourceInfo*, std::unique_ptr<CompiledProfile>> compiled_;
  std::unordered_map<std::string, std::string> failures_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const CompiledInvariant>> invariants_;
  // Validation asks for the same profiles and types over and over, mostly with the same strings
  // (an ElementDef's type profile, a TypeInfo's name): found by where the text lives, checked against
  // a copy, without resolving the canonical again. Entries from before the registry grew are ignored.
  struct Recent {
    const char* data = nullptr;
    size_t size = 0;
    size_t registry_size = 0;
    std::string key;
    const CompiledProfile* profile = nullptr;
  };
  Recent recent_[1024];
  Recent& recentSlot(std::string_view canonical_or_type);
  const CompiledProfile* recentLocked(std::string_view canonical_or_type);
  void rememberLocked(std::string_view canonical_or_type, const CompiledProfile* profile);
  std::optional<std::vector<GlobalProfile>> global_profiles_;
};

}  // namespace medicus::profiles
