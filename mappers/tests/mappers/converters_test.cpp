#include <catch2/catch.hpp>

#include "converters.h"
#include "medicus/fhir/format.h"
#include "medicus/fhir/type_model.h"
#include "medicus/mappers/v2_to_fhir.h"

using namespace medicus;
using namespace medicus::mappers;

namespace {
// Converts the first repetition of `field` of the PID in `pid` into a fresh node of `fhir_type`,
// returned as JSON (wrapped in a Basic resource's extension-free host: Patient).
std::string convert(Converter converter, const std::string& pid, const char* property, MapSettings settings = {}) {
  auto message = hl7v2::parseMessage("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r" + pid + "\r");
  REQUIRE(message);
  fhir::Document doc;
  fhir::Node* patient = doc.createRoot(fhir::TypeModel::r4().find("Patient"));
  fhir::Node* node = doc.addChild(patient, property);
  REQUIRE(node);
  ConversionContext context{doc, *message, settings};
  hl7v2::Location at = *hl7v2::parseLocation("PID-3");
  if (!fillComplex(converter, context, node, at)) return "";
  return fhir::writeJson(*patient);
}
}  // namespace

TEST_CASE("Converters: TS/DTM to FHIR dateTime keeps precision and zone", "[mappers][converters]") {
  CHECK(v2DateTimeToFhir("2024", "") == "2024");
  CHECK(v2DateTimeToFhir("202403", "") == "2024-03");
  CHECK(v2DateTimeToFhir("20240315", "") == "2024-03-15");
  CHECK(v2DateTimeToFhir("202403151230", "") == "2024-03-15");  // no zone, no default: date only
  CHECK(v2DateTimeToFhir("202403151230", "+01:00") == "2024-03-15T12:30:00+01:00");
  CHECK(v2DateTimeToFhir("20240315123045-0500", "+01:00") == "2024-03-15T12:30:45-05:00");
  CHECK(v2DateTimeToFhir("20240315123045.123+0000", "") == "2024-03-15T12:30:45.123+00:00");
  CHECK(v2DateTimeToFhir("2024031512", "Z") == "2024-03-15T12:00:00Z");
  CHECK_FALSE(v2DateTimeToFhir("20241315", ""));
  CHECK_FALSE(v2DateTimeToFhir("2024031", ""));
  CHECK_FALSE(v2DateTimeToFhir("20240315253000+0100", ""));
  CHECK_FALSE(v2DateTimeToFhir("yesterday", ""));
  CHECK(v2DateToFhir("19700101120000") == "1970-01-01");
}

TEST_CASE("Converters: CX to Identifier", "[mappers][converters]") {
  MapSettings settings;
  settings.assigning_authorities["HOSP"] = "https://hosp.example/mrn";
  CHECK(convert(Converter::kCX, "PID|||123^^^HOSP^MR", "identifier", settings) ==
        R"({"resourceType":"Patient","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"https://hosp.example/mrn","value":"123"}]})");
  CHECK(convert(Converter::kCX, "PID|||9^^^X&1.2.3&ISO", "identifier") ==
        R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"9"}]})");
  CHECK(convert(Converter::kCX, "PID|||^^^HOSP^MR", "identifier").empty());
  // Free text in CX-5 is not a table 0203 code: kept as type.text (seen in Microsoft's ADT samples).
  CHECK(convert(Converter::kCX, "PID|||5^^^X^GOOD HEALTH HOSPITAL", "identifier") ==
        R"({"resourceType":"Patient","identifier":[{"type":{"text":"GOOD HEALTH HOSPITAL"},"value":"5"}]})");
}

TEST_CASE("Converters: XPN to HumanName, XAD to Address, XTN to ContactPoint", "[mappers][converters]") {
  CHECK(convert(Converter::kXPN, "PID|||M\\S\\ller&vd^Hans^Peter^Jr^Dr^^L", "name") ==
        R"({"resourceType":"Patient","name":[{"use":"official","family":"M^ller","given":["Hans","Peter"],"prefix":["Dr"],"suffix":["Jr"]}]})");
  CHECK(convert(Converter::kXAD, "PID|||Hauptstr. 1&Hauptstr.&1^Hinterhaus^Berlin^BE^10115^DE^H", "address") ==
        R"({"resourceType":"Patient","address":[{"use":"home","line":["Hauptstr. 1","Hinterhaus"],"city":"Berlin","state":"BE","postalCode":"10115","country":"DE"}]})");
  CHECK(convert(Converter::kXTN, "PID|||^PRN^PH^^49^30^1234567", "telecom") ==
        R"({"resourceType":"Patient","telecom":[{"system":"phone","value":"+49 (30) 1234567","use":"home"}]})");
  CHECK(convert(Converter::kXTN, "PID|||^NET^Internet^a@b.de", "telecom") ==
        R"({"resourceType":"Patient","telecom":[{"system":"email","value":"a@b.de"}]})");
  CHECK(convert(Converter::kXTN, "PID|||(030)555^WPN^CP", "telecom") ==
        R"({"resourceType":"Patient","telecom":[{"system":"phone","value":"(030)555","use":"mobile"}]})");
}

TEST_CASE("Converters: CWE to CodeableConcept with code system table", "[mappers][converters]") {
  MapSettings settings;
  settings.code_systems["LN"] = "http://loinc.org";
  CHECK(convert(Converter::kCWE, "PID|||M^Married^HL70002^V^Verh.^L99^^^Verheiratet", "maritalStatus", settings) ==
        R"({"resourceType":"Patient","maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0002","code":"M","display":"Married"},{"code":"V","display":"Verh."}],"text":"Verheiratet"}})");
  CHECK(codingSystem(settings, "LN") == "http://loinc.org");
  CHECK(codingSystem(settings, "HL7-0203") == "http://terminology.hl7.org/CodeSystem/v2-0203");
  CHECK(codingSystem(settings, "1.2.276.0.76.5.409") == "urn:oid:1.2.276.0.76.5.409");
}

TEST_CASE("Converters: PL and XCN to References", "[mappers][converters]") {
  CHECK(convert(Converter::kPL, "PID|||ST1^Z2^B3^KH", "managingOrganization") ==
        R"({"resourceType":"Patient","managingOrganization":{"display":"KH / ST1 / Z2 / B3"}})");
  CHECK(convert(Converter::kXCN, "PID|||0815^Arzt^Anna^^^Dr.^^^LANR&1.2.276.0.76.4.16", "managingOrganization") ==
        R"({"resourceType":"Patient","managingOrganization":{"identifier":{"system":"urn:oid:1.2.276.0.76.4.16","value":"0815"},"display":"Dr. Anna Arzt"}})");
}

TEST_CASE("Converters: NM to FHIR decimal, units to UCUM", "[mappers][converters]") {
  CHECK(fhirDecimal("+013.50") == "13.50");
  CHECK(fhirDecimal(".5") == "0.5");
  CHECK(fhirDecimal("5.") == "5");
  CHECK(fhirDecimal("-0") == "0");
  CHECK(fhirDecimal(" 42 ") == "42");
  CHECK_FALSE(fhirDecimal("1,5"));
  CHECK_FALSE(fhirDecimal("."));
  CHECK_FALSE(fhirDecimal("positive"));
  CHECK(ucumCode("mg/dl", "") == "mg/dL");
  CHECK(ucumCode("mmHg", "ISO+") == "mm[Hg]");
  CHECK(ucumCode("{cells}/uL", "UCUM") == "{cells}/uL");
  CHECK(ucumCode("Stk", "L") == "");
}

namespace {
// OBX-5 of `obx` converted into a fresh node of `property` of an Observation, with OBX-6 as units.
std::string convertObx(Converter converter, const std::string& obx, const char* property) {
  auto message = hl7v2::parseMessage("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\r" + obx + "\r");
  REQUIRE(message);
  fhir::Document doc;
  fhir::Node* observation = doc.createRoot(fhir::TypeModel::r4().find("Observation"));
  fhir::Node* node = doc.addChild(observation, property);
  REQUIRE(node);
  MapSettings settings;
  hl7v2::Location units = *hl7v2::parseLocation("OBX-6");
  ConversionContext context{doc, *message, settings, &units};
  const hl7v2::Location at = *hl7v2::parseLocation(converter == Converter::kReferenceRange ? "OBX-7" : "OBX-5");
  if (!fillComplex(converter, context, node, at)) return "";
  return fhir::writeJson(*observation);
}
}  // namespace

TEST_CASE("Converters: OBX-5 by value type (NM, SN, ED) and OBX-7 reference ranges", "[mappers][converters]") {
  CHECK(convertObx(Converter::kNM, "OBX|1|NM|x||7.2|mmol/l", "valueQuantity") ==
        R"({"resourceType":"Observation","valueQuantity":{"value":7.2,"unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}})");
  CHECK(convertObx(Converter::kNM, "OBX|1|NM|x||7.2|Stk^Stueck^L", "valueQuantity") ==
        R"({"resourceType":"Observation","valueQuantity":{"value":7.2,"unit":"Stueck"}})");
  CHECK(convertObx(Converter::kNM, "OBX|1|NM|x||high", "valueQuantity").empty());
  CHECK(convertObx(Converter::kSN, "OBX|1|SN|x||>=^5", "valueQuantity") ==
        R"({"resourceType":"Observation","valueQuantity":{"value":5,"comparator":">="}})");
  CHECK(convertObx(Converter::kSN, "OBX|1|SN|x||^1^-^5", "valueQuantity").empty());  // a range, not a quantity
  CHECK(convertObx(Converter::kSNRange, "OBX|1|SN|x||^1^-^5", "valueRange") ==
        R"({"resourceType":"Observation","valueRange":{"low":{"value":1},"high":{"value":5}}})");
  CHECK(convertObx(Converter::kSNRatio, "OBX|1|SN|x||^1^:^128", "valueRatio") ==
        R"({"resourceType":"Observation","valueRatio":{"numerator":{"value":1},"denominator":{"value":128}}})");
  CHECK(convertObx(Converter::kSNRatio, "OBX|1|SN|x||^1^-^128", "valueRatio").empty());
  CHECK(convertObx(Converter::kReferenceRange, "OBX|1|NM|x||5|%|< 10", "referenceRange") ==
        R"({"resourceType":"Observation","referenceRange":[{"high":{"value":10,"unit":"%","system":"http://unitsofmeasure.org","code":"%"},"text":"< 10"}]})");
  CHECK(convertObx(Converter::kReferenceRange, "OBX|1|ST|x||neg||negativ", "referenceRange") ==
        R"({"resourceType":"Observation","referenceRange":[{"text":"negativ"}]})");
}

TEST_CASE("Converters: ED to Attachment (Base64, Hex, ASCII)", "[mappers][converters]") {
  auto attachment = [](const std::string& ed) {
    auto message = hl7v2::parseMessage("MSH|^~\\&|A|B|C|D|1||MDM^T02|1|P|2.5\rOBX|1|ED|x||" + ed + "\r");
    REQUIRE(message);
    fhir::Document doc;
    fhir::Node* media = doc.createRoot(fhir::TypeModel::r4().find("Media"));
    fhir::Node* node = doc.addChild(media, "content");
    MapSettings settings;
    ConversionContext context{doc, *message, settings};
    if (!fillComplex(Converter::kED, context, node, *hl7v2::parseLocation("OBX-5"))) return std::string();
    return fhir::writeJson(*media);
  };
  CHECK(attachment("^AP^PDF^Base64^JVBERi0x") == R"({"resourceType":"Media","content":{"contentType":"application/pdf","data":"JVBERi0x"}})");
  CHECK(attachment("^TEXT^^A^Hallo") == R"({"resourceType":"Media","content":{"contentType":"text/plain","data":"SGFsbG8="}})");
  CHECK(attachment("^IM^PNG^Hex^48656C6C6F") == R"({"resourceType":"Media","content":{"contentType":"image/png","data":"SGVsbG8="}})");
  CHECK(attachment("^AP^PDF^Base64^not base64!").empty());
  CHECK(attachment("^AP^PDF^Base64^").empty());
}

TEST_CASE("Converters: EI (order numbers) to Identifier", "[mappers][converters]") {
  CHECK(convert(Converter::kEI, "PID|||P-1^KIS^1.2.276.0.1^ISO", "identifier") ==
        R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.276.0.1","value":"P-1"}]})");
  MapSettings settings;
  settings.assigning_authorities["KIS"] = "https://kis.example.org/sid/order";
  CHECK(convert(Converter::kEI, "PID|||P-1^KIS", "identifier", settings) ==
        R"({"resourceType":"Patient","identifier":[{"system":"https://kis.example.org/sid/order","value":"P-1"}]})");
  CHECK(convert(Converter::kEI, "PID|||^KIS", "identifier").empty());
}
