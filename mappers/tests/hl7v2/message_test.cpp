#include <catch2/catch.hpp>

#include "medicus/hl7v2/message.h"

using namespace medicus::hl7v2;

namespace {
const std::string kAdt =
    "MSH|^~\\&|KIS|HOSP|GW|MED|20240101120000+0100||ADT^A01^ADT_A01|MSG0001|P|2.5|||AL|NE||8859/1\r"
    "EVN|A01|20240101120000\r"
    "PID|1||12345^^^HOSP^MR~999^^^KV^KVZ||M\\S\\ller^Hans\\T\\Peter^^^Dr.||19700101|M|||Hauptstr. 1^^Berlin^^10115^DE\r"
    "PV1|1|I|STATION1^ZIMMER2^BETT3\r"
    "OBX|1|ST|CODE1||first\r"
    "OBX|2|TX|CODE2||line1\\.br\\line2|\"\"\r"
    "ZBE|MOVE1|20240101120000||INSERT\r";

Message parseOk(std::string_view text, const ParseOptions& options = {}) {
  auto message = parseMessage(text, options);
  INFO((message ? std::string() : message.error().describe()));
  REQUIRE(message);
  return std::move(*message);
}
}  // namespace

TEST_CASE("ER7: fields, repetitions, components and sub-components by location", "[hl7v2][er7]") {
  Message m = parseOk(kAdt);
  CHECK(m.segmentCount() == 7);
  CHECK(m.messageType() == "ADT");
  CHECK(m.triggerEvent() == "A01");
  CHECK(m.controlId() == "MSG0001");
  CHECK(m.version() == "2.5");
  CHECK(m.get("MSH-1") == "|");
  CHECK(m.get("MSH-2") == "^~\\&");
  CHECK(m.get("MSH-9.3") == "ADT_A01");
  CHECK(m.get("PID-3.1") == "12345");
  CHECK(m.get("PID-3(2).1") == "999");
  CHECK(m.get("PID-3(2).5") == "KVZ");
  CHECK(m.repetitionCount(*parseLocation("PID-3")) == 2);
  CHECK(m.get("PID-5.1") == "M^ller");  // \S\ is the component separator as text
  CHECK(m.get("PID-5.2") == "Hans&Peter");
  CHECK(m.raw(*parseLocation("PID-5.2")) == "Hans\\T\\Peter");
  CHECK(m.get("PID-11.3") == "Berlin");
  CHECK(m.get("PV1-3.2") == "ZIMMER2");
  CHECK(m.get("OBX[2]-5") == "line1\nline2");
  CHECK(m.get("OBX-3") == "CODE1");
  CHECK(m.get("ZBE-4") == "INSERT");  // Z-segments are kept
  CHECK(m.get("PID-99").empty());
  CHECK(m.get("NTE-1").empty());
  CHECK(m.findSegment("OBX", 2)->index() == 5);
  CHECK(m.findSegment("OBX", 2)->occurrence() == 2);
  CHECK_FALSE(m.findSegment("OBX", 3));
}

TEST_CASE("ER7: explicit null \"\" is distinct from empty", "[hl7v2][er7]") {
  Message m = parseOk(kAdt);
  auto null_location = *parseLocation("OBX[2]-6");
  auto empty_location = *parseLocation("OBX[2]-4");
  CHECK(m.isExplicitNull(null_location));
  CHECK(m.raw(null_location) == "\"\"");
  CHECK(m.get(null_location).empty());
  CHECK_FALSE(m.isExplicitNull(empty_location));
  CHECK(m.raw(empty_location).empty());
}

TEST_CASE("ER7: round trip of a CR-terminated message is exact", "[hl7v2][er7]") {
  Message m = parseOk(kAdt);
  CHECK(encode(m) == kAdt);
}

TEST_CASE("ER7: CR, LF, CRLF and mixed terminators give the same message", "[hl7v2][er7]") {
  std::string lf = kAdt, crlf, mixed;
  for (char& c : lf) if (c == '\r') c = '\n';
  int n = 0;
  for (char c : kAdt) {
    if (c == '\r') {
      crlf += "\r\n";
      mixed += (n++ % 3 == 0) ? "\r" : (n % 3 == 1 ? "\n" : "\r\n");
    } else {
      crlf += c;
      mixed += c;
    }
  }
  for (const std::string* text : {&lf, &crlf, &mixed}) {
    Message m = parseOk(*text);
    CHECK(m.segmentCount() == 7);
    CHECK(encode(m) == kAdt);
  }
}

TEST_CASE("ER7: delimiters come from MSH-1 and MSH-2", "[hl7v2][er7]") {
  // Field separator '^', component '|' as in HAPI's segmentfinder_a24.hl7 style; escape '!', sub '#'.
  Message m = parseOk("MSH^|~!#^A^B^C^D^20240101^^ADT|A24^1^P^2.4\rPID^^^X1|Y1~X2|Y2^^Doe|J!F!n\r");
  CHECK(m.delimiters().field == '^');
  CHECK(m.delimiters().component == '|');
  CHECK(m.delimiters().escape == '!');
  CHECK(m.get("MSH-9.2") == "A24");
  CHECK(m.get("PID-3(2).2") == "Y2");
  CHECK(m.get("PID-5.2") == "J^n");
  // Three encoding characters (no sub-component separator), as in old v2.1 feeds.
  Message old = parseOk("MSH|^~}|A|B|C|D|1||BAR^P01|1|P|2.1\rPID|||X&Y^Z\r");
  CHECK(old.delimiters().subcomponent == '\0');
  CHECK(old.get("PID-3.1.1") == "X&Y");
}

TEST_CASE("ER7: escape sequences", "[hl7v2][er7][escape]") {
  Delimiters d;
  CHECK(unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", d) == "a|b^c&d~e\\f");
  CHECK(unescape("\\X41424344\\", d) == "ABCD");
  CHECK(unescape("\\xC3A4\\", d) == "\xC3\xA4");
  CHECK(unescape("x\\.br\\y", d) == "x\ny");
  CHECK(unescape("\\H\\bold\\N\\", d) == "bold");
  CHECK(unescape("\\.sp2\\ \\C2842\\ \\Zcustom\\", d) == "\\.sp2\\ \\C2842\\ \\Zcustom\\");  // kept
  CHECK(unescape("\\XZZ\\", d) == "\\XZZ\\");       // bad hex kept verbatim
  CHECK(unescape("tail\\unterminated", d) == "tail\\unterminated");
  CHECK(escape("a|b^c&d~e\\f\ng\r", d) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X0D\\");
  const std::string text = "M\xC3\xBCller | ^ & ~ \\ \n end";
  CHECK(unescape(escape(text, d), d) == text);
  Delimiters odd{'^', '|', '~', '!', '#'};
  CHECK(unescape(escape("a^b|c!d#e", odd), odd) == "a^b|c!d#e");
}

TEST_CASE("ER7: locations parse and print", "[hl7v2][er7]") {
  auto l = parseLocation("OBX[2]-5(3).1.2");
  REQUIRE(l);
  CHECK(l->segment == "OBX");
  CHECK(l->segment_occurrence == 2);
  CHECK(l->field == 5);
  CHECK(l->repetition == 3);
  CHECK(l->component == 1);
  CHECK(l->subcomponent == 2);
  CHECK(l->toString() == "OBX[2]-5(3).1.2");
  CHECK(parseLocation("PID-5.2")->toString() == "PID-5.2");
  CHECK_FALSE(parseLocation("PID-"));
  CHECK_FALSE(parseLocation("PID-0"));
  CHECK_FALSE(parseLocation("-5"));
  CHECK_FALSE(parseLocation("PID-5.x"));
}

TEST_CASE("ER7: rejected input names the place and a table 0357 code", "[hl7v2][er7][errors]") {
  auto reject = [](std::string_view text, ErrorCode code, std::string location = {}) {
    auto result = parseMessage(text);
    REQUIRE_FALSE(result);
    INFO(result.error().describe());
    CHECK(result.error().code == code);
    if (!location.empty()) CHECK(result.error().location.toString() == location);
    CHECK_FALSE(result.error().message.empty());
    return result.error();
  };
  reject("", ErrorCode::kSegmentSequenceError);
  reject("PID|1\r", ErrorCode::kSegmentSequenceError);
  reject("\x19MSH|^~\\&|A", ErrorCode::kSegmentSequenceError);
  reject("MSH", ErrorCode::kRequiredFieldMissing, "MSH-1");
  reject("MSHH0\r", ErrorCode::kDataTypeError, "MSH-1");
  reject("MSH|^|A|B|C|D|1||ADT^A01|1|P|2.5\r", ErrorCode::kDataTypeError, "MSH-2");
  reject("MSH|^~^&|A|B|C|D|1||ADT^A01|1|P|2.5\r", ErrorCode::kDataTypeError, "MSH-2");
  reject("MSH|^~\xFD&|A|B|C|D|1||ADT^A01|1|P|2.5\r", ErrorCode::kDataTypeError, "MSH-2");
  reject("MSH|^~y&|A|B|C|D|1||ADT^A01|1|P|2.5\r", ErrorCode::kDataTypeError, "MSH-2");
  reject("MSH|^~\\&|A|B|C|D|1|||1|P|2.5\r", ErrorCode::kRequiredFieldMissing, "MSH-9.1");
  reject("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|\r", ErrorCode::kRequiredFieldMissing, "MSH-12.1");
  reject("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\rMSH|^~\\&|A|B|C|D|1||ADT^A01|2|P|2.5\r",
         ErrorCode::kSegmentSequenceError, "MSH[2]");
  std::string long_msh = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5";
  for (int i = 0; i < 20; ++i) long_msh += "|0";
  reject(long_msh, ErrorCode::kDataTypeError, "MSH-29");
}

TEST_CASE("ER7: size and count limits", "[hl7v2][er7][limits]") {
  ParseOptions options;
  options.max_segments = 3;
  CHECK_FALSE(parseMessage(kAdt, options));
  options = {};
  options.max_message_bytes = 50;
  auto too_big = parseMessage(kAdt, options);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().describe().find("exceeds the limit") != std::string::npos);
  options = {};
  options.max_fields_per_segment = 5;
  auto too_many = parseMessage(kAdt, options);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.error().location.segment == "MSH");
}

TEST_CASE("ER7: lenient and strict segment ids", "[hl7v2][er7]") {
  const std::string text = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r000|1\r|00\r";
  Message lenient = parseOk(text);
  CHECK(lenient.segmentCount() == 3);
  CHECK(lenient.segment(2).id().empty());
  ParseOptions strict;
  strict.strict_segment_ids = true;
  auto rejected = parseMessage(text, strict);
  REQUIRE_FALSE(rejected);
  CHECK(rejected.error().location.segment_index == 1);
}

TEST_CASE("ER7: BOM, leading blank lines and the doubled-backslash MSH-2 quirk", "[hl7v2][er7]") {
  Message bom = parseOk("\xEF\xBB\xBF\r\nMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\nPID|1\n");
  CHECK(bom.segmentCount() == 2);
  Message quirk = parseOk("MSH|^~\\\\&|A|B|C|D|1||ADT^A01|1|P|2.6\rAL1|1||x\\r y\r");
  CHECK(quirk.delimiters().escape == '\\');
  CHECK(quirk.delimiters().subcomponent == '&');
  CHECK(quirk.get("AL1-3") == "x\\r y");  // literal backslash-r text stays text
}

TEST_CASE("ER7: batches and several messages in one text", "[hl7v2][er7][batch]") {
  const std::string batch_text =
      "FHS|^~\\&|A\rBHS|^~\\&|A\r"
      "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\r"
      "MSH|^~\\&|A|B|C|D|1||ADT^A08|2|P|2.5\rPID|2\r"
      "BTS|2\rFTS|1\r";
  auto batch = parseBatch(batch_text);
  REQUIRE(batch);
  REQUIRE(batch->messages.size() == 2);
  CHECK(batch->messages[1].controlId() == "2");
  CHECK(batch->messages[1].get("PID-1") == "2");
  CHECK(batch->envelope_segments.size() == 4);
  CHECK(batch->envelope_segments[2] == "BTS|2");
  auto parts = splitMessages(batch_text);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0] == "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\r");
  CHECK(parseMessage(batch_text).error().message.find("parseBatch") != std::string::npos);
  auto broken = parseBatch("BHS|^~\\&\rMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rMSH|^|x\r");
  REQUIRE_FALSE(broken);
  CHECK(broken.error().message.find("message 2 of the batch") != std::string::npos);
}

TEST_CASE("ER7: Er7Writer escapes values and builds parseable text", "[hl7v2][er7]") {
  Er7Writer writer;
  writer.beginMsh().field("A|pp").field("").field("").field("").field("1").field("").components({"ADT", "A01", ""});
  writer.field("c1").field("P").field("2.5");
  writer.beginSegment("PID").field("").field("").components({"42", "", "", "HOSP"});
  std::string text = writer.finish();
  CHECK(text == "MSH|^~\\&|A\\F\\pp||||1||ADT^A01|c1|P|2.5\rPID|||42^^^HOSP\r");
  Message m = parseOk(text);
  CHECK(m.get("MSH-3") == "A|pp");
  CHECK(m.get("PID-3.4") == "HOSP");
}
