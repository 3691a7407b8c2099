#pragma once
// FHIR JSON and XML reading and writing, following the R4 rules (http://hl7.org/fhir/R4/json.html,
// http://hl7.org/fhir/R4/xml.html). Parsing never throws: every problem is an Issue with a location.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"

namespace medicus::fhir {

enum class Format : uint8_t { Json, Xml };

struct ParseOptions {
  size_t max_bytes = 64u << 20;  // larger input is rejected before parsing
  uint32_t max_depth = 128;      // object/element nesting
  // Unknown elements are errors (and left out of the tree); with this flag they are warnings.
  bool unknown_elements_are_warnings = false;
  // JSON: comments ("//", "/* */") are reported as errors, one per comment; with this flag they are skipped.
  bool allow_comments = false;
  // XML: xsi:schemaLocation (a hint for schema tools, no FHIR content) is skipped; with false it is an
  // undefined attribute like any other (the Java reference validator's default, allowXsiLocation off).
  bool allow_xsi_schema_location = true;
};

struct ParseResult {
  // Null only when the input could not be read at all (not JSON/XML, no resource type, too large).
  std::unique_ptr<Document> document;
  Issues issues;
  bool ok() const { return document && !hasErrors(issues); }
};

ParseResult parseJson(std::string_view text, const ParseOptions& options = {});
ParseResult parseXml(std::string_view text, const ParseOptions& options = {});
// Picks the format by the first non-blank character ('<' is XML).
ParseResult parse(std::string_view text, const ParseOptions& options = {});
Format detectFormat(std::string_view text);

struct WriteOptions {
  bool pretty = false;
};

// Serialise a resource node (the root or a contained/entry resource).
void writeJson(const Node& resource, std::string& out, const WriteOptions& options = {});
std::string writeJson(const Node& resource, const WriteOptions& options = {});
void writeXml(const Node& resource, std::string& out, const WriteOptions& options = {});
std::string writeXml(const Node& resource, const WriteOptions& options = {});
std::string write(const Node& resource, Format format, const WriteOptions& options = {});

// Appends `text` escaped for use inside a JSON string literal (quotes not included): '"', '\\' and
// control characters escaped, UTF-8 passed through (RFC 8259 section 7).
void appendJsonEscaped(std::string& out, std::string_view text);

// Lexical check of a primitive value against its FHIR type (regexes of the R4 definitions, integer
// ranges). Returns an empty string when valid, else what is wrong.
std::string checkPrimitiveValue(const TypeInfo& type, std::string_view value);

}  // namespace medicus::fhir
