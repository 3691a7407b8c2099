#include "converters.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

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
    const auto mapped = c.settings.identifier_types.find(type);
    const std::size_t bar = mapped == c.settings.identifier_types.end() ? std::string::npos : mapped->second.rfind('|');
    if (bar != std::string::npos) {  // a configured type code (KV -> identifier-type-de-basis|KVZ10)
      fhir::Node* coding = c.doc.addChild(type_node, "coding");
      c.doc.addPrimitive(coding, "system", std::string_view(mapped->second).substr(0, bar));
      c.doc.addPrimitive(coding, "code", std::string_view(mapped->second).substr(bar + 1));
    } else if (table_code) {
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

// EI (placer/filler order numbers, ORC-2/ORC-3): the namespace (EI-2) or universal id (EI-3) as system.
bool fillEntityIdentifier(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string value = component(c, at, 1);
  if (value.empty()) return false;
  addIfValue(c, node, "system", identifierSystem(c.settings, component(c, at, 2), component(c, at, 3)));
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

// Display text of a PL: facility / point of care / room / bed.
std::string locationDisplay(ConversionContext& c, const Location& at) {
  std::string display;
  for (int comp : {4, 1, 2, 3}) {
    std::string part = component(c, at, comp, comp == 4 ? 1 : 0);
    if (part.empty()) continue;
    if (!display.empty()) display += " / ";
    display += part;
  }
  return display;
}

// Display text of an XCN: prefix given family.
std::string practitionerDisplay(ConversionContext& c, const Location& at) {
  const std::string family = component(c, at, 2, 1);
  const std::string given = component(c, at, 3);
  const std::string prefix = component(c, at, 6);
  std::string display;
  for (const std::string* part : {&prefix, &given, &family}) {
    if (part->empty()) continue;
    if (!display.empty()) display += ' ';
    display += *part;
  }
  return display;
}

bool fillLocationReference(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string display = locationDisplay(c, at);
  if (display.empty()) return false;
  c.doc.addPrimitive(node, "display", display);
  return true;
}

bool fillPractitionerReference(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string id = component(c, at, 1);
  const std::string display = practitionerDisplay(c, at);
  if (id.empty() && display.empty()) return false;
  if (!id.empty()) {
    fhir::Node* identifier = c.doc.addChild(node, "identifier");
    addIfValue(c, identifier, "system", identifierSystem(c.settings, component(c, at, 9, 1), component(c, at, 9, 2)));
    c.doc.addPrimitive(identifier, "value", id);
  }
  addIfValue(c, node, "display", display);
  return true;
}

// Quantity.unit/system/code from the units CWE of the context (OBX-6); UCUM when known to be UCUM.
void addUnits(ConversionContext& c, fhir::Node* quantity) {
  if (!c.units) return;
  const std::string code = component(c, *c.units, 1);
  const std::string text = component(c, *c.units, 2);
  const std::string system = component(c, *c.units, 3);
  const std::string unit = !text.empty() ? text : code;
  addIfValue(c, quantity, "unit", unit);
  const std::string ucum = ucumCode(code, system);
  if (!ucum.empty()) {
    c.doc.addPrimitive(quantity, "system", "http://unitsofmeasure.org");
    c.doc.addPrimitive(quantity, "code", ucum);
  }
}

bool addQuantity(ConversionContext& c, fhir::Node* parent, std::string_view property, std::string_view nm) {
  auto value = fhirDecimal(nm);
  if (!value) return false;
  fhir::Node* quantity = c.doc.addChild(parent, property);
  c.doc.addPrimitive(quantity, "value", *value);
  addUnits(c, quantity);
  return true;
}

bool fillQuantity(ConversionContext& c, fhir::Node* node, const Location& at) {
  auto value = fhirDecimal(c.message.get(at));
  if (!value) return false;
  c.doc.addPrimitive(node, "value", *value);
  addUnits(c, node);
  return true;
}

// SN (structured numeric): comparator ^ num1 ^ separator/suffix ^ num2.
bool fillSnQuantity(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string comparator = component(c, at, 1);
  if (!component(c, at, 3).empty() || !component(c, at, 4).empty()) return false;  // a range or ratio
  if (!comparator.empty() && comparator != "=" && comparator != "<" && comparator != ">" && comparator != "<=" &&
      comparator != ">=") {
    return false;  // "<>" has no FHIR comparator
  }
  auto value = fhirDecimal(component(c, at, 2));
  if (!value) return false;
  c.doc.addPrimitive(node, "value", *value);
  if (!comparator.empty() && comparator != "=") c.doc.addPrimitive(node, "comparator", comparator);
  addUnits(c, node);
  return true;
}

bool fillSnRange(ConversionContext& c, fhir::Node* node, const Location& at) {
  if (component(c, at, 3) != "-" || !component(c, at, 1).empty()) return false;
  const bool low = addQuantity(c, node, "low", component(c, at, 2));
  const bool high = addQuantity(c, node, "high", component(c, at, 4));
  return low && high;
}

bool fillSnRatio(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string separator = component(c, at, 3);
  if ((separator != ":" && separator != "/") || !component(c, at, 1).empty()) return false;
  if (!fhirDecimal(component(c, at, 2)) || !fhirDecimal(component(c, at, 4))) return false;
  addQuantity(c, node, "numerator", component(c, at, 2));
  const hl7v2::Location* units = c.units;
  c.units = nullptr;  // the units (OBX-6) belong to the ratio as a whole; kept on the numerator only
  addQuantity(c, node, "denominator", component(c, at, 4));
  c.units = units;
  return true;
}

int hexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// ED: source application ^ type of data ^ data subtype ^ encoding ^ data.
bool fillAttachment(ConversionContext& c, fhir::Node* node, const Location& at) {
  const std::string type = component(c, at, 2);
  std::string subtype = component(c, at, 3);
  const std::string encoding = component(c, at, 4);
  const std::string data = component(c, at, 5);
  if (data.empty()) return false;
  std::string base64;
  if (encoding == "Base64" || encoding == "BASE64" || encoding == "base64") {
    for (char ch : data) {
      if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '/' || ch == '=')) return false;
      base64 += ch;
    }
    if (base64.empty() || base64.size() % 4 != 0) return false;
  } else if (encoding == "Hex" || encoding == "HEX") {
    if (data.size() % 2 != 0) return false;
    std::string bytes;
    for (std::size_t i = 0; i < data.size(); i += 2) {
      const int hi = hexValue(data[i]), lo = hexValue(data[i + 1]);
      if (hi < 0 || lo < 0) return false;
      bytes += static_cast<char>(hi * 16 + lo);
    }
    base64 = base64Encode(bytes);
  } else if (encoding == "A" || encoding.empty()) {
    base64 = base64Encode(data);
  } else {
    return false;  // table 0299 knows A, Hex, Base64 only
  }
  std::string upper = subtype;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char ch) { return std::toupper(ch); });
  std::string content_type(lookup(upper, {{"PDF", "application/pdf"}, {"JPEG", "image/jpeg"}, {"JPG", "image/jpeg"},
                                          {"PNG", "image/png"}, {"TIFF", "image/tiff"}, {"GIF", "image/gif"},
                                          {"BMP", "image/bmp"}, {"RTF", "application/rtf"}, {"HTML", "text/html"},
                                          {"XML", "application/xml"}, {"PLAIN", "text/plain"}, {"DICOM", "application/dicom"},
                                          {"OCTET-STREAM", "application/octet-stream"}}));
  if (content_type.empty() && subtype.find('/') != std::string::npos) content_type = subtype;
  if (content_type.empty() && (type == "TEXT" || type == "TX")) content_type = "text/plain";
  if (content_type.empty()) content_type = "application/octet-stream";  // att-1: data needs a contentType
  c.doc.addPrimitive(node, "contentType", content_type);
  c.doc.addPrimitive(node, "data", base64);
  return true;
}

// OBX-7 (reference range, free text in v2.5: "3.5-5.0", "70_105", "<10", ">= 2").
bool fillReferenceRange(ConversionContext& c, fhir::Node* node, const Location& at) {
  std::string text = c.message.get(at);
  if (text.empty()) return false;
  std::string compact;
  for (char ch : text) {
    if (ch != ' ') compact += ch;
  }
  auto bound = [&](const char* property, std::string_view number) {
    if (fhirDecimal(number)) addQuantity(c, node, property, number);
  };
  if (compact.rfind("<=", 0) == 0 || compact.rfind(">=", 0) == 0) {
    bound(compact[0] == '<' ? "high" : "low", std::string_view(compact).substr(2));
  } else if (!compact.empty() && (compact[0] == '<' || compact[0] == '>')) {
    bound(compact[0] == '<' ? "high" : "low", std::string_view(compact).substr(1));
  } else {
    const std::size_t separator = compact.find_first_of("-_", 1);
    if (separator != std::string::npos) {
      const std::string_view low = std::string_view(compact).substr(0, separator);
      const std::string_view high = std::string_view(compact).substr(separator + 1);
      if (fhirDecimal(low) && fhirDecimal(high)) {
        bound("low", low);
        bound("high", high);
      }
    }
  }
  c.doc.addPrimitive(node, "text", text);
  return true;
}

}  // namespace

void fillPractitioner(ConversionContext& c, fhir::Node* practitioner, const Location& at) {
  const std::string id = component(c, at, 1);
  if (!id.empty()) {
    fhir::Node* identifier = c.doc.addChild(practitioner, "identifier");
    addIfValue(c, identifier, "system", identifierSystem(c.settings, component(c, at, 9, 1), component(c, at, 9, 2)));
    c.doc.addPrimitive(identifier, "value", id);
  }
  const std::string family = component(c, at, 2, 1);
  const std::string given = component(c, at, 3);
  const std::string middle = component(c, at, 4);
  if (family.empty() && given.empty() && middle.empty()) return;
  fhir::Node* name = c.doc.addChild(practitioner, "name");
  addIfValue(c, name, "family", family);
  addIfValue(c, name, "given", given);
  addIfValue(c, name, "given", middle);
  addIfValue(c, name, "prefix", component(c, at, 6));
  addIfValue(c, name, "suffix", component(c, at, 5));
}

void fillLocation(ConversionContext& c, fhir::Node* location, const Location& at) {
  const std::string id = component(c, at, 10, 1);
  if (!id.empty()) {
    fhir::Node* identifier = c.doc.addChild(location, "identifier");
    addIfValue(c, identifier, "system", identifierSystem(c.settings, component(c, at, 10, 2), component(c, at, 10, 3)));
    c.doc.addPrimitive(identifier, "value", id);
  }
  addIfValue(c, location, "name", locationDisplay(c, at));
  c.doc.addPrimitive(location, "mode", "instance");
  // The most specific part named: bed, room, point of care (a ward), facility (a site).
  std::string_view code, display;
  if (!component(c, at, 3).empty()) code = "bd", display = "Bed";
  else if (!component(c, at, 2).empty()) code = "ro", display = "Room";
  else if (!component(c, at, 1).empty()) code = "wa", display = "Ward";
  else if (!component(c, at, 4, 1).empty()) code = "si", display = "Site";
  if (!code.empty()) {
    fhir::Node* coding = c.doc.addChild(c.doc.addChild(location, "physicalType"), "coding");
    c.doc.addPrimitive(coding, "system", "http://terminology.hl7.org/CodeSystem/location-physical-type");
    c.doc.addPrimitive(coding, "code", code);
    c.doc.addPrimitive(coding, "display", display);
  }
}

EntityKey practitionerKey(ConversionContext& c, const Location& at) {
  return {identifierSystem(c.settings, component(c, at, 9, 1), component(c, at, 9, 2)), component(c, at, 1),
          practitionerDisplay(c, at)};
}

EntityKey locationKey(ConversionContext& c, const Location& at) {
  return {identifierSystem(c.settings, component(c, at, 10, 2), component(c, at, 10, 3)), component(c, at, 10, 1),
          locationDisplay(c, at)};
}

std::optional<std::string> fhirDecimal(std::string_view nm) {
  while (!nm.empty() && nm.front() == ' ') nm.remove_prefix(1);
  while (!nm.empty() && nm.back() == ' ') nm.remove_suffix(1);
  std::string sign;
  if (!nm.empty() && (nm.front() == '+' || nm.front() == '-')) {
    if (nm.front() == '-') sign = "-";
    nm.remove_prefix(1);
  }
  const std::size_t dot = nm.find('.');
  std::string_view whole = nm.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : nm.substr(dot + 1);
  if (whole.empty() && fraction.empty()) return std::nullopt;
  if ((!whole.empty() && !isDigits(whole)) || (!fraction.empty() && !isDigits(fraction))) return std::nullopt;
  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);
  std::string out = sign + (whole.empty() ? std::string("0") : std::string(whole));
  if (!fraction.empty()) out += "." + std::string(fraction);
  if (out == "-0") out = "0";
  return out;
}

std::string ucumCode(std::string_view unit, std::string_view coding_system) {
  if (unit.empty()) return {};
  if (coding_system == "UCUM" || coding_system == "http://unitsofmeasure.org") return std::string(unit);
  // Common laboratory and vital-sign units: the UCUM code (case-sensitive) for spellings seen in v2
  // feeds, matched without regard to case. ISO+ spellings (giga.l-1) map to their UCUM equivalent.
  static constexpr std::pair<std::string_view, std::string_view> kUnits[] = {
      {"%", "%"},           {"mg/dl", "mg/dL"},     {"g/dl", "g/dL"},       {"g/l", "g/L"},
      {"mg/l", "mg/L"},     {"mmol/l", "mmol/L"},   {"umol/l", "umol/L"},   {"nmol/l", "nmol/L"},
      {"pmol/l", "pmol/L"}, {"ng/ml", "ng/mL"},     {"pg/ml", "pg/mL"},     {"ug/l", "ug/L"},
      {"ug/dl", "ug/dL"},   {"u/l", "U/L"},         {"iu/l", "[IU]/L"},     {"meq/l", "meq/L"},
      {"fl", "fL"},         {"pg", "pg"},           {"g", "g"},             {"kg", "kg"},
      {"mg", "mg"},         {"ml", "mL"},           {"l", "L"},             {"cm", "cm"},
      {"mm", "mm"},         {"m", "m"},             {"mmhg", "mm[Hg]"},     {"mm[hg]", "mm[Hg]"},
      {"/min", "/min"},     {"bpm", "/min"},        {"cel", "Cel"},         {"degc", "Cel"},
      {"[degf]", "[degF]"}, {"kg/m2", "kg/m2"},     {"s", "s"},             {"min", "min"},
      {"h", "h"},           {"d", "d"},             {"wk", "wk"},           {"mo", "mo"},
      {"a", "a"},           {"/ul", "/uL"},         {"10*3/ul", "10*3/uL"}, {"10*6/ul", "10*6/uL"},
      {"10*9/l", "10*9/L"}, {"10*12/l", "10*12/L"}, {"giga.l-1", "10*9/L"}, {"tera.l-1", "10*12/L"},
      {"ml/min", "mL/min"}, {"ratio", "{ratio}"},   {"mosm/kg", "mosm/kg"}, {"k/ul", "10*3/uL"}};
  std::string lower(unit);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  for (auto [spelling, code] : kUnits) {
    if (spelling == lower) return std::string(code);
  }
  return {};
}

std::string base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t chunk = 0;
    for (std::size_t k = 0; k < 3; ++k) chunk = (chunk << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 0x3F] : '=';
  }
  return out;
}

std::optional<Converter> converterFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, Converter> kNames[] = {
      {"CX", Converter::kCX},         {"EI", Converter::kEI},         {"XPN", Converter::kXPN},        {"XAD", Converter::kXAD},
      {"XTN", Converter::kXTN},       {"CWE", Converter::kCWE},        {"CE", Converter::kCWE},
      {"CNE", Converter::kCWE},       {"PL", Converter::kPL},          {"XCN", Converter::kXCN},
      {"TS", Converter::kDTM},        {"DTM", Converter::kDTM},        {"date", Converter::kDate},
      {"string", Converter::kString}, {"code", Converter::kCode},      {"coding", Converter::kCoding},
      {"boolean", Converter::kBoolean}, {"text-base64", Converter::kTextBase64},
      {"text", Converter::kText}, {"decimal", Converter::kDecimal}, {"NM", Converter::kNM}, {"SN", Converter::kSN},
      {"SN-range", Converter::kSNRange}, {"SN-ratio", Converter::kSNRatio}, {"ED", Converter::kED},
      {"reference-range", Converter::kReferenceRange}};
  for (auto [n, c] : kNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

std::string_view converterName(Converter converter) {
  switch (converter) {
    case Converter::kNM: return "NM";
    case Converter::kSN: return "SN";
    case Converter::kSNRange: return "SN range";
    case Converter::kSNRatio: return "SN ratio";
    case Converter::kED: return "ED";
    case Converter::kReferenceRange: return "reference range";
    case Converter::kDecimal: return "NM";
    default: return "v2";
  }
}

bool takesUnits(Converter converter) {
  return converter == Converter::kNM || converter == Converter::kSN || converter == Converter::kSNRange ||
         converter == Converter::kSNRatio || converter == Converter::kReferenceRange;
}

std::string_view fhirTypeOf(Converter converter) {
  switch (converter) {
    case Converter::kCX:
    case Converter::kEI: return "Identifier";
    case Converter::kXPN: return "HumanName";
    case Converter::kXAD: return "Address";
    case Converter::kXTN: return "ContactPoint";
    case Converter::kCWE: return "CodeableConcept";
    case Converter::kPL:
    case Converter::kXCN: return "Reference";
    case Converter::kCoding: return "Coding";
    case Converter::kNM:
    case Converter::kSN: return "Quantity";
    case Converter::kSNRange: return "Range";
    case Converter::kSNRatio: return "Ratio";
    case Converter::kED: return "Attachment";
    case Converter::kReferenceRange: return "Observation.referenceRange";
    default: return {};
  }
}

bool fillComplex(Converter converter, ConversionContext& context, fhir::Node* node, const Location& at) {
  switch (converter) {
    case Converter::kCX: return fillIdentifier(context, node, at);
    case Converter::kEI: return fillEntityIdentifier(context, node, at);
    case Converter::kXPN: return fillHumanName(context, node, at);
    case Converter::kXAD: return fillAddress(context, node, at);
    case Converter::kXTN: return fillContactPoint(context, node, at);
    case Converter::kCWE: return fillCodeableConcept(context, node, at);
    case Converter::kPL: return fillLocationReference(context, node, at);
    case Converter::kXCN: return fillPractitionerReference(context, node, at);
    case Converter::kNM: return fillQuantity(context, node, at);
    case Converter::kSN: return fillSnQuantity(context, node, at);
    case Converter::kSNRange: return fillSnRange(context, node, at);
    case Converter::kSNRatio: return fillSnRatio(context, node, at);
    case Converter::kED: return fillAttachment(context, node, at);
    case Converter::kReferenceRange: return fillReferenceRange(context, node, at);
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
