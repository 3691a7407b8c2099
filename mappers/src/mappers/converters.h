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
};

enum class Converter { kCX, kXPN, kXAD, kXTN, kCWE, kPL, kXCN, kDTM, kDate, kString, kCode, kCoding, kBoolean, kTextBase64 };

std::optional<Converter> converterFromName(std::string_view name);
// The FHIR type a converter fills ("Identifier"), or "" for converters producing a primitive value.
std::string_view fhirTypeOf(Converter converter);

struct ConversionContext {
  fhir::Document& doc;
  const hl7v2::Message& message;
  const MapSettings& settings;
};

// Fills `node` (of fhirTypeOf(converter)) from the v2 value at `at` (one repetition). False when the
// value gave nothing to write; the caller then removes the node.
bool fillComplex(Converter converter, ConversionContext& context, fhir::Node* node, const hl7v2::Location& at);

// Identifier.system for an assigning authority (HD: namespace^universal id^type) and identifier type
// code (CX-5): the table entry "NAMESPACE^TYPE" wins over "NAMESPACE"; then urn:oid: for an OID.
std::string identifierSystem(const MapSettings& settings, std::string_view namespace_id, std::string_view universal_id,
                             std::string_view type_code = {});
// Coding.system for a v2 coding system name ("LN", "HL70203").
std::string codingSystem(const MapSettings& settings, std::string_view name);

}  // namespace medicus::mappers
