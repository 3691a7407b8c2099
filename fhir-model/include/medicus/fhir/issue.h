#pragma once
// Issues: the one currency for "their data breaks a rule" across all modules. Collected, never thrown;
// turned into an OperationOutcome or an HL7 ACK at the edge.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace medicus::fhir {

enum class Severity : uint8_t { Fatal, Error, Warning, Information };

// FHIR IssueType (http://hl7.org/fhir/issue-type), the codes we use.
enum class IssueType : uint8_t {
  Invalid, Structure, Required, Value, Invariant, Security, Processing, NotSupported, Duplicate,
  NotFound, TooLong, CodeInvalid, Extension, TooCostly, BusinessRule, Conflict, Transient,
  Exception, Timeout, Incomplete, Informational
};

std::string_view toString(Severity severity);   // "fatal", "error", ...
std::string_view toString(IssueType type);       // "invalid", "structure", ...

// 1-based line and column in the source text; 0 when unknown.
struct SourcePosition {
  uint32_t line = 0;
  uint32_t column = 0;
  bool known() const { return line != 0; }
};

struct Issue {
  Severity severity = Severity::Error;
  IssueType type = IssueType::Invalid;
  std::string message;      // for an integration engineer: what, where, what to do
  std::string expression;   // FHIRPath location, e.g. Patient.name[1].given[0]
  SourcePosition position;  // line:col in the source, when known
  std::string rule_id;      // stable id of the rule that fired, e.g. "json.unknown-element", "Patient.name:ele-1"
};

using Issues = std::vector<Issue>;

bool hasErrors(const Issues& issues);  // any fatal or error
size_t countAtLeast(const Issues& issues, Severity severity);

// "error at Patient.name[0] (3:15): message [rule]" — one line, for CLI text output and logs.
std::string formatIssue(const Issue& issue);

// Maps byte offsets of a source text to 1-based line:column (columns count UTF-8 code points).
// Each lookup is O(log lines + 1 KiB), also on a single-line (minified) document with many issues:
// columns are counted within the line, and only lines longer than kBlock use the per-block counts,
// which are built at the first such lookup (pretty-printed documents never need them).
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);
  SourcePosition positionOf(size_t offset) const;

 private:
  static constexpr size_t kBlock = 1024;
  size_t continuationBytesBefore(size_t offset) const;

  std::string_view text_;
  std::vector<uint32_t> line_starts_;
  mutable std::vector<uint32_t> block_continuations_;  // UTF-8 continuation bytes before each kBlock boundary
};

}  // namespace medicus::fhir
