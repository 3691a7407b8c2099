// medicus-gateway validate: validates FHIR resources against R4 core, their meta.profile and the
// profiles named on the command line, with the packages given (and R4 core from the package cache).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "medicus/fhir/format.h"
#include "medicus/fhir/operation_outcome.h"
#include "medicus/profiles/folder_resolver.h"
#include "medicus/profiles/validator.h"

namespace medicus::gateway::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: medicus-gateway validate [--package PKG]... [--profile URL]... [--references DIR] [--output text|json]\n"
    "                                [--stats] PATH...\n"
    "\n"
    "Validates each FHIR resource (JSON or XML; a Bundle as a whole; folders recursively) against the\n"
    "R4 core definitions, the profiles in its meta.profile and every --profile URL.\n"
    "  --package PKG   a FHIR package: .tgz, folder, definition file/Bundle, or name#version from the\n"
    "                  package cache ($MEDICUS_FHIR_PACKAGES, else ~/.fhir/packages); repeatable\n"
    "  --profile URL   canonical (optionally |version) every resource must conform to; repeatable\n"
    "  --references DIR  references the file does not hold (Patient/p1) are looked up in DIR\n"
    "                  (Patient-p1.json/.xml or p1.json/.xml holding that resource); a found target is\n"
    "                  checked for its type and the element's targetProfile\n"
    "  --output json   one OperationOutcome per file (a JSON array when several files are given)\n"
    "  --stats         counts and the time spent loading and validating, on stderr\n"
    "Exit: 0 no errors, 1 errors found, 2 usage error or unusable input (unreadable file, unknown package).\n";

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void collectFiles(const std::string& path, std::vector<std::string>& files, bool& missing) {
  std::error_code ec;
  if (path == "-" || fs::is_regular_file(path, ec)) {
    files.push_back(path);
    return;
  }
  if (!fs::is_directory(path, ec)) {
    std::fprintf(stderr, "validate: %s: no such file or folder\n", path.c_str());
    missing = true;
    return;
  }
  std::vector<std::string> found;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string ext = it->path().extension().string();
    if (ext == ".json" || ext == ".xml") found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  files.insert(files.end(), found.begin(), found.end());
}
}  // namespace

int runValidate(const Args& args) {
  std::vector<std::string> packages, paths;
  profiles::ValidationOptions options;
  std::string output = "text";
  std::string references_dir;
  bool stats = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--package" && i + 1 < args.size()) {
      packages.emplace_back(args[++i]);
    } else if (a == "--profile" && i + 1 < args.size()) {
      options.profiles.emplace_back(args[++i]);
    } else if (a == "--references" && i + 1 < args.size()) {
      references_dir = args[++i];
    } else if (a == "--output" && i + 1 < args.size()) {
      output = args[++i];
    } else if (a == "--stats") {
      stats = true;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "validate: unknown option %.*s\n%s", static_cast<int>(a.size()), a.data(), kUsage);
      return kExitUsage;
    } else {
      paths.emplace_back(a);
    }
  }
  if (paths.empty() || (output != "text" && output != "json")) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }

  auto load_start = Clock::now();
  profiles::PackageRegistry registry;
  if (auto core = registry.loadCore(); !core) {
    std::fprintf(stderr, "validate: %s\n", core.error().c_str());
    return kExitUsage;
  }
  for (const auto& p : packages) {
    if (auto loaded = registry.load(p); !loaded) {
      std::fprintf(stderr, "validate: --package %s: %s\n", p.c_str(), loaded.error().c_str());
      return kExitUsage;
    }
  }
  profiles::ProfileStore store(registry);
  profiles::Terminology terminology(registry);
  profiles::Validator validator(store, terminology);
  for (const auto& url : options.profiles) {
    if (auto p = store.profile(url); !p) {
      std::fprintf(stderr, "validate: --profile %s: %s\n", url.c_str(), p.error().c_str());
      return kExitUsage;
    }
  }
  std::unique_ptr<profiles::FolderResolver> resolver;
  if (!references_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(references_dir, ec)) {
      std::fprintf(stderr, "validate: --references %s: no such folder\n", references_dir.c_str());
      return kExitUsage;
    }
    resolver = std::make_unique<profiles::FolderResolver>(references_dir);
    options.reference_resolver = resolver.get();
  }
  double load_ms = msSince(load_start);

  std::vector<std::string> files;
  bool unusable = false;
  for (const auto& p : paths) collectFiles(p, files, unusable);

  size_t error_files = 0, total_errors = 0, total_warnings = 0, bytes = 0;
  double validate_ms = 0;
  std::string json_out;
  if (output == "json" && files.size() > 1) json_out = "[";
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string& file = files[f];
    std::string text;
    if (!readInput(file, text)) {
      unusable = true;
      continue;
    }
    bytes += text.size();
    auto start = Clock::now();
    fhir::ParseResult parsed = fhir::parse(text);
    fhir::Issues issues = std::move(parsed.issues);
    if (parsed.document) validator.validate(*parsed.document, options, issues);
    else unusable = true;
    validate_ms += msSince(start);
    size_t errors = fhir::countAtLeast(issues, fhir::Severity::Error);
    size_t warnings = fhir::countAtLeast(issues, fhir::Severity::Warning) - errors;
    total_errors += errors;
    total_warnings += warnings;
    error_files += errors > 0;
    if (output == "json") {
      auto oo = fhir::buildOperationOutcome(issues);
      std::string one = fhir::writeJson(*oo->root(), {.pretty = files.size() == 1});
      if (files.size() > 1) {
        if (f) json_out += ",\n";
        std::string quoted;
        for (char c : file) {
          if (c == '"' || c == '\\') quoted += '\\';
          quoted += c;
        }
        json_out += "{\"file\":\"" + quoted + "\",\"outcome\":" + one + "}";
      } else {
        json_out += one;
      }
    } else {
      for (const auto& issue : issues) std::printf("%s: %s\n", file.c_str(), fhir::formatIssue(issue).c_str());
      std::printf("%s: %s (%zu errors, %zu warnings)\n", file.c_str(), errors ? "INVALID" : "valid", errors, warnings);
    }
  }
  if (output == "json") {
    if (files.size() > 1) json_out += "]";
    std::printf("%s\n", json_out.c_str());
  }
  if (stats) {
    std::fprintf(stderr,
                 "packages: %zu (%zu resources indexed), load %.1f ms\n"
                 "files: %zu (%zu bytes), %zu with errors; %zu errors, %zu warnings\n"
                 "parse+validate: %.1f ms (%.3f ms per file)\n",
                 registry.loadedPackages().size(), registry.size(), load_ms, files.size(), bytes, error_files,
                 total_errors, total_warnings, validate_ms, files.empty() ? 0.0 : validate_ms / files.size());
  }
  if (unusable) return kExitUsage;
  return total_errors ? kExitInputErrors : kExitOk;
}

}  // namespace medicus::gateway::cli
