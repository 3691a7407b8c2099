#include <catch2/catch.hpp>

#include <string>

#include "medicus/fhir/format.h"

using namespace medicus::fhir;

namespace {

bool hasRule(const Issues& issues, std::string_view rule) {
  for (const auto& i : issues) if (i.rule_id == rule) return true;
  return false;
}

std::string jsonOf(const std::string& xml) {
  auto r = parseXml(xml);
  REQUIRE(r.document);
  INFO((r.issues.empty() ? std::string() : formatIssue(r.issues.front())));
  REQUIRE(r.issues.empty());
  return writeJson(*r.document->root());
}

}  // namespace

TEST_CASE("XML reads into the same tree as JSON", "[xml]") {
  std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <!-- a comment -->
  <id value="p1"/>
  <name id="n1">
    <family value="M&#252;ller"/>
    <given value="Anna"/>
    <given>
      <extension url="http://example.org/x"><valueString value="absent"/></extension>
    </given>
  </name>
  <birthDate value="1970"/>
</Patient>)";
  CHECK(jsonOf(xml) ==
        R"({"resourceType":"Patient","id":"p1","name":[{"id":"n1","family":"Müller","given":["Anna",null],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"absent"}]}]}],"birthDate":"1970"})");
}

TEST_CASE("JSON -> XML -> JSON is lossless, decimals and narrative included", "[xml]") {
  std::string json = R"({"resourceType":"Observation","id":"o","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>A &amp; B <b>bold</b></p></div>"},"contained":[{"resourceType":"Patient","id":"p","active":false}],"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1-8"}]},"subject":{"reference":"#p"},"valueQuantity":{"value":1.50,"unit":"mg\n/dl"}})";
  auto r = parseJson(json);
  REQUIRE(r.ok());
  std::string xml = writeXml(*r.document->root());
  CHECK(xml.find("<value value=\"1.50\"/>") != std::string::npos);
  CHECK(xml.find("<contained><Patient>") != std::string::npos);
  CHECK(xml.find("<valueQuantity>") != std::string::npos);
  auto back = parseXml(xml);
  INFO(xml);
  REQUIRE(back.ok());
  CHECK(writeJson(*back.document->root()) == json);
  std::string pretty = writeXml(*r.document->root(), {.pretty = true});
  auto back2 = parseXml(pretty);
  REQUIRE(back2.ok());
  CHECK(writeJson(*back2.document->root()) == json);
}

TEST_CASE("XML bad input", "[xml][bad-input]") {
  auto syntax = parseXml("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"x\"></Patient>");
  CHECK_FALSE(syntax.document);
  CHECK(syntax.issues[0].rule_id == "xml.syntax");

  auto doctype = parseXml(R"(<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Patient>)");
  CHECK_FALSE(doctype.document);
  CHECK(doctype.issues[0].rule_id == "xml.doctype");

  auto ns = parseXml(R"(<Patient><id value="x"/></Patient>)");
  CHECK(hasRule(ns.issues, "xml.namespace"));

  auto unknown = parseXml(R"(<Patient xmlns="http://hl7.org/fhir"><nickname value="x"/></Patient>)");
  CHECK(hasRule(unknown.issues, "xml.unknown-element"));

  auto order = parseXml(R"(<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><id value="x"/></Patient>)");
  CHECK(hasRule(order.issues, "xml.order"));

  auto text = parseXml(R"(<Patient xmlns="http://hl7.org/fhir"><gender>male</gender></Patient>)");
  CHECK(hasRule(text.issues, "xml.text"));

  // Namespace declarations are fine; foreign attributes are no FHIR content (xsi:schemaLocation is
  // skipped unless the options say otherwise).
  auto declared = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><id value="x"/></Patient>)");
  CHECK_FALSE(hasRule(declared.issues, "xml.unknown-attribute"));
  auto schema = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://hl7.org/fhir patient.xsd"><id value="x"/></Patient>)");
  CHECK_FALSE(hasRule(schema.issues, "xml.unknown-attribute"));
  ParseOptions strict;
  strict.allow_xsi_schema_location = false;
  auto schema_strict = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://hl7.org/fhir patient.xsd"><id value="x"/></Patient>)", strict);
  CHECK(hasRule(schema_strict.issues, "xml.unknown-attribute"));
  auto foreign = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:x="urn:x" x:note="n"><id value="x"/></Patient>)");
  CHECK(hasRule(foreign.issues, "xml.unknown-attribute"));
  // Only the XML Schema instance namespace's schemaLocation is skipped, whatever its prefix.
  auto other_prefix = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:si="http://www.w3.org/2001/XMLSchema-instance"
    si:schemaLocation="http://hl7.org/fhir patient.xsd"><id value="x"/></Patient>)");
  CHECK_FALSE(hasRule(other_prefix.issues, "xml.unknown-attribute"));
  auto foreign_schema = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xmlns:x="urn:x"
    x:schemaLocation="http://hl7.org/fhir patient.xsd"><id value="x"/></Patient>)");
  CHECK(hasRule(foreign_schema.issues, "xml.unknown-attribute"));
  auto undeclared = parseXml(R"(<Patient xmlns="http://hl7.org/fhir" xsi:schemaLocation="x"><id value="x"/></Patient>)");
  CHECK(hasRule(undeclared.issues, "xml.unknown-attribute"));

  auto utf8 = parseXml("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"M\xFC\"/></Patient>");
  CHECK_FALSE(utf8.document);
  CHECK(utf8.issues[0].rule_id == "xml.encoding");

  auto root = parseXml(R"(<Foo xmlns="http://hl7.org/fhir"/>)");
  CHECK_FALSE(root.document);

  std::string deep = "<Patient xmlns=\"http://hl7.org/fhir\">";
  for (int i = 0; i < 200; ++i) deep += "<extension url=\"x\">";
  for (int i = 0; i < 200; ++i) deep += "</extension>";
  deep += "</Patient>";
  auto d = parseXml(deep);
  CHECK(hasRule(d.issues, "xml.too-deep"));
}

TEST_CASE("XML line and column of issues", "[xml][bad-input]") {
  auto r = parseXml("<Patient xmlns=\"http://hl7.org/fhir\">\n  <birthDate value=\"1970-13\"/>\n</Patient>");
  REQUIRE(r.document);
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].position.line == 2);
  CHECK(r.issues[0].position.column == 3);
  CHECK(r.issues[0].expression == "Patient.birthDate");
}

TEST_CASE("XML entities other than the five predefined are fatal", "[xml][bad-input]") {
  auto reg = parseXml("<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"x\"/><text><status value=\"generated\"/>"
                      "<div xmlns=\"http://www.w3.org/1999/xhtml\">A&reg;</div></text></Patient>");
  CHECK_FALSE(reg.document);
  REQUIRE(reg.issues.size() == 1);
  CHECK(reg.issues[0].rule_id == "xml.entity");
  CHECK(reg.issues[0].severity == Severity::Fatal);
  CHECK(reg.issues[0].position.line == 2);
  CHECK(reg.issues[0].message.find("'reg'") != std::string::npos);

  // Predefined entities, character references, and '&' inside comments and CDATA are fine.
  auto ok = parseXml("<Patient xmlns=\"http://hl7.org/fhir\"><!-- &reg; --><id value=\"a&amp;b&#174;&#xAE;&lt;\"/>"
                     "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\"><![CDATA[&x]]>&quot;&apos;&gt;</div></text></Patient>");
  REQUIRE(ok.document);
  CHECK_FALSE(hasRule(ok.issues, "xml.entity"));

  auto bare = parseXml(R"(<Patient xmlns="http://hl7.org/fhir"><id value="a & b"/></Patient>)");
  CHECK(hasRule(bare.issues, "xml.entity"));
  auto badChar = parseXml(R"(<Patient xmlns="http://hl7.org/fhir"><id value="&#xZZ;"/></Patient>)");
  CHECK(hasRule(badChar.issues, "xml.entity"));
}
