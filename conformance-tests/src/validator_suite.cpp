// medicus-conformance validator: the FHIR validator test cases (fhir-test-cases/validator, R4 subset)
// against the Java reference validator's expected outcomes. A case passes when our number of
// fatal+error issues equals the reference's, for the base validation and, when the case has one, the
// validation against its profile. Exit 0 when agreement >= --target and every disagreement is listed
// with a reason in --known; otherwise 1. Listed cases that agree now are named but do not fail the run.
#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "known_issues.h"
#include "medicus/fhir/format.h"
#include "medicus/profiles/folder_resolver.h"
#include "medicus/profiles/validator.h"
#include "suite_report.h"

namespace medicus::conformance {
namespace {
namespace fs = std::filesystem;

std::optional<std::string> slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : std::string();
}
long num(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return 0;
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsInt() ? it->value.GetInt() : 0;
}

std::string summarize(const fhir::Issues& issues, size_t max = 4) {
  std::string out;
  size_t shown = 0;
  for (const auto& i : issues) {
    if (i.severity != fhir::Severity::Error && i.severity != fhir::Severity::Fatal) continue;
    if (shown++ == max) { out += " ..."; break; }
    out += " [" + fhir::formatIssue(i) + "]";
  }
  return out;
}
}  // namespace

int runValidator(const CommonOptions& options, int argc, char** argv) {
  double target = 0.9;
  std::string known_file;
  std::string only;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--target" && i + 1 < argc) target = std::atof(argv[++i]);
    else if (a == "--known" && i + 1 < argc) known_file = argv[++i];
    else if (a == "--case" && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "validator: unknown option %s (use --target F, --known FILE, --case NAME)\n", argv[i]);
      return 2;
    }
  }
  fs::path dir = options.data_dir;
  auto index_text = slurp(dir / "cases.json");
  if (!index_text) {
    std::fprintf(stderr, "validator: %s/cases.json not found\n", options.data_dir.c_str());
    return 2;
  }
  rapidjson::Document index;
  index.Parse(index_text->c_str());
  if (index.HasParseError() || !index.IsObject() || !index.HasMember("cases") || !index["cases"].IsArray()) {
    std::fprintf(stderr, "validator: cases.json is not in the expected format\n");
    return 2;
  }
  // The upstream manifest (optional): settings given on a case's profile step, which the index
  // does not carry (e.g. assumeValidRestReferences inside "profile").
  rapidjson::Document manifest;
  std::map<std::string, const rapidjson::Value*> manifest_profiles;  // name|file -> its "profile"
  std::map<std::string, const rapidjson::Value*> manifest_entries;   // name|file -> the entry
  if (auto manifest_text = slurp(dir / "manifest.json")) {
    manifest.Parse(manifest_text->c_str());
    if (!manifest.HasParseError() && manifest.IsObject() && manifest.HasMember("test-cases") &&
        manifest["test-cases"].IsArray()) {
      for (const auto& t : manifest["test-cases"].GetArray()) {
        manifest_entries.emplace(str(t, "name") + "|" + str(t, "file"), &t);
        auto p = t.IsObject() ? t.FindMember("profile") : t.MemberEnd();
        if (p != t.MemberEnd() && p->value.IsObject()) manifest_profiles.emplace(str(t, "name") + "|" + str(t, "file"), &p->value);
      }
    }
  }
  KnownIssues known = known_file.empty() ? KnownIssues() : KnownIssues::load(known_file);
  SuiteReport report("validator");
  report.setProgress(options.verbose ? 25 : 0);
  size_t known_failures = 0, unlisted_failures = 0;
  std::vector<std::string> unlisted;
  std::vector<std::string> stale;  // listed as disagreements, but agreeing now

  auto record = [&](const std::string& module, const std::string& id, long expected, const fhir::Issues& issues) {
    long actual = static_cast<long>(fhir::countAtLeast(issues, fhir::Severity::Error));
    if (!only.empty() && options.verbose) {  // one case asked for: show every issue
      std::printf("%s: expected %ld errors, got %ld\n", id.c_str(), expected, actual);
      for (const auto& i : issues) std::printf("  %s\n", fhir::formatIssue(i).c_str());
    }
    if (actual == expected) {
      report.pass(module, id);
      // A listed case that agrees now does not fail the run; it is named so the list can be trimmed.
      if (known.reasonFor(id)) stale.push_back(id);
      return;
    }
    std::string why = "expected " + std::to_string(expected) + " errors, got " + std::to_string(actual) + summarize(issues);
    if (auto reason = known.reasonFor(id)) {
      ++known_failures;
      why += " (known: " + *reason + ")";
    } else {
      ++unlisted_failures;
      unlisted.push_back(id);
    }
    report.fail(module, id, why);
  };

  for (const auto& c : index["cases"].GetArray()) {
    std::string name = str(c, "name"), file = str(c, "file"), module = str(c, "module");
    if (!only.empty() && name != only) continue;
    std::string id = name + "@" + file;
    // As the upstream runner does, the profile step's own files (profile.source, profile.supporting)
    // are loaded for the profile validation only, not for the base one.
    std::set<std::string> profile_only;
    if (auto it = manifest_entries.find(name + "|" + file); it != manifest_entries.end()) {
      const rapidjson::Value& entry = *it->second;
      auto list = [&](const rapidjson::Value& v, const char* key, std::set<std::string>& out) {
        auto m = v.FindMember(key);
        if (m == v.MemberEnd()) return;
        if (m->value.IsString()) out.insert(m->value.GetString());
        if (m->value.IsArray()) for (const auto& s : m->value.GetArray()) if (s.IsString()) out.insert(s.GetString());
      };
      std::set<std::string> shared;
      list(entry, "supporting", shared);
      list(entry, "profiles", shared);
      if (auto p = entry.FindMember("profile"); p != entry.MemberEnd() && p->value.IsObject()) {
        list(p->value, "source", profile_only);
        list(p->value, "supporting", profile_only);
      }
      for (const auto& s : shared) profile_only.erase(s);
    }
    auto makeRegistry = [&](bool with_profile_files, bool& inputs_ok) -> std::unique_ptr<profiles::PackageRegistry> {
      auto registry = std::make_unique<profiles::PackageRegistry>();
      if (auto core = registry->loadCore(); !core) {
        std::fprintf(stderr, "validator: %s\n", core.error().c_str());
        return nullptr;
      }
      if (c.HasMember("inputs") && c["inputs"].IsArray()) {
        for (const auto& in : c["inputs"].GetArray()) {
          if (!in.IsString() || file == in.GetString()) continue;
          if (!with_profile_files && profile_only.count(in.GetString())) continue;
          auto input = slurp(dir / in.GetString());
          if (!input) { inputs_ok = false; continue; }
          (void)registry->addResourceText(std::move(*input), in.GetString());
        }
      }
      return registry;
    };
    bool inputs_ok = true;
    auto registry_ptr = makeRegistry(true, inputs_ok);
    if (!registry_ptr) return 2;
    auto text = slurp(dir / file);
    if (!text || !inputs_ok) {
      report.skip(module, id, "input files missing");
      continue;
    }
    profiles::PackageRegistry& registry = *registry_ptr;
    profiles::ProfileStore store(registry);
    profiles::Terminology terminology(registry);
    profiles::Validator validator(store, terminology);
    // The base run's definitions: without the profile step's own files, when it has any.
    std::unique_ptr<profiles::PackageRegistry> base_registry;
    std::unique_ptr<profiles::ProfileStore> base_store;
    std::unique_ptr<profiles::Terminology> base_terminology;
    std::unique_ptr<profiles::Validator> base_validator;
    if (!profile_only.empty()) {
      base_registry = makeRegistry(false, inputs_ok);
      if (!base_registry) return 2;
      base_store = std::make_unique<profiles::ProfileStore>(*base_registry);
      base_terminology = std::make_unique<profiles::Terminology>(*base_registry);
      base_validator = std::make_unique<profiles::Validator>(*base_store, *base_terminology);
    }
    fhir::ParseOptions parse_options;
    parse_options.allow_xsi_schema_location = false;  // the reference harness does not allow it either
    if (auto it = c.FindMember("options"); it != c.MemberEnd() && it->value.IsObject()) {
      const auto& o = it->value;
      if (o.HasMember("allow-comments") && o["allow-comments"].IsBool()) parse_options.allow_comments = o["allow-comments"].GetBool();
    }
    fhir::ParseResult parsed = fhir::parse(*text, parse_options);
    const rapidjson::Value& expected = c["expected"];
    // The reference test harness's settings: unknown extensions are errors, except in the example
    // domains (unless "examples": false) and the case's allowed-extension-domain.
    profiles::ValidationOptions case_options;
    case_options.allow_unknown_extensions = false;
    case_options.allow_example_extensions = true;
    if (auto it = c.FindMember("options"); it != c.MemberEnd() && it->value.IsObject()) {
      const auto& o = it->value;
      if (o.HasMember("examples") && o["examples"].IsBool()) {
        case_options.allow_example_urls = case_options.allow_example_extensions = o["examples"].GetBool();
      }
      if (str(o, "validateContains") == "IGNORE") case_options.validate_contained = false;
      if (o.HasMember("enforceAggregationOutsideBundles") && o["enforceAggregationOutsideBundles"].IsBool()) {
        case_options.enforce_aggregation_outside_bundles = o["enforceAggregationOutsideBundles"].GetBool();
      }
      if (o.HasMember("no-experimental-content") && o["no-experimental-content"].IsBool()) {
        case_options.no_experimental_content = o["no-experimental-content"].GetBool();
      }
      if (o.HasMember("security-checks") && o["security-checks"].IsBool()) {
        case_options.security_checks = o["security-checks"].GetBool();
      }
      if (o.HasMember("noHtmlInMarkdown") && o["noHtmlInMarkdown"].IsBool()) {
        case_options.no_html_in_markdown = o["noHtmlInMarkdown"].GetBool();
      }
      std::string domain = str(o, "allowed-extension-domain");
      if (!domain.empty()) case_options.allowed_extension_domains.push_back(domain);
      if (o.HasMember("assumeValidRestReferences") && o["assumeValidRestReferences"].IsBool()) {
        case_options.assume_valid_rest_references = o["assumeValidRestReferences"].GetBool();
      }
    }
    // validateReference CHECK_VALID: the upstream runner fetches referenced resources from the test
    // folder and checks them against the targetProfile; so do we, through a folder resolver.
    std::unique_ptr<profiles::FolderResolver> folder_resolver;
    if (auto it = c.FindMember("options"); it != c.MemberEnd() && str(it->value, "validateReference") == "CHECK_VALID") {
      folder_resolver = std::make_unique<profiles::FolderResolver>(dir.string());
      case_options.reference_resolver = folder_resolver.get();
    }
    const rapidjson::Value* profile_step = nullptr;
    if (auto it = manifest_profiles.find(name + "|" + file); it != manifest_profiles.end()) profile_step = it->second;
    auto validateWith = [&](const std::vector<std::string>& profile_urls) {
      fhir::Issues issues = parsed.issues;
      if (parsed.document) {
        profiles::ValidationOptions vo = case_options;
        vo.profiles = profile_urls;
        if (!profile_urls.empty() && profile_step && profile_step->HasMember("assumeValidRestReferences") &&
            (*profile_step)["assumeValidRestReferences"].IsBool()) {
          vo.assume_valid_rest_references = (*profile_step)["assumeValidRestReferences"].GetBool();
        }
        const profiles::Validator& v = profile_urls.empty() && base_validator ? *base_validator : validator;
        v.validate(*parsed.document, vo, issues);
      }
      return issues;
    };
    if (expected.HasMember("base")) {
      const auto& base = expected["base"];
      record(module, id + "#base", num(base, "fatal") + num(base, "error") + num(base, "errorCount"), validateWith({}));
    }
    if (expected.HasMember("profile")) {
      const auto& prof = expected["profile"];
      std::string source = str(prof, "source");
      std::string url;
      if (auto src = slurp(dir / source)) {
        fhir::ParseResult sd = fhir::parse(*src);
        if (sd.document && sd.document->root()->child("url") && sd.document->root()->child("url")->hasValue()) {
          url = std::string(sd.document->root()->child("url")->value());
        }
      }
      if (url.empty()) {
        report.skip(module, id + "#profile", "profile source " + source + " has no url");
      } else {
        record(module, id + "#profile", num(prof, "fatal") + num(prof, "error") + num(prof, "errorCount"),
               validateWith({url}));
      }
    }
  }
  report.print(stdout);
  if (!options.report_file.empty()) report.writeJson(options.report_file);
  size_t compared = report.passed() + report.failed();
  double agreement = compared ? static_cast<double>(report.passed()) / static_cast<double>(compared) : 0.0;
  std::printf("agreement with the Java reference validator: %.1f%% (target %.1f%%); %zu known disagreements, %zu not listed\n",
              agreement * 100.0, target * 100.0, known_failures, unlisted_failures);
  if (!unlisted.empty() && options.verbose) {
    for (const auto& u : unlisted) std::printf("  not listed: %s\n", u.c_str());
  }
  for (const auto& s : stale) std::printf("  listed but agreeing now (remove it from the list): %s\n", s.c_str());
  return agreement >= target && unlisted_failures == 0 ? 0 : 1;
}

}  // namespace medicus::conformance
