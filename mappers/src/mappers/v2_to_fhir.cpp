#include "medicus/mappers/v2_to_fhir.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "converters.h"
#include "medicus/fhir/type_model.h"

namespace medicus::mappers {

namespace {

struct PathStep {
  std::string property;
  const fhir::ElementInfo* element = nullptr;
  const fhir::TypeInfo* type = nullptr;
};

enum class RequestKind { kUpdate, kCreate, kPost };

// `when: { OBX-2: [NM, SN] }`: applies only when every listed v2 value is one of these ("*" = any
// non-empty value, "" = empty).
struct Condition {
  hl7v2::Location at;
  std::vector<std::string> values;
};

struct FieldRule {
  std::string fhir_path;  // "Encounter.period.start"
  std::vector<PathStep> steps;
  int anchor_step = -1;  // last repeating step: a new node there per v2 repetition
  std::optional<hl7v2::Location> from;
  std::string from_text;
  std::optional<Converter> converter;
  std::map<std::string, std::string> value_map;
  bool has_map = false;
  bool warn_unmapped = true;  // `unmapped: ignore` lets the next source of the element decide
  std::string default_value;
  std::string system;
  std::string constant;
  std::string reference_key;
  bool repeat = true;
  std::vector<Condition> conditions;
  std::optional<hl7v2::Location> unit_from;  // `units:` CWE with the units of a NM/SN/range value
  bool bundle_entry = false;                 // XCN/PL: also a Practitioner/Location entry of the Bundle
  bool each_segment = false;                 // `each_segment: true`: every such segment of the scope
};

struct ResourceRule {
  std::string key;
  const fhir::TypeInfo* type = nullptr;
  RequestKind request = RequestKind::kPost;
  std::string when_segment;
  // `for_each: OBX`: one resource per such segment. Its scope runs from that segment to the next one
  // with the same id or with an id in `until`; v2 locations are looked up in the scope first, then in
  // the segments before it (the group's header: OBR for an OBX, PID for everything).
  std::string for_each;
  std::vector<std::string> until;
  std::vector<Condition> conditions;  // `when:` on the resource, checked in its scope
  std::vector<FieldRule> fields;
};

}  // namespace

class CompiledMap {
 public:
  std::string name;
  std::vector<std::pair<std::string, std::string>> messages;  // (type, trigger)
  MapSettings settings;
  std::vector<ResourceRule> resources;
};

namespace {

[[noreturn]] void fail(const std::string& source, const YAML::Node& node, const std::string& what) {
  std::string where = source;
  if (node.IsDefined() && node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
  throw MapConfigError(where + ": " + what);
}

std::string scalar(const std::string& source, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) fail(source, node, what + " must be a single value");
  return node.Scalar();
}

std::map<std::string, std::string> stringMap(const std::string& source, const YAML::Node& node, const std::string& what) {
  std::map<std::string, std::string> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsMap()) fail(source, node, what + " must be a mapping (key: value)");
  for (const auto& item : node) out[item.first.as<std::string>()] = scalar(source, item.second, what + " value");
  return out;
}

void checkKeys(const std::string& source, const YAML::Node& node, std::initializer_list<std::string_view> allowed,
               const std::string& what) {
  for (const auto& item : node) {
    const std::string key = item.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(source, item.first, "unknown key '" + key + "' in " + what + " (allowed: " + list + ")");
    }
  }
}

std::vector<Condition> compileConditions(const std::string& source, const YAML::Node& when) {
  if (!when.IsMap()) fail(source, when, "'when' must map v2 locations to allowed values, e.g. { OBX-2: [NM, SN] }");
  std::vector<Condition> conditions;
  for (const auto& item : when) {
    const std::string text = item.first.as<std::string>();
    auto location = hl7v2::parseLocation(text);
    if (!location || location->field <= 0) fail(source, item.first, "'" + text + "' is not a v2 location like OBX-2");
    Condition condition{*location, {}};
    if (item.second.IsSequence()) {
      for (const auto& v : item.second) condition.values.push_back(scalar(source, v, "when value"));
    } else {
      condition.values.push_back(scalar(source, item.second, "when value"));
    }
    if (condition.values.empty()) fail(source, item.second, "'when' needs at least one value for " + text);
    conditions.push_back(std::move(condition));
  }
  return conditions;
}

FieldRule compileField(const std::string& source, const ResourceRule& resource, const std::string& path,
                       const YAML::Node& spec, const YAML::Node& at) {
  if (!spec.IsMap()) fail(source, at, "the mapping of '" + path + "' must be { from: ..., as: ... }");
  checkKeys(source, spec,
            {"from", "as", "map", "unmapped", "default", "system", "value", "reference", "repeat", "when", "units",
             "bundle_entry", "each_segment"},
            "the mapping of '" + path + "'");
  FieldRule rule;
  rule.fhir_path = std::string(resource.type->name) + "." + path;
  // Resolve the path against the R4 type model.
  const fhir::TypeInfo* type = resource.type;
  std::stringstream steps(path);
  for (std::string property; std::getline(steps, property, '.');) {
    PathStep step;
    step.property = property;
    if (!type || !type->resolveProperty(property, step.element, step.type)) {
      fail(source, at, "'" + property + "' is not an element of " + std::string(type ? type->name : "?") +
                           " in FHIR R4 (path " + rule.fhir_path + ")");
    }
    if (step.element->repeats()) rule.anchor_step = static_cast<int>(rule.steps.size());
    type = step.type;
    rule.steps.push_back(step);
  }
  if (rule.steps.empty()) fail(source, at, "empty FHIR path");
  const fhir::TypeInfo* leaf = rule.steps.back().type;
  if (spec["when"]) rule.conditions = compileConditions(source, spec["when"]);

  const int sources = spec["from"].IsDefined() + spec["value"].IsDefined() + spec["reference"].IsDefined();
  if (sources != 1) fail(source, spec, "'" + path + "' needs exactly one of from, value or reference");
  if (spec["reference"]) {
    rule.reference_key = scalar(source, spec["reference"], "reference");
    if (leaf->name != "Reference") fail(source, spec, rule.fhir_path + " is a " + std::string(leaf->name) + ", not a Reference");
    return rule;
  }
  if (spec["value"]) {
    rule.constant = scalar(source, spec["value"], "value");
    if (!leaf->isPrimitive()) fail(source, spec, "a constant value needs a primitive element; " + rule.fhir_path + " is " + std::string(leaf->name));
    return rule;
  }
  rule.from_text = scalar(source, spec["from"], "from");
  auto location = hl7v2::parseLocation(rule.from_text);
  if (!location || location->field <= 0) fail(source, spec["from"], "'" + rule.from_text + "' is not a v2 location like PID-5 or PV1-3.1");
  rule.from = *location;
  if (!spec["as"]) fail(source, spec, "'" + path + "' needs 'as' (CX, XPN, XAD, XTN, CWE, PL, XCN, DTM, date, string, code, coding, boolean, text-base64, decimal, NM, SN, SN-range, SN-ratio, ED, reference-range)");
  const std::string as = scalar(source, spec["as"], "as");
  rule.converter = converterFromName(as);
  if (!rule.converter) fail(source, spec["as"], "unknown converter '" + as + "' (CX, XPN, XAD, XTN, CWE, CE, CNE, PL, XCN, TS, DTM, date, string, code, coding, boolean, text-base64, decimal, NM, SN, SN-range, SN-ratio, ED, reference-range)");
  const std::string_view needed = fhirTypeOf(*rule.converter);
  if (!needed.empty() && leaf->name != needed) {
    fail(source, spec["as"], as + " gives a " + std::string(needed) + " but " + rule.fhir_path + " is a " + std::string(leaf->name));
  }
  if (needed.empty() && !leaf->isPrimitive()) {
    fail(source, spec["as"], as + " gives a primitive value but " + rule.fhir_path + " is a " + std::string(leaf->name));
  }
  if (spec["map"]) {
    rule.value_map = stringMap(source, spec["map"], "map");
    rule.has_map = true;
  }
  if (spec["unmapped"]) {
    const std::string unmapped = scalar(source, spec["unmapped"], "unmapped");
    if (unmapped != "warn" && unmapped != "ignore") fail(source, spec["unmapped"], "unmapped must be warn or ignore");
    rule.warn_unmapped = unmapped == "warn";
  }
  if (spec["default"]) rule.default_value = scalar(source, spec["default"], "default");
  if (spec["system"]) rule.system = scalar(source, spec["system"], "system");
  if (*rule.converter == Converter::kCoding && rule.system.empty()) fail(source, spec, "'coding' needs a system");
  if (spec["repeat"]) rule.repeat = spec["repeat"].as<bool>();
  if (spec["units"]) {
    const std::string text = scalar(source, spec["units"], "units");
    auto location = hl7v2::parseLocation(text);
    if (!location || location->field <= 0) fail(source, spec["units"], "'" + text + "' is not a v2 location like OBX-6");
    if (!takesUnits(*rule.converter)) fail(source, spec["units"], "'units' applies only to NM, SN, SN-range, SN-ratio and reference-range");
    rule.unit_from = *location;
  }
  if (spec["each_segment"]) rule.each_segment = spec["each_segment"].as<bool>();
  if (spec["bundle_entry"]) {
    rule.bundle_entry = spec["bundle_entry"].as<bool>();
    if (rule.bundle_entry && *rule.converter != Converter::kXCN && *rule.converter != Converter::kPL) {
      fail(source, spec["bundle_entry"], "'bundle_entry' applies only to XCN (Practitioner) and PL (Location)");
    }
  }
  return rule;
}

std::unique_ptr<CompiledMap> compileMap(const YAML::Node& root, const std::string& source) {
  if (!root.IsMap()) fail(source, root, "a mapping file must be a YAML mapping with messages and resources");
  checkKeys(source, root, {"name", "messages", "default_timezone", "assigning_authorities", "code_systems", "identifier_types", "resources"},
            "the mapping file");
  auto map = std::make_unique<CompiledMap>();
  map->name = root["name"] ? scalar(source, root["name"], "name") : source;
  const YAML::Node messages = root["messages"];
  if (!messages || !messages.IsSequence() || messages.size() == 0) fail(source, root, "'messages' must list message types like [ADT^A01]");
  for (const auto& m : messages) {
    const std::string text = scalar(source, m, "message type");
    const std::size_t hat = text.find('^');
    if (hat == std::string::npos || hat == 0 || hat + 1 == text.size()) fail(source, m, "'" + text + "' is not TYPE^TRIGGER like ADT^A01");
    map->messages.emplace_back(text.substr(0, hat), text.substr(hat + 1));
  }
  if (root["default_timezone"]) {
    map->settings.default_timezone = scalar(source, root["default_timezone"], "default_timezone");
    const std::string& tz = map->settings.default_timezone;
    if (!(tz == "Z" || (tz.size() == 6 && (tz[0] == '+' || tz[0] == '-') && tz[3] == ':'))) {
      fail(source, root["default_timezone"], "default_timezone must be like +01:00 or Z");
    }
  }
  map->settings.assigning_authorities = stringMap(source, root["assigning_authorities"], "assigning_authorities");
  map->settings.code_systems = stringMap(source, root["code_systems"], "code_systems");
  map->settings.identifier_types = stringMap(source, root["identifier_types"], "identifier_types");
  for (const auto& [code, target] : map->settings.identifier_types) {
    const std::size_t bar = target.rfind('|');
    if (bar == std::string::npos || bar == 0 || bar + 1 == target.size()) {
      fail(source, root["identifier_types"], "identifier_types: '" + code + "' must map to SYSTEM|CODE, e.g. http://fhir.de/CodeSystem/identifier-type-de-basis|KVZ10");
    }
  }

  const YAML::Node resources = root["resources"];
  if (!resources || !resources.IsMap()) fail(source, root, "'resources' must map names to resource definitions");
  const fhir::TypeModel& model = fhir::TypeModel::r4();
  for (const auto& item : resources) {
    ResourceRule resource;
    resource.key = item.first.as<std::string>();
    const YAML::Node& spec = item.second;
    if (!spec.IsMap()) fail(source, item.first, "resource '" + resource.key + "' must be a mapping");
    checkKeys(source, spec, {"type", "request", "when_segment", "when", "for_each", "until", "fields"}, "resource '" + resource.key + "'");
    const std::string type = spec["type"] ? scalar(source, spec["type"], "type") : "";
    resource.type = model.find(type);
    if (!resource.type || !resource.type->isResource()) fail(source, spec, "'" + type + "' is not a FHIR R4 resource type");
    if (spec["request"]) {
      const std::string request = scalar(source, spec["request"], "request");
      if (request == "update") resource.request = RequestKind::kUpdate;
      else if (request == "create") resource.request = RequestKind::kCreate;
      else if (request == "post") resource.request = RequestKind::kPost;
      else fail(source, spec["request"], "request must be update, create or post");
    }
    if (spec["when_segment"]) resource.when_segment = scalar(source, spec["when_segment"], "when_segment");
    if (spec["when"]) resource.conditions = compileConditions(source, spec["when"]);
    if (spec["for_each"]) {
      resource.for_each = scalar(source, spec["for_each"], "for_each");
      if (resource.for_each.size() != 3) fail(source, spec["for_each"], "for_each names a segment id like OBX");
    }
    if (const YAML::Node until = spec["until"]) {
      if (resource.for_each.empty()) fail(source, until, "'until' needs 'for_each'");
      if (!until.IsSequence()) fail(source, until, "'until' lists segment ids, e.g. [OBR, ORC, PID]");
      for (const auto& u : until) resource.until.push_back(scalar(source, u, "until"));
    }
    const YAML::Node fields = spec["fields"];
    if (!fields || !fields.IsMap()) fail(source, spec, "resource '" + resource.key + "' needs 'fields'");
    for (const auto& field : fields) {
      const std::string path = field.first.as<std::string>();
      if (field.second.IsSequence()) {
        for (const auto& one : field.second) resource.fields.push_back(compileField(source, resource, path, one, one));
      } else {
        resource.fields.push_back(compileField(source, resource, path, field.second, field.first));
      }
    }
    map->resources.push_back(std::move(resource));
  }
  // References must name resources of this file.
  for (const auto& resource : map->resources) {
    for (const auto& field : resource.fields) {
      if (field.reference_key.empty()) continue;
      const bool found = std::any_of(map->resources.begin(), map->resources.end(),
                                     [&](const ResourceRule& r) { return r.key == field.reference_key; });
      if (!found) fail(source, root["resources"], field.fhir_path + " refers to '" + field.reference_key + "', which is not a resource of this file");
    }
  }
  return map;
}

// ---- mapping

// Name-based UUID (RFC 9562 version 8, "custom"): two FNV-1a 64-bit hashes of the name.
std::string nameUuid(std::string_view name) {
  auto fnv = [&](std::uint64_t seed) {
    std::uint64_t h = seed;
    for (unsigned char c : name) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  };
  std::uint64_t hi = fnv(0xcbf29ce484222325ULL);
  std::uint64_t lo = fnv(0x84222325cbf29ce4ULL ^ hi);
  hi = (hi & ~0xF000ULL) | 0x8000ULL;                        // version 8
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buffer[37];
  std::snprintf(buffer, sizeof buffer, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buffer;
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == '|') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

struct KeyIdentifier {
  std::string system;
  std::string value;
};

// One resource to produce: once per message, or once per `for_each` segment with that segment's scope.
struct Instance {
  const ResourceRule* rule = nullptr;
  int first = -1;  // index of the for_each segment; -1 for a resource of the whole message
  int end = 0;     // end of the scope (exclusive segment index)
  std::string full_url;
  std::optional<KeyIdentifier> key;
  bool emitted = true;  // false when an earlier entry has the same type and key (one entry, shared)
};

class BundleBuilder {
 public:
  BundleBuilder(const CompiledMap& map, const hl7v2::Message& message, MapResult& result)
      : map_(map), message_(message), result_(result), doc_(*result.bundle),
        context_{doc_, message, map.settings} {
    for (std::size_t i = 0; i < message.segmentCount(); ++i) segment_indices_[message.segment(i).id()].push_back(static_cast<int>(i));
  }

  void build() {
    const fhir::TypeModel& model = fhir::TypeModel::r4();
    bundle_ = doc_.createRoot(model.find("Bundle"));
    doc_.addPrimitive(bundle_, "type", "transaction");
    // Pass 1: which resources exist and their fullUrls (references may point forward).
    const int segments = static_cast<int>(message_.segmentCount());
    for (const auto& resource : map_.resources) {
      if (resource.for_each.empty()) {
        Instance instance;
        instance.rule = &resource;
        instance.end = segments;
        scope_ = &instance;
        if (!resource.when_segment.empty() && !message_.findSegment(resource.when_segment)) continue;
        if (!conditionsHold(resource.conditions)) continue;
        addInstance(std::move(instance));
        continue;
      }
      for (int i = 0; i < segments; ++i) {
        if (message_.segment(i).id() != resource.for_each) continue;
        int end = i + 1;
        for (; end < segments; ++end) {
          const std::string_view id = message_.segment(end).id();
          if (id == resource.for_each || std::find(resource.until.begin(), resource.until.end(), id) != resource.until.end()) break;
        }
        Instance instance;
        instance.rule = &resource;
        instance.first = i;
        instance.end = end;
        scope_ = &instance;
        if (!resource.when_segment.empty() && resolve(*hl7v2::parseLocation(resource.when_segment + "-1")).segment_index >= segments) continue;
        if (!conditionsHold(resource.conditions)) continue;
        addInstance(std::move(instance));
      }
    }
    scope_ = nullptr;
    for (const Instance& instance : instances_) {
      if (!instance.emitted) continue;
      scope_ = &instance;
      buildEntry(instance);
    }
  }

 private:
  void addInstance(Instance instance) {
    const ResourceRule& resource = *instance.rule;
    instance.key = keyIdentifier(resource);
    std::string name = std::string(resource.type->name) + "|";
    if (instance.key) {
      name += instance.key->system + "|" + instance.key->value;
    } else {
      if (message_prefix_.empty()) message_prefix_ = message_.get("MSH-3") + "|" + message_.get("MSH-4") + "|" + message_.controlId() + "|";
      name += message_prefix_ + resource.key;
      if (instance.first >= 0) name += "|" + std::to_string(instance.first);
    }
    instance.full_url = "urn:uuid:" + nameUuid(name);
    instance.emitted = emitted_urls_.insert(instance.full_url).second;
    by_key_[resource.key].push_back(instances_.size());
    instances_.push_back(std::move(instance));
  }

  // A v2 location inside the current scope: an explicit occurrence (OBX[2]) as written; otherwise the
  // first such segment of the scope, else the nearest one before it. Absent: an index past the end.
  hl7v2::Location resolve(const hl7v2::Location& from) const {
    if (from.segment_index >= 0) return from;
    hl7v2::Location at = from;
    const auto found = segment_indices_.find(from.segment);
    if (found == segment_indices_.end()) {
      at.segment_index = static_cast<int>(message_.segmentCount());  // absent: past the end
      return at;
    }
    const std::vector<int>& indices = found->second;
    auto take = [&](std::size_t k) {
      at.segment_index = indices[k];
      at.segment_occurrence = static_cast<int>(k) + 1;
      return at;
    };
    if (!scope_ || scope_->first < 0 || from.segment_occurrence > 0) {
      // The whole message: OBX[2] or the first one. The occurrence stays as written, so that a
      // text converter still reads every segment of a message-wide OBX-5.
      const std::size_t k = static_cast<std::size_t>(std::max(from.segment_occurrence, 1)) - 1;
      if (k >= indices.size()) {
        at.segment_index = static_cast<int>(message_.segmentCount());
        return at;
      }
      at.segment_index = indices[k];
      return at;
    }
    const auto in_scope = std::lower_bound(indices.begin(), indices.end(), scope_->first);
    if (in_scope != indices.end() && *in_scope < scope_->end) return take(static_cast<std::size_t>(in_scope - indices.begin()));
    if (in_scope != indices.begin()) return take(static_cast<std::size_t>(in_scope - indices.begin()) - 1);
    at.segment_index = static_cast<int>(message_.segmentCount());
    return at;
  }

  // The identifier a resource is matched on: the first CX or EI mapped to its top-level `identifier`.
  std::optional<KeyIdentifier> keyIdentifier(const ResourceRule& resource) const {
    for (const auto& field : resource.fields) {
      if (field.steps.size() != 1 || field.steps[0].property != "identifier" ||
          (field.converter != Converter::kCX && field.converter != Converter::kEI) || !conditionsHold(field.conditions)) {
        continue;
      }
      const hl7v2::Location at = resolve(*field.from);
      auto get = [&](int comp, int sub) {
        hl7v2::Location l = at;
        l.component = comp;
        l.subcomponent = sub;
        return message_.get(l);
      };
      std::string value = get(1, 0);
      if (value.empty()) continue;
      if (field.converter == Converter::kEI) return KeyIdentifier{identifierSystem(map_.settings, get(2, 0), get(3, 0)), value};
      return KeyIdentifier{identifierSystem(map_.settings, get(4, 1), get(4, 2), get(5, 0)), value};
    }
    return std::nullopt;
  }

  // fullUrls a reference to `key` points to from the current scope: the instances inside the scope
  // (an OBR's observations), else the one whose scope encloses it (the order of an observation), or
  // the one resource of the whole message.
  std::vector<std::string> referenceTargets(const std::string& key) const {
    std::vector<std::string> inside;
    std::string before;
    auto add = [](std::vector<std::string>& to, const std::string& url) {
      if (std::find(to.begin(), to.end(), url) == to.end()) to.push_back(url);
    };
    const auto of_key = by_key_.find(key);
    if (of_key == by_key_.end()) return inside;
    for (const std::size_t index : of_key->second) {
      const Instance& target = instances_[index];
      const std::string& url = target.full_url;  // a duplicate shares its fullUrl with the emitted entry
      if (target.first < 0 || scope_->first < 0) {
        add(inside, url);
      } else if (&target != scope_ && target.first >= scope_->first && target.first < scope_->end) {
        add(inside, url);
      } else if (target.first <= scope_->first && scope_->first < target.end) {
        before = url;  // the target's scope encloses this one (the OBR of an OBX, the PV1 of an order)
      }
    }
    if (inside.empty() && !before.empty()) inside.push_back(before);
    return inside;
  }

  void addRequest(fhir::Node* entry, const std::string& type, const std::optional<KeyIdentifier>& key, RequestKind kind) {
    fhir::Node* request = doc_.addChild(entry, "request");
    const std::string match = key ? "identifier=" + percentEncode(key->system.empty() ? key->value : key->system + "|" + key->value) : "";
    if (key && kind == RequestKind::kUpdate) {
      doc_.addPrimitive(request, "method", "PUT");
      doc_.addPrimitive(request, "url", type + "?" + match);
    } else {
      doc_.addPrimitive(request, "method", "POST");
      doc_.addPrimitive(request, "url", type);
      if (key && kind == RequestKind::kCreate) doc_.addPrimitive(request, "ifNoneExist", match);
    }
  }

  void buildEntry(const Instance& instance) {
    const ResourceRule& rule = *instance.rule;
    fhir::Node* entry = doc_.addChild(bundle_, "entry");
    doc_.addPrimitive(entry, "fullUrl", instance.full_url);
    fhir::Node* resource = doc_.addResource(entry, "resource", rule.type);
    for (const auto& field : rule.fields) applyField(resource, field);
    reportMissingRequired(rule, resource);
    addRequest(entry, std::string(rule.type->name), instance.key, rule.request);
  }

  // An element R4 requires (min 1) that the message left empty: the Bundle is still built, but the
  // receiver will reject it, so say which v2 fields were empty (OBR-4 for DiagnosticReport.code).
  void reportMissingRequired(const ResourceRule& rule, const fhir::Node* resource) {
    for (const fhir::ElementInfo& element : rule.type->elements) {
      if (element.min == 0 || resource->child(element.name)) continue;
      std::string sources;
      for (const auto& field : rule.fields) {
        if (field.steps.front().element != &element || field.from_text.empty()) continue;
        if (sources.find(field.from_text) == std::string::npos) sources += (sources.empty() ? "" : ", ") + field.from_text;
      }
      const std::string path = std::string(rule.type->name) + "." + std::string(element.name);
      std::string text = path + " is required by FHIR R4 but ";
      text += sources.empty() ? "the map gives no value for it" : "the message has no value in " + sources;
      if (scope_ && scope_->first >= 0) text += " (" + rule.for_each + "[" + std::to_string(message_.segment(scope_->first).occurrence()) + "])";
      result_.issues.push_back(MapIssue{MapIssue::Severity::kWarning, sources, path, text + "; the resource will not validate"});
    }
  }

  void issue(const FieldRule& field, std::string message) {
    result_.issues.push_back(MapIssue{MapIssue::Severity::kWarning, field.from_text, field.fhir_path, std::move(message)});
  }

  // Walks to the parent of the leaf, reusing the last repetition of each node except at the repetition
  // anchor. With `join_last` (constants, references and `repeat: false` sources) the anchor reuses the
  // last repetition too, so `link.other` + `link.type` fill one Patient.link.
  fhir::Node* parentFor(fhir::Node* resource, const FieldRule& field, bool join_last = false) {
    fhir::Node* node = resource;
    for (std::size_t i = 0; i + 1 < field.steps.size(); ++i) {
      const PathStep& step = field.steps[i];
      fhir::Node* existing = nullptr;
      if (static_cast<int>(i) != field.anchor_step || join_last) {
        // Above the anchor (and at it when joining): the last repetition, so participant.type after
        // participant.individual completes the same participant.
        for (fhir::Node* c : node->children(step.element->name)) existing = c;
      }
      node = existing ? existing : doc_.addChild(node, step.element, step.type);
    }
    return node;
  }

  // Adds the leaf, or nullptr when a non-repeating leaf is already set (the first source wins).
  fhir::Node* addLeaf(fhir::Node* parent, const FieldRule& field) {
    const PathStep& leaf = field.steps.back();
    if (!leaf.element->repeats() && parent->child(leaf.element->name)) return nullptr;
    return doc_.addChild(parent, leaf.element, leaf.type);
  }

  // A text document in v2 (MDM OBX-5 TX/FT): every repetition of the field, and of the field in every
  // segment with that id when the location names no occurrence (one OBX per line), joined by "\n".
  // For OBX only text value types (OBX-2 TX, FT, ST) count: an ED or HD observation is not a line.
  std::string documentText(const hl7v2::Location& at) const {
    std::string text;
    const int segments = at.segment_occurrence > 0 ? 1 : message_.countSegments(at.segment);
    for (int s = 1; s <= segments; ++s) {
      hl7v2::Location field = at;
      if (at.segment_occurrence <= 0) {
        field.segment_occurrence = s;
        field.segment_index = -1;  // every segment with that id, not the one resolved
      }
      if (field.segment == "OBX") {  // only text observations (OBX-2 value type) are document lines
        const std::string value_type = message_.get("OBX[" + std::to_string(field.segment_occurrence) + "]-2");
        if (value_type != "TX" && value_type != "FT" && value_type != "ST") continue;
      }
      field.repetition = 0;
      const int repetitions = message_.repetitionCount(field);
      for (int r = 1; r <= repetitions; ++r) {
        field.repetition = r;
        if (!text.empty()) text += '\n';
        text += message_.get(field);
      }
    }
    return text;
  }

  std::optional<std::string> primitiveValue(const FieldRule& field, const hl7v2::Location& at) {
    std::string raw = message_.get(at);
    const bool from_default = raw.empty();
    if (from_default) raw = field.default_value;
    if (raw.empty()) return std::nullopt;
    std::string value = raw;
    if (field.has_map) {
      auto it = field.value_map.find(raw);
      if (it == field.value_map.end()) it = field.value_map.find("*");  // any other non-empty value
      if (it != field.value_map.end()) {
        value = it->second;
      } else if (from_default) {
        value = raw;  // a default that is not a key is already the FHIR value
      } else if (!field.default_value.empty()) {
        if (field.warn_unmapped) {
          issue(field, "value '" + raw + "' of " + at.toString() + " is not in the map for " + field.fhir_path +
                           "; the default '" + field.default_value + "' is used");
        }
        auto fallback = field.value_map.find(field.default_value);
        value = fallback == field.value_map.end() ? field.default_value : fallback->second;
      } else {
        if (field.warn_unmapped) {
          issue(field, "value '" + raw + "' of " + at.toString() + " is not in the map for " + field.fhir_path + "; left out");
        }
        return std::nullopt;
      }
    }
    switch (*field.converter) {
      case Converter::kDTM: {
        auto converted = v2DateTimeToFhir(value, map_.settings.default_timezone);
        if (!converted) issue(field, "'" + value + "' at " + at.toString() + " is not a v2 date/time (YYYYMMDDHHMMSS+ZZZZ); left out");
        return converted;
      }
      case Converter::kDate: {
        auto converted = v2DateToFhir(value);
        if (!converted) issue(field, "'" + value + "' at " + at.toString() + " is not a v2 date (YYYYMMDD); left out");
        return converted;
      }
      case Converter::kText: {
        const std::string text = documentText(at);
        if (text.empty()) return std::nullopt;
        return text;
      }
      case Converter::kTextBase64: {
        const std::string text = documentText(at);
        if (text.empty()) return std::nullopt;
        return base64Encode(text);
      }
      case Converter::kDecimal: {
        auto converted = fhirDecimal(value);
        if (!converted) issue(field, "'" + value + "' at " + at.toString() + " is not a number; left out");
        return converted;
      }
      case Converter::kBoolean:
        if (value == "Y" || value == "true") return std::string("true");
        if (value == "N" || value == "false") return std::string("false");
        issue(field, "'" + value + "' at " + at.toString() + " is not Y or N; left out");
        return std::nullopt;
      default:
        return value;
    }
  }

  // Value converters whose failure is the sender's data, not an empty field.
  static bool reportsInvalid(Converter converter) {
    return converter == Converter::kNM || converter == Converter::kED;
  }

  bool conditionsHold(const std::vector<Condition>& conditions) const {
    for (const auto& condition : conditions) {
      const std::string value = message_.get(resolve(condition.at));
      const bool any = !value.empty() && std::find(condition.values.begin(), condition.values.end(), "*") != condition.values.end();
      if (!any && std::find(condition.values.begin(), condition.values.end(), value) == condition.values.end()) return false;
    }
    return true;
  }

  // XCN/PL with `bundle_entry`: the Practitioner or Location as its own entry (conditional create on
  // its identifier; one entry per identifier or name), and the Reference points to it.
  void addEntryFor(Converter converter, fhir::Node* reference, const hl7v2::Location& at) {
    const bool practitioner = converter == Converter::kXCN;
    const fhir::TypeInfo* type = fhir::TypeModel::r4().find(practitioner ? "Practitioner" : "Location");
    std::optional<KeyIdentifier> key;
    const EntityKey entity = practitioner ? practitionerKey(context_, at) : locationKey(context_, at);
    if (!entity.value.empty()) key = KeyIdentifier{entity.system, entity.value};
    const std::string name = std::string(type->name) + "|" +
                             (key ? key->system + "|" + key->value : "name|" + entity.fallback_name);
    const std::string url = "urn:uuid:" + nameUuid(name);
    doc_.addPrimitive(reference, "reference", url);
    if (std::find(side_entries_.begin(), side_entries_.end(), url) != side_entries_.end()) return;
    side_entries_.push_back(url);
    fhir::Node* entry = doc_.addChild(bundle_, "entry");
    doc_.addPrimitive(entry, "fullUrl", url);
    fhir::Node* resource = doc_.addResource(entry, "resource", type);
    if (practitioner) fillPractitioner(context_, resource, at);
    else fillLocation(context_, resource, at);
    addRequest(entry, std::string(type->name), key, RequestKind::kCreate);
  }

  void applyField(fhir::Node* resource, const FieldRule& field) {
    if (!conditionsHold(field.conditions)) return;
    if (!field.reference_key.empty()) {
      const std::vector<std::string> targets = referenceTargets(field.reference_key);
      for (const std::string& url : targets) {  // none when the referenced resource was not produced
        fhir::Node* reference = addLeaf(parentFor(resource, field, true), field);
        if (!reference) break;
        doc_.addPrimitive(reference, "reference", url);
      }
      return;
    }
    if (!field.constant.empty()) {
      if (fhir::Node* leaf = addLeaf(parentFor(resource, field, true), field)) doc_.setValue(leaf, field.constant);
      return;
    }
    std::optional<hl7v2::Location> units;
    if (field.unit_from) units = resolve(*field.unit_from);
    context_.units = units ? &*units : nullptr;
    if (!field.each_segment) {
      applySource(resource, field, resolve(*field.from));
    } else {
      // Every such segment of the scope (the NTEs after an OBX), none before it.
      const int begin = scope_ && scope_->first >= 0 ? scope_->first : 0;
      const int end = scope_ && scope_->first >= 0 ? scope_->end : static_cast<int>(message_.segmentCount());
      for (int i = begin; i < end; ++i) {
        const hl7v2::SegmentView segment = message_.segment(i);
        if (segment.id() != field.from->segment) continue;
        hl7v2::Location at = *field.from;
        at.segment_index = i;
        at.segment_occurrence = segment.occurrence();
        applySource(resource, field, at);
      }
    }
    context_.units = nullptr;
  }

  void applySource(fhir::Node* resource, const FieldRule& field, const hl7v2::Location& from) {
    int repetitions = from.repetition > 0 ? 1 : message_.repetitionCount(from);
    if (!field.repeat || field.anchor_step < 0) repetitions = std::min(repetitions, 1);
    // text and text-base64 read every repetition themselves: one value per segment.
    if (*field.converter == Converter::kText || *field.converter == Converter::kTextBase64) repetitions = std::min(repetitions, 1);
    if (repetitions == 0 && !field.default_value.empty()) repetitions = 1;
    for (int r = 1; r <= repetitions; ++r) {
      hl7v2::Location at = from;
      if (from.repetition == 0) at.repetition = r;
      if (message_.isExplicitNull(at)) continue;  // "" deletes in v2; nothing to send in a create/update
      const std::string_view complex_type = fhirTypeOf(*field.converter);
      if (*field.converter == Converter::kCoding) {
        auto code = primitiveValue(field, at);
        if (!code) continue;
        fhir::Node* coding = addLeaf(parentFor(resource, field, !field.repeat), field);
        if (!coding) continue;
        doc_.addPrimitive(coding, "system", field.system);
        doc_.addPrimitive(coding, "code", *code);
      } else if (!complex_type.empty()) {
        if (message_.raw(at).empty()) continue;
        fhir::Node* parent = parentFor(resource, field, !field.repeat);
        fhir::Node* leaf = addLeaf(parent, field);
        if (!leaf) continue;
        if (!fillComplex(*field.converter, context_, leaf, at)) {
          doc_.removeChild(parent, leaf);
          if (reportsInvalid(*field.converter) && !message_.get(at).empty()) {
            issue(field, "'" + message_.get(at) + "' at " + at.toString() + " is not a valid " +
                             std::string(converterName(*field.converter)) + " value for " + field.fhir_path + "; left out");
          }
        } else if (field.bundle_entry) {
          addEntryFor(*field.converter, leaf, at);
        }
      } else {
        auto value = primitiveValue(field, at);
        if (!value) continue;
        if (fhir::Node* leaf = addLeaf(parentFor(resource, field, !field.repeat), field)) doc_.setValue(leaf, *value);
      }
    }
  }

  const CompiledMap& map_;
  const hl7v2::Message& message_;
  MapResult& result_;
  fhir::Document& doc_;
  ConversionContext context_;
  fhir::Node* bundle_ = nullptr;
  std::vector<Instance> instances_;
  std::unordered_map<std::string_view, std::vector<int>> segment_indices_;  // segment id -> indices, in order
  std::unordered_set<std::string> emitted_urls_;
  std::map<std::string, std::vector<std::size_t>, std::less<>> by_key_;  // resource key -> instances
  std::string message_prefix_;                                           // "MSH-3|MSH-4|MSH-10|"
  const Instance* scope_ = nullptr;
  std::vector<std::string> side_entries_;  // fullUrls of Practitioner/Location entries already written
};

}  // namespace

MapSet::MapSet() = default;
MapSet::~MapSet() = default;

std::shared_ptr<const MapSet> MapSet::fromYaml(std::string_view yaml, std::string source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw MapConfigError(source_name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  std::shared_ptr<MapSet> set(new MapSet());
  set->maps_.push_back(compileMap(root, source_name));
  return set;
}

std::shared_ptr<const MapSet> MapSet::loadDirectory(const std::filesystem::path& folder) {
  if (!std::filesystem::is_directory(folder)) throw MapConfigError(folder.string() + ": mapping folder does not exist");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw MapConfigError(folder.string() + ": no *.yaml mapping files");
  std::shared_ptr<MapSet> set(new MapSet());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    auto one = fromYaml(text.str(), file.string());
    for (auto& map : const_cast<MapSet&>(*one).maps_) {
      for (const auto& [type, trigger] : map->messages) {
        if (set->handles(type, trigger)) throw MapConfigError(file.string() + ": " + type + "^" + trigger + " is already mapped by another file");
      }
      set->maps_.push_back(std::move(map));
    }
  }
  return set;
}

bool MapSet::handles(std::string_view message_type, std::string_view trigger_event) const {
  for (const auto& map : maps_) {
    for (const auto& [type, trigger] : map->messages) {
      if (type == message_type && trigger == trigger_event) return true;
    }
  }
  return false;
}

tl::expected<MapResult, hl7v2::Error> MapSet::map(const hl7v2::Message& message) const {
  const std::string type = message.messageType();
  const std::string trigger = message.triggerEvent();
  const CompiledMap* chosen = nullptr;
  bool type_known = false;
  for (const auto& map : maps_) {
    for (const auto& [t, e] : map->messages) {
      type_known = type_known || t == type;
      if (t == type && e == trigger) chosen = map.get();
    }
  }
  if (!chosen) {
    hl7v2::Error error;
    error.code = type_known ? hl7v2::ErrorCode::kUnsupportedEventCode : hl7v2::ErrorCode::kUnsupportedMessageType;
    error.location = *hl7v2::parseLocation(type_known ? "MSH-9.2" : "MSH-9.1");
    error.location.segment_index = 0;
    error.message = "no mapping handles " + type + "^" + trigger;
    return tl::unexpected(error);
  }
  MapResult result;
  result.bundle = std::make_unique<fhir::Document>();
  BundleBuilder(*chosen, message, result).build();
  return result;
}

}  // namespace medicus::mappers
