// Fuzz target: the MLLP frame handler (what a listener does with each received frame, without sockets).
// The input is split into frames by the MLLP decoder; every frame goes through MllpMessageHandler::examine
// under one of several listener policies (chosen by the first byte), and a frame meant for the store is
// answered as if the store had accepted it, found it a duplicate, or failed. Whatever the bytes:
//  - nothing crashes;
//  - a frame is either refused (immediate reply) or stored, never both;
//  - every reply is a sequence of complete MLLP frames, each an ER7 ACK with an MSA segment whose code fits
//    the outcome (AA/CA stored, AR/CR store failed);
//  - a stored message carries MSH-10 and the listener's name and route.
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"
#include "medicus/hl7v2/mllp_framer.h"
#include "mllp/mllp_message_handler.h"

using namespace medicus;
using namespace medicus::gateway;
using namespace medicus::gateway::mllp;

namespace {

// Says which promise broke (the replay under ctest shows it), then stops like any fuzz crash.
#define FUZZ_REQUIRE(condition)                                                          \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "mllp_message_handler_fuzz: broken: %s (line %d)\n", #condition, __LINE__); \
      __builtin_trap();                                                                  \
    }                                                                                    \
  } while (0)

MllpListenerPolicy policyFor(uint8_t selector) {
  MllpListenerPolicy policy;
  policy.listener_name = "fuzz";
  policy.route = "to-fhir";
  switch (selector % 4) {
    case 0:  // trust MSH-18, Latin-1 when it is empty
      policy.charset = {hl7v2::CharsetPolicy::Mode::kTrustMsh18, hl7v2::Charset::kLatin1};
      break;
    case 1:  // force UTF-8 (invalid bytes are content errors)
      policy.charset = {hl7v2::CharsetPolicy::Mode::kForce, hl7v2::Charset::kUtf8};
      break;
    case 2:  // a per-sender override and a narrow version / type list
      policy.charset = {hl7v2::CharsetPolicy::Mode::kTrustMsh18, hl7v2::Charset::kAscii};
      policy.senders.push_back({"KIS|KLINIKUM", {hl7v2::CharsetPolicy::Mode::kForce, hl7v2::Charset::kLatin1}});
      policy.accepted_versions = {"2.5"};
      policy.accepted_message_types = {"ADT"};
      break;
    default:  // small messages only
      policy.charset = {hl7v2::CharsetPolicy::Mode::kForce, hl7v2::Charset::kLatin9};
      policy.parse.max_message_bytes = 256;
      break;
  }
  return policy;
}

// Every reply is whole MLLP frames, each an ACK whose MSA-1 is one of `codes` (a string of two-letter codes).
void checkReplies(std::string_view replies, std::string_view codes) {
  if (replies.empty()) return;
  hl7v2::MllpDecoder decoder;
  decoder.feed(replies);
  size_t frames = 0;
  while (auto item = decoder.next()) {
    FUZZ_REQUIRE(*item);  // our own framing must decode cleanly
    ++frames;
    // ACKs are written in the sender's charset: valid UTF-8, or ISO 8859 without C1 controls.
    auto utf8 = hl7v2::decodeToUtf8(**item, {hl7v2::CharsetPolicy::Mode::kForce, hl7v2::Charset::kUtf8});
    if (!utf8) utf8 = hl7v2::decodeToUtf8(**item, {hl7v2::CharsetPolicy::Mode::kForce, hl7v2::Charset::kLatin1});
    FUZZ_REQUIRE(utf8);
    auto ack = hl7v2::parseMessage(utf8->utf8);
    FUZZ_REQUIRE(ack);  // the handler must never send an ACK it cannot read back
    std::string code = ack->get("MSA-1");
    FUZZ_REQUIRE(code.size() == 2 && codes.find(code) != std::string_view::npos);
  }
  FUZZ_REQUIRE(frames > 0 && !decoder.insideFrame());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  MllpMessageHandler handler(policyFor(data[0]), [] { return std::string("20260101120000+0000"); },
                             [] { return store::UnixMillis{1767268800000}; });
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The frames a listener would get from these bytes (so never a VT or FS inside one); input with no
  // complete frame is sent as if framed once.
  auto framesOf = [](std::string_view stream) {
    hl7v2::MllpDecoder decoder(hl7v2::MllpDecoderOptions{64 * 1024});
    decoder.feed(stream);
    std::vector<std::string> out;
    while (auto item = decoder.next()) {
      if (*item) out.push_back(std::move(**item));
    }
    return out;
  };
  std::vector<std::string> frames = framesOf(bytes);
  if (frames.empty()) frames = framesOf(hl7v2::encodeMllpFrame(bytes));

  unsigned round = 0;
  for (const std::string& frame : frames) {
    FrameDecision decision = handler.examine(frame);
    if (decision.to_store) {
      FUZZ_REQUIRE(decision.immediate_reply.empty());
      const store::InboundMessage& message = *decision.to_store;
      FUZZ_REQUIRE(!message.control_id.empty() && message.listener == "fuzz" && message.route == "to-fhir");
      MllpOutcome outcome = MllpOutcome::kAccepted;
      switch (round++ % 3) {
        case 0: {
          std::string replies = handler.ackAfterStore(decision, store::InsertResult{7, false}, outcome);
          FUZZ_REQUIRE(outcome == MllpOutcome::kAccepted);
          checkReplies(replies, "AA CA");
          break;
        }
        case 1: {
          std::string replies = handler.ackAfterStore(decision, store::InsertResult{7, true}, outcome);
          FUZZ_REQUIRE(outcome == MllpOutcome::kDuplicate);
          checkReplies(replies, "AA CA");
          break;
        }
        default: {
          tl::expected<store::InsertResult, store::StoreError> failed =
              tl::unexpected(store::StoreError{store::StoreError::Kind::kUnavailable, "disk full"});
          std::string replies = handler.ackAfterStore(decision, failed, outcome);
          FUZZ_REQUIRE(outcome == MllpOutcome::kStoreFailed);
          checkReplies(replies, "AR CR");
          break;
        }
      }
    } else {
      FUZZ_REQUIRE(decision.outcome != MllpOutcome::kAccepted && decision.outcome != MllpOutcome::kDuplicate);
      checkReplies(decision.immediate_reply, "AE AR CE CR");
    }
  }
  checkReplies(handler.internalErrorAck("fuzz"), "AR");
  return 0;
}
