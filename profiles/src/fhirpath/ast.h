#pragma once
// The FHIRPath syntax tree (http://hl7.org/fhirpath/N1/grammar.html) and the parser that builds it.
// compile() resolves functions and type names on this tree; the evaluator walks it.
#include <atomic>
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/fhirpath/fhirpath.h"

namespace medicus::fhirpath::detail {

enum class NodeKind : uint8_t {
  Literal,      // value (or empty collection when has_value is false: `{}`)
  Identifier,   // a name at the start of a path: element of $this, or a type name
  Member,       // children[0].name
  Function,     // [children[0].]name(args...) ; children[0] null when called on $this
  Indexer,      // children[0][children[1]]
  Binary,       // children[0] op children[1]
  Unary,        // op children[0]
  TypeOperator, // children[0] is/as type_name
  Variable,     // $this, $index, $total
  EnvVariable,  // %name
};

enum class BinaryOp : uint8_t {
  Implies, Or, Xor, And, In, Contains, Equal, Equivalent, NotEqual, NotEquivalent,
  Less, Greater, LessOrEqual, GreaterOrEqual, Union, Plus, Minus, Concat, Times, Divide, Div, Mod,
};

// Resolved function identity (set by compile()).
enum class FunctionId : uint16_t {
  Unknown,
  // existence
  Empty, Exists, All, AllTrue, AnyTrue, AllFalse, AnyFalse, SubsetOf, SupersetOf, Count, Distinct, IsDistinct,
  // filtering and projection
  Where, Select, Repeat, OfType,
  // subsetting
  Single, First, Last, Tail, Skip, Take, Intersect, Exclude,
  // combining
  Union, Combine,
  // conversion
  Iif, ToBoolean, ConvertsToBoolean, ToInteger, ConvertsToInteger, ToDecimal, ConvertsToDecimal, ToString,
  ConvertsToString, ToDate, ConvertsToDate, ToDateTime, ConvertsToDateTime, ToTime, ConvertsToTime, ToQuantity,
  ConvertsToQuantity,
  // string
  IndexOf, Substring, StartsWith, EndsWith, ContainsString, Upper, Lower, Replace, Matches, MatchesFull, ReplaceMatches,
  Length, ToChars, Trim, Split, Join, Encode, Decode, EscapeFn, UnescapeFn,
  // math
  Abs, Ceiling, Exp, Floor, Ln, Log, Power, Round, Sqrt, Truncate,
  // tree navigation
  Children, Descendants,
  // utility
  Trace, Now, TimeOfDay, Today, DefineVariable,
  // aggregate, types, boolean
  Aggregate, Is, As, Not, Type,
  // FHIR additions
  Extension, HasValue, GetValue, Resolve, HtmlChecks, ConformsTo, MemberOf, Subsumes, SubsumedBy, ElementDefinition,
  Slice, CheckModifiers,
  // FHIRPath 2.0 additions used by the suite
  LowBoundary, HighBoundary, Precision, Comparable, Sort,
};

// A resolved type specifier: a FHIR type (fhir_type set) or a System type (system_name set).
struct TypeRef {
  const fhir::TypeInfo* fhir_type = nullptr;
  std::string system_name;  // "Boolean", "String", ... for System types
  std::string written;      // as written, for messages
};

class PosixRegex;

// Field order: what every evaluation step reads (kind, operator/function, flags, children, the
// element cache, the name) comes first, so that a node costs one or two cache lines; literal values,
// type specifiers and regexes follow. Aligned to a cache line for the same reason: evaluating an
// invariant walks many small nodes.
struct alignas(64) AstNode {
  NodeKind kind = NodeKind::Literal;
  BinaryOp op = BinaryOp::Plus;
  char unary_op = '-';
  bool has_value = false;
  FunctionId function = FunctionId::Unknown;
  // Set by compile(): the value does not depend on the focus ($this, $index, $total, element names),
  // only on %variables and literals; and it sits inside a criteria argument (where(), all(), ...), so
  // it would be evaluated again for every item. The evaluator computes such a node once per evaluation
  // (dom-3 asks for `%resource.descendants()...` once per contained resource).
  bool focus_independent = false;
  bool cache_result = false;
  // Set by compile(): this node is a path of element names only (`id`, `code.coding`, `children()`),
  // so count()/exists()/empty() on it count children without building collections; and for
  // Identifier/Member, whether the name is `value` (a primitive's value, not a child element).
  bool navigation_chain = false;
  bool names_value = false;
  uint32_t position = 0;
  std::vector<std::unique_ptr<AstNode>> children;  // operands / target + arguments
  // Identifier/Member: the element this name resolved to last time (its owner is the type it was
  // found on), so navigation over nodes of one type skips the name lookup. Immutable ElementInfos and
  // an atomic pointer keep concurrent evaluations safe.
  mutable std::atomic<const fhir::ElementInfo*> element_cache{nullptr};
  std::string name;  // identifier, member, function, variable names
  SystemValue value;  // literals
  TypeRef type;  // is/as/ofType target
  // matches()/replaceMatches() with a literal pattern: compiled once by compile().
  std::shared_ptr<const std::regex> regex;
  std::shared_ptr<const PosixRegex> posix_regex;  // matches()/matchesFull() in the common subset
};

// FHIRPath regexes run in single-line mode ('.' also matches a line break): rewrites for ECMAScript.
std::string singleLineRegex(const std::string& pattern);

// A literal matches()/matchesFull() pattern that uses only what ECMAScript and POSIX extended regular
// expressions read alike (literals, '.', classes (escapes there: \d \s \w), groups, '|', greedy quantifiers,
// anchors, escaped punctuation; \d \s \w and \D \S \W outside brackets, rewritten), compiled with
// regcomp(): glibc's matcher, which does not backtrack (linear in the input), answers in a fraction of
// std::regex's time (name.matches('[A-Z]([A-Za-z0-9_]){0,254}') runs on every definition's name).
// '.' matches a line break there too (no REG_NEWLINE), as single-line mode asks.
class PosixRegex {
 public:
  // nullptr when the pattern is outside that subset or does not compile.
  static std::shared_ptr<const PosixRegex> compile(const std::string& pattern, bool full_match);
  ~PosixRegex();
  PosixRegex(const PosixRegex&) = delete;
  PosixRegex& operator=(const PosixRegex&) = delete;
  bool search(std::string_view text) const;

 private:
  PosixRegex() = default;
  struct State;
  std::unique_ptr<State> state_;
};

// Would a backtracking matcher (std::regex) risk exponential time on this pattern? A repeated group
// holding a quantifier or an alternative ((a|aa)+, (a+)+), or a back-reference.
bool regexMayBacktrackExponentially(const std::string& pattern);

using AstPtr = std::unique_ptr<AstNode>;

// Parses the whole expression; a syntax Diagnostic with position otherwise.
tl::expected<AstPtr, Diagnostic> parseExpression(std::string_view text, uint32_t max_depth);

// Fills line/column from position.
Diagnostic makeDiagnostic(ErrorKind kind, std::string message, std::string_view text, uint32_t position);

}  // namespace medicus::fhirpath::detail
