#pragma once
// HL7 v2 acknowledgements (HL7 v2.5 section 2.9): original mode (AA/AE/AR) and enhanced mode
// (accept ACK CA/CE/CR, then an application ACK as asked by MSH-15/MSH-16), with ERR segments
// carrying the error location (ERR-2), the table 0357 code (ERR-3), severity (ERR-4) and a message
// for people (ERR-8).
//
// Typical use in a listener:
//   auto plan = planAcks(message, stored_ok, /*application_ok=*/true);
//   AckParams p{stored_ok ? AckCode::kAA : AckCode::kAR, nextControlId(), clock.nowHl7()};
//   std::string ack = buildAck(message, p);          // UTF-8 ER7, CR terminated
//   auto wire = encodeFromUtf8(ack, decoded.charset);  // back to the sender's charset (charset.h)
//   send(encodeMllpFrame(*wire));                      // mllp_framer.h

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "medicus/hl7v2/error.h"
#include "medicus/hl7v2/message.h"

namespace medicus::hl7v2 {

// MSA-1 (table 0008).
enum class AckCode {
  kAA,  // application accept
  kAE,  // application error: the content is wrong (1xx codes)
  kAR,  // application reject: we cannot process it (2xx codes, store down)
  kCA,  // commit accept (enhanced mode): safely stored
  kCE,  // commit error
  kCR,  // commit reject
};
std::string_view ackCodeText(AckCode code);

// ERR-4 (table 0516).
enum class ErrorSeverity { kError, kWarning, kInformation, kFatal };

struct AckError {
  ErrorCode code = ErrorCode::kApplicationInternalError;
  Location location;  // ERR-2; segment_occurrence 0 is written as 1
  ErrorSeverity severity = ErrorSeverity::kError;
  std::string user_message;  // ERR-8

  static AckError fromError(const Error& error, ErrorSeverity severity = ErrorSeverity::kError);
};

struct AckParams {
  AckParams() = default;
  AckParams(AckCode ack_code, std::string ack_control_id, std::string ack_timestamp,
            std::vector<AckError> ack_errors = {})
      : code(ack_code),
        control_id(std::move(ack_control_id)),
        timestamp(std::move(ack_timestamp)),
        errors(std::move(ack_errors)) {}

  AckCode code = AckCode::kAA;
  std::string control_id;  // MSH-10 of the ACK; the caller keeps it unique
  std::string timestamp;   // MSH-7 (DTM, e.g. "20261122221900+0000"); the caller owns the clock
  std::vector<AckError> errors;
  std::string text_message;  // MSA-3, optional (read by older systems)
};

// Builds the ACK for `original`: same delimiters; MSH-3/4 and MSH-5/6 swapped; MSH-9 ACK^<trigger>^ACK;
// MSH-11, MSH-12 and MSH-18 copied; MSA-1 code, MSA-2 = original MSH-10; one ERR per error (ERR-1 in the
// v2.3/2.4 form when MSH-12 is older than 2.5, ERR-2..ERR-8 otherwise). Returns UTF-8 ER7 with CR
// after each segment.
std::string buildAck(const Message& original, const AckParams& params);

// For input that could not be parsed at all: an ACK with MSH-9 ACK, MSH-12 2.5, empty MSA-2.
std::string buildAckWithoutOriginal(const AckParams& params);

// MSH-15/MSH-16 (table 0155).
enum class AckCondition { kAlways, kNever, kErrorOnly, kSuccessOnly };

// What to send for one received message. Original mode (MSH-15 and MSH-16 both empty): exactly one
// application ACK (AA/AE/AR). Enhanced mode: an accept ACK (CA/CE/CR) when MSH-15 asks for it, and an
// application ACK when MSH-16 asks for it; an empty or unknown value counts as AL (always).
struct AckPlan {
  bool enhanced = false;
  bool send_accept_ack = false;
  bool send_application_ack = false;
};
AckPlan planAcks(const Message& original, bool accepted, bool application_succeeded);

std::optional<AckCondition> ackConditionFrom(std::string_view msh15_or_16);

}  // namespace medicus::hl7v2
