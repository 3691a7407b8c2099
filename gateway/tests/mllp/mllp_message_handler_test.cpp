// MllpMessageHandler: the ACK decisions without sockets.
#include "mllp/mllp_message_handler.h"

#include <catch2/catch.hpp>

#include "mllp_test_support.h"

using namespace medicus::gateway::mllp;
using namespace medicus::gateway::mllp::testing;
using medicus::gateway::store::InsertResult;
using medicus::gateway::store::StoreError;

namespace {

MllpMessageHandler makeHandler(MllpListenerPolicy policy = {}) {
  if (policy.listener_name.empty()) policy.listener_name = "mllp-test";
  policy.route = "fhir";
  return MllpMessageHandler(std::move(policy), [] { return std::string("20261122120000+0000"); },
                            [] { return medicus::gateway::store::UnixMillis(42); });
}

std::string payloadOf(const std::string& framed) {
  medicus::hl7v2::MllpDecoder decoder;
  decoder.feed(framed);
  auto item = decoder.next();
  REQUIRE(item);
  REQUIRE(*item);
  return **item;
}

}  // namespace

TEST_CASE("a valid message is to be stored with sender, MSH-10, type and patient", "[mllp]") {
  auto handler = makeHandler();
  auto d = handler.examine(adtMessage("C1"));
  REQUIRE(d.to_store);
  CHECK(d.immediate_reply.empty());
  CHECK(d.to_store->sender == "KIS|KLINIKUM");
  CHECK(d.to_store->control_id == "C1");
  CHECK(d.to_store->message_type == "ADT^A01");
  CHECK(d.to_store->patient_key == "4711^^^KLINIKUM^PI");
  CHECK(d.to_store->route == "fhir");
  CHECK(d.to_store->received_at == 42);
  MllpOutcome outcome{};
  auto ack = payloadOf(handler.ackAfterStore(d, InsertResult{7, false}, outcome));
  CHECK(msaCode(ack) == "AA");
  CHECK(ack.find("|C1") != std::string::npos);  // MSA-2 is the original MSH-10
  CHECK(outcome == MllpOutcome::kAccepted);
}

TEST_CASE("store failure gives AR with ERR 207", "[mllp]") {
  auto handler = makeHandler();
  auto d = handler.examine(adtMessage("C2"));
  MllpOutcome outcome{};
  auto ack = payloadOf(handler.ackAfterStore(d, tl::unexpected(StoreError{StoreError::Kind::kUnavailable, "disk"}), outcome));
  CHECK(msaCode(ack) == "AR");
  CHECK(ack.find("207") != std::string::npos);
  CHECK(outcome == MllpOutcome::kStoreFailed);
}

TEST_CASE("unsupported version and type are rejected with 203 / 200", "[mllp]") {
  MllpListenerPolicy policy;
  policy.accepted_versions = {"2.5"};
  policy.accepted_message_types = {"ADT"};
  auto handler = makeHandler(policy);
  std::string v231 = adtMessage("C3");
  v231.replace(v231.find("|P|2.5"), 6, "|P|2.3.1");
  auto d = handler.examine(v231);
  CHECK_FALSE(d.to_store);
  CHECK(d.outcome == MllpOutcome::kRejected);
  auto ack = payloadOf(d.immediate_reply);
  CHECK(msaCode(ack) == "AR");
  CHECK(ack.find("203") != std::string::npos);

  std::string oru = adtMessage("C4");
  oru.replace(oru.find("ADT^A01^ADT_A01"), 15, "ORU^R01^ORU_R01");
  auto d2 = handler.examine(oru);
  CHECK(d2.outcome == MllpOutcome::kRejected);
  CHECK(payloadOf(d2.immediate_reply).find("200") != std::string::npos);
}

TEST_CASE("content errors give AE with ERR: missing MSH-10, unparseable, invalid bytes", "[mllp]") {
  auto handler = makeHandler();
  auto no_id = handler.examine(adtMessage(""));
  CHECK(no_id.outcome == MllpOutcome::kContentError);
  auto ack = payloadOf(no_id.immediate_reply);
  CHECK(msaCode(ack) == "AE");
  CHECK(ack.find("101") != std::string::npos);

  auto garbage = handler.examine("this is not HL7");
  CHECK(garbage.outcome == MllpOutcome::kContentError);
  CHECK(msaCode(payloadOf(garbage.immediate_reply)) == "AE");

  // Latin-1 bytes while the policy trusts MSH-18 = UNICODE UTF-8: invalid UTF-8 -> AE 102.
  std::string latin1 = adtMessage("C5", "4711", "||||||UNICODE UTF-8");
  auto pos = latin1.find("Müller");
  latin1.replace(pos, 7, "M\xFCller");
  auto bad = handler.examine(latin1);
  CHECK(bad.outcome == MllpOutcome::kContentError);
  CHECK(payloadOf(bad.immediate_reply).find("102") != std::string::npos);
}

TEST_CASE("charset policy per sender: Latin-1 forced for one sender", "[mllp]") {
  MllpListenerPolicy policy;
  medicus::hl7v2::CharsetPolicy force_latin1{medicus::hl7v2::CharsetPolicy::Mode::kForce, medicus::hl7v2::Charset::kLatin1};
  policy.senders.push_back({"KIS|KLINIKUM", force_latin1});
  auto handler = makeHandler(policy);
  std::string latin1 = adtMessage("C6", "4711", "||||||UNICODE UTF-8");  // wrong MSH-18, as in real life
  latin1.replace(latin1.find("Müller"), 7, "M\xFCller");
  auto d = handler.examine(latin1);
  REQUIRE(d.to_store);
  CHECK(d.to_store->text.find("Müller") != std::string::npos);
  CHECK(d.to_store->charset == "8859/1");
}

TEST_CASE("enhanced mode: CA then AA after storing; CR when the store fails", "[mllp]") {
  auto handler = makeHandler();
  auto d = handler.examine(adtMessage("C7", "4711", "|||AL|AL"));
  REQUIRE(d.to_store);
  MllpOutcome outcome{};
  std::string wire = handler.ackAfterStore(d, InsertResult{1, false}, outcome);
  medicus::hl7v2::MllpDecoder decoder;
  decoder.feed(wire);
  auto first = decoder.next();
  auto second = decoder.next();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(msaCode(**first) == "CA");
  CHECK(msaCode(**second) == "AA");

  std::string failed = handler.ackAfterStore(d, tl::unexpected(StoreError{}), outcome);
  CHECK(msaCode(payloadOf(failed)) == "CR");
}

TEST_CASE("a duplicate is acknowledged AA again and counted as duplicate", "[mllp]") {
  auto handler = makeHandler();
  auto d = handler.examine(adtMessage("C8"));
  MllpOutcome outcome{};
  auto ack = payloadOf(handler.ackAfterStore(d, InsertResult{3, true}, outcome));
  CHECK(msaCode(ack) == "AA");
  CHECK(outcome == MllpOutcome::kDuplicate);
}

TEST_CASE("an ACK quoting raw bytes of a refused MSH-18 is still in one charset (found by the fuzz target)", "[mllp]") {
  MllpListenerPolicy policy;
  policy.charset = {medicus::hl7v2::CharsetPolicy::Mode::kTrustMsh18, medicus::hl7v2::Charset::kLatin1};
  auto handler = makeHandler(policy);
  // MSH-18 "\xD9" "1" is no charset we know; the AE/CE text quotes it.
  std::string message = "MSH|^~\\&|KIS|KLINIKUM|GW|MEDICUS|20261122101500||ADT^A01^ADT_A01|X1|P|2.5||||||\xD9"
                        "1\rPID|1||4711\r";
  auto d = handler.examine(message);
  REQUIRE_FALSE(d.to_store);
  CHECK(d.outcome == MllpOutcome::kContentError);
  auto ack = payloadOf(d.immediate_reply);
  CHECK(msaCode(ack) == "AE");
  CHECK(ack.find("not supported") != std::string::npos);
  bool utf8 = medicus::hl7v2::convertToUtf8(ack, medicus::hl7v2::Charset::kUtf8).has_value();
  bool latin1 = medicus::hl7v2::convertToUtf8(ack, medicus::hl7v2::Charset::kLatin1).has_value();
  CHECK((utf8 || latin1));
}
