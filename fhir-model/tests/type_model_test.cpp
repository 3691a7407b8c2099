#include <catch2/catch.hpp>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/type_model.h"

using namespace medicus::fhir;

TEST_CASE("type model knows R4 resources, data types and backbones", "[type_model]") {
  const TypeModel& m = TypeModel::r4();
  const TypeInfo* patient = m.find("Patient");
  REQUIRE(patient != nullptr);
  CHECK(patient->kind == TypeKind::Resource);
  CHECK(patient->isA("DomainResource"));
  CHECK(patient->isA("Resource"));
  CHECK_FALSE(patient->isA("Observation"));

  const ElementInfo* name = patient->findElement("name");
  REQUIRE(name != nullptr);
  CHECK(name->repeats());
  REQUIRE(name->singleType() != nullptr);
  CHECK(name->singleType()->name == "HumanName");

  // Definition order: id before meta before text before identifier.
  CHECK(patient->findElement("id")->index < patient->findElement("meta")->index);
  CHECK(patient->findElement("text")->index < patient->findElement("identifier")->index);

  const ElementInfo* contact = patient->findElement("contact");
  REQUIRE(contact != nullptr);
  REQUIRE(contact->singleType() != nullptr);
  CHECK(contact->singleType()->kind == TypeKind::Backbone);
  CHECK(contact->singleType()->name == "Patient.contact");
  CHECK(contact->singleType()->isA("BackboneElement"));
}

TEST_CASE("choice elements resolve by suffix", "[type_model]") {
  const TypeInfo* obs = TypeModel::r4().find("Observation");
  const ElementInfo* e = nullptr;
  const TypeInfo* t = nullptr;
  REQUIRE(obs->resolveProperty("valueQuantity", e, t));
  CHECK(e->name == "value");
  CHECK(e->is_choice);
  CHECK(t->name == "Quantity");
  REQUIRE(obs->resolveProperty("valueString", e, t));
  CHECK(t->name == "string");
  CHECK_FALSE(obs->resolveProperty("valueFoo", e, t));
  CHECK_FALSE(obs->resolveProperty("valuestring", e, t));
  CHECK_FALSE(obs->resolveProperty("value", e, t));
}

TEST_CASE("contentReference points at the referenced backbone", "[type_model]") {
  const TypeInfo* item = TypeModel::r4().find("Questionnaire.item");
  REQUIRE(item != nullptr);
  const ElementInfo* nested = item->findElement("item");
  REQUIRE(nested != nullptr);
  CHECK(nested->singleType() == item);
}

TEST_CASE("primitives carry their JSON kind and attributes", "[type_model]") {
  const TypeModel& m = TypeModel::r4();
  CHECK(m.find("decimal")->json_kind == JsonValueKind::Number);
  CHECK(m.find("integer")->json_kind == JsonValueKind::Number);
  CHECK(m.find("boolean")->json_kind == JsonValueKind::Boolean);
  CHECK(m.find("date")->json_kind == JsonValueKind::String);
  CHECK(m.find("Extension")->findElement("url")->is_xml_attribute);
  CHECK(m.find("Element")->findElement("id")->is_xml_attribute);
  CHECK_FALSE(m.find("Patient")->findElement("id")->is_xml_attribute);
  CHECK(m.find("Age")->isA("Quantity"));
}

TEST_CASE("line index: lines, code-point columns, long single lines", "[issue]") {
  std::string text = "ab\nMüller x\n";
  LineIndex index(text);
  CHECK(index.positionOf(0).line == 1);
  CHECK(index.positionOf(0).column == 1);
  CHECK(index.positionOf(3).line == 2);
  size_t x = text.find('x');
  CHECK(index.positionOf(x).line == 2);
  CHECK(index.positionOf(x).column == 8);  // "Müller " is 7 code points (8 bytes)
  std::string long_line;
  for (int i = 0; i < 5000; ++i) long_line += "ü";
  long_line += "z";
  LineIndex long_index(long_line);
  CHECK(long_index.positionOf(long_line.size() - 1).column == 5001);
  CHECK(long_index.positionOf(long_line.size()).column == 5002);
  LineIndex empty("");
  CHECK(empty.positionOf(0).line == 1);
  CHECK(empty.positionOf(0).column == 1);
  // Many lines across several blocks, multi-byte characters on either side of block boundaries.
  std::string many;
  for (int i = 0; i < 700; ++i) many += "ä" + std::to_string(i) + "\n";
  LineIndex many_index(many);
  size_t at = many.find("\xC3\xA4" "650\n");
  CHECK(many_index.positionOf(at).line == 651);
  CHECK(many_index.positionOf(at + 2).column == 2);  // after the 2-byte "ä"
  CHECK(many_index.positionOf(at + 5).column == 5);  // the newline
  // Columns counted within a short line and through the block counts of a long one agree.
  std::string mixed = "ü\n";
  for (int i = 0; i < 600; ++i) mixed += "\xC3\xBC" "a";  // 1,800 bytes on line 2
  LineIndex mixed_index(mixed);
  CHECK(mixed_index.positionOf(3 + 1023).column == 683);  // 341 "üa" and one "ü" before it
  CHECK(mixed_index.positionOf(3 + 1026).column == 685);  // past the 1 KiB line length
  CHECK(mixed_index.positionOf(1).column == 2);
  // Every offset of lines from empty to several blocks long agrees with counting from the start.
  std::string varied;
  for (int i = 0; i < 40; ++i) {
    for (int k = 0; k < (i * i * 7) % 2600; ++k) varied += k % 5 == 0 ? "\xC3\xA4" : "x";
    if (i % 7 != 3) varied += '\n';
  }
  LineIndex varied_index(varied);
  uint32_t line = 1, column = 1;
  bool all_agree = true;
  for (size_t at = 0; at <= varied.size(); ++at) {
    SourcePosition p = varied_index.positionOf(at);
    all_agree = all_agree && p.line == line && p.column == column;
    if (at == varied.size()) break;
    if (varied[at] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(varied[at]) & 0xC0) != 0x80) {
      ++column;  // columns count code points: continuation bytes add none
    }
  }
  CHECK(all_agree);
}
