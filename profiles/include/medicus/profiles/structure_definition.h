#pragma once
// StructureDefinitions compiled for validation: the snapshot as a flat array of element definitions
// with child and slice indices, so validation walks indices and never builds strings.
// Fixed/pattern/minValue/maxValue are kept as JSON values of the (published or generated) snapshot;
// they are compared directly with instance nodes.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/fwd.h>

#include "medicus/fhir/type_model.h"

namespace medicus::profiles {

class CompiledInvariant;  // invariant_engine.h

struct TypeRef {
  std::string code;  // "Quantity", "Reference", "http://hl7.org/fhirpath/System.String"
  std::vector<std::string> profiles;
  std::vector<std::string> profile_elements;  // per profile: element id (profile-element extension) or empty
  std::vector<std::string> target_profiles;
  std::vector<std::string> aggregation;  // contained | referenced | bundled (empty: any)
  const fhir::TypeInfo* info = nullptr;  // nullptr for System.* and unknown codes
};

enum class BindingStrength : uint8_t { Required, Extensible, Preferred, Example };

// An additional binding (R5 ElementDefinition.binding.additional, carried in R4 profiles by the
// cross-version or tools extension): a further value set with its purpose.
struct AdditionalBinding {
  // required/current: some coding must be in the value set; maximum: every coding; extensible: should
  // be; Other: purposes that do not constrain the instance (minimum, preferred, ui, starter, ...).
  enum class Purpose : uint8_t { Required, Current, Maximum, Extensible, Other };
  Purpose purpose = Purpose::Other;
  std::string value_set;
  bool has_usage = false;  // restricted to usage contexts, which instance validation cannot evaluate
};

struct Binding {
  BindingStrength strength = BindingStrength::Example;
  std::string value_set;  // canonical, may carry |version
  std::vector<AdditionalBinding> additional;
};

// A cheap test on the focus's children that decides an invariant without the FHIRPath engine
// (profiles/src/profiles/invariant_guards.h): "identifier.empty() or ..." holds whenever the focus
// has no identifier. The invariant holds when every test of one guard is true.
struct GuardTest {
  enum class Kind : uint8_t { Empty, Exists, NotStartsWith, AllOf };  // AllOf: path.all(...)
  Kind kind = Kind::Empty;
  std::vector<std::string> path;  // element names from the focus: {"contained", "meta", "security"}
  std::string prefix;             // NotStartsWith: "#"
};
struct InvariantGuard {
  std::vector<GuardTest> all_of;
};

// Core invariants the validator answers natively instead of through the engine (validator.cpp),
// told apart once when the profile is compiled (see nativeInvariantOf in invariant_guards.h).
enum class NativeInvariant : uint8_t { None, Bdl7, Ele1, Txt2, Dom3, Ref1, Ext1 };

struct Constraint {
  // What the per-node loop reads comes first (one cache line); the texts follow.
  NativeInvariant native = NativeInvariant::None;
  bool is_error = true;  // severity error (else warning)
  bool from_core = false;  // source is a core definition (http://hl7.org/fhir/StructureDefinition/...)
  bool core_key_without_source = false;  // no source and an ele-/dom-/ext- key (skipped by constraint profiles)
  bool guards_complete = false;  // the guards are the whole expression: when none holds, it fails
  std::shared_ptr<const CompiledInvariant> compiled;  // null when not compiled (no engine / compile error)
  std::vector<InvariantGuard> guards;  // tried in order before the engine; see GuardTest
  std::string key;  // "ele-1", "vs-2"
  std::string human;
  std::string expression;
  std::string source;
  std::string compile_error;
};

enum class DiscriminatorType : uint8_t { Value, Pattern, Type, Profile, Exists };
enum class SlicingRules : uint8_t { Closed, Open, OpenAtEnd };

struct Discriminator {
  DiscriminatorType type = DiscriminatorType::Value;
  std::string path;
};

struct Slicing {
  std::vector<Discriminator> discriminators;
  bool ordered = false;
  SlicingRules rules = SlicingRules::Open;
};

inline constexpr uint32_t kNoElement = UINT32_MAX;

// Up to seven leading bytes of an element name and its length in one word: the walk pairs a node's
// children with a definition's by comparing these (and the rest of names longer than seven bytes).
inline uint64_t nameKey(std::string_view name) {
  uint64_t key = name.size() < 255 ? name.size() : 255;
  for (size_t i = 0; i < name.size() && i < 7; ++i) key |= uint64_t(static_cast<unsigned char>(name[i])) << (8 * (i + 1));
  return key;
}

// What the per-node walk over an element's children needs of each child, packed together: most
// children of a definition are absent from a given instance, and an ElementDef spans several cache
// lines, so the walk reads only these until a child is present.
struct ChildSlot {
  uint64_t name_key = 0;  // nameKey() of the child's ElementDef::name (the name itself stays there)
  uint32_t index = 0;  // into CompiledProfile::elements
  uint32_t min = 0;
  uint32_t max = UINT32_MAX;
  bool check_absent = false;  // min > 0 or a slice with min > 0: reports even when absent
};

struct ElementDef {
  // What the per-node walk reads comes first: an ElementDef spans several cache lines, and most
  // elements carry none of the rules below, so the walk mostly stops at these flags.
  bool has_value_rules = false;    // fixed, pattern, min/max length or min/max value (decided when compiled)
  bool has_type_profiles = false;  // a type names profiles (checked by conformance to them; when compiled)
  bool has_value_presence_rules = false;  // must_have_value or value_alternatives (when compiled)
  bool has_narrative_controls = false;    // a narrative control extension (when compiled)
  bool has_binding = false;
  bool has_slicing = false;
  bool is_choice = false;
  bool is_modifier = false;
  bool unique_child_names = true;  // no two children share a name (broken snapshots may repeat one)
  uint32_t min = 0;
  uint32_t max = UINT32_MAX;  // UINT32_MAX for "*"
  uint32_t parent = kNoElement;
  uint32_t slice_of = kNoElement;  // for a slice: the sliced element
  std::vector<TypeRef> types;
  std::vector<Constraint> constraints;
  std::vector<uint32_t> children;  // direct child elements (not slices)
  std::vector<ChildSlot> child_slots;  // the same children, compact (see ChildSlot)
  std::vector<uint32_t> slices;    // slices of this element, in definition order
  std::string content_reference;  // "#Observation.referenceRange"
  std::string id;    // "Observation.component:SystolicBP.code"
  std::string path;  // "Observation.component.code"
  std::string name;  // last path segment without [x]: "code", "value"
  std::string slice_name;
  const rapidjson::Value* fixed = nullptr;    // fixed[x]
  const rapidjson::Value* pattern = nullptr;  // pattern[x]
  const rapidjson::Value* min_value = nullptr;
  const rapidjson::Value* max_value = nullptr;
  int64_t max_length = -1;
  int64_t min_length = -1;  // the minLength extension
  // Narrative control extensions on a Narrative element (http://hl7.org/fhir/extensions): language
  // sections "_yes" (required) / "_no" (prohibited) / other values (not checked); source attribution:
  // the issue severity ("error", "warning", ...) for narrative nodes without a source class.
  std::string narrative_language_control;
  std::string narrative_source_control;
  // R5 mustHaveValue / valueAlternatives (as R4 cross-version extensions): a primitive without a value
  // is an error, unless one of the alternative extensions stands in for the value.
  bool must_have_value = false;
  std::vector<std::string> value_alternatives;  // extension canonicals
  Binding binding;
  Slicing slicing;
};

// Where an extension may be used (StructureDefinition.context, http://hl7.org/fhir/R4/extensibility.html#context).
enum class ContextType : uint8_t { Element, Extension, Fhirpath };
struct ExtensionContext {
  ContextType type = ContextType::Element;
  std::string expression;  // element path ("Patient.address"), extension url, or FHIRPath
  std::shared_ptr<const CompiledInvariant> compiled;  // Fhirpath contexts
};

struct CompiledProfile {
  std::string url;
  std::string version;
  std::string type;  // the constrained type: "Patient", "Extension", "Identifier"
  std::string derivation;
  bool snapshot_generated = false;  // true when we generated it from the differential
  std::vector<ElementDef> elements;  // [0] is the root
  const fhir::TypeInfo* type_info = nullptr;
  // Extension definitions: the contexts the extension may be used in (empty: anywhere) and the
  // contextInvariant expressions (key = expression) checked on the extended element.
  std::vector<ExtensionContext> contexts;
  std::vector<Constraint> context_invariants;

  const ElementDef& root() const { return elements[0]; }
  // The element with this id, or kNoElement.
  uint32_t findById(std::string_view id) const;
};

}  // namespace medicus::profiles
