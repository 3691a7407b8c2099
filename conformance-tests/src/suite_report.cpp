#include "suite_report.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>

namespace medicus::conformance {

void SuiteReport::add(CaseResult result) {
  switch (result.outcome) {
    case CaseOutcome::Passed: ++passed_; break;
    case CaseOutcome::Failed: ++failed_; break;
    case CaseOutcome::Skipped: ++skipped_; break;
  }
  results_.push_back(std::move(result));
  if (progress_every_ != 0 && results_.size() % progress_every_ == 0) {
    std::fprintf(stderr, "  ... %zu cases (%zu passed, %zu failed)\n", results_.size(), passed_, failed_);
  }
}

void SuiteReport::print(std::FILE* out, size_t max_failures_listed) const {
  struct Counts { size_t passed = 0, failed = 0, skipped = 0; };
  std::map<std::string, Counts> groups;
  size_t listed = 0;
  for (const auto& r : results_) {
    auto& g = groups[r.group];
    if (r.outcome == CaseOutcome::Passed) ++g.passed;
    if (r.outcome == CaseOutcome::Skipped) ++g.skipped;
    if (r.outcome == CaseOutcome::Failed) {
      ++g.failed;
      if (listed++ < max_failures_listed) {
        std::fprintf(out, "FAIL %s / %s: %s\n", r.group.c_str(), r.name.c_str(), r.detail.c_str());
      }
    }
  }
  if (listed > max_failures_listed) std::fprintf(out, "... and %zu more failures\n", listed - max_failures_listed);
  std::fprintf(out, "\n%s results per group:\n", suite_.c_str());
  for (const auto& [name, c] : groups) {
    std::fprintf(out, "  %-48s %5zu passed %5zu failed", name.c_str(), c.passed, c.failed);
    if (c.skipped) std::fprintf(out, " %5zu skipped", c.skipped);
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "\n%zu passed, %zu failed", passed_, failed_);
  if (skipped_) std::fprintf(out, ", %zu skipped", skipped_);
  std::fprintf(out, "\n");
}

bool SuiteReport::writeJson(const std::string& path) const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("suite"); w.String(suite_.c_str());
  w.Key("passed"); w.Uint64(passed_);
  w.Key("failed"); w.Uint64(failed_);
  w.Key("skipped"); w.Uint64(skipped_);
  w.Key("cases");
  w.StartArray();
  for (const auto& r : results_) {
    w.StartObject();
    w.Key("group"); w.String(r.group.c_str());
    w.Key("name"); w.String(r.name.c_str());
    w.Key("outcome");
    w.String(r.outcome == CaseOutcome::Passed ? "passed" : r.outcome == CaseOutcome::Failed ? "failed" : "skipped");
    if (!r.detail.empty()) { w.Key("detail"); w.String(r.detail.c_str()); }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::ofstream file(path, std::ios::binary);
  if (!file) return false;
  file << buffer.GetString() << '\n';
  return static_cast<bool>(file);
}

}  // namespace medicus::conformance
