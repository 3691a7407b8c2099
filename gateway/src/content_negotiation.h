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

// What a request head that never ended within max_header_bytes (431) says about the reply format.
// `received`: the head's bytes the parser left unparsed, cut to the limit. Only complete lines count
// (a line cut by the limit might be a cut value): a first line of the form "METHOD target HTTP/x.y"
// gives the target, later lines "Accept:" and "Content-Type:" (first occurrence) their values.
struct PartialHeadHints {
  std::string_view target;
  std::string_view accept;
  std::string_view content_type;
};
PartialHeadHints formatHintsOfPartialHead(std::string_view received);

}  // namespace medicus::gateway
