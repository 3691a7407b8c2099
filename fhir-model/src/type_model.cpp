#include "medicus/fhir/type_model.h"

#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace medicus::fhir {
namespace generated {
extern const char kTypeModelText[];
}

struct TypeModel::Impl {
  std::deque<TypeInfo> types;  // stable addresses
  std::vector<TypeInfo> type_array;  // contiguous copy exposed by types(); pointers go to `types`
  std::deque<std::vector<ElementInfo>> elements;
  std::deque<std::vector<const TypeInfo*>> type_lists;
  std::unordered_map<std::string_view, const TypeInfo*> by_name;
};

namespace {

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = line.find(sep, start);
    parts.push_back(line.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

PrimitiveKind primitiveKindOf(std::string_view n) {
  if (n == "boolean") return PrimitiveKind::Boolean;
  if (n == "integer") return PrimitiveKind::Integer;
  if (n == "positiveInt") return PrimitiveKind::PositiveInt;
  if (n == "unsignedInt") return PrimitiveKind::UnsignedInt;
  if (n == "decimal") return PrimitiveKind::Decimal;
  if (n == "date") return PrimitiveKind::Date;
  if (n == "dateTime") return PrimitiveKind::DateTime;
  if (n == "instant") return PrimitiveKind::Instant;
  if (n == "time") return PrimitiveKind::Time;
  if (n == "id") return PrimitiveKind::Id;
  if (n == "code") return PrimitiveKind::Code;
  if (n == "uri" || n == "url" || n == "canonical") return PrimitiveKind::Uri;
  if (n == "oid") return PrimitiveKind::Oid;
  if (n == "uuid") return PrimitiveKind::Uuid;
  if (n == "base64Binary") return PrimitiveKind::Base64Binary;
  if (n == "xhtml") return PrimitiveKind::Xhtml;
  return PrimitiveKind::String;  // string, markdown
}

TypeModel::Impl* buildR4() {
  auto* impl = new TypeModel::Impl();
  std::string_view text(generated::kTypeModelText);
  struct PendingElement {
    std::vector<std::string_view> fields;
  };
  struct PendingType {
    TypeInfo* type;
    std::string_view base;
    std::vector<PendingElement> elements;
  };
  std::vector<PendingType> pending;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    auto f = split(line, '|');
    if (f[0] == "T") {
      TypeInfo& t = impl->types.emplace_back();
      t.name = f[1];
      t.kind = f[2] == "P" ? TypeKind::Primitive : f[2] == "C" ? TypeKind::Complex : f[2] == "R" ? TypeKind::Resource : TypeKind::Backbone;
      t.is_abstract = f[3] == "1";
      t.json_kind = f[5] == "N" ? JsonValueKind::Number : f[5] == "B" ? JsonValueKind::Boolean : JsonValueKind::String;
      if (t.kind == TypeKind::Primitive) t.primitive_kind = primitiveKindOf(t.name);
      impl->by_name.emplace(t.name, &t);
      pending.push_back({&t, f[4], {}});
    } else if (f[0] == "E" && !pending.empty()) {
      pending.back().elements.push_back({std::move(f)});
    }
  }
  for (auto& p : pending) {
    if (!p.base.empty()) {
      auto it = impl->by_name.find(p.base);
      p.type->base = it == impl->by_name.end() ? nullptr : it->second;
    }
    auto& elements = impl->elements.emplace_back();
    elements.reserve(p.elements.size());
    for (auto& pe : p.elements) {
      auto& f = pe.fields;
      ElementInfo& e = elements.emplace_back();
      e.name = f[1];
      e.path = f[2];
      e.min = static_cast<uint32_t>(std::stoul(std::string(f[3])));
      e.max = f[4] == "*" ? kUnbounded : static_cast<uint32_t>(std::stoul(std::string(f[4])));
      e.index = static_cast<uint16_t>(elements.size() - 1);
      e.is_choice = f[5].find('c') != std::string_view::npos;
      e.is_xml_attribute = f[5].find('a') != std::string_view::npos;
      e.is_modifier = f[5].find('m') != std::string_view::npos;
      e.is_summary = f[5].find('s') != std::string_view::npos;
      e.owner = p.type;
      auto& list = impl->type_lists.emplace_back();
      if (!f[6].empty()) {
        for (auto name : split(f[6], ',')) {
          auto it = impl->by_name.find(name);
          if (it != impl->by_name.end()) list.push_back(it->second);
        }
      }
      e.types = std::span<const TypeInfo* const>(list.data(), list.size());
    }
    p.type->elements = std::span<const ElementInfo>(elements.data(), elements.size());
  }
  return impl;
}

}  // namespace

TypeModel::TypeModel(const Impl* impl) : impl_(impl) {
  string_type = find("string");
  extension_type = find("Extension");
  resource_type = find("Resource");
}

const TypeModel& TypeModel::r4() {
  // Built once, never destroyed: the model is referenced from every node for the process lifetime.
  static const TypeModel* model = new TypeModel(buildR4());
  return *model;
}

const TypeInfo* TypeModel::find(std::string_view name) const {
  auto it = impl_->by_name.find(name);
  return it == impl_->by_name.end() ? nullptr : it->second;
}

std::span<const TypeInfo> TypeModel::types() const {
  // The deque is not contiguous; expose through by_name for iteration needs. Callers wanting all
  // types iterate this span, which is a snapshot copy made once.
  static const std::vector<TypeInfo> all(impl_->types.begin(), impl_->types.end());
  return {all.data(), all.size()};
}

bool TypeInfo::isA(const TypeInfo* other) const {
  for (const TypeInfo* t = this; t != nullptr; t = t->base) {
    if (t == other) return true;
  }
  return false;
}

bool TypeInfo::isA(std::string_view other_name) const {
  for (const TypeInfo* t = this; t != nullptr; t = t->base) {
    if (t->name == other_name) return true;
  }
  return false;
}

const ElementInfo* TypeInfo::findElement(std::string_view element_name) const {
  // Names differ mostly in length or first letter: compare those before the bytes.
  const size_t size = element_name.size();
  if (size == 0) return nullptr;
  for (const auto& e : elements) {
    if (e.name.size() == size && e.name[0] == element_name[0] && e.name == element_name) return &e;
  }
  return nullptr;
}

const TypeInfo* ElementInfo::choiceTypeForSuffix(std::string_view suffix) const {
  if (suffix.empty()) return nullptr;
  for (const TypeInfo* t : types) {
    std::string_view n = t->name;
    if (n.size() != suffix.size()) continue;
    // The suffix capitalises the first letter of the type name: valueString, valueQuantity.
    char first = n[0];
    if (first >= 'a' && first <= 'z') first = static_cast<char>(first - 'a' + 'A');
    if (first == suffix[0] && n.substr(1) == suffix.substr(1)) return t;
  }
  return nullptr;
}

bool TypeInfo::resolveProperty(std::string_view property, const ElementInfo*& element, const TypeInfo*& type) const {
  if (property.empty()) return false;
  for (const auto& e : elements) {
    std::string_view n = e.name;
    // Cheap rejects first: this runs for every JSON property and XML element read.
    if (n[0] != property[0] || property.size() < n.size()) continue;
    if (!e.is_choice && property.size() != n.size()) continue;
    if (std::memcmp(property.data(), n.data(), n.size()) != 0) continue;
    if (!e.is_choice) {
      if (property.size() == n.size()) {
        element = &e;
        type = e.types.empty() ? nullptr : e.types[0];
        return type != nullptr;
      }
      continue;
    }
    const TypeInfo* t = e.choiceTypeForSuffix(property.substr(n.size()));
    if (t != nullptr) {
      element = &e;
      type = t;
      return true;
    }
  }
  return false;
}

std::string_view capitalizedTypeName(const TypeInfo& type, char* buffer, size_t buffer_size) {
  std::string_view n = type.name;
  if (n.empty() || n.size() > buffer_size) return n;
  std::memcpy(buffer, n.data(), n.size());
  if (buffer[0] >= 'a' && buffer[0] <= 'z') buffer[0] = static_cast<char>(buffer[0] - 'a' + 'A');
  return {buffer, n.size()};
}

}  // namespace medicus::fhir
