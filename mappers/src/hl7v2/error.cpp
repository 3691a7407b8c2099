#include "medicus/hl7v2/error.h"

namespace medicus::hl7v2 {

std::string_view errorCodeText(ErrorCode code) {
  switch (code) {
    case ErrorCode::kSegmentSequenceError: return "Segment sequence error";
    case ErrorCode::kRequiredFieldMissing: return "Required field missing";
    case ErrorCode::kDataTypeError: return "Data type error";
    case ErrorCode::kTableValueNotFound: return "Table value not found";
    case ErrorCode::kUnsupportedMessageType: return "Unsupported message type";
    case ErrorCode::kUnsupportedEventCode: return "Unsupported event code";
    case ErrorCode::kUnsupportedProcessingId: return "Unsupported processing id";
    case ErrorCode::kUnsupportedVersionId: return "Unsupported version id";
    case ErrorCode::kUnknownKeyIdentifier: return "Unknown key identifier";
    case ErrorCode::kDuplicateKeyIdentifier: return "Duplicate key identifier";
    case ErrorCode::kApplicationRecordLocked: return "Application record locked";
    case ErrorCode::kApplicationInternalError: return "Application internal error";
  }
  return "Unknown error code";
}

std::string Location::toString() const {
  if (segment.empty()) return {};
  std::string out = segment;
  auto append = [&out](char before, int n, const char* after) {
    out += before;
    out += std::to_string(n);
    out += after;
  };
  if (segment_occurrence > 1) append('[', segment_occurrence, "]");
  if (field <= 0) return out;
  append('-', field, "");
  if (repetition > 1) append('(', repetition, ")");
  if (component > 0) append('.', component, "");
  if (component > 0 && subcomponent > 0) append('.', subcomponent, "");
  return out;
}

std::string Error::describe() const {
  std::string out;
  std::string where = location.toString();
  if (!where.empty()) out += where;
  if (byte_offset != std::string::npos) {
    out += out.empty() ? "byte " : " (byte ";
    out += std::to_string(byte_offset);
    if (!where.empty()) out += ")";
  }
  if (!out.empty()) out += ": ";
  out += errorCodeText(code);
  out += " (" + std::to_string(static_cast<int>(code)) + "): " + message;
  return out;
}

}  // namespace medicus::hl7v2
