// medicus-conformance examples: validates every resource in a folder (recursively, skipping
// conformance/ folders of definitions) against core and its declared meta.profile, with the given
// packages loaded. A resource passes with zero errors. Exit 0 when every failure is listed in --known
// (or with --report-only, whenever the run completed); otherwise 1. Listed files that validate cleanly
// are named (the list should lose them) but do not fail the run. --verbose shows every error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "known_issues.h"
#include "medicus/fhir/format.h"
#include "medicus/profiles/validator.h"
#include "suite_packages.h"
#include "suite_report.h"

namespace medicus::conformance {
namespace {
namespace fs = std::filesystem;

std::string resolvePackage(const std::string& spec) {
  std::error_code ec;
  if (fs::exists(spec, ec)) return spec;
  // Relative package folders are taken from the shared test data, like --data.
  if (const char* data = std::getenv("MEDICUS_TESTDATA"); data && *data) {
    fs::path candidate = fs::path(data) / spec;
    if (fs::exists(candidate, ec)) return candidate.string();
  }
  return spec;  // name#version from the package cache
}
}  // namespace

int runExamples(const CommonOptions& options, int argc, char** argv) {
  std::vector<std::string> packages;
  std::string known_file;
  bool report_only = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--package" && i + 1 < argc) packages.push_back(resolvePackage(argv[++i]));
    else if (a == "--known" && i + 1 < argc) known_file = argv[++i];
    else if (a == "--report-only") report_only = true;
    else {
      std::fprintf(stderr, "examples: unknown option %s (use --package PKG, --known FILE, --report-only)\n", argv[i]);
      return 2;
    }
  }
  auto load_start = std::chrono::steady_clock::now();
  profiles::PackageRegistry registry;
  if (!loadSuitePackages("examples", registry, packages)) return 2;
  profiles::ProfileStore store(registry);
  profiles::Terminology terminology(registry);
  profiles::Validator validator(store, terminology);
  double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();

  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(options.data_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec) && it->path().filename() == "conformance") {
      it.disable_recursion_pending();
      continue;
    }
    std::string ext = it->path().extension().string();
    std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec) || (ext != ".json" && ext != ".xml")) continue;
    if (name == "package.json" || name == "index.json" || name == ".index.json") continue;
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  KnownIssues known = known_file.empty() ? KnownIssues() : KnownIssues::load(known_file);
  SuiteReport report("examples");
  report.setProgress(options.verbose ? 200 : 0);
  size_t unlisted = 0;
  std::vector<std::string> clean_but_listed;  // stale entries of --known: named, but not a failure
  double validate_ms = 0;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    std::string name = path.filename().string();
    auto start = std::chrono::steady_clock::now();
    fhir::ParseResult parsed = fhir::parse(text.str());
    if (!parsed.document) {
      report.skip("unreadable", name, parsed.issues.empty() ? "not a resource" : parsed.issues.front().message);
      continue;
    }
    std::string group(parsed.document->root()->type()->name);
    fhir::Issues issues = std::move(parsed.issues);
    validator.validate(*parsed.document, {}, issues);
    validate_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!fhir::hasErrors(issues)) {
      report.pass(group, name);
      if (known.reasonFor(name)) clean_but_listed.push_back(name);
      continue;
    }
    std::string why;
    size_t shown = 0;
    for (const auto& i : issues) {
      if (i.severity != fhir::Severity::Error && i.severity != fhir::Severity::Fatal) continue;
      if (shown++ == 3 && !options.verbose) { why += " ..."; break; }  // --verbose: every error
      why += " [" + fhir::formatIssue(i) + "]";
    }
    if (auto reason = known.reasonFor(name)) why += " (known: " + *reason + ")";
    else ++unlisted;
    report.fail(group, name, why);
  }
  report.print(stdout, 200);
  if (!options.report_file.empty()) report.writeJson(options.report_file);
  std::printf("load %.0f ms, parse+validate %.0f ms for %zu files; %zu failures not in the known list\n", load_ms,
              validate_ms, files.size(), unlisted);
  for (const auto& name : clean_but_listed) std::printf("  listed but clean now (remove it from the list): %s\n", name.c_str());
  return report_only || unlisted == 0 ? 0 : 1;
}

}  // namespace medicus::conformance
