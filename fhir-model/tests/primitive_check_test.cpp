#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"

using namespace medicus::fhir;

namespace {
bool valid(std::string_view type, std::string_view value) {
  return checkPrimitiveValue(*TypeModel::r4().find(type), value).empty();
}
}  // namespace

TEST_CASE("date, dateTime, instant and time", "[primitive]") {
  CHECK(valid("date", "2024"));
  CHECK(valid("date", "2024-02"));
  CHECK(valid("date", "2024-02-29"));
  CHECK_FALSE(valid("date", "2023-02-29"));
  CHECK_FALSE(valid("date", "2024-1-01"));
  CHECK(valid("dateTime", "2024-02-29T10:11:12+01:00"));
  CHECK(valid("dateTime", "2024-02-29T10:11:12.123Z"));
  CHECK_FALSE(valid("dateTime", "2024-02-29T10:11:12"));
  CHECK_FALSE(valid("dateTime", "2024-02T10:11:12Z"));
  CHECK(valid("instant", "2024-02-29T10:11:12Z"));
  CHECK_FALSE(valid("instant", "2024-02-29"));
  CHECK(valid("time", "23:59:59"));
  CHECK_FALSE(valid("time", "24:00:00"));
}

TEST_CASE("numbers", "[primitive]") {
  CHECK(valid("integer", "-12"));
  CHECK_FALSE(valid("integer", "012"));
  CHECK_FALSE(valid("integer", "2147483648"));
  CHECK(valid("positiveInt", "1"));
  CHECK_FALSE(valid("positiveInt", "0"));
  CHECK(valid("unsignedInt", "0"));
  CHECK(valid("decimal", "0.0010"));
  CHECK(valid("decimal", "-1.5e-10"));
  CHECK_FALSE(valid("decimal", "1."));
  CHECK_FALSE(valid("decimal", ".5"));
}

TEST_CASE("strings, codes, ids, uris", "[primitive]") {
  CHECK(valid("code", "a b"));
  CHECK_FALSE(valid("code", " a"));
  CHECK_FALSE(valid("code", "a  b"));
  CHECK(valid("id", "a-B.9"));
  CHECK_FALSE(valid("id", "a_b"));
  CHECK_FALSE(valid("id", std::string(65, 'a')));
  CHECK_FALSE(valid("uri", "http://x y"));
  CHECK(valid("oid", "urn:oid:1.2.276.0.76"));
  CHECK_FALSE(valid("oid", "1.2.3"));
  CHECK(valid("uuid", "urn:uuid:0b9f0c3e-3c33-4a6f-9c84-e0f6f3a2c5d1"));
  CHECK_FALSE(valid("string", ""));
  CHECK_FALSE(valid("string", std::string("a\x01")));
  CHECK(valid("base64Binary", "aGVsbG8="));
  CHECK_FALSE(valid("base64Binary", "aGVsbG8"));
}
