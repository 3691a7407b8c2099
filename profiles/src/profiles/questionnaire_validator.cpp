#include "profiles/questionnaire_validator.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "profiles/attachment_checks.h"
#ifdef MEDICUS_PROFILES_WITH_FHIRPATH
#include "fhirpath/ast.h"  // PosixRegex
#endif
#include "profiles/json_util.h"
#include "profiles/node_util.h"

namespace medicus::profiles {
namespace {
using fhir::IssueType;
using fhir::Node;
using fhir::Severity;

// Extensions the checks read (http://hl7.org/fhir/R4/extensibility-registry.html and SDC).
constexpr std::string_view kExtMinValue = "http://hl7.org/fhir/StructureDefinition/minValue";
constexpr std::string_view kExtMaxValue = "http://hl7.org/fhir/StructureDefinition/maxValue";
constexpr std::string_view kExtMinLength = "http://hl7.org/fhir/StructureDefinition/minLength";
constexpr std::string_view kExtRegex = "http://hl7.org/fhir/StructureDefinition/regex";
constexpr std::string_view kExtEntryFormat = "http://hl7.org/fhir/StructureDefinition/entryFormat";
constexpr std::string_view kExtMaxDecimals = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces";
constexpr std::string_view kExtMimeType = "http://hl7.org/fhir/StructureDefinition/mimeType";
constexpr std::string_view kExtMaxSize = "http://hl7.org/fhir/StructureDefinition/maxSize";
constexpr std::string_view kExtMinOccurs = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs";
constexpr std::string_view kExtMaxOccurs = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs";
constexpr std::string_view kExtUnitOption = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption";
constexpr std::string_view kExtUnitValueSet = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitValueSet";
constexpr std::string_view kExtReferenceResource = "http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource";
constexpr std::string_view kExtOptionExclusive = "http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive";
constexpr std::string_view kExtSdcMinQuantity = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity";
constexpr std::string_view kExtSdcMaxQuantity = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-maxQuantity";
constexpr std::string_view kExtMinQuantity = "http://hl7.org/fhir/StructureDefinition/minQuantity";
constexpr std::string_view kExtMaxQuantity = "http://hl7.org/fhir/StructureDefinition/maxQuantity";
constexpr std::string_view kExtSdcEnableWhenExpression =
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression";
constexpr std::string_view kExtFinnishEnableWhen = "http://phr.kanta.fi/StructureDefinition/fiphr-ext-questionnaire-enablewhen";
constexpr std::string_view kExtVariable = "http://hl7.org/fhir/StructureDefinition/variable";
constexpr std::string_view kUcum = "http://unitsofmeasure.org";
constexpr size_t kMaxRegexInput = 2048;
constexpr size_t kMaxRegexPattern = 1000;
#ifdef MEDICUS_PROFILES_WITH_FHIRPATH
using RegexMatcher = fhirpath::detail::PosixRegex;
#else
struct RegexMatcher {  // never created: without the engine the regex extension is not checked
  bool search(std::string_view) const { return true; }
};
#endif

std::vector<const Node*> childList(const Node& node, std::string_view name) {
  std::vector<const Node*> out;
  for (const Node* c : node.children(name)) out.push_back(c);
  return out;
}
// Extensions of `node` with `url`, in order.
std::vector<const Node*> extensions(const Node& node, std::string_view url) {
  std::vector<const Node*> out;
  for (const Node* e : node.children("extension")) {
    if (childValue(*e, "url") == url) out.push_back(e);
  }
  return out;
}
const Node* extensionValue(const Node& node, std::string_view url) {
  for (const Node* e : node.children("extension")) {
    if (childValue(*e, "url") == url) return e->child("value");
  }
  return nullptr;
}
std::string_view extensionPrimitive(const Node& node, std::string_view url) {
  const Node* v = extensionValue(node, url);
  return v && v->hasValue() ? v->value() : std::string_view();
}
bool isTrue(const Node& node, std::string_view name) { return childValue(node, name) == "true"; }

std::optional<long long> toInteger(std::string_view s) {
  long long v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}
std::optional<double> toDecimal(std::string_view s) {
  double v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}
// Digits after the decimal point as written ("1.50" has 2).
size_t decimalPlaces(std::string_view s) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return 0;
  size_t end = s.find_first_of("eE", dot);
  return (end == std::string_view::npos ? s.size() : end) - dot - 1;
}
size_t codePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// Equal ignoring case and runs of whitespace.
bool sameWords(std::string_view a, std::string_view b) {
  auto normalize = [](std::string_view s) {
    std::string out;
    bool space = false;
    for (char c : s) {
      if (std::isspace(static_cast<unsigned char>(c))) { space = !out.empty(); continue; }
      if (space) out += ' ';
      space = false;
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  return normalize(a) == normalize(b);
}

// date / dateTime / instant as seconds since 1970 at the start of the stated precision, the way the
// reference compares partial dates ("2022-06" is 2022-06-01T00:00); no time zone counts as UTC.
std::optional<double> instantOf(std::string_view s) {
  auto digits = [&](size_t pos, size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  auto year = digits(0, 4);
  if (!year) return std::nullopt;
  int month = 1, day = 1, hour = 0, minute = 0;
  double second = 0;
  size_t pos = 4;
  if (pos < s.size() && s[pos] == '-') {
    auto m = digits(pos + 1, 2);
    if (!m) return std::nullopt;
    month = *m;
    pos += 3;
    if (pos < s.size() && s[pos] == '-') {
      auto d = digits(pos + 1, 2);
      if (!d) return std::nullopt;
      day = *d;
      pos += 3;
    }
  }
  double offset = 0;
  if (pos < s.size() && s[pos] == 'T') {
    auto h = digits(pos + 1, 2);
    auto mi = digits(pos + 4, 2);
    if (!h || !mi) return std::nullopt;
    hour = *h;
    minute = *mi;
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      size_t end = pos + 1;
      while (end < s.size() && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.')) ++end;
      auto sec = toDecimal(s.substr(pos + 1, end - pos - 1));
      if (!sec) return std::nullopt;
      second = *sec;
      pos = end;
    }
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
      auto oh = digits(pos + 1, 2);
      auto om = digits(pos + 4, 2);
      if (!oh || !om) return std::nullopt;
      offset = (s[pos] == '-' ? -1 : 1) * (*oh * 3600.0 + *om * 60.0);
      pos += 6;
    } else if (pos < s.size() && s[pos] == 'Z') {
      ++pos;
    }
  }
  if (pos != s.size()) return std::nullopt;
  // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
  int y = *year - (month <= 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  double days = era * 146097.0 + doe - 719468.0;
  return days * 86400.0 + hour * 3600.0 + minute * 60.0 + second - offset;
}

// ---- UCUM, the part needed to compare quantities in compatible units (km against m) ----
struct UcumValue {
  double factor = 1;                // multiply a value in the unit by this to get base units
  std::map<std::string, int> dims;  // base unit -> exponent (g, m, s, mol, K, ...)
};
struct UcumAtom {
  std::string_view code;
  double factor;
  std::string_view dims;  // "g.m-1.s-2" in base units; empty: dimensionless
  bool metric;            // takes SI prefixes
};
constexpr UcumAtom kUcumAtoms[] = {
    {"m", 1, "m", true}, {"g", 1, "g", true}, {"s", 1, "s", true}, {"L", 0.001, "m3", true},
    {"l", 0.001, "m3", true}, {"mol", 1, "mol", true}, {"K", 1, "K", true}, {"Pa", 1000, "g.m-1.s-2", true},
    {"N", 1000, "g.m.s-2", true}, {"J", 1000, "g.m2.s-2", true}, {"W", 1000, "g.m2.s-3", true},
    {"Hz", 1, "s-1", true}, {"eq", 1, "mol", true}, {"U", 1.0 / 60 * 1e-6, "mol.s-1", true},
    {"min", 60, "s", false}, {"h", 3600, "s", false}, {"d", 86400, "s", false}, {"wk", 604800, "s", false},
    {"mo", 2629800, "s", false}, {"a", 31557600, "s", false}, {"[in_i]", 0.0254, "m", false},
    {"[ft_i]", 0.3048, "m", false}, {"[yd_i]", 0.9144, "m", false}, {"[mi_i]", 1609.344, "m", false},
    {"[lb_av]", 453.59237, "g", false}, {"[oz_av]", 28.349523125, "g", false}, {"%", 0.01, "", false},
    {"mm[Hg]", 133322.387415, "g.m-1.s-2", false}, {"1", 1, "", false},
};
constexpr std::pair<std::string_view, double> kUcumPrefixes[] = {
    {"da", 1e1}, {"Y", 1e24}, {"Z", 1e21}, {"E", 1e18}, {"P", 1e15}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6},
    {"k", 1e3}, {"h", 1e2}, {"d", 1e-1}, {"c", 1e-2}, {"m", 1e-3}, {"u", 1e-6}, {"n", 1e-9}, {"p", 1e-12},
    {"f", 1e-15}, {"a", 1e-18}, {"z", 1e-21}, {"y", 1e-24},
};
bool addDims(std::string_view dims, int sign, std::map<std::string, int>& out);
std::optional<UcumValue> ucumAtom(std::string_view term) {
  // A trailing integer exponent: "m2", "s-1".
  size_t exp_start = term.size();
  while (exp_start > 0 && std::isdigit(static_cast<unsigned char>(term[exp_start - 1]))) --exp_start;
  if (exp_start > 0 && exp_start < term.size() && (term[exp_start - 1] == '-' || term[exp_start - 1] == '+')) --exp_start;
  int exponent = 1;
  std::string_view atom = term;
  if (exp_start > 0 && exp_start < term.size() && term != "1") {
    auto e = toInteger(term.substr(exp_start));
    if (!e) return std::nullopt;
    exponent = static_cast<int>(*e);
    atom = term.substr(0, exp_start);
  }
  auto build = [&](const UcumAtom& a, double prefix) -> std::optional<UcumValue> {
    UcumValue v;
    v.factor = std::pow(prefix * a.factor, exponent);
    for (int i = 0; i < std::abs(exponent); ++i) {
      if (!addDims(a.dims, exponent < 0 ? -1 : 1, v.dims)) return std::nullopt;
    }
    return v;
  };
  for (const UcumAtom& a : kUcumAtoms) {
    if (a.code == atom) return build(a, 1);
  }
  for (const auto& [prefix, factor] : kUcumPrefixes) {
    if (!atom.starts_with(prefix)) continue;
    std::string_view rest = atom.substr(prefix.size());
    for (const UcumAtom& a : kUcumAtoms) {
      if (a.metric && a.code == rest) return build(a, factor);
    }
  }
  return std::nullopt;
}
bool addDims(std::string_view dims, int sign, std::map<std::string, int>& out) {
  size_t pos = 0;
  while (pos < dims.size()) {
    size_t end = dims.find('.', pos);
    if (end == std::string_view::npos) end = dims.size();
    std::string_view part = dims.substr(pos, end - pos);
    size_t d = 0;
    while (d < part.size() && std::isalpha(static_cast<unsigned char>(part[d]))) ++d;
    int e = d < part.size() ? static_cast<int>(toInteger(part.substr(d)).value_or(1)) : 1;
    int& slot = out[std::string(part.substr(0, d))];
    slot += sign * e;
    if (slot == 0) out.erase(std::string(part.substr(0, d)));
    pos = end + 1;
  }
  return true;
}
// "km", "mg/dL", "kg.m-2": products and quotients of (prefixed) atoms; nullopt when a term is unknown.
std::optional<UcumValue> ucumCanonical(std::string_view code) {
  std::string cleaned;
  for (size_t i = 0; i < code.size(); ++i) {  // annotations {..} carry no meaning
    if (code[i] == '{') {
      size_t close = code.find('}', i);
      if (close == std::string_view::npos) return std::nullopt;
      if (cleaned.empty() || cleaned.back() == '.' || cleaned.back() == '/') cleaned += '1';
      i = close;
      continue;
    }
    cleaned += code[i];
  }
  if (cleaned.empty()) return std::nullopt;
  UcumValue result;
  int sign = 1;
  size_t pos = 0;
  if (cleaned.front() == '/') { sign = -1; pos = 1; }
  while (pos <= cleaned.size()) {
    size_t end = cleaned.find_first_of("./", pos);
    if (end == std::string::npos) end = cleaned.size();
    auto term = ucumAtom(std::string_view(cleaned).substr(pos, end - pos));
    if (!term) return std::nullopt;
    result.factor = sign > 0 ? result.factor * term->factor : result.factor / term->factor;
    for (const auto& [dim, e] : term->dims) {
      int& slot = result.dims[dim];
      slot += sign * e;
      if (slot == 0) result.dims.erase(dim);
    }
    if (end == cleaned.size()) break;
    sign = cleaned[end] == '/' ? -1 : 1;
    pos = end + 1;
  }
  return result;
}

std::string systemName(std::string_view system) {
  if (system == kUcum) return "UCUM";
  if (system == "http://snomed.info/sct") return "SNOMED";
  return std::string(system);
}
// "10 kilometer (UCUM#km)", as the reference writes a quantity.
std::string quantityText(const Node& q) {
  std::string out(childValue(q, "comparator"));
  out += childValue(q, "value");
  if (std::string_view unit = childValue(q, "unit"); !unit.empty()) out += " " + std::string(unit);
  std::string_view system = childValue(q, "system"), code = childValue(q, "code");
  if (!system.empty() || !code.empty()) {
    out += " (" + systemName(system) + "#" + (code.empty() ? std::string("null") : std::string(code)) + ")";
  }
  return out;
}
std::string codingText(const Node& c) {
  std::string out(childValue(c, "display"));
  std::string_view system = childValue(c, "system"), code = childValue(c, "code");
  if (!system.empty() || !code.empty()) {
    out += (out.empty() ? "(" : " (") + systemName(system) + "#" + std::string(code) + ")";
  }
  return out;
}

// Builds a fhir::Node tree from definition JSON (numbers kept as strings by the registry). Properties
// with a leading "_" (extensions of primitives) are left out: no questionnaire rule reads them.
void buildNodes(fhir::Document& doc, Node* parent, const rapidjson::Value& object) {
  if (!object.IsObject()) return;
  for (const auto& m : object.GetObject()) {
    std::string_view name = str(m.name);
    if (name == "resourceType" || name.starts_with("_")) continue;
    auto add = [&](const rapidjson::Value& v) {
      if (v.IsObject()) {
        std::string_view type = memberStr(v, "resourceType");
        Node* child = nullptr;
        if (!type.empty()) child = doc.addResource(parent, name, doc.model().find(type));
        else child = doc.addChild(parent, name);
        if (child) buildNodes(doc, child, v);
      } else if (v.IsString()) {
        doc.addPrimitive(parent, name, str(v));
      } else if (v.IsBool()) {
        doc.addPrimitive(parent, name, v.GetBool() ? "true" : "false");
      } else if (v.IsNumber()) {
        doc.addPrimitive(parent, name, v.IsInt64() ? std::to_string(v.GetInt64()) : std::to_string(v.GetDouble()));
      }
    };
    if (m.value.IsArray()) {
      for (const auto& item : m.value.GetArray()) add(item);
    } else {
      add(m.value);
    }
  }
}

// The questionnaire a response is checked against, with its item index.
struct QuestionnaireSource {
  const Node* questionnaire = nullptr;
  const Node* container = nullptr;  // the resource whose contained[] held it ("#id"), else nullptr
  std::unordered_map<std::string_view, const Node*> by_link_id;  // first item with each linkId
  std::unordered_map<const Node*, const Node*> parent_item;        // item -> enclosing item (nullptr: root)

  void index(const Node* container_node, const Node* parent) {
    for (const Node* item : container_node->children("item")) {
      by_link_id.emplace(childValue(*item, "linkId"), item);
      parent_item.emplace(item, parent);
      index(item, item);
    }
  }
  const Node* item(std::string_view link_id) const {
    auto it = by_link_id.find(link_id);
    return it == by_link_id.end() ? nullptr : it->second;
  }
  std::vector<const Node*> chain(const Node* item) const {  // root item first, `item` last
    std::vector<const Node*> out;
    for (const Node* i = item; i != nullptr;) {
      out.push_back(i);
      auto it = parent_item.find(i);
      i = it == parent_item.end() ? nullptr : it->second;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  // The innermost item that encloses both (each chain without its last element); nullptr: the root.
  const Node* commonGroup(const Node* a, const Node* b) const {
    auto ca = chain(a), cb = chain(b);
    const Node* common = nullptr;
    for (size_t i = 0; i + 1 < std::min(ca.size(), cb.size()); ++i) {
      if (ca[i] == cb[i]) common = ca[i];
    }
    return common;
  }
};

// The response items being validated, each with its questionnaire item (EnableWhenEvaluator.QStack).
struct ResponseStack {
  const Node* response = nullptr;  // the QuestionnaireResponse
  std::vector<std::pair<const Node*, const Node*>> items;  // (questionnaire item, response item)
  ResponseStack push(const Node* q_item, const Node* r_item) const {
    ResponseStack s = *this;
    s.items.emplace_back(q_item, r_item);
    return s;
  }
};

class QuestionnaireChecks {
  // An item's regex extension, compiled once per item. The pattern comes with the data (contained or
  // Bundle-local questionnaires): it runs on glibc's regcomp()/regexec(), which does not backtrack,
  // so no pattern takes more than linear time in the answer ((a|aa)+ would hang std::regex).
  struct RegexCheck {
    std::shared_ptr<const RegexMatcher> matcher;
    std::string problem;  // why there is no matcher
  };
  const RegexCheck& itemRegex(const Node& q_item, std::string_view pattern) {
    auto [it, inserted] = regexes_.try_emplace(&q_item);
    if (!inserted) return it->second;
    RegexCheck& check = it->second;
    if (pattern.size() > kMaxRegexPattern) {
      check.problem = "is longer than " + std::to_string(kMaxRegexPattern) + " characters";
      return check;
    }
#ifdef MEDICUS_PROFILES_WITH_FHIRPATH
    check.matcher = fhirpath::detail::PosixRegex::compile(std::string(pattern), true);
    if (!check.matcher) {
      check.problem = "is not valid or uses syntax outside the supported subset (literals, '.', classes, groups, "
                      "'|', greedy quantifiers, anchors, escaped punctuation, \\d \\s \\w)";
    }
#else
    check.problem = "cannot be checked: built without the FHIRPath engine's matcher";
#endif
    return check;
  }
  std::unordered_map<const Node*, RegexCheck> regexes_;

 public:
  explicit QuestionnaireChecks(const QuestionnaireContext& context) : ctx_(context) {}

  void checkQuestionnaire(const Node& questionnaire) {
    for (const Node* derived : questionnaire.children("derivedFrom")) {
      if (!derived->hasValue()) continue;
      const ResourceInfo* info = ctx_.store.registry().findCanonical(derived->value(), "Questionnaire");
      const Node* base = info ? loadQuestionnaire(*info) : nullptr;
      if (!base) {
        report(Severity::Warning, IssueType::BusinessRule, *derived,
               "the questionnaire '" + std::string(derived->value()) +
                   "' named in derivedFrom is not loaded, so the derivation was not checked",
               "Questionnaire.derivedFrom:unknown");
        continue;
      }
      checkDerivation(questionnaire, *derived, *base);
    }
    std::vector<const Node*> parents{&questionnaire};
    checkQuestionnaireItems(questionnaire, questionnaire, parents);
  }

  void checkResponse(const Node& response) {
    const Node* q_ref = response.child("questionnaire");
    std::string_view canonical = q_ref && q_ref->hasValue() ? q_ref->value() : std::string_view();
    if (canonical.empty()) {
      report(Severity::Information, IssueType::Required, response,
             "the response names no questionnaire, so its items were not checked against one",
             "QuestionnaireResponse.questionnaire:none");
      return;
    }
    QuestionnaireSource source;
    if (!resolveQuestionnaire(response, *q_ref, canonical, source)) {
      const bool example = canonical.starts_with("http://example.org") || canonical.starts_with("https://example.org");
      report(example ? Severity::Information : Severity::Warning, IssueType::Required, *q_ref,
             "the questionnaire '" + std::string(canonical) +
                 "' could not be resolved (not contained, not in the Bundle, not in the loaded packages), so the "
                 "answers were not checked against it; load the package or file that defines it",
             "QuestionnaireResponse.questionnaire:unresolved");
      return;
    }
    source.index(source.questionnaire, nullptr);
    source_ = &source;
    checkAuthored(response, *source.questionnaire);
    std::string_view status = childValue(response, "status");
    const bool not_completed = status != "completed" && status != "amended";
    ResponseStack stack;
    stack.response = &response;
    checkItems(*source.questionnaire, response, stack, not_completed);
    source_ = nullptr;
  }

 private:
  // ---- issues ----
  void report(Severity severity, IssueType type, const Node& node, std::string message, std::string rule_id) {
    fhir::Issue issue;
    issue.severity = severity;
    issue.type = type;
    issue.message = std::move(message);
    issue.expression = fhir::pathOf(node);
    issue.position = ctx_.document.positionOf(node);
    issue.rule_id = std::move(rule_id);
    ctx_.issues.push_back(std::move(issue));
  }

  // ---- Questionnaire ----
  // Java QuestionnaireValidator.validateQuestionnaireElement: enableWhen.question must name an item
  // that exists, is not the item itself or inside it, and (warning) comes before it.
  void checkQuestionnaireItems(const Node& questionnaire, const Node& container, std::vector<const Node*>& parents) {
    for (const Node* item : container.children("item")) {
      for (const Node* ew : item->children("enableWhen")) {
        std::string_view question = childValue(*ew, "question");
        if (question.empty()) {
          report(Severity::Error, IssueType::BusinessRule, *item,
                 "enableWhen has no question: it must name the linkId of the item it depends on",
                 "Questionnaire.item.enableWhen:no-question");
          continue;
        }
        if (findItem(*item, question)) {
          report(Severity::Error, IssueType::BusinessRule, *item,
                 "enableWhen of item '" + std::string(childValue(*item, "linkId")) + "' refers to '" + std::string(question) +
                     "', an item inside it: an item cannot be enabled by its own sub-items",
                 "Questionnaire.item.enableWhen:inner");
          continue;
        }
        const Node* target = findItem(questionnaire, question);
        if (!target) {
          report(Severity::Error, IssueType::BusinessRule, *item,
                 "enableWhen of item '" + std::string(childValue(*item, "linkId")) + "' refers to '" + std::string(question) +
                     "', which is not an item of this questionnaire",
                 "Questionnaire.item.enableWhen:no-target");
          continue;
        }
        if (target == item) {
          report(Severity::Error, IssueType::BusinessRule, *item,
                 "enableWhen of item '" + std::string(question) + "' refers to the item itself",
                 "Questionnaire.item.enableWhen:self");
          continue;
        }
        if (!isBefore(item, target, parents)) {
          report(Severity::Warning, IssueType::BusinessRule, *item,
                 "the target of this enableWhen ('" + std::string(question) + "') comes after the item itself",
                 "Questionnaire.item.enableWhen:after");
        }
      }
      parents.insert(parents.begin(), item);
      checkQuestionnaireItems(questionnaire, *item, parents);
      parents.erase(parents.begin());
    }
  }
  // ---- derivedFrom (SDC "derivation": http://hl7.org/fhir/StructureDefinition/questionnaire-derivationType) ----
  // 'extends' may add items, 'compliesWith' may not; both must keep each inherited item's type,
  // repeats, required, maxLength and answer options. 'inspiredBy' imposes nothing.
  void checkDerivation(const Node& questionnaire, const Node& derived, const Node& base) {
    const Node* type = extensionValue(derived, "http://hl7.org/fhir/StructureDefinition/questionnaire-derivationType");
    if (!type) {
      report(Severity::Warning, IssueType::BusinessRule, derived,
             "derivedFrom '" + std::string(derived.value()) + "' has no questionnaire-derivationType extension, so it is "
             "not known how this questionnaire derives from it; the derivation was not checked",
             "Questionnaire.derivedFrom:no-type");
      return;
    }
    std::string_view system = childValue(*type, "system"), code = childValue(*type, "code");
    const bool known_system = system == "http://hl7.org/fhir/questionnaire-derivationType";
    if (known_system && code == "inspiredBy") return;
    if (!known_system || (code != "extends" && code != "compliesWith")) {
      report(Severity::Warning, IssueType::BusinessRule, *type,
             "unknown derivation type " + std::string(system) + "#" + std::string(code) + "; the derivation was not checked",
             "Questionnaire.derivedFrom:unknown-type");
      return;
    }
    checkDerivedItems(questionnaire, base, derived.value(), code == "extends");
  }
  void checkDerivedItems(const Node& container, const Node& base, std::string_view base_url, bool extends) {
    for (const Node* item : container.children("item")) {
      std::string_view link_id = childValue(*item, "linkId");
      const Node* inherited = findItem(base, link_id);
      const std::string where = "item '" + std::string(link_id) + "' of the questionnaire it derives from (" + std::string(base_url) + ")";
      if (!inherited) {
        if (!extends) {
          report(Severity::Error, IssueType::NotFound, *item,
                 "the item '" + std::string(link_id) + "' is not in " + std::string(base_url) +
                     ", and a questionnaire that complies with another may not add items", "Questionnaire.item:derivation-new-item");
        }
        checkDerivedItems(*item, base, base_url, extends);
        continue;
      }
      auto violation = [&](const Node& at, const std::string& what) {
        report(Severity::Error, IssueType::BusinessRule, at, what + " (" + where + ")", "Questionnaire.item:derivation");
      };
      if (const Node* t = item->child("type"); t && inherited->child("type") && t->value() != childValue(*inherited, "type")) {
        violation(*t, "the type " + std::string(t->value()) + " differs from the inherited type " + std::string(childValue(*inherited, "type")));
      }
      if (!isTrue(*inherited, "repeats") && isTrue(*item, "repeats")) violation(*item->child("repeats"), "the item repeats, the inherited one does not");
      if (isTrue(*inherited, "required")) {
        if (const Node* r = item->child("required"); r && r->value() != "true") violation(*r, "the inherited item is required, this one is not");
      }
      if (auto base_max = toInteger(childValue(*inherited, "maxLength"))) {
        auto max = toInteger(childValue(*item, "maxLength"));
        if (!max) violation(*item, "the inherited item has maxLength " + std::to_string(*base_max) + ", this one none");
        else if (*max > *base_max) violation(*item->child("maxLength"), "maxLength " + std::to_string(*max) + " exceeds the inherited " + std::to_string(*base_max));
      }
      if (inherited->child("answerOption")) {
        if (item->child("answerValueSet")) {
          violation(*item, "the inherited item lists answerOption; this one may not use answerValueSet instead");
        } else if (!item->child("answerOption")) {
          violation(*item, "the inherited item lists answerOption; this one must list (a subset of) them");
        } else {
          for (const Node* option : item->children("answerOption")) {
            const Node* v = option->child("value");
            if (v && !hasOption(*inherited, *v)) violation(*option, "this answer option is not one of the inherited item's");
          }
        }
      }
      if (inherited->child("answerValueSet") && item->child("answerOption")) {
        violation(*item, "the inherited item uses answerValueSet; this one may not list answerOption instead");
      }
      checkDerivedItems(*item, base, base_url, extends);
    }
  }
  static bool hasOption(const Node& item, const Node& value) {
    for (const Node* option : item.children("answerOption")) {
      const Node* v = option->child("value");
      if (!v || v->type() != value.type()) continue;
      if (value.type()->name == "Coding") {
        if (childValue(*v, "system") == childValue(value, "system") && childValue(*v, "code") == childValue(value, "code") &&
            (childValue(value, "version").empty() || childValue(*v, "version") == childValue(value, "version"))) return true;
      } else if (value.type()->name == "Reference") {
        if (childValue(*v, "reference") == childValue(value, "reference")) return true;
      } else if (v->hasValue() && value.hasValue() && v->value() == value.value()) {
        return true;
      }
    }
    return false;
  }

  static const Node* findItem(const Node& focus, std::string_view link_id) {
    for (const Node* item : focus.children("item")) {
      if (childValue(*item, "linkId") == link_id) return item;
      if (const Node* inner = findItem(*item, link_id)) return inner;
    }
    return nullptr;
  }
  static bool contains(const Node& ancestor, const Node* node) {
    for (const Node* p = node; p != nullptr; p = p->parent()) {
      if (p == &ancestor) return true;
    }
    return false;
  }
  // Is `target` before `item` in document order (or one of its parents)? `parents` nearest first.
  static bool isBefore(const Node* item, const Node* target, const std::vector<const Node*>& parents) {
    if (std::find(parents.begin(), parents.end(), target) != parents.end()) return true;
    for (const Node* p : parents) {
      int i = -1, t = -1, n = 0;
      for (const Node* c : p->children("item")) {
        if (contains(*c, item)) i = n;
        if (contains(*c, target)) t = n;
        ++n;
      }
      if (i > -1 && t > -1) return i > t;
    }
    return false;
  }

  // ---- resolving the questionnaire ----
  bool resolveQuestionnaire(const Node& response, const Node& q_ref, std::string_view canonical, QuestionnaireSource& out) {
    if (canonical.starts_with("#")) {
      // The response's own contained resources; a contained response shares its container's.
      for (const Node* holder = &response; holder != nullptr;) {
        for (const Node* c : holder->children("contained")) {
          if (c->type()->name == "Questionnaire" && childValue(*c, "id") == canonical.substr(1)) {
            out.questionnaire = c;
            out.container = holder;
            return true;
          }
        }
        const Node* parent = holder->parent();
        holder = holder->element() && holder->element()->name == "contained" && parent ? parent->enclosingResource() : nullptr;
      }
      return false;
    }
    std::string_view url = canonical, version;
    if (size_t bar = canonical.find('|'); bar != std::string_view::npos) {
      url = canonical.substr(0, bar);
      version = canonical.substr(bar + 1);
    }
    // An entry of the Bundle being validated.
    const Node* root = ctx_.document.root();
    if (root && root->type()->name == "Bundle") {
      for (const Node* entry : root->children("entry")) {
        const Node* r = entry->child("resource");
        if (r && r->type()->name == "Questionnaire" && childValue(*r, "url") == url &&
            (version.empty() || childValue(*r, "version") == version)) {
          out.questionnaire = r;
          return true;
        }
      }
    }
    const PackageRegistry& registry = ctx_.store.registry();
    const ResourceInfo* info = registry.findCanonical(canonical, "Questionnaire");
    if (!info) {
      if (const ResourceInfo* other = registry.findCanonical(canonical); other && other->resource_type != "Questionnaire") {
        report(Severity::Error, IssueType::Invalid, q_ref,
               "canonical URL '" + std::string(canonical) + "' refers to a " + other->resource_type +
                   ", but QuestionnaireResponse.questionnaire must name a Questionnaire",
               "QuestionnaireResponse.questionnaire:wrong-type");
      }
      return false;
    }
    out.questionnaire = loadQuestionnaire(*info);
    return out.questionnaire != nullptr;
  }
  // A Questionnaire of the loaded packages as a node tree (owned by this check); nullptr if unreadable.
  const Node* loadQuestionnaire(const ResourceInfo& info) {
    const rapidjson::Value* json = ctx_.store.registry().json(info);
    if (!json || !json->IsObject()) return nullptr;
    auto doc = std::make_unique<fhir::Document>();
    Node* q = doc->createRoot(doc->model().find("Questionnaire"));
    buildNodes(*doc, q, *json);
    owned_.push_back(std::move(doc));
    return q;
  }

  // Java checkAuthoringDate: answering outside the questionnaire's effective period is suspicious.
  void checkAuthored(const Node& response, const Node& questionnaire) {
    const Node* period = questionnaire.child("effectivePeriod");
    const Node* authored = response.child("authored");
    if (!period || !authored || !authored->hasValue()) return;
    auto when = instantOf(authored->value());
    if (!when) return;
    if (std::string_view end = childValue(*period, "end"); !end.empty()) {
      if (auto e = instantOf(end); e && *when > *e) {
        report(Severity::Warning, IssueType::BusinessRule, *authored,
               "the authored date '" + std::string(authored->value()) + "' is after the end of the questionnaire's "
               "effective period ('" + std::string(end) + "')", "QuestionnaireResponse.authored:after-end");
      }
    }
    if (std::string_view start = childValue(*period, "start"); !start.empty()) {
      if (auto s = instantOf(start); s && *when < *s) {
        report(Severity::Warning, IssueType::BusinessRule, *authored,
               "the authored date '" + std::string(authored->value()) + "' is before the start of the questionnaire's "
               "effective period ('" + std::string(start) + "')", "QuestionnaireResponse.authored:before-start");
      }
    }
  }

  // ---- response items ----
  // The response items under `container` (the response, an item or an answer) against the items of
  // `q_parent` (the questionnaire or an item): Java validateQuestionannaireResponseItems.
  void checkItems(const Node& q_parent, const Node& container, const ResponseStack& stack, bool not_completed) {
    std::vector<const Node*> q_items = childList(q_parent, "item");
    std::vector<std::pair<std::string_view, std::vector<const Node*>>> by_link_id;
    auto slot = [&](std::string_view link_id) -> std::vector<const Node*>& {
      for (auto& [id, list] : by_link_id) {
        if (id == link_id) return list;
      }
      return by_link_id.emplace_back(link_id, std::vector<const Node*>()).second;
    };
    int last_index = -1;
    for (const Node* item : container.children("item")) {
      std::string_view link_id = childValue(*item, "linkId");
      if (link_id.empty()) {
        report(Severity::Error, IssueType::Required, *item, "the item has no linkId, so it cannot be matched to the questionnaire",
               "QuestionnaireResponse.item:no-linkId");
        continue;
      }
      int index = -1;
      for (size_t i = 0; i < q_items.size(); ++i) {
        if (childValue(*q_items[i], "linkId") == link_id) { index = static_cast<int>(i); break; }
      }
      if (index == -1) {
        if (const Node* q_item = source_->item(link_id)) {
          report(Severity::Error, IssueType::Structure, *item,
                 "the item with linkId '" + std::string(link_id) + "' is in the wrong place: the questionnaire defines it at "
                 "another level of nesting", "QuestionnaireResponse.item:misplaced");
          checkItem(*q_item, *item, stack.push(q_item, item), not_completed);
        } else {
          report(Severity::Error, IssueType::NotFound, *item,
                 "linkId '" + std::string(link_id) + "' is not found in the questionnaire", "QuestionnaireResponse.item:linkId-unknown");
        }
        continue;
      }
      if (index < last_index) {
        report(Severity::Error, IssueType::Structure, *item,
               "the items are out of order: '" + std::string(link_id) + "' comes before it in the questionnaire",
               "QuestionnaireResponse.item:order");
      }
      last_index = index;
      slot(link_id).push_back(item);
    }
    for (const Node* q_item : q_items) {
      std::string_view link_id = childValue(*q_item, "linkId");
      const std::vector<const Node*>* present = nullptr;
      for (const auto& [id, list] : by_link_id) {
        if (id == link_id) present = &list;
      }
      const bool enabled = isEnabled(*q_item, stack);
      if (present) {
        if (!enabled) {
          for (const Node* item : *present) {
            if (item->child("answer") || item->child("item")) {
              report(Severity::Error, IssueType::Invalid, *item,
                     "the item '" + std::string(link_id) + "' has an answer, but it is not enabled (see its enableWhen)",
                     "QuestionnaireResponse.item:not-enabled");
            }
          }
        }
        if (present->size() > 1 && !isTrue(*q_item, "repeats")) {
          report(Severity::Error, IssueType::Invalid, *(*present)[1],
                 "only one response item with linkId '" + std::string(link_id) + "' is allowed (the item does not repeat), "
                 "but there are " + std::to_string(present->size()), "QuestionnaireResponse.item:repeats");
        }
        for (const Node* item : *present) checkItem(*q_item, *item, stack.push(q_item, item), not_completed);
      } else if (enabled && isTrue(*q_item, "required")) {
        report(not_completed ? Severity::Warning : Severity::Error, IssueType::Required, container,
               "no response found for the required item '" + std::string(link_id) + "'", "QuestionnaireResponse.item:required");
      }
    }
  }

  // One response item against its questionnaire item: Java validateQuestionnaireResponseItem.
  void checkItem(const Node& q_item, const Node& item, const ResponseStack& stack, bool not_completed) {
    std::string_view link_id = childValue(q_item, "linkId");
    std::string_view text = childValue(item, "text");
    if (!text.empty() && text != childValue(q_item, "text")) {
      report(Severity::Error, IssueType::Invalid, item,
             "the item text differs from the questionnaire's text for linkId '" + std::string(link_id) +
                 "'; when present it must be the same", "QuestionnaireResponse.item.text:mismatch");
    }
    std::vector<const Node*> answers = childList(item, "answer");
    std::string_view type = childValue(q_item, "type");
    const bool group_like = type == "group" || type == "question";  // "question" is R4's abstract type
    const bool fulfilled = !answers.empty() || !isTrue(q_item, "required") || group_like;
    if (!fulfilled) {
      if (not_completed) {
        report(Severity::Warning, IssueType::Required, item, "no answer found for the required item '" + std::string(link_id) + "'",
               "QuestionnaireResponse.item:required");
      } else if (isEnabled(q_item, stack)) {
        report(Severity::Error, IssueType::Required, item, "no answer found for the required item '" + std::string(link_id) + "'",
               "QuestionnaireResponse.item:required");
      }
    }
    if (answers.size() > 1 && !isTrue(q_item, "repeats")) {
      report(Severity::Error, IssueType::Invalid, *answers[1],
             "only one answer is allowed for the item '" + std::string(link_id) + "' (it does not repeat)",
             "QuestionnaireResponse.item.answer:repeats");
    }
    if (auto max = toInteger(extensionPrimitive(q_item, kExtMaxOccurs)); max && static_cast<long long>(answers.size()) > *max) {
      report(Severity::Error, IssueType::Invalid, item,
             "the maximum number of answers is " + std::to_string(*max) + " but this has " + std::to_string(answers.size()),
             "QuestionnaireResponse.item:maxOccurs");
    }
    if (auto min = toInteger(extensionPrimitive(q_item, kExtMinOccurs)); min && static_cast<long long>(answers.size()) < *min) {
      report(Severity::Error, IssueType::Invalid, item,
             "the minimum number of answers is " + std::to_string(*min) + " but this has " + std::to_string(answers.size()),
             "QuestionnaireResponse.item:minOccurs");
    }
    for (const Node* answer : answers) {
      checkAnswer(q_item, type, *answer, answers.size());
      if (!group_like) checkItems(q_item, *answer, stack, not_completed);
    }
    if (type.empty()) {
      report(Severity::Error, IssueType::Required, item,
             "the questionnaire item '" + std::string(link_id) + "' has no type, so its answers cannot be checked",
             "QuestionnaireResponse.item:no-type");
    } else if (type == "display") {
      if (item.child("item")) {
        report(Severity::Error, IssueType::Structure, item, "items of type display must not have sub-items (linkId '" +
               std::string(link_id) + "')", "QuestionnaireResponse.item:display-items");
      }
    } else if (!group_like) {
      if (item.child("item")) {
        report(Severity::Error, IssueType::Structure, item,
               "the item '" + std::string(link_id) + "' is of type " + std::string(type) +
                   ", not group: its sub-items belong inside answer.item", "QuestionnaireResponse.item:items-outside-answer");
      }
    } else {
      if (isTrue(q_item, "required") && !item.child("item")) {
        report(Severity::Error, IssueType::Invariant, item,
               "the required group '" + std::string(link_id) + "' has no sub-items", "QuestionnaireResponse.item:group-required");
      }
      checkItems(q_item, item, stack, not_completed);
    }
  }

  // The value type of an answer against item.type; returns the matched type ("" when none).
  std::string_view checkValueType(const Node& answer, std::initializer_list<std::string_view> allowed) {
    const Node* value = answer.child("value");
    if (!value) return {};
    std::string_view actual = value->type()->name;
    std::string list;
    for (std::string_view a : allowed) {
      if (a == actual) return a;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    report(Severity::Error, IssueType::Invariant, *value,
           "the answer value must be of type " + (allowed.size() > 1 ? "one of " + list : list) + ", not " + std::string(actual),
           "QuestionnaireResponse.item.answer.value:type");
    return {};
  }

  void checkAnswer(const Node& q_item, std::string_view type, const Node& answer, size_t answer_count) {
    if (type == "group" || type == "question") {
      report(Severity::Error, IssueType::Structure, answer, "items of type " + std::string(type) + " must not have answers",
             "QuestionnaireResponse.item.answer:group");
      return;
    }
    if (type == "display") {
      report(Severity::Error, IssueType::Structure, answer, "items of type display must not have answers",
             "QuestionnaireResponse.item.answer:display");
      return;
    }
    const Node* value = answer.child("value");
    if (type == "boolean") checkValueType(answer, {"boolean"});
    else if (type == "decimal") { if (!checkValueType(answer, {"decimal"}).empty()) checkDecimal(q_item, *value); }
    else if (type == "integer") { if (!checkValueType(answer, {"integer"}).empty()) checkInteger(q_item, *value); }
    else if (type == "date") { if (!checkValueType(answer, {"date"}).empty()) checkDate(q_item, *value, "date"); }
    else if (type == "dateTime") { if (!checkValueType(answer, {"dateTime"}).empty()) checkDate(q_item, *value, "dateTime"); }
    else if (type == "time") { if (!checkValueType(answer, {"time"}).empty()) checkTime(q_item, *value); }
    else if (type == "string") { if (!checkValueType(answer, {"string"}).empty()) checkString(q_item, *value); }
    else if (type == "text") checkValueType(answer, {"string"});
    else if (type == "url") checkValueType(answer, {"uri"});
    else if (type == "attachment") { if (!checkValueType(answer, {"Attachment"}).empty()) checkAttachment(q_item, *value); }
    else if (type == "reference") { if (!checkValueType(answer, {"Reference"}).empty()) checkReference(q_item, *value); }
    else if (type == "quantity") { if (!checkValueType(answer, {"Quantity"}).empty()) checkQuantity(q_item, *value); }
    else if (type == "choice" || type == "open-choice") {
      // R4 choice/open-choice: a Coding, or a date, time, integer or string from answerOption;
      // open-choice also takes free text (http://hl7.org/fhir/R4/codesystem-item-type.html).
      std::string_view matched = checkValueType(answer, {"Coding", "date", "time", "integer", "string"});
      const bool open = type == "open-choice";
      if (matched == "Coding") checkCodingAnswer(q_item, *value, answer_count);
      else if (!matched.empty()) checkPrimitiveOption(q_item, *value, matched, open);
    }
  }

  // ---- answerOption ----
  // Options of one value type ("integer", "date", "Coding", ...).
  static std::vector<const Node*> options(const Node& q_item, std::string_view value_type) {
    std::vector<const Node*> out;
    for (const Node* option : q_item.children("answerOption")) {
      const Node* v = option->child("value");
      if (v && v->type()->name == value_type) out.push_back(v);
    }
    return out;
  }
  void checkPrimitiveOption(const Node& q_item, const Node& value, std::string_view value_type, bool open) {
    if (!q_item.child("answerOption")) {
      report(Severity::Information, IssueType::Invariant, value,
             "the " + std::string(value_type) + " answer cannot be checked: the item lists no answerOption",
             "QuestionnaireResponse.item.answer:no-options");
      return;
    }
    std::vector<const Node*> list = options(q_item, value_type);
    if (value_type == "string") {
      if (!open) {
        if (list.empty()) {
          report(Severity::Error, IssueType::Invariant, value,
                 "the answer is a string, but the item offers no string options", "QuestionnaireResponse.item.answer:option-type");
        } else if (!matchesOption(list, value)) {
          report(Severity::Error, IssueType::Invariant, value,
                 "the string '" + std::string(value.value()) + "' is not in the set of permitted values (answerOption)",
                 "QuestionnaireResponse.item.answer:option");
        }
        return;
      }
      // Free text in an open-choice that spells one of the Codings was probably meant to be the Coding.
      for (const Node* coding : options(q_item, "Coding")) {
        if (equalsIgnoreCase(childValue(*coding, "display"), value.value()) ||
            equalsIgnoreCase(childValue(*coding, "code"), value.value())) {
          report(Severity::Warning, IssueType::Invariant, value,
                 "the string value '" + std::string(value.value()) + "' matches one of the Coding options, so it should "
                 "probably be that Coding", "QuestionnaireResponse.item.answer:string-matches-coding");
          break;
        }
      }
      return;
    }
    if (list.empty() && !open) {
      report(Severity::Error, IssueType::Invariant, value,
             "the answer is a " + std::string(value_type) + ", but the item offers no " + std::string(value_type) + " options",
             "QuestionnaireResponse.item.answer:option-type");
      return;
    }
    if (!matchesOption(list, value)) {
      report(Severity::Error, IssueType::Invariant, value,
             "the " + std::string(value_type) + " " + std::string(value.value()) + " is not in the set of permitted values (answerOption)",
             "QuestionnaireResponse.item.answer:option");
    }
  }
  static bool matchesOption(const std::vector<const Node*>& list, const Node& value) {
    for (const Node* option : list) {
      if (!option->hasValue() || !value.hasValue()) continue;
      if (option->value() == value.value()) return true;
      if (value.type()->name == "integer") {
        auto a = toInteger(option->value()), b = toInteger(value.value());
        if (a && b && *a == *b) return true;
      }
    }
    return false;
  }
  // answerOption for primitive item types (integer, date, time, string): the value must be one of them.
  void checkTypedOptions(const Node& q_item, const Node& value, std::string_view option_type) {
    if (!q_item.child("answerOption")) return;
    std::vector<const Node*> list = options(q_item, option_type);
    if (list.empty()) {
      report(Severity::Error, IssueType::Invariant, value,
             "the item lists answerOption, but none of type " + std::string(option_type), "QuestionnaireResponse.item.answer:option-type");
    } else if (!matchesOption(list, value)) {
      report(Severity::Error, IssueType::Invariant, value,
             "the " + std::string(value.type()->name) + " " + std::string(value.value()) + " is not in the set of permitted values (answerOption)",
             "QuestionnaireResponse.item.answer:option");
    }
  }

  void checkCodingAnswer(const Node& q_item, const Node& coding, size_t answer_count) {
    if (q_item.child("answerOption")) {
      std::string_view system = childValue(coding, "system"), code = childValue(coding, "code");
      std::vector<const Node*> list = options(q_item, "Coding");
      if (list.empty()) {
        report(Severity::Error, IssueType::Invariant, coding,
               "the answer is a Coding, but the item offers no Coding options", "QuestionnaireResponse.item.answer:option-type");
        return;
      }
      for (const Node* option : list) {
        if (childValue(*option, "system") != system || childValue(*option, "code") != code) continue;
        const Node* answer_option = option->parent();
        if (answer_option && extensionPrimitive(*answer_option, kExtOptionExclusive) == "true" && answer_count > 1) {
          report(Severity::Error, IssueType::Invariant, coding,
                 "the option " + codingText(*option) + " is exclusive: it cannot be combined with other answers",
                 "QuestionnaireResponse.item.answer:exclusive");
        }
        return;
      }
      report(Severity::Error, IssueType::Invariant, coding,
             "the code " + std::string(system) + "::" + std::string(code) + " is not in the set of permitted values (answerOption)",
             "QuestionnaireResponse.item.answer:option");
      return;
    }
    std::string_view value_set = childValue(q_item, "answerValueSet");
    if (value_set.empty()) {
      report(Severity::Information, IssueType::Invariant, coding,
             "the Coding cannot be checked: the item has neither answerOption nor answerValueSet",
             "QuestionnaireResponse.item.answer:no-options");
      return;
    }
    checkCodingInValueSet(coding, value_set);
  }

  // ---- answerValueSet ----
  // A value set contained in the questionnaire (or in the response holding a contained questionnaire).
  const Node* containedValueSet(std::string_view reference) const {
    if (!reference.starts_with("#")) return nullptr;
    for (const Node* holder : {source_->questionnaire, source_->container}) {
      if (!holder) continue;
      for (const Node* c : holder->children("contained")) {
        if (c->type()->name == "ValueSet" && childValue(*c, "id") == reference.substr(1)) return c;
      }
    }
    return nullptr;
  }
  // Membership in a contained value set: compose.include with concept lists or whole code systems.
  CodeCheck checkContainedValueSet(const Node& vs, std::string_view system, std::string_view code, std::string_view display) {
    CodeCheck result;
    const Node* compose = vs.child("compose");
    if (!compose || compose->child("exclude")) {
      result.detail = "the contained value set " + std::string(childValue(vs, "id")) + " cannot be expanded locally";
      return result;
    }
    bool unknown_part = false;
    for (const Node* include : compose->children("include")) {
      if (include->child("valueSet") || include->child("filter")) { unknown_part = true; continue; }
      if (childValue(*include, "system") != system) continue;
      if (!include->child("concept")) {
        CodeCheck cs = ctx_.terminology.checkCodeSystem(system, code, display);
        if (cs.status == CodeStatus::Valid) return cs;
        if (cs.status == CodeStatus::CannotCheck) unknown_part = true;
        continue;
      }
      for (const Node* entry : include->children("concept")) {
        if (childValue(*entry, "code") != code) continue;
        result.status = CodeStatus::Valid;
        std::string_view expected = childValue(*entry, "display");
        if (!display.empty() && !expected.empty() && expected != display) {
          result.display_mismatch = true;
          result.expected_display = std::string(expected);
        }
        return result;
      }
    }
    if (unknown_part) {
      result.detail = "the contained value set " + std::string(childValue(vs, "id")) + " cannot be expanded locally";
      return result;
    }
    result.status = CodeStatus::Invalid;
    return result;
  }
  void checkCodingInValueSet(const Node& coding, std::string_view value_set) {
    std::string_view system = childValue(coding, "system"), code = childValue(coding, "code"),
                     display = childValue(coding, "display");
    const Node* contained = containedValueSet(value_set);
    if (!contained && (value_set.starts_with("#") || !ctx_.store.registry().findCanonical(value_set, "ValueSet"))) {
      report(Severity::Warning, IssueType::CodeInvalid, coding,
             "the answer value set '" + std::string(value_set) + "' is not found, so the answer was not checked against it",
             "QuestionnaireResponse.item.answer:valueset-unknown");
      return;
    }
    if (system.empty() || code.empty()) {
      report(Severity::Warning, IssueType::CodeInvalid, coding,
             "the Coding has no " + std::string(system.empty() ? "system" : "code") +
                 ": a code without a system has no defined meaning and cannot be checked against the value set; "
                 "provide the system",
             "QuestionnaireResponse.item.answer:coding-incomplete");
      return;
    }
    CodeCheck check = contained ? checkContainedValueSet(*contained, system, code, display)
                                : ctx_.terminology.checkValueSet(value_set, system, code, display);
    std::string what = "the code '" + std::string(code) + "' in the system '" + std::string(system) + "'";
    if (check.status == CodeStatus::CannotCheck) {
      report(Severity::Warning, IssueType::CodeInvalid, coding,
             what + " could not be checked against the options value set " + std::string(value_set) + ": " + check.detail,
             "QuestionnaireResponse.item.answer:valueset-unchecked");
      return;
    }
    if (check.status == CodeStatus::Valid && !check.display_mismatch) return;
    if (check.status == CodeStatus::Valid && sameWords(display, check.expected_display)) {
      // Differs only in case or spacing: the reference warns about these rather than failing the code.
      report(Severity::Warning, IssueType::Invalid, coding,
             "the display '" + std::string(display) + "' for " + std::string(system) + "#" + std::string(code) +
                 " differs in case or spacing from the valid display '" + check.expected_display + "'",
             "QuestionnaireResponse.item.answer:display-case");
      return;
    }
    if (check.display_mismatch) {
      // Against the questionnaire's options a wrong display fails the code check (as the reference does).
      report(Severity::Error, IssueType::Invalid, coding,
             "wrong display name '" + std::string(display) + "' for " + std::string(system) + "#" + std::string(code) +
                 "; the valid display is '" + check.expected_display + "'",
             "QuestionnaireResponse.item.answer:display");
    }
    report(Severity::Error, IssueType::CodeInvalid, coding,
           what + " is not in the options value set " + std::string(value_set) + " specified by the questionnaire",
           "QuestionnaireResponse.item.answer:valueset");
  }

  // ---- value rules per item type ----
  void checkDecimal(const Node& q_item, const Node& value) {
    if (!value.hasValue()) return;
    auto v = toDecimal(value.value());
    if (!v) return;
    if (auto min = toDecimal(extensionPrimitive(q_item, kExtMinValue)); min && *v < *min) {
      report(Severity::Error, IssueType::Invariant, value,
             "the value " + std::string(value.value()) + " is less than the allowed minimum of " +
                 std::string(extensionPrimitive(q_item, kExtMinValue)), "QuestionnaireResponse.item.answer:minValue");
    }
    if (auto max = toDecimal(extensionPrimitive(q_item, kExtMaxValue)); max && *v > *max) {
      report(Severity::Error, IssueType::Invariant, value,
             "the value " + std::string(value.value()) + " is greater than the allowed maximum of " +
                 std::string(extensionPrimitive(q_item, kExtMaxValue)), "QuestionnaireResponse.item.answer:maxValue");
    }
    checkDecimalPlaces(q_item, value, value.value());
  }
  void checkDecimalPlaces(const Node& q_item, const Node& at, std::string_view text) {
    auto limit = toInteger(extensionPrimitive(q_item, kExtMaxDecimals));
    if (limit && static_cast<long long>(decimalPlaces(text)) > *limit) {
      report(Severity::Error, IssueType::Invariant, at,
             "the value " + std::string(text) + " has too many decimal places (limit = " + std::to_string(*limit) + ")",
             "QuestionnaireResponse.item.answer:maxDecimalPlaces");
    }
  }
  void checkInteger(const Node& q_item, const Node& value) {
    if (!value.hasValue()) return;
    auto v = toInteger(value.value());
    if (!v) return;
    if (auto min = toInteger(extensionPrimitive(q_item, kExtMinValue)); min && *v < *min) {
      report(Severity::Error, IssueType::Invariant, value,
             "the value " + std::string(value.value()) + " is less than the allowed minimum of " + std::to_string(*min),
             "QuestionnaireResponse.item.answer:minValue");
    }
    if (auto max = toInteger(extensionPrimitive(q_item, kExtMaxValue)); max && *v > *max) {
      report(Severity::Error, IssueType::Invariant, value,
             "the value " + std::string(value.value()) + " is greater than the allowed maximum of " + std::to_string(*max),
             "QuestionnaireResponse.item.answer:maxValue");
    }
    checkTypedOptions(q_item, value, "integer");
  }
  void checkDate(const Node& q_item, const Node& value, std::string_view type) {
    if (!value.hasValue()) return;
    auto v = instantOf(value.value());
    if (v) {
      std::string_view min_text = extensionPrimitive(q_item, kExtMinValue);
      if (auto min = instantOf(min_text); min && *v < *min) {
        report(Severity::Error, IssueType::Invariant, value,
               "the value " + std::string(value.value()) + " is less than the allowed minimum of " + std::string(min_text),
               "QuestionnaireResponse.item.answer:minValue");
      }
      std::string_view max_text = extensionPrimitive(q_item, kExtMaxValue);
      if (auto max = instantOf(max_text); max && *v > *max) {
        report(Severity::Error, IssueType::Invariant, value,
               "the value " + std::string(value.value()) + " is greater than the allowed maximum of " + std::string(max_text),
               "QuestionnaireResponse.item.answer:maxValue");
      }
    }
    (void)type;
    checkTypedOptions(q_item, value, "date");  // R4 answerOption has valueDate, no valueDateTime
  }
  void checkTime(const Node& q_item, const Node& value) {
    if (!value.hasValue()) return;
    std::string_view min = extensionPrimitive(q_item, kExtMinValue), max = extensionPrimitive(q_item, kExtMaxValue);
    if (!min.empty() && value.value() < min) {
      report(Severity::Error, IssueType::Invariant, value,
             "the time " + std::string(value.value()) + " is earlier than the allowed minimum of " + std::string(min),
             "QuestionnaireResponse.item.answer:minValue");
    }
    if (!max.empty() && value.value() > max) {
      report(Severity::Error, IssueType::Invariant, value,
             "the time " + std::string(value.value()) + " is later than the allowed maximum of " + std::string(max),
             "QuestionnaireResponse.item.answer:maxValue");
    }
    checkTypedOptions(q_item, value, "time");
  }
  void checkString(const Node& q_item, const Node& value) {
    if (!value.hasValue()) return;
    std::string_view s = value.value();
    if (auto min = toInteger(extensionPrimitive(q_item, kExtMinLength)); min && static_cast<long long>(codePoints(s)) < *min) {
      report(Severity::Error, IssueType::Invariant, value,
             "the answer '" + std::string(s) + "' is shorter than the required minimum length of " + std::to_string(*min),
             "QuestionnaireResponse.item.answer:minLength");
    }
    if (auto max = toInteger(childValue(q_item, "maxLength")); max && static_cast<long long>(codePoints(s)) > *max) {
      report(Severity::Error, IssueType::Invariant, value,
             "the answer '" + std::string(s) + "' is longer than the allowed maximum length of " + std::to_string(*max),
             "QuestionnaireResponse.item.answer:maxLength");
    }
    if (std::string_view pattern = extensionPrimitive(q_item, kExtRegex); !pattern.empty()) {
      const RegexCheck& re = itemRegex(q_item, pattern);
      if (!re.matcher) {
        report(Severity::Warning, IssueType::NotSupported, value,
               "the regex extension of the item ('" + std::string(pattern.substr(0, kMaxRegexPattern)) + "') " + re.problem +
                   ", so the answer format was not checked", "QuestionnaireResponse.item.answer:regex-unsupported");
      } else if (s.size() > kMaxRegexInput) {
        report(Severity::Warning, IssueType::TooCostly, value,
               "the answer is longer than " + std::to_string(kMaxRegexInput) + " bytes, so its format (regex extension) was not checked",
               "QuestionnaireResponse.item.answer:regex-unchecked");
      } else if (!re.matcher->search(s)) {
        std::string_view format = extensionPrimitive(q_item, kExtEntryFormat);
        report(Severity::Error, IssueType::Invariant, value,
               "the answer '" + std::string(s) + "' does not conform to the expected format" +
                   (format.empty() ? std::string() : " '" + std::string(format) + "'") + " (regex '" + std::string(pattern) + "')",
               "QuestionnaireResponse.item.answer:regex");
      }
    }
    if (s.find_first_of("\r\n") != std::string_view::npos) {
      report(Severity::Warning, IssueType::Invariant, value,
             "the answer contains a line break, which an item of type string should not hold (use type text)",
             "QuestionnaireResponse.item.answer:line-break");
    }
    if (std::string_view vs = childValue(q_item, "answerValueSet"); !vs.empty()) {
      if (!ctx_.store.registry().findCanonical(vs, "ValueSet")) {
        report(Severity::Warning, IssueType::Invariant, value,
               "the answer value set '" + std::string(vs) + "' is not found, so the answer was not checked against it",
               "QuestionnaireResponse.item.answer:valueset-unknown");
      } else {
        CodeCheck check = ctx_.terminology.checkValueSet(vs, "", s);
        if (check.status == CodeStatus::Invalid) {
          report(Severity::Error, IssueType::Invariant, value,
                 "the value '" + std::string(s) + "' is not in the list of allowed values (value set '" + std::string(vs) + "')",
                 "QuestionnaireResponse.item.answer:valueset");
        } else if (check.status == CodeStatus::CannotCheck) {
          report(Severity::Warning, IssueType::Invariant, value,
                 "the value '" + std::string(s) + "' could not be checked against the value set '" + std::string(vs) + "': " +
                     check.detail, "QuestionnaireResponse.item.answer:valueset-unchecked");
        }
      }
    }
    checkTypedOptions(q_item, value, "string");
  }

  void checkAttachment(const Node& q_item, const Node& value) {
    std::vector<const Node*> mime_types = extensions(q_item, kExtMimeType);
    if (!mime_types.empty()) {
      std::string_view content_type = childValue(value, "contentType");
      if (content_type.empty()) {
        report(Severity::Error, IssueType::Required, value,
               "the attachment has no contentType, but the questionnaire restricts the mime types", "QuestionnaireResponse.item.answer:mimeType");
      } else {
        bool ok = false;
        std::string allowed;
        for (const Node* ext : mime_types) {
          std::string_view m = childValue(*ext, "value");
          if (m.empty()) continue;
          allowed += (allowed.empty() ? "" : ", ") + std::string(m);
          ok = ok || content_type.starts_with(m);
        }
        if (!ok) {
          report(Severity::Error, IssueType::Required, value,
                 "the attachment's content type " + std::string(content_type) + " is not allowed (allowed: " + allowed + ")",
                 "QuestionnaireResponse.item.answer:mimeType");
        }
      }
    }
    auto max = toDecimal(extensionPrimitive(q_item, kExtMaxSize));
    std::string_view data = childValue(value, "data");
    if (max && *max > 0 && !data.empty()) {
      size_t bytes = base64DecodedSize(data);
      if (static_cast<double>(bytes) > *max) {
        report(Severity::Error, IssueType::Required, value,
               "the attachment is " + std::to_string(bytes) + " bytes, more than the allowed maximum of " +
                   std::string(extensionPrimitive(q_item, kExtMaxSize)), "QuestionnaireResponse.item.answer:maxSize");
      }
    }
  }

  // The resource type a reference names: "Patient" for "Patient/1", ".../fhir/Patient/1/_history/2",
  // the contained or Bundle resource it points at; empty when it cannot be told.
  std::string resourceTypeOf(const Node& reference_node, std::string_view ref) const {
    if (ref.starts_with("#")) {
      const Node* resource = reference_node.enclosingResource();
      while (resource && resource->element() && resource->element()->name == "contained" && resource->parent()) {
        resource = resource->parent()->enclosingResource();
      }
      if (resource) {
        for (const Node* c : resource->children("contained")) {
          if (childValue(*c, "id") == ref.substr(1)) return std::string(c->type()->name);
        }
      }
      return {};
    }
    const Node* root = ctx_.document.root();
    if (root && root->type()->name == "Bundle") {
      for (const Node* entry : root->children("entry")) {
        const Node* r = entry->child("resource");
        if (r && childValue(*entry, "fullUrl") == ref) return std::string(r->type()->name);
      }
    }
    if (ref.starts_with("urn:")) return {};
    if (size_t h = ref.find("/_history/"); h != std::string_view::npos) ref = ref.substr(0, h);
    size_t last = ref.rfind('/');
    if (last == std::string_view::npos || last == 0) return {};
    size_t prev = ref.rfind('/', last - 1);
    return std::string(ref.substr(prev == std::string_view::npos ? 0 : prev + 1, last - (prev == std::string_view::npos ? 0 : prev + 1)));
  }
  // Only with assume_valid_rest_references, as the reference validator: otherwise the reference
  // checks of the base validation are all there is.
  void checkReference(const Node& q_item, const Node& value) {
    std::string_view ref = childValue(value, "reference");
    if (ref.empty() || !ctx_.options.assume_valid_rest_references) return;
    std::string type = resourceTypeOf(value, ref);
    std::vector<const Node*> allowed_ext = extensions(q_item, kExtReferenceResource);
    if (!allowed_ext.empty()) {
      if (type.empty()) {
        report(Severity::Error, IssueType::Invariant, value,
               "the resource type of the reference " + std::string(ref) + " cannot be determined, but the questionnaire "
               "restricts the types", "QuestionnaireResponse.item.answer:reference-type");
        return;
      }
      bool ok = false;
      std::string allowed;
      for (const Node* ext : allowed_ext) {
        std::string_view t = childValue(*ext, "value");
        allowed += (allowed.empty() ? "" : ",") + std::string(t);
        ok = ok || t == type;
      }
      if (!ok) {
        report(Severity::Error, IssueType::Invariant, value,
               "the resource type '" + type + "' in the reference " + std::string(ref) + " is not allowed (allowed = " + allowed + ")",
               "QuestionnaireResponse.item.answer:reference-type");
      }
      return;
    }
    if (!type.empty()) {
      const fhir::TypeInfo* info = fhir::TypeModel::r4().find(type);
      if (!info || !info->isResource() || info->is_abstract) {
        report(Severity::Error, IssueType::Invariant, value,
               "the resource type " + type + " in the reference " + std::string(ref) + " is not a FHIR resource type",
               "QuestionnaireResponse.item.answer:reference-type");
      }
    }
  }

  void checkQuantity(const Node& q_item, const Node& value) {
    std::string_view v = childValue(value, "value");
    auto number = toDecimal(v);
    auto bound = [&](std::string_view sdc_url, std::string_view core_url) {
      const Node* b = extensionValue(q_item, sdc_url);
      return b ? b : extensionValue(q_item, core_url);
    };
    auto compare = [&](const Node* limit, bool is_min) {
      if (!limit || limit->type()->name != "Quantity" || !number) return;
      std::string_view rule = is_min ? "QuestionnaireResponse.item.answer:minQuantity" : "QuestionnaireResponse.item.answer:maxQuantity";
      std::string_view which = is_min ? "minimum" : "maximum";
      auto limit_number = toDecimal(childValue(*limit, "value"));
      std::string_view ls = childValue(*limit, "system"), lc = childValue(*limit, "code");
      std::string_view vs = childValue(value, "system"), vc = childValue(value, "code");
      if (!limit_number) return;
      if (ls.empty() || lc.empty() || vs.empty() || vc.empty()) {
        report(Severity::Error, IssueType::Invariant, value,
               "the quantity " + quantityText(value) + " cannot be compared to the allowed " + std::string(which) + " of " +
                   quantityText(*limit) + " because no formal units (system and code) are specified",
               std::string(rule));
        return;
      }
      double a = *number, b = *limit_number;
      bool comparable = ls == vs && lc == vc;
      if (!comparable && ls == kUcum && vs == kUcum) {
        auto ca = ucumCanonical(vc), cb = ucumCanonical(lc);
        if (ca && cb && ca->dims == cb->dims) {
          a *= ca->factor;
          b *= cb->factor;
          comparable = true;
        }
      }
      if (!comparable) {
        report(Severity::Error, IssueType::Invariant, value,
               "the quantity " + quantityText(value) + " cannot be compared to the allowed " + std::string(which) + " of " +
                   quantityText(*limit) + ": the units are not comparable", std::string(rule));
        return;
      }
      // Relative tolerance for unit conversion (1000 m against 1 km).
      const double eps = 1e-9 * std::max(std::fabs(a), std::fabs(b));
      if (is_min ? a < b - eps : a > b + eps) {
        report(Severity::Error, IssueType::Invariant, value,
               "the quantity " + quantityText(value) + " is " + (is_min ? "less" : "greater") + " than the allowed " +
                   std::string(which) + " of " + quantityText(*limit), std::string(rule));
      }
    };
    compare(bound(kExtSdcMinQuantity, kExtMinQuantity), true);
    compare(bound(kExtSdcMaxQuantity, kExtMaxQuantity), false);
    if (!v.empty()) checkDecimalPlaces(q_item, value, v);
    std::vector<const Node*> unit_options = extensions(q_item, kExtUnitOption);
    if (!unit_options.empty()) {
      bool matched = false;
      std::string allowed;
      for (const Node* ext : unit_options) {
        const Node* c = ext->child("value");
        if (!c || c->type()->name != "Coding") continue;
        allowed += (allowed.empty() ? "" : ",") + codingText(*c);
        std::string_view cs = childValue(*c, "system"), cc = childValue(*c, "code"), cd = childValue(*c, "display");
        matched = matched || ((cs.empty() || cs == childValue(value, "system")) && (cc.empty() || cc == childValue(value, "code")) &&
                              (cd.empty() || cd == childValue(value, "unit")));
      }
      if (!matched) {
        report(Severity::Error, IssueType::Invariant, value,
               "the value " + quantityText(value) + " has a unit that is not one of the allowed units (" + allowed + ")",
               "QuestionnaireResponse.item.answer:unitOption");
      }
    }
    if (std::string_view vs_url = extensionPrimitive(q_item, kExtUnitValueSet); !vs_url.empty()) {
      if (!ctx_.store.registry().findCanonical(vs_url, "ValueSet")) {
        report(Severity::Warning, IssueType::Invariant, value,
               "the unit value set '" + std::string(vs_url) + "' is not found, so the unit was not checked",
               "QuestionnaireResponse.item.answer:unitValueSet-unknown");
      } else {
        std::string_view code = childValue(value, "code");
        CodeCheck check;
        if (code.empty()) check.status = CodeStatus::Invalid;
        else check = ctx_.terminology.checkValueSet(vs_url, childValue(value, "system"), code);
        if (check.status == CodeStatus::Invalid) {
          report(Severity::Error, IssueType::Invariant, value,
                 "the value " + quantityText(value) + " has a unit that is not in the unit value set '" + std::string(vs_url) + "'",
                 "QuestionnaireResponse.item.answer:unitValueSet");
        } else if (check.status == CodeStatus::CannotCheck) {
          report(Severity::Warning, IssueType::Invariant, value,
                 "the unit of " + quantityText(value) + " could not be checked against the unit value set '" + std::string(vs_url) +
                     "': " + check.detail, "QuestionnaireResponse.item.answer:unitValueSet-unchecked");
        }
      }
    }
  }

  // ---- enableWhen (Java EnableWhenEvaluator) ----
  bool isEnabled(const Node& q_item, const ResponseStack& stack) {
    std::string expression(extensionPrimitive(q_item, kExtFinnishEnableWhen));
    if (expression.empty()) {
      if (const Node* expr = extensionValue(q_item, kExtSdcEnableWhenExpression); expr && expr->type()->name == "Expression" &&
          childValue(*expr, "language") == "text/fhirpath") {
        expression = std::string(childValue(*expr, "expression"));
      }
    }
    if (!expression.empty()) return evaluateEnableWhenExpression(expression, q_item, stack).value_or(true);
    std::vector<const Node*> conditions = childList(q_item, "enableWhen");
    if (conditions.empty()) return true;
    std::vector<bool> results;
    for (const Node* ew : conditions) results.push_back(evaluateCondition(*ew, q_item, stack));
    std::string_view behavior = childValue(q_item, "enableBehavior");
    if (behavior == "any" || results.size() == 1) return std::find(results.begin(), results.end(), true) != results.end();
    if (behavior == "all") return std::find(results.begin(), results.end(), false) == results.end();
    return true;  // several conditions without enableBehavior break que-12; the item counts as enabled
  }
  // The expression on the response; empty or false: disabled. nullopt when it cannot be evaluated
  // (no FHIRPath engine, syntax error, unknown variables such as %patient): the item counts as
  // enabled, because we must not claim an answer is forbidden from an expression that never ran.
  //
  // The SDC variables in scope (extension 'variable' on the questionnaire, the enclosing items and
  // the item itself, outer first, so inner ones shadow) are defined on the response first, each
  // evaluated with the response as focus, as the reference does.
  std::optional<bool> evaluateEnableWhenExpression(const std::string& expression, const Node& q_item,
                                                   const ResponseStack& stack) {
    const InvariantEngine* engine = ctx_.store.invariantEngine();
    if (!engine) return std::nullopt;
    std::string text = "%resource";
    auto addVariables = [&](const Node& holder) {
      for (const Node* ext : extensions(holder, kExtVariable)) {
        const Node* v = ext->child("value");
        if (!v || v->type()->name != "Expression" || childValue(*v, "language") != "text/fhirpath") continue;
        std::string_view name = childValue(*v, "name"), expr = childValue(*v, "expression");
        if (name.empty() || expr.empty() || name.find_first_of("'\\") != std::string_view::npos) continue;
        text += ".defineVariable('" + std::string(name) + "', " + std::string(expr) + ")";
      }
    };
    addVariables(*source_->questionnaire);
    for (const auto& [q, r] : stack.items) {
      if (q != &q_item) addVariables(*q);
    }
    addVariables(q_item);
    text += ".select(iif((" + expression + ") = true, true, false))";
    auto compiled = engine->compile(text, "QuestionnaireResponse");
    if (!compiled) return std::nullopt;
    auto result = (*compiled)->holds(*stack.response, *stack.response, *stack.response);
    if (!result) return std::nullopt;
    return *result;
  }
  bool evaluateCondition(const Node& ew, const Node& q_item, const ResponseStack& stack) {
    std::string_view question = childValue(ew, "question");
    std::string_view op = childValue(ew, "operator");
    const Node* expected = ew.child("answer");
    std::vector<const Node*> values = questionAnswers(stack, q_item, question);
    if (op == "exists") {
      if (!expected || expected->type()->name != "boolean") return true;  // que-7 reports it
      return (expected->value() == "true") != values.empty();
    }
    if (!expected) return true;
    for (const Node* v : values) {
      if (answerMatches(*v, *expected, op)) return true;
    }
    return false;
  }
  // The answers to `question` that `source_item` depends on: in the innermost response group that
  // corresponds to the questionnaire group holding both items (see chat.fhir.org, topic enable-when).
  std::vector<const Node*> questionAnswers(const ResponseStack& stack, const Node& source_item, std::string_view question) {
    std::vector<const Node*> out;
    const Node* target = source_->item(question);
    if (!target) return out;
    const Node* group = source_->commonGroup(&source_item, target);
    if (!group) {
      collectAnswers(*stack.response, question, out);
      return out;
    }
    for (size_t i = stack.items.size(); i-- > 0;) {
      if (stack.items[i].first == group) {
        collectAnswers(*stack.items[i].second, question, out);
        break;
      }
    }
    return out;
  }
  // Everything inside the item's answers: the values, and (as the reference counts them for
  // 'exists') extensions and nested items, which never equal an expected answer.
  static void answerValues(const Node& item, std::vector<const Node*>& out) {
    for (const Node* answer : item.children("answer")) {
      for (const Node* c : answer->children()) {
        if (c->name() != "id") out.push_back(c);
      }
    }
  }
  static void collectAnswers(const Node& focus, std::string_view question, std::vector<const Node*>& out) {
    for (const Node* item : focus.children("item")) {
      if (childValue(*item, "linkId") == question) answerValues(*item, out);
      collectAnswers(*item, question, out);
    }
    for (const Node* answer : focus.children("answer")) collectAnswers(*answer, question, out);
    // An item may depend on the question it is nested in (through answer.item).
    if (focus.type()->name != "QuestionnaireResponse" && childValue(focus, "linkId") == question) answerValues(focus, out);
  }
  static bool answerMatches(const Node& actual, const Node& expected, std::string_view op) {
    if (actual.name() != "value") return false;
    std::string_view type = expected.type()->name;
    if (actual.type()->name != type) return false;
    if (type == "Coding") {
      std::string_view es = childValue(expected, "system"), ec = childValue(expected, "code");
      bool same = (es.empty() || es == childValue(actual, "system")) &&
                  (ec.empty() ? !actual.child("code") : ec == childValue(actual, "code"));
      if (op == "=") return same;
      if (op == "!=") return !same;
      return false;
    }
    std::optional<int> cmp;
    if (type == "Quantity") {
      auto a = toDecimal(childValue(actual, "value")), b = toDecimal(childValue(expected, "value"));
      if (a && b) cmp = *a < *b ? -1 : *a > *b ? 1 : 0;
    } else if (actual.hasValue() && expected.hasValue()) {
      std::string_view a = actual.value(), b = expected.value();
      if (type == "integer" || type == "decimal") {
        auto x = toDecimal(a), y = toDecimal(b);
        if (x && y) cmp = *x < *y ? -1 : *x > *y ? 1 : 0;
      } else if (type == "date" || type == "dateTime") {
        auto x = instantOf(a), y = instantOf(b);
        if (x && y) cmp = *x < *y ? -1 : *x > *y ? 1 : 0;
      } else {  // boolean (false < true), string, time, uri: as text
        int c = a.compare(b);
        cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
      }
    }
    if (!cmp) return false;
    if (op == "=") return *cmp == 0;
    if (op == "!=") return *cmp != 0;
    if (op == ">") return *cmp > 0;
    if (op == "<") return *cmp < 0;
    if (op == ">=") return *cmp >= 0;
    if (op == "<=") return *cmp <= 0;
    return false;
  }

  const QuestionnaireContext& ctx_;
  const QuestionnaireSource* source_ = nullptr;
  std::vector<std::unique_ptr<fhir::Document>> owned_;  // questionnaires built from package JSON
};

}  // namespace

void checkQuestionnaireRules(const fhir::Node& resource, const QuestionnaireContext& context) {
  std::string_view type = resource.type()->name;
  if (type == "Questionnaire") {
    QuestionnaireChecks(context).checkQuestionnaire(resource);
  } else if (type == "QuestionnaireResponse") {
    QuestionnaireChecks(context).checkResponse(resource);
  }
}

}  // namespace medicus::profiles
