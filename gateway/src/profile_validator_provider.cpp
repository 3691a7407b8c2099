// ResourceValidatorProvider backed by medicus::profiles (see profile_validator_provider.h).
#include "medicus/gateway/profile_validator_provider.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "medicus/gateway/resource_validator.h"
#include "medicus/profiles/package_registry.h"
#include "medicus/profiles/profile_store.h"
#include "medicus/profiles/terminology.h"
#include "medicus/profiles/validator.h"

namespace medicus::gateway {
namespace {

// One loaded package set. The registry is only written while loading (under the cache's mutex, before
// anyone sees the object); afterwards profiles::Validator is documented thread-safe (its store and
// terminology caches lock internally), so one instance serves every worker thread.
class ProfileValidator final : public ResourceValidator {
 public:
  static tl::expected<std::shared_ptr<ProfileValidator>, std::string> load(const std::vector<std::string>& packages) {
    auto v = std::shared_ptr<ProfileValidator>(new ProfileValidator());
    if (auto core = v->registry_.loadCore(); !core) return tl::unexpected(core.error());
    for (const auto& p : packages) {
      if (auto loaded = v->registry_.load(p); !loaded) return tl::unexpected("package " + p + ": " + loaded.error());
    }
    v->store_ = std::make_unique<profiles::ProfileStore>(v->registry_);
    v->terminology_ = std::make_unique<profiles::Terminology>(v->registry_);
    v->validator_ = std::make_unique<profiles::Validator>(*v->store_, *v->terminology_);
    return v;
  }

  tl::expected<void, std::string> checkProfile(const std::string& url) const {
    if (auto p = store_->profile(url); !p) return tl::unexpected("profile " + url + ": " + p.error());
    return {};
  }

  fhir::Issues validate(const fhir::Document& resource, const std::vector<std::string>& profiles,
                        const std::vector<std::string>& required) const override {
    profiles::ValidationOptions options;
    options.profiles = required;
    // A route's profiles go where their type is: a route for Patient and Encounter writes names both
    // profiles, and a transaction carries both kinds of entries.
    const fhir::TypeInfo* root_type = resource.root() ? resource.root()->type() : nullptr;
    for (const auto& url : profiles) {
      auto profile = store_->profile(url);
      if (!profile || !(*profile)->type_info || !root_type || root_type->isA((*profile)->type_info)) {
        options.profiles.push_back(url);  // (an unknown one is reported by the validator)
      } else if (root_type->name == "Bundle") {
        options.entry_profiles.push_back(url);
      }
    }
    return validator_->validate(resource, options);
  }

 private:
  ProfileValidator() = default;
  profiles::PackageRegistry registry_;
  std::unique_ptr<profiles::ProfileStore> store_;
  std::unique_ptr<profiles::Terminology> terminology_;
  std::unique_ptr<profiles::Validator> validator_;
};

tl::expected<std::shared_ptr<const ResourceValidator>, std::string> provide(const ValidatorRequest& request) {
  static std::mutex mutex;
  static std::map<std::vector<std::string>, std::shared_ptr<ProfileValidator>> cache;
  std::vector<std::string> key = request.packages;
  std::sort(key.begin(), key.end());
  key.erase(std::unique(key.begin(), key.end()), key.end());

  std::lock_guard lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto loaded = ProfileValidator::load(key);
    if (!loaded) return tl::unexpected(loaded.error());  // not cached: a fixed package folder loads on reload
    it = cache.emplace(key, std::move(*loaded)).first;
  }
  for (const auto& url : request.profiles) {
    if (auto known = it->second->checkProfile(url); !known) return tl::unexpected(known.error());
  }
  return std::shared_ptr<const ResourceValidator>(it->second);
}

}  // namespace

void installProfileValidatorProvider() { setResourceValidatorProvider(provide); }

}  // namespace medicus::gateway
