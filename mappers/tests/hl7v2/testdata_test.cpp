// Every HL7 v2 message of the shared test data parses; nHapi's fuzzing corpus is rejected or
// accepted as its folders say. Skips (with a message) when MEDICUS_TESTDATA is absent.
#include <catch2/catch.hpp>

#include <chrono>
#include <sstream>

#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"
#include "test_data.h"

using namespace medicus::hl7v2;
using medicus::hl7v2::testing::readFile;
using medicus::hl7v2::testing::testDataRoot;
namespace fs = std::filesystem;

namespace {

bool haveFolder(const fs::path& folder) {
  if (fs::is_directory(folder)) return true;
  WARN("SKIPPED: test data folder " << folder.string()
                                    << " is absent; set MEDICUS_TESTDATA to the shared testdata folder");
  return false;
}

// Decodes (trusting MSH-18, UTF-8 when empty) and parses one message, failing the test with the reason.
Message parseShared(std::string_view bytes, const std::string& what) {
  auto decoded = decodeToUtf8(bytes, CharsetPolicy{});
  INFO(what << ": " << (decoded ? std::string() : decoded.error().describe()));
  REQUIRE(decoded);
  auto message = parseMessage(decoded->utf8);
  INFO(what << ": " << (message ? std::string() : message.error().describe()));
  REQUIRE(message);
  CHECK_FALSE(message->messageType().empty());
  return std::move(*message);
}

// HAPI's messages.txt: `/* ... */` blocks and `//` lines are commentary, not message content.
std::string stripHapiComments(const std::string& text) {
  std::string out;
  bool in_block = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!in_block && line.rfind("/*", 0) == 0) in_block = true;
    if (in_block) {
      if (line.find("*/") != std::string::npos) in_block = false;
      continue;
    }
    if (line.rfind("//", 0) == 0) continue;
    out += line + "\n";
  }
  return out;
}

// IZ Gateway's annotated format: `#` comments, `\` continuations (next line starts with a tab),
// tab-`@` FHIRPath assertion lines. Returns plain ER7 text.
std::string stripIzGatewayAnnotations(const std::string& text) {
  std::vector<std::string> logical;
  std::istringstream lines(text);
  bool continuing = false;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (continuing) {
      std::size_t start = line.find_first_not_of('\t');
      logical.back() += start == std::string::npos ? "" : line.substr(start);
    } else {
      logical.push_back(line);
    }
    continuing = !logical.back().empty() && logical.back().back() == '\\';
    if (continuing) logical.back().pop_back();
  }
  std::string out;
  for (const std::string& line : logical) {
    if (line.empty() || line[0] == '#' || line[0] == '\t' || line[0] == ' ') continue;
    out += line + "\r";
  }
  return out;
}

}  // namespace

TEST_CASE("Shared data: HAPI messages parse", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-hapi";
  if (!haveFolder(folder)) return;
  int messages = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename() == "SOURCE.md") continue;
    std::string text = readFile(entry.path());
    if (entry.path().filename() == "messages.txt") text = stripHapiComments(text);
    auto parts = splitMessages(text);
    CHECK_FALSE(parts.empty());
    for (std::string_view part : parts) {
      parseShared(part, entry.path().filename().string());
      ++messages;
    }
  }
  CHECK(messages >= 30);

  // Non-default delimiters, two PID segments kept in order.
  Message a24 = parseShared(readFile(folder / "segmentfinder_a24.hl7"), "segmentfinder_a24");
  CHECK(a24.delimiters().field == '^');
  CHECK(a24.delimiters().component == '~');
  CHECK(a24.triggerEvent() == "A24");
  REQUIRE(a24.countSegments("PID") == 2);
  CHECK(a24.get("PID-5.1") == "SMITH");
  CHECK(a24.findSegment("PID", 1)->index() < a24.findSegment("PID", 2)->index());

  // MSH-18 = 8859/1 is honoured.
  const std::string chem = readFile(folder / "cv.04_001_chem.hl7");
  auto decoded = decodeToUtf8(chem, CharsetPolicy{});
  REQUIRE(decoded);
  CHECK(decoded->charset == Charset::kLatin1);
  CHECK(parseMessage(decoded->utf8)->messageType() == "ERP");

  Message a01 = parseShared(readFile(folder / "ADT_A01.txt"), "ADT_A01");
  CHECK(a01.triggerEvent() == "A01");
  CHECK(a01.version() == "2.4");
}

TEST_CASE("Shared data: LinuxForHealth samples", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-lfh-converter";
  if (!haveFolder(folder)) return;
  Message unix_message = parseShared(readFile(folder / "sample_unix.hl7"), "sample_unix");
  Message win_message = parseShared(readFile(folder / "sample_win.hl7"), "sample_win");
  // Same segments and values; only MSH-18 differs upstream (empty vs ASCII) besides the terminators.
  REQUIRE(unix_message.segmentCount() == win_message.segmentCount());
  CHECK(unix_message.segmentCount() == 8);
  for (std::size_t i = 1; i < unix_message.segmentCount(); ++i) {
    CHECK(unix_message.segment(i).text() == win_message.segment(i).text());
  }
  for (int f = 1; f <= 17; ++f) CHECK(unix_message.segment(0).field(f) == win_message.segment(0).field(f));
  // Policy: MSH-2 "^~\\&" (doubled backslash) is read leniently as ^~\&.
  CHECK(unix_message.delimiters().escape == '\\');
  CHECK(unix_message.delimiters().subcomponent == '&');
  // The literal text "\r" (upstream notes it; it sits at the end of the OBX) is text, not a segment break.
  std::optional<SegmentView> obx = unix_message.findSegment("OBX");
  REQUIRE(obx);
  CHECK(obx->text().find("\\r") != std::string_view::npos);
  CHECK(unix_message.countSegments("AL1") == 2);
  CHECK(parseShared(readFile(folder / "ORU-multiline-short.hl7"), "ORU").countSegments("OBX") == 3);
  Message mixed = parseShared(readFile(folder / "ORU-multiline-short-mixed.hl7"), "ORU mixed");
  REQUIRE(mixed.countSegments("OBX") == 4);
  CHECK(mixed.get("OBX[1]-2") == "ST");
  for (int i = 1; i <= 4; ++i) CHECK(mixed.get(*parseLocation("OBX[" + std::to_string(i) + "]-1")) == std::to_string(i));
}

TEST_CASE("Shared data: Microsoft FHIR-Converter messages parse", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-ms-fhir-converter" / "messages";
  if (!haveFolder(folder)) return;
  int count = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string text = readFile(entry.path());
    auto parts = splitMessages(text);
    REQUIRE(parts.size() == 1);
    Message m = parseShared(parts[0], entry.path().filename().string());
    CHECK_FALSE(m.triggerEvent().empty());
    CHECK_FALSE(m.version().empty());
    ++count;
  }
  CHECK(count == 92);
}

TEST_CASE("Shared data: IZ Gateway messages and segments parse", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-izgateway-v2tofhir";
  if (!haveFolder(folder)) return;
  const std::string plain = stripIzGatewayAnnotations(readFile(folder / "messages.txt"));
  auto parts = splitMessages(plain);
  CHECK(parts.size() == 64);
  for (std::string_view part : parts) parseShared(part, "izgateway message " + std::string(part.substr(0, 60)));

  const std::string segments = stripIzGatewayAnnotations(readFile(folder / "segments.txt"));
  std::istringstream lines(segments);
  int count = 0;
  for (std::string line; std::getline(lines, line, '\r');) {
    const std::string text = line.rfind("MSH", 0) == 0 ? line : "MSH|^~\\&|T|T|T|T|1||VXU^V04|1|P|2.5.1\r" + line;
    Message m = parseShared(text, line.substr(0, 40));
    CHECK(m.segmentCount() == (line.rfind("MSH", 0) == 0 ? 1u : 2u));
    ++count;
  }
  CHECK(count >= 51);  // SOURCE.md says 51; the file holds 52 segment lines
}

TEST_CASE("Shared data: nHapi well-formed messages parse", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-nhapi";
  if (!haveFolder(folder)) return;
  int messages = 0;
  for (const char* name : {"Parser/OML_O21_messages.txt", "Parser/adt_a03.txt", "Parser/omd_o03.txt",
                           "Util/segmentfinder_a24.hl7"}) {
    const std::string text = readFile(folder / name);
    for (std::string_view part : splitMessages(text)) {
      parseShared(part, name);
      ++messages;
    }
  }
  CHECK(messages == 10);
}

// Policy (recorded as SOURCE.md asks): lenient about segment ids and content, strict about the
// header: MSH-2 must give 2-5 distinct 7-bit non-letter separators, MSH may not exceed 28 fields, and
// MSH-9.1 / MSH-12 must be present. This rejects every HL7Exception/EncodingNotSupportedException input
// and accepts every NoException one.
TEST_CASE("Shared data: nHapi BadInputs are rejected or accepted as expected, quickly", "[hl7v2][testdata]") {
  const fs::path folder = testDataRoot() / "hl7v2-nhapi" / "BadInputs";
  if (!haveFolder(folder)) return;
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    const std::string expected = entry.path().parent_path().filename().string();
    const std::string text = readFile(entry.path());
    const auto start = std::chrono::steady_clock::now();
    auto result = parseMessage(text);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    INFO(entry.path().string() << " -> " << (result ? std::string("accepted") : result.error().describe()));
    CHECK(elapsed < std::chrono::seconds(1));
    if (expected == "NoException") {
      CHECK(result);
    } else {
      REQUIRE_FALSE(result);
      CHECK_FALSE(result.error().message.empty());
    }
    ++checked;
  }
  CHECK(checked == 24);
}
