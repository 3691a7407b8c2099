#include "converters.h"

#include <algorithm>
#include <cctype>

#include "medicus/mappers/v2_to_fhir.h"

namespace medicus::mappers {
namespace {

using hl7v2::Location;

std::string component(ConversionContext& c, const Location& at, int comp, int sub = 0) {
  Location l = at;
  l.component = comp;
  l.subcomponent = sub;
  return c.message.get(l);
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool isOid(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == '.'; }) &&
         s.find('.') != std::string_view::npos;
}

std::string_view lookup(std::string_view key, std::initializer_list<std::pair<std::string_view, std::string_view>> table) {
  for (auto [k, v] : table) {
    if (k == key) return v;
  }
  return {};
}

void addIfValue(ConversionContext& c, fhir::Node* parent, std::string_view property, std::string_view value) {
  if (!value.empty()) c.doc.addPrimitive(parent, property, value);
}

// Coding from one CWE triplet (code, text, system) starting at component `first`.
bool addCoding(ConversionContext& c, fhir::Node* concept_node, const Location& at, int first) {
  const std::string code = component(c, at, first);
  const std::string display = component(c, at, first + 1);
  if (code.empty()) return false;
  fhir::Node* coding = c.doc.addChild(concept_node, "coding");
  addIfValue(c, coding, "system", codingSystem(c.settings, component(c, at, first + 2)));
  addIfValue(c, coding, "code", code);
  addIfValue(c, coding, "display", display);
  return true;
}

bool fillIdentifier(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string value = component(c, at, 1);
  if (value.empty()) return false;
  const std::string type = component(c, at, 5);
  if (!type.empty()) {
    fhir::Node* type_node = c.doc.addChild(node, "type");
    // Table 0203 codes are short upper-case tokens (MR, PI, NNDEU); senders that put free text in CX-5
    // ("GOOD HEALTH HOSPITAL") get it as type.text instead of an invalid v2-0203 code.
    const bool table_code = type.size() <= 6 && std::all_of(type.begin(), type.end(), [](char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    });
    if (table_code) {
      fhir::Node* coding = c.doc.addChild(type_node, "coding");
      c.doc.addPrimitive(coding, "system", "http://terminology.hl7.org/CodeSystem/v2-0203");
      c.doc.addPrimitive(coding, "code", type);
    } else {
      c.doc.addPrimitive(type_node, "text", type);
    }
  }
  addIfValue(c, node, "system", identifierSystem(c.settings, component(c, at, 4, 1), component(c, at, 4, 2), type));
  c.doc.addPrimitive(node, "value", value);
  return true;
}

bool fillHumanName(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string family = component(c, at, 1, 1);
  const std::string given = component(c, at, 2);
  const std::string middle = component(c, at, 3);
  const std::string suffix = component(c, at, 4);
  const std::string prefix = component(c, at, 5);
  if (family.empty() && given.empty() && middle.empty()) return false;
  // XPN-7 name type (table 0200) -> HumanName.use
  addIfValue(c, node, "use",
             lookup(component(c, at, 7), {{"L", "official"}, {"D", "usual"}, {"M", "maiden"}, {"N", "nickname"},
                                          {"A", "anonymous"}, {"S", "anonymous"}, {"T", "temp"}, {"B", "old"}}));
  addIfValue(c, node, "family", family);
  addIfValue(c, node, "given", given);
  addIfValue(c, node, "given", middle);
  addIfValue(c, node, "prefix", prefix);
  addIfValue(c, node, "suffix", suffix);
  return true;
}

bool fillAddress(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string street = component(c, at, 1, 1);
  const std::string other = component(c, at, 2);
  const std::string city = component(c, at, 3);
  const std::string state = component(c, at, 4);
  const std::string postal = component(c, at, 5);
  const std::string country = component(c, at, 6);
  if (street.empty() && other.empty() && city.empty() && state.empty() && postal.empty() && country.empty()) {
    return false;
  }
  // XAD-7 address type (table 0190)
  const std::string type = component(c, at, 7);
  addIfValue(c, node, "use", lookup(type, {{"H", "home"}, {"B", "work"}, {"O", "work"}, {"C", "temp"}, {"BA", "old"}}));
  addIfValue(c, node, "type", lookup(type, {{"M", "postal"}, {"SH", "physical"}}));
  addIfValue(c, node, "line", street);
  addIfValue(c, node, "line", other);
  addIfValue(c, node, "city", city);
  addIfValue(c, node, "state", state);
  addIfValue(c, node, "postalCode", postal);
  addIfValue(c, node, "country", country);
  return true;
}

bool fillContactPoint(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string equipment = component(c, at, 3);  // table 0202
  const std::string email = component(c, at, 4);
  std::string value;
  std::string_view system;
  if (equipment == "Internet" || equipment == "X.400" || (!email.empty() && component(c, at, 1).empty())) {
    value = email;
    system = "email";
  } else {
    value = component(c, at, 1);
    if (value.empty()) value = component(c, at, 12);
    if (value.empty()) {
      const std::string country = component(c, at, 5);
      const std::string area = component(c, at, 6);
      const std::string local = component(c, at, 7);
      if (!local.empty()) {
        if (!country.empty()) value += "+" + country + " ";
        if (!area.empty()) value += "(" + area + ") ";
        value += local;
        const std::string extension = component(c, at, 8);
        if (!extension.empty()) value += " ext. " + extension;
      }
    }
    system = lookup(equipment, {{"PH", "phone"}, {"CP", "phone"}, {"FX", "fax"}, {"BP", "pager"}, {"MD", "other"}});
    if (system.empty() && !value.empty()) system = "phone";
  }
  if (value.empty()) return false;
  addIfValue(c, node, "system", system);
  c.doc.addPrimitive(node, "value", value);
  // XTN-2 telecommunication use code (table 0201)
  std::string_view use = lookup(component(c, at, 2), {{"PRN", "home"}, {"ORN", "home"}, {"VHN", "home"}, {"WPN", "work"}});
  if (equipment == "CP") use = "mobile";
  addIfValue(c, node, "use", use);
  return true;
}

bool fillCodeableConcept(ConversionContext& c, fhir::Node* node, const Location& at) {
  bool any = addCoding(c, node, at, 1);
  any = addCoding(c, node, at, 4) || any;
  std::string text = component(c, at, 9);  // CWE-9 original text (CWE-2 is already the display)
  if (!any && text.empty()) {
    text = component(c, at, 1);  // a bare code without system: keep it as text
  }
  addIfValue(c, node, "text", text);
  return any || !text.empty();
}

bool fillLocationReference(ConversionContext& c, fhir::Node* node, const Location& at) {
  std::string display;
  for (int comp : {4, 1, 2, 3}) {  // facility, point of care, room, bed
    std::string part = component(c, at, comp, comp == 4 ? 1 : 0);
    if (part.empty()) continue;
    if (!display.empty()) display += " / ";
    display += part;
  }
  if (display.empty()) return false;
  c.doc.addPrimitive(node, "display", display);
  return true;
}

bool fillPractitionerReference(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string id = component(c, at, 1);
  const std::string family = component(c, at, 2, 1);
  const std::string given = component(c, at, 3);
  const std::string prefix = component(c, at, 6);
  std::string display;
  for (const std::string* part : {&prefix, &given, &family}) {
    if (part->empty()) continue;
    if (!display.empty()) display += ' ';
    display += *part;
  }
  if (id.empty() && display.empty()) return false;
  if (!id.empty()) {
    fhir::Node* identifier = c.doc.addChild(node, "identifier");
    addIfValue(c, identifier, "system", identifierSystem(c.settings, component(c, at, 9, 1), component(c, at, 9, 2)));
    c.doc.addPrimitive(identifier, "value", id);
  }
  addIfValue(c, node, "display", display);
  return true;
}

}  // namespace

std::optional<Converter> converterFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, Converter> kNames[] = {
      {"CX", Converter::kCX},         {"XPN", Converter::kXPN},        {"XAD", Converter::kXAD},
      {"XTN", Converter::kXTN},       {"CWE", Converter::kCWE},        {"CE", Converter::kCWE},
      {"CNE", Converter::kCWE},       {"PL", Converter::kPL},          {"XCN", Converter::kXCN},
      {"TS", Converter::kDTM},        {"DTM", Converter::kDTM},        {"date", Converter::kDate},
      {"string", Converter::kString}, {"code", Converter::kCode},      {"coding", Converter::kCoding},
      {"boolean", Converter::kBoolean}, {"text-base64", Converter::kTextBase64}};
  for (auto [n, c] : kNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

std::string_view fhirTypeOf(Converter converter) {
  switch (converter) {
    case Converter::kCX: return "Identifier";
    case Converter::kXPN: return "HumanName";
    case Converter::kXAD: return "Address";
    case Converter::kXTN: return "ContactPoint";
    case Converter::kCWE: return "CodeableConcept";
    case Converter::kPL:
    case Converter::kXCN: return "Reference";
    case Converter::kCoding: return "Coding";
    default: return {};
  }
}

bool fillComplex(Converter converter, ConversionContext& context, fhir::Node* node, const Location& at) {
  switch (converter) {
    case Converter::kCX: return fillIdentifier(context, node, at);
    case Converter::kXPN: return fillHumanName(context, node, at);
    case Converter::kXAD: return fillAddress(context, node, at);
    case Converter::kXTN: return fillContactPoint(context, node, at);
    case Converter::kCWE: return fillCodeableConcept(context, node, at);
    case Converter::kPL: return fillLocationReference(context, node, at);
    case Converter::kXCN: return fillPractitionerReference(context, node, at);
    default: return false;
  }
}

std::string identifierSystem(const MapSettings& settings, std::string_view namespace_id, std::string_view universal_id,
                             std::string_view type_code) {
  if (!type_code.empty()) {
    const std::string with_type = std::string(namespace_id) + "^" + std::string(type_code);
    if (auto it = settings.assigning_authorities.find(with_type); it != settings.assigning_authorities.end()) {
      return it->second;
    }
  }
  if (auto it = settings.assigning_authorities.find(std::string(namespace_id)); it != settings.assigning_authorities.end()) {
    return it->second;
  }
  if (isOid(universal_id)) return "urn:oid:" + std::string(universal_id);
  if (universal_id.find("://") != std::string_view::npos || universal_id.rfind("urn:", 0) == 0) {
    return std::string(universal_id);
  }
  return {};
}

std::string codingSystem(const MapSettings& settings, std::string_view name) {
  if (name.empty()) return {};
  if (auto it = settings.code_systems.find(std::string(name)); it != settings.code_systems.end()) return it->second;
  // HL7-defined tables: HL70203 / HL7-0203 -> http://terminology.hl7.org/CodeSystem/v2-0203
  std::string_view rest = name;
  if (rest.substr(0, 3) == "HL7") {
    rest.remove_prefix(3);
    if (!rest.empty() && rest.front() == '-') rest.remove_prefix(1);
    if (rest.size() == 4 && isDigits(rest)) return "http://terminology.hl7.org/CodeSystem/v2-" + std::string(rest);
  }
  if (isOid(name)) return "urn:oid:" + std::string(name);
  return {};
}

std::optional<std::string> v2DateToFhir(std::string_view v2) {
  std::size_t digits = 0;
  while (digits < v2.size() && v2[digits] >= '0' && v2[digits] <= '9') ++digits;
  if (digits < 4) return std::nullopt;
  const std::size_t date_digits = digits >= 8 ? 8 : (digits >= 6 ? 6 : 4);
  std::string out(v2.substr(0, 4));
  if (date_digits >= 6) out += "-" + std::string(v2.substr(4, 2));
  if (date_digits >= 8) out += "-" + std::string(v2.substr(6, 2));
  if (date_digits >= 6) {
    int month = std::stoi(std::string(v2.substr(4, 2)));
    if (month < 1 || month > 12) return std::nullopt;
  }
  if (date_digits >= 8) {
    int day = std::stoi(std::string(v2.substr(6, 2)));
    if (day < 1 || day > 31) return std::nullopt;
  }
  return out;
}

std::optional<std::string> v2DateTimeToFhir(std::string_view v2, std::string_view default_offset) {
  // Split off the zone (+/-ZZZZ) first.
  std::string_view zone;
  std::size_t zone_at = v2.find_first_of("+-");
  if (zone_at != std::string_view::npos) {
    zone = v2.substr(zone_at);
    v2 = v2.substr(0, zone_at);
    if (zone.size() != 5 || !isDigits(zone.substr(1))) return std::nullopt;
  }
  std::string_view fraction;
  if (std::size_t dot = v2.find('.'); dot != std::string_view::npos) {
    fraction = v2.substr(dot + 1);
    v2 = v2.substr(0, dot);
    if (!isDigits(fraction)) return std::nullopt;
  }
  if (!isDigits(v2) || v2.size() < 4 || v2.size() % 2 != 0 || v2.size() > 14) return std::nullopt;
  auto date = v2DateToFhir(v2);
  if (!date) return std::nullopt;
  if (v2.size() <= 8) return date;  // date precision: no time, no zone needed
  std::string offset;
  if (!zone.empty()) {
    offset = std::string(zone.substr(0, 3)) + ":" + std::string(zone.substr(3, 2));
  } else if (!default_offset.empty()) {
    offset = default_offset;
  } else {
    return date;  // FHIR needs a zone with a time; without one keep the date only
  }
  std::string hh(v2.substr(8, 2));
  std::string mm = v2.size() >= 12 ? std::string(v2.substr(10, 2)) : "00";
  std::string ss = v2.size() >= 14 ? std::string(v2.substr(12, 2)) : "00";
  if (std::stoi(hh) > 23 || std::stoi(mm) > 59 || std::stoi(ss) > 60) return std::nullopt;
  std::string out = *date + "T" + hh + ":" + mm + ":" + ss;
  if (!fraction.empty() && v2.size() == 14) out += "." + std::string(fraction);
  return out + offset;
}

}  // namespace medicus::mappers
