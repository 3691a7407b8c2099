// Benchmark: FHIR JSON parse-into-model and serialise throughput over the R4 examples and Synthea
// corpora, beside a bare RapidJSON DOM parse and write of the same bytes in the same run.
// Targets (issue 2): model parse <= 2x bare parse; model write <= 2x bare write.
// usage: fhir_model_bench [TESTDATA_DIR] [--seconds S]
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "medicus/fhir/format.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Corpus {
  std::string name;
  std::vector<std::string> files;
  size_t bytes = 0;
};

Corpus load(const std::string& name, const fs::path& dir) {
  Corpus c{name, {}, 0};
  if (!fs::is_directory(dir)) return c;
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename() != "index.json" &&
        e.path().filename() != "package.json") {
      paths.push_back(e.path());
    }
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    c.bytes += text.size();
    c.files.push_back(std::move(text));
  }
  return c;
}

// Times `baseline` and `candidate` over the corpus in alternating rounds (the machine is shared and
// noisy: alternating keeps both under the same load) and returns the best MB/s of each.
template <typename Baseline, typename Candidate>
std::pair<double, double> compare(const Corpus& c, double seconds, Baseline&& baseline, Candidate&& candidate) {
  auto once = [&](auto&& fn) {
    size_t bytes = 0;
    auto start = Clock::now();
    double elapsed = 0;
    do {
      for (size_t i = 0; i < c.files.size(); ++i) bytes += fn(i);
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds / 10);
    return bytes / elapsed / 1e6;
  };
  double best_base = 0, best_cand = 0;
  for (int round = 0; round < 5; ++round) {
    best_base = std::max(best_base, once(baseline));
    best_cand = std::max(best_cand, once(candidate));
  }
  return {best_base, best_cand};
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = std::getenv("MEDICUS_TESTDATA") ? std::getenv("MEDICUS_TESTDATA") : MEDICUS_TESTDATA_DEFAULT;
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else data = a;
  }
  std::vector<Corpus> corpora = {load("r4-examples", fs::path(data) / "fhir-r4-examples"),
                                 load("synthea", fs::path(data) / "synthea-r4")};
  std::printf("%-12s %8s %12s %12s %7s %12s %12s %7s\n", "corpus", "MB", "bare parse", "model parse", "ratio",
              "bare write", "model write", "ratio");
  int status = 0;
  for (auto& c : corpora) {
    if (c.files.empty()) {
      std::printf("%-12s skipped: no data under %s\n", c.name.c_str(), data.c_str());
      continue;
    }
    // Check results before timing: every file parses both ways, and our output re-reads equal.
    std::vector<std::unique_ptr<rapidjson::Document>> doms;
    std::vector<std::unique_ptr<medicus::fhir::Document>> models;
    for (const auto& text : c.files) {
      auto dom = std::make_unique<rapidjson::Document>();
      dom->Parse(text.c_str(), text.size());
      auto parsed = medicus::fhir::parseJson(text);
      if (dom->HasParseError() || !parsed.document) {
        std::fprintf(stderr, "%s: a file does not parse; the benchmark needs valid input\n", c.name.c_str());
        return 1;
      }
      std::string once = medicus::fhir::writeJson(*parsed.document->root());
      auto again = medicus::fhir::parseJson(once);
      if (!again.document || medicus::fhir::writeJson(*again.document->root()) != once) {
        std::fprintf(stderr, "%s: model output does not re-read equal\n", c.name.c_str());
        return 1;
      }
      doms.push_back(std::move(dom));
      models.push_back(std::move(parsed.document));
    }
    auto [bare_parse, model_parse] = compare(
        c, seconds,
        [&](size_t i) {
          rapidjson::Document d;
          d.Parse(c.files[i].c_str(), c.files[i].size());
          return d.HasParseError() ? size_t{0} : c.files[i].size();
        },
        [&](size_t i) {
          auto r = medicus::fhir::parseJson(c.files[i]);
          return r.document ? c.files[i].size() : size_t{0};
        });
    auto [bare_write, model_write] = compare(
        c, seconds,
        [&](size_t i) {
          rapidjson::StringBuffer buffer;
          rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
          doms[i]->Accept(writer);
          return c.files[i].size();
        },
        [&](size_t i) {
          std::string out;
          out.reserve(c.files[i].size());
          medicus::fhir::writeJson(*models[i]->root(), out);
          return c.files[i].size();
        });
    double parse_ratio = bare_parse / model_parse, write_ratio = bare_write / model_write;
    std::printf("%-12s %8.1f %9.1f MB/s %7.1f MB/s %6.2fx %7.1f MB/s %7.1f MB/s %6.2fx\n", c.name.c_str(),
                c.bytes / 1e6, bare_parse, model_parse, parse_ratio, bare_write, model_write, write_ratio);
    if (parse_ratio > 2.0 || write_ratio > 2.0) status = 3;
  }
  std::printf("(throughput in input MB/s; ratio = model cost / bare RapidJSON cost; target <= 2.00x)\n");
  return status;
}
