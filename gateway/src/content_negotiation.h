#pragma once
// FHIR content negotiation (http://hl7.org/fhir/R4/http.html#mime-type): _format overrides Accept;
// JSON and XML; application/json and application/xml are accepted as synonyms.
#include <optional>
#include <string_view>

#include "medicus/gateway/config.h"

namespace medicus::gateway {

// The FHIR format of a media type or _format value ("application/fhir+json; charset=utf-8", "xml");
// nullopt when it is neither JSON nor XML.
std::optional<WireFormat> formatOfMediaType(std::string_view media_type);

struct Negotiated {
  bool acceptable = true;  // false: 406, nothing the client accepts can be produced
  WireFormat format = WireFormat::Json;
};
// The reply format from _format (may be empty), then Accept (may be empty), else `fallback`.
Negotiated negotiateReplyFormat(std::string_view format_param, std::string_view accept, WireFormat fallback);

std::string_view mediaTypeOf(WireFormat format);  // "application/fhir+json; charset=utf-8"

// The value of one query parameter (first occurrence, not percent-decoded beyond '+'/%2B of media types).
std::string_view queryParameter(std::string_view query, std::string_view name);

}  // namespace medicus::gateway
