// Lexical rules of the R4 primitive types (http://hl7.org/fhir/R4/datatypes.html#primitive), written
// out by hand: std::regex is far too slow for a parser's hot path.
#include <cstdint>
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

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '+' || c == '/' || c == '=';
}

}  // namespace

std::string checkPrimitiveValue(const TypeInfo& type, std::string_view v) {
  std::string_view t = type.name;
  if (v.empty()) return "must not be empty (leave the element out instead)";
  if (t == "boolean") return v == "true" || v == "false" ? "" : "must be true or false";
  if (t == "integer") return checkInteger(v, INT32_MIN, INT32_MAX, false);
  if (t == "positiveInt") return checkInteger(v, 1, INT32_MAX, true);
  if (t == "unsignedInt") return checkInteger(v, 0, INT32_MAX, false);
  if (t == "decimal") return checkDecimal(v) ? "" : "is not a decimal number";
  if (t == "date") {
    size_t consumed = 0;
    int precision = 0;
    return checkDatePart(v, consumed, precision) && consumed == v.size() ? "" : "is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)";
  }
  if (t == "dateTime") return checkDateTime(v, false);
  if (t == "instant") return checkDateTime(v, true);
  if (t == "time") {
    size_t consumed = 0;
    return checkTimePart(v, consumed) && consumed == v.size() ? "" : "is not a valid time (hh:mm:ss)";
  }
  if (t == "id") {
    if (v.size() > 64) return "is longer than 64 characters";
    for (char c : v) {
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '-' || c == '.')) {
        return "may only contain A-Z, a-z, 0-9, '-' and '.'";
      }
    }
    return {};
  }
  if (t == "code") {
    // [^\s]+( [^\s]+)*: no leading/trailing whitespace, single spaces only.
    if (v.front() == ' ' || v.back() == ' ') return "must not start or end with whitespace";
    for (size_t i = 0; i < v.size(); ++i) {
      char c = v[i];
      if (c == '\t' || c == '\r' || c == '\n') return "must not contain tabs or line breaks";
      if (c == ' ' && i + 1 < v.size() && v[i + 1] == ' ') return "must not contain double spaces";
    }
    return {};
  }
  if (t == "uri" || t == "url" || t == "canonical") {
    for (char c : v) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return "must not contain whitespace";
    }
    return {};
  }
  if (t == "oid") {
    if (v.substr(0, 8) != "urn:oid:") return "must start with urn:oid:";
    std::string_view rest = v.substr(8);
    if (rest.empty() || (rest[0] != '0' && rest[0] != '1' && rest[0] != '2')) return "is not a valid OID";
    for (char c : rest) if (!isDigit(c) && c != '.') return "is not a valid OID";
    return {};
  }
  if (t == "uuid") {
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
  if (t == "base64Binary") {
    size_t count = 0;
    for (char c : v) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      if (!isBase64Char(c)) return "is not valid base64";
      ++count;
    }
    return count % 4 == 0 ? "" : "is not valid base64 (length is not a multiple of 4)";
  }
  if (t == "xhtml") return {};
  // string, markdown and their relatives: [ \r\n\t\S]+ — no other control characters.
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\r' && c != '\n') return "contains a control character";
  }
  return {};
}

}  // namespace medicus::fhir
