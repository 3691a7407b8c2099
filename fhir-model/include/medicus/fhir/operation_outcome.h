#pragma once
// The one builder for FHIR error replies: issues -> OperationOutcome.
#include <memory>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"

namespace medicus::fhir {

// An OperationOutcome with one issue per entry: severity, code, details.text (the message),
// expression (FHIRPath), and the source line:col and rule id as the standard extensions
// operationoutcome-issue-line / -col / -source. With no issues: one "information" issue "All OK".
std::unique_ptr<Document> buildOperationOutcome(const Issues& issues);

}  // namespace medicus::fhir
