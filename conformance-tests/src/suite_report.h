#pragma once
// Results of one conformance run: per-case outcome grouped, printed per group, optionally written as
// JSON (--report FILE.json), closing with the line "N passed, M failed" that CI reads.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace medicus::conformance {

enum class CaseOutcome { Passed, Failed, Skipped };

struct CaseResult {
  std::string group;
  std::string name;
  CaseOutcome outcome = CaseOutcome::Failed;
  std::string detail;  // why it failed or was skipped; empty for a pass
};

class SuiteReport {
 public:
  explicit SuiteReport(std::string suite) : suite_(std::move(suite)) {}

  void add(CaseResult result);
  void pass(const std::string& group, const std::string& name) { add({group, name, CaseOutcome::Passed, {}}); }
  void fail(const std::string& group, const std::string& name, std::string why) {
    add({group, name, CaseOutcome::Failed, std::move(why)});
  }
  void skip(const std::string& group, const std::string& name, std::string why) {
    add({group, name, CaseOutcome::Skipped, std::move(why)});
  }

  size_t passed() const { return passed_; }
  size_t failed() const { return failed_; }
  size_t skipped() const { return skipped_; }
  const std::vector<CaseResult>& results() const { return results_; }

  // Prints failures (up to max_failures_listed), a table per group, and the closing summary line.
  void print(std::FILE* out, size_t max_failures_listed = 50) const;
  // Writes {"suite":..., "passed":..., "failed":..., "skipped":..., "groups": {...}, "cases": [...]}.
  bool writeJson(const std::string& path) const;

  // Progress to stderr every `every` cases (0: never).
  void setProgress(size_t every) { progress_every_ = every; }

 private:
  std::string suite_;
  std::vector<CaseResult> results_;
  size_t passed_ = 0, failed_ = 0, skipped_ = 0;
  size_t progress_every_ = 0;
};

// Common options of every subcommand: --data DIR, --report FILE, --verbose.
struct CommonOptions {
  std::string data_dir;
  std::string report_file;
  bool verbose = false;
};

}  // namespace medicus::conformance
