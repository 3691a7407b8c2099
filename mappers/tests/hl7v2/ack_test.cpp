#include <catch2/catch.hpp>

#include "medicus/hl7v2/ack.h"

using namespace medicus::hl7v2;

namespace {
Message parse(std::string_view text) {
  auto m = parseMessage(text);
  REQUIRE(m);
  return std::move(*m);
}
const char* kOriginal = "MSH|^~\\&|KIS|HOSP|GW|MED|20240101||ADT^A01^ADT_A01|MSG1|P|2.5||||||8859/1\rPID|1\r";
}  // namespace

TEST_CASE("ACK: original mode AA mirrors MSH and answers MSA-2", "[hl7v2][ack]") {
  Message original = parse(kOriginal);
  std::string ack = buildAck(original, AckParams{AckCode::kAA, "ACK1", "20240101120000"});
  CHECK(ack ==
        "MSH|^~\\&|GW|MED|KIS|HOSP|20240101120000||ACK^A01^ACK|ACK1|P|2.5||||||8859/1\r"
        "MSA|AA|MSG1\r");
  Message parsed = parse(ack);
  CHECK(parsed.get("MSA-2") == "MSG1");
}

TEST_CASE("ACK: AE with ERR location, table 0357 code, severity and message", "[hl7v2][ack]") {
  Message original = parse(kOriginal);
  AckParams params{AckCode::kAE, "ACK2", "20240101120000"};
  AckError missing;
  missing.code = ErrorCode::kRequiredFieldMissing;
  missing.location = *parseLocation("PID-3");
  missing.user_message = "PID-3 | patient id is required";
  params.errors.push_back(missing);
  AckError type;
  type.code = ErrorCode::kDataTypeError;
  type.location = *parseLocation("OBX[2]-5(2).1.3");
  type.severity = ErrorSeverity::kWarning;
  params.errors.push_back(type);
  Message ack = parse(buildAck(original, params));
  CHECK(ack.get("MSA-1") == "AE");
  REQUIRE(ack.countSegments("ERR") == 2);
  CHECK(ack.raw(*parseLocation("ERR-2")) == "PID^1^3^1");
  CHECK(ack.raw(*parseLocation("ERR-3")) == "101^Required field missing^HL70357");
  CHECK(ack.get("ERR-4") == "E");
  CHECK(ack.get("ERR-8") == "PID-3 | patient id is required");  // escaped on the wire, decoded here
  CHECK(ack.raw(*parseLocation("ERR[2]-2")) == "OBX^2^5^2^1^3");
  CHECK(ack.get("ERR[2]-3.1") == "102");
  CHECK(ack.get("ERR[2]-4") == "W");
}

TEST_CASE("ACK: AR for unsupported things and versions before 2.5 use ERR-1", "[hl7v2][ack]") {
  Message original = parse("MSH|^~\\&|A|B|C|D|1||ORU^R01|X9|P|2.3\r");
  AckParams params{AckCode::kAR, "ACK3", "1"};
  AckError unsupported;
  unsupported.code = ErrorCode::kUnsupportedMessageType;
  unsupported.location = *parseLocation("MSH-9");
  params.errors.push_back(unsupported);
  Message ack = parse(buildAck(original, params));
  CHECK(ack.get("MSH-9.1") == "ACK");
  CHECK(ack.get("MSH-9.2") == "R01");
  CHECK(ack.get("MSA-1") == "AR");
  CHECK(ack.raw(*parseLocation("ERR-1")) == "MSH^1^9^200&Unsupported message type&HL70357");
}

TEST_CASE("ACK: from a parse error, and without an original", "[hl7v2][ack]") {
  auto error = parseMessage("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|\r").error();
  AckParams params{AckCode::kAR, "ACK4", "1", {AckError::fromError(error)}};
  Message ack = parse(buildAckWithoutOriginal(params));
  CHECK(ack.get("MSA-1") == "AR");
  CHECK(ack.get("MSA-2").empty());
  CHECK(ack.raw(*parseLocation("ERR-2")) == "MSH^1^12^1^1");
  CHECK(ack.get("ERR-3.1") == "101");
}

TEST_CASE("ACK: enhanced mode plans per MSH-15/MSH-16", "[hl7v2][ack]") {
  auto plan = [](std::string msh15, std::string msh16, bool accepted, bool ok) {
    return planAcks(parse("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||" + msh15 + "|" + msh16 + "\r"), accepted, ok);
  };
  AckPlan original = plan("", "", true, true);
  CHECK_FALSE(original.enhanced);
  CHECK(original.send_application_ack);
  CHECK_FALSE(original.send_accept_ack);

  AckPlan al_ne = plan("AL", "NE", true, true);
  CHECK(al_ne.enhanced);
  CHECK(al_ne.send_accept_ack);
  CHECK_FALSE(al_ne.send_application_ack);

  CHECK_FALSE(plan("ER", "AL", true, true).send_accept_ack);
  CHECK(plan("ER", "AL", false, true).send_accept_ack);
  CHECK_FALSE(plan("ER", "AL", false, true).send_application_ack);  // not accepted: no app ACK
  CHECK(plan("SU", "ER", true, false).send_application_ack);
  CHECK_FALSE(plan("SU", "ER", true, true).send_application_ack);
  CHECK(plan("NE", "SU", true, true).send_application_ack);
  CHECK_FALSE(plan("NE", "SU", true, true).send_accept_ack);

  Message enhanced = parse("MSH|^~\\&|A|B|C|D|1||ADT^A01|E1|P|2.5|||AL|AL\r");
  Message commit = parse(buildAck(enhanced, AckParams{AckCode::kCA, "C1", "1"}));
  CHECK(commit.get("MSA-1") == "CA");
  CHECK(commit.get("MSH-15").empty());  // ACKs are not acknowledged
}

TEST_CASE("ACK: a default-constructed message gives the no-original ACK", "[hl7v2][ack]") {
  Message empty;
  AckParams params{AckCode::kAR, "ACK5", "1"};
  CHECK(buildAck(empty, params) == buildAckWithoutOriginal(params));
}
