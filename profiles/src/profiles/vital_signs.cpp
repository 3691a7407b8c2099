#include "profiles/vital_signs.h"

#include <algorithm>
#include <initializer_list>

namespace medicus::profiles {
namespace {

struct Entry {
  std::string_view profile;
  std::string_view name;
  std::initializer_list<std::string_view> loinc;
  std::initializer_list<std::string_view> snomed;
};

constexpr std::string_view kBase = "http://hl7.org/fhir/StructureDefinition/";

// The profile's own code first, then LOINC codes of the same measurement (other methods, sites,
// devices) and SNOMED CT concepts for it. Ordered as the profiles are tried: first match wins.
const Entry kEntries[] = {
    {"vitalspanel", "Vital Signs Panel", {"85353-1"}, {"46680005"}},
    {"resprate", "Respiratory Rate", {"9279-1", "76170-0", "76172-6", "76171-8", "19840-8", "33438-3", "76270-8", "11291-2"},
     {"86290005", "271625008"}},
    {"heartrate", "Heart rate",
     {"8867-4", "60978-4", "73795-7", "73799-9", "76476-1", "76477-9", "8889-8", "8890-6", "8891-4", "8892-2",
      "8893-0", "40443-4", "55425-3", "68999-2", "11328-2", "69000-8", "8886-4"},
     {"364075005", "271306003", "249043002", "444981005", "399017001", "251670001", "429525003", "429614003"}},
    {"oxygensat", "Oxygen saturation",
     {"2708-6", "19224-5", "20564-1", "2709-4", "2710-2", "2711-0", "2713-6", "51733-4", "59408-5", "59417-6",
      "89276-0", "97549-0"},
     {"103228002", "442349007", "442476006", "442440005", "431314004", "442734002", "713194001"}},
    {"bodytemp", "Body temperature",
     {"8310-5", "60834-9", "60835-6", "60836-4", "60838-0", "60955-2", "61009-7", "75539-7", "75987-8", "76010-8",
      "76011-6", "76278-1", "8309-7", "8328-7", "8329-5", "8330-3", "8331-1", "8332-9", "8333-7", "8334-5",
      "91371-5", "98657-0", "98663-8"},
     {"386725007", "276885007", "300076005", "1222808002", "364246006", "307047009", "708499008", "431598003",
      "698831002", "698832009", "415882003", "415974002", "415929009", "415945006"}},
    {"bodyheight", "Body height", {"8302-2", "3137-7", "3138-5", "8306-3", "8308-9"},
     {"50373000", "1153637007", "1162419008", "1162418000", "1230278008", "1162392001", "1162417005"}},
    {"headcircum", "Head circumference", {"9843-4", "8287-5"}, {"363812007", "169876006", "1269262007"}},
    {"bodyweight", "Body weight", {"29463-7", "3141-9", "3142-7", "75292-3", "79348-9", "8350-1", "8351-9"},
     {"27113001", "363811000", "735395000", "425024002", "424927000", "784399000", "1162416001", "1162415002"}},
    {"bmi", "Body mass index", {"39156-5", "59574-4", "89270-3"}, {"60621009"}},
    {"bp", "Blood pressure systolic and diastolic", {"85354-9", "35094-2", "8459-0", "76534-7", "55284-4"},
     {"75367002", "251076008", "163033001", "163035008", "386534000", "386536003", "271649006", "271650006",
      "407556006", "407554009", "716579001", "399304008"}},
};

// Profile URLs live in static storage: the returned views stay valid.
struct Urls {
  std::string urls[std::size(kEntries)];
  Urls() {
    for (size_t i = 0; i < std::size(kEntries); ++i) urls[i] = std::string(kBase) + std::string(kEntries[i].profile);
  }
};

std::string_view valueOf(const fhir::Node& node, std::string_view name) {
  const fhir::Node* c = node.child(name);
  return c && c->hasValue() ? c->value() : std::string_view();
}

}  // namespace

bool vitalSignOf(const fhir::Node& observation, VitalSign& out) {
  const fhir::Node* code = observation.child("code");
  if (!code) return false;
  static const Urls urls;
  // The codes of each system read once (not once per entry): every Observation comes here.
  constexpr size_t kMaxCodings = 16;
  std::string_view codes_of[2][kMaxCodings];
  size_t counts[2] = {0, 0};
  bool overflow = false;
  for (const fhir::Node* coding : code->children("coding")) {
    std::string_view system = valueOf(*coding, "system");
    int pass = system == "http://loinc.org" ? 0 : system == "http://snomed.info/sct" ? 1 : -1;
    if (pass < 0) continue;
    if (counts[pass] == kMaxCodings) { overflow = true; continue; }
    codes_of[pass][counts[pass]++] = valueOf(*coding, "code");
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < std::size(kEntries); ++i) {
      const auto& codes = pass == 0 ? kEntries[i].loinc : kEntries[i].snomed;
      for (size_t k = 0; k < counts[pass]; ++k) {
        std::string_view c = codes_of[pass][k];
        if (std::find(codes.begin(), codes.end(), c) == codes.end()) continue;
        out = {urls.urls[i], kEntries[i].name, pass == 0 ? "LOINC" : "SNOMED CT", c};
        return true;
      }
    }
  }
  if (!overflow) return false;
  // More codings of one system than kept above: the plain walk (the same order, the same answer).
  for (int pass = 0; pass < 2; ++pass) {
    std::string_view system = pass == 0 ? "http://loinc.org" : "http://snomed.info/sct";
    for (size_t i = 0; i < std::size(kEntries); ++i) {
      const auto& codes = pass == 0 ? kEntries[i].loinc : kEntries[i].snomed;
      for (const fhir::Node* coding : code->children("coding")) {
        if (valueOf(*coding, "system") != system) continue;
        std::string_view c = valueOf(*coding, "code");
        if (std::find(codes.begin(), codes.end(), c) == codes.end()) continue;
        out = {urls.urls[i], kEntries[i].name, pass == 0 ? "LOINC" : "SNOMED CT", c};
        return true;
      }
    }
  }
  return false;
}

}  // namespace medicus::profiles
