// The FHIRPath evaluator: walks the compiled tree over collections of items
// (http://hl7.org/fhirpath/N1/#functions, http://hl7.org/fhir/R4/fhirpath.html#functions).
#include "fhirpath/evaluator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <regex>
#include <span>
#include <unordered_set>

#include "fhirpath/operators.h"
#include "fhirpath/ucum.h"

namespace medicus::fhirpath {

using detail::AstNode;
using detail::BinaryOp;
using detail::FunctionId;
using detail::NodeKind;

tl::expected<bool, std::string> ExternalHooks::conformsTo(const fhir::Node&, std::string_view url) const {
  return tl::unexpected("conformsTo('" + std::string(url) + "'): no profile validator available");
}
tl::expected<bool, std::string> ExternalHooks::memberOf(const Item&, std::string_view url) const {
  return tl::unexpected("memberOf('" + std::string(url) + "'): no terminology service available");
}

tl::expected<bool, std::string> ExternalHooks::subsumes(std::string_view system, std::string_view, std::string_view) const {
  return tl::unexpected("subsumes(): no terminology service available for " + std::string(system));
}
tl::expected<const fhir::Node*, std::string> ExternalHooks::elementDefinition(const fhir::Node&) const {
  return tl::unexpected(std::string("elementDefinition(): no structure definitions available (the validator supplies them)"));
}
tl::expected<bool, std::string> ExternalHooks::inSlice(const fhir::Node&, std::string_view url, std::string_view) const {
  return tl::unexpected("slice('" + std::string(url) + "'): no profiles available (the validator supplies them)");
}

Expression::Expression() = default;
Expression::~Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
const std::string& Expression::text() const { return impl_->text; }

namespace {

using Result = tl::expected<Collection, Diagnostic>;
// The focus of an evaluation step: a view, so that $this of where()/all() and the root context need no
// collection of their own.
using Focus = std::span<const Item>;
constexpr uint32_t kMaxEvalDepth = 400;  // nested function/argument evaluations (defineVariable, aggregate)
constexpr size_t kMaxBacktrackingRegexInput = 10000;  // std::regex recurses per character matched

const fhir::Node* outermostResource(const fhir::Node* n) {
  const fhir::Node* r = nullptr;
  for (; n; n = n->parent())
    if (n->isResource()) r = n;
  return r;
}

// Node::children(name) without string_view::compare per element: names are short and differ mostly
// in length or first letter.
fhir::Node::ChildRange childrenNamed(const fhir::Node* n, std::string_view name) {
  const fhir::TypeInfo* type = n->type();
  size_t size = name.size();
  if (size == 0) return {nullptr, nullptr};
  for (const fhir::ElementInfo& e : type->elements)
    if (e.name.size() == size && e.name[0] == name[0] && std::memcmp(e.name.data(), name.data(), size) == 0)
      return {n->firstChild(), &e};
  return {nullptr, nullptr};
}

// The same for the name of an Identifier/Member node, through its element cache.
fhir::Node::ChildRange childrenNamed(const fhir::Node* n, const AstNode& step) {
  const fhir::ElementInfo* e = step.element_cache.load(std::memory_order_relaxed);
  if (e && e->owner == n->type()) return {n->firstChild(), e};
  fhir::Node::ChildRange r = childrenNamed(n, step.name);
  if (r.filter) step.element_cache.store(r.filter, std::memory_order_relaxed);
  return r;
}

bool sameItem(const Item& a, const Item& b) {
  if (a.node || b.node) {
    if (a.node == b.node) return true;
    if (!a.node || !b.node) {
      auto r = detail::itemsEqual(a, b);
      return r && *r;
    }
    if (a.node->isPrimitive() && b.node->isPrimitive()) {
      auto r = detail::itemsEqual(a, b);
      return r && *r;
    }
    return false;
  }
  auto r = detail::itemsEqual(a, b);
  return r && *r;
}

class Evaluator {
 public:
  Evaluator(const Expression::Impl& impl, const EvaluationContext& ctx) : impl_(impl), ctx_(ctx) {
    context_ = ctx.context;
  }

  // %resource and %rootResource are found on first use: most invariants never ask.
  const fhir::Node* resource() {
    if (!resource_resolved_) {
      resource_ = ctx_.resource ? ctx_.resource : (context_ ? context_->enclosingResource() : nullptr);
      resource_resolved_ = true;
    }
    return resource_;
  }
  const fhir::Node* rootResource() {
    if (!root_resource_resolved_) {
      root_resource_ = ctx_.root_resource ? ctx_.root_resource : outermostResource(resource() ? resource() : context_);
      root_resource_resolved_ = true;
    }
    return root_resource_;
  }

  Result run() {
    Item context_item(context_);
    Focus focus = context_ ? Focus(&context_item, 1) : Focus();
    Frame frame;
    frame.this_item = context_ ? &context_item : nullptr;
    return eval(*impl_.root, focus, frame);
  }

 private:
  struct Frame {
    const Item* this_item = nullptr;
    int64_t index = -1;
    const Collection* total = nullptr;
  };

  tl::unexpected<Diagnostic> error(const AstNode& node, std::string message) const {
    return tl::unexpected(detail::makeDiagnostic(ErrorKind::Execution, std::move(message), impl_.text, node.position));
  }

  // --- helpers ---------------------------------------------------------------------------------

  tl::expected<std::optional<SystemValue>, Diagnostic> single(const AstNode& node, Focus c) const {
    if (c.empty()) return std::optional<SystemValue>();
    if (c.size() > 1) return error(node, "expected a single value, got " + std::to_string(c.size()) + " items");
    auto v = toSystemValue(c[0]);
    if (!v) {
      if (c[0].node && c[0].node->isPrimitive()) return std::optional<SystemValue>();
      return error(node, "expected a primitive value, got " + outputTypeName(c[0]));
    }
    return v;
  }

  // Singleton evaluation as Boolean (http://hl7.org/fhirpath/N1/#singleton-evaluation-of-collections).
  tl::expected<std::optional<bool>, Diagnostic> boolean(const AstNode& node, Focus c) const {
    if (c.empty()) return std::optional<bool>();
    if (c.size() > 1) return error(node, "expected a single Boolean, got " + std::to_string(c.size()) + " items");
    auto v = toSystemValue(c[0]);
    if (v && v->index() == 0) return std::optional<bool>(std::get<bool>(*v));
    return std::optional<bool>(true);
  }

  tl::expected<std::optional<std::string>, Diagnostic> string(const AstNode& node, Focus c) const {
    auto v = single(node, c);
    if (!v) return tl::unexpected(v.error());
    if (!*v) return std::optional<std::string>();
    if ((*v)->index() != 1) return error(node, "expected a String, got " + std::string(systemTypeName(**v)));
    return std::optional<std::string>(std::get<std::string>(**v));
  }

  tl::expected<std::optional<int64_t>, Diagnostic> integer(const AstNode& node, Focus c) const {
    auto v = single(node, c);
    if (!v) return tl::unexpected(v.error());
    if (!*v) return std::optional<int64_t>();
    if ((*v)->index() != 2) return error(node, "expected an Integer, got " + std::string(systemTypeName(**v)));
    return std::optional<int64_t>(std::get<int64_t>(**v));
  }

  static Collection one(SystemValue v) {
    Collection c;
    c.emplace_back(std::move(v));
    return c;
  }
  static Collection boolResult(bool b) { return one(SystemValue{b}); }

  Result arg(const AstNode& call, size_t i, Focus focus, const Frame& frame) {
    return eval(*call.children[i], focus, frame);
  }

  const Temporal& now() {
    if (!now_) {
      auto tp = ctx_.clock ? ctx_.clock() : std::chrono::system_clock::now();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
      std::time_t secs = static_cast<std::time_t>(ms / 1000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      Temporal t;
      t.kind = TemporalKind::DateTime;
      t.precision = TemporalPrecision::Millisecond;
      t.year = tm.tm_year + 1900;
      t.month = tm.tm_mon + 1;
      t.day = tm.tm_mday;
      t.hour = tm.tm_hour;
      t.minute = tm.tm_min;
      t.second = tm.tm_sec;
      t.millisecond = static_cast<int>(ms % 1000);
      t.has_timezone = true;
      now_ = t;
    }
    return *now_;
  }

  void navigate(const Item& item, const AstNode& step, Collection& out) const {
    std::string_view name = step.name;
    if (!item.node) {
      if (const auto* t = std::get_if<TypeSpecifier>(&item.value)) {
        if (name == "namespace") out.emplace_back(SystemValue{t->namespace_name});
        if (name == "name") out.emplace_back(SystemValue{t->name});
      }
      return;
    }
    const fhir::Node* n = item.node;
    if (n->isPrimitive() && name == "value") {
      if (auto v = toSystemValue(item)) out.emplace_back(std::move(*v));
      return;
    }
    for (const fhir::Node* c : childrenNamed(n, step)) out.emplace_back(c);
  }

  // `exact`: as()/ofType() take primitives by their exact type (a code is not returned by
  // as(string)), while `is` follows derivation (code is a string), as the R4 suite expects.
  bool matchesType(const Item& item, const detail::TypeRef& type, bool exact = false) const {
    if (item.node) {
      if (!type.fhir_type || !item.node->type()) return false;
      if (exact && item.node->type()->isPrimitive()) return item.node->type() == type.fhir_type;
      return item.node->type()->isA(type.fhir_type);
    }
    if (type.system_name == "Any") return true;
    return !type.system_name.empty() && systemTypeName(item.value) == type.system_name;
  }

  void addDescendants(const fhir::Node* n, Collection& out, bool& overflow) const {
    for (const fhir::Node* c : n->children()) {
      if (out.size() >= ctx_.max_repeat_items) {
        overflow = true;
        return;
      }
      out.emplace_back(c);
      addDescendants(c, out, overflow);
    }
  }

  const fhir::Node* resolveReference(const Item& item) {
    std::string ref;
    if (item.node && !item.node->isPrimitive()) {
      const fhir::Node* r = item.node->child("reference");
      if (!r || !r->hasValue()) return nullptr;
      ref = std::string(r->value());
    } else {
      auto v = toSystemValue(item);
      if (!v || v->index() != 1) return nullptr;
      ref = std::get<std::string>(*v);
    }
    if (ref.empty()) return nullptr;
    const fhir::Node* from = item.node ? item.node->enclosingResource() : resource();
    if (ref[0] == '#') {
      // Contained resources live in the outermost resource that is not itself contained.
      const fhir::Node* container = from;
      while (container && container->parent() && container->element() && container->element()->name == "contained")
        container = container->parent()->enclosingResource();
      if (!container) return nullptr;
      if (ref.size() == 1) return container;
      for (const fhir::Node* c : container->children("contained")) {
        const fhir::Node* id = c->child("id");
        if (id && id->value() == std::string_view(ref).substr(1)) return c;
      }
      return nullptr;
    }
    // Bundle entries by fullUrl, or by Type/id (http://hl7.org/fhir/R4/bundle.html#references).
    for (const fhir::Node* r = from; r; r = r->parent() ? r->parent()->enclosingResource() : nullptr) {
      if (r->type()->name != "Bundle") continue;
      for (const fhir::Node* entry : r->children("entry")) {
        const fhir::Node* full = entry->child("fullUrl");
        const fhir::Node* res = entry->child("resource");
        if (!res) continue;
        if (full && full->value() == ref) return res;
        const fhir::Node* id = res->child("id");
        if (id) {
          std::string type_id = std::string(res->type()->name) + "/" + std::string(id->value());
          if (ref == type_id || (ref.size() > type_id.size() && ref.compare(ref.size() - type_id.size() - 1, std::string::npos, "/" + type_id) == 0))
            return res;
        }
      }
    }
    if (ctx_.hooks) return ctx_.hooks->resolveExternal(ref);
    return nullptr;
  }

  // --- evaluation ------------------------------------------------------------------------------

  Result eval(const AstNode& node, Focus focus, const Frame& frame) {
    if (++depth_ > kMaxEvalDepth) {
      --depth_;
      return error(node, "evaluation nested too deeply");
    }
    if (node.cache_result) {
      for (const auto& [cached_node, value] : cache_)
        if (cached_node == &node) {
          --depth_;
          return value;
        }
    }
    Result r = evalNode(node, focus, frame);
    --depth_;
    if (node.cache_result && r) cache_.emplace_back(&node, *r);
    return r;
  }

  Result evalNode(const AstNode& node, Focus focus, const Frame& frame) {
    switch (node.kind) {
      case NodeKind::Literal: {
        Collection c;
        if (node.has_value) c.emplace_back(node.value);
        return c;
      }
      case NodeKind::Variable: {
        Collection c;
        if (node.name == "this") {
          if (frame.this_item) c.push_back(*frame.this_item);
        } else if (node.name == "index") {
          if (frame.index >= 0) c.emplace_back(SystemValue{frame.index});
        } else if (node.name == "total") {
          if (frame.total) return *frame.total;
        }
        return c;
      }
      case NodeKind::EnvVariable: return envVariable(node);
      case NodeKind::Identifier: {
        Collection out;
        for (const Item& item : focus) {
          if (item.node && !node.name.empty() && std::isupper(static_cast<unsigned char>(node.name[0])) &&
              item.node->type()->isA(node.name) && !item.node->type()->findElement(node.name)) {
            out.push_back(item);
            continue;
          }
          navigate(item, node, out);
        }
        return out;
      }
      case NodeKind::Member: {
        Collection out;
        if (streamsDescendants(*node.children[0])) {
          auto s = forEachDescendant(*node.children[0], focus, frame, [&](const fhir::Node* d) { navigate(Item(d), node, out); });
          if (!s) return tl::unexpected(std::move(s.error()));
          return out;
        }
        auto target = eval(*node.children[0], focus, frame);
        if (!target) return target;
        for (const Item& item : *target) navigate(item, node, out);
        return out;
      }
      case NodeKind::Indexer: {
        auto target = eval(*node.children[0], focus, frame);
        if (!target) return target;
        auto index = eval(*node.children[1], focus, frame);
        if (!index) return index;
        auto i = integer(node, *index);
        if (!i) return tl::unexpected(i.error());
        Collection out;
        if (*i && **i >= 0 && static_cast<size_t>(**i) < target->size()) out.push_back((*target)[static_cast<size_t>(**i)]);
        return out;
      }
      case NodeKind::Unary: {
        auto operand = eval(*node.children[0], focus, frame);
        if (!operand) return operand;
        auto v = single(node, *operand);
        if (!v) return tl::unexpected(v.error());
        if (!*v) return Collection{};
        if (node.unary_op == '+') {
          if ((*v)->index() == 2 || (*v)->index() == 3 || (*v)->index() == 5) return one(**v);
        } else {
          if (auto* i = std::get_if<int64_t>(&**v)) return one(SystemValue{-*i});
          if (auto* d = std::get_if<Decimal>(&**v)) return one(SystemValue{d->negate()});
          if (auto* q = std::get_if<Quantity>(&**v)) return one(SystemValue{Quantity{q->value.negate(), q->unit}});
        }
        return error(node, std::string("unary '") + node.unary_op + "' cannot be applied to " + std::string(systemTypeName(**v)));
      }
      case NodeKind::TypeOperator: {
        auto target = eval(*node.children[0], focus, frame);
        if (!target) return target;
        return typeOperation(node, node.name == "is" ? FunctionId::Is : FunctionId::As, *target);
      }
      case NodeKind::Binary: return binary(node, focus, frame);
      case NodeKind::Function: return function(node, focus, frame);
    }
    return Collection{};
  }

  Result envVariable(const AstNode& node) {
    if (ctx_.variables) {
      auto it = ctx_.variables->find(node.name);
      if (it != ctx_.variables->end()) return it->second;
    }
    for (auto it = defined_.rbegin(); it != defined_.rend(); ++it)
      if (it->first == node.name) return it->second;
    Collection c;
    const std::string& n = node.name;
    if (n == "context") {
      if (context_) c.emplace_back(context_);
    } else if (n == "resource") {
      if (resource()) c.emplace_back(resource());
    } else if (n == "rootResource") {
      if (rootResource()) c.emplace_back(rootResource());
    } else if (n == "ucum") {
      c.emplace_back(SystemValue{std::string("http://unitsofmeasure.org")});
    } else if (n == "sct") {
      c.emplace_back(SystemValue{std::string("http://snomed.info/sct")});
    } else if (n == "loinc") {
      c.emplace_back(SystemValue{std::string("http://loinc.org")});
    } else if (n.rfind("vs-", 0) == 0) {
      c.emplace_back(SystemValue{"http://hl7.org/fhir/ValueSet/" + n.substr(3)});
    } else if (n.rfind("ext-", 0) == 0) {
      c.emplace_back(SystemValue{"http://hl7.org/fhir/StructureDefinition/" + n.substr(4)});
    } else {
      return error(node, "unknown environment variable '%" + n + "'");
    }
    return c;
  }

  Result typeOperation(const AstNode& node, FunctionId id, Focus input) {
    if (input.empty()) return Collection{};
    if (id == FunctionId::OfType) {
      Collection out;
      for (const Item& item : input)
        if (matchesType(item, node.type, true)) out.push_back(item);
      return out;
    }
    // The R4 core invariants apply the function form as() to collections (dom-3:
    // `%resource.descendants().as(canonical)`); it filters like ofType() there. The operators and is()
    // keep the singleton rule.
    if (input.size() > 1 && id == FunctionId::As && node.kind == NodeKind::Function) {
      Collection out;
      for (const Item& item : input)
        if (matchesType(item, node.type, true)) out.push_back(item);
      return out;
    }
    if (input.size() > 1) return error(node, "'" + std::string(id == FunctionId::Is ? "is" : "as") + "' needs a single item, got " + std::to_string(input.size()));
    bool match = matchesType(input[0], node.type, id != FunctionId::Is);
    if (id == FunctionId::Is) return boolResult(match);
    return match ? Collection(input.begin(), input.end()) : Collection{};
  }

  Result binary(const AstNode& node, Focus focus, const Frame& frame) {
    auto lhs = eval(*node.children[0], focus, frame);
    if (!lhs) return lhs;
    // Three-valued logic (http://hl7.org/fhirpath/N1/#boolean-logic).
    switch (node.op) {
      case BinaryOp::And: case BinaryOp::Or: case BinaryOp::Xor: case BinaryOp::Implies: {
        auto a = boolean(node, *lhs);
        if (!a) return tl::unexpected(a.error());
        if (node.op == BinaryOp::And && *a && !**a) return boolResult(false);
        if (node.op == BinaryOp::Or && *a && **a) return boolResult(true);
        if (node.op == BinaryOp::Implies && *a && !**a) return boolResult(true);
        auto rhs = eval(*node.children[1], focus, frame);
        if (!rhs) return rhs;
        auto b = boolean(node, *rhs);
        if (!b) return tl::unexpected(b.error());
        switch (node.op) {
          case BinaryOp::And:
            if (*b && !**b) return boolResult(false);
            if (*a && *b) return boolResult(true);
            return Collection{};
          case BinaryOp::Or:
            if (*b && **b) return boolResult(true);
            if (*a && *b) return boolResult(false);
            return Collection{};
          case BinaryOp::Xor:
            if (*a && *b) return boolResult(**a != **b);
            return Collection{};
          default:  // implies
            if (*b && **b) return boolResult(true);
            if (*a && *b) return boolResult(false);
            return Collection{};
        }
      }
      default: break;
    }
    auto rhs = eval(*node.children[1], focus, frame);
    if (!rhs) return rhs;
    const Collection& a = *lhs;
    const Collection& b = *rhs;
    switch (node.op) {
      case BinaryOp::Union: return unionOf(a, b);
      case BinaryOp::Equal: case BinaryOp::NotEqual: {
        if (a.empty() || b.empty()) return Collection{};
        if (a.size() != b.size()) return boolResult(node.op == BinaryOp::NotEqual);
        bool all = true;
        for (size_t i = 0; i < a.size(); ++i) {
          auto e = detail::itemsEqual(a[i], b[i]);
          if (!e) return Collection{};
          all = all && *e;
        }
        return boolResult(node.op == BinaryOp::Equal ? all : !all);
      }
      case BinaryOp::Equivalent: case BinaryOp::NotEquivalent: {
        bool eq = a.size() == b.size();
        if (eq) {
          std::vector<bool> used(b.size());
          for (const Item& x : a) {
            bool found = false;
            for (size_t j = 0; j < b.size() && !found; ++j)
              if (!used[j] && detail::itemsEquivalent(x, b[j])) used[j] = found = true;
            if (!found) {
              eq = false;
              break;
            }
          }
        }
        return boolResult(node.op == BinaryOp::Equivalent ? eq : !eq);
      }
      case BinaryOp::Less: case BinaryOp::Greater: case BinaryOp::LessOrEqual: case BinaryOp::GreaterOrEqual: {
        auto x = single(node, a);
        if (!x) return tl::unexpected(x.error());
        auto y = single(node, b);
        if (!y) return tl::unexpected(y.error());
        if (!*x || !*y) return Collection{};
        auto c = detail::compareValues(**x, **y);
        if (!c) return error(node, c.error());
        if (!*c) return Collection{};
        int v = **c;
        bool r = node.op == BinaryOp::Less ? v < 0 : node.op == BinaryOp::Greater ? v > 0 : node.op == BinaryOp::LessOrEqual ? v <= 0 : v >= 0;
        return boolResult(r);
      }
      case BinaryOp::In: case BinaryOp::Contains: {
        const Collection& element = node.op == BinaryOp::In ? a : b;
        const Collection& container = node.op == BinaryOp::In ? b : a;
        if (element.empty()) return Collection{};
        if (element.size() > 1) return error(node, "membership test needs a single item on the element side");
        for (const Item& item : container) {
          auto e = detail::itemsEqual(element[0], item);
          if (e && *e) return boolResult(true);
        }
        return boolResult(false);
      }
      case BinaryOp::Concat: {
        if (a.size() > 1 || b.size() > 1) return error(node, "'&' needs single strings");
        auto x = single(node, a);
        if (!x) return tl::unexpected(x.error());
        auto y = single(node, b);
        if (!y) return tl::unexpected(y.error());
        SystemValue sx = *x ? **x : SystemValue{std::string()};
        SystemValue sy = *y ? **y : SystemValue{std::string()};
        auto r = detail::arithmetic(BinaryOp::Concat, sx, sy);
        if (!r) return error(node, r.error());
        return one(**r);
      }
      default: {
        auto x = single(node, a);
        if (!x) return tl::unexpected(x.error());
        auto y = single(node, b);
        if (!y) return tl::unexpected(y.error());
        if (!*x || !*y) return Collection{};
        auto r = detail::arithmetic(node.op, **x, **y);
        if (!r) return error(node, r.error());
        if (!*r) return Collection{};
        return one(std::move(**r));
      }
    }
  }

  // a | b without duplicates (sameItem). Unions of element values (dom-3 joins every reference and
  // canonical of a resource) are deduplicated with hash sets: string-like values equal only other
  // string-like values with the same text, and complex nodes only themselves. Other values are
  // compared pairwise.
  static std::optional<std::string_view> stringLike(const Item& item) {
    if (!item.node) {
      if (const auto* s = std::get_if<std::string>(&item.value)) return std::string_view(*s);
      return std::nullopt;
    }
    if (!item.node->isPrimitive() || !item.node->hasValue()) return std::nullopt;
    switch (item.node->type()->primitive_kind) {
      case fhir::PrimitiveKind::Id: case fhir::PrimitiveKind::Code: case fhir::PrimitiveKind::Uri: case fhir::PrimitiveKind::Oid:
      case fhir::PrimitiveKind::Uuid: case fhir::PrimitiveKind::String: case fhir::PrimitiveKind::Base64Binary:
      case fhir::PrimitiveKind::Xhtml:
        return item.node->value();
      default: return std::nullopt;
    }
  }

  static Collection unionOf(Focus a, Focus b) {
    Collection out;
    bool hashable = true;
    for (Focus side : {a, b})
      for (const Item& item : side)
        hashable = hashable && ((item.node && !item.node->isPrimitive()) || stringLike(item));
    if (!hashable) {
      for (Focus side : {a, b})
        for (const Item& item : side)
          if (std::none_of(out.begin(), out.end(), [&](const Item& o) { return sameItem(o, item); })) out.push_back(item);
      return out;
    }
    std::unordered_set<std::string_view> strings;
    std::unordered_set<const fhir::Node*> nodes;
    for (Focus side : {a, b})
      for (const Item& item : side) {
        bool fresh = item.node && !item.node->isPrimitive() ? nodes.insert(item.node).second : strings.insert(*stringLike(item)).second;
        if (fresh) out.push_back(item);
      }
    return out;
  }

  // Evaluates argument `i` once per input item with $this/$index bound.
  template <typename F>
  tl::expected<void, Diagnostic> perItem(const AstNode& call, size_t i, Focus input, F&& f) {
    for (size_t k = 0; k < input.size(); ++k) {
      Frame frame;
      frame.this_item = &input[k];
      frame.index = static_cast<int64_t>(k);
      auto r = eval(*call.children[i], Focus(&input[k], 1), frame);
      if (!r) return tl::unexpected(r.error());
      if (auto s = f(k, *r); !s) return s;
    }
    return {};
  }

  // The first byte at or below ' ' (whitespace and control characters) in [p, limit), else limit;
  // `end` (>= limit) bounds the reads. Eight bytes at a time: (x - 0x21..) & ~x & 0x80.. flags the
  // bytes below 0x21, exactly for the lowest one (a borrow only reaches the bytes above a flagged
  // byte). Words are read up to the end of the text, so a short tag costs one step.
  static const char* findSpaceOrControl(const char* p, const char* limit, const char* end) {
    constexpr uint64_t kOnes = 0x0101010101010101ull;
    for (; p < limit && end - p >= 8; p += 8) {
      uint64_t x;
      std::memcpy(&x, p, 8);
      if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
      if (uint64_t flags = (x - kOnes * 0x21) & ~x & (kOnes * 0x80)) return std::min(limit, p + (std::countr_zero(flags) >> 3));
    }
    for (; p < limit; ++p)
      if (static_cast<unsigned char>(*p) <= ' ') return p;
    return limit;
  }

  // The criteria (argument 1) of where()/exists()/all() once per input item with $this/$index bound,
  // as a Boolean: evalBool() gives what boolean(call, eval(criteria)) gives, without collections for
  // Boolean-shaped criteria (descendants().where(reference = '#') in dom-3).
  template <typename F>
  tl::expected<void, Diagnostic> perItemBoolean(const AstNode& call, Focus input, F&& f) {
    for (size_t k = 0; k < input.size(); ++k) {
      Frame frame;
      frame.this_item = &input[k];
      frame.index = static_cast<int64_t>(k);
      Tri b = evalBool(*call.children[1], call, Focus(&input[k], 1), frame);
      if (b == Tri::Error) return tl::unexpected(std::move(*failed_));
      f(k, b);
    }
    return {};
  }

  // Rejects active content in XHTML (script/object/embed/iframe/form/applet elements, on* event
  // attributes, javascript: URLs) without copying the text. Narratives are the largest strings of most
  // resources, so the text between tags is skipped with memchr and only tags are looked at.
  static bool narrativeIsSafe(std::string_view text) {
    const char* begin = text.data();
    const char* end = begin + text.size();
    auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
    auto startsWithNoCase = [&](const char* at, std::string_view word) {
      if (static_cast<size_t>(end - at) < word.size()) return false;
      for (size_t k = 0; k < word.size(); ++k)
        if (lower(at[k]) != word[k]) return false;
      return true;
    };
    auto find = [&](const char* from, char c) -> const char* {
      if (from >= end) return nullptr;
      return static_cast<const char*>(std::memchr(from, c, static_cast<size_t>(end - from)));
    };
    // "javascript:" anywhere: look at what precedes each ':'.
    constexpr std::string_view kJavascript = "javascript";
    for (const char* colon = find(begin, ':'); colon; colon = find(colon + 1, ':'))
      if (static_cast<size_t>(colon - begin) >= kJavascript.size() && startsWithNoCase(colon - kJavascript.size(), kJavascript))
        return false;
    static constexpr std::string_view kActive[] = {"script", "object", "embed", "iframe", "form", "applet"};
    const char* scanned = begin;  // attributes are checked once per byte even with '<' inside a tag
    for (const char* open = find(begin, '<'); open; open = find(open + 1, '<')) {
      const char* name = open + 1;
      char first = name < end ? lower(*name) : '\0';
      if (first == 's' || first == 'o' || first == 'e' || first == 'i' || first == 'f' || first == 'a')
      for (std::string_view bad : kActive)
        if (bad[0] == first && startsWithNoCase(name, bad)) {
          char after = name + bad.size() < end ? name[bad.size()] : '>';
          if (after == '>' || after == ' ' || after == '/' || after == '\t' || after == '\n') return false;
        }
      // Inside the tag (up to '>'): whitespace, "on", letters, '=' is an event handler attribute.
      const char* close = find(name, '>');
      const char* tag_end = close ? close : end;
      for (const char* c = findSpaceOrControl(std::max(name, scanned), tag_end, end); c < tag_end;
           c = findSpaceOrControl(c + 1, tag_end, end)) {
        if ((*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') && startsWithNoCase(c + 1, "on")) {
          const char* j = c + 3;
          while (j < end && std::isalpha(static_cast<unsigned char>(*j))) ++j;
          if (j > c + 3 && j < end && *j == '=') return false;
        }
      }
      scanned = std::max(scanned, tag_end);
    }
    return true;
  }

  // Paths made only of element names (`id`, `code.coding`, `children()`; AstNode::navigation_chain,
  // set by compile()) can be counted without building collections: count()/exists()/empty() on them
  // run on every element in invariants such as ele-1.
  static bool isNavigationChain(const AstNode* t) { return t && t->navigation_chain; }

  // One step of a chain from `from`: f(c) for each child named by s; f(nullptr) for a primitive's `value`.
  template <class F>
  static void forEachStep(const fhir::Node* from, const AstNode& s, F&& f) {
    if (s.names_value && from->isPrimitive()) {
      if (from->hasValue()) f(nullptr);
      return;
    }
    auto range = childrenNamed(from, s);
    if (range.filter && range.filter->index == 0) {
      // The first element of every type (`id`): children are in definition order, so its nodes are
      // the leading children; the others' definitions need not be read to know they come later.
      for (const fhir::Node* c = range.first; c && c->element() == range.filter; c = c->nextSibling()) f(c);
      return;
    }
    for (auto it = range.begin(), end = range.end(); it != end; ++it) f(*it);
  }

  static size_t stepCount(const fhir::Node* from, const AstNode& s) {
    size_t k = 0;
    forEachStep(from, s, [&](const fhir::Node*) { ++k; });
    return k;
  }

  // Calls f(node) for each node reached from n; f(nullptr) for a primitive's `value`.
  static void forEachReached(const AstNode* t, const fhir::Node* n, const std::function<void(const fhir::Node*)>& f) {
    if (t->kind == NodeKind::Identifier) {
      forEachStep(n, *t, f);
    } else if (t->kind == NodeKind::Function) {
      for (const fhir::Node* c = n->firstChild(); c; c = c->nextSibling()) f(c);
    } else {
      forEachReached(t->children[0].get(), n, [&](const fhir::Node* m) {
        if (m) forEachStep(m, *t, f);
      });
    }
  }

  // Count of the nodes a chain reaches; the one- and two-step paths without std::function.
  static size_t countReached(const AstNode* t, const fhir::Node* n) {
    if (t->kind == NodeKind::Identifier) return stepCount(n, *t);
    if (t->kind == NodeKind::Function) {
      size_t k = 0;
      for (const fhir::Node* c = n->firstChild(); c; c = c->nextSibling()) ++k;
      return k;
    }
    const AstNode* prefix = t->children[0].get();
    size_t k = 0;
    if (prefix->kind == NodeKind::Identifier) {
      forEachStep(n, *prefix, [&](const fhir::Node* m) {
        if (m) k += stepCount(m, *t);
      });
    } else if (prefix->kind == NodeKind::Function) {
      for (const fhir::Node* c = n->firstChild(); c; c = c->nextSibling()) k += stepCount(c, *t);
    } else {
      forEachReached(prefix, n, [&](const fhir::Node* m) {
        if (m) k += stepCount(m, *t);
      });
    }
    return k;
  }

  std::optional<size_t> countWithoutCollecting(const AstNode* target, Focus focus) const {
    if (!isNavigationChain(target)) return std::nullopt;
    size_t count = 0;
    for (const Item& item : focus) {
      if (!item.node) {
        if (item.value.index() == 6) return std::nullopt;
        continue;
      }
      count += countReached(target, item.node);
    }
    return count;
  }

  // --- Boolean fast path ---------------------------------------------------------------------
  // Invariants are Boolean combinations of existence tests, counts and comparisons. evalBool(node) gives
  // what boolean(err, eval(node)) gives (singleton evaluation as Boolean, errors reported at `err`),
  // but for the shapes below it builds no result collections.
 public:
  // Error: the Diagnostic is in failed_ (a small return value keeps this path cheap); NotHandled:
  // evalBoolNode() leaves the node to the normal evaluation.
  enum class Tri : uint8_t { False, True, Empty, Error, NotHandled };

  // Nodes whose result is always a single Boolean or empty, so that the evaluation as Boolean is exact.
  static bool yieldsBoolean(const AstNode& node) {
    if (node.kind == NodeKind::Binary) {
      switch (node.op) {
        case BinaryOp::Implies: case BinaryOp::Or: case BinaryOp::Xor: case BinaryOp::And: case BinaryOp::In:
        case BinaryOp::Contains: case BinaryOp::Equal: case BinaryOp::Equivalent: case BinaryOp::NotEqual:
        case BinaryOp::NotEquivalent: case BinaryOp::Less: case BinaryOp::Greater: case BinaryOp::LessOrEqual:
        case BinaryOp::GreaterOrEqual:
          return true;
        default: return false;
      }
    }
    if (node.kind == NodeKind::Function) {
      switch (node.function) {
        case FunctionId::Not: case FunctionId::Exists: case FunctionId::Empty: case FunctionId::All: case FunctionId::HasValue:
        case FunctionId::StartsWith: case FunctionId::EndsWith: case FunctionId::ContainsString:
        case FunctionId::Matches: case FunctionId::MatchesFull:
          return true;
        default: return false;
      }
    }
    return false;
  }

  // Evaluation of the whole expression as an invariant: single Boolean, or empty (`empty_is`).
  tl::expected<bool, Diagnostic> runBoolean(bool empty_is) {
    Item context_item(context_);
    Focus focus = context_ ? Focus(&context_item, 1) : Focus();
    Frame frame;
    frame.this_item = context_ ? &context_item : nullptr;
    if (yieldsBoolean(*impl_.root)) {
      Tri t = evalBool(*impl_.root, *impl_.root, focus, frame);
      if (t == Tri::Error) return tl::unexpected(std::move(*failed_));
      return t == Tri::Empty ? empty_is : t == Tri::True;
    }
    auto r = eval(*impl_.root, focus, frame);
    if (!r) return tl::unexpected(r.error());
    if (r->empty()) return empty_is;
    if (r->size() == 1) {
      if (!(*r)[0].node && (*r)[0].value.index() == 0) return std::get<bool>((*r)[0].value);
      auto v = toSystemValue((*r)[0]);
      if (v && v->index() == 0) return std::get<bool>(*v);
    }
    Diagnostic d;
    d.kind = ErrorKind::Execution;
    d.message = "expression did not give a single Boolean (" + std::to_string(r->size()) + " items)";
    return tl::unexpected(d);
  }

 private:
  static Tri tri(std::optional<bool> b) { return !b ? Tri::Empty : *b ? Tri::True : Tri::False; }

  Tri fail(Diagnostic d) {
    failed_ = std::move(d);
    return Tri::Error;
  }

  // The items a function call works on: its target (children[0]) evaluated into `storage`, else the
  // focus itself. False when the target failed (the error is kept, as fail() does).
  bool evalTarget(const AstNode& node, Focus focus, const Frame& frame, Collection& storage, Focus& input) {
    input = focus;
    if (!node.children[0]) return true;
    auto c = eval(*node.children[0], focus, frame);
    if (!c) {
      fail(std::move(c.error()));
      return false;
    }
    storage = std::move(*c);
    input = storage;
    return true;
  }

  Tri evalBool(const AstNode& node, const AstNode& err, Focus focus, const Frame& frame) {
    // A node computed once per evaluation (cache_result) goes through eval(), which keeps its value.
    if (!node.cache_result && yieldsBoolean(node)) {
      if (++depth_ > kMaxEvalDepth) {
        --depth_;
        return fail(error(node, "evaluation nested too deeply").value());
      }
      Tri r = evalBoolNode(node, focus, frame);
      --depth_;
      if (r != Tri::NotHandled) return r;
    }
    auto c = eval(node, focus, frame);
    if (!c) return fail(std::move(c.error()));
    auto b = boolean(err, *c);
    if (!b) return fail(std::move(b.error()));
    return tri(*b);
  }

  // An Integer known without building collections: a count() of an element path, or an Integer literal.
  std::optional<int64_t> integerWithoutCollecting(const AstNode& node, Focus focus) const {
    if (node.kind == NodeKind::Literal && node.has_value && node.value.index() == 2) return std::get<int64_t>(node.value);
    if (node.kind == NodeKind::Function && node.function == FunctionId::Count)
      if (auto n = countWithoutCollecting(node.children[0].get(), focus)) return static_cast<int64_t>(*n);
    return std::nullopt;
  }

  // Tri::NotHandled: the caller evaluates normally.
  Tri evalBoolNode(const AstNode& node, Focus focus, const Frame& frame) {
    if (node.kind == NodeKind::Binary) {
      switch (node.op) {
        case BinaryOp::And: case BinaryOp::Or: case BinaryOp::Xor: case BinaryOp::Implies: {
          Tri a = evalBool(*node.children[0], node, focus, frame);
          if (a == Tri::Error) return a;
          if (node.op == BinaryOp::And && a == Tri::False) return Tri::False;
          if (node.op == BinaryOp::Or && a == Tri::True) return Tri::True;
          if (node.op == BinaryOp::Implies && a == Tri::False) return Tri::True;
          Tri b = evalBool(*node.children[1], node, focus, frame);
          if (b == Tri::Error) return b;
          bool both = a != Tri::Empty && b != Tri::Empty;
          switch (node.op) {
            case BinaryOp::And:
              if (b == Tri::False) return Tri::False;
              return both ? Tri::True : Tri::Empty;
            case BinaryOp::Or:
              if (b == Tri::True) return Tri::True;
              return both ? Tri::False : Tri::Empty;
            case BinaryOp::Xor:
              return both ? (a != b ? Tri::True : Tri::False) : Tri::Empty;
            default:  // implies
              if (b == Tri::True) return Tri::True;
              return both ? Tri::False : Tri::Empty;
          }
        }
        case BinaryOp::Equal: case BinaryOp::NotEqual: case BinaryOp::Less: case BinaryOp::Greater:
        case BinaryOp::LessOrEqual: case BinaryOp::GreaterOrEqual: {
          auto x = integerWithoutCollecting(*node.children[0], focus);
          if (!x) {
            if (node.op == BinaryOp::Equal || node.op == BinaryOp::NotEqual) {
              if (Tri t = compareWithLiteral(node, focus); t != Tri::NotHandled) return t;
              return compareBooleans(node, focus, frame);
            }
            return Tri::NotHandled;
          }
          auto y = integerWithoutCollecting(*node.children[1], focus);
          if (!y) return Tri::NotHandled;
          bool r = false;
          switch (node.op) {
            case BinaryOp::Equal: r = *x == *y; break;
            case BinaryOp::NotEqual: r = *x != *y; break;
            case BinaryOp::Less: r = *x < *y; break;
            case BinaryOp::Greater: r = *x > *y; break;
            case BinaryOp::LessOrEqual: r = *x <= *y; break;
            default: r = *x >= *y; break;
          }
          return r ? Tri::True : Tri::False;
        }
        case BinaryOp::Equivalent: case BinaryOp::NotEquivalent: return compareBooleans(node, focus, frame);
        case BinaryOp::In: return inLiterals(node, focus);
        default: return Tri::NotHandled;
      }
    }
    if (node.kind != NodeKind::Function) return Tri::NotHandled;
    switch (node.function) {
      case FunctionId::Not: {
        Tri t;
        if (node.children[0]) {
          t = evalBool(*node.children[0], node, focus, frame);
          if (t == Tri::Error) return t;
        } else {
          auto b = boolean(node, focus);
          if (!b) return fail(std::move(b.error()));
          t = tri(*b);
        }
        return t == Tri::Empty ? Tri::Empty : t == Tri::True ? Tri::False : Tri::True;
      }
      case FunctionId::Empty: case FunctionId::Exists: {
        if (node.function == FunctionId::Exists && node.children.size() > 1) return allOrExists(node, focus, frame);
        bool empty;
        if (auto n = countWithoutCollecting(node.children[0].get(), focus)) {
          empty = *n == 0;
        } else if (node.children[0]) {
          auto c = eval(*node.children[0], focus, frame);
          if (!c) return fail(std::move(c.error()));
          empty = c->empty();
        } else {
          empty = focus.empty();
        }
        return (node.function == FunctionId::Empty) == empty ? Tri::True : Tri::False;
      }
      case FunctionId::All: return allOrExists(node, focus, frame);
      case FunctionId::HasValue: {
        const AstNode* target = node.children[0].get();
        if (target && target->navigation_chain && target->kind == NodeKind::Identifier && focus.size() == 1 && focus[0].node) {
          // `start.hasValue()`: the one element reached, without a collection.
          const fhir::Node* found = nullptr;
          size_t reached = 0;
          forEachStep(focus[0].node, *target, [&](const fhir::Node* m) {
            if (++reached == 1) found = m;
          });
          return reached == 1 && found && found->isPrimitive() && found->hasValue() ? Tri::True : Tri::False;
        }
        Collection storage;
        Focus input = focus;
        if (!evalTarget(node, focus, frame, storage, input)) return Tri::Error;
        bool has = input.size() == 1 && input[0].node && input[0].node->isPrimitive() && input[0].node->hasValue();
        return has ? Tri::True : Tri::False;
      }
      case FunctionId::StartsWith: case FunctionId::EndsWith: case FunctionId::ContainsString:
      case FunctionId::Matches: case FunctionId::MatchesFull:
        return stringTest(node, focus);
      default: return Tri::NotHandled;
    }
  }

  // --- comparisons with literals, without collections ---------------------------------------
  // ref-1 (`reference.startsWith('#')`), `type = 'reference'`, `type in ('boolean' | 'decimal' | ...)`:
  // one element compared with literal text. Each answers only when the element path reaches at most
  // one string-like node (what stringView() reads) or nothing; else the normal evaluation decides (and
  // reports the errors it reports).

  // The items `target` reaches from the focus (the focus itself without a target), counted (two
  // meaning "more than one"), and the first of them: a node, or nullptr for a primitive's `value`.
  // False when that needs the normal evaluation (not a path of element names, or system values).
  // as(T)/ofType(T) on the focus itself (`descendants().where(as(canonical) = '#')` in dom-3) keep
  // the focus nodes of that type, as typeOperation() does for function calls.
  bool reachAtMostOne(const AstNode* target, Focus focus, size_t& count, const fhir::Node*& first) const {
    count = 0;
    first = nullptr;
    if (target && target->kind == NodeKind::Function && !target->children[0] &&
        (target->function == FunctionId::As || target->function == FunctionId::OfType)) {
      for (const Item& item : focus) {
        if (!item.node) return false;
        if (!matchesType(item, target->type, true)) continue;
        if (count++ == 0) first = item.node;
      }
      count = std::min<size_t>(count, 2);
      return true;
    }
    if (!target) {
      count = std::min<size_t>(focus.size(), 2);
      if (count == 1 && !focus[0].node) return false;
      if (count == 1) first = focus[0].node;
      return true;
    }
    if (!target->navigation_chain) return false;
    auto reached = [&](const fhir::Node* m) {
      if (count++ == 0) first = m;
    };
    for (const Item& item : focus) {
      if (!item.node) {
        if (item.value.index() == 6) return false;  // a TypeSpecifier has elements (name, namespace)
        continue;
      }
      if (target->kind == NodeKind::Identifier) forEachStep(item.node, *target, reached);
      else forEachReached(target, item.node, reached);
    }
    count = std::min<size_t>(count, 2);
    return true;
  }

  // The text of the one string-like node `target` reaches, for tests of a single string. Without it,
  // `answer` is what the test gives instead: Empty when nothing is reached, NotHandled when the normal
  // evaluation must decide (several items, a primitive's value, not a string).
  std::optional<std::string_view> reachOneText(const AstNode* target, Focus focus, Tri& answer) const {
    size_t count;
    const fhir::Node* found;
    answer = Tri::NotHandled;
    if (!reachAtMostOne(target, focus, count, found)) return std::nullopt;
    if (count == 0) answer = Tri::Empty;
    if (count != 1 || !found) return std::nullopt;  // nothing, an error, or a primitive's value
    return detail::stringView(Item(found));  // no value, not a String, or not a primitive: NotHandled
  }

  static const std::string* stringLiteral(const AstNode& node) {
    if (node.kind != NodeKind::Literal || !node.has_value) return nullptr;
    return std::get_if<std::string>(&node.value);
  }

  // path = 'text', path != 'text' (either side may be the literal).
  Tri compareWithLiteral(const AstNode& node, Focus focus) const {
    const AstNode* path = node.children[0].get();
    const std::string* literal = stringLiteral(*node.children[1]);
    if (!literal) {
      literal = stringLiteral(*node.children[0]);
      path = node.children[1].get();
    }
    if (!literal) return Tri::NotHandled;
    size_t count;
    const fhir::Node* found;
    if (!reachAtMostOne(path, focus, count, found)) return Tri::NotHandled;
    bool negate = node.op == BinaryOp::NotEqual;
    if (count == 0) return Tri::Empty;
    if (count > 1) return negate ? Tri::True : Tri::False;  // sizes differ
    if (!found) return Tri::NotHandled;
    auto text = detail::stringView(Item(found));
    if (!text) return Tri::NotHandled;
    return (*text == *literal) != negate ? Tri::True : Tri::False;
  }

  // Does f(text) hold for a literal of the union tree `node` (('a' | 'b' | 'c'))? Empty literals add
  // nothing; false when the node is not such a tree (`all_literal`).
  template <class F>
  static bool anyLiteral(const AstNode& node, bool& all_literal, F&& f) {
    if (node.kind == NodeKind::Literal) {
      if (!node.has_value) return false;
      const auto* text = std::get_if<std::string>(&node.value);
      if (!text) {
        all_literal = false;
        return false;
      }
      return f(*text);
    }
    if (node.kind != NodeKind::Binary || node.op != BinaryOp::Union) {
      all_literal = false;
      return false;
    }
    return anyLiteral(*node.children[0], all_literal, f) || anyLiteral(*node.children[1], all_literal, f);
  }

  static bool isLiteralUnion(const AstNode& node) {
    bool all = true;
    anyLiteral(node, all, [](const std::string&) { return false; });
    return all;
  }

  // path in ('a' | 'b' | ...): membership among the literals, each compared as `=` does.
  Tri inLiterals(const AstNode& node, Focus focus) const {
    if (!isLiteralUnion(*node.children[1])) return Tri::NotHandled;
    Tri answer;
    auto text = reachOneText(node.children[0].get(), focus, answer);
    if (!text) return answer;
    bool all = true;
    return anyLiteral(*node.children[1], all, [&](const std::string& literal) { return *text == literal; }) ? Tri::True
                                                                                                           : Tri::False;
  }

  // path.startsWith('text'), endsWith(), contains() with a literal argument; matches()/matchesFull()
  // with a literal pattern compiled for regcomp() (name.matches('[A-Z]([A-Za-z0-9_]){0,254}')).
  Tri stringTest(const AstNode& node, Focus focus) const {
    const std::string* literal = node.children.size() == 2 ? stringLiteral(*node.children[1]) : nullptr;
    if (!literal) return Tri::NotHandled;
    bool regex = node.function == FunctionId::Matches || node.function == FunctionId::MatchesFull;
    if (regex && (!node.posix_regex || literal->size() > 1000)) return Tri::NotHandled;
    Tri answer;
    auto text = reachOneText(node.children[0].get(), focus, answer);
    if (!text) return answer;
    if (regex) return node.posix_regex->search(*text) ? Tri::True : Tri::False;
    bool r = node.function == FunctionId::StartsWith ? text->starts_with(*literal)
             : node.function == FunctionId::EndsWith ? text->ends_with(*literal)
                                                     : text->find(*literal) != std::string_view::npos;
    return r ? Tri::True : Tri::False;
  }

  // `=`, `!=`, `~`, `!~` between two operands that each give a single Boolean or empty
  // (`extension.exists() != value.exists()`): both evaluated as Booleans, no collections.
  Tri compareBooleans(const AstNode& node, Focus focus, const Frame& frame) {
    if (!yieldsBoolean(*node.children[0]) || !yieldsBoolean(*node.children[1])) return Tri::NotHandled;
    Tri a = evalBool(*node.children[0], node, focus, frame);
    if (a == Tri::Error) return a;
    Tri b = evalBool(*node.children[1], node, focus, frame);
    if (b == Tri::Error) return b;
    bool equivalence = node.op == BinaryOp::Equivalent || node.op == BinaryOp::NotEquivalent;
    bool negate = node.op == BinaryOp::NotEqual || node.op == BinaryOp::NotEquivalent;
    if (a == Tri::Empty || b == Tri::Empty) {
      if (!equivalence) return Tri::Empty;
      return ((a == b) != negate) ? Tri::True : Tri::False;
    }
    return ((a == b) != negate) ? Tri::True : Tri::False;
  }

  // exists(criteria) and all(criteria): the criteria on every item (no short cut, as function() does).
  Tri allOrExists(const AstNode& node, Focus focus, const Frame& frame) {
    Collection storage;
    Focus input = focus;
    if (!evalTarget(node, focus, frame, storage, input)) return Tri::Error;
    bool all = node.function == FunctionId::All;
    bool result = all;
    for (size_t k = 0; k < input.size(); ++k) {
      Frame inner;
      inner.this_item = &input[k];
      inner.index = static_cast<int64_t>(k);
      Tri b = evalBool(*node.children[1], node, Focus(&input[k], 1), inner);
      if (b == Tri::Error) return b;
      if (all && b != Tri::True) result = false;
      if (!all && b == Tri::True) result = true;
    }
    return result ? Tri::True : Tri::False;
  }

  // `descendants().name`, `descendants().as(T)`, `descendants().ofType(T)` (dom-3 asks for four of them
  // over the whole resource): each descendant is taken as it is reached instead of collecting all of
  // them first. Not for a descendants() whose value is kept for the evaluation (cache_result).
  static bool streamsDescendants(const AstNode& node) {
    return node.kind == NodeKind::Function && node.function == FunctionId::Descendants && !node.cache_result;
  }

  // f(d) for every descendant of the nodes `descendants_node`'s target gives, in the order
  // descendants() lists them, with its limit, error and nesting check.
  template <class F>
  tl::expected<void, Diagnostic> forEachDescendant(const AstNode& descendants_node, Focus focus, const Frame& frame, F&& f) {
    if (++depth_ > kMaxEvalDepth) {
      --depth_;
      return error(descendants_node, "evaluation nested too deeply");
    }
    Collection storage;
    Focus input = focus;
    if (descendants_node.children[0]) {
      auto t = eval(*descendants_node.children[0], focus, frame);
      if (!t) {
        --depth_;
        return tl::unexpected(std::move(t.error()));
      }
      storage = std::move(*t);
      input = storage;
    }
    --depth_;
    size_t reached = 0;
    auto walk = [&](auto&& self, const fhir::Node* n) -> bool {
      for (const fhir::Node* c = n->firstChild(); c; c = c->nextSibling()) {
        if (reached >= ctx_.max_repeat_items) return false;
        ++reached;
        f(c);
        if (!self(self, c)) return false;
      }
      return true;
    };
    for (const Item& item : input)
      if (item.node && !walk(walk, item.node))
        return error(descendants_node, "descendants() produced more than " + std::to_string(ctx_.max_repeat_items) + " items");
    return {};
  }

  Result function(const AstNode& node, Focus focus, const Frame& frame) {
    if ((node.function == FunctionId::As || node.function == FunctionId::OfType) && node.children[0] &&
        streamsDescendants(*node.children[0])) {
      // as() on a collection filters like ofType() (typeOperation), also for one item or none.
      Collection out;
      auto s = forEachDescendant(*node.children[0], focus, frame, [&](const fhir::Node* d) {
        Item item(d);
        if (matchesType(item, node.type, true)) out.push_back(std::move(item));
      });
      if (!s) return tl::unexpected(std::move(s.error()));
      return out;
    }
    if ((node.function == FunctionId::Count || node.function == FunctionId::Empty ||
         (node.function == FunctionId::Exists && node.children.size() == 1))) {
      if (auto n = countWithoutCollecting(node.children[0].get(), focus)) {
        if (node.function == FunctionId::Count) return one(SystemValue{static_cast<int64_t>(*n)});
        return boolResult(node.function == FunctionId::Empty ? *n == 0 : *n > 0);
      }
    }
    Collection input_storage;
    Focus input = focus;
    if (node.children[0]) {
      auto t = eval(*node.children[0], focus, frame);
      if (!t) return t;
      input_storage = std::move(*t);
      input = input_storage;
    }
    auto argOuter = [&](size_t i) { return eval(*node.children[i], focus, frame); };

    switch (node.function) {
      // --- existence
      case FunctionId::Empty: return boolResult(input.empty());
      case FunctionId::Exists: {
        if (node.children.size() == 1) return boolResult(!input.empty());
        bool any = false;
        if (auto s = perItemBoolean(node, input, [&](size_t, Tri b) { any = any || b == Tri::True; }); !s) return tl::unexpected(s.error());
        return boolResult(any);
      }
      case FunctionId::All: {
        bool all = true;
        if (auto s = perItemBoolean(node, input, [&](size_t, Tri b) { all = all && b == Tri::True; }); !s) return tl::unexpected(s.error());
        return boolResult(all);
      }
      case FunctionId::AllTrue: case FunctionId::AnyTrue: case FunctionId::AllFalse: case FunctionId::AnyFalse: {
        bool want = node.function == FunctionId::AllTrue || node.function == FunctionId::AnyTrue;
        bool all = node.function == FunctionId::AllTrue || node.function == FunctionId::AllFalse;
        bool result = all;
        for (const Item& item : input) {
          auto v = toSystemValue(item);
          if (!v || v->index() != 0) return error(node, "'" + node.name + "' needs Boolean items");
          bool matches = std::get<bool>(*v) == want;
          if (all && !matches) result = false;
          if (!all && matches) result = true;
        }
        return boolResult(result);
      }
      case FunctionId::SubsetOf: case FunctionId::SupersetOf: {
        auto other = argOuter(1);
        if (!other) return other;
        Focus sub = node.function == FunctionId::SubsetOf ? input : Focus(*other);
        Focus super = node.function == FunctionId::SubsetOf ? Focus(*other) : input;
        for (const Item& x : sub)
          if (std::none_of(super.begin(), super.end(), [&](const Item& y) { return sameItem(x, y); })) return boolResult(false);
        return boolResult(true);
      }
      case FunctionId::Count: return one(SystemValue{static_cast<int64_t>(input.size())});
      case FunctionId::Distinct: case FunctionId::IsDistinct: {
        Collection out = unionOf(input, Focus());  // hashed when it can be (bdl-7 over a Bundle's entries)
        if (node.function == FunctionId::IsDistinct) return boolResult(out.size() == input.size());
        return out;
      }
      // --- filtering and projection
      case FunctionId::Where: {
        Collection out;
        auto s = perItemBoolean(node, input, [&](size_t k, Tri b) {
          if (b == Tri::True) out.push_back(input[k]);
        });
        if (!s) return tl::unexpected(s.error());
        return out;
      }
      case FunctionId::Select: {
        Collection out;
        auto s = perItem(node, 1, input, [&](size_t, const Collection& r) -> tl::expected<void, Diagnostic> {
          out.insert(out.end(), r.begin(), r.end());
          return {};
        });
        if (!s) return tl::unexpected(s.error());
        return out;
      }
      case FunctionId::Repeat: {
        Collection out;
        Collection pending(input.begin(), input.end());
        while (!pending.empty()) {
          Collection next;
          auto s = perItem(node, 1, pending, [&](size_t, const Collection& r) -> tl::expected<void, Diagnostic> {
            for (const Item& item : r) {
              if (std::any_of(out.begin(), out.end(), [&](const Item& o) { return sameItem(o, item); })) continue;
              if (out.size() >= ctx_.max_repeat_items) return error(node, "repeat() produced more than " + std::to_string(ctx_.max_repeat_items) + " items");
              out.push_back(item);
              next.push_back(item);
            }
            return {};
          });
          if (!s) return tl::unexpected(s.error());
          pending = std::move(next);
        }
        return out;
      }
      case FunctionId::OfType: case FunctionId::Is: case FunctionId::As: return typeOperation(node, node.function, input);
      // --- subsetting
      case FunctionId::Single:
        if (input.size() > 1) return error(node, "single() on " + std::to_string(input.size()) + " items");
        return Collection(input.begin(), input.end());
      case FunctionId::First: return input.empty() ? Collection{} : Collection{input.front()};
      case FunctionId::Last: return input.empty() ? Collection{} : Collection{input.back()};
      case FunctionId::Tail: return input.size() <= 1 ? Collection{} : Collection(input.begin() + 1, input.end());
      case FunctionId::Skip: case FunctionId::Take: {
        auto n = argOuter(1);
        if (!n) return n;
        auto i = integer(node, *n);
        if (!i) return tl::unexpected(i.error());
        if (!*i) return node.function == FunctionId::Skip ? Collection(input.begin(), input.end()) : Collection{};
        int64_t k = std::clamp<int64_t>(**i, 0, static_cast<int64_t>(input.size()));
        if (node.function == FunctionId::Skip) return Collection(input.begin() + k, input.end());
        return Collection(input.begin(), input.begin() + k);
      }
      case FunctionId::Intersect: case FunctionId::Exclude: {
        auto other = argOuter(1);
        if (!other) return other;
        Collection out;
        for (const Item& x : input) {
          bool in_other = std::any_of(other->begin(), other->end(), [&](const Item& y) { return sameItem(x, y); });
          if (node.function == FunctionId::Exclude) {
            if (!in_other) out.push_back(x);
          } else if (in_other && std::none_of(out.begin(), out.end(), [&](const Item& o) { return sameItem(o, x); })) {
            out.push_back(x);
          }
        }
        return out;
      }
      case FunctionId::Union: case FunctionId::Combine: {
        auto other = argOuter(1);
        if (!other) return other;
        Collection out;
        if (node.function == FunctionId::Combine) {
          out.assign(input.begin(), input.end());
          out.insert(out.end(), other->begin(), other->end());
          return out;
        }
        return unionOf(input, *other);
      }
      case FunctionId::Iif: {
        if (input.size() > 1) return error(node, "iif() on a collection of " + std::to_string(input.size()) + " items");
        Frame inner = frame;
        Focus f = focus;
        if (node.children[0]) {
          f = input;
          inner.this_item = input.empty() ? nullptr : &input[0];
        }
        auto cond = eval(*node.children[1], f, inner);
        if (!cond) return cond;
        if (cond->size() == 1) {
          auto v = toSystemValue((*cond)[0]);
          if (!v || v->index() != 0) return error(node, "iif() criterion must be a Boolean");
        }
        auto b = boolean(node, *cond);
        if (!b) return tl::unexpected(b.error());
        if (*b && **b) return eval(*node.children[2], f, inner);
        if (node.children.size() > 3) return eval(*node.children[3], f, inner);
        return Collection{};
      }
      case FunctionId::Not: {
        auto b = boolean(node, input);
        if (!b) return tl::unexpected(b.error());
        if (!*b) return Collection{};
        return boolResult(!**b);
      }
      case FunctionId::Children: {
        Collection out;
        for (const Item& item : input)
          if (item.node)
            for (const fhir::Node* c : item.node->children()) out.emplace_back(c);
        return out;
      }
      case FunctionId::Descendants: {
        Collection out;
        bool overflow = false;
        for (const Item& item : input)
          if (item.node) addDescendants(item.node, out, overflow);
        if (overflow) return error(node, "descendants() produced more than " + std::to_string(ctx_.max_repeat_items) + " items");
        return out;
      }
      case FunctionId::Trace: {
        auto name = argOuter(1);
        if (!name) return name;
        if (ctx_.trace) {
          auto n = string(node, *name);
          std::string label = n && *n ? **n : std::string();
          if (node.children.size() > 2) {
            Collection projected;
            auto s = perItem(node, 2, input, [&](size_t, const Collection& r) -> tl::expected<void, Diagnostic> {
              projected.insert(projected.end(), r.begin(), r.end());
              return {};
            });
            if (!s) return tl::unexpected(s.error());
            ctx_.trace(label, projected);
          } else {
            ctx_.trace(label, Collection(input.begin(), input.end()));
          }
        }
        return Collection(input.begin(), input.end());
      }
      case FunctionId::Now: return one(SystemValue{now()});
      case FunctionId::Today: {
        Temporal t = now();
        t.kind = TemporalKind::Date;
        t.precision = TemporalPrecision::Day;
        t.has_timezone = false;
        return one(SystemValue{t});
      }
      case FunctionId::TimeOfDay: {
        Temporal t = now();
        t.kind = TemporalKind::Time;
        t.has_timezone = false;
        return one(SystemValue{t});
      }
      case FunctionId::DefineVariable: {
        auto name = argOuter(1);
        if (!name) return name;
        auto n = string(node, *name);
        if (!n) return tl::unexpected(n.error());
        if (!*n) return error(node, "defineVariable() needs a name");
        Collection value(input.begin(), input.end());
        if (node.children.size() > 2) {
          Frame inner = frame;
          inner.this_item = input.empty() ? nullptr : &input[0];
          auto v = eval(*node.children[2], input, inner);
          if (!v) return v;
          value = std::move(*v);
        }
        defined_.emplace_back(**n, std::move(value));
        return Collection(input.begin(), input.end());
      }
      case FunctionId::Aggregate: {
        Collection total;
        if (node.children.size() > 2) {
          auto init = argOuter(2);
          if (!init) return init;
          total = std::move(*init);
        }
        for (size_t k = 0; k < input.size(); ++k) {
          Frame inner;
          inner.this_item = &input[k];
          inner.index = static_cast<int64_t>(k);
          inner.total = &total;
          auto r = eval(*node.children[1], Focus(&input[k], 1), inner);
          if (!r) return r;
          total = std::move(*r);
        }
        return total;
      }
      case FunctionId::Type: {
        Collection out;
        for (const Item& item : input)
          out.emplace_back(SystemValue{item.node ? TypeSpecifier{"FHIR", std::string(item.node->type()->name)}
                                                 : TypeSpecifier{"System", std::string(systemTypeName(item.value))}});
        return out;
      }
      // --- FHIR additions
      case FunctionId::Extension: {
        auto url = argOuter(1);
        if (!url) return url;
        auto u = string(node, *url);
        if (!u) return tl::unexpected(u.error());
        Collection out;
        if (!*u) return out;
        for (const Item& item : input) {
          if (!item.node) continue;
          for (const fhir::Node* e : item.node->children("extension")) {
            const fhir::Node* eu = e->child("url");
            if (eu && eu->value() == **u) out.emplace_back(e);
          }
        }
        return out;
      }
      case FunctionId::HasValue:
        return boolResult(input.size() == 1 && input[0].node && input[0].node->isPrimitive() && input[0].node->hasValue());
      case FunctionId::GetValue: {
        if (input.size() == 1 && input[0].node && input[0].node->isPrimitive() && input[0].node->hasValue()) {
          auto v = toSystemValue(input[0]);
          if (v) return one(std::move(*v));
        }
        return Collection{};
      }
      case FunctionId::Resolve: {
        Collection out;
        for (const Item& item : input)
          if (const fhir::Node* r = resolveReference(item)) out.emplace_back(r);
        return out;
      }
      case FunctionId::HtmlChecks: {
        // Narrative rules (http://hl7.org/fhir/R4/narrative.html#rules): no active content.
        for (const Item& item : input) {
          std::string_view text;
          std::string storage;
          if (item.node && item.node->isPrimitive()) {
            text = item.node->value();
          } else if (auto v = toSystemValue(item); v && v->index() == 1) {
            storage = std::get<std::string>(*v);
            text = storage;
          } else {
            continue;
          }
          if (!narrativeIsSafe(text)) return boolResult(false);
        }
        return boolResult(true);
      }
      case FunctionId::ConformsTo: {
        auto url = argOuter(1);
        if (!url) return url;
        auto u = string(node, *url);
        if (!u) return tl::unexpected(u.error());
        if (input.empty() || !*u) return Collection{};
        if (input.size() > 1) return error(node, "conformsTo() needs a single resource");
        if (!input[0].node) return boolResult(false);
        ExternalHooks defaults;
        const ExternalHooks& hooks = ctx_.hooks ? *ctx_.hooks : defaults;
        auto r = hooks.conformsTo(*input[0].node, **u);
        if (!r) return error(node, r.error());
        return boolResult(*r);
      }
      case FunctionId::MemberOf: {
        auto url = argOuter(1);
        if (!url) return url;
        auto u = string(node, *url);
        if (!u) return tl::unexpected(u.error());
        if (input.empty() || !*u) return Collection{};
        if (input.size() > 1) return error(node, "memberOf() needs a single item");
        ExternalHooks defaults;
        const ExternalHooks& hooks = ctx_.hooks ? *ctx_.hooks : defaults;
        auto r = hooks.memberOf(input[0], **u);
        if (!r) return error(node, r.error());
        return boolResult(*r);
      }
      case FunctionId::Subsumes: case FunctionId::SubsumedBy: {
        auto other = argOuter(1);
        if (!other) return other;
        return subsumption(node, input, *other);
      }
      case FunctionId::ElementDefinition: {
        ExternalHooks defaults;
        const ExternalHooks& hooks = ctx_.hooks ? *ctx_.hooks : defaults;
        Collection out;
        for (const Item& item : input) {
          if (!item.node) continue;  // system values have no definition
          auto d = hooks.elementDefinition(*item.node);
          if (!d) return error(node, d.error());
          if (*d) out.emplace_back(*d);
        }
        return out;
      }
      case FunctionId::Slice: {
        auto structure = argOuter(1);
        if (!structure) return structure;
        auto url = string(node, *structure);
        if (!url) return tl::unexpected(url.error());
        auto name_arg = argOuter(2);
        if (!name_arg) return name_arg;
        auto name = string(node, *name_arg);
        if (!name) return tl::unexpected(name.error());
        if (!*url || !*name) return error(node, "slice() needs a structure URL and a slice name");
        ExternalHooks defaults;
        const ExternalHooks& hooks = ctx_.hooks ? *ctx_.hooks : defaults;
        Collection out;
        for (const Item& item : input) {
          if (!item.node) continue;
          auto in = hooks.inSlice(*item.node, **url, **name);
          if (!in) return error(node, in.error());
          if (*in) out.push_back(item);
        }
        return out;
      }
      case FunctionId::CheckModifiers: {
        // The input passes when every modifierExtension is one of the listed URLs (comma-separated).
        Collection list;
        if (node.children.size() > 1) {
          auto l = argOuter(1);
          if (!l) return l;
          list = std::move(*l);
        }
        std::vector<std::string> texts;
        for (const Item& u : list) {
          auto v = toSystemValue(u);
          if (!v || v->index() != 1) return error(node, "checkModifiers() takes the allowed modifier URLs as strings");
          texts.push_back(std::get<std::string>(*v));
        }
        std::vector<std::string_view> allowed;
        for (const std::string& text : texts) {
          std::string_view rest = text;
          while (!rest.empty()) {
            size_t comma = rest.find(',');
            std::string_view one_url = rest.substr(0, comma);
            while (!one_url.empty() && one_url.front() == ' ') one_url.remove_prefix(1);
            while (!one_url.empty() && one_url.back() == ' ') one_url.remove_suffix(1);
            if (!one_url.empty()) allowed.push_back(one_url);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
          }
        }
        for (const Item& item : input) {
          if (!item.node || item.node->isPrimitive()) continue;
          for (const fhir::Node* m : childrenNamed(item.node, "modifierExtension")) {
            const fhir::Node* u = m->child("url");
            std::string_view url = u ? u->value() : std::string_view();
            if (std::find(allowed.begin(), allowed.end(), url) == allowed.end())
              return error(node, "checkModifiers(): modifier extension '" + std::string(url) + "' on " + fhir::pathOf(*item.node) +
                                     " is not one of the allowed modifiers");
          }
        }
        return Collection(input.begin(), input.end());
      }
      default: return valueFunction(node, input, focus, frame);
    }
  }

  // The (system, code) pairs of a Coding, a CodeableConcept (its codings) or a code value.
  static void codingsOf(const Item& item, std::vector<std::pair<std::string_view, std::string_view>>& out) {
    if (!item.node) {
      if (const auto* s = std::get_if<std::string>(&item.value)) out.emplace_back(std::string_view(), *s);
      return;
    }
    const fhir::Node* n = item.node;
    if (n->isPrimitive()) {
      if (n->hasValue()) out.emplace_back(std::string_view(), n->value());
      return;
    }
    std::string_view type = n->type()->name;
    if (type == "CodeableConcept") {
      for (const fhir::Node* c : childrenNamed(n, "coding")) codingsOf(Item(c), out);
    } else if (type == "Coding") {
      const fhir::Node* system = n->child("system");
      const fhir::Node* code = n->child("code");
      if (code && code->hasValue()) out.emplace_back(system ? system->value() : std::string_view(), code->value());
    }
  }

  // subsumes(code) / subsumedBy(code) (http://hl7.org/fhir/R4/fhirpath.html#functions): true when some
  // coding of the input is equal to, or an ancestor (subsumes) / a descendant (subsumedBy) of, some
  // coding of the argument in the same code system. Codings from different systems are not related:
  // when no pair shares a system the question cannot be answered (an error, as the specification asks).
  Result subsumption(const AstNode& node, Focus input, Focus other) {
    if (input.empty() || other.empty()) return Collection{};
    if (input.size() > 1 || other.size() > 1) return error(node, "'" + node.name + "' needs single codes");
    std::vector<std::pair<std::string_view, std::string_view>> a, b;
    codingsOf(input[0], a);
    codingsOf(other[0], b);
    if (a.empty() || b.empty()) return Collection{};
    ExternalHooks defaults;
    const ExternalHooks& hooks = ctx_.hooks ? *ctx_.hooks : defaults;
    bool comparable = false;
    for (const auto& [system_a, code_a] : a)
      for (const auto& [system_b, code_b] : b) {
        if (system_a != system_b) continue;
        comparable = true;
        if (code_a == code_b) return boolResult(true);
        if (system_a.empty()) continue;  // bare codes: only equality is known
        auto r = node.function == FunctionId::Subsumes ? hooks.subsumes(system_a, code_a, code_b) : hooks.subsumes(system_a, code_b, code_a);
        if (!r) return error(node, r.error());
        if (*r) return boolResult(true);
      }
    if (!comparable) return error(node, "'" + node.name + "': the codes are from different code systems");
    return boolResult(false);
  }

  // Conversion, string and math functions: on a single input value.
  Result valueFunction(const AstNode& node, Focus input, Focus focus, const Frame& frame) {
    auto argOuter = [&](size_t i) { return eval(*node.children[i], focus, frame); };
    if (node.function == FunctionId::Sort) {
      return sortFunction(node, input);
    }
    if (node.function == FunctionId::Join) {
      std::string sep;
      if (node.children.size() > 1) {
        auto s = argOuter(1);
        if (!s) return s;
        auto str = string(node, *s);
        if (!str) return tl::unexpected(str.error());
        if (*str) sep = **str;
      }
      std::string out;
      for (size_t i = 0; i < input.size(); ++i) {
        auto v = toSystemValue(input[i]);
        if (!v) continue;
        if (i) out += sep;
        out += toText(*v);
      }
      return one(SystemValue{out});
    }
    if (node.function == FunctionId::Comparable) {
      auto other = argOuter(1);
      if (!other) return other;
      auto a = single(node, input);
      auto b = single(node, *other);
      if (!a || !b) return tl::unexpected(!a ? a.error() : b.error());
      if (!*a || !*b) return Collection{};
      if ((*a)->index() != 5 || (*b)->index() != 5) return error(node, "comparable() needs quantities");
      auto ca = detail::canonicalize(std::get<Quantity>(**a)), cb = detail::canonicalize(std::get<Quantity>(**b));
      return boolResult(ca && cb && ca->dims == cb->dims);
    }
    auto value = single(node, input);
    if (!value) {
      // Conversion functions on multiple items are errors; on complex nodes they yield empty.
      return tl::unexpected(value.error());
    }
    bool converts = false;
    switch (node.function) {
      case FunctionId::ConvertsToBoolean: case FunctionId::ConvertsToInteger: case FunctionId::ConvertsToDecimal:
      case FunctionId::ConvertsToString: case FunctionId::ConvertsToDate: case FunctionId::ConvertsToDateTime:
      case FunctionId::ConvertsToTime: case FunctionId::ConvertsToQuantity:
        converts = true;
        break;
      default: break;
    }
    if (!*value) return Collection{};
    const SystemValue& v = **value;
    auto result = [&](std::optional<SystemValue> r) -> Result {
      if (converts) return boolResult(r.has_value());
      if (!r) return Collection{};
      return one(std::move(*r));
    };
    const std::string* str = std::get_if<std::string>(&v);
    switch (node.function) {
      case FunctionId::ToBoolean: case FunctionId::ConvertsToBoolean: {
        if (v.index() == 0) return result(v);
        if (auto* i = std::get_if<int64_t>(&v)) return result(*i == 1 ? std::optional<SystemValue>(true) : *i == 0 ? std::optional<SystemValue>(false) : std::nullopt);
        if (auto* d = std::get_if<Decimal>(&v)) {
          if (compare(*d, Decimal::fromInt(1)) == 0) return result(SystemValue{true});
          if (compare(*d, Decimal::fromInt(0)) == 0) return result(SystemValue{false});
          return result(std::nullopt);
        }
        if (str) {
          std::string l = detail::normalizeWhitespaceLower(*str);
          if (l == "true" || l == "t" || l == "yes" || l == "y" || l == "1" || l == "1.0") return result(SystemValue{true});
          if (l == "false" || l == "f" || l == "no" || l == "n" || l == "0" || l == "0.0") return result(SystemValue{false});
        }
        return result(std::nullopt);
      }
      case FunctionId::ToInteger: case FunctionId::ConvertsToInteger: {
        if (v.index() == 2) return result(v);
        if (v.index() == 0) return result(SystemValue{static_cast<int64_t>(std::get<bool>(v) ? 1 : 0)});
        if (str) {
          std::string_view s = *str;
          size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
          if (i < s.size() && s.size() - i <= 10 && std::all_of(s.begin() + static_cast<long>(i), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            long long x = std::stoll(std::string(s));
            if (x >= -2147483648LL && x <= 2147483647LL) return result(SystemValue{static_cast<int64_t>(x)});
          }
        }
        return result(std::nullopt);
      }
      case FunctionId::ToDecimal: case FunctionId::ConvertsToDecimal: {
        if (v.index() == 3) return result(v);
        if (auto* i = std::get_if<int64_t>(&v)) return result(SystemValue{Decimal::fromInt(*i)});
        if (v.index() == 0) return result(SystemValue{Decimal::fromInt(std::get<bool>(v) ? 1 : 0)});
        if (str) {
          bool plain = !str->empty() && str->find_first_of("eE") == std::string::npos;
          if (auto d = Decimal::parse(*str); d && plain) return result(SystemValue{*d});
        }
        return result(std::nullopt);
      }
      case FunctionId::ToString: case FunctionId::ConvertsToString:
        return result(SystemValue{toText(v)});
      case FunctionId::ToDate: case FunctionId::ConvertsToDate: {
        if (auto* t = std::get_if<Temporal>(&v)) {
          if (t->kind == TemporalKind::Time) return result(std::nullopt);
          Temporal d = *t;
          d.kind = TemporalKind::Date;
          if (d.precision > TemporalPrecision::Day) d.precision = TemporalPrecision::Day;
          d.has_timezone = false;
          return result(SystemValue{d});
        }
        if (str) {
          if (auto t = Temporal::parse(*str, TemporalKind::Date)) return result(SystemValue{*t});
          if (auto t = Temporal::parse(*str, TemporalKind::DateTime)) {
            t->kind = TemporalKind::Date;
            if (t->precision > TemporalPrecision::Day) t->precision = TemporalPrecision::Day;
            return result(SystemValue{*t});
          }
        }
        return result(std::nullopt);
      }
      case FunctionId::ToDateTime: case FunctionId::ConvertsToDateTime: {
        if (auto* t = std::get_if<Temporal>(&v)) {
          if (t->kind == TemporalKind::Time) return result(std::nullopt);
          Temporal d = *t;
          d.kind = TemporalKind::DateTime;
          return result(SystemValue{d});
        }
        if (str)
          if (auto t = Temporal::parse(*str, TemporalKind::DateTime)) return result(SystemValue{*t});
        return result(std::nullopt);
      }
      case FunctionId::ToTime: case FunctionId::ConvertsToTime: {
        if (auto* t = std::get_if<Temporal>(&v)) return result(t->kind == TemporalKind::Time ? std::optional<SystemValue>(v) : std::nullopt);
        if (str)
          if (auto t = Temporal::parse(*str, TemporalKind::Time)) return result(SystemValue{*t});
        return result(std::nullopt);
      }
      case FunctionId::ToQuantity: case FunctionId::ConvertsToQuantity: {
        std::optional<Quantity> q;
        if (auto* i = std::get_if<int64_t>(&v)) q = Quantity{Decimal::fromInt(*i), "1"};
        else if (auto* d = std::get_if<Decimal>(&v)) q = Quantity{*d, "1"};
        else if (auto* qq = std::get_if<Quantity>(&v)) q = *qq;
        else if (v.index() == 0) q = Quantity{Decimal::fromInt(std::get<bool>(v) ? 1 : 0), "1"};
        else if (str) q = parseQuantityText(*str);
        if (q && node.children.size() > 1) {
          auto unit_arg = argOuter(1);
          if (!unit_arg) return unit_arg;
          auto u = string(node, *unit_arg);
          if (!u) return tl::unexpected(u.error());
          if (*u && **u != q->unit) {
            auto from = detail::canonicalize(*q);
            auto to = detail::canonicalize(Quantity{Decimal::fromInt(1), **u});
            if (!from || !to || from->dims != to->dims) q.reset();
            else if (auto converted = from->value.div(to->value)) q = Quantity{converted->normalized(), **u};
            else q.reset();
          }
        }
        if (!q) return result(std::nullopt);
        return result(SystemValue{*q});
      }
      default: break;
    }
    // String functions.
    switch (node.function) {
      case FunctionId::IndexOf: case FunctionId::Substring: case FunctionId::StartsWith: case FunctionId::EndsWith:
      case FunctionId::ContainsString: case FunctionId::Upper: case FunctionId::Lower: case FunctionId::Replace:
      case FunctionId::Matches: case FunctionId::MatchesFull: case FunctionId::ReplaceMatches: case FunctionId::Length: case FunctionId::ToChars:
      case FunctionId::Trim: case FunctionId::Split: case FunctionId::Encode: case FunctionId::Decode:
      case FunctionId::EscapeFn: case FunctionId::UnescapeFn:
        if (!str) return error(node, "'" + node.name + "' needs a String, got " + std::string(systemTypeName(v)));
        return stringFunction(node, *str, focus, frame);
      default: break;
    }
    return mathFunction(node, v, focus, frame);
  }

  static std::optional<Quantity> parseQuantityText(const std::string& s) {
    size_t sp = s.find(' ');
    std::string number = sp == std::string::npos ? s : s.substr(0, sp);
    auto d = Decimal::parse(number);
    if (!d || number.find_first_of("eE") != std::string::npos) return std::nullopt;
    if (sp == std::string::npos) return Quantity{*d, "1"};
    std::string unit = s.substr(sp + 1);
    while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
    if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'') return Quantity{*d, unit.substr(1, unit.size() - 2)};
    if (detail::isCalendarKeyword(unit)) return Quantity{*d, unit};
    return std::nullopt;
  }

  Result stringFunction(const AstNode& node, const std::string& s, Focus focus, const Frame& frame) {
    auto strArg = [&](size_t i) -> tl::expected<std::optional<std::string>, Diagnostic> {
      auto a = eval(*node.children[i], focus, frame);
      if (!a) return tl::unexpected(a.error());
      return string(node, *a);
    };
    auto intArg = [&](size_t i) -> tl::expected<std::optional<int64_t>, Diagnostic> {
      auto a = eval(*node.children[i], focus, frame);
      if (!a) return tl::unexpected(a.error());
      return integer(node, *a);
    };
    switch (node.function) {
      case FunctionId::IndexOf: {
        auto a = strArg(1);
        if (!a) return tl::unexpected(a.error());
        if (!*a) return Collection{};
        size_t p = s.find(**a);
        return one(SystemValue{p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(p)});
      }
      case FunctionId::Substring: {
        auto start = intArg(1);
        if (!start) return tl::unexpected(start.error());
        if (!*start || **start < 0 || static_cast<size_t>(**start) >= s.size()) return Collection{};
        size_t len = std::string::npos;
        if (node.children.size() > 2) {
          auto l = intArg(2);
          if (!l) return tl::unexpected(l.error());
          if (*l) len = **l < 0 ? 0 : static_cast<size_t>(**l);
        }
        return one(SystemValue{s.substr(static_cast<size_t>(**start), len)});
      }
      case FunctionId::StartsWith: case FunctionId::EndsWith: case FunctionId::ContainsString: {
        auto a = strArg(1);
        if (!a) return tl::unexpected(a.error());
        if (!*a) return Collection{};
        const std::string& x = **a;
        bool r = node.function == FunctionId::StartsWith ? s.compare(0, x.size(), x) == 0 && s.size() >= x.size()
                 : node.function == FunctionId::EndsWith ? s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0
                                                         : s.find(x) != std::string::npos;
        return boolResult(r);
      }
      case FunctionId::Upper: case FunctionId::Lower: {
        std::string r = s;
        for (char& c : r) c = static_cast<char>(node.function == FunctionId::Upper ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        return one(SystemValue{r});
      }
      case FunctionId::Replace: {
        auto pattern = strArg(1);
        if (!pattern) return tl::unexpected(pattern.error());
        auto subst = strArg(2);
        if (!subst) return tl::unexpected(subst.error());
        if (!*pattern || !*subst) return Collection{};
        const std::string& p = **pattern;
        std::string out;
        if (p.empty()) {
          out = **subst;
          for (char c : s) {
            out.push_back(c);
            out += **subst;
          }
          return one(SystemValue{out});
        }
        size_t pos = 0;
        for (;;) {
          size_t f = s.find(p, pos);
          if (f == std::string::npos) break;
          out.append(s, pos, f - pos);
          out += **subst;
          pos = f + p.size();
        }
        out.append(s, pos, std::string::npos);
        return one(SystemValue{out});
      }
      case FunctionId::Matches: case FunctionId::MatchesFull: case FunctionId::ReplaceMatches: {
        auto pattern = strArg(1);
        if (!pattern) return tl::unexpected(pattern.error());
        if (!*pattern) return Collection{};
        if ((*pattern)->size() > 1000) return error(node, "regular expression too long");
        if (node.posix_regex && node.function != FunctionId::ReplaceMatches) return boolResult(node.posix_regex->search(s));
        std::shared_ptr<const std::regex> compiled = node.regex;
        if (!compiled && node.function != FunctionId::ReplaceMatches) {
          // A pattern computed at run time: the non-backtracking matcher when it can read it.
          if (auto posix = detail::PosixRegex::compile(**pattern, node.function == FunctionId::MatchesFull)) {
            return boolResult(posix->search(s));
          }
        }
        // std::regex backtracks (and recurses per character): only patterns that cannot take
        // exponential time, on bounded input.
        if (detail::regexMayBacktrackExponentially(**pattern)) {
          return error(node, "regular expression not supported: '" + **pattern + "' repeats a group holding a "
                       "quantifier or an alternative (or has a back-reference), which could take exponential time");
        }
        if (s.size() > kMaxBacktrackingRegexInput) {
          return error(node, "string of " + std::to_string(s.size()) + " characters too long for regular expression '" +
                       **pattern + "' (at most " + std::to_string(kMaxBacktrackingRegexInput) + " outside the subset "
                       "matched without backtracking)");
        }
        if (!compiled) {
          try {
            compiled = std::make_shared<const std::regex>(detail::singleLineRegex(**pattern), std::regex::ECMAScript);
          } catch (const std::regex_error&) {
            return error(node, "invalid regular expression '" + **pattern + "'");
          }
        }
        const std::regex& re = *compiled;
        if (node.function == FunctionId::Matches || node.function == FunctionId::MatchesFull) {
          try {
            return boolResult(node.function == FunctionId::Matches ? std::regex_search(s, re) : std::regex_match(s, re));
          } catch (const std::regex_error&) {
            return error(node, "regular expression too complex");
          }
        }
        auto subst = strArg(2);
        if (!subst) return tl::unexpected(subst.error());
        if (!*subst) return Collection{};
        if ((*pattern)->empty()) return one(SystemValue{s});
        try {
          return one(SystemValue{std::regex_replace(s, re, **subst)});
        } catch (const std::regex_error&) {
          return error(node, "regular expression too complex");
        }
      }
      case FunctionId::Length: return one(SystemValue{static_cast<int64_t>(s.size())});
      case FunctionId::ToChars: {
        Collection out;
        for (char c : s) out.emplace_back(SystemValue{std::string(1, c)});
        return out;
      }
      case FunctionId::Trim: {
        size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
        return one(SystemValue{b == std::string::npos ? std::string() : s.substr(b, e - b + 1)});
      }
      case FunctionId::Split: {
        auto sep = strArg(1);
        if (!sep) return tl::unexpected(sep.error());
        if (!*sep) return Collection{};
        Collection out;
        if ((*sep)->empty()) {
          for (char c : s) out.emplace_back(SystemValue{std::string(1, c)});
          return out;
        }
        size_t pos = 0;
        for (;;) {
          size_t f = s.find(**sep, pos);
          out.emplace_back(SystemValue{s.substr(pos, f == std::string::npos ? std::string::npos : f - pos)});
          if (f == std::string::npos) break;
          pos = f + (*sep)->size();
        }
        return out;
      }
      default: break;
    }
    auto fmt = strArg(1);
    if (!fmt) return tl::unexpected(fmt.error());
    if (!*fmt) return Collection{};
    return encoding(node, s, **fmt);
  }

  Result encoding(const AstNode& node, const std::string& s, const std::string& format) {
    static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bool decode = node.function == FunctionId::Decode || node.function == FunctionId::UnescapeFn;
    if (format == "hex") {
      std::string out;
      if (!decode) {
        for (unsigned char c : s) {
          static const char* kHex = "0123456789abcdef";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        }
      } else {
        if (s.size() % 2) return Collection{};
        for (size_t i = 0; i < s.size(); i += 2) out.push_back(static_cast<char>(std::stoi(s.substr(i, 2), nullptr, 16)));
      }
      return one(SystemValue{out});
    }
    if (format == "base64" || format == "urlbase64") {
      std::string alphabet = kB64;
      if (format == "urlbase64") alphabet[62] = '-', alphabet[63] = '_';
      std::string out;
      if (!decode) {
        size_t i = 0;
        for (; i + 2 < s.size(); i += 3) {
          unsigned v = (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
          for (int k = 18; k >= 0; k -= 6) out.push_back(alphabet[(v >> k) & 63]);
        }
        if (i < s.size()) {
          unsigned v = static_cast<unsigned char>(s[i]) << 16;
          if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
          out.push_back(alphabet[(v >> 18) & 63]);
          out.push_back(alphabet[(v >> 12) & 63]);
          out.push_back(i + 1 < s.size() ? alphabet[(v >> 6) & 63] : '=');
          out.push_back('=');
        }
      } else {
        unsigned v = 0;
        int bits = 0;
        for (char c : s) {
          if (c == '=') break;
          size_t p = alphabet.find(c);
          if (p == std::string::npos) return Collection{};
          v = (v << 6) | static_cast<unsigned>(p);
          bits += 6;
          if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((v >> bits) & 0xFF));
          }
        }
      }
      return one(SystemValue{out});
    }
    if (format == "html" || format == "json") {
      std::string out;
      if (!decode) {
        for (char c : s) {
          if (format == "html") {
            if (c == '<') out += "&lt;"; else if (c == '>') out += "&gt;"; else if (c == '&') out += "&amp;"; else if (c == '"') out += "&quot;"; else out.push_back(c);
          } else {
            if (c == '"') out += "\\\""; else if (c == '\\') out += "\\\\"; else if (c == '\n') out += "\\n"; else if (c == '\t') out += "\\t"; else if (c == '\r') out += "\\r"; else out.push_back(c);
          }
        }
      } else if (format == "html") {
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i] == '&') {
            static const std::pair<const char*, char> kEnt[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
            bool done = false;
            for (const auto& [e, c] : kEnt)
              if (s.compare(i, std::strlen(e), e) == 0) {
                out.push_back(c);
                i += std::strlen(e) - 1;
                done = true;
                break;
              }
            if (done) continue;
          }
          out.push_back(s[i]);
        }
      } else {
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i] == '\\' && i + 1 < s.size()) {
            char e = s[++i];
            out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
          } else {
            out.push_back(s[i]);
          }
        }
      }
      return one(SystemValue{out});
    }
    return error(node, "unknown encoding '" + format + "'");
  }

  Result mathFunction(const AstNode& node, const SystemValue& v, Focus focus, const Frame& frame) {
    const auto* i = std::get_if<int64_t>(&v);
    const auto* d = std::get_if<Decimal>(&v);
    const auto* q = std::get_if<Quantity>(&v);
    auto fromDouble = [&](double x) -> Result {
      auto r = Decimal::fromDouble(x);
      if (!r) return Collection{};
      return one(SystemValue{*r});
    };
    double x = i ? static_cast<double>(*i) : d ? d->toDouble() : 0;
    switch (node.function) {
      case FunctionId::Abs:
        if (i) return one(SystemValue{*i < 0 ? -*i : *i});
        if (d) return one(SystemValue{d->isNegative() ? d->negate() : *d});
        if (q) return one(SystemValue{Quantity{q->value.isNegative() ? q->value.negate() : q->value, q->unit}});
        break;
      case FunctionId::Ceiling:
        if (i) return one(v);
        if (d) return one(SystemValue{static_cast<int64_t>(d->ceiling().mantissa())});
        break;
      case FunctionId::Floor:
        if (i) return one(v);
        if (d) return one(SystemValue{static_cast<int64_t>(d->floor().mantissa())});
        break;
      case FunctionId::Truncate:
        if (i) return one(v);
        if (d) return one(SystemValue{static_cast<int64_t>(d->truncateToInteger().mantissa())});
        break;
      case FunctionId::Round: {
        int64_t precision = 0;
        if (node.children.size() > 1) {
          auto p = eval(*node.children[1], focus, frame);
          if (!p) return p;
          auto pi = integer(node, *p);
          if (!pi) return tl::unexpected(pi.error());
          if (*pi) precision = **pi;
          if (precision < 0) return error(node, "round() precision must be >= 0");
        }
        if (i) return one(SystemValue{Decimal::fromInt(*i)});
        if (d) return one(SystemValue{d->rescale(static_cast<int>(std::min<int64_t>(precision, Decimal::kMaxScale)))});
        break;
      }
      case FunctionId::Exp: if (i || d) return fromDouble(std::exp(x)); break;
      case FunctionId::Ln: if (i || d) return x <= 0 ? Result(Collection{}) : fromDouble(std::log(x)); break;
      case FunctionId::Sqrt: if (i || d) return x < 0 ? Result(Collection{}) : fromDouble(std::sqrt(x)); break;
      case FunctionId::Log: case FunctionId::Power: {
        auto a = eval(*node.children[1], focus, frame);
        if (!a) return a;
        auto av = single(node, *a);
        if (!av) return tl::unexpected(av.error());
        if (!*av) return Collection{};
        const auto* ai = std::get_if<int64_t>(&**av);
        const auto* ad = std::get_if<Decimal>(&**av);
        if (!(i || d) || !(ai || ad)) break;
        double y = ai ? static_cast<double>(*ai) : ad->toDouble();
        if (node.function == FunctionId::Log) {
          if (x <= 0 || y <= 0 || y == 1) return Collection{};
          return fromDouble(std::log(x) / std::log(y));
        }
        if (i && ai && *ai >= 0) {
          double r = std::pow(x, y);
          if (std::fabs(r) > 2147483647.0) return Collection{};
          return one(SystemValue{static_cast<int64_t>(r)});
        }
        double r = std::pow(x, y);
        if (std::isnan(r)) return Collection{};
        return fromDouble(r);
      }
      case FunctionId::Precision: {
        if (d) return one(SystemValue{static_cast<int64_t>(d->scale())});
        if (const auto* t = std::get_if<Temporal>(&v)) {
          static const int kDigits[] = {4, 6, 8, 10, 12, 14, 17};
          int digits = kDigits[static_cast<int>(t->precision)];
          if (t->kind == TemporalKind::Time) digits -= 8;
          return one(SystemValue{static_cast<int64_t>(digits)});
        }
        if (i) return one(SystemValue{int64_t{0}});
        break;
      }
      case FunctionId::LowBoundary: case FunctionId::HighBoundary: return boundary(node, v, focus, frame);
      default: break;
    }
    return error(node, "'" + node.name + "' cannot be applied to " + std::string(systemTypeName(v)));
  }

  Result boundary(const AstNode& node, const SystemValue& v, Focus focus, const Frame& frame) {
    bool high = node.function == FunctionId::HighBoundary;
    std::optional<int64_t> precision;
    if (node.children.size() > 1) {
      auto p = eval(*node.children[1], focus, frame);
      if (!p) return p;
      auto pi = integer(node, *p);
      if (!pi) return tl::unexpected(pi.error());
      precision = *pi;
    }
    auto decimalBoundary = [&](const Decimal& d) -> std::optional<Decimal> {
      int p = static_cast<int>(precision.value_or(8));
      if (p < 0 || p > Decimal::kMaxScale) return std::nullopt;
      // The value stands for an interval of half a unit in its last written digit either side.
      Decimal half = *Decimal::parse("0." + std::string(static_cast<size_t>(d.scale()), '0') + "5");
      auto r = high ? d.add(half) : d.sub(half);
      if (!r) return std::nullopt;
      if (p >= r->scale()) return r->rescale(p);
      // Shortening: round when moving away from zero is the outward direction (upper bound of a
      // positive value, lower bound of a negative one), else cut towards zero; this is what the
      // suite's LowBoundary/HighBoundary cases expect.
      bool outward = high != r->isNegative();
      if (outward) return r->rescale(p);
      std::string text = r->toString();
      size_t dot = text.find('.');
      std::string kept = p == 0 ? text.substr(0, dot) : text.substr(0, dot + 1 + static_cast<size_t>(p));
      return Decimal::parse(kept);
    };
    if (const auto* i = std::get_if<int64_t>(&v)) {
      auto r = decimalBoundary(Decimal::fromInt(*i));
      if (!r) return Collection{};
      return one(SystemValue{*r});
    }
    if (const auto* d = std::get_if<Decimal>(&v)) {
      auto r = decimalBoundary(*d);
      if (!r) return Collection{};
      return one(SystemValue{*r});
    }
    if (const auto* q = std::get_if<Quantity>(&v)) {
      auto r = decimalBoundary(q->value);
      if (!r) return Collection{};
      return one(SystemValue{Quantity{*r, q->unit}});
    }
    if (const auto* t0 = std::get_if<Temporal>(&v)) {
      Temporal t = *t0;
      // An hour-only time is not a FHIR value: read T08 as T08:00.
      if (t.precision == TemporalPrecision::Hour) t.precision = TemporalPrecision::Minute;
      int p = static_cast<int>(precision.value_or(t.kind == TemporalKind::Time ? 9 : t.kind == TemporalKind::Date ? 8 : 17));
      static const int kDigits[] = {4, 6, 8, 10, 12, 14, 17};
      TemporalPrecision target = TemporalPrecision::Year;
      bool ok = false;
      for (int k = 0; k < 7; ++k) {
        int digits = kDigits[k] - (t.kind == TemporalKind::Time ? 8 : 0);
        if (digits == p) {
          target = static_cast<TemporalPrecision>(k);
          ok = true;
        }
      }
      if (!ok) return Collection{};
      if (t.precision < TemporalPrecision::Month) t.month = high ? 12 : 1;
      if (t.precision < TemporalPrecision::Day) {
        static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int dim = kDays[t.month - 1] + (t.month == 2 && ((t.year % 4 == 0 && t.year % 100 != 0) || t.year % 400 == 0));
        t.day = high ? dim : 1;
      }
      if (t.precision < TemporalPrecision::Hour) t.hour = high ? 23 : 0;
      if (t.precision < TemporalPrecision::Minute) t.minute = high ? 59 : 0;
      if (t.precision < TemporalPrecision::Second) t.second = high ? 59 : 0;
      if (t.precision < TemporalPrecision::Millisecond) t.millisecond = high ? 999 : 0;
      if (t.kind == TemporalKind::DateTime && !t.has_timezone && target >= TemporalPrecision::Hour) {
        t.has_timezone = true;
        t.tz_offset_minutes = high ? -12 * 60 : 14 * 60;
      }
      t.precision = target;
      return one(SystemValue{t});
    }
    return error(node, "'" + node.name + "' cannot be applied to " + std::string(systemTypeName(v)));
  }

  Result sortFunction(const AstNode& node, Focus input) {
    struct Keyed {
      Item item;
      std::vector<std::optional<SystemValue>> keys;
    };
    std::vector<Keyed> keyed;
    for (size_t k = 0; k < input.size(); ++k) {
      Keyed entry{input[k], {}};
      if (node.children.size() == 1) {
        entry.keys.push_back(toSystemValue(input[k]));
      } else {
        for (size_t a = 1; a < node.children.size(); ++a) {
          Focus f(&input[k], 1);
          Frame inner;
          inner.this_item = &input[k];
          const AstNode* key = node.children[a].get();
          bool descending = key->kind == NodeKind::Unary && key->unary_op == '-';
          if (descending) key = key->children[0].get();
          auto r = eval(*key, f, inner);
          if (!r) return r;
          auto v = single(node, *r);
          if (!v) return tl::unexpected(v.error());
          entry.keys.push_back(*v);
          if (a - 1 >= descending_.size()) descending_.resize(a);
          descending_[a - 1] = descending;
        }
      }
      keyed.push_back(std::move(entry));
    }
    std::stable_sort(keyed.begin(), keyed.end(), [this](const Keyed& a, const Keyed& b) {
      for (size_t k = 0; k < a.keys.size(); ++k) {
        if (!a.keys[k] || !b.keys[k]) {
          if (a.keys[k].has_value() != b.keys[k].has_value()) return !a.keys[k].has_value();
          continue;
        }
        auto c = detail::compareValues(*a.keys[k], *b.keys[k]);
        bool desc = k < descending_.size() && descending_[k];
        if (c && *c && **c != 0) return desc ? **c > 0 : **c < 0;
      }
      return false;
    });
    Collection out;
    for (auto& k : keyed) out.push_back(std::move(k.item));
    return out;
  }

  const Expression::Impl& impl_;
  const EvaluationContext& ctx_;
  const fhir::Node* context_ = nullptr;
  const fhir::Node* resource_ = nullptr;
  const fhir::Node* root_resource_ = nullptr;
  bool resource_resolved_ = false;
  bool root_resource_resolved_ = false;
  std::optional<Temporal> now_;
  uint32_t depth_ = 0;
  std::vector<std::pair<std::string, Collection>> defined_;
  std::vector<bool> descending_;
  std::vector<std::pair<const AstNode*, Collection>> cache_;  // nodes marked cache_result, this evaluation
  std::optional<Diagnostic> failed_;  // the error behind Tri::Error
};

}  // namespace

tl::expected<Collection, Diagnostic> Expression::evaluate(const EvaluationContext& context) const {
  if (!impl_) {
    Diagnostic d;
    d.kind = ErrorKind::Execution;
    d.message = "expression was not compiled";
    return tl::unexpected(d);
  }
  Evaluator evaluator(*impl_, context);
  return evaluator.run();
}

tl::expected<bool, Diagnostic> Expression::evaluateBoolean(const EvaluationContext& context, bool empty_is) const {
  if (!impl_) {
    Diagnostic d;
    d.kind = ErrorKind::Execution;
    d.message = "expression was not compiled";
    return tl::unexpected(d);
  }
  Evaluator evaluator(*impl_, context);
  return evaluator.runBoolean(empty_is);
}

}  // namespace medicus::fhirpath
