#include "validate_operation.h"

#include "content_negotiation.h"
#include "medicus/fhir/format.h"

namespace medicus::gateway {

bool isValidateOperation(std::string_view method, std::string_view path) {
  return method == "POST" && (path.ends_with("/$validate") || path == "$validate");
}

namespace {

std::string percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1; };
      int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i] == '+' ? ' ' : text[i];
  }
  return out;
}

fhir::Issue badRequest(std::string message) {
  fhir::Issue issue;
  issue.severity = fhir::Severity::Error;
  issue.type = fhir::IssueType::Invalid;
  issue.message = std::move(message);
  issue.rule_id = "gateway.validate-operation";
  return issue;
}

}  // namespace

ValidateOperationRequest unwrapValidateRequest(const fhir::Document& body, std::string_view query,
                                               std::string_view path_type) {
  ValidateOperationRequest out;
  if (auto profile = queryParameter(query, "profile"); !profile.empty()) out.profiles.push_back(percentDecode(profile));
  const fhir::Node* root = body.root();
  if (!root) {
    out.issues.push_back(badRequest("$validate needs a body: the resource, or a Parameters with 'resource'"));
    return out;
  }
  if (root->name() != "Parameters" || path_type == "Parameters") {
    out.resource = &body;
    return out;
  }
  const fhir::Node* resource = nullptr;
  for (const fhir::Node* parameter : root->children("parameter")) {
    const fhir::Node* name = parameter->child("name");
    if (!name) continue;
    if (name->value() == "resource") {
      resource = parameter->child("resource");
    } else if (name->value() == "profile") {
      if (const fhir::Node* value = parameter->child("value"); value && value->hasValue()) {
        out.profiles.emplace_back(value->value());
      }
    }
  }
  if (!resource) {
    out.issues.push_back(badRequest("the Parameters of $validate have no 'resource' parameter holding the resource to validate"));
    return out;
  }
  // The validator works on a whole Document; the embedded resource becomes its own (its line:col then
  // refer to the re-serialised resource rather than the request body).
  fhir::ParseResult parsed = fhir::parseJson(fhir::writeJson(*resource));
  if (!parsed.document) {
    out.issues = std::move(parsed.issues);
    if (out.issues.empty()) out.issues.push_back(badRequest("the 'resource' parameter is not a readable resource"));
    return out;
  }
  out.extracted = std::move(parsed.document);
  out.resource = out.extracted.get();
  return out;
}

}  // namespace medicus::gateway
