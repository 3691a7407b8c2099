#pragma once
// Attachment consistency (http://hl7.org/fhir/R4/datatypes.html#Attachment): when both data and
// size are present, size must be the number of bytes the base64 data decodes to. The reference
// validator reports a mismatch as an error.
#include <cstddef>
#include <string_view>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"

namespace medicus::profiles {

// `attachment` is a node of type Attachment of `document`; issues go to `issues`.
void checkAttachment(const fhir::Node& attachment, const fhir::Document& document, fhir::Issues& issues);

// Bytes that base64 `data` decodes to (whitespace ignored), without decoding it.
size_t base64DecodedSize(std::string_view data);

}  // namespace medicus::profiles
