#include "profiles/search_parameter_rules.h"

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "medicus/fhir/type_model.h"
#include "profiles/json_util.h"
#include "profiles/node_util.h"

namespace medicus::profiles {
namespace {
using fhir::IssueType;
using fhir::Node;
using fhir::Severity;

void add(const fhir::Document& doc, fhir::Issues& issues, const Node& node, std::string message, std::string rule_id) {
  fhir::Issue issue;
  issue.severity = Severity::Error;
  issue.type = IssueType::BusinessRule;
  issue.message = std::move(message);
  issue.expression = fhir::pathOf(node);
  issue.position = doc.positionOf(node);
  issue.rule_id = std::move(rule_id);
  issues.push_back(std::move(issue));
}

// The top-level union parts of a FHIRPath expression: split at '|' outside parentheses, brackets,
// strings and `quoted identifiers`.
std::vector<std::string_view> unionParts(std::string_view e) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    char c = e[i];
    if (c == '\'' || c == '`') {
      char q = c;
      for (++i; i < e.size() && e[i] != q; ++i) if (e[i] == '\\') ++i;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      --depth;
    } else if (c == '|' && depth == 0) {
      parts.push_back(e.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(e.substr(start));
  return parts;
}

// The identifier a part starts with, after blanks and opening parentheses ("(Observation.value as
// Quantity)" gives Observation); empty when it starts otherwise (a function, %variable, literal).
std::string_view leadingName(std::string_view part) {
  size_t i = 0;
  while (i < part.size() && (part[i] == ' ' || part[i] == '\t' || part[i] == '\n' || part[i] == '\r' || part[i] == '(')) ++i;
  size_t start = i;
  while (i < part.size() && (std::isalnum(static_cast<unsigned char>(part[i])) || part[i] == '_')) ++i;
  if (i == start) return {};
  // A function call ("resolve()", "where(...)") is no type name.
  size_t j = i;
  while (j < part.size() && part[j] == ' ') ++j;
  if (j < part.size() && part[j] == '(') return {};
  return part.substr(start, i - start);
}

}  // namespace

void checkSearchParameter(const Node& parameter, const PackageRegistry& registry, const fhir::Document& document,
                          fhir::Issues& issues) {
  const fhir::TypeModel& model = fhir::TypeModel::r4();
  std::vector<const fhir::TypeInfo*> bases;
  std::vector<std::string_view> base_names;
  for (const Node* b : parameter.children("base")) {
    if (!b->hasValue()) continue;
    base_names.push_back(b->value());
    if (const fhir::TypeInfo* t = model.find(b->value()); t && t->isResource()) bases.push_back(t);
  }

  std::string_view derived_from = childValue(parameter, "derivedFrom");
  if (!derived_from.empty()) {
    const ResourceInfo* info = registry.findCanonical(derived_from, "SearchParameter");
    const rapidjson::Value* parent = info ? registry.json(*info) : nullptr;
    if (parent && parent->IsObject()) {
      std::string_view type = childValue(parameter, "type");
      std::string_view parent_type = memberStr(*parent, "type");
      if (!type.empty() && !parent_type.empty() && type != parent_type) {
        add(document, issues, parameter,
            "the type " + std::string(type) + " differs from the type " + std::string(parent_type) +
                " of the SearchParameter it is derived from (" + std::string(derived_from) + ")",
            "SearchParameter.derivedFrom:type");
      }
      if (const rapidjson::Value* parent_bases = memberArray(*parent, "base")) {
        for (std::string_view b : base_names) {
          bool listed = false;
          for (const auto& pb : parent_bases->GetArray()) listed = listed || str(pb) == b;
          if (!listed) {
            add(document, issues, parameter,
                "the resource type " + std::string(b) + " is not a base of the SearchParameter this one is derived "
                "from (" + std::string(derived_from) + ")",
                "SearchParameter.derivedFrom:base");
          }
        }
      }
    }
  }

  // Only when every base is a known resource type: the expression is checked against them.
  const Node* expression = parameter.child("expression");
  if (!expression || !expression->hasValue() || bases.empty() || bases.size() != base_names.size()) return;
  for (std::string_view part : unionParts(expression->value())) {
    std::string_view name = leadingName(part);
    if (name.empty() || !std::isupper(static_cast<unsigned char>(name[0]))) continue;
    const fhir::TypeInfo* type = model.find(name);
    if (!type || !type->isResource()) continue;
    bool fits = false;
    for (const fhir::TypeInfo* b : bases) fits = fits || b->isA(type) || type->isA(b);
    if (!fits) {
      std::string list;
      for (std::string_view b : base_names) list += (list.empty() ? "" : ", ") + std::string(b);
      add(document, issues, *expression,
          "the search expression starts at " + std::string(name) + ", which is not a base of this SearchParameter (" +
              list + ")",
          "SearchParameter.expression:base");
      return;  // one report per expression, as for a type error in it
    }
  }
}

}  // namespace medicus::profiles
