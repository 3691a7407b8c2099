#include "route_table.h"

#include <algorithm>
#include <cctype>

namespace medicus::gateway {
namespace {

// A resource type is a capitalised first segment (Patient, Bundle); operations ($validate), _history,
// metadata and _search at the base have no type.
std::string_view resourceTypeOf(std::string_view rest) {
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  std::string_view segment = rest.substr(0, rest.find('/'));
  if (segment.empty() || !std::isupper(static_cast<unsigned char>(segment.front()))) return {};
  return segment;
}

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

bool matchesPrefix(std::string_view path, std::string_view prefix, std::string_view& rest) {
  if (prefix == "/") {
    rest = path;
    return true;
  }
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (path.size() > prefix.size() && path[prefix.size()] != '/') return false;
  rest = path.substr(prefix.size());
  return true;
}

RouteSelection selectRoute(const GatewayConfig& config, std::string_view method, std::string_view path,
                           std::string_view client_identity) {
  RouteSelection selection;
  for (const auto& route : config.routes) {
    std::string_view rest;
    if (!matchesPrefix(path, route.match.path_prefix, rest)) continue;
    std::string_view type = resourceTypeOf(rest);
    if (!route.match.resource_types.empty() && !contains(route.match.resource_types, type)) continue;
    if (!route.match.clients.empty() && !contains(route.match.clients, client_identity)) continue;
    if (!route.match.methods.empty() && !contains(route.match.methods, method)) {
      selection.outcome = RouteSelection::Outcome::MethodNotAllowed;
      continue;
    }
    return {RouteSelection::Outcome::Matched, &route, type, rest};
  }
  return selection;
}

std::string allowedMethods(const GatewayConfig& config, std::string_view path, std::string_view client_identity) {
  std::vector<std::string_view> methods;
  for (const auto& route : config.routes) {
    std::string_view rest;
    if (!matchesPrefix(path, route.match.path_prefix, rest)) continue;
    if (!route.match.resource_types.empty() && !contains(route.match.resource_types, resourceTypeOf(rest))) continue;
    if (!route.match.clients.empty() && !contains(route.match.clients, client_identity)) continue;
    for (const auto& m : route.match.methods) {
      if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
    }
  }
  std::string text;
  for (auto m : methods) (text += text.empty() ? "" : ", ") += m;
  return text;
}

}  // namespace medicus::gateway
