#include "profiles/structure_definition_rules.h"

#include <catch2/catch.hpp>

#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
using testing::countRule;
using testing::describe;
testing::ValidatorFixture& fixture() {
  static testing::ValidatorFixture f;
  return f;
}
// A constraint profile on `type` with the given differential elements (JSON array members).
std::string profile(std::string_view type, std::string_view elements) {
  return R"({"resourceType":"StructureDefinition","url":"http://example.org/StructureDefinition/p","name":"P",
    "status":"draft","kind":"resource","abstract":false,"type":")" + std::string(type) +
         R"(","baseDefinition":"http://hl7.org/fhir/StructureDefinition/)" + std::string(type) +
         R"(","derivation":"constraint","differential":{"element":[)" + std::string(elements) + "]}}";
}
}  // namespace

TEST_CASE("a type profile must be a profile of the element's type", "[validator][structure-definition]") {
  constexpr std::string_view kRule = "ElementDefinition.type.profile:type";
  auto simple = fixture().validate(profile("Observation", R"({"id":"Observation.valueQuantity",
    "path":"Observation.valueQuantity","type":[{"code":"Quantity",
    "profile":["http://hl7.org/fhir/StructureDefinition/SimpleQuantity"]}]})"));
  INFO(describe(simple));
  CHECK(countRule(simple, kRule) == 0);
  // Count specializes Quantity: it is a type of its own, not a profile of Quantity.
  auto count = fixture().validate(profile("Observation", R"({"id":"Observation.valueQuantity",
    "path":"Observation.valueQuantity","type":[{"code":"Quantity",
    "profile":["http://hl7.org/fhir/StructureDefinition/Count"]}]})"));
  INFO(describe(count));
  CHECK(countRule(count, kRule) == 1);
  // An abstract type is narrowed by a profile of a type derived from it.
  auto resource = fixture().validate(profile("Bundle", R"({"id":"Bundle.entry.resource","path":"Bundle.entry.resource",
    "type":[{"code":"Resource","profile":["http://hl7.org/fhir/StructureDefinition/Observation"]}]})"));
  INFO(describe(resource));
  CHECK(countRule(resource, kRule) == 0);
}

TEST_CASE("slicing is not allowed on the root element of a profile", "[validator][structure-definition]") {
  auto sliced = fixture().validate(profile("Patient", R"({"id":"Patient","path":"Patient",
    "slicing":{"discriminator":[{"type":"value","path":"id"}],"rules":"open"}})"));
  INFO(describe(sliced));
  CHECK(countRule(sliced, "ElementDefinition.slicing:root") == 1);
  CHECK(countRule(sliced, "StructureDefinition.snapshot:generation") == 1);
  auto child = fixture().validate(profile("Patient", R"({"id":"Patient.identifier","path":"Patient.identifier",
    "slicing":{"discriminator":[{"type":"value","path":"system"}],"rules":"open"}})"));
  INFO(describe(child));
  CHECK(countRule(child, "ElementDefinition.slicing:root") == 0);
  CHECK(countRule(child, "StructureDefinition.snapshot:generation") == 0);
}

TEST_CASE("a slicing discriminator has one of the discriminator types", "[validator][structure-definition]") {
  auto sliced = [](std::string_view type) {
    return fixture().validate(profile("Patient", R"({"id":"Patient.identifier","path":"Patient.identifier",
      "slicing":{"discriminator":[{"type":")" + std::string(type) + R"(","path":"system"}],"rules":"open"}})"));
  };
  CHECK(countRule(sliced("value"), "StructureDefinition.snapshot:generation") == 0);
  CHECK(countRule(sliced("pattern"), "StructureDefinition.snapshot:generation") == 0);
  auto unknown = sliced("expression");
  INFO(describe(unknown));
  CHECK(countRule(unknown, "StructureDefinition.snapshot:generation") == 1);
}

TEST_CASE("a discriminator path names an element of the sliced element", "[validator][structure-definition]") {
  constexpr std::string_view kRule = "ElementDefinition.slicing.discriminator.path:element";
  auto sliced = [](std::string_view path) {
    return fixture().validate(profile("Patient", R"({"id":"Patient.identifier","path":"Patient.identifier",
      "slicing":{"discriminator":[{"type":"value","path":")" + std::string(path) + R"("}],"rules":"open"}})"));
  };
  CHECK(countRule(sliced("system"), kRule) == 0);
  CHECK(countRule(sliced("type.coding.system"), kRule) == 0);  // through CodeableConcept and Coding
  CHECK(countRule(sliced("assigner.display"), kRule) == 0);    // through Reference
  CHECK(countRule(sliced("assigner.resolve().name"), kRule) == 0);  // functions are not walked
  auto wrong = sliced("type.coding.nosuch");
  INFO(describe(wrong));
  CHECK(countRule(wrong, kRule) == 1);
  // A type profile gives the children: an extension has a url, no type.
  auto extension = [](std::string_view path) {
    return fixture().validate(profile("Patient", R"({"id":"Patient.extension:b","path":"Patient.extension",
      "sliceName":"b","slicing":{"discriminator":[{"type":"value","path":")" + std::string(path) +
      R"("}],"rules":"open"},"type":[{"code":"Extension",
      "profile":["http://hl7.org/fhir/StructureDefinition/patient-birthPlace"]}]})"));
  };
  CHECK(countRule(extension("url"), kRule) == 0);
  CHECK(countRule(extension("value"), kRule) == 0);
  CHECK(countRule(extension("type"), kRule) == 1);
}

TEST_CASE("a slice does not redefine the discriminators of the slicing it belongs to", "[validator][structure-definition]") {
  constexpr std::string_view kRule = "ElementDefinition.slicing:redefined";
  auto resliced = [](std::string_view path) {
    return fixture().validate(profile("Patient", R"({"id":"Patient.identifier","path":"Patient.identifier",
      "slicing":{"discriminator":[{"type":"value","path":"system"}],"rules":"open"}},
      {"id":"Patient.identifier:a","path":"Patient.identifier","sliceName":"a",
      "slicing":{"discriminator":[{"type":"value","path":")" + std::string(path) + R"("}],"rules":"open"}},
      {"id":"Patient.identifier:a/b","path":"Patient.identifier","sliceName":"a/b"})"));
  };
  CHECK(countRule(resliced("system"), kRule) == 0);
  auto redefined = resliced("use");
  INFO(describe(redefined));
  CHECK(countRule(redefined, kRule) == 1);
}

TEST_CASE("a renamed choice in a differential path names one of the choice's types", "[validator][structure-definition]") {
  constexpr std::string_view kRule = "StructureDefinition.snapshot:generation";
  auto renamed = [](std::string_view path) {
    return fixture().validate(profile("Observation", R"({"id":"Observation.value[x]","path":")" +
                                                         std::string(path) + R"(","short":"s"})"));
  };
  CHECK(countRule(renamed("Observation.valueQuantity"), kRule) == 0);
  CHECK(countRule(renamed("Observation.valueDateTime"), kRule) == 0);  // dateTime
  CHECK(countRule(renamed("Observation.value[x]"), kRule) == 0);
  CHECK(countRule(renamed("Observation.component.valueString"), kRule) == 0);
  auto wrong = renamed("Observation.valueBla");
  INFO(describe(wrong));
  CHECK(countRule(wrong, kRule) == 1);
  CHECK(countRule(renamed("Observation.component.valueAddress"), kRule) == 1);
}

TEST_CASE("a binding sits on an element that can carry a code", "[validator][structure-definition]") {
  constexpr std::string_view kRule = "ElementDefinition.binding:type";
  auto bound = [](std::string_view path, std::string_view type) {
    std::string types = type.empty() ? "" : R"(,"type":[{"code":")" + std::string(type) + R"("}])";
    return fixture().validate(profile("Patient", R"({"id":")" + std::string(path) + R"(","path":")" +
                                                     std::string(path) + R"(")" + types +
                                                     R"(,"binding":{"strength":"required",
      "valueSet":"http://hl7.org/fhir/ValueSet/administrative-gender"}})"));
  };
  CHECK(countRule(bound("Patient.gender", ""), kRule) == 0);  // code, from the base
  CHECK(countRule(bound("Patient.maritalStatus", "CodeableConcept"), kRule) == 0);
  auto date = bound("Patient.birthDate", "date");
  INFO(describe(date));
  CHECK(countRule(date, kRule) == 1);
  CHECK(countRule(bound("Patient.active", ""), kRule) == 1);  // boolean, from the base
}

TEST_CASE("differential elements follow the order of the base definition", "[validator][structure-definition]") {
  auto ordered = [](std::string_view elements) {
    auto issues = fixture().validate(profile("Patient", elements));
    return std::make_pair(countRule(issues, "ElementDefinition:order"),
                          countRule(issues, "StructureDefinition.snapshot:unmatched"));
  };
  using Counts = std::pair<size_t, size_t>;
  constexpr std::string_view identifier = R"({"id":"Patient.identifier","path":"Patient.identifier","min":1})";
  constexpr std::string_view system = R"({"id":"Patient.identifier.system","path":"Patient.identifier.system","min":1})";
  constexpr std::string_view birth = R"({"id":"Patient.birthDate","path":"Patient.birthDate","min":1})";
  CHECK(ordered(std::string(identifier) + "," + std::string(birth)) == Counts{0, 0});
  CHECK(ordered(std::string(identifier) + "," + std::string(system) + "," + std::string(birth)) == Counts{0, 0});
  // birthDate comes before identifier, which the base defines first: birthDate has no match.
  CHECK(ordered(std::string(birth) + "," + std::string(identifier)) == Counts{1, 1});
  // identifier is passed, and its child with it.
  CHECK(ordered(std::string(identifier) + "," + std::string(system) + R"(,{"id":"Patient.id","path":"Patient.id"})") ==
        Counts{2, 1});
  // Slices share the sliced element's place.
  CHECK(ordered(R"({"id":"Patient.identifier","path":"Patient.identifier","slicing":{"discriminator":[{"type":"value",
    "path":"system"}],"rules":"open"}},{"id":"Patient.identifier:a","path":"Patient.identifier","sliceName":"a"},
    {"id":"Patient.identifier:a.system","path":"Patient.identifier.system"},
    {"id":"Patient.identifier:b","path":"Patient.identifier","sliceName":"b"})") == Counts{0, 0});
}
