#include <catch2/catch.hpp>

#include <string>

#include "medicus/fhir/format.h"

using namespace medicus::fhir;

namespace {

std::string roundTrip(const std::string& json) {
  auto r = parseJson(json);
  REQUIRE(r.document);
  INFO((r.issues.empty() ? std::string() : formatIssue(r.issues.front())));
  REQUIRE(r.issues.empty());
  return writeJson(*r.document->root());
}

bool hasRule(const Issues& issues, std::string_view rule) {
  for (const auto& i : issues) if (i.rule_id == rule) return true;
  return false;
}

const Issue* findRule(const Issues& issues, std::string_view rule) {
  for (const auto& i : issues) if (i.rule_id == rule) return &i;
  return nullptr;
}

}  // namespace

TEST_CASE("JSON round trip keeps content and definition order", "[json]") {
  std::string in = R"({"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Müller","given":["Anna","Maria"]}],"gender":"female","birthDate":"1970-03-01"})";
  CHECK(roundTrip(in) == in);
  // Properties out of definition order come back in order.
  CHECK(roundTrip(R"({"gender":"male","resourceType":"Patient","id":"x"})") ==
        R"({"resourceType":"Patient","id":"x","gender":"male"})");
}

TEST_CASE("decimals keep their exact text", "[json]") {
  std::string in = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}})";
  CHECK(roundTrip(in) == in);
  std::string exp = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e2}})";
  CHECK(roundTrip(exp) == exp);
  std::string big = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":12345678901234567890.123456789012345678901}})";
  CHECK(roundTrip(big) == big);
}

TEST_CASE("primitive extensions and nulls in arrays", "[json]") {
  std::string in = R"({"resourceType":"Patient","name":[{"given":["Anna",null,"Eva"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"absent"}]},{"id":"g3"}]}],"birthDate":"1970","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1970-01-01T10:00:00+01:00"}]}})";
  CHECK(roundTrip(in) == in);
  auto r = parseJson(in);
  const Node* name = r.document->root()->child("name");
  int count = 0, with_value = 0;
  for (const Node* g : name->children("given")) {
    ++count;
    if (g->hasValue()) ++with_value;
  }
  CHECK(count == 3);
  CHECK(with_value == 2);
}

TEST_CASE("an extension-only primitive has no value", "[json]") {
  std::string in = R"({"resourceType":"Patient","_gender":{"extension":[{"url":"http://example.org/why","valueCode":"asked-declined"}]}})";
  CHECK(roundTrip(in) == in);
}

TEST_CASE("contained and nested resources", "[json]") {
  std::string in = R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:0b9f0c3e-3c33-4a6f-9c84-e0f6f3a2c5d1","resource":{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"org","name":"Klinik"}],"managingOrganization":{"reference":"#org"}}}]})";
  CHECK(roundTrip(in) == in);
  auto r = parseJson(in);
  const Node* res = r.document->root()->child("entry")->child("resource");
  REQUIRE(res != nullptr);
  CHECK(res->type()->name == "Patient");
  CHECK(res->child("contained")->type()->name == "Organization");
  CHECK(pathOf(*res->child("contained")->child("name")) == "Bundle.entry[0].resource.contained[0].name");
}

TEST_CASE("choice types are written with their suffix", "[json]") {
  std::string in = R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01","multipleBirthInteger":2})";
  CHECK(roundTrip(in) == in);
  auto r = parseJson(in);
  const Node* d = r.document->root()->child("deceased");
  REQUIRE(d != nullptr);
  CHECK(d->type()->name == "dateTime");
  CHECK(pathOf(*d) == "Patient.deceased.ofType(dateTime)");
}

TEST_CASE("Unicode and escapes survive", "[json]") {
  std::string in = "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"J\\u00fcrgen \\\"Jo\\\" \\ud83d\\ude00\\n\\t\\\\\"}]}";
  auto r = parseJson(in);
  REQUIRE(r.ok());
  CHECK(r.document->root()->child("name")->child("text")->value() == "Jürgen \"Jo\" \xF0\x9F\x98\x80\n\t\\");
  std::string out = writeJson(*r.document->root());
  CHECK(out == "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"Jürgen \\\"Jo\\\" \xF0\x9F\x98\x80\\n\\t\\\\\"}]}");
}

TEST_CASE("appendJsonEscaped escapes every character that needs it, at any position", "[json]") {
  // The reference: one byte at a time.
  auto reference = [](std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
      if (c == '"') out += "\\\"";
      else if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else if (c == '\t') out += "\\t";
      else if (c == '\b') out += "\\b";
      else if (c == '\f') out += "\\f";
      else if (c < 0x20) {
        const char* hex = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else out += static_cast<char>(c);
    }
    return out;
  };
  const std::string base = "abcdefghijklmnopqrstuvwxyz0123456789\xC3\xBC\xF0\x9F\x98\x80~ !#[]";
  for (size_t at = 0; at <= base.size(); ++at) {
    for (char special : {'"', '\\', '\n', '\x01', '\x1f', '\x7f', ' ', '\x00'}) {
      std::string text = base;
      text.insert(at, 1, special);
      text.insert(at / 2, 1, special);
      std::string out = "prefix:";
      appendJsonEscaped(out, text);
      INFO("position " << at << " byte " << int(special));
      CHECK(out == "prefix:" + reference(text));
    }
  }
  std::string empty;
  appendJsonEscaped(empty, "");
  CHECK(empty.empty());
}

TEST_CASE("invalid JSON is a fatal issue with a position", "[json][bad-input]") {
  auto r = parseJson("{\n  \"resourceType\": \"Patient\",\n  \"active\": tru\n}");
  CHECK_FALSE(r.document);
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].severity == Severity::Fatal);
  CHECK(r.issues[0].rule_id == "json.syntax");
  CHECK(r.issues[0].position.line == 3);
}

TEST_CASE("unknown elements are errors with path and line:col", "[json][bad-input]") {
  auto r = parseJson("{\"resourceType\":\"Patient\",\n\"name\":[{\"family\":\"X\",\n  \"nickname\":\"Y\"}]}");
  REQUIRE(r.document);
  const Issue* i = findRule(r.issues, "json.unknown-element");
  REQUIRE(i != nullptr);
  CHECK(i->severity == Severity::Error);
  CHECK(i->expression == "Patient.name[0]");
  CHECK(i->position.line == 3);
  CHECK(i->position.column == 3);
  CHECK(i->message.find("nickname") != std::string::npos);
  ParseOptions lenient;
  lenient.unknown_elements_are_warnings = true;
  auto w = parseJson("{\"resourceType\":\"Patient\",\"foo\":1}", lenient);
  CHECK(w.ok());
  CHECK(w.issues.size() == 1);
}

TEST_CASE("wrong JSON types are reported", "[json][bad-input]") {
  auto r = parseJson(R"({"resourceType":"Patient","active":"true","name":{"family":"X"},"birthDate":19700101})");
  REQUIRE(r.document);
  CHECK(hasRule(r.issues, "json.primitive-type"));
  CHECK(hasRule(r.issues, "json.array-expected"));
  auto s = parseJson(R"({"resourceType":"Patient","gender":["male"]})");
  CHECK(hasRule(s.issues, "json.array-unexpected"));
}

TEST_CASE("duplicate keys are errors", "[json][bad-input]") {
  auto r = parseJson(R"({"resourceType":"Patient","gender":"male","gender":"female"})");
  REQUIRE(r.document);
  CHECK(hasRule(r.issues, "json.duplicate-key"));
  CHECK(r.document->root()->child("gender")->value() == "male");
}

TEST_CASE("invalid UTF-8 is rejected", "[json][bad-input]") {
  auto r = parseJson("{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"M\xFC\x6cler\"}]}");
  CHECK_FALSE(r.document);
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].rule_id == "json.syntax");
}

TEST_CASE("excessive nesting and size are bounded", "[json][bad-input]") {
  std::string deep = R"({"resourceType":"Patient","extension":)";
  for (int i = 0; i < 50000; ++i) deep += R"([{"url":"x","extension":)";
  auto r = parseJson(deep);
  CHECK_FALSE(r.document);
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].rule_id == "json.too-deep");
  auto arrays = parseJson(std::string(100000, '['));
  CHECK_FALSE(arrays.document);
  REQUIRE_FALSE(arrays.issues.empty());
  CHECK(arrays.issues[0].severity == Severity::Fatal);
  ParseOptions small;
  small.max_bytes = 10;
  auto big = parseJson(R"({"resourceType":"Patient"})", small);
  CHECK_FALSE(big.document);
  CHECK(big.issues[0].rule_id == "json.too-large");
}

TEST_CASE("resourceType need not come first", "[json]") {
  auto r = parseJson(R"({"id":"a","contained":[{"name":"K","resourceType":"Organization"}],"resourceType":"Patient","_id":{"id":"i"}})");
  REQUIRE(r.ok());
  CHECK(writeJson(*r.document->root()) ==
        R"({"resourceType":"Patient","id":"a","_id":{"id":"i"},"contained":[{"resourceType":"Organization","name":"K"}]})");
}

TEST_CASE("the _x part may come before its value", "[json]") {
  auto r = parseJson(R"({"resourceType":"Patient","name":[{"_given":[{"id":"a"},null],"given":["A","B"]}],"_gender":{"id":"g"},"gender":"male"})");
  REQUIRE(r.ok());
  CHECK(writeJson(*r.document->root()) ==
        R"({"resourceType":"Patient","name":[{"given":["A","B"],"_given":[{"id":"a"},null]}],"gender":"male","_gender":{"id":"g"}})");
}

TEST_CASE("a null without its extension, and mismatched arrays", "[json][bad-input]") {
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","name":[{"given":["A",null]}]})").issues, "json.null"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","name":[{"given":["A"],"_given":[null,{"id":"x"}]}]})").issues,
                "json.underscore-length"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","name":[{"given":[["A"]]}]})").issues, "json.nested-array"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","_gender":"x"})").issues, "json.underscore-object"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","_name":{"id":"x"}})").issues, "json.underscore-not-primitive"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Observation","valueString":"a","_valueInteger":{"id":"x"}})").issues,
                "json.underscore-mismatch"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Observation","valueString":"a","valueInteger":1})").issues,
                "json.duplicate-key"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Bundle","entry":[{"resource":{"id":"x"}}]})").issues, "json.resource-type"));
}

TEST_CASE("missing or unknown resourceType", "[json][bad-input]") {
  CHECK(parseJson(R"({"id":"x"})").issues[0].rule_id == "json.resource-type");
  CHECK(parseJson(R"({"resourceType":"Patientt"})").issues[0].rule_id == "json.resource-type");
  CHECK(parseJson(R"([1,2])").issues[0].rule_id == "json.root");
}

TEST_CASE("integer limits and primitive formats", "[json][bad-input]") {
  auto r = parseJson(R"({"resourceType":"Patient","multipleBirthInteger":2147483648})");
  CHECK(hasRule(r.issues, "type.integer"));
  auto ok = parseJson(R"({"resourceType":"Patient","multipleBirthInteger":-2147483648})");
  CHECK(ok.ok());
  auto d = parseJson(R"({"resourceType":"Patient","birthDate":"1970-02-30"})");
  CHECK(hasRule(d.issues, "type.date"));
  auto f = parseJson(R"({"resourceType":"Patient","multipleBirthInteger":1.0})");
  CHECK(hasRule(f.issues, "type.integer"));
}

TEST_CASE("empty objects, arrays and nulls are reported", "[json][bad-input]") {
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","name":[{}]})").issues, "json.empty-object"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","name":[]})").issues, "json.empty-array"));
  CHECK(hasRule(parseJson(R"({"resourceType":"Patient","gender":null})").issues, "json.null"));
}

TEST_CASE("pretty output is valid and re-readable", "[json]") {
  auto r = parseJson(R"({"resourceType":"Patient","name":[{"given":["A","B"]}],"_gender":{"id":"x"}})");
  REQUIRE(r.ok());
  std::string pretty = writeJson(*r.document->root(), {.pretty = true});
  CHECK(pretty.find("\n  \"name\": [") != std::string::npos);
  auto again = parseJson(pretty);
  REQUIRE(again.ok());
  CHECK(writeJson(*again.document->root()) == writeJson(*r.document->root()));
}

TEST_CASE("narrative must be well-formed XHTML", "[json][bad-input]") {
  auto r = parseJson(R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>unclosed</div>"}})");
  CHECK(hasRule(r.issues, "xhtml.well-formed"));
}

TEST_CASE("a shorter _x array is a warning and is lined up on output", "[json]") {
  auto r = parseJson(R"({"resourceType":"Patient","name":[{"given":[null,"B"],"_given":[{"id":"a"}]}]})");
  REQUIRE(r.ok());
  CHECK(hasRule(r.issues, "json.underscore-length"));
  CHECK(writeJson(*r.document->root()) ==
        R"({"resourceType":"Patient","name":[{"given":[null,"B"],"_given":[{"id":"a"},null]}]})");
}

TEST_CASE("children of one element are found among many others", "[node]") {
  std::string json = R"({"resourceType":"Bundle","type":"collection","entry":[)";
  for (int i = 0; i < 100; ++i) json += std::string(i ? "," : "") + R"({"fullUrl":"urn:uuid:0b9f0c3e-3c33-4a6f-9c84-e0f6f3a2c5d1"})";
  json += R"(],"signature":{"type":[{"code":"1.2.840.10065.1.12.1.1"}],"when":"2024-01-01T00:00:00Z","who":{"display":"x"}}})";
  auto r = parseJson(json);
  REQUIRE(r.ok());
  const Node* bundle = r.document->root();
  REQUIRE(bundle->child("type") != nullptr);
  CHECK(bundle->child("type")->value() == "collection");
  REQUIRE(bundle->child("signature") != nullptr);
  CHECK(bundle->child("total") == nullptr);
  int entries = 0;
  for (const Node* e : bundle->children("entry")) entries += e->name() == "entry";
  CHECK(entries == 100);
  CHECK(bundle->children("link").empty());
  int signatures = 0;
  for (const Node* s : bundle->children("signature")) signatures += s != nullptr;
  CHECK(signatures == 1);
}

TEST_CASE("element indexes follow insertion and removal", "[node]") {
  Document doc;
  Node* p = doc.createRoot(doc.model().find("Patient"));
  Node* n0 = doc.addChild(p, "name");
  Node* g = doc.addPrimitive(p, "gender", "male");
  Node* n1 = doc.addChild(p, "name");  // inserted before gender
  Node* n2 = doc.addChild(p, "name");
  CHECK(n0->indexInElement() == 0);
  CHECK(n1->indexInElement() == 1);
  CHECK(n2->indexInElement() == 2);
  CHECK(g->indexInElement() == 0);
  doc.removeChild(p, n0);
  CHECK(n1->indexInElement() == 0);
  CHECK(n2->indexInElement() == 1);
  doc.addPrimitive(n2, "given", "x");
  CHECK(pathOf(*n2) == "Patient.name[1]");
}

TEST_CASE("JSON comments are an error each, unless allowed", "[json][bad-input]") {
  std::string in = "// leading\n{\"resourceType\":\"Patient\", /* block, with \"quotes\" */ \"id\":\"a//b\",\n"
                   "  \"gender\":\"male\" // trailing\n}";
  auto r = parseJson(in);
  REQUIRE(r.document);
  size_t comments = 0;
  for (const auto& i : r.issues) {
    if (i.rule_id == "json.comment") {
      ++comments;
      CHECK(i.severity == Severity::Error);
    }
  }
  CHECK(comments == 3);  // the "//" inside the id string is no comment
  const Issue* first = findRule(r.issues, "json.comment");
  REQUIRE(first);
  CHECK(first->position.line == 1);
  CHECK(first->position.column == 1);
  CHECK(r.document->root()->child("id")->value() == "a//b");

  ParseOptions allow;
  allow.allow_comments = true;
  auto ok = parseJson(in, allow);
  REQUIRE(ok.document);
  CHECK(ok.issues.empty());
  CHECK(ok.document->root()->child("gender")->value() == "male");

  // A '/' that starts no comment is still a syntax error.
  auto bad = parseJson("{\"resourceType\":\"Patient\",\"id\": /x}", allow);
  CHECK(hasRule(bad.issues, "json.syntax"));
}

TEST_CASE("an element whose unknown content was left out remembers it", "[json][bad-input]") {
  auto r = parseJson(R"({"resourceType":"Patient","contact":[{"nickname":"x"}],"name":[{"family":"F"}]})");
  REQUIRE(r.document);
  CHECK(hasRule(r.issues, "json.unknown-element"));
  const Node* contact = r.document->root()->child("contact");
  REQUIRE(contact);
  CHECK(contact->hadUnknownContent());
  CHECK_FALSE(r.document->root()->child("name")->hadUnknownContent());
}
