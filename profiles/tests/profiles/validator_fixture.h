#pragma once
// The Validator over the FHIR core package (and any supporting resources a test file gives), as the
// profiles tests that validate JSON text set it up.
#include <catch2/catch.hpp>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "medicus/fhir/format.h"
#include "medicus/fhir/issue.h"
#include "medicus/profiles/package_registry.h"
#include "medicus/profiles/validator.h"

namespace medicus::profiles::testing {

struct ValidatorFixture {
  PackageRegistry registry;
  std::unique_ptr<ProfileStore> store;
  std::unique_ptr<Terminology> tx;
  std::unique_ptr<Validator> validator;

  // `supporting`: {JSON text, origin} of resources loaded beside the core package before the store is built.
  explicit ValidatorFixture(std::initializer_list<std::pair<std::string_view, std::string_view>> supporting = {}) {
    REQUIRE(registry.loadCore());
    for (const auto& [text, origin] : supporting) {
      REQUIRE(registry.addResourceText(std::string(text), std::string(origin)));
    }
    store = std::make_unique<ProfileStore>(registry);
    tx = std::make_unique<Terminology>(registry);
    validator = std::make_unique<Validator>(*store, *tx);
  }

  // Parses `json` and validates it; the parser's issues come first.
  fhir::Issues validate(std::string_view json, const ValidationOptions& options = {}) {
    auto parsed = fhir::parseJson(json);
    REQUIRE(parsed.document);
    INFO(parsed.issues.size());
    fhir::Issues issues = parsed.issues;
    validator->validate(*parsed.document, options, issues);
    return issues;
  }
};

// What the validator tests ask of issue lists.
inline size_t errors(const fhir::Issues& issues) { return fhir::countAtLeast(issues, fhir::Severity::Error); }
inline size_t countRule(const fhir::Issues& issues, std::string_view rule) {
  size_t n = 0;
  for (const auto& i : issues) n += i.rule_id == rule;
  return n;
}
inline bool hasRule(const fhir::Issues& issues, std::string_view rule) { return countRule(issues, rule) > 0; }
// Every issue on a line of its own (for INFO).
inline std::string describe(const fhir::Issues& issues) {
  std::string out;
  for (const auto& i : issues) out += fhir::formatIssue(i) + "\n";
  return out;
}

}  // namespace medicus::profiles::testing
