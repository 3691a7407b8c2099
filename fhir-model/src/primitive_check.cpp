// Lexical rules of the R4 primitive types (http://hl7.org/fhir/R4/datatypes.html#primitive), written
// out by hand: std::regex is far too slow for a parser's hot path.
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "medicus/fhir/format.h"

namespace medicus::fhir {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) if (!isDigit(c)) return false;
  return true;
}

int number(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// -?(0|[1-9][0-9]*), then range-checked against [min, max].
std::string checkInteger(std::string_view v, int64_t min, int64_t max, bool allow_plus) {
  std::string_view digits = v;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || (allow_plus && digits[0] == '+'))) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (!allDigits(digits) || (digits.size() > 1 && digits[0] == '0')) return "is not an integer";
  if (digits.size() > 11) return "is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")";
  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  if (negative) value = -value;
  if (value < min || value > max) return "is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")";
  return {};
}

bool checkDecimal(std::string_view v) {
  size_t i = 0;
  if (i < v.size() && v[i] == '-') ++i;
  if (i >= v.size()) return false;
  if (v[i] == '0') {
    ++i;
  } else if (v[i] >= '1' && v[i] <= '9') {
    while (i < v.size() && isDigit(v[i])) ++i;
  } else {
    return false;
  }
  if (i < v.size() && v[i] == '.') {
    ++i;
    size_t start = i;
    while (i < v.size() && isDigit(v[i])) ++i;
    if (i == start) return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    size_t start = i;
    while (i < v.size() && isDigit(v[i])) ++i;
    if (i == start) return false;
  }
  return i == v.size();
}

int daysInMonth(int year, int month) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return days[month - 1];
}

// YYYY, YYYY-MM or YYYY-MM-DD; `consumed` is how much was read.
bool checkDatePart(std::string_view v, size_t& consumed, int& precision) {
  if (v.size() < 4 || !allDigits(v.substr(0, 4))) return false;
  int year = number(v.substr(0, 4));
  consumed = 4;
  precision = 1;
  if (v.size() == 4 || v[4] != '-') return true;
  if (v.size() < 7 || !allDigits(v.substr(5, 2))) return false;
  int month = number(v.substr(5, 2));
  if (month < 1 || month > 12) return false;
  consumed = 7;
  precision = 2;
  if (v.size() == 7 || v[7] != '-') return true;
  if (v.size() < 10 || !allDigits(v.substr(8, 2))) return false;
  int day = number(v.substr(8, 2));
  if (day < 1 || day > daysInMonth(year, month)) return false;
  consumed = 10;
  precision = 3;
  return true;
}

// hh:mm:ss(.f+)? with 24:00:00 not allowed.
bool checkTimePart(std::string_view v, size_t& consumed) {
  if (v.size() < 8 || v[2] != ':' || v[5] != ':') return false;
  if (!allDigits(v.substr(0, 2)) || !allDigits(v.substr(3, 2)) || !allDigits(v.substr(6, 2))) return false;
  if (number(v.substr(0, 2)) > 23 || number(v.substr(3, 2)) > 59 || number(v.substr(6, 2)) > 60) return false;
  consumed = 8;
  if (v.size() > 8 && v[8] == '.') {
    size_t i = 9;
    while (i < v.size() && isDigit(v[i])) ++i;
    if (i == 9) return false;
    consumed = i;
  }
  return true;
}

bool checkZone(std::string_view v) {
  if (v == "Z") return true;
  if (v.size() != 6 || (v[0] != '+' && v[0] != '-') || v[3] != ':') return false;
  if (!allDigits(v.substr(1, 2)) || !allDigits(v.substr(4, 2))) return false;
  return number(v.substr(1, 2)) <= 14 && number(v.substr(4, 2)) <= 59;
}

std::string checkDateTime(std::string_view v, bool instant) {
  size_t consumed = 0;
  int precision = 0;
  if (!checkDatePart(v, consumed, precision)) return "is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)";
  if (consumed == v.size()) {
    return instant ? "must be a full instant with time and time zone (YYYY-MM-DDThh:mm:ss+zz:zz)" : "";
  }
  if (precision != 3 || v[consumed] != 'T') return "is not a valid dateTime";
  std::string_view rest = v.substr(consumed + 1);
  size_t time_len = 0;
  if (!checkTimePart(rest, time_len)) return "has an invalid time (hh:mm:ss)";
  std::string_view zone = rest.substr(time_len);
  if (zone.empty()) return "must have a time zone when a time is given";
  if (!checkZone(zone)) return "has an invalid time zone (Z or +hh:mm)";
  return {};
}

// 1: base64 alphabet or '=', 2: whitespace, 0: anything else.
constexpr auto kBase64Class = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = 1;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = 1;
  for (int c = '0'; c <= '9'; ++c) t[c] = 1;
  t['+'] = t['/'] = t['='] = 1;
  t[' '] = t['\t'] = t['\r'] = t['\n'] = 2;
  return t;
}();

// True if s holds a control character other than tab, CR and LF. Eight bytes at a time: strings are
// most of a resource's bytes, and most have no control characters at all.
bool hasForbiddenControl(std::string_view s) {
  size_t i = 0;
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    // A byte below 0x20 exists when (x - 0x20..20) borrows into a byte whose high bit was clear.
    if (((x - kOnes * 0x20) & ~x & kHighs) == 0) continue;
    for (size_t k = i; k < i + 8; ++k) {
      unsigned char u = static_cast<unsigned char>(s[k]);
      if (u < 0x20 && u != '\t' && u != '\r' && u != '\n') return true;
    }
  }
  for (; i < s.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 && u != '\t' && u != '\r' && u != '\n') return true;
  }
  return false;
}

}  // namespace

std::string checkPrimitiveValue(const TypeInfo& type, std::string_view v) {
  if (v.empty()) return "must not be empty (leave the element out instead)";
  switch (type.primitive_kind) {
  case PrimitiveKind::Boolean: return v == "true" || v == "false" ? "" : "must be true or false";
  case PrimitiveKind::Integer: return checkInteger(v, INT32_MIN, INT32_MAX, false);
  case PrimitiveKind::PositiveInt: return checkInteger(v, 1, INT32_MAX, true);
  case PrimitiveKind::UnsignedInt: return checkInteger(v, 0, INT32_MAX, false);
  case PrimitiveKind::Decimal: return checkDecimal(v) ? "" : "is not a decimal number";
  case PrimitiveKind::Date: {
    size_t consumed = 0;
    int precision = 0;
    return checkDatePart(v, consumed, precision) && consumed == v.size() ? "" : "is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)";
  }
  case PrimitiveKind::DateTime: return checkDateTime(v, false);
  case PrimitiveKind::Instant: return checkDateTime(v, true);
  case PrimitiveKind::Time: {
    size_t consumed = 0;
    return checkTimePart(v, consumed) && consumed == v.size() ? "" : "is not a valid time (hh:mm:ss)";
  }
  case PrimitiveKind::Id: {
    if (v.size() > 64) return "is longer than 64 characters";
    for (char c : v) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '-' || c == '.')) {
        return "may only contain A-Z, a-z, 0-9, '-' and '.'";
      }
    }
    return {};
  }
  case PrimitiveKind::Code: {
    // [^\s]+( [^\s]+)*: no leading/trailing whitespace, single spaces only.
    if (v.front() == ' ' || v.back() == ' ') return "must not start or end with whitespace";
    for (size_t i = 0; i < v.size(); ++i) {
      char c = v[i];
      if (c == '\t' || c == '\r' || c == '\n') return "must not contain tabs or line breaks";
      if (c == ' ' && i + 1 < v.size() && v[i + 1] == ' ') return "must not contain double spaces";
    }
    return {};
  }
  case PrimitiveKind::Uri: {
    for (char c : v) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return "must not contain whitespace";
    }
    return {};
  }
  case PrimitiveKind::Oid: {
    if (v.substr(0, 8) != "urn:oid:") return "must start with urn:oid:";
    std::string_view rest = v.substr(8);
    if (rest.empty() || (rest[0] != '0' && rest[0] != '1' && rest[0] != '2')) return "is not a valid OID";
    for (char c : rest) if (!isDigit(c) && c != '.') return "is not a valid OID";
    return {};
  }
  case PrimitiveKind::Uuid: {
    if (v.substr(0, 9) != "urn:uuid:" || v.size() != 45) return "must be urn:uuid: followed by a UUID";
    std::string_view u = v.substr(9);
    for (size_t i = 0; i < u.size(); ++i) {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      char c = u[i];
      if (dash ? c != '-' : !(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        return "must be urn:uuid: followed by a UUID";
      }
    }
    return {};
  }
  case PrimitiveKind::Base64Binary: {
    size_t count = 0;
    for (char c : v) {
      uint8_t cls = kBase64Class[static_cast<unsigned char>(c)];
      if (cls == 0) return "is not valid base64";
      count += cls == 1;
    }
    return count % 4 == 0 ? "" : "is not valid base64 (length is not a multiple of 4)";
  }
  case PrimitiveKind::Xhtml: return {};
    case PrimitiveKind::None:
    case PrimitiveKind::String: break;
  }
  // string, markdown and their relatives: [ \r\n\t\S]+ — no other control characters.
  return hasForbiddenControl(v) ? "contains a control character" : "";
}

}  // namespace medicus::fhir
