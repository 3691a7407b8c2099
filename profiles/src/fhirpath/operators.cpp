#include "fhirpath/operators.h"

#include <algorithm>
#include <cctype>

#include "fhirpath/ucum.h"

namespace medicus::fhirpath::detail {
namespace {

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yy + (m <= 2));
}

int daysIn(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

int64_t toMillis(const Temporal& t) {
  int64_t days = daysFromCivil(t.year, static_cast<unsigned>(t.month), static_cast<unsigned>(t.day));
  return ((days * 24 + t.hour) * 60 + t.minute) * 60000LL + t.second * 1000LL + t.millisecond;
}

void fromMillis(int64_t ms, Temporal& t) {
  int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  int64_t rest = ms - days * 86400000;
  civilFromDays(days, t.year, t.month, t.day);
  t.hour = static_cast<int>(rest / 3600000);
  t.minute = static_cast<int>(rest / 60000 % 60);
  t.second = static_cast<int>(rest / 1000 % 60);
  t.millisecond = static_cast<int>(rest % 1000);
}

// Seconds and milliseconds count as one precision (http://hl7.org/fhirpath/N1/#datetime-equality).
int precisionLevel(TemporalPrecision p) {
  return p == TemporalPrecision::Millisecond ? static_cast<int>(TemporalPrecision::Second) : static_cast<int>(p);
}

Temporal toUtc(const Temporal& t) {
  if (!t.has_timezone || t.tz_offset_minutes == 0 || t.precision < TemporalPrecision::Hour) return t;
  Temporal u = t;
  fromMillis(toMillis(t) - t.tz_offset_minutes * 60000LL, u);
  u.tz_offset_minutes = 0;
  return u;
}

bool isTimeValued(const std::string& unit) {
  std::string_view u = calendarToUcum(unit);
  return u == "a" || u == "mo" || u == "wk" || u == "d" || u == "h" || u == "min" || u == "s" || u == "ms";
}

std::optional<Decimal> toDecimal(const SystemValue& v) {
  if (auto i = std::get_if<int64_t>(&v)) return Decimal::fromInt(*i);
  if (auto d = std::get_if<Decimal>(&v)) return *d;
  return std::nullopt;
}

}  // namespace

// The text of a String value or of a FHIR primitive that converts to String; nullopt otherwise.
std::optional<std::string_view> stringView(const Item& item) {
  if (!item.node) {
    if (const auto* s = std::get_if<std::string>(&item.value)) return std::string_view(*s);
    return std::nullopt;
  }
  const fhir::TypeInfo* t = item.node->type();
  if (!t || !t->isPrimitive() || !item.node->hasValue()) return std::nullopt;
  std::string_view n = t->name;
  if (n == "boolean" || n == "integer" || n == "positiveInt" || n == "unsignedInt" || n == "integer64" || n == "decimal" ||
      n == "date" || n == "dateTime" || n == "instant" || n == "time")
    return std::nullopt;
  return item.node->value();
}

std::string normalizeWhitespaceLower(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::optional<int> compareTemporal(const Temporal& a0, const Temporal& b0) {
  Temporal a = a0, b = b0;
  if (a.has_timezone && b.has_timezone) {
    a = toUtc(a);
    b = toUtc(b);
  } else if (a.has_timezone != b.has_timezone && a.precision >= TemporalPrecision::Hour && b.precision >= TemporalPrecision::Hour) {
    // One with and one without a time zone: the order is unknown (http://hl7.org/fhirpath/N1/#datetime-equality).
    return std::nullopt;
  }
  int pa = precisionLevel(a.precision), pb = precisionLevel(b.precision);
  int common = std::min(pa, pb);
  auto cmp = [](int x, int y) { return x < y ? -1 : x > y ? 1 : 0; };
  if (a.kind != TemporalKind::Time && b.kind != TemporalKind::Time) {
    if (int c = cmp(a.year, b.year)) return c;
    if (common >= static_cast<int>(TemporalPrecision::Month)) {
      if (int c = cmp(a.month, b.month)) return c;
    }
    if (common >= static_cast<int>(TemporalPrecision::Day)) {
      if (int c = cmp(a.day, b.day)) return c;
    }
  }
  if (common >= static_cast<int>(TemporalPrecision::Hour)) {
    if (int c = cmp(a.hour, b.hour)) return c;
  }
  if (common >= static_cast<int>(TemporalPrecision::Minute)) {
    if (int c = cmp(a.minute, b.minute)) return c;
  }
  if (common >= static_cast<int>(TemporalPrecision::Second)) {
    if (int c = cmp(a.second * 1000 + a.millisecond, b.second * 1000 + b.millisecond)) return c;
  }
  if (pa != pb) return std::nullopt;
  return 0;
}

std::optional<int> compareQuantity(const Quantity& a, const Quantity& b) {
  if (a.unit == b.unit) return compare(a.value, b.value);
  auto yearOrMonth = [](const std::string& u) { std::string_view c = calendarToUcum(u); return c == "a" || c == "mo"; };
  if (yearOrMonth(a.unit) && yearOrMonth(b.unit) && isCalendarKeyword(a.unit) != isCalendarKeyword(b.unit)) return std::nullopt;
  // Calendar years/months are not comparable with UCUM 'a'/'mo' (http://hl7.org/fhirpath/N1/#time-valued-quantities).
  auto ca = canonicalize(a), cb = canonicalize(b);
  if (!ca || !cb || ca->dims != cb->dims) return std::nullopt;
  return compare(ca->value, cb->value);
}

std::optional<bool> itemsEqual(const Item& a, const Item& b) {
  if (a.node && b.node && !a.node->isPrimitive() && !b.node->isPrimitive()) {
    if (a.node->type() != b.node->type()) return false;
    // Deep comparison of complex values.
    auto ia = a.node->children().begin(), ib = b.node->children().begin();
    auto end = a.node->children().end();
    for (; ia != end && ib != end; ++ia, ++ib) {
      if ((*ia)->element() != (*ib)->element()) return false;
      auto r = itemsEqual(Item(*ia), Item(*ib));
      if (!r || !*r) return r;
    }
    return !(ia != end) && !(ib != end);
  }
  if (a.node && b.node && a.node->isPrimitive() && b.node->isPrimitive() && a.node->hasChildren() != b.node->hasChildren()) {
    // fall through to value comparison
  }
  // Strings (and string-like FHIR primitives: code, uri, id, ...) compare without copying.
  if (auto sa = stringView(a)) {
    if (auto sb = stringView(b)) return *sa == *sb;
  }
  auto va = toSystemValue(a), vb = toSystemValue(b);
  if (!va || !vb) return std::nullopt;
  const SystemValue& x = *va;
  const SystemValue& y = *vb;
  if (x.index() == 4 && y.index() == 4) {
    if ((std::get<Temporal>(x).kind == TemporalKind::Time) != (std::get<Temporal>(y).kind == TemporalKind::Time)) return false;
    auto c = compareTemporal(std::get<Temporal>(x), std::get<Temporal>(y));
    if (!c) return std::nullopt;
    return *c == 0;
  }
  if (x.index() == 6 && y.index() == 6) {
    return std::get<TypeSpecifier>(x).name == std::get<TypeSpecifier>(y).name &&
           std::get<TypeSpecifier>(x).namespace_name == std::get<TypeSpecifier>(y).namespace_name;
  }
  if (x.index() == 5 && y.index() == 5) {
    auto c = compareQuantity(std::get<Quantity>(x), std::get<Quantity>(y));
    if (!c) return std::nullopt;
    return *c == 0;
  }
  auto dx = toDecimal(x), dy = toDecimal(y);
  if (dx && dy) return compare(*dx, *dy) == 0;
  if (x.index() != y.index()) return false;
  if (x.index() == 0) return std::get<bool>(x) == std::get<bool>(y);
  if (x.index() == 1) return std::get<std::string>(x) == std::get<std::string>(y);
  return false;
}

bool itemsEquivalent(const Item& a, const Item& b) {
  if (a.node && b.node && !a.node->isPrimitive() && !b.node->isPrimitive()) {
    if (a.node->type() != b.node->type()) return false;
    auto ia = a.node->children().begin(), ib = b.node->children().begin();
    auto end = a.node->children().end();
    for (; ia != end && ib != end; ++ia, ++ib) {
      if ((*ia)->element() != (*ib)->element()) return false;
      if ((*ia)->element() && (*ia)->element()->name == "id") continue;
      if (!itemsEquivalent(Item(*ia), Item(*ib))) return false;
    }
    return !(ia != end) && !(ib != end);
  }
  auto va = toSystemValue(a), vb = toSystemValue(b);
  if (!va || !vb) return !va && !vb;
  const SystemValue& x = *va;
  const SystemValue& y = *vb;
  if (x.index() == 4 && y.index() == 4) {
    const auto& tx = std::get<Temporal>(x);
    const auto& ty = std::get<Temporal>(y);
    if (precisionLevel(tx.precision) != precisionLevel(ty.precision)) return false;
    auto c = compareTemporal(tx, ty);
    return c && *c == 0;
  }
  if (x.index() == 5 && y.index() == 5) {
    auto ca = canonicalize(std::get<Quantity>(x)), cb = canonicalize(std::get<Quantity>(y));
    if (!ca || !cb || ca->dims != cb->dims) return false;
    int scale = std::min(std::get<Quantity>(x).value.scale(), std::get<Quantity>(y).value.scale());
    // Compare in the units of the less precise operand at its precision.
    auto ratio_x = ca->value, ratio_y = cb->value;
    auto unit_factor = canonicalize(Quantity{Decimal::fromInt(1), std::get<Quantity>(x).value.scale() <= std::get<Quantity>(y).value.scale() ? std::get<Quantity>(x).unit : std::get<Quantity>(y).unit});
    if (!unit_factor) return false;
    auto qx = ratio_x.div(unit_factor->value), qy = ratio_y.div(unit_factor->value);
    if (!qx || !qy) return false;
    return compare(qx->rescale(scale), qy->rescale(scale)) == 0;
  }
  auto dx = toDecimal(x), dy = toDecimal(y);
  if (dx && dy) {
    int scale = std::min(dx->scale(), dy->scale());
    return compare(dx->rescale(scale), dy->rescale(scale)) == 0;
  }
  if (x.index() != y.index()) return false;
  if (x.index() == 0) return std::get<bool>(x) == std::get<bool>(y);
  if (x.index() == 1) return normalizeWhitespaceLower(std::get<std::string>(x)) == normalizeWhitespaceLower(std::get<std::string>(y));
  return false;
}

tl::expected<std::optional<int>, std::string> compareValues(const SystemValue& x, const SystemValue& y) {
  auto dx = toDecimal(x), dy = toDecimal(y);
  if (dx && dy) return std::optional<int>(compare(*dx, *dy));
  if (x.index() == 1 && y.index() == 1) {
    int c = std::get<std::string>(x).compare(std::get<std::string>(y));
    return std::optional<int>(c < 0 ? -1 : c > 0 ? 1 : 0);
  }
  if (x.index() == 4 && y.index() == 4) {
    const auto& tx = std::get<Temporal>(x);
    const auto& ty = std::get<Temporal>(y);
    if ((tx.kind == TemporalKind::Time) != (ty.kind == TemporalKind::Time))
      return tl::unexpected(std::string("cannot compare ") + std::string(systemTypeName(x)) + " with " + std::string(systemTypeName(y)));
    return compareTemporal(tx, ty);
  }
  if (x.index() == 5 && y.index() == 5) return compareQuantity(std::get<Quantity>(x), std::get<Quantity>(y));
  return tl::unexpected(std::string("cannot compare ") + std::string(systemTypeName(x)) + " with " + std::string(systemTypeName(y)));
}

tl::expected<Temporal, std::string> addDuration(const Temporal& t, const Quantity& q, int sign) {
  std::string_view unit = q.unit;
  // Date/time arithmetic takes calendar durations and the definite UCUM units from 'wk' down;
  // UCUM 'a' and 'mo' are not calendar units (http://hl7.org/fhirpath/N1/#date-time-arithmetic).
  bool calendar = isCalendarKeyword(unit);
  std::string_view u = calendarToUcum(unit);
  if (!calendar && (u == "a" || u == "mo")) return tl::unexpected(std::string("'" + q.unit + "' is not a calendar duration; use 'year'/'month'"));
  if (!isTimeValued(q.unit)) return tl::unexpected("cannot add '" + q.unit + "' to a date/time");
  Temporal r = t;
  if (u == "a" || u == "mo") {
    int64_t n = static_cast<int64_t>(q.value.truncateToInteger().mantissa()) * sign;
    int64_t months = (u == "a" ? n * 12 : n) + (r.month - 1);
    r.year += static_cast<int>(months >= 0 ? months / 12 : -((-months + 11) / 12));
    r.month = static_cast<int>(months - (months >= 0 ? months / 12 : -((-months + 11) / 12)) * 12) + 1;
    if (r.day > daysIn(r.year, r.month)) r.day = daysIn(r.year, r.month);
    return r;
  }
  int64_t unit_ms = u == "wk" ? 604800000LL : u == "d" ? 86400000LL : u == "h" ? 3600000LL : u == "min" ? 60000LL : u == "s" ? 1000LL : 1LL;
  if (t.kind != TemporalKind::Time && t.precision < TemporalPrecision::Day && unit_ms < 86400000LL * 7) {
    // Below the value's precision: convert to whole units of its precision (weeks/days to years is not done).
  }
  // Only whole units count: 7.7 days adds 7 days, 0.1 's' adds nothing (as the reference engines do).
  Decimal ms_total = *q.value.truncateToInteger().mul(Decimal::fromInt(unit_ms));
  int64_t delta = static_cast<int64_t>(ms_total.truncateToInteger().mantissa()) * sign;
  // Precision of the value bounds the effect: adding 1 second to a minute-precision value does nothing
  // beyond whole minutes.
  int64_t granularity = 1;
  switch (t.precision) {
    case TemporalPrecision::Year: granularity = 0; break;
    case TemporalPrecision::Month: granularity = 0; break;
    case TemporalPrecision::Day: granularity = 86400000LL; break;
    case TemporalPrecision::Hour: granularity = 3600000LL; break;
    case TemporalPrecision::Minute: granularity = 60000LL; break;
    case TemporalPrecision::Second: granularity = 1000LL; break;
    case TemporalPrecision::Millisecond: granularity = 1; break;
  }
  if (granularity == 0) {
    int64_t days = delta / 86400000LL;
    int64_t years = days / 365;
    r.year += static_cast<int>(years);
    return r;
  }
  delta = delta / granularity * granularity;
  if (t.kind == TemporalKind::Time) {
    int64_t ms = ((t.hour * 60LL + t.minute) * 60 + t.second) * 1000 + t.millisecond + delta;
    ms %= 86400000LL;
    if (ms < 0) ms += 86400000LL;
    r.hour = static_cast<int>(ms / 3600000);
    r.minute = static_cast<int>(ms / 60000 % 60);
    r.second = static_cast<int>(ms / 1000 % 60);
    r.millisecond = static_cast<int>(ms % 1000);
    return r;
  }
  fromMillis(toMillis(t) + delta, r);
  return r;
}

tl::expected<std::optional<SystemValue>, std::string> arithmetic(BinaryOp op, const SystemValue& x, const SystemValue& y) {
  using R = std::optional<SystemValue>;
  auto mismatch = [&]() {
    return tl::unexpected(std::string("operator cannot be applied to ") + std::string(systemTypeName(x)) + " and " +
                          std::string(systemTypeName(y)));
  };
  if (op == BinaryOp::Concat) {
    if (x.index() != 1 || y.index() != 1) return mismatch();
    return R(SystemValue{std::get<std::string>(x) + std::get<std::string>(y)});
  }
  if (x.index() == 1 && y.index() == 1 && op == BinaryOp::Plus) return R(SystemValue{std::get<std::string>(x) + std::get<std::string>(y)});
  if (x.index() == 2 && y.index() == 2 && op != BinaryOp::Divide) {
    int64_t a = std::get<int64_t>(x), b = std::get<int64_t>(y), r = 0;
    switch (op) {
      case BinaryOp::Plus: r = a + b; break;
      case BinaryOp::Minus: r = a - b; break;
      case BinaryOp::Times: r = a * b; break;
      case BinaryOp::Div: if (b == 0) return R(); r = a / b; break;
      case BinaryOp::Mod: if (b == 0) return R(); r = a % b; break;
      default: return mismatch();
    }
    if (r > 2147483647LL || r < -2147483648LL) return R();
    return R(SystemValue{r});
  }
  auto dx = toDecimal(x), dy = toDecimal(y);
  if (dx && dy) {
    std::optional<Decimal> r;
    switch (op) {
      case BinaryOp::Plus: r = dx->add(*dy); break;
      case BinaryOp::Minus: r = dx->sub(*dy); break;
      case BinaryOp::Times: r = dx->mul(*dy); break;
      case BinaryOp::Divide: r = dx->div(*dy); break;
      case BinaryOp::Div: {
        auto q = dx->div(*dy);
        if (!q) return R();
        return R(SystemValue{static_cast<int64_t>(q->truncateToInteger().mantissa())});
      }
      case BinaryOp::Mod: r = dx->mod(*dy); break;
      default: return mismatch();
    }
    if (!r) return R();
    return R(SystemValue{*r});
  }
  if (x.index() == 4 && y.index() == 5 && (op == BinaryOp::Plus || op == BinaryOp::Minus)) {
    auto r = addDuration(std::get<Temporal>(x), std::get<Quantity>(y), op == BinaryOp::Plus ? 1 : -1);
    if (!r) return tl::unexpected(r.error());
    return R(SystemValue{*r});
  }
  if (x.index() == 5 && (y.index() == 5 || dy)) {
    const Quantity& a = std::get<Quantity>(x);
    if (dy) {  // Quantity * or / number
      if (op != BinaryOp::Times && op != BinaryOp::Divide) return mismatch();
      auto v = op == BinaryOp::Times ? a.value.mul(*dy) : a.value.div(*dy);
      if (!v) return R();
      return R(SystemValue{Quantity{*v, a.unit}});
    }
    const Quantity& b = std::get<Quantity>(y);
    if (op == BinaryOp::Plus || op == BinaryOp::Minus) {
      if (a.unit == b.unit) {
        auto v = op == BinaryOp::Plus ? a.value.add(b.value) : a.value.sub(b.value);
        if (!v) return R();
        return R(SystemValue{Quantity{*v, a.unit}});
      }
      auto ca = canonicalize(a), cb = canonicalize(b), unit = canonicalize(Quantity{Decimal::fromInt(1), a.unit});
      if (!ca || !cb || !unit || ca->dims != cb->dims) return R();
      auto sum = op == BinaryOp::Plus ? ca->value.add(cb->value) : ca->value.sub(cb->value);
      if (!sum) return R();
      auto v = sum->div(unit->value);
      if (!v) return R();
      return R(SystemValue{Quantity{v->normalized(), a.unit}});
    }
    if (op == BinaryOp::Times || op == BinaryOp::Divide) {
      auto ca = canonicalize(a), cb = canonicalize(b);
      if (!ca || !cb) return R();
      auto v = op == BinaryOp::Times ? ca->value.mul(cb->value) : ca->value.div(cb->value);
      if (!v) return R();
      auto dims = ca->dims;
      for (const auto& [k, e] : cb->dims) {
        int& d = dims[k];
        d += op == BinaryOp::Times ? e : -e;
        if (d == 0) dims.erase(k);
      }
      return R(SystemValue{Quantity{v->normalized(), unitOf(dims)}});
    }
    return mismatch();
  }
  return mismatch();
}

}  // namespace medicus::fhirpath::detail
