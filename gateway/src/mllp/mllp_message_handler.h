#pragma once
// What the MLLP listener does with one received frame, without sockets (so it is tested and fuzzed
// cheaply): decode the charset (policy per listener, overridden per sender), parse, check the basics
// (MSH-10 present, version and message type accepted), and decide between an immediate ACK (the
// message is refused) and storing it first. After the store answered, ackAfterStore() gives the ACK(s).
//
// ACK rules (HL7 v2.5 section 2.9, table 0357):
//   content problems (charset, parse 1xx, MSH-10 missing)  -> AE / CE with ERR
//   unsupported version or message type (2xx)               -> AR / CR with ERR
//   stored (or a repeated message already stored)          -> AA, or CA then AA per MSH-15/MSH-16
//   store failed                                           -> AR / CR with ERR 207
// Enhanced mode: the application ACK after CA confirms the durable acceptance; mapping and delivery
// to the FHIR upstream happen later and are visible in the delivery queue and metrics.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/gateway/store/message_store.h"
#include "medicus/hl7v2/ack.h"
#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"

namespace medicus::gateway::mllp {

struct SenderCharsetPolicy {
  std::string sender;  // "MSH-3|MSH-4" as in the message, e.g. "KIS|KLINIKUM"
  hl7v2::CharsetPolicy charset;
};

struct MllpListenerPolicy {
  std::string listener_name;
  hl7v2::CharsetPolicy charset;
  std::vector<SenderCharsetPolicy> senders;
  std::vector<std::string> accepted_versions{"2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6",
                                             "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"};
  std::vector<std::string> accepted_message_types;  // MSH-9.1; empty: any
  std::string route;                                // delivery route of stored messages; "" none
  hl7v2::ParseOptions parse;
};

// How a frame ended; the label of the messages_total{outcome} metric.
enum class MllpOutcome : uint8_t {
  kAccepted,     // stored, AA/CA
  kDuplicate,    // already stored, acknowledged again
  kContentError, // AE/CE
  kRejected,     // AR/CR: unsupported version or type
  kStoreFailed,  // AR/CR 207
};
std::string_view outcomeLabel(MllpOutcome outcome);

struct FrameDecision {
  // Set when the message is to be stored before answering.
  std::optional<store::InboundMessage> to_store;
  // Set when the answer goes out at once (the message is refused). May be empty in enhanced mode
  // when MSH-15 says the sender wants no ACK for it.
  std::string immediate_reply;  // ER7 ACK(s) in the sender's charset, each MLLP framed
  MllpOutcome outcome = MllpOutcome::kAccepted;
  std::string log_detail;       // why it was refused, for the log

  // Kept to build the ACK after storing.
  std::optional<hl7v2::Message> parsed;
  hl7v2::Charset charset = hl7v2::Charset::kAscii;
};

class MllpMessageHandler {
 public:
  // `now_hl7` gives MSH-7 of ACKs ("20261122221900+0000"); `now_millis` the received_at stamp.
  MllpMessageHandler(MllpListenerPolicy policy, std::function<std::string()> now_hl7,
                     std::function<store::UnixMillis()> now_millis);

  FrameDecision examine(std::string_view frame_payload);

  // The framed ACK(s) once the store answered; sets `outcome`.
  std::string ackAfterStore(const FrameDecision& decision,
                            const tl::expected<store::InsertResult, store::StoreError>& stored,
                            MllpOutcome& outcome);

  // A framed AR 207 for a frame we could not handle at all (last-resort path).
  std::string internalErrorAck(std::string_view detail);

  const MllpListenerPolicy& policy() const { return policy_; }

 private:
  std::string nextControlId();
  std::string framedAck(const hl7v2::Message* original, hl7v2::AckCode code, std::vector<hl7v2::AckError> errors,
                        hl7v2::Charset charset);
  FrameDecision refuse(const hl7v2::Message* original, hl7v2::Charset charset, const hl7v2::Error& error,
                       MllpOutcome outcome);

  MllpListenerPolicy policy_;
  std::function<std::string()> now_hl7_;
  std::function<store::UnixMillis()> now_millis_;
  std::string control_prefix_;
  std::atomic<uint64_t> counter_{0};
};

// Current time as an HL7 DTM in UTC ("YYYYMMDDHHMMSS+0000") and as Unix milliseconds.
std::string hl7NowUtc();
store::UnixMillis unixNowMillis();

}  // namespace medicus::gateway::mllp
