#pragma once
// FHIRPath operator semantics on single values (http://hl7.org/fhirpath/N1/#operations): equality,
// equivalence, ordering and arithmetic, including partial-precision date/time and UCUM quantities.
#include <optional>
#include <string>

#include <tl/expected.hpp>

#include "fhirpath/ast.h"
#include "medicus/fhirpath/value.h"

namespace medicus::fhirpath::detail {

// The text of a String value or of a FHIR primitive that converts to String (code, uri, id, ...);
// nullopt otherwise. What equality and the string functions see, without a copy.
std::optional<std::string_view> stringView(const Item& item);
// Equality of two items: nullopt when the result is empty (uncertain date/time precision).
std::optional<bool> itemsEqual(const Item& a, const Item& b);
bool itemsEquivalent(const Item& a, const Item& b);
// Ordering: -1/0/1; nullopt for an uncertain result (partial precision); error text on type mismatch.
tl::expected<std::optional<int>, std::string> compareValues(const SystemValue& a, const SystemValue& b);
// Arithmetic (+ - * / div mod &) on two system values; nullopt result means empty.
tl::expected<std::optional<SystemValue>, std::string> arithmetic(BinaryOp op, const SystemValue& a, const SystemValue& b);
// Temporal plus/minus a time-valued quantity.
tl::expected<Temporal, std::string> addDuration(const Temporal& t, const Quantity& q, int sign);
// Temporal comparison (nullopt when precisions differ and the common part is equal).
std::optional<int> compareTemporal(const Temporal& a, const Temporal& b);
std::optional<int> compareQuantity(const Quantity& a, const Quantity& b);
std::string normalizeWhitespaceLower(std::string_view s);

}  // namespace medicus::fhirpath::detail
