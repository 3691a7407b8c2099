#include "medicus/profiles/terminology.h"

#include <catch2/catch.hpp>

using namespace medicus::profiles;

TEST_CASE("value sets expand from local code systems", "[terminology]") {
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  Terminology tx(registry);
  const std::string gender = "http://hl7.org/fhir/ValueSet/administrative-gender";
  CHECK(tx.expansionSize(gender) == 4);
  CHECK(tx.checkValueSet(gender, "http://hl7.org/fhir/administrative-gender", "female").status == CodeStatus::Valid);
  CHECK(tx.checkValueSet(gender, "", "female").status == CodeStatus::Valid);
  CHECK(tx.checkValueSet(gender, "", "femme").status == CodeStatus::Invalid);
  CHECK(tx.checkValueSet(gender + "|4.0.1", "", "male").status == CodeStatus::Valid);
  auto display = tx.checkValueSet(gender, "http://hl7.org/fhir/administrative-gender", "female", "Woman");
  CHECK(display.display_mismatch);
  CHECK(display.expected_display == "Female");
  // is-a filters: observation-category is flat, but v3 ActCode style hierarchies use is-a.
  CHECK(tx.checkValueSet("http://hl7.org/fhir/ValueSet/observation-category",
                         "http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
            .status == CodeStatus::Valid);
  // SNOMED CT is not available locally: never a silent pass.
  auto snomed = tx.checkValueSet("http://hl7.org/fhir/ValueSet/clinical-findings", "http://snomed.info/sct", "22298006");
  CHECK(snomed.status == CodeStatus::CannotCheck);
  CHECK(snomed.detail.find("snomed") != std::string::npos);
  CHECK(tx.checkValueSet("http://example.org/no-such-vs", "", "x").status == CodeStatus::CannotCheck);
  CHECK(tx.checkCodeSystem("http://hl7.org/fhir/administrative-gender", "other").status == CodeStatus::Valid);
  CHECK(tx.checkCodeSystem("http://hl7.org/fhir/administrative-gender", "x").status == CodeStatus::Invalid);
  CHECK(tx.checkCodeSystem("http://loinc.org", "8480-6").status == CodeStatus::CannotCheck);
}

TEST_CASE("hierarchical filters follow the concept tree", "[terminology]") {
  PackageRegistry registry;
  REQUIRE(registry.addResourceText(R"({"resourceType":"CodeSystem","url":"http://ex/cs","content":"complete",
    "concept":[{"code":"a","display":"A","concept":[{"code":"a1","concept":[{"code":"a11"}]},{"code":"a2"}]},{"code":"b"}]})", "cs"));
  REQUIRE(registry.addResourceText(R"({"resourceType":"ValueSet","url":"http://ex/isa","compose":{"include":[
    {"system":"http://ex/cs","filter":[{"property":"concept","op":"is-a","value":"a1"}]}]}})", "vs1"));
  REQUIRE(registry.addResourceText(R"({"resourceType":"ValueSet","url":"http://ex/desc","compose":{"include":[
    {"system":"http://ex/cs","filter":[{"property":"concept","op":"descendent-of","value":"a"}]}],
    "exclude":[{"system":"http://ex/cs","concept":[{"code":"a2"}]}]}})", "vs2"));
  REQUIRE(registry.addResourceText(R"({"resourceType":"ValueSet","url":"http://ex/nested","compose":{"include":[
    {"valueSet":["http://ex/isa"]},{"system":"http://ex/cs","filter":[{"property":"code","op":"regex","value":"b.*"}]}]}})", "vs3"));
  Terminology tx(registry);
  CHECK(tx.expansionSize("http://ex/isa") == 2);
  CHECK(tx.expansionSize("http://ex/desc") == 2);  // a1, a11
  CHECK(tx.checkValueSet("http://ex/desc", "http://ex/cs", "a").status == CodeStatus::Invalid);
  CHECK(tx.checkValueSet("http://ex/desc", "http://ex/cs", "a2").status == CodeStatus::Invalid);
  CHECK(tx.checkValueSet("http://ex/desc", "http://ex/cs", "a11").status == CodeStatus::Valid);
  CHECK(tx.expansionSize("http://ex/nested") == 3);
}

TEST_CASE("media type codes (urn:ietf:bcp:13) are judged by their grammar's characters only", "[terminology]") {
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  Terminology tx(registry);
  const std::string mime = "http://hl7.org/fhir/ValueSet/mimetypes";
  // Well-formed codes cannot be confirmed without the registry of media types.
  CHECK(tx.checkValueSet(mime, "", "application/fhir+json").status == CodeStatus::CannotCheck);
  CHECK(tx.checkValueSet(mime, "", "text/plain; charset=UTF-8").status == CodeStatus::CannotCheck);
  CHECK(tx.checkValueSet(mime, "", "xml").status == CodeStatus::CannotCheck);  // R4 format codes
  CHECK(tx.checkValueSet(mime, "urn:ietf:bcp:13", "image/png").status == CodeStatus::CannotCheck);
  // Characters outside the grammar, or more than one '/', are no media type.
  CHECK(tx.checkValueSet(mime, "", "[%payloadFormat%]").status == CodeStatus::Invalid);
  CHECK(tx.checkValueSet(mime, "", "text/plain/x").status == CodeStatus::Invalid);
  CHECK(tx.checkValueSet(mime, "urn:ietf:bcp:13", "text plain").status == CodeStatus::Invalid);
}
