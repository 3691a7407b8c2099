// compile(): parse, resolve function names and type specifiers, check arity, and check element names
// against the FHIR type model when the context type is known (http://hl7.org/fhirpath/N1/#type-safety-and-strict-evaluation).
#include <cctype>
#include <algorithm>
#include <vector>

#include "fhirpath/ast.h"
#include "fhirpath/evaluator.h"
#include "fhirpath/operators.h"

namespace medicus::fhirpath {

using detail::AstNode;
using detail::FunctionId;
using detail::NodeKind;

std::string Diagnostic::toString() const {
  const char* kind_name = kind == ErrorKind::Syntax ? "syntax error" : kind == ErrorKind::Semantic ? "semantic error" : "evaluation error";
  if (kind == ErrorKind::Execution && position == 0) return std::string(kind_name) + ": " + message;
  return std::string(kind_name) + " at " + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

struct FunctionSpec {
  std::string_view name;
  FunctionId id;
  uint8_t min_args;
  uint8_t max_args;
};

constexpr FunctionSpec kFunctions[] = {
    {"empty", FunctionId::Empty, 0, 0}, {"exists", FunctionId::Exists, 0, 1}, {"all", FunctionId::All, 1, 1},
    {"allTrue", FunctionId::AllTrue, 0, 0}, {"anyTrue", FunctionId::AnyTrue, 0, 0}, {"allFalse", FunctionId::AllFalse, 0, 0},
    {"anyFalse", FunctionId::AnyFalse, 0, 0}, {"subsetOf", FunctionId::SubsetOf, 1, 1}, {"supersetOf", FunctionId::SupersetOf, 1, 1},
    {"count", FunctionId::Count, 0, 0}, {"distinct", FunctionId::Distinct, 0, 0}, {"isDistinct", FunctionId::IsDistinct, 0, 0},
    {"where", FunctionId::Where, 1, 1}, {"select", FunctionId::Select, 1, 1}, {"repeat", FunctionId::Repeat, 1, 1},
    {"ofType", FunctionId::OfType, 1, 1}, {"single", FunctionId::Single, 0, 0}, {"first", FunctionId::First, 0, 0},
    {"last", FunctionId::Last, 0, 0}, {"tail", FunctionId::Tail, 0, 0}, {"skip", FunctionId::Skip, 1, 1},
    {"take", FunctionId::Take, 1, 1}, {"intersect", FunctionId::Intersect, 1, 1}, {"exclude", FunctionId::Exclude, 1, 1},
    {"union", FunctionId::Union, 1, 1}, {"combine", FunctionId::Combine, 1, 1}, {"iif", FunctionId::Iif, 2, 3},
    {"toBoolean", FunctionId::ToBoolean, 0, 0}, {"convertsToBoolean", FunctionId::ConvertsToBoolean, 0, 0},
    {"toInteger", FunctionId::ToInteger, 0, 0}, {"convertsToInteger", FunctionId::ConvertsToInteger, 0, 0},
    {"toDecimal", FunctionId::ToDecimal, 0, 0}, {"convertsToDecimal", FunctionId::ConvertsToDecimal, 0, 0},
    {"toString", FunctionId::ToString, 0, 0}, {"convertsToString", FunctionId::ConvertsToString, 0, 0},
    {"toDate", FunctionId::ToDate, 0, 0}, {"convertsToDate", FunctionId::ConvertsToDate, 0, 0},
    {"toDateTime", FunctionId::ToDateTime, 0, 0}, {"convertsToDateTime", FunctionId::ConvertsToDateTime, 0, 0},
    {"toTime", FunctionId::ToTime, 0, 0}, {"convertsToTime", FunctionId::ConvertsToTime, 0, 0},
    {"toQuantity", FunctionId::ToQuantity, 0, 1}, {"convertsToQuantity", FunctionId::ConvertsToQuantity, 0, 1},
    {"indexOf", FunctionId::IndexOf, 1, 1}, {"substring", FunctionId::Substring, 1, 2},
    {"startsWith", FunctionId::StartsWith, 1, 1}, {"endsWith", FunctionId::EndsWith, 1, 1},
    {"contains", FunctionId::ContainsString, 1, 1}, {"upper", FunctionId::Upper, 0, 0}, {"lower", FunctionId::Lower, 0, 0},
    {"replace", FunctionId::Replace, 2, 2}, {"matches", FunctionId::Matches, 1, 1}, {"matchesFull", FunctionId::MatchesFull, 1, 1},
    {"replaceMatches", FunctionId::ReplaceMatches, 2, 2}, {"length", FunctionId::Length, 0, 0},
    {"toChars", FunctionId::ToChars, 0, 0}, {"trim", FunctionId::Trim, 0, 0}, {"split", FunctionId::Split, 1, 1},
    {"join", FunctionId::Join, 0, 1}, {"encode", FunctionId::Encode, 1, 1}, {"decode", FunctionId::Decode, 1, 1},
    {"escape", FunctionId::EscapeFn, 1, 1}, {"unescape", FunctionId::UnescapeFn, 1, 1},
    {"abs", FunctionId::Abs, 0, 0}, {"ceiling", FunctionId::Ceiling, 0, 0}, {"exp", FunctionId::Exp, 0, 0},
    {"floor", FunctionId::Floor, 0, 0}, {"ln", FunctionId::Ln, 0, 0}, {"log", FunctionId::Log, 1, 1},
    {"power", FunctionId::Power, 1, 1}, {"round", FunctionId::Round, 0, 1}, {"sqrt", FunctionId::Sqrt, 0, 0},
    {"truncate", FunctionId::Truncate, 0, 0}, {"children", FunctionId::Children, 0, 0},
    {"descendants", FunctionId::Descendants, 0, 0}, {"trace", FunctionId::Trace, 1, 2}, {"now", FunctionId::Now, 0, 0},
    {"timeOfDay", FunctionId::TimeOfDay, 0, 0}, {"today", FunctionId::Today, 0, 0},
    {"defineVariable", FunctionId::DefineVariable, 1, 2}, {"aggregate", FunctionId::Aggregate, 1, 2},
    {"is", FunctionId::Is, 1, 1}, {"as", FunctionId::As, 1, 1}, {"not", FunctionId::Not, 0, 0}, {"type", FunctionId::Type, 0, 0},
    {"extension", FunctionId::Extension, 1, 1}, {"hasValue", FunctionId::HasValue, 0, 0},
    {"getValue", FunctionId::GetValue, 0, 0}, {"resolve", FunctionId::Resolve, 0, 0},
    {"htmlChecks", FunctionId::HtmlChecks, 0, 0}, {"htmlchecks", FunctionId::HtmlChecks, 0, 0},
    {"conformsTo", FunctionId::ConformsTo, 1, 1}, {"memberOf", FunctionId::MemberOf, 1, 1},
    {"subsumes", FunctionId::Subsumes, 1, 1}, {"subsumedBy", FunctionId::SubsumedBy, 1, 1},
    {"elementDefinition", FunctionId::ElementDefinition, 0, 0}, {"slice", FunctionId::Slice, 2, 2},
    {"checkModifiers", FunctionId::CheckModifiers, 0, 1}, {"lowBoundary", FunctionId::LowBoundary, 0, 1},
    {"highBoundary", FunctionId::HighBoundary, 0, 1}, {"precision", FunctionId::Precision, 0, 0},
    {"comparable", FunctionId::Comparable, 1, 1}, {"sort", FunctionId::Sort, 0, 8},
};

const char* const kSystemTypes[] = {"Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity", "Any"};

bool isSystemType(std::string_view name) {
  return std::find(std::begin(kSystemTypes), std::end(kSystemTypes), name) != std::end(kSystemTypes);
}

// Static type of an expression: the FHIR types it may have; `known` false when not tracked.
struct StaticType {
  bool known = false;
  std::vector<const fhir::TypeInfo*> types;
  bool unordered = false;  // result of children()/descendants() (checkOrderedFunctions)
  static StaticType unknown() { return {}; }
};

class Checker {
 public:
  Checker(std::string_view text, const CompileOptions& options) : text_(text), options_(options) {}

  tl::expected<StaticType, Diagnostic> check(AstNode& node, const StaticType& focus) {
    switch (node.kind) {
      case NodeKind::Literal: return StaticType::unknown();
      case NodeKind::Variable:
        if (node.name == "this") return focus;
        return StaticType::unknown();
      case NodeKind::EnvVariable:
        if (node.name == "context" || node.name == "resource" || node.name == "rootResource") return root_;
        return StaticType::unknown();
      case NodeKind::Identifier: {
        // A type name at the start of a path filters the focus by type (Patient.name on a Patient).
        if (focus.known) {
          std::vector<const fhir::TypeInfo*> kept;
          for (const auto* t : focus.types)
            if (t->isA(node.name)) kept.push_back(t);
          if (!kept.empty()) return StaticType{true, kept};
          bool any_element = false;
          for (const auto* t : focus.types) any_element |= elementOf(t, node.name) != nullptr;
          if (!any_element) {
            if (const auto* type = fhir::TypeModel::r4().find(node.name); type && type->isResource() && !options_.strict)
              return StaticType{true, {}};  // another resource type: empty, not an error in lenient mode
            return semantic(node, "'" + node.name + "' is not an element of " + describe(focus));
          }
        }
        return member(node, focus);
      }
      case NodeKind::Member: {
        auto target = check(*node.children[0], focus);
        if (!target) return target;
        return member(node, *target);
      }
      case NodeKind::Indexer: {
        auto target = check(*node.children[0], focus);
        if (!target) return target;
        if (auto idx = check(*node.children[1], focus); !idx) return idx;
        if (target->unordered && options_.strict)
          return semantic(node, "indexing an unordered collection (children()/descendants())");
        target->unordered = false;
        return target;
      }
      case NodeKind::Binary: {
        auto lhs = check(*node.children[0], focus);
        if (!lhs) return lhs;
        auto rhs = check(*node.children[1], focus);
        if (!rhs) return rhs;
        if (auto bad = literalTypeError(node)) return semantic(node, *bad);
        if (node.op == detail::BinaryOp::Union) {
          if (lhs->known && rhs->known) {
            StaticType r = *lhs;
            r.types.insert(r.types.end(), rhs->types.begin(), rhs->types.end());
            return r;
          }
        }
        return StaticType::unknown();
      }
      case NodeKind::Unary: {
        auto operand = check(*node.children[0], focus);
        if (!operand) return operand;
        return StaticType::unknown();
      }
      case NodeKind::TypeOperator: {
        auto target = check(*node.children[0], focus);
        if (!target) return target;
        if (auto r = resolveType(node, node.type.written); !r) return tl::unexpected(r.error());
        if (node.name == "as" && node.type.fhir_type) return StaticType{true, {node.type.fhir_type}};
        return StaticType::unknown();
      }
      case NodeKind::Function: return function(node, focus);
    }
    return StaticType::unknown();
  }

  void setRoot(StaticType root) { root_ = std::move(root); }

 private:
  tl::unexpected<Diagnostic> semantic(const AstNode& node, std::string message) const {
    return tl::unexpected(detail::makeDiagnostic(ErrorKind::Semantic, std::move(message), text_, node.position));
  }

  static std::string describe(const StaticType& t) {
    std::string out;
    for (const auto* type : t.types) {
      if (!out.empty()) out += " | ";
      out += type->name;
    }
    return out.empty() ? "the input" : out;
  }

  static const fhir::ElementInfo* elementOf(const fhir::TypeInfo* type, std::string_view name) {
    for (const fhir::TypeInfo* t = type; t; t = t->base) {
      if (const auto* e = t->findElement(name)) return e;
    }
    return nullptr;
  }

  tl::expected<StaticType, Diagnostic> member(AstNode& node, const StaticType& focus) {
    if (!focus.known) return StaticType::unknown();
    StaticType out;
    out.known = true;
    bool found = focus.types.empty();
    for (const auto* t : focus.types) {
      if (t->isPrimitive() && node.name == "value") {
        found = true;
        out.known = false;
        continue;
      }
      if (t->isResource() && t->is_abstract) {
        // Resource-typed elements (contained, entry.resource) may hold any resource.
        found = true;
        out.known = false;
        continue;
      }
      const auto* e = elementOf(t, node.name);
      if (!e) continue;
      found = true;
      if (e->types.empty()) out.known = false;
      for (const auto* et : e->types) {
        if (!et) { out.known = false; continue; }
        out.types.push_back(et);
      }
    }
    if (!found) return semantic(node, "'" + node.name + "' is not an element of " + describe(focus));
    if (!out.known) return StaticType::unknown();
    return out;
  }

  tl::expected<void, Diagnostic> resolveType(AstNode& node, const std::string& written) {
    node.type.written = written;
    std::string_view name = written;
    bool system_only = false, fhir_only = false;
    if (name.substr(0, 7) == "System.") {
      name.remove_prefix(7);
      system_only = true;
    } else if (name.substr(0, 5) == "FHIR.") {
      name.remove_prefix(5);
      fhir_only = true;
    }
    if (!system_only) node.type.fhir_type = fhir::TypeModel::r4().find(name);
    if (!fhir_only && isSystemType(name)) node.type.system_name = std::string(name);
    if (system_only && node.type.system_name.empty()) {
      node.type.system_name = std::string(name);  // matches nothing: System has no such type
      return {};
    }
    if (!node.type.fhir_type && node.type.system_name.empty())
      return tl::unexpected(detail::makeDiagnostic(ErrorKind::Semantic, "unknown type '" + written + "'", text_, node.position));
    return {};
  }

  // Arithmetic on two literals whose types do not combine (`@1974-12-25 + 7`) is a type error the
  // specification lets us report before evaluation. Quantities are left to evaluation: whether their
  // units combine depends on the values.
  static std::optional<std::string> literalTypeError(const AstNode& node) {
    switch (node.op) {
      case detail::BinaryOp::Plus: case detail::BinaryOp::Minus: case detail::BinaryOp::Times: case detail::BinaryOp::Divide:
      case detail::BinaryOp::Div: case detail::BinaryOp::Mod:
        break;
      default: return std::nullopt;
    }
    const AstNode& a = *node.children[0];
    const AstNode& b = *node.children[1];
    if (a.kind != NodeKind::Literal || b.kind != NodeKind::Literal || !a.has_value || !b.has_value) return std::nullopt;
    if (a.value.index() == 5 || b.value.index() == 5) return std::nullopt;
    auto r = detail::arithmetic(node.op, a.value, b.value);
    if (r) return std::nullopt;
    return r.error();
  }

  // Items of an expression made only of literals and unions of them; nullopt for anything else.
  static std::optional<std::vector<const SystemValue*>> literalItems(const AstNode& node) {
    if (node.kind == NodeKind::Literal) {
      std::vector<const SystemValue*> items;
      if (node.has_value) items.push_back(&node.value);
      return items;
    }
    if (node.kind == NodeKind::Binary && node.op == detail::BinaryOp::Union) {
      auto a = literalItems(*node.children[0]);
      auto b = literalItems(*node.children[1]);
      if (!a || !b) return std::nullopt;
      for (const SystemValue* v : *b)
        if (std::none_of(a->begin(), a->end(), [&](const SystemValue* w) { return toText(*w) == toText(*v) && w->index() == v->index(); }))
          a->push_back(v);
      return a;
    }
    return std::nullopt;
  }

  static std::optional<std::string> typeNameOf(const AstNode& arg) {
    if (arg.kind == NodeKind::Identifier) return arg.name;
    if (arg.kind == NodeKind::Member && arg.children[0] && arg.children[0]->kind == NodeKind::Identifier)
      return arg.children[0]->name + "." + arg.name;
    return std::nullopt;
  }

  tl::expected<StaticType, Diagnostic> function(AstNode& node, const StaticType& focus) {
    const FunctionSpec* spec = nullptr;
    for (const auto& f : kFunctions)
      if (f.name == node.name) spec = &f;
    if (!spec) return semantic(node, "unknown function '" + node.name + "'");
    size_t nargs = node.children.size() - 1;
    if (nargs < spec->min_args || nargs > spec->max_args)
      return semantic(node, "function '" + node.name + "' takes " + std::to_string(spec->min_args) +
                                (spec->max_args != spec->min_args ? ".." + std::to_string(spec->max_args) : "") +
                                " argument(s), not " + std::to_string(nargs));
    node.function = spec->id;
    StaticType input = focus;
    if (node.children[0]) {
      auto t = check(*node.children[0], focus);
      if (!t) return t;
      input = *t;
    }
    // iif() criterion written as literals: a non-Boolean or several items is a type error.
    if (spec->id == FunctionId::Iif) {
      if (auto items = literalItems(*node.children[1])) {
        if (items->size() > 1)
          return semantic(node, "iif() criterion is a collection of " + std::to_string(items->size()) + " items, not a Boolean");
        if (items->size() == 1 && (*items)[0]->index() != 0)
          return semantic(node, "iif() criterion must be a Boolean, not " + std::string(systemTypeName(*(*items)[0])));
      }
    }
    // Type-specifier arguments.
    if (spec->id == FunctionId::OfType || spec->id == FunctionId::Is || spec->id == FunctionId::As) {
      auto name = typeNameOf(*node.children[1]);
      if (!name) return semantic(node, "'" + node.name + "' expects a type name");
      if (auto r = resolveType(node, *name); !r) return tl::unexpected(r.error());
      if (spec->id == FunctionId::Is) return StaticType::unknown();
      if (node.type.fhir_type) return StaticType{true, {node.type.fhir_type}};
      return StaticType::unknown();
    }
    // Arguments evaluated with the input items as $this, or with the original focus.
    bool iterates = spec->id == FunctionId::Where || spec->id == FunctionId::Select || spec->id == FunctionId::All ||
                    spec->id == FunctionId::Exists || spec->id == FunctionId::Repeat || spec->id == FunctionId::Aggregate ||
                    spec->id == FunctionId::Sort;
    StaticType select_type;
    for (size_t i = 1; i < node.children.size(); ++i) {
      auto t = check(*node.children[i], iterates ? input : StaticType::unknown());
      if (!t) return t;
      if (i == 1) select_type = *t;
    }
    if ((spec->id == FunctionId::Matches || spec->id == FunctionId::MatchesFull || spec->id == FunctionId::ReplaceMatches) &&
        node.children[1]->kind == NodeKind::Literal && node.children[1]->has_value &&
        node.children[1]->value.index() == 1) {
      const auto& pattern = std::get<std::string>(node.children[1]->value);
      if (!pattern.empty() && pattern.size() <= 1000) {
        try {
          node.regex = std::make_shared<const std::regex>(detail::singleLineRegex(pattern), std::regex::ECMAScript);
          if (spec->id != FunctionId::ReplaceMatches)
            node.posix_regex = detail::PosixRegex::compile(pattern, spec->id == FunctionId::MatchesFull);
        } catch (const std::regex_error&) {
          return semantic(node, "invalid regular expression '" + pattern + "'");
        }
      }
    }
    // String functions on inputs that can only be complex types are type errors.
    switch (spec->id) {
      case FunctionId::StartsWith: case FunctionId::EndsWith: case FunctionId::ContainsString: case FunctionId::Upper:
      case FunctionId::Lower: case FunctionId::Matches: case FunctionId::Replace: case FunctionId::Length:
        if (input.known && !input.types.empty() &&
            std::none_of(input.types.begin(), input.types.end(), [](const fhir::TypeInfo* t) { return t->isPrimitive(); }))
          return semantic(node, "'" + node.name + "' needs a string, not " + describe(input));
        break;
      case FunctionId::Skip: case FunctionId::Take: case FunctionId::First: case FunctionId::Last: case FunctionId::Tail:
        if (input.unordered && options_.strict)
          return semantic(node, "'" + node.name + "' on an unordered collection (children()/descendants())");
        break;
      default: break;
    }
    switch (spec->id) {
      case FunctionId::Where: case FunctionId::First: case FunctionId::Last: case FunctionId::Tail: case FunctionId::Skip:
      case FunctionId::Take: case FunctionId::Single: case FunctionId::Distinct: case FunctionId::Trace:
      case FunctionId::Intersect: case FunctionId::Exclude:
        return input;
      case FunctionId::Select: return select_type;
      case FunctionId::Children: case FunctionId::Descendants: {
        StaticType t;
        t.unordered = true;
        return t;
      }
      default: return StaticType::unknown();
    }
  }

  std::string_view text_;
  const CompileOptions& options_;
  StaticType root_;
};

// Arguments evaluated once per input item, with the item as $this.
bool iteratesArgument(FunctionId f, size_t i) {
  switch (f) {
    case FunctionId::Where: case FunctionId::Select: case FunctionId::All: case FunctionId::Exists:
    case FunctionId::Repeat: case FunctionId::Sort:
      return true;
    case FunctionId::Aggregate: return i == 1;
    case FunctionId::Iif: return true;  // on the input when there is one; else the node depends on the focus anyway
    default: return false;
  }
}

bool definesVariables(const AstNode& node) {
  if (node.kind == NodeKind::Function && node.function == FunctionId::DefineVariable) return true;
  for (const auto& c : node.children)
    if (c && definesVariables(*c)) return true;
  return false;
}

// Fills focus_independent bottom-up (see AstNode).
bool markFocusIndependent(AstNode& node) {
  bool independent = true;
  switch (node.kind) {
    case NodeKind::Literal: case NodeKind::EnvVariable: break;
    case NodeKind::Variable: case NodeKind::Identifier: independent = false; break;
    case NodeKind::Function:
      // trace() reports each time it runs, so a node containing one is never computed only once.
      independent = node.children[0] != nullptr && node.function != FunctionId::Trace;
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (!node.children[i]) continue;
        bool child = markFocusIndependent(*node.children[i]);
        // The argument of ofType()/is()/as() is a type name, not a value: it never depends on the focus.
        bool type_argument = i == 1 && (node.function == FunctionId::OfType || node.function == FunctionId::Is ||
                                        node.function == FunctionId::As);
        if (type_argument) continue;
        if (i == 0 || !iteratesArgument(node.function, i)) independent = independent && child;
      }
      break;
    default:
      for (auto& c : node.children)
        if (c) independent = markFocusIndependent(*c) && independent;
      break;
  }
  node.focus_independent = independent;
  return independent;
}

// Fills navigation_chain and names_value bottom-up (see AstNode). Type names (upper case first letter)
// are not element names.
bool markNavigationChains(AstNode& node) {
  bool chain = false;
  for (auto& c : node.children)
    if (c) markNavigationChains(*c);
  if (node.kind == NodeKind::Identifier)
    chain = !node.name.empty() && !std::isupper(static_cast<unsigned char>(node.name[0]));
  else if (node.kind == NodeKind::Member)
    chain = node.children[0] && node.children[0]->navigation_chain;
  else if (node.kind == NodeKind::Function)
    chain = node.function == FunctionId::Children && !node.children[0];
  if (node.kind == NodeKind::Identifier || node.kind == NodeKind::Member) node.names_value = node.name == "value";
  node.navigation_chain = chain;
  return chain;
}

// Marks the outermost focus-independent, non-trivial nodes inside criteria arguments.
void markCached(AstNode& node, bool repeated, bool parent_independent) {
  if (node.focus_independent && repeated && !parent_independent && node.kind != NodeKind::Literal &&
      node.kind != NodeKind::EnvVariable)
    node.cache_result = true;
  for (size_t i = 0; i < node.children.size(); ++i) {
    if (!node.children[i]) continue;
    bool child_repeated = repeated || (node.kind == NodeKind::Function && i > 0 && iteratesArgument(node.function, i));
    markCached(*node.children[i], child_repeated, node.focus_independent);
  }
}

}  // namespace

tl::expected<Expression, Diagnostic> compile(std::string_view text, const CompileOptions& options) {
  auto ast = detail::parseExpression(text, options.max_depth);
  if (!ast) return tl::unexpected(ast.error());
  Checker checker(text, options);
  StaticType root;
  if (!options.root_type.empty()) {
    const auto* type = fhir::TypeModel::r4().find(options.root_type);
    if (!type)
      return tl::unexpected(detail::makeDiagnostic(ErrorKind::Semantic, "unknown context type '" + options.root_type + "'", text, 0));
    root.known = true;
    root.types.push_back(type);
  }
  checker.setRoot(root);
  auto checked = checker.check(**ast, root);
  if (!checked) return tl::unexpected(checked.error());
  // Variables defined by the expression itself change what %name means during the evaluation, so
  // such expressions are evaluated plainly.
  markNavigationChains(**ast);
  if (!definesVariables(**ast)) {
    markFocusIndependent(**ast);
    markCached(**ast, false, false);
  }
  auto impl = std::make_shared<Expression::Impl>();
  impl->text = std::string(text);
  impl->root = std::move(*ast);
  impl->options = options;
  Expression e;
  e.impl_ = std::move(impl);
  return e;
}

}  // namespace medicus::fhirpath
