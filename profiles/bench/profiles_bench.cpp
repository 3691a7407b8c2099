// profiles_bench: validation cost against the parse-only cost of the same bytes, single thread.
//   profiles_bench [EXAMPLES_DIR] [--rounds N]
// 1. loads R4 core + de.basisprofil + ISiK (from MEDICUS_TESTDATA) and reports the time to be ready;
// 2. parses every example of the R4 corpus (baseline), then parses + validates it against core
//    (invariants and bindings on), checks both runs saw the same documents, and prints the ratio;
// 3. the same for the ISiK examples (isik-basismodul/examples, those declaring a meta.profile):
//    each against its meta.profile ISiK profiles + core, beside parsing the same bytes;
// 4. Bundle scaling (1,000 vs 10,000 entries), contained scaling (500 vs 4,000 contained resources)
//    and peak RSS.
// Targets (issue 4): parse + validate at most 3x parse for core, at most 5x for ISiK.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "medicus/fhir/format.h"
#include "medicus/profiles/validator.h"

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }
}  // namespace

int main(int argc, char** argv) {
  using namespace medicus;
  std::string testdata = std::getenv("MEDICUS_TESTDATA") ? std::getenv("MEDICUS_TESTDATA") : MEDICUS_TESTDATA_DEFAULT;
  std::string dir = testdata + "/fhir-r4-examples/json";
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else dir = a;
  }
  std::vector<std::string> inputs;
  size_t bytes = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    inputs.push_back(s.str());
    bytes += inputs.back().size();
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "profiles_bench: no JSON files in %s\n", dir.c_str());
    return 2;
  }

  auto t0 = Clock::now();
  profiles::PackageRegistry registry;
  if (!registry.loadCore()) return 2;
  for (std::string pkg : {"/de-basisprofil-r4/conformance", "/isik-basismodul/conformance"}) {
    if (fs::exists(testdata + pkg)) (void)registry.load(testdata + pkg);
  }
  profiles::ProfileStore store(registry);
  profiles::Terminology terminology(registry);
  profiles::Validator validator(store, terminology);
  auto t1 = Clock::now();
  size_t ready = 0;
  for (const char* url : {"https://gematik.de/fhir/isik/StructureDefinition/ISiKPatient",
                          "https://gematik.de/fhir/isik/StructureDefinition/ISiKKontaktGesundheitseinrichtung",
                          "https://gematik.de/fhir/isik/StructureDefinition/ISiKDiagnose"}) {
    ready += store.profile(url).has_value();
  }
  auto t2 = Clock::now();
  std::printf("load: core + de.basisprofil + ISiK indexed in %.1f ms (%zu resources); 3 ISiK profiles compiled "
              "(snapshots generated) in %.1f ms (%zu ok)\n", ms(t0, t1), registry.size(), ms(t1, t2), ready);

  // Parse-only vs parse + validate of the same bytes, the best of rounds * reps passes over the
  // corpus (small corpora get more passes). A warm-up pass first compiles the profiles and checks
  // that both passes see the same documents.
  struct Figures { double parse_ms = 0, validate_ms = 0; size_t errors = 0; };
  auto measure = [&](const std::vector<std::string>& corpus, int reps) -> std::optional<Figures> {
    Figures f;
    size_t parsed_ok = 0, validated_docs = 0;
    for (const auto& text : corpus) parsed_ok += fhir::parseJson(text).document != nullptr;
    for (const auto& text : corpus) {
      auto parsed = fhir::parseJson(text);
      if (!parsed.document) continue;
      ++validated_docs;
      f.errors += fhir::countAtLeast(validator.validate(*parsed.document), fhir::Severity::Error);
    }
    if (parsed_ok != validated_docs || parsed_ok != corpus.size()) {
      std::fprintf(stderr, "profiles_bench: baseline mismatch (%zu files, %zu parsed, %zu validated)\n", corpus.size(),
                   parsed_ok, validated_docs);
      return std::nullopt;
    }
    // Best single pass of each, parse and parse + validate alternating: on a shared machine the
    // minimum is the figure least disturbed by other processes (a mean over many passes is not).
    f.parse_ms = f.validate_ms = 1e18;
    for (int r = 0; r < rounds * reps; ++r) {
      auto a = Clock::now();
      size_t n = 0;
      for (const auto& text : corpus) n += fhir::parseJson(text).document != nullptr;
      auto b = Clock::now();
      for (const auto& text : corpus) {
        auto parsed = fhir::parseJson(text);
        if (parsed.document) n += validator.validate(*parsed.document).size() > 1000000;
      }
      auto c = Clock::now();
      f.parse_ms = std::min(f.parse_ms, ms(a, b));
      f.validate_ms = std::min(f.validate_ms, ms(b, c));
      if (n == 0) std::printf(" ");
    }
    return f;
  };
  auto print = [](const char* what, const Figures& f, size_t bytes, double target) {
    std::printf("%s parse only:        %8.2f ms  (%.1f MB/s)\n", what, f.parse_ms, bytes / 1e3 / f.parse_ms);
    std::printf("%s parse + validate:  %8.2f ms  (%.2fx parse, target <= %.0fx; validation alone %.2fx parse)\n", what,
                f.validate_ms, f.validate_ms / f.parse_ms, target, (f.validate_ms - f.parse_ms) / f.parse_ms);
  };

  auto core = measure(inputs, 1);
  if (!core) return 1;
  std::printf("core corpus: %zu files, %.1f MB; %zu errors reported in total\n", inputs.size(), bytes / 1e6, core->errors);
  print("core:", *core, bytes, 3);

  // The ISiK examples that declare a profile (the Binary examples and one minimal Patient declare
  // none and would only repeat the core figure). JSON only, like the core corpus.
  std::vector<std::string> isik;
  size_t isik_bytes = 0;
  for (const auto& e : fs::directory_iterator(testdata + "/isik-basismodul/examples", ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    if (s.str().find("\"profile\"") == std::string::npos) continue;
    isik.push_back(s.str());
    isik_bytes += isik.back().size();
  }
  if (isik.empty()) {
    std::printf("isik: no ISiK examples under %s/isik-basismodul/examples; skipped\n", testdata.c_str());
  } else {
    auto figures = measure(isik, std::max<int>(1, static_cast<int>(bytes / std::max<size_t>(isik_bytes, 1) / 4)));
    if (!figures) return 1;
    std::printf("isik corpus: %zu files with meta.profile, %.1f KB; %zu errors reported in total\n", isik.size(),
                isik_bytes / 1e3, figures->errors);
    print("isik:", *figures, isik_bytes, 5);
  }

  // Best of 3 validations of `json` in microseconds per item (n items): < 0 when it does not parse (-2)
  // or has errors (-1), which would make a scaling figure meaningless.
  auto usPerItem = [&](const std::string& json, int n, const char* what) -> double {
    auto parsed = fhir::parseJson(json);
    if (!parsed.document) return -2;
    double best = 1e300;
    for (int round = 0; round < 3; ++round) {
      auto a = Clock::now();
      auto issues = validator.validate(*parsed.document);
      auto b = Clock::now();
      if (fhir::hasErrors(issues)) {
        std::fprintf(stderr, "profiles_bench: the generated %s has errors; the scaling figure would be meaningless\n", what);
        return -1;
      }
      best = std::min(best, ms(a, b));
    }
    return best * 1000.0 / n;
  };
  // main's exit code for a failed scaling figure: 2 unparseable, 1 errors.
  auto exitCodeOf = [](double us) { return us == -2 ? 2 : 1; };

  // Bundle scaling: entries that reference each other, 1,000 vs 10,000 entries. Linear handling keeps
  // the time per entry about the same (a ratio near 1); quadratic reference resolution would give ~10.
  auto bundleOf = [](int n) {
    std::string json = R"({"resourceType":"Bundle","type":"collection","entry":[)";
    for (int i = 0; i < n; ++i) {
      if (i) json += ',';
      json += R"({"fullUrl":"http://ex.org/Patient/)" + std::to_string(i) + R"(","resource":{"resourceType":"Patient","id":")" +
              std::to_string(i) + R"(","gender":"male","link":[{"other":{"reference":"Patient/)" + std::to_string((i + 1) % n) +
              R"("},"type":"seealso"}]}})";
    }
    return json + "]}";
  };
  double per_entry[2] = {0, 0};
  const int sizes[2] = {1000, 10000};
  for (int k = 0; k < 2; ++k) {
    per_entry[k] = usPerItem(bundleOf(sizes[k]), sizes[k], "Bundle");
    if (per_entry[k] < 0) return exitCodeOf(per_entry[k]);
  }
  std::printf("bundle scaling:    %.1f us/entry at 1,000 entries, %.1f us/entry at 10,000 (ratio %.2f; linear ~1)\n",
              per_entry[0], per_entry[1], per_entry[1] / per_entry[0]);

  // Contained scaling: a DiagnosticReport whose result references each of its contained Observations,
  // 500 vs 4,000 of them. ref-1 (%rootResource.contained.id per reference) and dom-3 (each contained
  // resource referenced from the container) were quadratic in FHIRPath; one id set per container keeps
  // the time per contained resource about the same (ratio near 1; quadratic: ~8).
  auto reportOf = [](int n) {
    std::string contained, result;
    for (int i = 0; i < n; ++i) {
      if (i) contained += ',', result += ',';
      contained += R"({"resourceType":"Observation","id":"o)" + std::to_string(i) +
                   R"(","status":"final","code":{"text":"x"}})";
      result += R"({"reference":"#o)" + std::to_string(i) + "\"}";
    }
    return R"({"resourceType":"DiagnosticReport","id":"d","status":"final","code":{"text":"x"},"contained":[)" + contained +
           R"(],"result":[)" + result + "]}";
  };
  double per_contained[2] = {0, 0};
  const int contained_sizes[2] = {500, 4000};
  for (int k = 0; k < 2; ++k) {
    per_contained[k] = usPerItem(reportOf(contained_sizes[k]), contained_sizes[k], "DiagnosticReport");
    if (per_contained[k] < 0) return exitCodeOf(per_contained[k]);
  }
  std::printf("contained scaling: %.1f us/contained at 500, %.1f us/contained at 4,000 (ratio %.2f; linear ~1)\n",
              per_contained[0], per_contained[1], per_contained[1] / per_contained[0]);

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS: %.1f MB\n", usage.ru_maxrss / 1024.0);
  return 0;
}
