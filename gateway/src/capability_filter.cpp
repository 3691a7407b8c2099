#include "capability_filter.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "medicus/fhir/format.h"
#include "medicus/fhir/type_model.h"

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

namespace {

void appendString(std::string& out, std::string_view text) {
  out += '"';
  fhir::appendJsonEscaped(out, text);
  out += '"';
}

}  // namespace

std::unique_ptr<fhir::Document> buildCapabilities(const std::vector<const RouteConfig*>& routes, std::string_view base_url,
                                                  std::string_view date, std::string_view description) {
  auto allowed = [&](std::string_view type, std::string_view method) {
    return std::any_of(routes.begin(), routes.end(), [&](const RouteConfig* r) { return routeAllows(*r, type, method); });
  };
  // Resource types: those the routes name, or all concrete R4 resources when a route takes any type.
  std::vector<std::string> types;
  bool any_type = std::any_of(routes.begin(), routes.end(), [](const RouteConfig* r) { return r->match.resource_types.empty(); });
  if (any_type) {
    for (const fhir::TypeInfo& t : fhir::TypeModel::r4().types()) {
      if (t.isResource() && !t.is_abstract && t.name.find('.') == std::string_view::npos) types.emplace_back(t.name);
    }
  } else {
    for (const RouteConfig* r : routes) types.insert(types.end(), r->match.resource_types.begin(), r->match.resource_types.end());
  }
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());

  static constexpr std::string_view kTypeInteractions[] = {"read",   "vread",  "update",           "patch",       "delete",
                                                           "history-instance", "history-type", "create", "search-type"};
  std::string json = R"({"resourceType":"CapabilityStatement","status":"active","date":)";
  appendString(json, date);
  json += R"(,"publisher":"medicus-gateway","kind":"instance","software":{"name":"medicus-gateway"},"implementation":{"description":)";
  appendString(json, description);
  json += R"(,"url":)";
  appendString(json, base_url);
  json += R"(},"fhirVersion":"4.0.1","format":["json","xml"],"patchFormat":["application/json-patch+json","application/fhir+json"],)";
  json += R"("rest":[{"mode":"server","documentation":)";
  appendString(json, description);
  json += R"(,"resource":[)";
  bool first_type = true;
  for (const std::string& type : types) {
    std::string interactions;
    for (std::string_view code : kTypeInteractions) {
      if (!allowed(type, methodOf(code))) continue;
      if (!interactions.empty()) interactions += ',';
      interactions += R"({"code":")" + std::string(code) + R"("})";
    }
    if (interactions.empty()) continue;
    if (!first_type) json += ',';
    first_type = false;
    json += R"({"type":)";
    appendString(json, type);
    json += R"(,"interaction":[)" + interactions + "]}";
  }
  json += "]";
  // System interactions: on the base itself, so only routes that take requests without a type.
  std::string system;
  auto systemAllowed = [&](std::string_view method) {
    return std::any_of(routes.begin(), routes.end(), [&](const RouteConfig* r) {
      return r->match.resource_types.empty() && routeAllows(*r, "", method);
    });
  };
  if (systemAllowed("POST")) system += R"({"code":"transaction"},{"code":"batch"})";
  if (systemAllowed("GET")) system += std::string(system.empty() ? "" : ",") + R"({"code":"search-system"},{"code":"history-system"})";
  if (!system.empty()) json += R"(,"interaction":[)" + system + "]";
  json += "}]}";
  fhir::ParseResult parsed = fhir::parseJson(json);
  return std::move(parsed.document);
}

}  // namespace medicus::gateway
