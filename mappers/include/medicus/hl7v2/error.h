#pragma once
// Errors of the HL7v2 library: values carrying an HL7 table 0357 code and a location in the message.

#include <cstddef>
#include <string>
#include <string_view>

namespace medicus::hl7v2 {

// HL7 v2 table 0357 "Message error condition codes" (v2.5 section 2.15.5.3, ERR-3).
// 1xx: the content of the message is wrong (answer AE/CE); 2xx: we cannot process it (answer AR/CR).
enum class ErrorCode : int {
  kSegmentSequenceError = 100,
  kRequiredFieldMissing = 101,
  kDataTypeError = 102,
  kTableValueNotFound = 103,
  kUnsupportedMessageType = 200,
  kUnsupportedEventCode = 201,
  kUnsupportedProcessingId = 202,
  kUnsupportedVersionId = 203,
  kUnknownKeyIdentifier = 204,
  kDuplicateKeyIdentifier = 205,
  kApplicationRecordLocked = 206,
  kApplicationInternalError = 207,
};

// The table 0357 text of a code, e.g. "Required field missing".
std::string_view errorCodeText(ErrorCode code);

// A place in a message. Numbers are 1-based as in the HL7 spec; 0 means "not narrower than this".
// `segment_occurrence` counts segments with the same id (OBX[2] is the second OBX);
// `segment_index` is the 0-based position among all segments, or -1 when unknown.
struct Location {
  std::string segment;       // segment id, e.g. "PID"; empty when the error is not inside a segment
  int segment_occurrence = 0;
  int segment_index = -1;
  int field = 0;
  int repetition = 0;
  int component = 0;
  int subcomponent = 0;

  // "PID-5.2", "OBX[2]-5", "PID-3(2).1", or "" when nothing is known.
  std::string toString() const;
  friend bool operator==(const Location&, const Location&) = default;
};

// A problem with a message. `byte_offset` is the offset in the bytes given to the failing function
// (for charset errors: the raw input; for parse errors: the decoded text), or npos when not tied to a byte.
struct Error {
  ErrorCode code = ErrorCode::kApplicationInternalError;
  Location location;
  std::size_t byte_offset = std::string::npos;
  std::string message;  // for a human: what is wrong and what to do

  // "PID-5.2 (byte 120): data type error (102): <message>"
  std::string describe() const;
};

}  // namespace medicus::hl7v2
