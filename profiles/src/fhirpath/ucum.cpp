#include "fhirpath/ucum.h"

#include <cctype>
#include <initializer_list>

namespace medicus::fhirpath::detail {
namespace {

// A unit atom (https://ucum.org/ucum#section-Base-Units and the derived-unit tables) as a factor
// times base units. Base dimensions: g, m, s, mol, K, C (charge); units that UCUM defines on arbitrary
// or non-ratio scales (Cel, [degF], [iU], [arb'U], U) are kept as their own dimension, so they compare
// only with themselves (and their prefixed forms). mol and eq are one dimension (UCUM: 1 eq = 1 mol).
struct Atom {
  std::string_view code;
  const char* factor;  // exact decimal text
  std::initializer_list<std::pair<std::string_view, int>> dims;
  bool metric;  // takes SI prefixes
};

const Atom kAtoms[] = {
    // base units
    {"g", "1", {{"g", 1}}, true},
    {"m", "1", {{"m", 1}}, true},
    {"s", "1", {{"s", 1}}, true},
    {"mol", "1", {{"mol", 1}}, true},
    {"K", "1", {{"K", 1}}, true},
    {"C", "1", {{"C", 1}}, true},
    // volume, mass
    {"L", "0.001", {{"m", 3}}, true},
    {"l", "0.001", {{"m", 3}}, true},
    {"t", "1000000", {{"g", 1}}, true},
    {"[drp]", "0.00000005", {{"m", 3}}, false},  // drop: 1/20 mL
    // time (not metric: "h" is an hour, "d" a day, "a" a year)
    {"min", "60", {{"s", 1}}, false},
    {"h", "3600", {{"s", 1}}, false},
    {"d", "86400", {{"s", 1}}, false},
    {"wk", "604800", {{"s", 1}}, false},
    {"mo", "2629800", {{"s", 1}}, false},
    {"mo_j", "2629800", {{"s", 1}}, false},
    {"a", "31557600", {{"s", 1}}, false},
    {"a_j", "31557600", {{"s", 1}}, false},
    {"Hz", "1", {{"s", -1}}, true},
    // force, pressure, energy, power (kg = 1000 g)
    {"N", "1000", {{"g", 1}, {"m", 1}, {"s", -2}}, true},
    {"Pa", "1000", {{"g", 1}, {"m", -1}, {"s", -2}}, true},
    {"bar", "100000000", {{"g", 1}, {"m", -1}, {"s", -2}}, true},
    {"m[Hg]", "133322000", {{"g", 1}, {"m", -1}, {"s", -2}}, true},   // 133.3220 kPa
    {"m[H2O]", "9806650", {{"g", 1}, {"m", -1}, {"s", -2}}, true},    // 9.80665 kPa
    {"[in_i'Hg]", "3386378.8", {{"g", 1}, {"m", -1}, {"s", -2}}, false},
    {"J", "1000", {{"g", 1}, {"m", 2}, {"s", -2}}, true},
    {"cal", "4184", {{"g", 1}, {"m", 2}, {"s", -2}}, true},
    {"[Cal]", "4184000", {{"g", 1}, {"m", 2}, {"s", -2}}, false},  // nutrition label Calorie = kcal
    {"W", "1000", {{"g", 1}, {"m", 2}, {"s", -3}}, true},
    // electricity (ECG mV, ...)
    {"A", "1", {{"C", 1}, {"s", -1}}, true},
    {"V", "1000", {{"g", 1}, {"m", 2}, {"s", -2}, {"C", -1}}, true},
    {"Ohm", "1000", {{"g", 1}, {"m", 2}, {"s", -1}, {"C", -2}}, true},
    // amount of substance
    {"eq", "1", {{"mol", 1}}, true},
    {"kat", "1", {{"mol", 1}, {"s", -1}}, true},
    // customary units
    {"[in_i]", "0.0254", {{"m", 1}}, false},
    {"[ft_i]", "0.3048", {{"m", 1}}, false},
    {"[yd_i]", "0.9144", {{"m", 1}}, false},
    {"[mi_i]", "1609.344", {{"m", 1}}, false},
    {"[lb_av]", "453.59237", {{"g", 1}}, false},
    {"[oz_av]", "28.349523125", {{"g", 1}}, false},
    {"[foz_us]", "0.0000295735295625", {{"m", 3}}, false},
    {"[pt_us]", "0.000473176473", {{"m", 3}}, false},
    {"[gal_us]", "0.003785411784", {{"m", 3}}, false},
    // dimensionless
    {"1", "1", {}, false},
    {"%", "0.01", {}, false},
    {"[ppth]", "0.001", {}, false},
    {"[ppm]", "0.000001", {}, false},
    {"[ppb]", "0.000000001", {}, false},
    // own dimensions (arbitrary or non-ratio scales)
    {"Cel", "1", {{"Cel", 1}}, true},
    {"[degF]", "1", {{"[degF]", 1}}, false},
    {"[iU]", "1", {{"[iU]", 1}}, true},
    {"[IU]", "1", {{"[iU]", 1}}, true},
    {"[arb'U]", "1", {{"[arb'U]", 1}}, false},
    {"U", "1", {{"U", 1}}, true},
    {"[pH]", "1", {{"[pH]", 1}}, false},
    {"[s]", "1", {{"[s]", 1}}, false},
};

struct Prefix {
  std::string_view code;
  int exponent;
};
constexpr Prefix kPrefixes[] = {
    {"da", 1}, {"Y", 24}, {"Z", 21}, {"E", 18}, {"P", 15}, {"T", 12}, {"G", 9}, {"M", 6}, {"k", 3}, {"h", 2},
    {"d", -1}, {"c", -2}, {"m", -3}, {"u", -6}, {"n", -9}, {"p", -12}, {"f", -15}, {"a", -18}, {"z", -21}, {"y", -24},
};

const Atom* findAtom(std::string_view code) {
  for (const Atom& a : kAtoms)
    if (a.code == code) return &a;
  return nullptr;
}

// value *= 10^exponent, exactly (multiplication only: Decimal::div keeps 8 fractional digits, too few
// for femtolitres or picomoles); false on overflow.
bool scaleByPowerOfTen(Decimal& value, int exponent) {
  if (exponent == 0) return true;
  std::string text = exponent > 0 ? "1" + std::string(static_cast<size_t>(exponent), '0')
                                  : "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + "1";
  auto f = Decimal::parse(text);
  if (!f) return false;
  auto v = value.mul(*f);
  if (!v) return false;
  value = *v;
  return true;
}

// Terms multiply `numerator` (sign +1) or `denominator` (sign -1); canonicalize() divides once.
struct Accumulator {
  CanonicalQuantity& out;
  Decimal denominator = Decimal::fromInt(1);
  bool multiply(int sign, const Decimal& factor) {
    Decimal& target = sign > 0 ? out.value : denominator;
    auto v = target.mul(factor);
    if (!v) return false;
    target = *v;
    return true;
  }
  bool power(int sign, int exponent) { return scaleByPowerOfTen(sign > 0 ? out.value : denominator, exponent); }
};

// numerator / denominator: exact when the denominator is a power of ten (prefixes, L, %, ...).
std::optional<Decimal> divideExactly(const Decimal& numerator, const Decimal& denominator) {
  Decimal d = denominator.normalized();
  __int128 m = d.mantissa();
  int tens = 0;
  while (m > 1 && m % 10 == 0) {
    m /= 10;
    ++tens;
  }
  if (m == 1) {
    Decimal r = numerator;
    if (!scaleByPowerOfTen(r, d.scale() - tens)) return std::nullopt;
    return r;
  }
  return numerator.div(denominator);
}

bool applyTerm(std::string_view term, int sign, Accumulator& acc) {
  CanonicalQuantity& out = acc.out;
  // Annotations ("{beats}/min", "mg{total}") carry no meaning; an annotation alone is the unit 1.
  std::string stripped;
  if (term.find('{') != std::string_view::npos) {
    for (size_t i = 0; i < term.size(); ++i) {
      if (term[i] == '{') {
        size_t close = term.find('}', i);
        if (close == std::string_view::npos) return false;
        i = close;
        continue;
      }
      stripped.push_back(term[i]);
    }
    if (stripped.empty()) return true;
    term = stripped;
  }
  if (term.empty()) return false;
  // 10*3, 10^3, 10*-3: powers of ten.
  if (term.size() > 3 && term[0] == '1' && term[1] == '0' && (term[2] == '*' || term[2] == '^')) {
    std::string_view digits = term.substr(3);
    int e = 0;
    bool neg = !digits.empty() && (digits[0] == '-' || digits[0] == '+') ? (digits.remove_prefix(1), term[3] == '-') : false;
    if (digits.empty() || digits.size() > 2) return false;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      e = e * 10 + (c - '0');
    }
    return acc.power(sign, neg ? -e : e);
  }
  // Trailing exponent: "m2", "s-1" (not inside brackets: "[in_i]" ends with ']').
  size_t end = term.size();
  while (end > 0 && term[end - 1] >= '0' && term[end - 1] <= '9') --end;
  if (end > 0 && end < term.size() && (term[end - 1] == '-' || term[end - 1] == '+')) --end;
  int exponent = 1;
  std::string_view atom_code = term;
  if (end > 0 && end < term.size() && term != "1") {
    std::string_view e = term.substr(end);
    bool neg = e[0] == '-';
    if (e[0] == '-' || e[0] == '+') e.remove_prefix(1);
    if (e.empty() || e.size() > 2) return false;
    exponent = 0;
    for (char c : e) exponent = exponent * 10 + (c - '0');
    if (neg) exponent = -exponent;
    atom_code = term.substr(0, end);
  }
  if (exponent < 0) {
    sign = -sign;
    exponent = -exponent;
  }
  const Atom* atom = findAtom(atom_code);
  int prefix_exponent = 0;
  if (!atom) {
    for (const Prefix& p : kPrefixes) {
      if (atom_code.size() <= p.code.size() || atom_code.substr(0, p.code.size()) != p.code) continue;
      const Atom* a = findAtom(atom_code.substr(p.code.size()));
      if (a && a->metric) {
        atom = a;
        prefix_exponent = p.exponent;
        break;
      }
    }
  }
  if (!atom) return false;
  Decimal factor = *Decimal::parse(atom->factor);
  if (!scaleByPowerOfTen(factor, prefix_exponent)) return false;
  for (int i = 0; i < exponent; ++i)
    if (!acc.multiply(sign, factor)) return false;
  for (const auto& [base, e0] : atom->dims) {
    int& e = out.dims[std::string(base)];
    e += sign * exponent * e0;
    if (e == 0) out.dims.erase(std::string(base));
  }
  return true;
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
  Accumulator acc{out};
  int sign = 1;
  size_t start = 0;
  if (unit[0] == '/') {
    sign = -1;
    start = 1;
  }
  for (size_t i = start; i <= unit.size(); ++i) {
    bool bracket = false, brace = false;  // '.' and '/' inside [..] and {..} do not split
    size_t j = i;
    while (j < unit.size() && (bracket || brace || (unit[j] != '.' && unit[j] != '/'))) {
      if (unit[j] == '[') bracket = true;
      if (unit[j] == ']') bracket = false;
      if (unit[j] == '{') brace = true;
      if (unit[j] == '}') brace = false;
      ++j;
    }
    if (!applyTerm(unit.substr(i, j - i), sign, acc)) return std::nullopt;
    if (j >= unit.size()) break;
    sign = unit[j] == '/' ? -1 : 1;
    i = j;
  }
  auto value = divideExactly(out.value, acc.denominator);
  if (!value) return std::nullopt;
  out.value = *value;
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
