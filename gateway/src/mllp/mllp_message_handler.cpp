#include "mllp/mllp_message_handler.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "medicus/hl7v2/mllp_framer.h"

namespace medicus::gateway::mllp {

using hl7v2::AckCode;
using hl7v2::AckError;
using hl7v2::ErrorCode;

std::string_view outcomeLabel(MllpOutcome outcome) {
  switch (outcome) {
    case MllpOutcome::kAccepted: return "accepted";
    case MllpOutcome::kDuplicate: return "duplicate";
    case MllpOutcome::kContentError: return "content_error";
    case MllpOutcome::kRejected: return "rejected";
    case MllpOutcome::kStoreFailed: return "store_failed";
  }
  return "unknown";
}

std::string hl7NowUtc() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%d%H%M%S+0000", &tm);
  return buffer;
}

store::UnixMillis unixNowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// MSH-3 and MSH-4 straight from the raw bytes (before decoding: the sender decides the charset policy).
// All supported charsets agree on ASCII, and application/facility ids are ASCII in practice.
std::string rawSender(std::string_view bytes) {
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xEF) bytes.remove_prefix(3);  // BOM
  while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n')) bytes.remove_prefix(1);
  if (bytes.size() < 4 || bytes.substr(0, 3) != "MSH") return {};
  char sep = bytes[3];
  std::string_view line = bytes.substr(0, bytes.find_first_of("\r\n"));
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (fields.size() < 5) {
    size_t end = line.find(sep, start);
    fields.push_back(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  std::string sender = fields.size() > 2 ? std::string(fields[2]) : std::string();
  sender += '|';
  if (fields.size() > 3) sender += fields[3];
  return sender;
}

AckCode enhancedOr(bool enhanced, AckCode original_mode) {
  if (!enhanced) return original_mode;
  switch (original_mode) {
    case AckCode::kAA: return AckCode::kCA;
    case AckCode::kAE: return AckCode::kCE;
    case AckCode::kAR: return AckCode::kCR;
    default: return original_mode;
  }
}

// Each byte that does not start a valid UTF-8 sequence becomes '?' (found by the MLLP handler's fuzz target).
std::string replaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    // Overlong forms and surrogates: the charset module's own check decides.
    if (valid && length > 1) valid = hl7v2::convertToUtf8(text.substr(i, length), hl7v2::Charset::kUtf8).has_value();
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

bool isRejection(ErrorCode code) { return static_cast<int>(code) >= 200; }

}  // namespace

MllpMessageHandler::MllpMessageHandler(MllpListenerPolicy policy, std::function<std::string()> now_hl7,
                                       std::function<store::UnixMillis()> now_millis)
    : policy_(std::move(policy)), now_hl7_(std::move(now_hl7)), now_millis_(std::move(now_millis)) {
  // ACK control ids unique across restarts: the start time in ms, then a counter.
  control_prefix_ = "MG" + std::to_string(now_millis_()) + "-";
}

std::string MllpMessageHandler::nextControlId() {
  return control_prefix_ + std::to_string(counter_.fetch_add(1, std::memory_order_relaxed) + 1);
}

std::string MllpMessageHandler::framedAck(const hl7v2::Message* original, AckCode code, std::vector<AckError> errors,
                                          hl7v2::Charset charset) {
  hl7v2::AckParams params(code, nextControlId(), now_hl7_(), std::move(errors));
  std::string ack = original ? hl7v2::buildAck(*original, params) : hl7v2::buildAckWithoutOriginal(params);
  auto wire = hl7v2::encodeFromUtf8(ack, charset);
  if (!wire) {
    // Error texts may quote raw bytes of the refused message (an unsupported MSH-18 value, say), which
    // need not be UTF-8: replace those, so the whole ACK is in one charset the sender can read.
    ack = replaceInvalidUtf8(ack);
    wire = hl7v2::encodeFromUtf8(ack, charset);
  }
  // Encoding only replaces what the charset lacks.
  return hl7v2::encodeMllpFrame(wire ? *wire : ack);
}

FrameDecision MllpMessageHandler::refuse(const hl7v2::Message* original, hl7v2::Charset charset,
                                         const hl7v2::Error& error, MllpOutcome outcome) {
  FrameDecision d;
  d.outcome = outcome;
  d.log_detail = error.describe();
  AckCode code = isRejection(error.code) ? AckCode::kAR : AckCode::kAE;
  std::vector<AckError> errors{AckError::fromError(error)};
  if (!original) {
    d.immediate_reply = framedAck(nullptr, code, std::move(errors), charset);
    return d;
  }
  auto plan = hl7v2::planAcks(*original, /*accepted=*/false, /*application_succeeded=*/false);
  if (!plan.enhanced) {
    d.immediate_reply = framedAck(original, code, std::move(errors), charset);
  } else if (plan.send_accept_ack) {
    d.immediate_reply = framedAck(original, enhancedOr(true, code), std::move(errors), charset);
  }
  return d;
}

FrameDecision MllpMessageHandler::examine(std::string_view payload) {
  std::string sender = rawSender(payload);
  const hl7v2::CharsetPolicy* charset_policy = &policy_.charset;
  for (const auto& s : policy_.senders) {
    if (s.sender == sender) charset_policy = &s.charset;
  }
  auto decoded = hl7v2::decodeToUtf8(payload, *charset_policy);
  if (!decoded) {
    // Answer anyway: read the bytes as Latin-1 (every byte is valid there) to address the ACK.
    auto latin1 = hl7v2::convertToUtf8(payload, hl7v2::Charset::kLatin1);
    std::optional<hl7v2::Message> fallback;
    if (latin1) {
      if (auto m = hl7v2::parseMessage(*latin1, policy_.parse)) fallback = std::move(*m);
    }
    return refuse(fallback ? &*fallback : nullptr, hl7v2::Charset::kAscii, decoded.error(),
                  MllpOutcome::kContentError);
  }
  auto parsed = hl7v2::parseMessage(decoded->utf8, policy_.parse);
  if (!parsed) {
    return refuse(nullptr, decoded->charset, parsed.error(),
                  isRejection(parsed.error().code) ? MllpOutcome::kRejected : MllpOutcome::kContentError);
  }
  const hl7v2::Message& message = *parsed;
  std::string version = message.version();
  if (std::find(policy_.accepted_versions.begin(), policy_.accepted_versions.end(), version) ==
      policy_.accepted_versions.end()) {
    hl7v2::Error e{ErrorCode::kUnsupportedVersionId, {.segment = "MSH", .segment_occurrence = 1, .segment_index = 0, .field = 12}, std::string::npos,
                   "HL7 version '" + version + "' is not accepted by listener '" + policy_.listener_name +
                       "'; send one of the configured versions or add it to accepted_versions"};
    return refuse(&message, decoded->charset, e, MllpOutcome::kRejected);
  }
  std::string type = message.messageType();
  if (!policy_.accepted_message_types.empty() &&
      std::find(policy_.accepted_message_types.begin(), policy_.accepted_message_types.end(), type) ==
          policy_.accepted_message_types.end()) {
    hl7v2::Error e{ErrorCode::kUnsupportedMessageType, {.segment = "MSH", .segment_occurrence = 1, .segment_index = 0, .field = 9, .component = 1}, std::string::npos,
                   "message type '" + type + "' is not accepted by listener '" + policy_.listener_name + "'"};
    return refuse(&message, decoded->charset, e, MllpOutcome::kRejected);
  }
  std::string control_id = message.controlId();
  if (control_id.empty()) {
    hl7v2::Error e{ErrorCode::kRequiredFieldMissing, {.segment = "MSH", .segment_occurrence = 1, .segment_index = 0, .field = 10}, std::string::npos,
                   "MSH-10 (message control id) is empty; the receiver needs it to recognise repeated messages"};
    return refuse(&message, decoded->charset, e, MllpOutcome::kContentError);
  }

  FrameDecision d;
  store::InboundMessage m;
  m.sender = std::string(message.raw({.segment = "MSH", .segment_occurrence = 1, .field = 3})) + "|" + std::string(message.raw({.segment = "MSH", .segment_occurrence = 1, .field = 4}));
  m.control_id = std::move(control_id);
  m.message_type = type;
  if (auto trigger = message.triggerEvent(); !trigger.empty()) m.message_type += "^" + trigger;
  // PID-3, first repetition: the patient whose messages must be delivered in order.
  m.patient_key = std::string(message.raw({.segment = "PID", .segment_occurrence = 1, .field = 3, .repetition = 1}));
  m.listener = policy_.listener_name;
  m.route = policy_.route;
  m.charset = std::string(hl7v2::charsetName(decoded->charset));
  m.text = std::move(decoded->utf8);
  m.received_at = now_millis_();
  d.to_store = std::move(m);
  d.charset = decoded->charset;
  d.parsed = std::move(*parsed);
  return d;
}

std::string MllpMessageHandler::ackAfterStore(const FrameDecision& decision,
                                              const tl::expected<store::InsertResult, store::StoreError>& stored,
                                              MllpOutcome& outcome) {
  const hl7v2::Message& message = *decision.parsed;
  if (!stored) {
    outcome = MllpOutcome::kStoreFailed;
    // Our fault, not the sender's: AR/CR 207 so that the sender keeps the message and sends it again.
    hl7v2::Error e{ErrorCode::kApplicationInternalError, {}, std::string::npos,
                   "the gateway could not store the message; it was not accepted, send it again later"};
    return refuse(&message, decision.charset, e, MllpOutcome::kStoreFailed).immediate_reply;
  }
  outcome = stored->duplicate ? MllpOutcome::kDuplicate : MllpOutcome::kAccepted;
  auto plan = hl7v2::planAcks(message, /*accepted=*/true, /*application_succeeded=*/true);
  std::string reply;
  if (!plan.enhanced) return framedAck(&message, AckCode::kAA, {}, decision.charset);
  if (plan.send_accept_ack) reply += framedAck(&message, AckCode::kCA, {}, decision.charset);
  if (plan.send_application_ack) reply += framedAck(&message, AckCode::kAA, {}, decision.charset);
  return reply;
}

std::string MllpMessageHandler::internalErrorAck(std::string_view detail) {
  hl7v2::Error e{ErrorCode::kApplicationInternalError, {}, std::string::npos, std::string(detail)};
  return framedAck(nullptr, AckCode::kAR, {AckError::fromError(e)}, hl7v2::Charset::kAscii);
}

}  // namespace medicus::gateway::mllp
