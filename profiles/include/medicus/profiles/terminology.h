#pragma once
// Local terminology: ValueSet expansion from the CodeSystems and ValueSets of the loaded packages
// (http://hl7.org/fhir/R4/valueset.html#expansion): compose include/exclude, concept lists, filters
// (is-a, descendent-of, is-not-a, =, regex, in) and nested value sets. Never a network call: codes of
// systems that are not available locally (SNOMED CT, LOINC, UCUM, ...) come back as CannotCheck with
// the reason, so the caller reports them explicitly instead of passing them silently.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/profiles/package_registry.h"

namespace medicus::profiles {

enum class CodeStatus : uint8_t { Valid, Invalid, CannotCheck };

struct CodeCheck {
  CodeStatus status = CodeStatus::CannotCheck;
  std::string detail;             // why Invalid or CannotCheck, for the issue message
  std::string expected_display;   // display from the code system, when known
  bool display_mismatch = false;  // a display was given and differs from every known display
};

class Terminology {
 public:
  explicit Terminology(const PackageRegistry& registry);
  ~Terminology();

  // Is (system, code) in the value set? `system` empty: a bare code (code datatype) matched in any
  // system of the value set. Thread-safe; expansions are computed once.
  CodeCheck checkValueSet(std::string_view value_set, std::string_view system, std::string_view code,
                          std::string_view display = {});
  // Is the code defined by the code system? CannotCheck when the system is not available locally
  // (or only as a fragment / not-present content).
  CodeCheck checkCodeSystem(std::string_view system, std::string_view code, std::string_view display = {});

  // Does `ancestor` subsume `descendant` in the code system (FHIRPath subsumes(), the $subsumes
  // operation's is-a)? Is-a links are the concept nesting (unless the CodeSystem's hierarchyMeaning
  // says it means something else: grouped-by, part-of, classified-with) and the `subsumedBy`
  // property, plus `parent` under an is-a hierarchy. Equal codes are true. An error, never a guess,
  // when the system is not available locally, a code is unknown, or only a fragment of the system
  // is loaded and no is-a path was found.
  tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                           std::string_view descendant);

  // Number of codes in the local expansion, or -1 when the value set cannot be expanded (for tests).
  long expansionSize(std::string_view value_set);

  struct CodeSystemIndex;
  struct Expansion;

 private:
  const CodeSystemIndex* codeSystem(std::string_view url);
  const Expansion* expand(std::string_view url, int depth);

  const PackageRegistry& registry_;
  std::recursive_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<CodeSystemIndex>, StringViewHash, std::equal_to<>> code_systems_;
  std::unordered_map<std::string, std::unique_ptr<Expansion>, StringViewHash, std::equal_to<>> expansions_;
  // checkValueSet() is asked about the same few value sets over and over, mostly with the same
  // string (a binding's value_set): by where the text lives, checked against the key, no hashing.
  struct RecentExpansion {
    const char* data = nullptr;
    size_t size = 0;
    const std::string* key = nullptr;  // the expansions_ key (node-stable)
    const Expansion* expansion = nullptr;
  };
  RecentExpansion recent_[1024];  // (every profile element's binding has its own copy of the url)
  const Expansion* expandCached(std::string_view url);  // under mutex_
  const Expansion* expansionFor(std::string_view url);  // a per-thread cache in front of expandCached
  const uint64_t id_;  // tells this instance's entries in the per-thread cache apart
};

}  // namespace medicus::profiles
