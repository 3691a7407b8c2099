// medicus-conformance: data-driven conformance runs over folders laid out like ../shared/testdata.
// Every subcommand takes --data DIR, may write --report FILE.json and ends with "N passed, M failed".
// Exit: 0 when nothing failed, 1 when some case failed, 2 on usage errors or missing data.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "suite_report.h"

namespace medicus::conformance {
int runRoundtrip(const CommonOptions& options, int argc, char** argv);
int runFhirpath(const CommonOptions& options, int argc, char** argv);
int runValidator(const CommonOptions& options, int argc, char** argv);
int runExamples(const CommonOptions& options, int argc, char** argv);
int runHl7v2(const CommonOptions& options, int argc, char** argv);
int runIzgateway(const CommonOptions& options, int argc, char** argv);
}  // namespace medicus::conformance

namespace {
using medicus::conformance::CommonOptions;

struct Subcommand {
  std::string_view name;
  std::string_view summary;
  int (*run)(const CommonOptions&, int, char**);
};

// Every suite, listed once.
constexpr Subcommand kSubcommands[] = {
    {"roundtrip", "JSON->XML->JSON and XML->JSON->XML round trips of every resource", medicus::conformance::runRoundtrip},
    {"fhirpath", "the official FHIRPath R4 test suite (tests-fhir-r4.xml)", medicus::conformance::runFhirpath},
    {"validator", "FHIR validator test cases vs the Java reference validator's expected error counts", medicus::conformance::runValidator},
    {"examples", "validate every example resource of a folder against core and its meta.profile (--package PKG...)", medicus::conformance::runExamples},
    {"hl7v2", "the shipped HL7 v2 -> FHIR maps vs Microsoft FHIR-Converter's expected Bundles (--map DIR, --known FILE)", medicus::conformance::runHl7v2},
    {"izgateway", "IZ Gateway v2tofhir FHIRPath assertions on the Bundles of the shipped maps (--map DIR, --known FILE)", medicus::conformance::runIzgateway},
};

void usage(std::FILE* out) {
  std::fprintf(out, "usage: medicus-conformance <suite> --data DIR [--report FILE.json] [--verbose] [suite options]\n\nsuites:\n");
  for (const auto& s : kSubcommands) {
    std::fprintf(out, "  %-12.*s %.*s\n", static_cast<int>(s.name.size()), s.name.data(),
                 static_cast<int>(s.summary.size()), s.summary.data());
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string_view name = argv[1];
  CommonOptions options;
  // Suite-specific options are passed on untouched in `rest`.
  std::vector<char*> rest;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--data" && i + 1 < argc) options.data_dir = argv[++i];
    else if (a == "--report" && i + 1 < argc) options.report_file = argv[++i];
    else if (a == "--verbose" || a == "-v") options.verbose = true;
    else rest.push_back(argv[i]);
  }
  for (const auto& s : kSubcommands) {
    if (s.name != name) continue;
    if (options.data_dir.empty()) {
      std::fprintf(stderr, "medicus-conformance %s: --data DIR is required\n", argv[1]);
      return 2;
    }
    return s.run(options, static_cast<int>(rest.size()), rest.data());
  }
  std::fprintf(stderr, "medicus-conformance: unknown suite '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
