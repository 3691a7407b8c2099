#pragma once
// HL7 v2 data types -> FHIR data types (HL7 v2-to-FHIR IG, datatype maps), filling nodes built with
// the fhir-model builders.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "medicus/fhir/node.h"
#include "medicus/hl7v2/message.h"

namespace medicus::mappers {

struct MapSettings {
  std::string default_timezone;                               // "+01:00" or empty
  std::map<std::string, std::string> assigning_authorities;  // CX-4.1 -> Identifier.system
  std::map<std::string, std::string> code_systems;           // CWE-3 -> Coding.system
  std::map<std::string, std::string> identifier_types;       // CX-5 -> "system|code" of Identifier.type
};

enum class Converter {
  kCX, kXPN, kXAD, kXTN, kCWE, kPL, kXCN, kDTM, kDate, kString, kCode, kCoding, kBoolean, kTextBase64,
  kEI,              // EI (entity id ^ namespace ^ universal id ^ type) -> Identifier
  kText,            // every repetition's text joined by line breaks (OBX-5 TX/FT)
  kDecimal,         // NM text -> FHIR decimal
  kNM,              // NM (+ units CWE) -> Quantity
  kSN,              // SN comparator^number -> Quantity with comparator
  kSNRange,         // SN number^-^number -> Range
  kSNRatio,         // SN number^:^number (or /) -> Ratio
  kED,              // ED (encapsulated data) -> Attachment
  kReferenceRange,  // OBX-7 text ("3.5-5.0", "<10", ">=2") -> Observation.referenceRange
};

std::optional<Converter> converterFromName(std::string_view name);
std::string_view converterName(Converter converter);
// Converters that read the units of their value from a second location (`units: OBX-6`).
bool takesUnits(Converter converter);
// The FHIR type a converter fills ("Identifier"), or "" for converters producing a primitive value.
std::string_view fhirTypeOf(Converter converter);

struct ConversionContext {
  fhir::Document& doc;
  const hl7v2::Message& message;
  const MapSettings& settings;
  const hl7v2::Location* units = nullptr;  // CWE with the units (OBX-6) for NM, SN, ranges; may be null
};

// Fills `node` (of fhirTypeOf(converter)) from the v2 value at `at` (one repetition). False when the
// value gave nothing to write; the caller then removes the node.
bool fillComplex(Converter converter, ConversionContext& context, fhir::Node* node, const hl7v2::Location& at);

// v2 NM ("+007.50", ".5", "5.") -> FHIR decimal ("7.50", "0.5", "5"); nullopt when not a number.
std::optional<std::string> fhirDecimal(std::string_view nm);
// A UCUM code for a unit written in OBX-6.1: the code itself when `coding_system` is UCUM, else the
// UCUM spelling of common units written differently ("mg/dl" -> "mg/dL", "mmHg" -> "mm[Hg]"); "" when
// the unit is not known to be UCUM.
std::string ucumCode(std::string_view unit, std::string_view coding_system);
std::string base64Encode(std::string_view bytes);

// XCN -> Practitioner (identifier from XCN-1/XCN-9, name from XCN-2..6) and PL -> Location (name from
// facility / point of care / room / bed, identifier from PL-10, physicalType of the most specific part).
void fillPractitioner(ConversionContext& context, fhir::Node* practitioner, const hl7v2::Location& at);
void fillLocation(ConversionContext& context, fhir::Node* location, const hl7v2::Location& at);
// What identifies such an entry: the identifier (system may be empty), else its name.
struct EntityKey {
  std::string system;
  std::string value;
  std::string fallback_name;
};
EntityKey practitionerKey(ConversionContext& context, const hl7v2::Location& at);
EntityKey locationKey(ConversionContext& context, const hl7v2::Location& at);

// Identifier.system for an assigning authority (HD: namespace^universal id^type) and identifier type
// code (CX-5): the table entry "NAMESPACE^TYPE" wins over "NAMESPACE"; then urn:oid: for an OID.
std::string identifierSystem(const MapSettings& settings, std::string_view namespace_id, std::string_view universal_id,
                             std::string_view type_code = {});
// Coding.system for a v2 coding system name ("LN", "HL70203").
std::string codingSystem(const MapSettings& settings, std::string_view name);

}  // namespace medicus::mappers
