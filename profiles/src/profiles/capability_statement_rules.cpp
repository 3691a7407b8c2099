#include "profiles/capability_statement_rules.h"

#include <rapidjson/document.h>

#include <string>

#include "profiles/json_util.h"
#include "profiles/node_util.h"

namespace medicus::profiles {

void checkCapabilityStatement(const fhir::Node& statement, const PackageRegistry& registry,
                              const fhir::Document& document, fhir::Issues& issues) {
  for (const fhir::Node* rest : statement.children("rest")) {
    for (const fhir::Node* resource : rest->children("resource")) {
      for (const fhir::Node* param : resource->children("searchParam")) {
        std::string_view definition = childValue(*param, "definition");
        std::string_view type = childValue(*param, "type");
        if (definition.empty() || type.empty()) continue;
        const ResourceInfo* info = registry.findCanonical(definition, "SearchParameter");
        const rapidjson::Value* sp = info ? registry.json(*info) : nullptr;
        std::string_view defined = sp ? memberStr(*sp, "type") : std::string_view();
        if (defined.empty() || defined == type) continue;
        fhir::Issue issue;
        issue.severity = fhir::Severity::Error;
        issue.type = fhir::IssueType::BusinessRule;
        issue.message = "search parameter '" + std::string(childValue(*param, "name")) + "' has type " +
                        std::string(type) + ", but its definition " + std::string(definition) + " has type " +
                        std::string(defined);
        issue.expression = fhir::pathOf(*param);
        issue.position = document.positionOf(*param);
        issue.rule_id = "CapabilityStatement.rest.resource.searchParam:type";
        issues.push_back(std::move(issue));
      }
    }
  }
}

}  // namespace medicus::profiles
