#include "profiles/snapshot_generator.h"

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include <map>
#include <set>

#include "medicus/profiles/profile_store.h"
#include "profiles/json_util.h"
#include "test_paths.h"

using namespace medicus::profiles;

namespace {
// Generates the snapshot of a core profile from its differential (ignoring the published snapshot)
// and returns it next to the published one.
struct Pair {
  rapidjson::Document ours;
  const rapidjson::Value* published = nullptr;
};

std::unique_ptr<Pair> regenerate(PackageRegistry& registry, ProfileStore& store, const std::string& url) {
  auto pair = std::make_unique<Pair>();
  const ResourceInfo* info = registry.findCanonical(url);
  REQUIRE(info);
  const rapidjson::Value& sd = *registry.json(*info);
  pair->published = memberArray(*member(sd, "snapshot"), "element");
  auto base = store.snapshotElements(memberStr(sd, "baseDefinition"));
  REQUIRE(base);
  SnapshotLookup lookup = [&](std::string_view t) -> const rapidjson::Value* {
    auto e = store.snapshotElements(t);
    return e ? *e : nullptr;
  };
  pair->ours.SetArray();
  auto result = generateSnapshot(**base, *memberArray(*member(sd, "differential"), "element"), lookup, pair->ours,
                                 pair->ours.GetAllocator());
  CHECK(result.problems.empty());
  return pair;
}

std::string typesOf(const rapidjson::Value& e) {
  std::string out;
  if (const rapidjson::Value* ts = memberArray(e, "type")) {
    for (const auto& t : ts->GetArray()) out += std::string(memberStr(t, "code")) + ",";
  }
  return out;
}

// The published R4 snapshots name a renamed choice either "value[x]" or "valueQuantity"; compare by
// element id with choice renames folded.
std::map<std::string, const rapidjson::Value*> byId(const rapidjson::Value& elements) {
  std::map<std::string, const rapidjson::Value*> out;
  for (const auto& e : elements.GetArray()) out[std::string(memberStr(e, "id"))] = &e;
  return out;
}
}  // namespace

TEST_CASE("generated snapshots of core vital-sign profiles match the published ones", "[snapshot]") {
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  ProfileStore store(registry, nullptr);
  for (std::string name : {"vitalsigns", "bp", "bmi", "heartrate"}) {
    INFO(name);
    auto pair = regenerate(registry, store, "http://hl7.org/fhir/StructureDefinition/" + name);
    auto ours = byId(pair->ours);
    auto theirs = byId(*pair->published);
    size_t compared = 0;
    for (const auto& [id, e] : theirs) {
      if (id.find("[x]:") != std::string::npos) continue;  // type slices written as renamed choices
      INFO(id);
      auto it = ours.find(id);
      REQUIRE(it != ours.end());
      uint32_t min_a = 0, min_b = 0;
      memberUInt(*e, "min", min_a);
      memberUInt(*it->second, "min", min_b);
      CHECK(min_a == min_b);
      CHECK(memberStr(*e, "max") == memberStr(*it->second, "max"));
      CHECK(typesOf(*e) == typesOf(*it->second));
      const rapidjson::Value* binding_a = member(*e, "binding");
      const rapidjson::Value* binding_b = member(*it->second, "binding");
      CHECK((binding_a == nullptr) == (binding_b == nullptr));
      if (binding_a && binding_b) CHECK(memberStr(*binding_a, "valueSet") == memberStr(*binding_b, "valueSet"));
      CHECK((member(*e, "slicing") == nullptr) == (member(*it->second, "slicing") == nullptr));
      ++compared;
    }
    CHECK(compared > 40);
    for (const auto& [id, e] : ours) {
      INFO(id);
      CHECK(theirs.count(id) == 1);
    }
  }
}

TEST_CASE("differential-only German profiles get snapshots along their base chain", "[snapshot]") {
  if (!test::haveTestdata("isik-basismodul")) { WARN("skipped: isik-basismodul absent"); return; }
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  REQUIRE(registry.load(test::testdata() + "/de-basisprofil-r4/conformance"));
  REQUIRE(registry.load(test::testdata() + "/isik-basismodul/conformance"));
  ProfileStore store(registry, nullptr);
  size_t profiles = 0;
  registry.forEach("StructureDefinition", [&](const ResourceInfo& info) {
    if (info.package.find("testdata") == std::string::npos) return;
    INFO(info.url);
    auto compiled = store.profile(info.url);
    if (!compiled) {
      // Only profiles on packages that are not in the test data may fail (subscriptions backport, r5 extensions).
      WARN(compiled.error());
      return;
    }
    ++profiles;
    CHECK((*compiled)->snapshot_generated);
  });
  CHECK(profiles > 90);
  auto patient = store.profile("https://gematik.de/fhir/isik/StructureDefinition/ISiKPatient");
  REQUIRE(patient);
  const CompiledProfile& p = **patient;
  uint32_t identifier = p.findById("Patient.identifier");
  REQUIRE(identifier != kNoElement);
  CHECK(p.elements[identifier].has_slicing);
  CHECK(p.elements[identifier].slices.size() >= 3);
  uint32_t gkv = p.findById("Patient.identifier:VersichertenId");
  REQUIRE(gkv != kNoElement);
  CHECK(p.elements[gkv].slice_of == identifier);
  CHECK(p.elements[gkv].types.at(0).profiles.size() == 1);
}

TEST_CASE("differential-only MII profiles get snapshots along core, de.basisprofil and kerndatensatz.meta", "[snapshot]") {
  if (!test::haveTestdata("mii-kds")) { WARN("skipped: mii-kds absent"); return; }
  PackageRegistry registry;
  REQUIRE(registry.loadCore());
  REQUIRE(registry.load(test::testdata() + "/de-basisprofil-r4/conformance"));
  for (const char* module : {"meta", "person", "fall", "diagnose", "labor"}) {
    REQUIRE(registry.load(test::testdata() + "/mii-kds/" + module + "/conformance"));
  }
  ProfileStore store(registry, nullptr);
  size_t profiles = 0;
  registry.forEach("StructureDefinition", [&](const ResourceInfo& info) {
    if (info.package.find("mii-kds") == std::string::npos) return;
    INFO(info.url);
    auto compiled = store.profile(info.url + "|" + info.version);
    REQUIRE(compiled);
    CHECK((*compiled)->snapshot_generated);
    auto problems = store.snapshotProblems(info.url + "|" + info.version);
    std::string all;
    for (const auto& p : problems) all += p + "\n";
    INFO(all);
    CHECK(problems.empty());
    ++profiles;
  });
  CHECK(profiles == 20);  // person 6, fall 4, diagnose 2, labor 6, meta 2; the 4 logical models included
  // A logical model (a specialization of Element) keeps its own root and the elements it defines.
  auto model = store.snapshotElements("https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/LogicalModel/Laborbefund");
  REQUIRE(model);
  std::set<std::string> ids;
  for (const auto& e : (*model)->GetArray()) ids.insert(std::string(memberStr(e, "id")));
  CHECK(ids.count("Laborbefund"));
  CHECK(ids.count("Laborbefund.Laboranforderung.Probenmaterial.Probenart"));
  CHECK(ids.count("Laborbefund.extension"));  // inherited from Element under the new root
  CHECK_FALSE(ids.count("Element"));
  // The Patient profile's identifier slice is typed with de.basisprofil's KVID-10 identifier profile.
  auto patient = store.profile("https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient|2025.0.1");
  REQUIRE(patient);
  uint32_t kvid = (*patient)->findById("Patient.identifier:versichertenId");
  REQUIRE(kvid != kNoElement);
  REQUIRE(!(*patient)->elements[kvid].types.empty());
  CHECK_THAT((*patient)->elements[kvid].types[0].profiles.at(0), Catch::Contains("identifier-kvid-10"));
}
