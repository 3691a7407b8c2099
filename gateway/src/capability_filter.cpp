#include "capability_filter.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace medicus::gateway {
namespace {

bool sameMethod(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

bool routeAllows(const RouteConfig& route, std::string_view type, std::string_view method) {
  const auto& types = route.match.resource_types;
  if (!types.empty() && std::find(types.begin(), types.end(), type) == types.end()) return false;
  if (method.empty() || route.match.methods.empty()) return true;
  return std::any_of(route.match.methods.begin(), route.match.methods.end(),
                     [&](const std::string& m) { return sameMethod(m, method); });
}

// TypeRestfulInteraction -> the HTTP method it needs (http://hl7.org/fhir/R4/http.html).
std::string_view methodOf(std::string_view interaction) {
  if (interaction == "create") return "POST";
  if (interaction == "update") return "PUT";
  if (interaction == "patch") return "PATCH";
  if (interaction == "delete") return "DELETE";
  return "GET";  // read, vread, search-type, history-instance, history-type
}

}  // namespace

void restrictCapabilities(fhir::Document& capabilities, const std::vector<const RouteConfig*>& routes) {
  fhir::Node* root = capabilities.root();
  if (!root || root->name() != "CapabilityStatement") return;
  auto allowed = [&](std::string_view type, std::string_view method) {
    return std::any_of(routes.begin(), routes.end(), [&](const RouteConfig* r) { return routeAllows(*r, type, method); });
  };
  for (fhir::Node* rest : root->children("rest")) {
    std::vector<fhir::Node*> drop_resources;
    for (fhir::Node* resource : rest->children("resource")) {
      const fhir::Node* type = resource->child("type");
      std::string_view type_name = type ? type->value() : std::string_view();
      if (!allowed(type_name, "")) {
        drop_resources.push_back(resource);
        continue;
      }
      std::vector<fhir::Node*> drop_interactions;
      for (fhir::Node* interaction : resource->children("interaction")) {
        const fhir::Node* code = interaction->child("code");
        if (code && !allowed(type_name, methodOf(code->value()))) drop_interactions.push_back(interaction);
      }
      for (fhir::Node* i : drop_interactions) capabilities.removeChild(resource, i);
    }
    for (fhir::Node* r : drop_resources) capabilities.removeChild(rest, r);
  }
}

}  // namespace medicus::gateway
