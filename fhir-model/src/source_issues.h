#pragma once
// Collects a reader's issues, turning byte offsets into line:col. The line index is built only when
// there is something to report, so clean input pays nothing for it.
#include <memory>
#include <string>
#include <string_view>

#include "medicus/fhir/issue.h"

namespace medicus::fhir {

class SourceIssues {
 public:
  SourceIssues(Issues& issues, std::string_view source) : issues_(issues), source_(source) {}

  void report(Severity severity, IssueType type, uint32_t offset, std::string expression, std::string message,
              std::string rule) {
    if (!lines_) lines_ = std::make_unique<LineIndex>(source_);
    issues_.push_back({severity, type, std::move(message), std::move(expression), lines_->positionOf(offset),
                       std::move(rule)});
  }

 private:
  Issues& issues_;
  std::string_view source_;
  std::unique_ptr<LineIndex> lines_;
};

}  // namespace medicus::fhir
