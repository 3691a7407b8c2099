#include "medicus/profiles/package_registry.h"

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "profiles/json_util.h"
#include "test_paths.h"

using namespace medicus::profiles;

TEST_CASE("the core package loads from the cache and resolves canonicals lazily", "[packages]") {
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  CHECK(registry.size() > 4000);
  const ResourceInfo* patient = registry.findCanonical("http://hl7.org/fhir/StructureDefinition/Patient");
  REQUIRE(patient);
  CHECK(patient->resource_type == "StructureDefinition");
  CHECK(patient->version == "4.0.1");
  CHECK(registry.findCanonical("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1") == patient);
  CHECK(registry.findCanonical("http://hl7.org/fhir/StructureDefinition/Patient|4.0") == patient);
  CHECK(registry.findCanonical("http://hl7.org/fhir/StructureDefinition/Patient|3.0.2") == nullptr);
  CHECK(registry.findCanonical("http://hl7.org/fhir/StructureDefinition/Patient", "ValueSet") == nullptr);
  CHECK(registry.findTypeDefinition("HumanName")->url == "http://hl7.org/fhir/StructureDefinition/HumanName");
  CHECK(registry.findTypeDefinition("Patient") == patient);
  const rapidjson::Value* json = registry.json(*patient);
  REQUIRE(json);
  CHECK(memberStr(*json, "name") == "Patient");
  CHECK(registry.json(*patient) == json);  // parsed once
  CHECK(registry.findCanonical("http://hl7.org/fhir/ValueSet/administrative-gender", "ValueSet"));
  // Loading again is a no-op.
  size_t count = registry.size();
  REQUIRE(registry.load("hl7.fhir.r4.core#4.0.1"));
  CHECK(registry.size() == count);
}

TEST_CASE("the core package loads from its .tgz", "[packages]") {
  std::string tgz = test::testdata() + "/fhir-packages/hl7.fhir.r4.core-4.0.1.tgz";
  if (!std::filesystem::exists(tgz)) { WARN("skipped: " << tgz << " is absent"); return; }
  PackageRegistry registry;
  auto loaded = registry.load(tgz);
  REQUIRE(loaded);
  CHECK(registry.loadedPackages() == std::vector<std::string>{"hl7.fhir.r4.core#4.0.1"});
  CHECK(registry.size() > 4000);
  const ResourceInfo* vs = registry.findCanonical("http://hl7.org/fhir/StructureDefinition/vitalsigns");
  REQUIRE(vs);
  REQUIRE(registry.json(*vs));
  CHECK(memberStr(*registry.json(*vs), "derivation") == "constraint");
}

TEST_CASE("plain folders of definitions are scanned", "[packages]") {
  if (!test::haveTestdata("de-basisprofil-r4")) { WARN("skipped: de-basisprofil-r4 absent"); return; }
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  REQUIRE(registry.load(test::testdata() + "/de-basisprofil-r4/conformance"));
  const ResourceInfo* kvid =
      registry.findCanonical("http://fhir.de/StructureDefinition/identifier-kvid-10");
  REQUIRE(kvid);
  CHECK(kvid->derivation == "constraint");
  CHECK(kvid->package.find("de-basisprofil-r4") != std::string::npos);
}

TEST_CASE("missing packages are reported, not thrown", "[packages]") {
  PackageRegistry registry;
  registry.setCacheDir("/nonexistent-cache");
  auto loaded = registry.load("no.such.package#1.0.0");
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error().find("not in the cache") != std::string::npos);
  CHECK_FALSE(registry.load("/no/such/file.tgz"));
}

TEST_CASE("a Bundle of definitions is indexed entry by entry", "[packages]") {
  PackageRegistry registry;
  REQUIRE(registry.addResourceText(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs","version":"1.0.0","status":"active"}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs","version":"1.2.0","status":"active"}}]})",
                                   "bundle.json"));
  REQUIRE(registry.findCanonical("http://example.org/vs"));
  CHECK(registry.findCanonical("http://example.org/vs")->version == "1.2.0");
  CHECK(registry.findCanonical("http://example.org/vs|1.0.0")->version == "1.0.0");
  CHECK(memberStr(*registry.json(*registry.findCanonical("http://example.org/vs|1.0")), "version") == "1.0.0");
  CHECK_FALSE(registry.addResourceText("not json", "junk.txt"));
}

TEST_CASE("a type's own core definition wins over another specialization of the type, in any load order", "[packages]") {
  PackageRegistry registry;
  // Indexed before core: a specialization of Patient in the core space under another name.
  REQUIRE(registry.addResourceText(R"({"resourceType":"StructureDefinition","url":"http://hl7.org/fhir/StructureDefinition/PatientDraft",
    "name":"PatientDraft","status":"draft","kind":"resource","abstract":false,"type":"Patient","derivation":"specialization"})",
                                   "draft.json"));
  REQUIRE(registry.findTypeDefinition("Patient"));
  CHECK(registry.findTypeDefinition("Patient")->url == "http://hl7.org/fhir/StructureDefinition/PatientDraft");
  REQUIRE(registry.loadCore());
  REQUIRE(registry.findTypeDefinition("Patient"));
  CHECK(registry.findTypeDefinition("Patient")->url == "http://hl7.org/fhir/StructureDefinition/Patient");
  // And indexed after core, it does not take the type's place.
  REQUIRE(registry.addResourceText(R"({"resourceType":"StructureDefinition","url":"http://hl7.org/fhir/StructureDefinition/ObservationDraft",
    "name":"ObservationDraft","status":"draft","kind":"resource","abstract":false,"type":"Observation","derivation":"specialization"})",
                                   "draft2.json"));
  CHECK(registry.findTypeDefinition("Observation")->url == "http://hl7.org/fhir/StructureDefinition/Observation");
}
