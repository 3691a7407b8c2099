#pragma once
// $validate answered by the gateway (http://hl7.org/fhir/R4/resource-operation-validate.html):
// POST [base]/$validate and POST [base]/[type]/$validate, body a resource or a Parameters with
// `resource` (and `profile`). The route's validate stage answers 200 + OperationOutcome.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"

namespace medicus::gateway {

bool isValidateOperation(std::string_view method, std::string_view path);

struct ValidateOperationRequest {
  const fhir::Document* resource = nullptr;  // the resource to validate: the body, or `extracted`
  std::unique_ptr<fhir::Document> extracted; // the Parameters' `resource`, as its own document
  std::vector<std::string> profiles;         // `profile` parameters (body and query)
  fhir::Issues issues;                       // why the request cannot be answered (400)
};

// Unwraps a parsed $validate body. A Parameters body without a `resource` parameter is validated as
// itself only when the path names Parameters as the type.
ValidateOperationRequest unwrapValidateRequest(const fhir::Document& body, std::string_view query,
                                               std::string_view path_type);

}  // namespace medicus::gateway
