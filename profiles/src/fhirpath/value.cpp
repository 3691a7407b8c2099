// Decimal, Temporal and the conversion of FHIR primitives to system values.
#include "medicus/fhirpath/value.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace medicus::fhirpath {
namespace {

using i128 = __int128;

constexpr i128 pow10(int n) {
  i128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

bool mulOverflow(i128 a, i128 b, i128& out) { return __builtin_mul_overflow(a, b, &out); }

// Scales mantissa up by 10^n; false on overflow.
bool scaleUp(i128 m, int n, i128& out) {
  if (n > 38) return m == 0 ? (out = 0, true) : false;
  return !mulOverflow(m, pow10(n), out);
}

// Divides rounding half away from zero.
i128 divRound(i128 a, i128 b) {
  i128 q = a / b, r = a % b;
  i128 twice = r < 0 ? -r * 2 : r * 2;
  i128 absb = b < 0 ? -b : b;
  if (twice >= absb) q += ((a < 0) != (b < 0)) ? -1 : 1;
  return q;
}

bool align(const Decimal& a, const Decimal& b, i128& am, i128& bm, int& scale) {
  scale = std::max(a.scale(), b.scale());
  return scaleUp(a.mantissa(), scale - a.scale(), am) && scaleUp(b.mantissa(), scale - b.scale(), bm);
}

std::string i128ToString(i128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  std::string s;
  while (v != 0) {
    int digit = static_cast<int>(v % 10);
    s.push_back(static_cast<char>('0' + (digit < 0 ? -digit : digit)));
    v /= 10;
  }
  if (neg) s.push_back('-');
  return {s.rbegin(), s.rend()};
}

}  // namespace

std::optional<Decimal> Decimal::parse(std::string_view text) {
  size_t i = 0;
  bool neg = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) neg = text[i++] == '-';
  i128 m = 0;
  int scale = 0, digits = 0;
  bool any = false, dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      any = true;
      if (m == 0 && c == '0' && !dot) continue;
      if (++digits > 36) {
        if (!dot) return std::nullopt;
        continue;  // extra fractional digits beyond precision are dropped
      }
      m = m * 10 + (c - '0');
      if (dot) ++scale;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!any) return std::nullopt;
  int exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) eneg = text[i++] == '-';
    if (i >= text.size()) return std::nullopt;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      exponent = exponent * 10 + (text[i] - '0');
      if (exponent > 100) return std::nullopt;
    }
    if (eneg) exponent = -exponent;
  }
  if (i != text.size()) return std::nullopt;
  scale -= exponent;
  if (scale < 0) {
    if (!scaleUp(m, -scale, m)) return std::nullopt;
    scale = 0;
  }
  Decimal d;
  d.mantissa_ = neg ? -m : m;
  d.scale_ = scale;
  if (scale > kMaxScale) d = d.rescale(kMaxScale);
  return d;
}

std::optional<Decimal> Decimal::fromDouble(double v) {
  if (!std::isfinite(v)) return std::nullopt;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  auto d = parse(buf);
  if (d) return d->normalized();
  return d;
}

std::string Decimal::toString() const {
  std::string digits = i128ToString(mantissa_ < 0 ? -mantissa_ : mantissa_);
  if (scale_ > 0) {
    if (static_cast<int>(digits.size()) <= scale_) digits.insert(0, static_cast<size_t>(scale_ - digits.size() + 1), '0');
    digits.insert(digits.size() - static_cast<size_t>(scale_), ".");
  }
  if (mantissa_ < 0) digits.insert(0, "-");
  return digits;
}

double Decimal::toDouble() const { return std::strtod(toString().c_str(), nullptr); }

bool Decimal::isInteger() const { return scale_ == 0 || mantissa_ % pow10(scale_) == 0; }

int compare(const Decimal& a, const Decimal& b) {
  i128 am, bm;
  int scale;
  if (!align(a, b, am, bm, scale)) {
    double x = a.toDouble(), y = b.toDouble();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return am < bm ? -1 : am > bm ? 1 : 0;
}

std::optional<Decimal> Decimal::add(const Decimal& o) const {
  i128 am, bm, r;
  int scale;
  if (!align(*this, o, am, bm, scale) || __builtin_add_overflow(am, bm, &r)) return std::nullopt;
  Decimal d;
  d.mantissa_ = r;
  d.scale_ = scale;
  return d;
}

std::optional<Decimal> Decimal::sub(const Decimal& o) const { return add(o.negate()); }

std::optional<Decimal> Decimal::mul(const Decimal& o) const {
  Decimal a = *this, b = o;
  i128 r;
  while (mulOverflow(a.mantissa_, b.mantissa_, r)) {
    // Drop precision from the operand with the larger scale until it fits.
    Decimal& victim = a.scale_ >= b.scale_ ? a : b;
    if (victim.scale_ == 0) return std::nullopt;
    victim = victim.rescale(victim.scale_ - 1);
  }
  Decimal d;
  d.mantissa_ = r;
  d.scale_ = a.scale_ + b.scale_;
  if (d.scale_ > kMaxScale) d = d.rescale(kMaxScale);
  return d;
}

std::optional<Decimal> Decimal::div(const Decimal& o) const {
  if (o.mantissa_ == 0) return std::nullopt;
  i128 am, bm;
  int scale;
  if (!align(*this, o, am, bm, scale)) return std::nullopt;
  // am/bm is the exact quotient; keep kDivisionScale fractional digits.
  int target = kDivisionScale;
  i128 num;
  while (!scaleUp(am, target, num)) {
    if (--target < 0) return std::nullopt;
  }
  Decimal d;
  d.mantissa_ = divRound(num, bm);
  d.scale_ = target;
  return d.normalized();
}

std::optional<Decimal> Decimal::mod(const Decimal& o) const {
  if (o.mantissa_ == 0) return std::nullopt;
  i128 am, bm;
  int scale;
  if (!align(*this, o, am, bm, scale)) return std::nullopt;
  Decimal d;
  d.mantissa_ = am % bm;
  d.scale_ = scale;
  return d;
}

Decimal Decimal::rescale(int scale) const {
  Decimal d;
  if (scale >= scale_) {
    i128 m;
    if (!scaleUp(mantissa_, scale - scale_, m)) return *this;
    d.mantissa_ = m;
  } else {
    int drop = scale_ - scale;
    d.mantissa_ = drop > 38 ? 0 : divRound(mantissa_, pow10(drop));
  }
  d.scale_ = scale;
  return d;
}

Decimal Decimal::truncateToInteger() const {
  Decimal d;
  d.mantissa_ = scale_ > 38 ? 0 : mantissa_ / pow10(scale_);
  return d;
}

Decimal Decimal::floor() const {
  Decimal t = truncateToInteger();
  if (!isInteger() && mantissa_ < 0) t.mantissa_ -= 1;
  return t;
}

Decimal Decimal::ceiling() const {
  Decimal t = truncateToInteger();
  if (!isInteger() && mantissa_ > 0) t.mantissa_ += 1;
  return t;
}

Decimal Decimal::normalized() const {
  Decimal d = *this;
  while (d.scale_ > 0 && d.mantissa_ % 10 == 0) {
    d.mantissa_ /= 10;
    --d.scale_;
  }
  return d;
}

// --- Temporal -------------------------------------------------------------------------------------

namespace {

bool digitsAt(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

int daysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[(m - 1) % 12];
}

// Parses hh[:mm[:ss[.fff]]] at pos into t; returns position after it or npos.
size_t parseTimePart(std::string_view s, size_t pos, Temporal& t) {
  if (!digitsAt(s, pos, 2, t.hour) || t.hour > 23) return std::string_view::npos;
  t.precision = TemporalPrecision::Hour;
  pos += 2;
  if (pos < s.size() && s[pos] == ':') {
    if (!digitsAt(s, pos + 1, 2, t.minute) || t.minute > 59) return std::string_view::npos;
    t.precision = TemporalPrecision::Minute;
    pos += 3;
    if (pos < s.size() && s[pos] == ':') {
      if (!digitsAt(s, pos + 1, 2, t.second) || t.second > 59) return std::string_view::npos;
      t.precision = TemporalPrecision::Second;
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t start = pos;
        int ms = 0, n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (n < 3) ms = ms * 10 + (s[pos] - '0'), ++n;
          ++pos;
        }
        if (pos == start) return std::string_view::npos;
        while (n < 3) ms *= 10, ++n;
        t.millisecond = ms;
        t.precision = TemporalPrecision::Millisecond;
      }
    }
  }
  return pos;
}

}  // namespace

std::optional<Temporal> Temporal::parse(std::string_view s, TemporalKind kind) {
  Temporal t;
  t.kind = kind;
  size_t pos = 0;
  if (kind == TemporalKind::Time) {
    if (!s.empty() && s[0] == 'T') pos = 1;
    pos = parseTimePart(s, pos, t);
    if (pos != s.size()) return std::nullopt;
    return t;
  }
  if (!digitsAt(s, 0, 4, t.year)) return std::nullopt;
  pos = 4;
  t.precision = TemporalPrecision::Year;
  if (pos < s.size() && s[pos] == '-') {
    if (!digitsAt(s, pos + 1, 2, t.month) || t.month < 1 || t.month > 12) return std::nullopt;
    t.precision = TemporalPrecision::Month;
    pos += 3;
    if (pos < s.size() && s[pos] == '-') {
      if (!digitsAt(s, pos + 1, 2, t.day) || t.day < 1 || t.day > daysInMonth(t.year, t.month)) return std::nullopt;
      t.precision = TemporalPrecision::Day;
      pos += 3;
    }
  }
  if (kind == TemporalKind::Date) {
    if (pos != s.size()) return std::nullopt;
    return t;
  }
  if (pos < s.size() && s[pos] == 'T') {
    ++pos;
    if (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (t.precision != TemporalPrecision::Day) return std::nullopt;
      pos = parseTimePart(s, pos, t);
      if (pos == std::string_view::npos) return std::nullopt;
    }
  }
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      t.has_timezone = true;
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int h, m;
      if (!digitsAt(s, pos + 1, 2, h) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digitsAt(s, pos + 4, 2, m) ||
          h > 14 || m > 59)
        return std::nullopt;
      t.has_timezone = true;
      t.tz_offset_minutes = (s[pos] == '-' ? -1 : 1) * (h * 60 + m);
      pos += 6;
    }
  }
  if (pos != s.size()) return std::nullopt;
  return t;
}

std::string Temporal::toString() const {
  char buf[64];
  std::string out;
  if (kind != TemporalKind::Time) {
    std::snprintf(buf, sizeof buf, "%04d", year);
    out = buf;
    if (precision >= TemporalPrecision::Month) std::snprintf(buf, sizeof buf, "-%02d", month), out += buf;
    if (precision >= TemporalPrecision::Day) std::snprintf(buf, sizeof buf, "-%02d", day), out += buf;
    if (kind == TemporalKind::Date || precision < TemporalPrecision::Hour) {
      return out;
    }
    out += 'T';
  }
  std::snprintf(buf, sizeof buf, "%02d", hour), out += buf;
  if (precision >= TemporalPrecision::Minute) std::snprintf(buf, sizeof buf, ":%02d", minute), out += buf;
  if (precision >= TemporalPrecision::Second) std::snprintf(buf, sizeof buf, ":%02d", second), out += buf;
  if (precision >= TemporalPrecision::Millisecond) std::snprintf(buf, sizeof buf, ".%03d", millisecond), out += buf;
  if (kind == TemporalKind::DateTime && has_timezone) {
    if (tz_offset_minutes == 0) {
      out += 'Z';
    } else {
      int m = tz_offset_minutes < 0 ? -tz_offset_minutes : tz_offset_minutes;
      std::snprintf(buf, sizeof buf, "%c%02d:%02d", tz_offset_minutes < 0 ? '-' : '+', m / 60, m % 60);
      out += buf;
    }
  }
  return out;
}

// --- System values of FHIR nodes -----------------------------------------------------------------

std::optional<SystemValue> toSystemValue(const Item& item) {
  if (!item.node) return item.value;
  const fhir::Node& n = *item.node;
  const fhir::TypeInfo* type = n.type();
  if (!type) return std::nullopt;
  if (type->kind == fhir::TypeKind::Primitive) {
    if (!n.hasValue()) return std::nullopt;
    std::string_view v = n.value();
    std::string_view name = type->name;
    if (name == "boolean") {
      if (v == "true") return SystemValue{true};
      if (v == "false") return SystemValue{false};
      return std::nullopt;
    }
    if (name == "integer" || name == "positiveInt" || name == "unsignedInt" || name == "integer64") {
      char* end = nullptr;
      std::string text(v);
      long long x = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0') return std::nullopt;
      return SystemValue{static_cast<int64_t>(x)};
    }
    if (name == "decimal") {
      auto d = Decimal::parse(v);
      if (!d) return std::nullopt;
      return SystemValue{*d};
    }
    if (name == "date") {
      auto t = Temporal::parse(v, TemporalKind::Date);
      if (!t) return std::nullopt;
      return SystemValue{*t};
    }
    if (name == "dateTime" || name == "instant") {
      auto t = Temporal::parse(v, TemporalKind::DateTime);
      if (!t) return std::nullopt;
      return SystemValue{*t};
    }
    if (name == "time") {
      auto t = Temporal::parse(v, TemporalKind::Time);
      if (!t) return std::nullopt;
      return SystemValue{*t};
    }
    return SystemValue{std::string(v)};
  }
  if (type->isA("Quantity")) {
    const fhir::Node* value = n.child("value");
    if (!value || !value->hasValue()) return std::nullopt;
    auto d = Decimal::parse(value->value());
    if (!d) return std::nullopt;
    Quantity q;
    q.value = *d;
    const fhir::Node* code = n.child("code");
    const fhir::Node* unit = n.child("unit");
    if (code && code->hasValue()) q.unit = std::string(code->value());
    else if (unit && unit->hasValue()) q.unit = std::string(unit->value());
    return SystemValue{std::move(q)};
  }
  return std::nullopt;
}

std::string_view systemTypeName(const SystemValue& value) {
  switch (value.index()) {
    case 0: return "Boolean";
    case 1: return "String";
    case 2: return "Integer";
    case 3: return "Decimal";
    case 4:
      switch (std::get<Temporal>(value).kind) {
        case TemporalKind::Date: return "Date";
        case TemporalKind::DateTime: return "DateTime";
        case TemporalKind::Time: return "Time";
      }
      return "DateTime";
    case 5: return "Quantity";
    default: return "TypeInfo";
  }
}

std::string outputTypeName(const Item& item) {
  if (item.node) {
    // Resource.id is a System.String in the definitions; FHIR calls its type "id".
    const fhir::ElementInfo* e = item.node->element();
    if (e && e->name == "id" && item.node->parent() && item.node->parent()->isResource()) return "id";
    return std::string(item.node->type()->name);
  }
  switch (item.value.index()) {
    case 0: return "boolean";
    case 1: return "string";
    case 2: return "integer";
    case 3: return "decimal";
    case 4:
      switch (std::get<Temporal>(item.value).kind) {
        case TemporalKind::Date: return "date";
        case TemporalKind::DateTime: return "dateTime";
        case TemporalKind::Time: return "time";
      }
      return "dateTime";
    case 5: return "Quantity";
    default: return "TypeInfo";
  }
}

std::string toText(const SystemValue& value) {
  switch (value.index()) {
    case 0: return std::get<bool>(value) ? "true" : "false";
    case 1: return std::get<std::string>(value);
    case 2: return std::to_string(std::get<int64_t>(value));
    case 3: return std::get<Decimal>(value).toString();
    case 4: return std::get<Temporal>(value).toString();
    case 5: {
      const auto& q = std::get<Quantity>(value);
      // Calendar durations print as keywords ("1 week"), UCUM units quoted ("1 'wk'").
      static const char* const kCalendar[] = {"year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours",
                                             "minute", "minutes", "second", "seconds", "millisecond", "milliseconds"};
      for (const char* c : kCalendar)
        if (q.unit == c) return q.value.toString() + " " + q.unit;
      return q.value.toString() + " '" + q.unit + "'";
    }
    default: {
      const auto& t = std::get<TypeSpecifier>(value);
      return t.namespace_name + "." + t.name;
    }
  }
}

}  // namespace medicus::fhirpath
