#include "profiles/invariant_guards.h"

#include <cctype>

namespace medicus::profiles {
namespace {

// A path step extension('url') is kept as kExtensionStep + url (element names have no parentheses).
constexpr std::string_view kExtensionStep = "extension(";

bool identChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits at the top-level keywords in `keywords` (outside parentheses, brackets, strings and
// `quoted` identifiers; as whole words, not after '.', '%' or '$'). nullopt when the text has
// unbalanced brackets or quotes. `found` receives the keyword of each split.
std::optional<std::vector<std::string_view>> splitTopLevel(std::string_view text,
                                                           std::initializer_list<std::string_view> keywords,
                                                           std::vector<std::string_view>* found = nullptr) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\'' || c == '`' || c == '"') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      if (i >= text.size()) return std::nullopt;
      continue;
    }
    if (c == '(' || c == '[' || c == '{') { ++depth; continue; }
    if (c == ')' || c == ']' || c == '}') {
      if (--depth < 0) return std::nullopt;
      continue;
    }
    if (!identChar(c) || (i > 0 && (identChar(text[i - 1]) || text[i - 1] == '.' || text[i - 1] == '%' ||
                                    text[i - 1] == '$'))) {
      continue;
    }
    size_t end = i;
    while (end < text.size() && identChar(text[end])) ++end;
    std::string_view word = text.substr(i, end - i);
    if (depth == 0) {
      for (std::string_view k : keywords) {
        if (word != k) continue;
        parts.push_back(text.substr(start, i - start));
        if (found) found->push_back(k);
        start = end;
        break;
      }
    }
    i = end - 1;
  }
  if (depth != 0) return std::nullopt;
  parts.push_back(text.substr(start));
  return parts;
}

// The position of the ')' closing the '(' at `open` (strings skipped), or npos.
size_t closingParen(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\'' || c == '`' || c == '"') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      if (i >= text.size()) return std::string_view::npos;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// "a.b.`c`.empty()", "a.exists()", "a.exists().not()", "a.empty().not()", "a.startsWith('#').not()",
// "a.extension('url').empty()", "a.all(...)".
std::optional<GuardTest> parseTest(std::string_view text) {
  text = trim(text);
  GuardTest test;
  size_t pos = 0;
  while (true) {
    std::string_view name;
    const bool quoted = pos < text.size() && text[pos] == '`';  // `div`: a keyword as element name
    if (quoted) {
      size_t close = text.find('`', pos + 1);
      if (close == std::string_view::npos) return std::nullopt;
      name = text.substr(pos + 1, close - pos - 1);
      pos = close + 1;
    } else {
      size_t end = pos;
      while (end < text.size() && identChar(text[end])) ++end;
      name = text.substr(pos, end - pos);
      pos = end;
      if (pos < text.size() && text[pos] == '(') {
        // extension('url') filters the path (FHIRPath on FHIR); any other function ends it.
        std::string_view call = text.substr(pos);
        if (name == "extension" && call.starts_with("('")) {
          size_t close = call.find('\'', 2);
          if (close == std::string_view::npos || close + 1 >= call.size() || call[close + 1] != ')') return std::nullopt;
          std::string_view url = call.substr(2, close - 2);
          if (url.empty() || url.find('\\') != std::string_view::npos) return std::nullopt;
          test.path.push_back(std::string(kExtensionStep) + std::string(url));
          pos += close + 2;
          if (pos >= text.size() || text[pos] != '.') return std::nullopt;
          ++pos;
          continue;
        }
        pos -= name.size();
        break;
      }
    }
    // Lower-case element names only: upper case would be a type name, keywords are not paths.
    if (name.empty() || !std::islower(static_cast<unsigned char>(name[0]))) return std::nullopt;
    for (char c : name) if (!identChar(c)) return std::nullopt;
    for (std::string_view k : {"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false"}) {
      if (!quoted && name == k) return std::nullopt;
    }
    test.path.emplace_back(name);
    if (pos >= text.size() || text[pos] != '.') return std::nullopt;  // a path alone is no test
    ++pos;
  }
  if (test.path.empty()) return std::nullopt;
  std::string_view rest = text.substr(pos);
  if (rest == "empty()" || rest == "exists().not()") {
    test.kind = GuardTest::Kind::Empty;
  } else if (rest == "exists()" || rest == "empty().not()") {
    test.kind = GuardTest::Kind::Exists;
  } else if (rest.starts_with("all(") && closingParen(rest, 3) == rest.size() - 1) {
    test.kind = GuardTest::Kind::AllOf;  // all() of an empty collection is true; else the engine decides
  } else if (rest.starts_with("startsWith('") && rest.ends_with("').not()")) {
    std::string_view literal = rest.substr(12, rest.size() - 12 - 8);
    if (literal.find_first_of("'\\") != std::string_view::npos) return std::nullopt;
    test.kind = GuardTest::Kind::NotStartsWith;
    test.prefix = std::string(literal);
  } else {
    return std::nullopt;
  }
  return test;
}

// A conjunction of tests ("a.empty() and b.empty()"); nullopt unless every conjunct is a test.
std::optional<std::vector<GuardTest>> parseConjunction(std::string_view text) {
  auto conjuncts = splitTopLevel(text, {"and"});
  if (!conjuncts) return std::nullopt;
  std::vector<GuardTest> tests;
  for (std::string_view c : *conjuncts) {
    auto t = parseTest(c);
    if (!t) return std::nullopt;
    tests.push_back(std::move(*t));
  }
  return tests;
}

bool stringLike(const fhir::TypeInfo* type) {
  switch (type->primitive_kind) {
    case fhir::PrimitiveKind::String: case fhir::PrimitiveKind::Uri: case fhir::PrimitiveKind::Code:
    case fhir::PrimitiveKind::Id: case fhir::PrimitiveKind::Oid: case fhir::PrimitiveKind::Uuid:
      return true;
    default:
      return false;
  }
}

enum class Tri { False, True, Unknown };

// Does the path select any node? Unknown where FHIRPath would leave the element tree (`value`
// of a primitive is its System value).
Tri pathExists(const fhir::Node& from, const std::vector<std::string>& path, size_t i) {
  if (i == path.size()) return Tri::True;
  const std::string& step = path[i];
  if (from.isPrimitive() && step == "value") return Tri::Unknown;
  const bool extension_step = step.starts_with(kExtensionStep);
  std::string_view url = extension_step ? std::string_view(step).substr(kExtensionStep.size()) : std::string_view();
  bool unknown = false;
  for (const fhir::Node* c : from.children()) {
    if (c->element() == nullptr) continue;
    if (extension_step) {
      if (c->element()->name != "extension") continue;
      const fhir::Node* u = c->child("url");
      if (!u || u->value() != url) continue;
    } else if (std::string_view name = c->element()->name;
               name.size() != step.size() || name[0] != step[0] || name != step) {  // (most differ in size or first letter)
      continue;
    }
    Tri t = pathExists(*c, path, i + 1);
    if (t == Tri::True) return Tri::True;
    unknown = unknown || t == Tri::Unknown;
  }
  return unknown ? Tri::Unknown : Tri::False;
}

Tri evaluate(const fhir::Node& focus, const GuardTest& test) {
  switch (test.kind) {
    case GuardTest::Kind::AllOf:
      return pathExists(focus, test.path, 0) == Tri::False ? Tri::True : Tri::Unknown;
    case GuardTest::Kind::Empty:
    case GuardTest::Kind::Exists: {
      Tri exists = pathExists(focus, test.path, 0);
      if (exists == Tri::Unknown) return Tri::Unknown;
      return (exists == Tri::True) == (test.kind == GuardTest::Kind::Exists) ? Tri::True : Tri::False;
    }
    case GuardTest::Kind::NotStartsWith: {
      // Only the plain case: one child, a string-like primitive with a value (else the engine
      // may give empty or a singleton error).
      if (test.path.size() != 1 || test.path[0].starts_with(kExtensionStep)) return Tri::Unknown;
      const fhir::Node* only = nullptr;
      for (const fhir::Node* c : focus.children()) {
        if (c->element() == nullptr || c->element()->name != test.path[0]) continue;
        if (only) return Tri::Unknown;
        only = c;
      }
      if (!only || !only->isPrimitive() || !only->hasValue() || !stringLike(only->type())) return Tri::Unknown;
      return only->value().starts_with(test.prefix) ? Tri::False : Tri::True;
    }
  }
  return Tri::Unknown;
}

}  // namespace

std::vector<InvariantGuard> parseInvariantGuards(std::string_view expression, bool* complete) {
  if (complete) *complete = false;
  std::vector<InvariantGuard> guards;
  std::vector<std::string_view> ops;
  auto top = splitTopLevel(expression, {"implies", "or", "xor"}, &ops);
  if (!top) return guards;
  bool implies = false;
  for (std::string_view op : ops) {
    if (op == "xor") return guards;  // same precedence as or: the split would not follow the parse
    implies = implies || op == "implies";
  }
  if (implies) {
    // "A implies B" with A a conjunction of tests: false A (one test false) gives true. Only the
    // plain form with a single implies and no or/xor in A.
    if (ops.size() != 1) return guards;
    auto lhs = parseConjunction((*top)[0]);
    if (!lhs) return guards;
    for (GuardTest& t : *lhs) {
      if (t.kind == GuardTest::Kind::NotStartsWith || t.kind == GuardTest::Kind::AllOf) return {};
      t.kind = t.kind == GuardTest::Kind::Empty ? GuardTest::Kind::Exists : GuardTest::Kind::Empty;
      guards.push_back({{std::move(t)}});
    }
    // A true B makes the implication true as well: A (plain tests) cannot fail before B is reached.
    // (B has no top-level or/xor: the split above found a single operator.)
    if (auto rhs = parseConjunction((*top)[1])) {
      guards.push_back({std::move(*rhs)});
      if (complete) *complete = true;  // not A (one test false) or B: nothing else is left to the engine
    }
    return guards;
  }
  // d1 or d2 or ...: the leading disjuncts that are conjunctions of tests. A NotStartsWith test may
  // be undecidable at run time; invariantHoldsByGuard stops at the first such test.
  for (std::string_view d : *top) {
    auto tests = parseConjunction(d);
    if (!tests) return guards;
    guards.push_back({std::move(*tests)});
  }
  if (complete) *complete = !guards.empty();  // every disjunct is a conjunction of tests
  return guards;
}

NativeInvariant nativeInvariantOf(std::string_view key, std::string_view expression, std::string_view profile_url) {
  if (key == "bdl-7") {
    return profile_url == "http://hl7.org/fhir/StructureDefinition/Bundle" ? NativeInvariant::Bdl7 : NativeInvariant::None;
  }
  if (key == "ele-1") return NativeInvariant::Ele1;
  if (key == "txt-2") return NativeInvariant::Txt2;
  if (key == "dom-3") return NativeInvariant::Dom3;
  if (key == "ref-1") return expression == kRef1Expression ? NativeInvariant::Ref1 : NativeInvariant::None;
  if (key == "ext-1") return NativeInvariant::Ext1;
  return NativeInvariant::None;
}

bool invariantHoldsByGuard(const fhir::Node& focus, const std::vector<InvariantGuard>& guards) {
  return decideByGuards(focus, guards, false) == GuardOutcome::Holds;
}

GuardOutcome decideByGuards(const fhir::Node& focus, const std::vector<InvariantGuard>& guards, bool complete) {
  if (guards.empty() || focus.isPrimitive()) return GuardOutcome::Undecided;
  for (const InvariantGuard& g : guards) {
    bool all = true;
    for (const GuardTest& t : g.all_of) {
      Tri r = evaluate(focus, t);
      if (r == Tri::Unknown) return GuardOutcome::Undecided;  // the engine might stop here with an error
      if (r == Tri::False) { all = false; break; }
    }
    if (all) return GuardOutcome::Holds;
  }
  // Every guard was decided false. Complete guards are the whole expression, each test a plain
  // boolean (exists/empty/startsWith of one string): the engine's answer is false as well.
  return complete ? GuardOutcome::Fails : GuardOutcome::Undecided;
}

}  // namespace medicus::profiles
