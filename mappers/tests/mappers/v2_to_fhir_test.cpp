#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <fstream>
#include <iterator>

#include <rapidjson/document.h>

#include "medicus/fhir/format.h"
#include "medicus/hl7v2/charset.h"
#include "medicus/mappers/v2_to_fhir.h"

using namespace medicus;
using namespace medicus::mappers;

namespace {
std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::shared_ptr<const MapSet> shippedMaps() {
  static auto maps = MapSet::loadDirectory(std::string(MEDICUS_MAPPERS_DIR) + "/maps");
  return maps;
}

hl7v2::Message parseFile(const std::string& path) {
  const std::string bytes = readFile(path);
  auto decoded = hl7v2::decodeToUtf8(bytes, hl7v2::CharsetPolicy{});
  REQUIRE(decoded);
  auto message = hl7v2::parseMessage(decoded->utf8);
  REQUIRE(message);
  return std::move(*message);
}

std::string mapToJson(const hl7v2::Message& message, std::vector<MapIssue>* issues = nullptr) {
  auto result = shippedMaps()->map(message);
  REQUIRE(result);
  if (issues) *issues = result->issues;
  return fhir::writeJson(*result->bundle->root(), fhir::WriteOptions{true});
}

void requireSameJson(const std::string& actual, const std::string& expected) {
  rapidjson::Document a, e;
  a.Parse(actual.c_str());
  e.Parse(expected.c_str());
  REQUIRE_FALSE(a.HasParseError());
  REQUIRE_FALSE(e.HasParseError());
  INFO("actual:\n" << actual);
  CHECK(a == e);
}

hl7v2::Message parseText(const std::string& text) {
  auto message = hl7v2::parseMessage(text);
  REQUIRE(message);
  return std::move(*message);
}

// The MapConfigError that loading `yaml` (as "test.yaml") gives, or "no error".
std::string configError(const std::string& yaml) {
  try {
    MapSet::fromYaml(yaml, "test.yaml");
  } catch (const MapConfigError& e) {
    return std::string(e.what());
  }
  return std::string("no error");
}
}  // namespace

TEST_CASE("Mapping cases: each .hl7 gives its .expected.json", "[mappers]") {
  const std::string dir = std::string(MEDICUS_MAPPERS_DIR) + "/tests/mappers/cases/";
  for (const char* name : {"adt_a01", "adt_a40", "siu_s12", "oml_o21", "mdm_t02", "oru_r01", "orm_o01"}) {
    DYNAMIC_SECTION(name) {
      hl7v2::Message message = parseFile(dir + name + ".hl7");
      const std::string actual = mapToJson(message);
      // To review a changed mapping: MEDICUS_WRITE_ACTUAL=1 writes <case>.actual.json beside the case.
      if (std::getenv("MEDICUS_WRITE_ACTUAL")) std::ofstream(dir + name + ".actual.json") << actual;
      requireSameJson(actual, readFile(dir + name + ".expected.json"));
    }
  }
}

TEST_CASE("Mapping: the same message twice gives the same Bundle", "[mappers]") {
  const std::string path = std::string(MEDICUS_MAPPERS_DIR) + "/tests/mappers/cases/adt_a01.hl7";
  CHECK(mapToJson(parseFile(path)) == mapToJson(parseFile(path)));
}

TEST_CASE("Mapping: A04 and A08 use their status; no PV1 means no Encounter", "[mappers]") {
  const std::string a04 = mapToJson(parseText(
      "MSH|^~\\&|A|B|C|D|1||ADT^A04|7|P|2.5\rPID|1||1^^^HOSP||Doe^J\rPV1|1|O\r"));
  CHECK(a04.find("\"arrived\"") == std::string::npos);  // not in ISiK's EncounterStatusDe
  CHECK(a04.find("\"status\": \"unknown\"") != std::string::npos);  // no admit time (PV1-44) yet
  CHECK(a04.find("\"AMB\"") != std::string::npos);
  const std::string a08 = mapToJson(parseText("MSH|^~\\&|A|B|C|D|1||ADT^A08|8|P|2.5\rPID|1||1^^^HOSP||Doe^J\r"));
  CHECK(a08.find("Encounter") == std::string::npos);
  CHECK(a08.find("\"url\": \"Patient?identifier=https://hospital.example.org/fhir/sid/patient-id|1\"") != std::string::npos);
}

TEST_CASE("Mapping: unmapped codes and bad dates are reported, not guessed", "[mappers]") {
  std::vector<MapIssue> issues;
  const std::string json = mapToJson(
      parseText("MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5\rPID|1||1^^^HOSP||Doe^J||19701301|X\r"), &issues);
  REQUIRE(issues.size() == 2);
  CHECK(issues[0].fhir_path == "Patient.gender");
  CHECK(issues[0].v2_location == "PID-8");
  CHECK(issues[1].fhir_path == "Patient.birthDate");
  CHECK(json.find("gender") == std::string::npos);
  CHECK(json.find("birthDate") == std::string::npos);
}

TEST_CASE("Mapping: unsupported message type and event give 200 / 201", "[mappers]") {
  auto vxu = shippedMaps()->map(parseText("MSH|^~\\&|A|B|C|D|1||VXU^V04|1|P|2.5\r"));
  REQUIRE_FALSE(vxu);
  CHECK(vxu.error().code == hl7v2::ErrorCode::kUnsupportedMessageType);
  auto a99 = shippedMaps()->map(parseText("MSH|^~\\&|A|B|C|D|1||ADT^A99|1|P|2.5\r"));
  REQUIRE_FALSE(a99);
  CHECK(a99.error().code == hl7v2::ErrorCode::kUnsupportedEventCode);
  CHECK(a99.error().location.toString() == "MSH-9.2");
}

TEST_CASE("Mapping files: mistakes are reported with file and line", "[mappers][config]") {
  const std::string head = "messages: [ADT^A01]\nresources:\n  patient:\n    type: Patient\n    fields:\n";
  CHECK(configError(head + "      nmae: { from: PID-5, as: XPN }\n") ==
        "test.yaml:6: 'nmae' is not an element of Patient in FHIR R4 (path Patient.nmae)");
  CHECK(configError(head + "      name: { from: PID-5, as: XAD }\n").find("test.yaml:6: XAD gives a Address but Patient.name is a HumanName") == 0);
  CHECK(configError(head + "      name: { from: PID5, as: XPN }\n").find("test.yaml:6: 'PID5' is not a v2 location") == 0);
  CHECK(configError(head + "      name: { from: PID-5, as: FOO }\n").find("unknown converter 'FOO'") != std::string::npos);
  CHECK(configError(head + "      name: { from: PID-5, as: XPN, mpa: {} }\n").find("unknown key 'mpa'") != std::string::npos);
  CHECK(configError(head + "      generalPractitioner: { reference: doctor }\n").find("refers to 'doctor'") != std::string::npos);
  CHECK(configError("messages: [ADT]\nresources: {}\n").find("test.yaml:1: 'ADT' is not TYPE^TRIGGER") == 0);
  CHECK(configError("messages: [ADT^A01\n").find("test.yaml:") == 0);
  CHECK(configError(head + "      name: { from: PID-5, as: XPN }\n") == "no error");
}

TEST_CASE("Mapping: Encounter.status from the trigger, else from the discharge and admit dates", "[mappers]") {
  auto status_of = [](const std::string& trigger, const std::string& pv1_45, const std::string& pv1_44 = "202403141000") {
    std::string pv1 = "PV1|1|I";
    for (int f = 3; f <= 45; ++f) pv1 += "|" + std::string(f == 45 ? pv1_45 : f == 44 ? pv1_44 : "");
    const std::string json = mapToJson(parseText("MSH|^~\\&|A|B|C|D|1||ADT^" + trigger + "|1|P|2.5\rPID|1||1^^^HOSP\r" + pv1 + "\r"));
    const std::size_t at = json.find("\"status\": \"");
    return at == std::string::npos ? std::string() : json.substr(at + 11, json.find('"', at + 11) - at - 11);
  };
  CHECK(status_of("A01", "") == "in-progress");
  CHECK(status_of("A03", "202403151230") == "finished");
  CHECK(status_of("A05", "") == "planned");
  CHECK(status_of("A11", "") == "cancelled");
  CHECK(status_of("A08", "") == "in-progress");
  CHECK(status_of("A08", "202403151230") == "finished");  // an update after discharge
  CHECK(status_of("A04", "") == "in-progress");  // registered and there: EncounterStatusDe has no arrived
  CHECK(status_of("A01", "", "") == "unknown");  // ISiK-enc-5: in-progress needs the admit time
}

TEST_CASE("Mapping: A12 (cancel transfer) puts the patient back at PV1-3 and keeps the stay in progress", "[mappers]") {
  // HL7 v2.5 3.3.12: in an A12, PV1-3 is the location before the cancelled transfer, PV1-6 the one
  // the transfer had moved the patient to.
  std::map<int, std::string> fields{{1, "1"}, {2, "I"}, {3, "STA^Z1^B1^KH"}, {6, "STB^Z9^B9^KH"},
                                    {19, "V-4711^^^KH^VN"}, {44, "202403141000"}};
  std::string pv1 = "PV1";
  for (int f = 1; f <= 44; ++f) pv1 += "|" + (fields.count(f) ? fields[f] : std::string());
  const std::string message = "MSH|^~\\&|A|B|C|D|20240315||ADT^A12^ADT_A09|12|P|2.5\rPID|1||1^^^KH^MR\r" + pv1 + "\r";
  auto result = shippedMaps()->map(parseText(message));
  REQUIRE(result);
  rapidjson::Document bundle;
  bundle.Parse(fhir::writeJson(*result->bundle->root()).c_str());
  REQUIRE_FALSE(bundle.HasParseError());
  const rapidjson::Value* encounter = nullptr;
  std::map<std::string, const rapidjson::Value*> by_url;
  for (const auto& entry : bundle["entry"].GetArray()) {
    by_url[entry["fullUrl"].GetString()] = &entry["resource"];
    if (std::string(entry["resource"]["resourceType"].GetString()) == "Encounter") encounter = &entry["resource"];
  }
  REQUIRE(encounter);
  CHECK(std::string((*encounter)["status"].GetString()) == "in-progress");
  CHECK(std::string((*encounter)["period"]["start"].GetString()).rfind("2024-03-14T10:00", 0) == 0);
  REQUIRE(encounter->HasMember("location"));
  REQUIRE((*encounter)["location"].Size() == 1);
  const auto& location = *by_url.at((*encounter)["location"][0]["location"]["reference"].GetString());
  CHECK(std::string(location["name"].GetString()).find("STA") != std::string::npos);
  CHECK(std::string(location["name"].GetString()).find("STB") == std::string::npos);

  // IHE-D: the ZBE of a cancelling trigger says CANCEL; it withdraws the transfer (A12) or the
  // discharge (A13), not the stay.
  for (const char* trigger : {"A12", "A13"}) {
    std::string cancel = message;
    cancel.replace(cancel.find("ADT^A12"), 7, std::string("ADT^") + trigger);
    cancel += "ZBE|MOVE2^KIS|202403221000||CANCEL\r";
    const std::string json = mapToJson(parseText(cancel));
    INFO(trigger << ": " << json);
    CHECK(json.find("\"status\": \"in-progress\"") != std::string::npos);
    CHECK(json.find("\"cancelled\"") == std::string::npos);
  }
  // The same ZBE on an A01 withdraws the admission movement itself.
  std::string admit = message;
  admit.replace(admit.find("ADT^A12"), 7, "ADT^A01");
  CHECK(mapToJson(parseText(admit + "ZBE|MOVE1^KIS|202403141000||CANCEL\r")).find("\"status\": \"cancelled\"") !=
        std::string::npos);
}

TEST_CASE("Mapping: an unmapped class falls back to the default, with a warning", "[mappers]") {
  std::vector<MapIssue> issues;
  const std::string json =
      mapToJson(parseText("MSH|^~\\&|A|B|C|D|1||ADT^A28|1|P|2.5\rPID|1||1^^^HOSP\rPV1||N\r"), &issues);
  CHECK(json.find("\"code\": \"AMB\"") != std::string::npos);  // Encounter.class is required in R4
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].fhir_path == "Encounter.class");
  CHECK(issues[0].message.find("default 'AMB'") != std::string::npos);
}

TEST_CASE("Mapping: an empty class takes the default silently", "[mappers]") {
  std::vector<MapIssue> issues;
  const std::string json = mapToJson(parseText("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1||1^^^HOSP\rPV1|1\r"), &issues);
  CHECK(json.find("\"code\": \"AMB\"") != std::string::npos);
  CHECK(issues.empty());
}

TEST_CASE("Mapping: for_each gives one resource per segment, scoped to its group", "[mappers][for_each]") {
  auto maps = MapSet::fromYaml(R"(messages: [ORU^R01]
resources:
  report:
    type: DiagnosticReport
    for_each: OBR
    until: [ORC]
    fields:
      status: { value: final }
      code: { from: OBR-4, as: CWE }
      result: { reference: obs }
  obs:
    type: Observation
    for_each: OBX
    until: [OBR, ORC]
    fields:
      status: { value: final }
      code: { from: OBR-4, as: CWE }
      valueString: { from: OBX-5, as: string, when: { OBX-2: [ST] } }
      valueQuantity: { from: OBX-5, as: NM, when: { OBX-2: NM } }
)", "scoped.yaml");
  auto message = parseText(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBR|1|||G1\rOBX|1|ST|||text\rOBX|2|NM|||5\r"
      "OBR|2|||G2\rOBX|1|ST|||more\r");
  auto result = maps->map(message);
  REQUIRE(result);
  rapidjson::Document bundle;
  bundle.Parse(fhir::writeJson(*result->bundle->root()).c_str());
  const auto& entries = bundle["entry"];
  REQUIRE(entries.Size() == 5);
  CHECK(std::string(entries[0]["resource"]["code"]["coding"][0]["code"].GetString()) == "G1");
  CHECK(entries[0]["resource"]["result"].Size() == 2);
  CHECK(entries[1]["resource"]["result"].Size() == 1);
  CHECK(std::string(entries[1]["resource"]["result"][0]["reference"].GetString()) == entries[4]["fullUrl"].GetString());
  // The OBX's OBR-4 is its own group's OBR (the nearest before it), value[x] by OBX-2.
  CHECK(std::string(entries[2]["resource"]["code"]["coding"][0]["code"].GetString()) == "G1");
  CHECK(std::string(entries[2]["resource"]["valueString"].GetString()) == "text");
  CHECK(entries[3]["resource"]["valueQuantity"]["value"].GetInt() == 5);
  CHECK_FALSE(entries[3]["resource"].HasMember("valueString"));
  CHECK(std::string(entries[4]["resource"]["code"]["coding"][0]["code"].GetString()) == "G2");
  // Same message twice: same fullUrls.
  auto again = maps->map(message);
  CHECK(fhir::writeJson(*again->bundle->root()) == fhir::writeJson(*result->bundle->root()));
}

TEST_CASE("Mapping files: for_each, until, when and units are checked", "[mappers][config]") {
  const std::string head = "messages: [ORU^R01]\nresources:\n  obs:\n    type: Observation\n";
  CHECK(configError(head + "    until: [OBR]\n    fields:\n      status: { value: final }\n").find("'until' needs 'for_each'") != std::string::npos);
  CHECK(configError(head + "    for_each: OBXX\n    fields:\n      status: { value: final }\n").find("for_each names a segment id") != std::string::npos);
  CHECK(configError(head + "    fields:\n      valueString: { from: OBX-5, as: string, units: OBX-6 }\n").find("'units' applies only") != std::string::npos);
  CHECK(configError(head + "    fields:\n      valueString: { from: OBX-5, as: string, when: OBX-2 }\n").find("'when' must map") != std::string::npos);
  CHECK(configError(head + "    fields:\n      valueString: { from: OBX-5, as: string, when: { OBX2: ST } }\n").find("'OBX2' is not a v2 location") != std::string::npos);
  CHECK(configError(head + "    fields:\n      valueQuantity: { from: OBX-5, as: SN-range }\n").find("SN-range gives a Range but Observation.valueQuantity is a Quantity") != std::string::npos);
  CHECK(configError(head + "    for_each: OBX\n    fields:\n      valueQuantity: { from: OBX-5, as: NM, units: OBX-6, when: { OBX-2: NM } }\n") == "no error");
}

TEST_CASE("Mapping: XCN and PL with bundle_entry become Practitioner and Location entries, one per identifier", "[mappers][bundle_entry]") {
  auto maps = MapSet::fromYaml(R"(messages: [ORU^R01]
resources:
  obs:
    type: Observation
    for_each: OBX
    fields:
      status: { value: final }
      code: { from: OBX-3, as: CWE }
      performer: { from: OBX-16, as: XCN, bundle_entry: true }
  encounter:
    type: Encounter
    when_segment: PV1
    fields:
      status: { value: in-progress }
      class: { from: PV1-2, as: coding, system: http://terminology.hl7.org/CodeSystem/v3-ActCode, default: AMB }
      location.location: { from: PV1-3, as: PL, bundle_entry: true }
)", "entries.yaml");
  auto message = parseText(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rPV1|1|I|ST1^Z2^B3^KH^^^^^^LOC-7&&1.2.276.0.9\r"
      "OBX|1|ST|a||x||||||F|||||0900^Labor^Lisa\rOBX|2|ST|b||y||||||F|||||0900^Labor^Lisa\r"
      "OBX|3|ST|c||z||||||F|||||^Ohne^Nummer\r");
  auto result = maps->map(message);
  REQUIRE(result);
  rapidjson::Document bundle;
  bundle.Parse(fhir::writeJson(*result->bundle->root()).c_str());
  std::map<std::string, const rapidjson::Value*> by_url;
  std::vector<std::string> types;
  for (const auto& entry : bundle["entry"].GetArray()) {
    by_url[entry["fullUrl"].GetString()] = &entry;
    types.push_back(entry["resource"]["resourceType"].GetString());
  }
  CHECK(std::count(types.begin(), types.end(), "Practitioner") == 2);  // 0900 once, the one without id
  CHECK(std::count(types.begin(), types.end(), "Location") == 1);
  std::vector<const rapidjson::Value*> observations;
  const rapidjson::Value* encounter = nullptr;
  for (const auto& entry : bundle["entry"].GetArray()) {
    const std::string type = entry["resource"]["resourceType"].GetString();
    if (type == "Observation") observations.push_back(&entry["resource"]);
    if (type == "Encounter") encounter = &entry;
  }
  REQUIRE(observations.size() == 3);
  for (const auto* o : observations) REQUIRE(o->HasMember("performer"));
  const std::string p1 = (*observations[0])["performer"][0]["reference"].GetString();
  CHECK(p1 == (*observations[1])["performer"][0]["reference"].GetString());
  const auto& practitioner = *by_url.at(p1);
  CHECK(std::string(practitioner["request"]["ifNoneExist"].GetString()) == "identifier=0900");
  CHECK(std::string(practitioner["resource"]["name"][0]["family"].GetString()) == "Labor");
  const auto& nameless = *by_url.at((*observations[2])["performer"][0]["reference"].GetString());
  CHECK_FALSE(nameless["request"].HasMember("ifNoneExist"));
  CHECK(std::string(nameless["resource"]["name"][0]["family"].GetString()) == "Ohne");
  REQUIRE(encounter);
  const auto& location = *by_url.at((*encounter)["resource"]["location"][0]["location"]["reference"].GetString());
  CHECK(std::string(location["resource"]["identifier"][0]["system"].GetString()) == "urn:oid:1.2.276.0.9");
  CHECK(std::string(location["resource"]["name"].GetString()) == "KH / ST1 / Z2 / B3");
  CHECK(std::string(location["request"]["ifNoneExist"].GetString()) == "identifier=urn:oid:1.2.276.0.9|LOC-7");
}

TEST_CASE("Mapping: an element R4 requires that the message leaves empty is reported with its v2 source", "[mappers]") {
  std::vector<MapIssue> issues;
  mapToJson(parseText("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rPID|1||1^^^HOSP^MR||Doe^J||19700101|M\rOBR|1|||\r"
                      "OBX|1|NM|718-7^Hb^LN||7|g/dl||||F\r"),
            &issues);
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].fhir_path == "DiagnosticReport.code");
  CHECK(issues[0].v2_location == "OBR-4");
  CHECK(issues[0].message ==
        "DiagnosticReport.code is required by FHIR R4 but the message has no value in OBR-4 (OBR[1]); the resource will not validate");
}
