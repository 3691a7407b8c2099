#include "medicus/fhir/issue.h"

#include <algorithm>
#include <cstring>

namespace medicus::fhir {

std::string_view toString(Severity severity) {
  switch (severity) {
    case Severity::Fatal: return "fatal";
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Information: return "information";
  }
  return "error";
}

std::string_view toString(IssueType type) {
  switch (type) {
    case IssueType::Invalid: return "invalid";
    case IssueType::Structure: return "structure";
    case IssueType::Required: return "required";
    case IssueType::Value: return "value";
    case IssueType::Invariant: return "invariant";
    case IssueType::Security: return "security";
    case IssueType::Processing: return "processing";
    case IssueType::NotSupported: return "not-supported";
    case IssueType::Duplicate: return "duplicate";
    case IssueType::NotFound: return "not-found";
    case IssueType::TooLong: return "too-long";
    case IssueType::CodeInvalid: return "code-invalid";
    case IssueType::Extension: return "extension";
    case IssueType::TooCostly: return "too-costly";
    case IssueType::BusinessRule: return "business-rule";
    case IssueType::Conflict: return "conflict";
    case IssueType::Transient: return "transient";
    case IssueType::Exception: return "exception";
    case IssueType::Timeout: return "timeout";
    case IssueType::Incomplete: return "incomplete";
    case IssueType::Informational: return "informational";
  }
  return "invalid";
}

bool hasErrors(const Issues& issues) {
  return std::any_of(issues.begin(), issues.end(), [](const Issue& i) {
    return i.severity == Severity::Fatal || i.severity == Severity::Error;
  });
}

size_t countAtLeast(const Issues& issues, Severity severity) {
  return static_cast<size_t>(std::count_if(issues.begin(), issues.end(), [&](const Issue& i) {
    return static_cast<int>(i.severity) <= static_cast<int>(severity);
  }));
}

std::string formatIssue(const Issue& issue) {
  std::string out(toString(issue.severity));
  if (!issue.expression.empty()) out += " at " + issue.expression;
  if (issue.position.known()) {
    out += (issue.expression.empty() ? " at " : " ");
    out += "(" + std::to_string(issue.position.line) + ":" + std::to_string(issue.position.column) + ")";
  }
  out += ": " + issue.message;
  if (!issue.rule_id.empty()) out += " [" + issue.rule_id + "]";
  return out;
}

namespace {
size_t continuationBytes(const char* begin, const char* end) {
  size_t n = 0;
  for (const char* p = begin; p < end; ++p) n += (static_cast<unsigned char>(*p) & 0xC0) == 0x80;
  return n;
}
}  // namespace

LineIndex::LineIndex(std::string_view text) : text_(text) {
  // Built at a document's first issue, over the whole source: memchr for the newlines.
  line_starts_.push_back(0);
  const char* begin = text.data();
  const char* end = begin + text.size();
  for (const char* p = begin; (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)))) != nullptr;
       ++p) {
    line_starts_.push_back(static_cast<uint32_t>(p - begin + 1));
  }
}

size_t LineIndex::continuationBytesBefore(size_t offset) const {
  if (block_continuations_.empty()) {
    // A plain counting loop per block (vectorised) instead of one branchy pass per byte.
    block_continuations_.reserve(text_.size() / kBlock + 2);
    uint32_t continuations = 0;
    for (size_t block = 0; block < text_.size(); block += kBlock) {
      block_continuations_.push_back(continuations);
      const size_t block_end = std::min(text_.size(), block + kBlock);
      uint32_t in_block = 0;
      for (size_t i = block; i < block_end; ++i) in_block += (static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80;
      continuations += in_block;
    }
    block_continuations_.push_back(continuations);
  }
  size_t block = offset / kBlock;
  return block_continuations_[block] + continuationBytes(text_.data() + block * kBlock, text_.data() + offset);
}

SourcePosition LineIndex::positionOf(size_t offset) const {
  if (offset > text_.size()) offset = text_.size();
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), static_cast<uint32_t>(offset));
  size_t line = static_cast<size_t>(it - line_starts_.begin());
  size_t start = line_starts_[line - 1];
  // Code points = bytes minus UTF-8 continuation bytes.
  const size_t continuations = offset - start <= kBlock
                                   ? continuationBytes(text_.data() + start, text_.data() + offset)
                                   : continuationBytesBefore(offset) - continuationBytesBefore(start);
  size_t column = (offset - start) - continuations + 1;
  return {static_cast<uint32_t>(line), static_cast<uint32_t>(column)};
}

}  // namespace medicus::fhir
