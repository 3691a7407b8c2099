// QuestionnaireResponse against its Questionnaire, and the Questionnaire rules, through the Validator.
#include "profiles/attachment_checks.h"
#include "profiles/questionnaire_validator.h"

#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"
#include "medicus/profiles/validator.h"
#include "validator_fixture.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
// Questionnaires the responses below refer to, loaded as supporting files.
constexpr std::string_view kQuestionnaire = R"J({"resourceType":"Questionnaire","url":"http://example.com/Questionnaire/q",
  "status":"active","item":[
   {"linkId":"smoker","text":"Do you smoke?","type":"boolean","required":true},
   {"linkId":"packs","text":"Packs a day","type":"integer","enableWhen":[{"question":"smoker","operator":"=","answerBoolean":true}],
    "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":10}]},
   {"linkId":"colour","type":"choice","repeats":true,"answerOption":[
     {"valueCoding":{"system":"http://example.com/cs","code":"red"}},
     {"valueCoding":{"system":"http://example.com/cs","code":"none"},
      "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive","valueBoolean":true}]}]},
   {"linkId":"distance","type":"quantity","extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-maxQuantity",
     "valueQuantity":{"value":5,"unit":"km","system":"http://unitsofmeasure.org","code":"km"}}]},
   {"linkId":"since","type":"date","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueDate":"2020"}]},
   {"linkId":"details","type":"group","item":[{"linkId":"note","type":"string","maxLength":5,
     "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":"[a-z]+"}]}]},
   {"linkId":"who","type":"reference","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource",
     "valueCode":"Patient"}]},
   {"linkId":"later","type":"string","extension":[{"url":"http://phr.kanta.fi/StructureDefinition/fiphr-ext-questionnaire-enablewhen",
     "valueString":"QuestionnaireResponse.item.where(linkId='smoker').answer.value.ofType(boolean)"}]}
  ]})J";

testing::ValidatorFixture& fixture() {
  static testing::ValidatorFixture f({{kQuestionnaire, "q.json"}});
  return f;
}
using testing::errors;
using testing::describe;
size_t count(const fhir::Issues& issues, std::string_view rule, fhir::Severity severity = fhir::Severity::Error) {
  size_t n = 0;
  for (const auto& i : issues) n += i.rule_id == rule && i.severity == severity;
  return n;
}
std::string response(std::string_view status, std::string_view items) {
  return R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.com/Questionnaire/q","status":")" +
         std::string(status) + R"(","item":[)" + std::string(items) + "]}";
}
}  // namespace

TEST_CASE("a complete, valid response has no errors", "[questionnaire]") {
  auto issues = fixture().validate(response("completed", R"(
    {"linkId":"smoker","text":"Do you smoke?","answer":[{"valueBoolean":true}]},
    {"linkId":"packs","answer":[{"valueInteger":2}]},
    {"linkId":"colour","answer":[{"valueCoding":{"system":"http://example.com/cs","code":"red"}}]},
    {"linkId":"distance","answer":[{"valueQuantity":{"value":4000,"unit":"m","system":"http://unitsofmeasure.org","code":"m"}}]},
    {"linkId":"since","answer":[{"valueDate":"2020-03"}]},
    {"linkId":"details","item":[{"linkId":"note","answer":[{"valueString":"abc"}]}]},
    {"linkId":"later","answer":[{"valueString":"x"}]})"));
  INFO(describe(issues));
  CHECK(errors(issues) == 0);
}

TEST_CASE("unknown linkIds, misplaced and out-of-order items are errors", "[questionnaire]") {
  auto issues = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueBoolean":false}]},
    {"linkId":"nope","answer":[{"valueString":"x"}]},
    {"linkId":"note","answer":[{"valueString":"abc"}]},
    {"linkId":"since","answer":[{"valueDate":"2021"}]},
    {"linkId":"colour","answer":[{"valueCoding":{"system":"http://example.com/cs","code":"red"}}]})"));
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item:linkId-unknown") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item:misplaced") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item:order") == 1);
}

TEST_CASE("answer value types follow item.type", "[questionnaire]") {
  auto issues = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueString":"yes"}]},
    {"linkId":"since","answer":[{"valueCoding":{"code":"x"}}]})"));
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer.value:type") == 2);
  for (const auto& i : issues) {
    if (i.rule_id == "QuestionnaireResponse.item.answer.value:type") CHECK(i.expression.find(".answer[0].value.ofType(") != std::string::npos);
  }
}

TEST_CASE("required items: errors when completed, warnings while in progress", "[questionnaire]") {
  auto completed = fixture().validate(response("completed", R"({"linkId":"since","answer":[{"valueDate":"2021"}]})"));
  INFO(describe(completed));
  CHECK(count(completed, "QuestionnaireResponse.item:required") == 1);
  auto in_progress = fixture().validate(response("in-progress", R"({"linkId":"since","answer":[{"valueDate":"2021"}]})"));
  CHECK(count(in_progress, "QuestionnaireResponse.item:required") == 0);
  CHECK(count(in_progress, "QuestionnaireResponse.item:required", fhir::Severity::Warning) == 1);
}

TEST_CASE("answers to items disabled by enableWhen are errors", "[questionnaire]") {
  auto disabled = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueBoolean":false}]},{"linkId":"packs","answer":[{"valueInteger":1}]})"));
  INFO(describe(disabled));
  CHECK(count(disabled, "QuestionnaireResponse.item:not-enabled") == 1);
  auto enabled = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueBoolean":true}]},{"linkId":"packs","answer":[{"valueInteger":1}]})"));
  CHECK(count(enabled, "QuestionnaireResponse.item:not-enabled") == 0);
}

TEST_CASE("enableWhen expressions (FHIRPath) decide whether an item is enabled", "[questionnaire]") {
  auto disabled = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueBoolean":false}]},{"linkId":"later","answer":[{"valueString":"x"}]})"));
  INFO(describe(disabled));
  CHECK(count(disabled, "QuestionnaireResponse.item:not-enabled") == 1);
}

TEST_CASE("value limits: maxValue, dates by precision, maxLength, regex", "[questionnaire]") {
  auto issues = fixture().validate(response("completed", R"(
    {"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"packs","answer":[{"valueInteger":11}]},
    {"linkId":"since","answer":[{"valueDate":"2019-12-31"}]},
    {"linkId":"details","item":[{"linkId":"note","answer":[{"valueString":"abcdef1"}]}]})"));
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer:maxValue") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:minValue") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:maxLength") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:regex") == 1);
}

TEST_CASE("quantities compare across compatible UCUM units", "[questionnaire]") {
  auto too_far = fixture().validate(response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"distance","answer":[{"valueQuantity":{"value":6000,"unit":"m","system":"http://unitsofmeasure.org","code":"m"}}]})"));
  INFO(describe(too_far));
  CHECK(count(too_far, "QuestionnaireResponse.item.answer:maxQuantity") == 1);
  auto no_units = fixture().validate(response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"distance","answer":[{"valueQuantity":{"value":1,"unit":"km"}}]})"));
  CHECK(count(no_units, "QuestionnaireResponse.item.answer:maxQuantity") == 1);
  auto wrong_dimension = fixture().validate(response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"distance","answer":[{"valueQuantity":{"value":1,"system":"http://unitsofmeasure.org","code":"kg"}}]})"));
  CHECK(count(wrong_dimension, "QuestionnaireResponse.item.answer:maxQuantity") == 1);
}

TEST_CASE("answerOption membership, exclusive options and repeats", "[questionnaire]") {
  auto issues = fixture().validate(response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true},{"valueBoolean":false}]},
    {"linkId":"colour","answer":[{"valueCoding":{"system":"http://example.com/cs","code":"blue"}},
                                 {"valueCoding":{"system":"http://example.com/cs","code":"none"}}]})"));
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer:option") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:exclusive") == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:repeats") == 1);
}

TEST_CASE("contained questionnaires with contained answer value sets", "[questionnaire]") {
  auto issues = fixture().validate(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"#q",
    "contained":[{"resourceType":"Questionnaire","id":"q","status":"active","item":[
        {"linkId":"a","type":"choice","answerValueSet":"#vs"}]},
      {"resourceType":"ValueSet","id":"vs","status":"active","compose":{"include":[{"system":"http://example.com/cs",
        "concept":[{"code":"x","display":"Ex"}]}]}}],
    "item":[{"linkId":"a","answer":[{"valueCoding":{"system":"http://example.com/cs","code":"y"}}]}]})");
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer:valueset") == 1);
}

TEST_CASE("a questionnaire canonical that names another resource type is an error", "[questionnaire]") {
  auto issues = fixture().validate(R"({"resourceType":"QuestionnaireResponse","status":"in-progress",
    "questionnaire":"http://hl7.org/fhir/ValueSet/example-extensional"})");
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.questionnaire:wrong-type") == 1);
  auto unknown = fixture().validate(R"({"resourceType":"QuestionnaireResponse","status":"in-progress",
    "questionnaire":"http://acme.org/Questionnaire/none"})");
  CHECK(errors(unknown) == 0);
  CHECK(count(unknown, "QuestionnaireResponse.questionnaire:unresolved", fhir::Severity::Warning) == 1);
}

TEST_CASE("Questionnaire: enableWhen must not point into the item itself; que-12 as corrected", "[questionnaire]") {
  auto inner = fixture().validate(R"({"resourceType":"Questionnaire","status":"draft","item":[
    {"linkId":"g","type":"group","enableWhen":[{"question":"c","operator":"=","answerBoolean":true}],
     "item":[{"linkId":"c","type":"boolean"}]}]})");
  INFO(describe(inner));
  CHECK(count(inner, "Questionnaire.item.enableWhen:inner") == 1);
  auto two = fixture().validate(R"({"resourceType":"Questionnaire","status":"draft","item":[
    {"linkId":"a","type":"integer"},{"linkId":"b","type":"integer"},
    {"linkId":"c","type":"integer","enableWhen":[{"question":"a","operator":"=","answerInteger":1},
                                                   {"question":"b","operator":"=","answerInteger":1}]}]})");
  INFO(describe(two));
  CHECK(count(two, "Questionnaire.item:que-12") == 1);
}

TEST_CASE("attachment size must match the data", "[questionnaire][attachment]") {
  CHECK(base64DecodedSize("") == 0);
  CHECK(base64DecodedSize("YQ==") == 1);
  CHECK(base64DecodedSize("YWI=") == 2);
  CHECK(base64DecodedSize("YWJj") == 3);
  CHECK(base64DecodedSize("YWJj\nZA==") == 4);
  auto wrong = fixture().validate(R"({"resourceType":"DocumentReference","status":"current","content":[
    {"attachment":{"contentType":"text/plain","data":"YWJj","size":4}}]})");
  INFO(describe(wrong));
  CHECK(count(wrong, "Attachment.size:data-size") == 1);
  auto right = fixture().validate(R"({"resourceType":"DocumentReference","status":"current","content":[
    {"attachment":{"contentType":"text/plain","data":"YWJj","size":3}}]})");
  CHECK(count(right, "Attachment.size:data-size") == 0);
}

TEST_CASE("reference answers name an allowed resource type (when REST references are assumed valid)", "[questionnaire]") {
  std::string qr = response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"who","answer":[{"valueReference":{"reference":"Organization/1"}}]})");
  ValidationOptions assume;
  assume.assume_valid_rest_references = true;
  auto checked = fixture().validate(qr, assume);
  INFO(describe(checked));
  CHECK(count(checked, "QuestionnaireResponse.item.answer:reference-type") == 1);
  CHECK(count(fixture().validate(qr), "QuestionnaireResponse.item.answer:reference-type") == 0);
}

TEST_CASE("the questionnaire of a response may be another entry of the Bundle", "[questionnaire]") {
  auto issues = fixture().validate(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://example.com/fhir/Questionnaire/b","resource":{"resourceType":"Questionnaire","id":"b",
      "url":"http://example.com/Questionnaire/in-bundle","version":"2","status":"active",
      "item":[{"linkId":"n","type":"integer","required":true}]}},
    {"fullUrl":"http://example.com/fhir/QuestionnaireResponse/r","resource":{"resourceType":"QuestionnaireResponse","id":"r",
      "questionnaire":"http://example.com/Questionnaire/in-bundle|2","status":"completed",
      "item":[{"linkId":"n","answer":[{"valueString":"seven"}]}]}}]})");
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer.value:type") == 1);
  CHECK(count(issues, "QuestionnaireResponse.questionnaire:unresolved", fhir::Severity::Warning) == 0);
}

TEST_CASE("XML responses are checked like JSON ones", "[questionnaire]") {
  auto parsed = fhir::parse(R"(<QuestionnaireResponse xmlns="http://hl7.org/fhir">
    <questionnaire value="http://example.com/Questionnaire/q"/><status value="completed"/>
    <item><linkId value="smoker"/><answer><valueBoolean value="false"/></answer></item>
    <item><linkId value="packs"/><answer><valueInteger value="3"/></answer></item>
  </QuestionnaireResponse>)");
  REQUIRE(parsed.document);
  fhir::Issues issues = parsed.issues;
  fixture().validator->validate(*parsed.document, {}, issues);
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item:not-enabled") == 1);
  for (const auto& i : issues) {
    if (i.rule_id == "QuestionnaireResponse.item:not-enabled") CHECK(i.position.line == 4);
  }
}

TEST_CASE("over-long answers are not fed to the regex engine", "[questionnaire]") {
  std::string long_note(100000, 'a');
  auto issues = fixture().validate(response("completed", R"({"linkId":"smoker","answer":[{"valueBoolean":true}]},
    {"linkId":"details","item":[{"linkId":"note","answer":[{"valueString":")" + long_note + R"("}]}]})"));
  CHECK(count(issues, "QuestionnaireResponse.item.answer:regex-unchecked", fhir::Severity::Warning) == 1);
  CHECK(count(issues, "QuestionnaireResponse.item.answer:maxLength") == 1);
}

TEST_CASE("enableWhenExpression sees the SDC variables in scope; unknown variables leave the item enabled", "[questionnaire]") {
  auto make = [](std::string_view expression) {
    return std::string(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"#q",
      "contained":[{"resourceType":"Questionnaire","id":"q","status":"active",
        "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/variable","valueExpression":{"name":"smokes",
          "language":"text/fhirpath","expression":"item.where(linkId='s').answer.value"}}],
        "item":[{"linkId":"s","type":"boolean"},
          {"linkId":"n","type":"integer","extension":[{"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression",
            "valueExpression":{"language":"text/fhirpath","expression":")") + std::string(expression) + R"("}}]}]}],
      "item":[{"linkId":"s","answer":[{"valueBoolean":false}]},{"linkId":"n","answer":[{"valueInteger":3}]}]})";
  };
  auto with_variable = fixture().validate(make("%smokes"));
  INFO(describe(with_variable));
  CHECK(count(with_variable, "QuestionnaireResponse.item:not-enabled") == 1);
  auto unknown = fixture().validate(make("%patient.gender = 'female'"));
  INFO(describe(unknown));
  CHECK(count(unknown, "QuestionnaireResponse.item:not-enabled") == 0);
}

TEST_CASE("a questionnaire derived from another keeps its items' definitions", "[questionnaire]") {
  auto derived = [](std::string_view type, std::string_view items) {
    return R"({"resourceType":"Questionnaire","status":"draft","derivedFrom":["http://example.com/Questionnaire/q"],
      "_derivedFrom":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-derivationType",
        "valueCoding":{"system":"http://hl7.org/fhir/questionnaire-derivationType","code":")" + std::string(type) + R"("}}]}],
      "item":[)" + std::string(items) + "]}";
  };
  auto complies = fixture().validate(derived("compliesWith", R"({"linkId":"smoker","type":"string","required":false},
    {"linkId":"extra","type":"string"})"));
  INFO(describe(complies));
  CHECK(count(complies, "Questionnaire.item:derivation") == 2);  // type and required changed
  CHECK(count(complies, "Questionnaire.item:derivation-new-item") == 1);
  auto extends = fixture().validate(derived("extends", R"({"linkId":"smoker","type":"boolean","required":true},
    {"linkId":"colour","type":"choice","answerOption":[{"valueCoding":{"system":"http://example.com/cs","code":"red"}}]},
    {"linkId":"extra","type":"string"})"));
  INFO(describe(extends));
  CHECK(count(extends, "Questionnaire.item:derivation") == 0);
  CHECK(count(extends, "Questionnaire.item:derivation-new-item") == 0);
  auto untyped = fixture().validate(R"({"resourceType":"Questionnaire","status":"draft",
    "derivedFrom":["http://example.com/Questionnaire/q"],"item":[{"linkId":"smoker","type":"string"}]})");
  CHECK(count(untyped, "Questionnaire.derivedFrom:no-type", fhir::Severity::Warning) == 1);
  CHECK(errors(untyped) == 0);
}

TEST_CASE("a contained questionnaire's regex runs without backtracking; unsupported patterns are reported", "[questionnaire]") {
  auto make = [](std::string_view regex, std::string_view answer, int answers = 1) {
    std::string items;
    for (int i = 0; i < answers; ++i) items += std::string(i ? "," : "") + R"({"valueString":")" + std::string(answer) + "\"}";
    return std::string(R"({"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"#q",
      "contained":[{"resourceType":"Questionnaire","id":"q","status":"active","item":[{"linkId":"s","type":"string",
        "repeats":true,"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/regex","valueString":")") +
           std::string(regex) + R"("}]}]}],
      "item":[{"linkId":"s","answer":[)" + items + "]}]}";
  };
  const std::string evil = std::string(49, 'a') + "b";
  // (a|aa)+ against aaa...b: exponential for a backtracking matcher; three answers share one compiled pattern.
  auto issues = fixture().validate(make("^(a|aa)+$", evil, 3));
  INFO(describe(issues));
  CHECK(count(issues, "QuestionnaireResponse.item.answer:regex") == 3);
  auto ok = fixture().validate(make("^(a|aa)+$", std::string(49, 'a')));
  CHECK(count(ok, "QuestionnaireResponse.item.answer:regex") == 0);
  // ECMAScript class escapes are read: the e-mail pattern of the reference validator's test cases.
  CHECK(count(fixture().validate(make(R"(^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$)", "x@y.z")), "QuestionnaireResponse.item.answer:regex") == 0);
  CHECK(count(fixture().validate(make(R"(^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$)", "x y@z")), "QuestionnaireResponse.item.answer:regex") == 1);
  // Outside the subset (lookahead, lazy quantifier) or over-long: a warning, not a hang or a false error.
  for (std::string_view pattern : {std::string_view("^(?=a)(a|aa)+$"), std::string_view("^(a|aa)+?$")}) {
    auto unsupported = fixture().validate(make(pattern, evil));
    INFO(describe(unsupported));
    CHECK(count(unsupported, "QuestionnaireResponse.item.answer:regex-unsupported", fhir::Severity::Warning) == 1);
    CHECK(errors(unsupported) == 0);
  }
  auto long_pattern = fixture().validate(make(std::string(2000, 'a'), "a"));
  CHECK(count(long_pattern, "QuestionnaireResponse.item.answer:regex-unsupported", fhir::Severity::Warning) == 1);
}
