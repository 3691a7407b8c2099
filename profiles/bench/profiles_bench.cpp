// profiles_bench: validation cost against the parse-only cost of the same bytes, single thread.
//   profiles_bench [EXAMPLES_DIR] [--rounds N]
// 1. loads R4 core + de.basisprofil + ISiK (from MEDICUS_TESTDATA) and reports the time to be ready;
// 2. parses every example (baseline), then parses + validates it against core (invariants and
//    bindings on), checks both runs saw the same documents, and prints the ratio;
// 3. prints peak RSS.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

  // Warm-up + baseline check: both passes must see the same documents.
  size_t parsed_ok = 0, validated_docs = 0, errors = 0;
  for (const auto& text : inputs) parsed_ok += fhir::parseJson(text).document != nullptr;
  for (const auto& text : inputs) {
    auto parsed = fhir::parseJson(text);
    if (!parsed.document) continue;
    ++validated_docs;
    errors += fhir::countAtLeast(validator.validate(*parsed.document), fhir::Severity::Error);
  }
  if (parsed_ok != validated_docs) {
    std::fprintf(stderr, "profiles_bench: baseline mismatch (%zu parsed, %zu validated)\n", parsed_ok, validated_docs);
    return 1;
  }
  double parse_best = 1e18, validate_best = 1e18;
  for (int r = 0; r < rounds; ++r) {
    auto a = Clock::now();
    size_t n = 0;
    for (const auto& text : inputs) n += fhir::parseJson(text).document != nullptr;
    auto b = Clock::now();
    for (const auto& text : inputs) {
      auto parsed = fhir::parseJson(text);
      if (parsed.document) n += validator.validate(*parsed.document).size() > 1000000;
    }
    auto c = Clock::now();
    parse_best = std::min(parse_best, ms(a, b));
    validate_best = std::min(validate_best, ms(b, c));
    if (n == 0) std::printf(" ");
  }
  std::printf("corpus: %zu files, %.1f MB; %zu errors reported in total\n", inputs.size(), bytes / 1e6, errors);
  std::printf("parse only:        %8.1f ms  (%.1f MB/s)\n", parse_best, bytes / 1e3 / parse_best);
  std::printf("parse + validate:  %8.1f ms  (%.2fx parse; validation alone %.2fx parse)\n", validate_best,
              validate_best / parse_best, (validate_best - parse_best) / parse_best);

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
    auto parsed = fhir::parseJson(bundleOf(sizes[k]));
    if (!parsed.document) return 2;
    double best = 1e300;
    for (int round = 0; round < 3; ++round) {
      auto a = Clock::now();
      auto issues = validator.validate(*parsed.document);
      auto b = Clock::now();
      if (fhir::hasErrors(issues)) {
        std::fprintf(stderr, "profiles_bench: the generated Bundle has errors; the scaling figure would be meaningless\n");
        return 1;
      }
      best = std::min(best, ms(a, b));
    }
    per_entry[k] = best * 1000.0 / sizes[k];
  }
  std::printf("bundle scaling:    %.1f us/entry at 1,000 entries, %.1f us/entry at 10,000 (ratio %.2f; linear ~1)\n",
              per_entry[0], per_entry[1], per_entry[1] / per_entry[0]);

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS: %.1f MB\n", usage.ru_maxrss / 1024.0);
  return 0;
}
