#include "fhirpath/ucum.h"

#include <cctype>

namespace medicus::fhirpath::detail {
namespace {

struct Atom {
  std::string_view code;
  const char* factor;  // in base units, exact decimal text
  std::string_view base;
  int exponent;
};

// Base units: g, m, s, mol, K, plus a few atoms kept as their own dimension.
constexpr Atom kAtoms[] = {
    {"g", "1", "g", 1},           {"kg", "1000", "g", 1},        {"mg", "0.001", "g", 1},
    {"ug", "0.000001", "g", 1},   {"ng", "0.000000001", "g", 1}, {"[lb_av]", "453.59237", "g", 1},
    {"[oz_av]", "28.349523125", "g", 1},
    {"m", "1", "m", 1},           {"km", "1000", "m", 1},        {"dm", "0.1", "m", 1},
    {"cm", "0.01", "m", 1},       {"mm", "0.001", "m", 1},       {"um", "0.000001", "m", 1},
    {"nm", "0.000000001", "m", 1}, {"[in_i]", "0.0254", "m", 1},  {"[ft_i]", "0.3048", "m", 1},
    {"L", "0.001", "m", 3},       {"l", "0.001", "m", 3},        {"dL", "0.0001", "m", 3},
    {"cL", "0.00001", "m", 3},    {"mL", "0.000001", "m", 3},    {"uL", "0.000000001", "m", 3},
    {"s", "1", "s", 1},           {"ms", "0.001", "s", 1},       {"us", "0.000001", "s", 1},
    {"min", "60", "s", 1},        {"h", "3600", "s", 1},         {"d", "86400", "s", 1},
    {"wk", "604800", "s", 1},     {"mo", "2629800", "s", 1},     {"a", "31557600", "s", 1},
    {"mol", "1", "mol", 1},       {"mmol", "0.001", "mol", 1},   {"umol", "0.000001", "mol", 1},
    {"K", "1", "K", 1},           {"Cel", "1", "Cel", 1},        {"[degF]", "1", "[degF]", 1},
    {"%", "0.01", "", 0},         {"1", "1", "", 0},             {"[arb'U]", "1", "[arb'U]", 1},
    {"[iU]", "1", "[iU]", 1},     {"[IU]", "1", "[iU]", 1},      {"mm[Hg]", "1", "mm[Hg]", 1},
    {"[s]", "1", "[s]", 1},
};

bool applyTerm(std::string_view term, int sign, CanonicalQuantity& out) {
  if (term.empty()) return false;
  // Trailing exponent digits: "m2", "s-1".
  size_t end = term.size();
  while (end > 0 && (std::isdigit(static_cast<unsigned char>(term[end - 1])))) --end;
  if (end > 0 && end < term.size() && term[end - 1] == '-') --end;
  int exponent = 1;
  std::string_view atom = term;
  if (end > 0 && end < term.size() && term[0] != '[') {
    exponent = std::stoi(std::string(term.substr(end)));
    atom = term.substr(0, end);
  }
  if (exponent < 0) {
    sign = -sign;
    exponent = -exponent;
  }
  if (atom == "10*3" || atom == "10*6" || atom == "10*9" || atom == "10*12") {
    std::string factor = "1" + std::string(static_cast<size_t>(std::stoi(std::string(atom.substr(3)))), '0');
    auto f = Decimal::parse(factor);
    auto v = sign > 0 ? out.value.mul(*f) : out.value.div(*f);
    if (!v) return false;
    out.value = *v;
    return true;
  }
  for (const Atom& a : kAtoms) {
    if (a.code != atom) continue;
    Decimal factor = *Decimal::parse(a.factor);
    for (int i = 0; i < exponent; ++i) {
      auto v = sign > 0 ? out.value.mul(factor) : out.value.div(factor);
      if (!v) return false;
      out.value = *v;
    }
    if (!a.base.empty()) {
      int& e = out.dims[std::string(a.base)];
      e += sign * exponent * a.exponent;
      if (e == 0) out.dims.erase(std::string(a.base));
    }
    return true;
  }
  return false;
}

}  // namespace

bool isCalendarKeyword(std::string_view unit) { return calendarToUcum(unit) != unit; }

std::string_view calendarToUcum(std::string_view unit) {
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"year", "a"},   {"years", "a"},   {"month", "mo"},  {"months", "mo"},       {"week", "wk"},
      {"weeks", "wk"}, {"day", "d"},     {"days", "d"},    {"hour", "h"},          {"hours", "h"},
      {"minute", "min"}, {"minutes", "min"}, {"second", "s"}, {"seconds", "s"}, {"millisecond", "ms"},
      {"milliseconds", "ms"}};
  for (const auto& [k, v] : kMap)
    if (k == unit) return v;
  return unit;
}

std::optional<CanonicalQuantity> canonicalize(const Quantity& q) {
  CanonicalQuantity out;
  out.value = q.value;
  std::string_view unit = calendarToUcum(q.unit);
  if (unit.empty()) return out;
  // Terms joined by '.' (multiply) and '/' (divide), left to right.
  int sign = 1;
  size_t start = 0;
  if (unit[0] == '/') {
    sign = -1;
    start = 1;
  }
  for (size_t i = start; i <= unit.size(); ++i) {
    bool bracket = false;
    size_t j = i;
    while (j < unit.size() && (bracket || (unit[j] != '.' && unit[j] != '/'))) {
      if (unit[j] == '[') bracket = true;
      if (unit[j] == ']') bracket = false;
      ++j;
    }
    if (!applyTerm(unit.substr(i, j - i), sign, out)) return std::nullopt;
    if (j >= unit.size()) break;
    sign = unit[j] == '/' ? -1 : 1;
    i = j;
  }
  return out;
}

std::string unitOf(const std::map<std::string, int>& dims) {
  std::string num, den;
  for (const auto& [base, e] : dims) {
    std::string& target = e > 0 ? num : den;
    if (!target.empty()) target += '.';
    target += base;
    int a = e > 0 ? e : -e;
    if (a != 1) target += std::to_string(a);
  }
  if (num.empty()) num = "1";
  return den.empty() ? num : num + "/" + den;
}

}  // namespace medicus::fhirpath::detail
