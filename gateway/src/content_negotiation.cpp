#include "content_negotiation.h"

#include "ascii_case.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

namespace medicus::gateway {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 5.6.2: the characters of a method or a field name.
bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// "GET /fhir/Patient?_format=xml HTTP/1.1": the target, else empty.
std::string_view targetOfRequestLine(std::string_view line) {
  size_t first_space = line.find(' ');
  size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || last_space <= first_space) return {};
  if (!isToken(line.substr(0, first_space)) || !line.substr(last_space + 1).starts_with("HTTP/")) return {};
  return line.substr(first_space + 1, last_space - first_space - 1);
}

}  // namespace

PartialHeadHints formatHintsOfPartialHead(std::string_view received) {
  PartialHeadHints hints;
  bool first_line = true;
  for (size_t end; (end = received.find("\r\n")) != std::string_view::npos; received.remove_prefix(end + 2)) {
    std::string_view line = received.substr(0, end);
    if (line.empty()) break;  // the end of the head: not an oversized one after all
    if (std::exchange(first_line, false)) {
      hints.target = targetOfRequestLine(line);
      if (!hints.target.empty()) continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !isToken(line.substr(0, colon))) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (asciiIequals(name, "accept") && hints.accept.empty()) hints.accept = value;
    if (asciiIequals(name, "content-type") && hints.content_type.empty()) hints.content_type = value;
  }
  return hints;
}

std::optional<WireFormat> formatOfMediaType(std::string_view media_type) {
  std::string_view type = trim(media_type.substr(0, media_type.find(';')));
  if (type.empty()) return std::nullopt;
  // What FHIR servers and clients send nearly always: one comparison (every proxied request asks).
  if (type == "application/fhir+json") return WireFormat::Json;
  // _format values are often URL-encoded: application/fhir%2Bjson.
  std::string decoded;
  if (type.find('%') != std::string_view::npos &&
      (type.find("%2B") != std::string_view::npos || type.find("%2b") != std::string_view::npos)) {
    decoded = std::string(type);
    for (size_t at; (at = decoded.find("%2B")) != std::string::npos || (at = decoded.find("%2b")) != std::string::npos;) {
      decoded.replace(at, 3, "+");
    }
    type = decoded;
  }
  for (std::string_view json : {"json", "application/fhir+json", "application/json", "application/json+fhir",
                                "application/fhir json", "fhir+json"}) {
    if (asciiIequals(type, json)) return WireFormat::Json;
  }
  for (std::string_view xml : {"xml", "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir",
                               "application/fhir xml", "fhir+xml"}) {
    if (asciiIequals(type, xml)) return WireFormat::Xml;
  }
  return std::nullopt;
}

Negotiated negotiateReplyFormat(std::string_view format_param, std::string_view accept, WireFormat fallback) {
  if (!format_param.empty()) {
    if (auto f = formatOfMediaType(format_param)) return {true, *f};
    return {false, fallback};
  }
  accept = trim(accept);
  if (accept.empty()) return {true, fallback};
  bool any_acceptable_wildcard = false;
  std::optional<WireFormat> best;
  double best_q = -1;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    std::string_view type = trim(item.substr(0, item.find(';')));
    double q = 1.0;
    if (size_t at = item.find("q="); at != std::string_view::npos) q = std::atof(std::string(item.substr(at + 2)).c_str());
    if (q <= 0) continue;
    if (type == "*/*" || type == "application/*" || type == "text/*") {
      any_acceptable_wildcard = true;
      if (q > best_q && !best) best_q = q;
      continue;
    }
    if (auto f = formatOfMediaType(type); f && q > best_q) {
      best = f;
      best_q = q;
    }
  }
  if (best) return {true, *best};
  if (any_acceptable_wildcard) return {true, fallback};
  return {false, fallback};
}

std::string_view mediaTypeOf(WireFormat format) {
  return format == WireFormat::Json ? "application/fhir+json; charset=utf-8" : "application/fhir+xml; charset=utf-8";
}

std::string_view queryParameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return {};
}

}  // namespace medicus::gateway
