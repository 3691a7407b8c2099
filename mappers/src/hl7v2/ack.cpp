#include "medicus/hl7v2/ack.h"

#include <algorithm>

namespace medicus::hl7v2 {
namespace {

std::string_view severityCode(ErrorSeverity severity) {
  switch (severity) {
    case ErrorSeverity::kError: return "E";
    case ErrorSeverity::kWarning: return "W";
    case ErrorSeverity::kInformation: return "I";
    case ErrorSeverity::kFatal: return "F";
  }
  return "E";
}

std::string number(int n) { return n > 0 ? std::to_string(n) : std::string(); }

// True when an MSH-12 version like "2.3.1" is older than 2.5 (ERR-1 era).
bool olderThan25(std::string_view version) {
  if (version.size() < 3 || version[0] != '2' || version[1] != '.') return false;
  return version[2] >= '1' && version[2] <= '4';
}

void writeErrors(Er7Writer& writer, const std::vector<AckError>& errors, const Delimiters& d, bool legacy) {
  for (const AckError& error : errors) {
    const Location& l = error.location;
    const std::string seq = l.segment.empty() ? std::string() : std::to_string(std::max(l.segment_occurrence, 1));
    const std::string code = std::to_string(static_cast<int>(error.code));
    const std::string code_text = escape(errorCodeText(error.code), d);
    writer.beginSegment("ERR");
    if (legacy) {
      // ERR-1 (ELD, v2.3-2.4): segment^sequence^field^code&text&HL70357
      std::string eld = escape(l.segment, d) + d.component + seq + d.component + number(l.field) + d.component + code;
      if (d.subcomponent != '\0') eld += d.subcomponent + code_text + d.subcomponent + "HL70357";
      writer.rawField(eld);
      continue;
    }
    writer.field("");  // ERR-1 is withdrawn from v2.5 on
    if (l.segment.empty()) {
      writer.field("");
    } else {
      writer.components({l.segment, seq, number(l.field), number(l.field > 0 ? std::max(l.repetition, 1) : 0),
                         number(l.component), number(l.subcomponent)});
    }
    writer.components({code, std::string(errorCodeText(error.code)), "HL70357"});
    writer.field(severityCode(error.severity));
    writer.field("").field("").field("");  // ERR-5 application error code, ERR-6 parameter, ERR-7 diagnostics
    writer.field(error.user_message);
  }
}

void writeMsa(Er7Writer& writer, const AckParams& params, std::string_view original_control_id_raw) {
  writer.beginSegment("MSA").field(ackCodeText(params.code)).rawField(original_control_id_raw);
  if (!params.text_message.empty()) writer.field(params.text_message);
}

}  // namespace

std::string_view ackCodeText(AckCode code) {
  switch (code) {
    case AckCode::kAA: return "AA";
    case AckCode::kAE: return "AE";
    case AckCode::kAR: return "AR";
    case AckCode::kCA: return "CA";
    case AckCode::kCE: return "CE";
    case AckCode::kCR: return "CR";
  }
  return "AR";
}

AckError AckError::fromError(const Error& error, ErrorSeverity severity) {
  AckError out;
  out.code = error.code;
  out.location = error.location;
  out.severity = severity;
  out.user_message = error.message;
  return out;
}

std::string buildAck(const Message& original, const AckParams& params) {
  if (original.segmentCount() == 0) return buildAckWithoutOriginal(params);  // default-constructed
  const Delimiters& d = original.delimiters();
  const SegmentView msh = original.segment(0);
  Er7Writer writer(d);
  writer.beginMsh();
  writer.rawField(msh.field(5)).rawField(msh.field(6)).rawField(msh.field(3)).rawField(msh.field(4));
  writer.field(params.timestamp).field("");
  writer.components({"ACK", original.triggerEvent(), "ACK"});
  writer.field(params.control_id);
  writer.rawField(msh.field(11)).rawField(msh.field(12));
  const std::string_view charset = msh.field(18);
  if (!charset.empty()) {
    writer.field("").field("").field("").field("").field("");  // MSH-13..MSH-17
    writer.rawField(charset);
  }
  writeMsa(writer, params, original.raw(Location{"MSH", 1, 0, 10}));
  writeErrors(writer, params.errors, d, olderThan25(original.version()));
  return writer.finish();
}

std::string buildAckWithoutOriginal(const AckParams& params) {
  Delimiters d;
  Er7Writer writer(d);
  writer.beginMsh();
  writer.field("").field("").field("").field("");
  writer.field(params.timestamp).field("").field("ACK").field(params.control_id).field("P").field("2.5");
  writeMsa(writer, params, "");
  writeErrors(writer, params.errors, d, false);
  return writer.finish();
}

std::optional<AckCondition> ackConditionFrom(std::string_view value) {
  if (value == "AL") return AckCondition::kAlways;
  if (value == "NE") return AckCondition::kNever;
  if (value == "ER") return AckCondition::kErrorOnly;
  if (value == "SU") return AckCondition::kSuccessOnly;
  return std::nullopt;
}

AckPlan planAcks(const Message& original, bool accepted, bool application_succeeded) {
  const std::string msh15 = original.get("MSH-15");
  const std::string msh16 = original.get("MSH-16");
  AckPlan plan;
  if (msh15.empty() && msh16.empty()) {
    plan.send_application_ack = true;
    return plan;
  }
  plan.enhanced = true;
  auto wanted = [](std::string_view value, bool success) {
    switch (ackConditionFrom(value).value_or(AckCondition::kAlways)) {
      case AckCondition::kAlways: return true;
      case AckCondition::kNever: return false;
      case AckCondition::kErrorOnly: return !success;
      case AckCondition::kSuccessOnly: return success;
    }
    return true;
  };
  plan.send_accept_ack = wanted(msh15, accepted);
  // No application ACK for a message that was not accepted: the accept ACK (CE/CR) already answered.
  plan.send_application_ack = accepted && wanted(msh16, application_succeeded);
  return plan;
}

}  // namespace medicus::hl7v2
