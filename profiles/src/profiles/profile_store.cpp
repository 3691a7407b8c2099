#include "medicus/profiles/profile_store.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "profiles/core_invariant_errata.h"
#include "profiles/invariant_guards.h"
#include "profiles/json_util.h"
#include "profiles/snapshot_generator.h"

namespace medicus::profiles {
namespace {
constexpr int kMaxBaseChain = 16;

bool startsWithUpper(std::string_view name, std::string_view prefix) {
  return name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix &&
         std::isupper(static_cast<unsigned char>(name[prefix.size()]));
}

void parseTypes(const rapidjson::Value& e, ElementDef& def) {
  const rapidjson::Value* types = memberArray(e, "type");
  if (!types) return;
  for (const auto& t : types->GetArray()) {
    TypeRef ref;
    ref.code = std::string(memberStr(t, "code"));
    if (const rapidjson::Value* p = memberArray(t, "profile")) for (const auto& v : p->GetArray()) ref.profiles.emplace_back(str(v));
    // elementdefinition-profile-element: the profile names an element inside it, not its root.
    ref.profile_elements.assign(ref.profiles.size(), std::string());
    if (const rapidjson::Value* ext = memberArray(t, "_profile")) {
      for (rapidjson::SizeType i = 0; i < ext->Size() && i < ref.profiles.size(); ++i) {
        const rapidjson::Value* list = memberArray((*ext)[i], "extension");
        if (!list) continue;
        for (const auto& x : list->GetArray()) {
          if (memberStr(x, "url") == "http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element") {
            ref.profile_elements[i] = std::string(memberStr(x, "valueString"));
          }
        }
      }
    }
    if (const rapidjson::Value* p = memberArray(t, "targetProfile")) for (const auto& v : p->GetArray()) ref.target_profiles.emplace_back(str(v));
    if (const rapidjson::Value* a = memberArray(t, "aggregation")) for (const auto& v : a->GetArray()) ref.aggregation.emplace_back(str(v));
    ref.info = fhir::TypeModel::r4().find(ref.code);
    def.types.push_back(std::move(ref));
  }
}

// binding.extension: the R5 additional bindings as R4 profiles write them (the cross-version
// extension of ElementDefinition.binding.additional, or the FHIR tools one), sub-extensions purpose,
// valueSet and usage.
void parseAdditionalBindings(const rapidjson::Value& binding, Binding& out) {
  const rapidjson::Value* exts = memberArray(binding, "extension");
  if (!exts) return;
  for (const auto& x : exts->GetArray()) {
    std::string_view url = memberStr(x, "url");
    if (url != "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional" &&
        url != "http://hl7.org/fhir/tools/StructureDefinition/additional-binding") {
      continue;
    }
    AdditionalBinding a;
    std::string_view purpose;
    if (const rapidjson::Value* parts = memberArray(x, "extension")) {
      for (const auto& part : parts->GetArray()) {
        std::string_view name = memberStr(part, "url");
        if (name == "purpose") purpose = memberStr(part, "valueCode");
        else if (name == "valueSet") a.value_set = std::string(memberStr(part, "valueCanonical"));
        else if (name == "usage") a.has_usage = true;
      }
    }
    using P = AdditionalBinding::Purpose;
    a.purpose = purpose == "required" ? P::Required : purpose == "current" ? P::Current
              : purpose == "maximum" ? P::Maximum : purpose == "extensible" ? P::Extensible : P::Other;
    if (!a.value_set.empty() && a.purpose != P::Other) out.additional.push_back(std::move(a));
  }
}

BindingStrength parseStrength(std::string_view s) {
  if (s == "required") return BindingStrength::Required;
  if (s == "extensible") return BindingStrength::Extensible;
  if (s == "preferred") return BindingStrength::Preferred;
  return BindingStrength::Example;
}

DiscriminatorType parseDiscriminator(std::string_view s) {
  if (s == "pattern") return DiscriminatorType::Pattern;
  if (s == "type") return DiscriminatorType::Type;
  if (s == "profile") return DiscriminatorType::Profile;
  if (s == "exists") return DiscriminatorType::Exists;
  return DiscriminatorType::Value;
}

// Parent id of "A.b:s.c" is "A.b:s"; a slice "A.b:s" is a slice of "A.b" (whose parent is "A").
std::string_view parentId(std::string_view id) {
  size_t dot = id.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : id.substr(0, dot);
}
}  // namespace

struct ProfileStore::Generated {
  rapidjson::Document doc;  // holds the element array (generated, or a published one with ids added)
  const rapidjson::Value* elements = nullptr;
  std::vector<std::string> problems;
};

uint32_t CompiledProfile::findById(std::string_view id) const {
  for (uint32_t i = 0; i < elements.size(); ++i) if (elements[i].id == id) return i;
  return kNoElement;
}

ProfileStore::ProfileStore(const PackageRegistry& registry, std::shared_ptr<const InvariantEngine> engine)
    : registry_(registry), engine_(std::move(engine)) {}
ProfileStore::~ProfileStore() = default;

const ResourceInfo* ProfileStore::resolve(std::string_view canonical_or_type) const {
  if (canonical_or_type.find(':') == std::string_view::npos && canonical_or_type.find('/') == std::string_view::npos) {
    return registry_.findTypeDefinition(canonical_or_type);
  }
  return registry_.findCanonical(canonical_or_type, "StructureDefinition");
}

tl::expected<const rapidjson::Value*, std::string> ProfileStore::snapshotElements(std::string_view canonical_or_type) {
  std::lock_guard lock(mutex_);
  const ResourceInfo* info = resolve(canonical_or_type);
  if (!info) return tl::make_unexpected("StructureDefinition " + std::string(canonical_or_type) + " is not loaded");
  return snapshotLocked(*info, 0);
}

std::vector<std::string> ProfileStore::snapshotProblems(std::string_view canonical) {
  std::lock_guard lock(mutex_);
  const ResourceInfo* info = resolve(canonical);
  if (!info) return {"not loaded"};
  auto it = snapshots_.find(info);
  return it == snapshots_.end() ? std::vector<std::string>{} : it->second->problems;
}

tl::expected<const rapidjson::Value*, std::string> ProfileStore::snapshotLocked(const ResourceInfo& info, int depth) {
  if (auto it = snapshots_.find(&info); it != snapshots_.end()) return it->second->elements;
  if (auto it = failures_.find(info.url + "|" + info.version); it != failures_.end()) return tl::make_unexpected(it->second);
  if (depth > kMaxBaseChain) return tl::make_unexpected("baseDefinition chain of " + info.url + " is too deep (cycle?)");
  const rapidjson::Value* sd = registry_.json(info);
  if (!sd) return tl::make_unexpected("StructureDefinition " + info.url + " cannot be read");
  auto generated = std::make_unique<Generated>();
  auto& alloc = generated->doc.GetAllocator();
  const rapidjson::Value* snapshot = member(*sd, "snapshot");
  const rapidjson::Value* published = snapshot ? memberArray(*snapshot, "element") : nullptr;
  if (published && !published->Empty()) {
    bool has_ids = true;
    for (const auto& e : published->GetArray()) has_ids = has_ids && member(e, "id");
    if (has_ids) {
      generated->elements = published;
    } else {
      generated->doc.CopyFrom(*published, alloc);
      assignElementIds(generated->doc, alloc);
      generated->elements = &generated->doc;
    }
  } else {
    std::string_view base_url = memberStr(*sd, "baseDefinition");
    const ResourceInfo* base = base_url.empty() ? nullptr : registry_.findCanonical(base_url, "StructureDefinition");
    if (!base) {
      std::string why = "cannot generate the snapshot of " + info.url + ": base definition " +
                        (base_url.empty() ? std::string("(none)") : std::string(base_url)) + " is not loaded";
      failures_[info.url + "|" + info.version] = why;
      return tl::make_unexpected(why);
    }
    auto base_elements = snapshotLocked(*base, depth + 1);
    if (!base_elements) return tl::make_unexpected(base_elements.error());
    rapidjson::Value diff(rapidjson::kArrayType);
    if (const rapidjson::Value* d = member(*sd, "differential"); d && memberArray(*d, "element")) {
      diff.CopyFrom(*memberArray(*d, "element"), alloc);
    }
    assignElementIds(diff, alloc);
    SnapshotLookup lookup = [this, depth](std::string_view type_or_url) -> const rapidjson::Value* {
      const ResourceInfo* target = resolve(type_or_url);
      if (!target) return nullptr;
      auto elements = snapshotLocked(*target, depth + 1);
      return elements ? *elements : nullptr;
    };
    generated->doc.SetArray();
    SnapshotResult result = generateSnapshot(**base_elements, diff, lookup, generated->doc, alloc,
                                             memberStr(*sd, "derivation") == "specialization");
    generated->problems = std::move(result.problems);
    generated->elements = &generated->doc;
  }
  const rapidjson::Value* elements = generated->elements;
  snapshots_[&info] = std::move(generated);
  return elements;
}

const std::vector<ProfileStore::GlobalProfile>& ProfileStore::globalProfiles() {
  std::lock_guard lock(mutex_);
  if (global_profiles_) return *global_profiles_;
  std::vector<GlobalProfile> found;
  registry_.forEach("ImplementationGuide", [&](const ResourceInfo& info) {
    const rapidjson::Value* guide = registry_.json(info);
    const rapidjson::Value* globals = guide ? memberArray(*guide, "global") : nullptr;
    if (!globals) return;
    for (const auto& g : globals->GetArray()) {
      std::string_view type = memberStr(g, "type"), profile = memberStr(g, "profile");
      if (!type.empty() && !profile.empty()) found.push_back({std::string(type), std::string(profile), info.url});
    }
  });
  global_profiles_ = std::move(found);
  return *global_profiles_;
}

ProfileStore::Recent& ProfileStore::recentSlot(std::string_view canonical_or_type) {
  const uintptr_t where = reinterpret_cast<uintptr_t>(canonical_or_type.data());
  return recent_[((where >> 3) ^ (where >> 11) ^ canonical_or_type.size()) % std::size(recent_)];
}

const CompiledProfile* ProfileStore::recentLocked(std::string_view canonical_or_type) {
  const Recent& r = recentSlot(canonical_or_type);
  if (r.profile && r.data == canonical_or_type.data() && r.size == canonical_or_type.size() &&
      r.registry_size == registry_.size() && r.key == canonical_or_type) {
    return r.profile;
  }
  return nullptr;
}

void ProfileStore::rememberLocked(std::string_view canonical_or_type, const CompiledProfile* profile) {
  Recent& r = recentSlot(canonical_or_type);
  r.data = canonical_or_type.data();
  r.size = canonical_or_type.size();
  r.registry_size = registry_.size();
  r.key.assign(canonical_or_type);
  r.profile = profile;
}

const CompiledProfile* ProfileStore::typeDefinition(std::string_view type_name) {
  std::lock_guard lock(mutex_);
  if (const CompiledProfile* recent = recentLocked(type_name)) return recent;
  const ResourceInfo* info = registry_.findTypeDefinition(type_name);
  if (!info) return nullptr;
  auto compiled = compileLocked(*info);
  if (!compiled) return nullptr;
  rememberLocked(type_name, *compiled);
  return *compiled;
}

tl::expected<const CompiledProfile*, std::string> ProfileStore::profile(std::string_view canonical) {
  std::lock_guard lock(mutex_);
  if (const CompiledProfile* recent = recentLocked(canonical)) return recent;
  const ResourceInfo* info = resolve(canonical);
  if (!info) {
    // Say which part does not resolve: a malformed canonical, a version not loaded, or the url.
    size_t bar = canonical.find('|');
    std::string_view url = canonical.substr(0, bar);
    if (bar != std::string_view::npos && canonical.find('|', bar + 1) != std::string_view::npos) {
      return tl::make_unexpected("'" + std::string(canonical) + "' is not a valid canonical: it has more than one "
                                 "'|' (a canonical is url|version), so it cannot be resolved");
    }
    if (registry_.findCanonical(canonical)) {
      return tl::make_unexpected("'" + std::string(canonical) + "' is not a StructureDefinition");
    }
    if (const ResourceInfo* other = registry_.findCanonical(url, "StructureDefinition")) {
      return tl::make_unexpected("version " + std::string(canonical.substr(bar + 1)) + " of " + std::string(url) +
                                 " is not loaded (loaded: " + (other->version.empty() ? "no version" : other->version) +
                                 ")");
    }
    return tl::make_unexpected("profile " + std::string(url) + " is not loaded (add its package with --package)");
  }
  auto compiled = compileLocked(*info);
  if (compiled) rememberLocked(canonical, *compiled);
  return compiled;
}

std::shared_ptr<const CompiledInvariant> ProfileStore::compileExpressionLocked(const std::string& expression,
                                                                             const std::string& context_type,
                                                                             std::string* error) {
  if (expression.empty() || !engine_) return nullptr;
  auto key = std::make_pair(expression, context_type);
  if (auto cached = invariants_.find(key); cached != invariants_.end()) return cached->second;
  auto compiled = engine_->compile(expression, context_type);
  std::shared_ptr<const CompiledInvariant> result;
  if (compiled) result = *compiled;
  else if (error) *error = compiled.error();
  invariants_.emplace(key, result);
  return result;
}

void ProfileStore::compileExtensionContexts(const rapidjson::Value& sd, CompiledProfile& profile) {
  if (const rapidjson::Value* contexts = memberArray(sd, "context")) {
    for (const auto& c : contexts->GetArray()) {
      ExtensionContext context;
      std::string_view type = memberStr(c, "type");
      context.type = type == "fhirpath" ? ContextType::Fhirpath : type == "extension" ? ContextType::Extension
                                                                                   : ContextType::Element;
      context.expression = std::string(memberStr(c, "expression"));
      if (context.expression.empty()) continue;
      if (context.type == ContextType::Fhirpath) context.compiled = compileExpressionLocked(context.expression, {}, nullptr);
      profile.contexts.push_back(std::move(context));
    }
  }
  if (const rapidjson::Value* invariants = memberArray(sd, "contextInvariant")) {
    for (const auto& v : invariants->GetArray()) {
      Constraint constraint;
      constraint.expression = std::string(str(v));
      if (constraint.expression.empty()) continue;
      constraint.key = constraint.expression;
      constraint.human = "context invariant";
      constraint.compiled = compileExpressionLocked(constraint.expression, {}, &constraint.compile_error);
      profile.context_invariants.push_back(std::move(constraint));
    }
  }
}

tl::expected<const CompiledProfile*, std::string> ProfileStore::compileLocked(const ResourceInfo& info) {
  if (auto it = compiled_.find(&info); it != compiled_.end()) return it->second.get();
  auto elements = snapshotLocked(info, 0);
  if (!elements) return tl::make_unexpected(elements.error());
  auto profile = std::make_unique<CompiledProfile>();
  profile->url = info.url;
  profile->version = info.version;
  profile->type = info.type;
  profile->type_info = fhir::TypeModel::r4().find(info.type);
  const rapidjson::Value* sd = registry_.json(info);
  // A package's .index.json has no derivation: the definition itself says it.
  profile->derivation = info.derivation.empty() && sd ? std::string(memberStr(*sd, "derivation")) : info.derivation;
  const rapidjson::Value* snapshot = sd ? member(*sd, "snapshot") : nullptr;
  profile->snapshot_generated = !(snapshot && memberArray(*snapshot, "element"));

  constexpr std::string_view kVitalSigns = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
  const bool vital_signs_family = info.type == "Observation" && info.url.starts_with("http://hl7.org/fhir/StructureDefinition/") &&
                                  (info.url == kVitalSigns || (sd && memberStr(*sd, "baseDefinition") == kVitalSigns));
  std::unordered_map<std::string_view, uint32_t> by_id;
  profile->elements.reserve((*elements)->Size());
  for (const auto& e : (*elements)->GetArray()) {
    ElementDef def;
    def.id = std::string(memberStr(e, "id"));
    def.path = std::string(memberStr(e, "path"));
    def.slice_name = std::string(memberStr(e, "sliceName"));
    std::string_view last = def.path;
    if (size_t dot = last.rfind('.'); dot != std::string_view::npos) last = last.substr(dot + 1);
    def.is_choice = last.ends_with("[x]");
    def.name = std::string(def.is_choice ? last.substr(0, last.size() - 3) : last);
    uint32_t min = 0;
    if (memberUInt(e, "min", min)) def.min = min;
    std::string_view max = memberStr(e, "max");
    if (max == "*" || max.empty()) def.max = UINT32_MAX;
    else def.max = static_cast<uint32_t>(std::strtoul(std::string(max).c_str(), nullptr, 10));
    parseTypes(e, def);
    def.is_modifier = memberBool(e, "isModifier");
    def.content_reference = std::string(memberStr(e, "contentReference"));
    for (const auto& m : e.GetObject()) {
      std::string_view key = str(m.name);
      if (startsWithUpper(key, "fixed")) def.fixed = &m.value;
      else if (startsWithUpper(key, "pattern")) def.pattern = &m.value;
      else if (startsWithUpper(key, "minValue")) def.min_value = &m.value;
      else if (startsWithUpper(key, "maxValue")) def.max_value = &m.value;
    }
    uint32_t max_length = 0;
    if (memberUInt(e, "maxLength", max_length)) def.max_length = max_length;
    if (const rapidjson::Value* exts = memberArray(e, "extension")) {
      for (const auto& x : exts->GetArray()) {
        uint32_t min_length = 0;
        if (memberStr(x, "url") == "http://hl7.org/fhir/StructureDefinition/minLength" &&
            memberUInt(x, "valueInteger", min_length)) {
          def.min_length = min_length;
        }
        std::string_view xurl = memberStr(x, "url");
        if (xurl == "http://hl7.org/fhir/StructureDefinition/narrative-language-control") {
          def.narrative_language_control = std::string(memberStr(x, "valueCode"));
        } else if (xurl == "http://hl7.org/fhir/StructureDefinition/narrative-source-control") {
          def.narrative_source_control = std::string(memberStr(x, "valueCode"));
        } else if (xurl == "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.mustHaveValue") {
          def.must_have_value = memberBool(x, "valueBoolean");
        } else if (xurl == "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives") {
          std::string_view alternative = memberStr(x, "valueCanonical");
          if (!alternative.empty()) def.value_alternatives.emplace_back(alternative);
        }
      }
    }
    if (const rapidjson::Value* b = member(e, "binding"); b && b->IsObject() && member(*b, "valueSet")) {
      def.has_binding = true;
      def.binding.strength = parseStrength(memberStr(*b, "strength"));
      def.binding.value_set = std::string(memberStr(*b, "valueSet"));
      // Published R4 erratum: the core vital signs profiles bind Observation.component.value[x] to the
      // vital signs units as 'required', which also forbids every non-vital component (FiO2 flow rate in
      // L/min on an oxygen saturation); the binding is meant as extensible, and the HL7 Java validator
      // loads it so. Only the core vitalsigns profile and those derived from it in core.
      if (vital_signs_family && def.binding.strength == BindingStrength::Required &&
          def.path == "Observation.component.value[x]" &&
          def.binding.value_set.starts_with("http://hl7.org/fhir/ValueSet/ucum-vitals-common")) {
        def.binding.strength = BindingStrength::Extensible;
      }
      parseAdditionalBindings(*b, def.binding);
    }
    if (const rapidjson::Value* s = member(e, "slicing"); s && s->IsObject()) {
      def.has_slicing = true;
      def.slicing.ordered = memberBool(*s, "ordered");
      std::string_view rules = memberStr(*s, "rules");
      def.slicing.rules = rules == "closed" ? SlicingRules::Closed : rules == "openAtEnd" ? SlicingRules::OpenAtEnd : SlicingRules::Open;
      if (const rapidjson::Value* ds = memberArray(*s, "discriminator")) {
        for (const auto& d : ds->GetArray()) {
          def.slicing.discriminators.push_back({parseDiscriminator(memberStr(d, "type")), std::string(memberStr(d, "path"))});
        }
      }
    }
    std::string context_type = profile->elements.empty() ? info.type
                               : def.types.size() == 1 ? def.types[0].code : std::string();
    if (const rapidjson::Value* cs = memberArray(e, "constraint")) {
      for (const auto& c : cs->GetArray()) {
        Constraint constraint;
        constraint.key = std::string(memberStr(c, "key"));
        constraint.is_error = memberStr(c, "severity") != "warning";
        constraint.human = std::string(memberStr(c, "human"));
        constraint.expression = std::string(correctedCoreExpression(constraint.key, memberStr(c, "expression")));
        constraint.source = std::string(memberStr(c, "source"));
        constraint.from_core = constraint.source.starts_with("http://hl7.org/fhir/StructureDefinition/");
        constraint.native = nativeInvariantOf(constraint.key, constraint.expression, profile->url);
        constraint.core_key_without_source =
            constraint.source.empty() && (constraint.key.starts_with("ele-") || constraint.key.starts_with("dom-") ||
                                          constraint.key.starts_with("ext-"));
        constraint.compiled = compileExpressionLocked(constraint.expression, context_type, &constraint.compile_error);
        if (constraint.compiled) {
          constraint.guards = parseInvariantGuards(constraint.expression, &constraint.guards_complete);
        }
        def.constraints.push_back(std::move(constraint));
      }
    }
    profile->elements.push_back(std::move(def));
  }
  if (sd && info.type == "Extension") compileExtensionContexts(*sd, *profile);
  for (uint32_t i = 0; i < profile->elements.size(); ++i) by_id.emplace(profile->elements[i].id, i);
  for (uint32_t i = 1; i < profile->elements.size(); ++i) {
    ElementDef& def = profile->elements[i];
    std::string_view id = def.id;
    std::string_view last = id.substr(id.rfind('.') == std::string_view::npos ? 0 : id.rfind('.') + 1);
    if (size_t colon = last.find(':'); colon != std::string_view::npos) {
      std::string_view sliced = id.substr(0, id.size() - (last.size() - colon));
      if (auto it = by_id.find(sliced); it != by_id.end()) {
        def.slice_of = it->second;
        profile->elements[it->second].slices.push_back(i);
        def.parent = profile->elements[it->second].parent;
      }
      continue;
    }
    if (auto it = by_id.find(parentId(id)); it != by_id.end()) {
      def.parent = it->second;
      profile->elements[it->second].children.push_back(i);
    }
  }
  for (ElementDef& def : profile->elements) {
    def.has_value_rules = def.fixed || def.pattern || def.max_length >= 0 || def.min_length >= 0 || def.min_value ||
                          def.max_value;
    def.has_value_presence_rules = def.must_have_value || !def.value_alternatives.empty();
    def.has_narrative_controls = !def.narrative_language_control.empty() || !def.narrative_source_control.empty();
    def.has_type_profiles = std::any_of(def.types.begin(), def.types.end(), [](const TypeRef& t) { return !t.profiles.empty(); });
    for (uint32_t c : def.children) {
      const ElementDef& child = profile->elements[c];
      ChildSlot slot{nameKey(child.name), c, child.min, child.max, child.min > 0};
      for (uint32_t s : child.slices) slot.check_absent = slot.check_absent || profile->elements[s].min > 0;
      def.child_slots.push_back(std::move(slot));
    }
    for (size_t a = 0; a < def.children.size() && def.unique_child_names; ++a) {
      for (size_t b = a + 1; b < def.children.size(); ++b) {
        if (profile->elements[def.children[a]].name == profile->elements[def.children[b]].name) {
          def.unique_child_names = false;
          break;
        }
      }
    }
  }
  const CompiledProfile* result = profile.get();
  compiled_[&info] = std::move(profile);
  return result;
}

}  // namespace medicus::profiles
