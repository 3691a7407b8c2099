#include "profiles/attachment_checks.h"

#include <cctype>
#include <charconv>
#include <string>

namespace medicus::profiles {

size_t base64DecodedSize(std::string_view data) {
  size_t chars = 0;
  for (char c : data) {
    if (c != '=' && !std::isspace(static_cast<unsigned char>(c))) ++chars;
  }
  // Every 4 characters carry 3 bytes; a final group of 2 or 3 characters (padded or not) carries 1 or 2.
  size_t rest = chars % 4;
  return chars / 4 * 3 + (rest >= 2 ? rest - 1 : 0);
}

void checkAttachment(const fhir::Node& attachment, const fhir::Document& document, fhir::Issues& issues) {
  const fhir::Node* data = attachment.child("data");
  const fhir::Node* size = attachment.child("size");
  if (!data || !data->hasValue() || !size || !size->hasValue()) return;
  unsigned long long stated = 0;
  std::string_view text = size->value();
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), stated);
  if (ec != std::errc() || ptr != text.data() + text.size()) return;  // the primitive check reports it
  size_t actual = base64DecodedSize(data->value());
  if (stated == actual) return;
  fhir::Issue issue;
  issue.severity = fhir::Severity::Error;
  issue.type = fhir::IssueType::Structure;
  issue.message = "the stated attachment size " + std::string(text) + " does not match the size of the data, " +
                  std::to_string(actual) + " bytes; correct size or data";
  issue.expression = fhir::pathOf(attachment);
  issue.position = document.positionOf(attachment);
  issue.rule_id = "Attachment.size:data-size";
  issues.push_back(std::move(issue));
}

}  // namespace medicus::profiles
