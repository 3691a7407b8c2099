#pragma once
// The FHIR R4 type model: every data type, resource and backbone element with its elements in
// definition order, cardinality, allowed types, choice types and contentReference. Generated at build
// time from the R4 core StructureDefinitions (hl7.fhir.r4.core 4.0.1); immutable and shared.
#include <cstdint>
#include <span>
#include <string_view>

namespace medicus::fhir {

struct TypeInfo;

enum class TypeKind : uint8_t {
  Primitive,  // boolean, string, decimal, ... (value plus id/extension)
  Complex,    // HumanName, Quantity, Extension, ...
  Resource,   // Patient, Bundle, ... (also the abstract Resource and DomainResource)
  Backbone,   // an element with its own children inside a type: Patient.contact, Timing.repeat
};

// How a primitive's value appears in JSON.
enum class JsonValueKind : uint8_t { String, Number, Boolean };

// The lexical family of a primitive type, so hot paths switch instead of comparing names.
enum class PrimitiveKind : uint8_t {
  None, Boolean, Integer, PositiveInt, UnsignedInt, Decimal, Date, DateTime, Instant, Time, Id, Code,
  Uri, Oid, Uuid, Base64Binary, Xhtml, String
};

inline constexpr uint32_t kUnbounded = UINT32_MAX;

struct ElementInfo {
  std::string_view name;  // "deceased" for Patient.deceased[x]
  std::string_view path;  // definition path: "Patient.deceased[x]", "Patient.contact.name"
  uint32_t min = 0;
  uint32_t max = 1;  // kUnbounded for "*"
  uint16_t index = 0;  // position in the owner's element list (definition order, which XML follows)
  bool is_choice = false;         // name ends in [x] in the definition
  bool is_xml_attribute = false;  // Element.id, Extension.url: XML attribute, JSON property without "_x"
  bool is_modifier = false;
  bool is_summary = false;
  const TypeInfo* owner = nullptr;
  std::span<const TypeInfo* const> types;  // allowed types; for backbones the nested type

  bool repeats() const { return max > 1; }
  const TypeInfo* singleType() const { return types.size() == 1 ? types[0] : nullptr; }
  // For a choice element: the allowed type whose name matches the JSON/XML suffix ("Quantity" in
  // "valueQuantity", case as written); nullptr when none.
  const TypeInfo* choiceTypeForSuffix(std::string_view suffix) const;
};

struct TypeInfo {
  std::string_view name;  // "Patient", "HumanName", "string"; backbones: "Patient.contact"
  TypeKind kind = TypeKind::Complex;
  bool is_abstract = false;
  const TypeInfo* base = nullptr;  // Patient -> DomainResource -> Resource; string -> Element
  std::span<const ElementInfo> elements;
  JsonValueKind json_kind = JsonValueKind::String;  // primitives only
  PrimitiveKind primitive_kind = PrimitiveKind::None;  // primitives only

  bool isPrimitive() const { return kind == TypeKind::Primitive; }
  bool isResource() const { return kind == TypeKind::Resource; }
  // True if this type is `other` or derives from it (Age is a Quantity, Patient a DomainResource).
  bool isA(const TypeInfo* other) const;
  bool isA(std::string_view other_name) const;
  // Element by definition name ("deceased", "name"); nullptr when absent.
  const ElementInfo* findElement(std::string_view name) const;

  // Resolves a JSON property / XML element name to its element and type: "valueQuantity" gives
  // Observation.value[x] with Quantity; "name" gives Patient.name with HumanName. False when unknown.
  bool resolveProperty(std::string_view property, const ElementInfo*& element, const TypeInfo*& type) const;
};

class TypeModel {
 public:
  // The R4 (4.0.1) model compiled into the library. Built on first use; thread-safe.
  static const TypeModel& r4();

  // A type, resource or backbone ("Patient.contact") by name; nullptr when unknown.
  const TypeInfo* find(std::string_view name) const;
  std::span<const TypeInfo> types() const;

  // Frequently used types, resolved once.
  const TypeInfo* string_type = nullptr;
  const TypeInfo* extension_type = nullptr;
  const TypeInfo* resource_type = nullptr;

  struct Impl;
  explicit TypeModel(const Impl* impl);

 private:
  const Impl* impl_;
};

// The name used for a choice suffix: "Quantity" for Quantity, "String" for string.
std::string_view capitalizedTypeName(const TypeInfo& type, char* buffer, size_t buffer_size);

}  // namespace medicus::fhir
