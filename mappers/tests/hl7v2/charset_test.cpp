#include <catch2/catch.hpp>

#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"

using namespace medicus::hl7v2;

namespace {
std::string withMsh18(std::string_view msh18, std::string_view pid_name) {
  return "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||" + std::string(msh18) + "\rPID|1||1||" +
         std::string(pid_name) + "\r";
}
}  // namespace

TEST_CASE("Charset: MSH-18 names and common spellings", "[hl7v2][charset]") {
  CHECK(charsetFromMsh18("8859/1") == Charset::kLatin1);
  CHECK(charsetFromMsh18("ISO-8859-1") == Charset::kLatin1);
  CHECK(charsetFromMsh18("iso_8859-1") == Charset::kLatin1);
  CHECK(charsetFromMsh18("Latin1") == Charset::kLatin1);
  CHECK(charsetFromMsh18("8859/15") == Charset::kLatin9);
  CHECK(charsetFromMsh18("ISO-8859-15") == Charset::kLatin9);
  CHECK(charsetFromMsh18("UNICODE UTF-8") == Charset::kUtf8);
  CHECK(charsetFromMsh18("utf8") == Charset::kUtf8);
  CHECK(charsetFromMsh18("ASCII") == Charset::kAscii);
  CHECK_FALSE(charsetFromMsh18("ISO IR87"));
  CHECK_FALSE(charsetFromMsh18("8859/2"));
}

TEST_CASE("Charset: trust MSH-18 decodes Latin-1 and Latin-9 to UTF-8", "[hl7v2][charset]") {
  CharsetPolicy trust;  // default UTF-8 when MSH-18 is empty
  auto latin1 = decodeToUtf8(withMsh18("8859/1", "M\xFCller"), trust);
  REQUIRE(latin1);
  CHECK(latin1->charset == Charset::kLatin1);
  auto message = parseMessage(latin1->utf8);
  REQUIRE(message);
  CHECK(message->get("PID-5") == "M\xC3\xBCller");
  auto latin9 = decodeToUtf8(withMsh18("8859/15", "\xA4 \xBD"), trust);
  REQUIRE(latin9);
  CHECK(parseMessage(latin9->utf8)->get("PID-5") == "\xE2\x82\xAC \xC5\x93");  // euro sign, oe ligature
}

TEST_CASE("Charset: default when MSH-18 is missing, and forcing a charset", "[hl7v2][charset]") {
  const std::string latin1_without_msh18 = withMsh18("", "Stra\xDF" "e");
  CharsetPolicy trust_utf8;
  auto as_utf8 = decodeToUtf8(latin1_without_msh18, trust_utf8);
  REQUIRE_FALSE(as_utf8);  // invalid UTF-8 is an error with its offset, not mojibake
  CHECK(as_utf8.error().byte_offset == latin1_without_msh18.find('\xDF'));
  CHECK(as_utf8.error().code == ErrorCode::kDataTypeError);

  CharsetPolicy trust_latin1{CharsetPolicy::Mode::kTrustMsh18, Charset::kLatin1};
  auto as_latin1 = decodeToUtf8(latin1_without_msh18, trust_latin1);
  REQUIRE(as_latin1);
  CHECK(as_latin1->utf8.find("Stra\xC3\x9F" "e") != std::string::npos);

  // A German KIS that declares UTF-8 but sends Latin-1: force Latin-1 for that sender.
  const std::string lying = withMsh18("UNICODE UTF-8", "J\xF6rg");
  REQUIRE_FALSE(decodeToUtf8(lying, CharsetPolicy{}));
  auto forced = decodeToUtf8(lying, CharsetPolicy{CharsetPolicy::Mode::kForce, Charset::kLatin1});
  REQUIRE(forced);
  CHECK(forced->charset == Charset::kLatin1);
  CHECK(parseMessage(forced->utf8)->get("PID-5") == "J\xC3\xB6rg");
}

TEST_CASE("Charset: invalid bytes are errors with their offset", "[hl7v2][charset]") {
  const std::string ascii = withMsh18("ASCII", "M\xFCller");
  auto a = decodeToUtf8(ascii, CharsetPolicy{});
  REQUIRE_FALSE(a);
  CHECK(a.error().byte_offset == ascii.find('\xFC'));
  // 0x80-0x9F are not ISO 8859 characters (Windows-1252 euro 0x80 sent as Latin-1).
  const std::string cp1252 = withMsh18("8859/1", "\x80");
  auto c = decodeToUtf8(cp1252, CharsetPolicy{});
  REQUIRE_FALSE(c);
  CHECK(c.error().byte_offset == cp1252.find('\x80'));
  // Overlong, surrogate and truncated UTF-8.
  for (std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xE2\x82", "\xF5\x80\x80\x80"}) {
    const std::string text = withMsh18("UNICODE UTF-8", bad);
    auto u = decodeToUtf8(text, CharsetPolicy{});
    REQUIRE_FALSE(u);
    CHECK(u.error().byte_offset == text.find(bad));
  }
  auto unknown = decodeToUtf8(withMsh18("ISO IR87", "x"), CharsetPolicy{});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == ErrorCode::kTableValueNotFound);
  CHECK(unknown.error().location.toString() == "MSH-18");
}

TEST_CASE("Charset: UTF-8 BOM is removed and counts as a declaration", "[hl7v2][charset]") {
  auto decoded = decodeToUtf8("\xEF\xBB\xBF" + withMsh18("", "\xC3\xA4"),
                              CharsetPolicy{CharsetPolicy::Mode::kTrustMsh18, Charset::kLatin1});
  REQUIRE(decoded);
  CHECK(decoded->charset == Charset::kUtf8);
  CHECK(decoded->utf8.substr(0, 3) == "MSH");
}

TEST_CASE("Charset: encoding back to the sender's charset for ACKs", "[hl7v2][charset]") {
  CHECK(encodeFromUtf8("M\xC3\xBCller", Charset::kLatin1).value() == "M\xFCller");
  CHECK(encodeFromUtf8("\xE2\x82\xAC", Charset::kLatin9).value() == "\xA4");
  std::size_t replaced = 0;
  CHECK(encodeFromUtf8("\xE2\x82\xAC \xC2\xA4", Charset::kLatin1, &replaced).value() == "? \xA4");
  CHECK(replaced == 1);
  CHECK(encodeFromUtf8("\xC2\xA4", Charset::kLatin9, &replaced).value() == "?");  // 0xA4 is the euro in 8859-15
  CHECK(encodeFromUtf8("\xC3\xA4", Charset::kAscii, &replaced).value() == "?");
  CHECK(encodeFromUtf8("\xC3\xA4", Charset::kUtf8).value() == "\xC3\xA4");
  CHECK_FALSE(encodeFromUtf8("\xFF", Charset::kLatin1));
  // Round trip Latin-1 -> UTF-8 -> Latin-1 for every Latin-1 character.
  std::string all;
  for (int b = 0xA0; b <= 0xFF; ++b) all += static_cast<char>(b);
  CHECK(encodeFromUtf8(convertToUtf8(all, Charset::kLatin1).value(), Charset::kLatin1).value() == all);
  CHECK(encodeFromUtf8(convertToUtf8(all, Charset::kLatin9).value(), Charset::kLatin9).value() == all);
}
