#include "medicus/fhir/operation_outcome.h"

#include <string>

namespace medicus::fhir {
namespace {

void addExtension(Document& doc, Node* parent, std::string_view url, std::string_view property, std::string_view value) {
  Node* ext = doc.addChild(parent, "extension");
  doc.addPrimitive(ext, "url", url);
  doc.addPrimitive(ext, property, value);
}

}  // namespace

std::unique_ptr<Document> buildOperationOutcome(const Issues& issues) {
  auto doc = std::make_unique<Document>();
  Node* root = doc->createRoot(doc->model().find("OperationOutcome"));
  if (issues.empty()) {
    Node* issue = doc->addChild(root, "issue");
    doc->addPrimitive(issue, "severity", "information");
    doc->addPrimitive(issue, "code", "informational");
    doc->addPrimitive(doc->addChild(issue, "details"), "text", "All OK");
    return doc;
  }
  for (const Issue& i : issues) {
    Node* issue = doc->addChild(root, "issue");
    if (i.position.known()) {
      addExtension(*doc, issue, "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger",
                   std::to_string(i.position.line));
      addExtension(*doc, issue, "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col", "valueInteger",
                   std::to_string(i.position.column));
    }
    if (!i.rule_id.empty()) {
      addExtension(*doc, issue, "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id", "valueString",
                   i.rule_id);
    }
    doc->addPrimitive(issue, "severity", toString(i.severity));
    doc->addPrimitive(issue, "code", toString(i.type));
    if (!i.message.empty()) doc->addPrimitive(doc->addChild(issue, "details"), "text", i.message);
    if (!i.expression.empty()) doc->addPrimitive(issue, "expression", i.expression);
  }
  return doc;
}

}  // namespace medicus::fhir
