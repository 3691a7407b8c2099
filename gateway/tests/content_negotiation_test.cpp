#include <catch2/catch.hpp>

#include "content_negotiation.h"

using namespace medicus::gateway;

TEST_CASE("media types and _format values map to JSON or XML") {
  CHECK(formatOfMediaType("application/fhir+json; charset=utf-8") == WireFormat::Json);
  CHECK(formatOfMediaType("application/json") == WireFormat::Json);
  CHECK(formatOfMediaType("json") == WireFormat::Json);
  CHECK(formatOfMediaType("application/fhir%2Bxml") == WireFormat::Xml);
  CHECK(formatOfMediaType("text/xml") == WireFormat::Xml);
  CHECK_FALSE(formatOfMediaType("text/plain"));
  CHECK_FALSE(formatOfMediaType(""));
}

TEST_CASE("_format overrides Accept / wildcards take the fallback / nothing acceptable is 406") {
  CHECK(negotiateReplyFormat("xml", "application/fhir+json", WireFormat::Json).format == WireFormat::Xml);
  CHECK(negotiateReplyFormat("", "application/fhir+xml", WireFormat::Json).format == WireFormat::Xml);
  CHECK(negotiateReplyFormat("", "text/html, application/fhir+xml;q=0.9", WireFormat::Json).format == WireFormat::Xml);
  CHECK(negotiateReplyFormat("", "application/fhir+json;q=0.5, application/fhir+xml", WireFormat::Json).format ==
        WireFormat::Xml);
  CHECK(negotiateReplyFormat("", "*/*", WireFormat::Xml).format == WireFormat::Xml);
  CHECK(negotiateReplyFormat("", "", WireFormat::Json).format == WireFormat::Json);
  CHECK_FALSE(negotiateReplyFormat("", "text/html", WireFormat::Json).acceptable);
  CHECK_FALSE(negotiateReplyFormat("", "application/fhir+xml;q=0", WireFormat::Json).acceptable);
  CHECK_FALSE(negotiateReplyFormat("turtle", "", WireFormat::Json).acceptable);
}

TEST_CASE("query parameters") {
  CHECK(queryParameter("name=x&_format=xml", "_format") == "xml");
  CHECK(queryParameter("_format", "_format").empty());
  CHECK(queryParameter("a=1", "_format").empty());
}

TEST_CASE("an oversized head's format hints come from its complete lines only") {
  PartialHeadHints whole = formatHintsOfPartialHead(
      "GET /fhir/Patient?_format=xml HTTP/1.1\r\nHost: x\r\naccept:  application/fhir+xml \r\n"
      "Content-Type: application/fhir+json\r\nAccept: application/fhir+json\r\nX-Padding: aaaa");
  CHECK(whole.target == "/fhir/Patient?_format=xml");
  CHECK(whole.accept == "application/fhir+xml");  // the first Accept, trimmed; the name in any case
  CHECK(whole.content_type == "application/fhir+json");

  // The parser already took the request line and some fields: the rest starts with a field.
  PartialHeadHints rest = formatHintsOfPartialHead("Accept: application/fhir+xml\r\nX-Padding: aaaa");
  CHECK(rest.target.empty());
  CHECK(rest.accept == "application/fhir+xml");

  // Lines cut by the limit say nothing: a request line, an Accept value.
  CHECK(formatHintsOfPartialHead("GET /fhir/Patient?_format=xml&name=aaaa").target.empty());
  CHECK(formatHintsOfPartialHead("GET /fhir/Patient HTTP/1.1\r\nAccept: application/fhir+x").accept.empty());
  // Not a request line, not a field.
  CHECK(formatHintsOfPartialHead("Accept: xml /fhir HTTP/1.1\r\n").target.empty());
  CHECK(formatHintsOfPartialHead("GET /x HTTP/1.1\r\nno colon here\r\nAc cept: xml\r\n").accept.empty());
}
