#pragma once
// FHIRPath values (http://hl7.org/fhirpath/N1/#literals): a collection of items, each either a node of a
// FHIR element tree or a system value (Boolean, String, Integer, Decimal, Date, DateTime, Time, Quantity).
// FHIR primitive nodes convert to system values on demand (toSystemValue).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "medicus/fhir/node.h"

namespace medicus::fhirpath {

// Exact decimal: mantissa * 10^-scale. Never shows binary floating-point error; division keeps
// kDivisionScale fractional digits (the spec asks for at least 8).
class Decimal {
 public:
  static constexpr int kMaxScale = 28;
  static constexpr int kDivisionScale = 8;

  Decimal() = default;
  static Decimal fromInt(int64_t v) { Decimal d; d.mantissa_ = v; return d; }
  // Parses "-12.50" (FHIRPath/FHIR decimal syntax, optional exponent); nullopt when malformed or out of range.
  static std::optional<Decimal> parse(std::string_view text);
  static std::optional<Decimal> fromDouble(double v);

  __int128 mantissa() const { return mantissa_; }
  int scale() const { return scale_; }
  std::string toString() const;  // keeps trailing zeros as in the source: "1.50"
  double toDouble() const;
  bool isInteger() const;
  bool isNegative() const { return mantissa_ < 0; }

  friend int compare(const Decimal& a, const Decimal& b);
  friend bool operator==(const Decimal& a, const Decimal& b) { return compare(a, b) == 0; }
  std::optional<Decimal> add(const Decimal& o) const;
  std::optional<Decimal> sub(const Decimal& o) const;
  std::optional<Decimal> mul(const Decimal& o) const;
  std::optional<Decimal> div(const Decimal& o) const;  // nullopt on division by zero
  std::optional<Decimal> mod(const Decimal& o) const;
  Decimal negate() const { Decimal d = *this; d.mantissa_ = -d.mantissa_; return d; }
  Decimal rescale(int scale) const;  // rounds half away from zero when shortening
  Decimal truncateToInteger() const;
  Decimal floor() const;
  Decimal ceiling() const;
  Decimal normalized() const;  // trailing zeros removed

 private:
  __int128 mantissa_ = 0;
  int scale_ = 0;
};

enum class TemporalKind : uint8_t { Date, DateTime, Time };
enum class TemporalPrecision : uint8_t { Year, Month, Day, Hour, Minute, Second, Millisecond };

// Date, DateTime or Time with partial precision and optional time-zone offset.
struct Temporal {
  TemporalKind kind = TemporalKind::DateTime;
  TemporalPrecision precision = TemporalPrecision::Year;
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, millisecond = 0;
  bool has_timezone = false;
  int tz_offset_minutes = 0;

  // FHIRPath literal text without '@' ("2015-02-04T14:34:28.123Z", "T14:34") or FHIR primitive text.
  static std::optional<Temporal> parse(std::string_view text, TemporalKind kind);
  std::string toString() const;  // FHIR form without '@' ("2015-02", "14:34:28.123")
};

// Quantity with a UCUM unit or a calendar duration keyword ("year", "month", ... "millisecond").
struct Quantity {
  Decimal value;
  std::string unit = "1";
};

// What type() returns (http://hl7.org/fhirpath/N1/#reflection): SimpleTypeInfo with namespace and name.
struct TypeSpecifier {
  std::string namespace_name;  // "System" or "FHIR"
  std::string name;            // "Integer", "Patient"
};

using SystemValue = std::variant<bool, std::string, int64_t, Decimal, Temporal, Quantity, TypeSpecifier>;

// One item of a collection: a FHIR node, or a system value.
struct Item {
  const fhir::Node* node = nullptr;
  SystemValue value;

  Item() = default;
  explicit Item(const fhir::Node* n) : node(n) {}
  explicit Item(SystemValue v) : value(std::move(v)) {}
  // Node items leave `value` at its default, so copies skip it (collections of nodes are the common case).
  Item(const Item& o) : node(o.node) {
    if (!node) value = o.value;
  }
  Item(Item&& o) noexcept : node(o.node) {
    if (!node) value = std::move(o.value);
  }
  Item& operator=(const Item& o) {
    node = o.node;
    if (!node) value = o.value;
    else if (value.index() != 0) value = SystemValue();
    return *this;
  }
  Item& operator=(Item&& o) noexcept {
    node = o.node;
    if (!node) value = std::move(o.value);
    else if (value.index() != 0) value = SystemValue();
    return *this;
  }
  bool isNode() const { return node != nullptr; }
};

using Collection = std::vector<Item>;

// The system value of an item: FHIR primitives convert by type (boolean, integer, decimal, date, ...,
// other primitives to String); Quantity nodes to Quantity. nullopt for other complex nodes and
// primitives without value or with malformed text.
std::optional<SystemValue> toSystemValue(const Item& item);
// System type name of a value: "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity".
std::string_view systemTypeName(const SystemValue& value);
// Type name as the conformance suite writes it: FHIR type name for nodes ("code", "HumanName"),
// lower-case system names for values ("boolean", "string", "integer", "decimal", "date", "dateTime",
// "time", "Quantity").
std::string outputTypeName(const Item& item);
// Text form of a system value (what toString() returns); quantities as "5.4 'mg'".
std::string toText(const SystemValue& value);

}  // namespace medicus::fhirpath
