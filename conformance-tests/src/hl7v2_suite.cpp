// medicus-conformance hl7v2: the shipped v2 -> FHIR maps over a folder laid out like
// ../shared/testdata/hl7v2-ms-fhir-converter (cases.json pairs each sample message with Microsoft
// FHIR-Converter's expected Bundle). For every message whose MSH-9 a map handles: the Bundle reads back
// through our fhir-model without errors, is free of errors against R4 core (when medicus::profiles is
// linked), and its key content agrees with the expected Bundle: the resource types we emit appear there,
// Patient/Encounter counts, Patient identifiers, family name, birth date, gender, Encounter class and start
// instant; per OBX the Observation's code, status, value[x] kind and quantity, per OBR the DiagnosticReport's
// code and result count. Generated ids and the extra resources Microsoft's templates emit are not compared (SOURCE.md).
// With --package PKG (repeatable; relative folders are taken from $MEDICUS_TESTDATA, a missing one skips
// the run) the resources are also validated against the profiles they declare in meta.profile (ISiK
// for the ADT Patient and Encounter), and a declared profile that no package defines is a failure.
// Exit 0 when every mapped message passes or its failure is listed in --known (default
// conformance-tests/hl7v2_known_issues.txt, "<input path> <reason>"); 1 otherwise; 77 without data.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include <rapidjson/document.h>

#include "known_issues.h"
#include "medicus/fhir/format.h"
#include "medicus/fhir/issue.h"
#include "suite_report.h"

#if __has_include("medicus/mappers/v2_to_fhir.h")
#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"
#include "medicus/mappers/maps_location.h"
#include "medicus/mappers/v2_to_fhir.h"
#include "suite_maps.h"
#define MEDICUS_HL7V2_SUITE 1
#endif
#if __has_include("medicus/profiles/validator.h")
#include "medicus/profiles/validator.h"
#include "suite_packages.h"
#define MEDICUS_HL7V2_SUITE_VALIDATES 1
#endif

namespace medicus::conformance {

#ifndef MEDICUS_HL7V2_SUITE
int runHl7v2(const CommonOptions&, int, char**) {
  std::fputs("hl7v2: this build has no HL7 v2 mapper (module mappers); skipped\n", stderr);
  return 77;
}
#else
namespace {
namespace fs = std::filesystem;
using Json = rapidjson::Value;

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<const Json*> resourcesOf(const rapidjson::Document& bundle, std::string_view type) {
  std::vector<const Json*> out;
  if (!bundle.IsObject() || !bundle.HasMember("entry") || !bundle["entry"].IsArray()) return out;
  for (const auto& entry : bundle["entry"].GetArray()) {
    if (!entry.IsObject() || !entry.HasMember("resource")) continue;
    const auto& r = entry["resource"];
    if (r.IsObject() && r.HasMember("resourceType") && r["resourceType"].IsString() &&
        type == r["resourceType"].GetString()) {
      out.push_back(&r);
    }
  }
  return out;
}

std::set<std::string> resourceTypes(const rapidjson::Document& bundle) {
  std::set<std::string> out;
  if (!bundle.IsObject() || !bundle.HasMember("entry") || !bundle["entry"].IsArray()) return out;
  for (const auto& entry : bundle["entry"].GetArray()) {
    if (entry.IsObject() && entry.HasMember("resource") && entry["resource"].HasMember("resourceType")) {
      out.insert(entry["resource"]["resourceType"].GetString());
    }
  }
  return out;
}

const Json* child(const Json* object, const char* member) {
  if (!object || !object->IsObject() || !object->HasMember(member)) return nullptr;
  return &(*object)[member];
}
const Json* first(const Json* array) { return array && array->IsArray() && !array->Empty() ? &(*array)[0] : nullptr; }
std::string text(const Json* object, const char* member) {
  const Json* v = child(object, member);
  return v && v->IsString() ? v->GetString() : "";
}

// dateTime with seconds and zone -> comparable seconds (Microsoft's templates write the machine's zone).
long long instant(const std::string& t) {
  if (t.size() < 20 || t[10] != 'T') return -1;
  auto n = [&](std::size_t at, std::size_t len) { return std::atoll(t.substr(at, len).c_str()); };
  long long seconds = (n(0, 4) * 372 + n(5, 2) * 31 + n(8, 2)) * 86400 + n(11, 2) * 3600 + n(14, 2) * 60 + n(17, 2);
  const std::size_t zone = t.find_first_of("+-Z", 19);
  if (zone == std::string::npos) return -1;
  if (t[zone] != 'Z') seconds -= (t[zone] == '-' ? -1 : 1) * (n(zone + 1, 2) * 3600 + n(zone + 4, 2) * 60);
  return seconds;
}

// Empty when the key content agrees; otherwise what differs.
std::string compareKeyContent(const rapidjson::Document& ours, const rapidjson::Document& theirs) {
  const auto their_types = resourceTypes(theirs);
  for (const auto& type : resourceTypes(ours)) {
    if (!their_types.count(type)) return "we emit " + type + ", the expected Bundle has none";
  }
  for (const char* type : {"Patient", "Encounter", "ServiceRequest"}) {
    const auto a = resourcesOf(ours, type).size(), b = resourcesOf(theirs, type).size();
    if (std::string_view(type) == "ServiceRequest" && a == 0) continue;  // only maps that emit orders
    if (a != b) return std::string(type) + " count " + std::to_string(a) + ", expected " + std::to_string(b);
  }
  auto our_patients = resourcesOf(ours, "Patient");
  auto their_patients = resourcesOf(theirs, "Patient");
  if (!our_patients.empty()) {
    const Json* p = our_patients[0];
    const Json* q = their_patients[0];
    std::set<std::string> their_ids;
    if (const Json* ids = child(q, "identifier"); ids && ids->IsArray()) {
      for (const auto& id : ids->GetArray()) their_ids.insert(text(&id, "value"));
    }
    if (const Json* ids = child(p, "identifier"); ids && ids->IsArray()) {
      for (const auto& id : ids->GetArray()) {
        if (!their_ids.count(text(&id, "value"))) return "Patient.identifier " + text(&id, "value") + " not expected";
      }
    }
    const std::string f1 = text(first(child(p, "name")), "family"), f2 = text(first(child(q, "name")), "family");
    if (f1 != f2) return "Patient.name.family '" + f1 + "', expected '" + f2 + "'";
    for (const char* field : {"birthDate", "gender"}) {
      if (text(p, field) != text(q, field)) {
        return std::string("Patient.") + field + " '" + text(p, field) + "', expected '" + text(q, field) + "'";
      }
    }
  }
  // Results (ORU): one Observation per OBX in message order with the same code, status, kind of value[x]
  // and quantity (value and unit text); one DiagnosticReport per OBR with the same code and result count.
  if (const auto our_observations = resourcesOf(ours, "Observation"); !our_observations.empty()) {
    const auto their_observations = resourcesOf(theirs, "Observation");
    if (our_observations.size() != their_observations.size()) {
      return "Observation count " + std::to_string(our_observations.size()) + ", expected " + std::to_string(their_observations.size());
    }
    for (std::size_t i = 0; i < our_observations.size(); ++i) {
      const Json* o = our_observations[i];
      const Json* t = their_observations[i];
      const std::string where = "Observation[" + std::to_string(i) + "]";
      const std::string c1 = text(first(child(child(o, "code"), "coding")), "code");
      const std::string c2 = text(first(child(child(t, "code"), "coding")), "code");
      if (c1 != c2) return where + ".code '" + c1 + "', expected '" + c2 + "'";
      if (text(o, "status") != text(t, "status")) return where + ".status '" + text(o, "status") + "', expected '" + text(t, "status") + "'";
      auto value_kind = [](const Json* r) {
        for (auto m = r->MemberBegin(); m != r->MemberEnd(); ++m) {
          const std::string name = m->name.GetString();
          if (name.rfind("value", 0) == 0) return name;
        }
        return std::string("no value");
      };
      if (value_kind(o) != value_kind(t)) return where + " has " + value_kind(o) + ", expected " + value_kind(t);
      const Json* q1 = child(o, "valueQuantity");
      const Json* q2 = child(t, "valueQuantity");
      if (q1 && q2) {
        const Json* v1 = child(q1, "value");
        const Json* v2 = child(q2, "value");
        if (!v1 || !v2 || !v1->IsNumber() || !v2->IsNumber() || v1->GetDouble() != v2->GetDouble()) {
          return where + ".valueQuantity.value differs";
        }
        if (text(q1, "unit") != text(q2, "unit") && text(q1, "code") != text(q2, "code")) {
          return where + ".valueQuantity.unit '" + text(q1, "unit") + "', expected '" + text(q2, "unit") + "'";
        }
      }
    }
  }
  if (const auto our_reports = resourcesOf(ours, "DiagnosticReport"); !our_reports.empty()) {
    const auto their_reports = resourcesOf(theirs, "DiagnosticReport");
    if (our_reports.size() != their_reports.size()) {
      return "DiagnosticReport count " + std::to_string(our_reports.size()) + ", expected " + std::to_string(their_reports.size());
    }
    for (std::size_t i = 0; i < our_reports.size(); ++i) {
      const std::string where = "DiagnosticReport[" + std::to_string(i) + "]";
      const std::string c1 = text(first(child(child(our_reports[i], "code"), "coding")), "code");
      const std::string c2 = text(first(child(child(their_reports[i], "code"), "coding")), "code");
      if (c1 != c2) return where + ".code '" + c1 + "', expected '" + c2 + "'";
      const Json* r1 = child(our_reports[i], "result");
      const Json* r2 = child(their_reports[i], "result");
      const auto n1 = r1 && r1->IsArray() ? r1->Size() : 0, n2 = r2 && r2->IsArray() ? r2->Size() : 0;
      if (n1 != n2) return where + " has " + std::to_string(n1) + " results, expected " + std::to_string(n2);
    }
  }
  auto our_encounters = resourcesOf(ours, "Encounter");
  if (!our_encounters.empty()) {
    const Json* e = our_encounters[0];
    const Json* f = resourcesOf(theirs, "Encounter")[0];
    const std::string c1 = text(child(e, "class"), "code"), c2 = text(child(f, "class"), "code");
    if (c1 != c2) return "Encounter.class '" + c1 + "', expected '" + c2 + "'";
    const std::string s1 = text(child(e, "period"), "start"), s2 = text(child(f, "period"), "start");
    if (s1.empty() != s2.empty() || (!s1.empty() && instant(s1) != instant(s2))) {
      return "Encounter.period.start '" + s1 + "', expected '" + s2 + "'";
    }
  }
  return {};
}
}  // namespace

int runHl7v2(const CommonOptions& options, int argc, char** argv) {
  std::string map_dir, known_file = std::string(MEDICUS_CONFORMANCE_DIR) + "/hl7v2_known_issues.txt";
  std::vector<std::string> packages;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--map" && i + 1 < argc) map_dir = argv[++i];
    else if (a == "--known" && i + 1 < argc) known_file = argv[++i];
    else if (a == "--package" && i + 1 < argc) packages.push_back(argv[++i]);
    else {
      std::fprintf(stderr, "hl7v2: unknown option %s (use --map DIR, --known FILE, --package PKG)\n", argv[i]);
      return 2;
    }
  }
  for (auto& p : packages) {
    std::error_code ec;
    if (fs::exists(p, ec)) continue;
    const char* data = std::getenv("MEDICUS_TESTDATA");
    const fs::path candidate = fs::path(data && *data ? data : "../shared/testdata") / p;
    if (!fs::exists(candidate, ec)) {
      std::fprintf(stderr, "SKIPPED: hl7v2: package %s is absent (set MEDICUS_TESTDATA to the shared testdata folder)\n", p.c_str());
      return 77;
    }
    p = candidate.string();
  }
  const fs::path root = options.data_dir;
  if (!fs::is_regular_file(root / "cases.json")) {
    std::fprintf(stderr, "hl7v2: %s has no cases.json; skipped\n", root.string().c_str());
    return 77;
  }
  const std::shared_ptr<const mappers::MapSet> maps = loadSuiteMaps("hl7v2", map_dir);
  if (!maps) return 2;
#ifdef MEDICUS_HL7V2_SUITE_VALIDATES
  profiles::PackageRegistry registry;
  if (!loadSuitePackages("hl7v2", registry, packages)) return 2;
  profiles::ProfileStore store(registry);
  profiles::Terminology terminology(registry);
  profiles::Validator validator(store, terminology);
#else
  if (!packages.empty()) {
    std::fputs("hl7v2: --package needs the validator (module profiles), which this build lacks\n", stderr);
    return 2;
  }
#endif
  const KnownIssues known = KnownIssues::load(known_file);
  rapidjson::Document cases;
  cases.Parse(readAll(root / "cases.json").c_str());
  if (!cases.IsObject() || !cases.HasMember("cases") || !cases["cases"].IsArray()) {
    std::fprintf(stderr, "hl7v2: %s/cases.json is not {\"cases\": [...]}\n", root.string().c_str());
    return 2;
  }
  SuiteReport report("hl7v2");
  size_t known_failures = 0;
  for (const auto& item : cases["cases"].GetArray()) {
    if (!item.IsObject() || !item.HasMember("input") || !item["input"].IsString()) continue;
    const std::string input = item["input"].GetString();
    const std::string expected = item.HasMember("expected") && item["expected"].IsString() ? item["expected"].GetString() : "";
    const hl7v2::CharsetPolicy policy{};  // MSH-18, UTF-8 when empty: the samples come from a UTF-8 repository
    auto decoded = hl7v2::decodeToUtf8(readAll(root / input), policy);
    if (!decoded) {
      report.fail("unreadable", input, decoded.error().describe());
      continue;
    }
    auto message = hl7v2::parseMessage(decoded->utf8);
    if (!message) {
      report.fail("unreadable", input, message.error().describe());
      continue;
    }
    const std::string type = message->messageType(), event = message->triggerEvent();
    const std::string group = type.empty() ? "?" : type;
    if (!maps->handles(type, event)) {
      report.skip(group, input, "no shipped map for " + type + "^" + event);
      continue;
    }
    auto fail = [&](std::string why) {
      if (auto reason = known.reasonFor(input)) {
        report.skip(group, input, "known issue: " + *reason + " (" + why + ")");
        ++known_failures;
      } else {
        report.fail(group, input, std::move(why));
      }
    };
    auto mapped = maps->map(*message);
    if (!mapped) {
      fail(mapped.error().describe());
      continue;
    }
    const std::string json = fhir::writeJson(*mapped->bundle->root());
    fhir::ParseResult reread = fhir::parseJson(json);
    if (!reread.ok()) {
      std::string why = "Bundle does not read back:";
      for (const auto& i : reread.issues) why += " " + fhir::formatIssue(i) + ";";
      fail(why);
      continue;
    }
#ifdef MEDICUS_HL7V2_SUITE_VALIDATES
    std::string invalid;
    for (const auto& i : validator.validate(*reread.document)) {
      if (i.severity == fhir::Severity::Error || i.severity == fhir::Severity::Fatal) invalid += " " + fhir::formatIssue(i) + ";";
    }
    if (!invalid.empty()) {
      fail(std::string(packages.empty() ? "R4 core:" : "R4 core and declared profiles:") + invalid);
      continue;
    }
    // A declared profile must be known when packages are given, or the check above proved nothing.
    if (!packages.empty()) {
      std::string unknown;
      rapidjson::Document doc;
      doc.Parse(json.c_str());
      for (const auto& entry : doc["entry"].GetArray()) {
        const Json* profile_list = child(child(&entry["resource"], "meta"), "profile");
        if (!profile_list || !profile_list->IsArray()) continue;
        for (const auto& url : profile_list->GetArray()) {
          if (url.IsString() && !registry.findCanonical(url.GetString(), "StructureDefinition")) unknown += std::string(" ") + url.GetString();
        }
      }
      if (!unknown.empty()) {
        fail("declared profiles not in the given packages:" + unknown);
        continue;
      }
    }
#endif
    if (expected.empty()) {
      report.pass(group, input);  // no upstream expectation: reading back and validating is all we can check
      continue;
    }
    rapidjson::Document ours, theirs;
    ours.Parse(json.c_str());
    theirs.Parse(readAll(root / expected).c_str());
    if (theirs.HasParseError()) {
      fail("expected output " + expected + " is not JSON");
      continue;
    }
    if (std::string diff = compareKeyContent(ours, theirs); !diff.empty()) {
      fail(diff);
      continue;
    }
    report.pass(group, input);
  }
  report.print(stdout);
  if (known_failures > 0) std::printf("(%zu failures listed in %s)\n", known_failures, known_file.c_str());
  if (!options.report_file.empty()) report.writeJson(options.report_file);
  return report.failed() == 0 ? 0 : 1;
}
#endif

}  // namespace medicus::conformance
