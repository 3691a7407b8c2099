// FHIR JSON -> element tree (http://hl7.org/fhir/R4/json.html).
// Two steps: RapidJSON's SAX reader builds a small generic tree with byte offsets (the DOM keeps none),
// then a walk driven by the type model turns it into Nodes, merging "x"/"_x" pairs and reporting every
// problem with its FHIRPath location and line:col.
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <bitset>
#include <memory_resource>
#include <pugixml.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "medicus/fhir/format.h"
#include "source_issues.h"
#include <cstring>

namespace medicus::fhir {
namespace {

struct JVal {
  enum Kind : uint8_t { Null, False, True, Number, String, Object, Array };
  Kind kind = Null;
  uint32_t offset = 0;      // where the value starts
  uint32_t key_offset = 0;  // where the member's key starts (object members)
  uint32_t count = 0;       // members / items
  std::string_view text;    // string or number text
  std::string_view key;     // member name
  JVal* first = nullptr;
  JVal* last = nullptr;
  JVal* next = nullptr;
};

const char* kindName(JVal::Kind k) {
  switch (k) {
    case JVal::Null: return "null";
    case JVal::False:
    case JVal::True: return "a boolean";
    case JVal::Number: return "a number";
    case JVal::String: return "a string";
    case JVal::Object: return "an object";
    case JVal::Array: return "an array";
  }
  return "a value";
}

// Shared by both readers below: the report for a primitive whose JSON kind is wrong, and the content
// checks of a primitive's text (well-formed narrative XHTML, the type's lexical rules).
void reportWrongJsonKind(SourceIssues& issues, const Node& node, const TypeInfo& type, uint32_t offset,
                         const char* got) {
  JsonValueKind want = type.json_kind;
  const char* expected = want == JsonValueKind::String ? "a JSON string" : want == JsonValueKind::Number ? "a JSON number" : "true or false";
  issues.report(Severity::Error, IssueType::Structure, offset, pathOf(node),
                "The value of " + std::string(node.name()) + " (" + std::string(type.name) + ") must be " + expected +
                    ", not " + got,
                "json.primitive-type");
}

void checkPrimitiveText(SourceIssues& issues, const Node& node, const TypeInfo& type, std::string_view text,
                        uint32_t offset) {
  if (type.primitive_kind == PrimitiveKind::Xhtml) {
    pugi::xml_document div;
    auto result = div.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!result || std::string_view(div.document_element().name()) != "div") {
      issues.report(Severity::Error, IssueType::Value, offset, pathOf(node),
                    std::string("The narrative is not well-formed XHTML: ") +
                        (result ? "the root element must be <div>" : result.description()),
                    "xhtml.well-formed");
    }
    return;
  }
  std::string problem = checkPrimitiveValue(type, text);
  if (problem.empty()) return;
  std::string shown(text.substr(0, 60));
  if (text.size() > 60) shown += "...";
  issues.report(Severity::Error, IssueType::Value, offset, pathOf(node),
                "The value '" + shown + "' of " + std::string(node.name()) + " (" + std::string(type.name) + ") " + problem,
                "type." + std::string(type.name));
}

// SAX handler: builds the generic tree in a scratch arena.
class TreeBuilder {
 public:
  TreeBuilder(std::pmr::memory_resource* arena, const char* base, uint32_t max_depth)
      : arena_(arena), base_(base), max_depth_(max_depth) {}

  rapidjson::InsituStringStream* stream = nullptr;
  uint32_t bom = 0;  // the stream starts after a byte order mark
  JVal* root = nullptr;
  bool too_deep = false;
  uint32_t too_deep_offset = 0;

  bool Null() { return add(JVal::Null, tell() - 4); }
  bool Bool(bool b) { return add(b ? JVal::True : JVal::False, tell() - (b ? 4 : 5)); }
  bool Int(int) { return false; }  // never called: numbers arrive as RawNumber
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    JVal* v = make(JVal::Number, offsetOf(str));
    v->text = {str, length};
    return attach(v);
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    JVal* v = make(JVal::String, offsetOf(str) - 1);
    v->text = {str, length};
    return attach(v);
  }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    pending_key_ = {str, length};
    pending_key_offset_ = offsetOf(str) - 1;
    return true;
  }
  bool StartObject() { return open(JVal::Object); }
  bool EndObject(rapidjson::SizeType) { stack_.pop_back(); return true; }
  bool StartArray() { return open(JVal::Array); }
  bool EndArray(rapidjson::SizeType) { stack_.pop_back(); return true; }

 private:
  uint32_t tell() const { return static_cast<uint32_t>(stream->Tell()) + bom; }
  uint32_t offsetOf(const char* p) const { return static_cast<uint32_t>(p - base_); }

  JVal* make(JVal::Kind kind, uint32_t offset) {
    JVal* v = new (arena_->allocate(sizeof(JVal), alignof(JVal))) JVal();
    v->kind = kind;
    v->offset = offset;
    return v;
  }
  bool add(JVal::Kind kind, uint32_t offset) { return attach(make(kind, offset)); }

  bool attach(JVal* v) {
    if (stack_.empty()) {
      root = v;
      return true;
    }
    JVal* parent = stack_.back();
    if (parent->kind == JVal::Object) {
      v->key = pending_key_;
      v->key_offset = pending_key_offset_;
    }
    if (parent->last) parent->last->next = v; else parent->first = v;
    parent->last = v;
    ++parent->count;
    return true;
  }

  bool open(JVal::Kind kind) {
    JVal* v = make(kind, tell() - 1);
    attach(v);
    if (stack_.size() >= max_depth_) {
      too_deep = true;
      too_deep_offset = v->offset;
      return false;
    }
    stack_.push_back(v);
    return true;
  }

  std::pmr::memory_resource* arena_;
  const char* base_;
  uint32_t max_depth_;
  std::vector<JVal*> stack_;
  std::string_view pending_key_;
  uint32_t pending_key_offset_ = 0;
};

// Walks the generic tree into Nodes.
class FhirWalker {
 public:
  FhirWalker(Document& doc, Issues& issues, const ParseOptions& options, std::string_view source)
      : doc_(doc), issues_(issues, source), options_(options), model_(TypeModel::r4()) {}

  Node* walkRoot(const JVal* value) {
    if (value->kind != JVal::Object) {
      report(Severity::Fatal, IssueType::Structure, value->offset, "",
             std::string("The JSON must be an object with a resourceType, not ") + kindName(value->kind), "json.root");
      return nullptr;
    }
    const TypeInfo* type = resourceTypeOf(value, "");
    if (type == nullptr) return nullptr;
    Node* root = doc_.createRoot(type);
    doc_.setSourceOffset(root, value->offset);
    walkObject(root, value, type);
    return root;
  }

 private:
  void report(Severity severity, IssueType type, uint32_t offset, std::string expression, std::string message,
              std::string rule) {
    issues_.report(severity, type, offset, std::move(expression), std::move(message), std::move(rule));
  }

  // The resource type named by "resourceType" in an object, or nullptr (reported).
  const TypeInfo* resourceTypeOf(const JVal* object, const std::string& where) {
    for (const JVal* m = object->first; m != nullptr; m = m->next) {
      if (m->key != "resourceType") continue;
      if (m->kind != JVal::String) {
        report(Severity::Fatal, IssueType::Structure, m->key_offset, where, "resourceType must be a string",
               "json.resource-type");
        return nullptr;
      }
      const TypeInfo* type = model_.find(m->text);
      if (type == nullptr || !type->isResource() || type->is_abstract) {
        report(Severity::Fatal, IssueType::Structure, m->offset, where,
               "Unknown resourceType '" + std::string(m->text) + "' (not an R4 resource type; check spelling and case)",
               "json.resource-type");
        return nullptr;
      }
      return type;
    }
    report(Severity::Fatal, IssueType::Structure, object->offset, where,
           "The object has no resourceType property, so it cannot be read as a FHIR resource", "json.resource-type");
    return nullptr;
  }

  void duplicate(const Node* node, const JVal* member) {
    report(Severity::Error, IssueType::Structure, member->key_offset, pathOf(*node),
           "Duplicate property '" + std::string(member->key) + "': each property may appear only once (the second is ignored)",
           "json.duplicate-key");
  }

  // Two passes: members are first sorted into one slot per element (value and "_x" part), which finds
  // duplicates and pairs without string building; then elements are visited in definition order, so
  // children are appended in order.
  void walkObject(Node* node, const JVal* object, const TypeInfo* type) {
    if (object->count == 0) {
      report(Severity::Error, IssueType::Structure, object->offset, pathOf(*node),
             "Empty object: FHIR elements must have content (leave the element out instead)", "json.empty-object");
      return;
    }
    size_t n = type->elements.size();
    if (slots_.size() <= depth_) slots_.resize(depth_ + 1);
    Slots& slots = slots_[depth_];
    slots.value.assign(n, nullptr);
    slots.extension.assign(n, nullptr);
    for (const JVal* m = object->first; m != nullptr; m = m->next) {
      std::string_view key = m->key;
      if (type->isResource() && key == "resourceType") continue;
      bool underscore = !key.empty() && key[0] == '_';
      std::string_view property = underscore ? key.substr(1) : key;
      const ElementInfo* element = nullptr;
      const TypeInfo* element_type = nullptr;
      if (!type->resolveProperty(property, element, element_type)) {
        if (key == "fhir_comments") {
          report(Severity::Warning, IssueType::Structure, m->key_offset, pathOf(*node),
                 "fhir_comments is not part of FHIR R4 JSON and is ignored", "json.fhir-comments");
        } else {
          unknownProperty(node, m, type);
        }
        continue;
      }
      std::vector<const JVal*>& slot = underscore ? slots.extension : slots.value;
      const JVal*& place = slot[element->index];
      if (place != nullptr) {
        // The same key twice, or two choices of one element (valueString and valueInteger).
        duplicate(node, m);
        continue;
      }
      if (underscore && (!element_type->isPrimitive() || element->is_xml_attribute)) {
        report(Severity::Error, IssueType::Structure, m->key_offset, pathOf(*node),
               "'" + std::string(key) + "' is only allowed for primitive elements", "json.underscore-not-primitive");
        continue;
      }
      place = m;
    }
    // The recursion below reuses deeper slot levels, never this one.
    ++depth_;
    for (size_t i = 0; i < n; ++i) {
      const JVal* value = slots_[depth_ - 1].value[i];
      const JVal* extension = slots_[depth_ - 1].extension[i];
      if (value == nullptr && extension == nullptr) continue;
      const ElementInfo* element = &type->elements[i];
      const JVal* named = value ? value : extension;
      std::string_view property = named->key;
      if (named == extension) property.remove_prefix(1);
      const TypeInfo* element_type = element->singleType();
      if (element->is_choice) {
        element_type = element->choiceTypeForSuffix(property.substr(element->name.size()));
        if (value && extension && extension->key.substr(1) != value->key) {
          report(Severity::Error, IssueType::Structure, extension->key_offset, pathOf(*node),
                 "'" + std::string(extension->key) + "' does not match '" + std::string(value->key) + "'",
                 "json.underscore-mismatch");
          extension = nullptr;
        }
      }
      walkProperty(node, element, element_type, named, value, extension);
    }
    --depth_;
  }

  void unknownProperty(Node* node, const JVal* member, const TypeInfo* type) {
    std::string message = "Unknown element '" + std::string(member->key) + "' in " + std::string(type->name);
    if (type->isResource() || type->kind == TypeKind::Backbone || type->kind == TypeKind::Complex) {
      message += ": it is not defined in FHIR R4; check the spelling, or carry extra data in an extension";
    }
    report(options_.unknown_elements_are_warnings ? Severity::Warning : Severity::Error, IssueType::Structure,
           member->key_offset, pathOf(*node), std::move(message), "json.unknown-element");
    doc_.markUnknownContent(node);
  }

  // One property (value and/or its "_x" extension part), repeated or not.
  void walkProperty(Node* parent, const ElementInfo* element, const TypeInfo* type, const JVal* member,
                    const JVal* value, const JVal* extension) {
    bool repeats = element->repeats();
    auto expectArray = [&](const JVal* v) -> bool {
      if (v == nullptr) return true;
      if (repeats && v->kind != JVal::Array) {
        report(Severity::Error, IssueType::Structure, v->key_offset, pathOf(*parent) + "." + std::string(element->name),
               "'" + std::string(v->key) + "' repeats (max " + maxText(element) + "), so it must be a JSON array, not " +
                   kindName(v->kind),
               "json.array-expected");
        return false;
      }
      if (!repeats && v->kind == JVal::Array) {
        report(Severity::Error, IssueType::Structure, v->key_offset, pathOf(*parent) + "." + std::string(element->name),
               "'" + std::string(v->key) + "' has at most one value, so it must not be an array", "json.array-unexpected");
        return false;
      }
      if (v->kind == JVal::Array && v->count == 0) {
        report(Severity::Error, IssueType::Structure, v->key_offset, pathOf(*parent) + "." + std::string(element->name),
               "Empty array '" + std::string(v->key) + "': leave the property out instead", "json.empty-array");
      }
      return true;
    };
    bool value_ok = expectArray(value);
    bool ext_ok = expectArray(extension);
    if (!value_ok) value = nullptr;
    if (!ext_ok) extension = nullptr;
    if (value == nullptr && extension == nullptr) return;

    if (!repeats) {
      walkItem(parent, element, type, value, extension, member);
      return;
    }
    const JVal* v = value ? value->first : nullptr;
    const JVal* e = extension ? extension->first : nullptr;
    if (value && extension && value->count != extension->count) {
      report(Severity::Error, IssueType::Structure, extension->key_offset, pathOf(*parent),
             "'" + std::string(extension->key) + "' has " + std::to_string(extension->count) + " entries but '" +
                 std::string(value->key) + "' has " + std::to_string(value->count) + ": they must line up one to one",
             "json.underscore-length");
    }
    while (v != nullptr || e != nullptr) {
      walkItem(parent, element, type, v, e, v ? v : e);
      if (v) v = v->next;
      if (e) e = e->next;
    }
  }

  static std::string maxText(const ElementInfo* e) {
    return e->max == kUnbounded ? "*" : std::to_string(e->max);
  }

  void walkItem(Node* parent, const ElementInfo* element, const TypeInfo* type, const JVal* value,
                const JVal* extension, const JVal* where) {
    if (value != nullptr && value->kind == JVal::Null) value = nullptr;
    if (extension != nullptr && extension->kind == JVal::Null) extension = nullptr;
    uint32_t offset = where->key_offset ? where->key_offset : where->offset;
    if (value == nullptr && extension == nullptr) {
      report(Severity::Error, IssueType::Structure, where->offset, pathOf(*parent) + "." + std::string(element->name),
             "null is only allowed inside a primitive array that has a matching '_' entry", "json.null");
      return;
    }
    if (type->isPrimitive()) {
      Node* node = doc_.addChild(parent, element, type);
      doc_.setSourceOffset(node, offset);
      if (value != nullptr) setPrimitive(node, type, value);
      if (extension != nullptr) {
        if (extension->kind != JVal::Object) {
          report(Severity::Error, IssueType::Structure, extension->offset, pathOf(*node),
                 "The '_' part of a primitive must be an object with id and/or extension", "json.underscore-object");
        } else {
          walkObject(node, extension, type);
        }
      }
      return;
    }
    if (value == nullptr) return;
    if (value->kind != JVal::Object) {
      report(Severity::Error, IssueType::Structure, value->offset, pathOf(*parent) + "." + std::string(element->name),
             "'" + std::string(element->name) + "' is a " + std::string(type->name) + " and must be a JSON object, not " +
                 kindName(value->kind),
             "json.object-expected");
      return;
    }
    const TypeInfo* actual = type;
    if (type->isResource()) {
      // contained, Bundle.entry.resource, Parameters.parameter.resource: the object names its type.
      actual = resourceTypeOf(value, pathOf(*parent) + "." + std::string(element->name));
      if (actual == nullptr) return;
    }
    Node* node = doc_.addChild(parent, element, actual);
    doc_.setSourceOffset(node, offset);
    walkObject(node, value, actual);
  }

  void setPrimitive(Node* node, const TypeInfo* type, const JVal* value) {
    JsonValueKind want = type->json_kind;
    bool kind_ok = (want == JsonValueKind::String && value->kind == JVal::String) ||
                   (want == JsonValueKind::Number && value->kind == JVal::Number) ||
                   (want == JsonValueKind::Boolean && (value->kind == JVal::True || value->kind == JVal::False));
    if (!kind_ok) {
      reportWrongJsonKind(issues_, *node, *type, value->offset, kindName(value->kind));
      if (value->kind == JVal::Object || value->kind == JVal::Array) return;
    }
    std::string_view text = value->kind == JVal::True ? std::string_view("true")
                            : value->kind == JVal::False ? std::string_view("false")
                                                         : value->text;
    doc_.setValueNoCopy(node, text);
    checkPrimitiveText(issues_, *node, *type, text, value->offset);
  }

  Document& doc_;
  SourceIssues issues_;
  const ParseOptions& options_;
  const TypeModel& model_;
  // Per nesting level: for each element of the type, its value member and its "_x" member.
  struct Slots {
    std::vector<const JVal*> value;
    std::vector<const JVal*> extension;
  };
  static inline thread_local std::vector<Slots> slots_;  // reused across documents
  uint32_t depth_ = 0;
};


// The fast path: a SAX handler that builds Nodes directly from RapidJSON's events, driven by the type
// model, with no intermediate tree. It handles everything the generic walker does, except an object
// whose "resourceType" is not its first property: then it gives up (`fallback`) and the caller re-reads
// the document with the generic walker, which sees whole objects at once.
class DirectBuilder {
 public:
  DirectBuilder(Document& doc, Issues& issues, const ParseOptions& options, std::string_view source, const char* base)
      : doc_(doc), issues_(issues, source), options_(options), base_(base), model_(TypeModel::r4()) {}

  rapidjson::InsituStringStream* stream = nullptr;
  uint32_t bom = 0;
  bool fallback = false;   // resourceType was not first: re-read with the generic walker
  bool too_deep = false;
  uint32_t too_deep_offset = 0;
  Node* root = nullptr;
  bool fatal = false;      // the root could not be read as a resource

  bool Null() { return scalar(kNull, tell() - 4, {}); }
  bool Bool(bool b) { return scalar(b ? kTrue : kFalse, tell() - (b ? 4 : 5), b ? "true" : "false"); }
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) { return scalar(kNumber, offsetOf(str), {str, length}); }
  bool String(const char* str, rapidjson::SizeType length, bool) { return scalar(kString, offsetOf(str) - 1, {str, length}); }

  bool Key(const char* str, rapidjson::SizeType length, bool) {
    Frame& f = frames_.back();
    f.key = {str, length};
    f.key_offset = offsetOf(str) - 1;
    ++f.members;
    if (f.skip) return true;
    if (f.pending_resource) {
      // The type of a resource object comes from its first property.
      if (f.key != "resourceType") {
        fallback = true;
        return false;
      }
      f.expect_resource_type = true;
      return true;
    }
    f.element = nullptr;
    f.underscore = !f.key.empty() && f.key[0] == '_';
    std::string_view property = f.underscore ? f.key.substr(1) : f.key;
    if (f.type->isResource() && f.key == "resourceType") {
      report(Severity::Error, IssueType::Structure, f.key_offset, pathOf(*f.node),
             "Duplicate property 'resourceType'", "json.duplicate-key");
      return true;
    }
    const ElementInfo* element = nullptr;
    const TypeInfo* element_type = nullptr;
    if (!f.type->resolveProperty(property, element, element_type)) {
      if (f.key == "fhir_comments") {
        report(Severity::Warning, IssueType::Structure, f.key_offset, pathOf(*f.node),
               "fhir_comments is not part of FHIR R4 JSON and is ignored", "json.fhir-comments");
      } else {
        report(options_.unknown_elements_are_warnings ? Severity::Warning : Severity::Error, IssueType::Structure,
               f.key_offset, pathOf(*f.node),
               "Unknown element '" + std::string(f.key) + "' in " + std::string(f.type->name) +
                   ": it is not defined in FHIR R4; check the spelling, or carry extra data in an extension",
               "json.unknown-element");
        doc_.markUnknownContent(f.node);
      }
      return true;
    }
    if (f.underscore && (!element_type->isPrimitive() || element->is_xml_attribute)) {
      report(Severity::Error, IssueType::Structure, f.key_offset, pathOf(*f.node),
             "'" + std::string(f.key) + "' is only allowed for primitive elements", "json.underscore-not-primitive");
      return true;
    }
    auto& seen = f.underscore ? f.seen_extension : f.seen_value;
    if (seen.test(element->index)) {
      report(Severity::Error, IssueType::Structure, f.key_offset, pathOf(*f.node),
             "Duplicate property '" + std::string(f.key) + "': each property may appear only once (the second is ignored)",
             "json.duplicate-key");
      return true;
    }
    seen.set(element->index);
    // The value and the "_x" part of one primitive must name the same choice type.
    auto& other = f.underscore ? f.seen_value : f.seen_extension;
    if (other.test(element->index) && element->is_choice) {
      Node* existing = firstChildOf(f.node, element);
      if (existing != nullptr && existing->type() != element_type) {
        report(Severity::Error, IssueType::Structure, f.key_offset, pathOf(*f.node),
               "'" + std::string(f.key) + "' does not match the type of its value or '_' part", "json.underscore-mismatch");
        return true;
      }
    }
    f.element = element;
    f.element_type = element_type;
    return true;
  }

  bool StartObject() { return open(true, tell() - 1); }
  bool StartArray() { return open(false, tell() - 1); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }

 private:
  enum ScalarKind : uint8_t { kNull, kTrue, kFalse, kNumber, kString };

  struct Frame {
    bool is_object = true;
    bool skip = false;              // contents are ignored (already reported)
    bool pending_resource = false;  // an object for a resource, waiting for its resourceType
    bool expect_resource_type = false;
    bool underscore = false;        // current key / array is a "_x" part
    bool saw_null = false;          // a primitive array had nulls: check they got an extension
    Node* node = nullptr;           // object: the node whose properties these are; array: the parent
    const TypeInfo* type = nullptr; // the node's type
    const ElementInfo* element = nullptr;     // current property
    const TypeInfo* element_type = nullptr;
    const ElementInfo* resource_element = nullptr;  // pending resource: the element it belongs to
    Node* resource_parent = nullptr;
    Node* cursor = nullptr;         // "_x" array merging: next existing node of the element
    uint32_t members = 0;           // object members / array items seen
    uint32_t offset = 0;
    uint32_t key_offset = 0;
    std::string_view key;
    std::bitset<128> seen_value, seen_extension;
  };

  uint32_t tell() const { return static_cast<uint32_t>(stream->Tell()) + bom; }
  uint32_t offsetOf(const char* p) const { return static_cast<uint32_t>(p - base_); }

  void report(Severity severity, IssueType type, uint32_t offset, std::string expression, std::string message,
              std::string rule) {
    issues_.report(severity, type, offset, std::move(expression), std::move(message), std::move(rule));
  }

  static Node* firstChildOf(Node* parent, const ElementInfo* element) {
    for (Node* c = parent->firstChild(); c != nullptr; c = c->nextSibling()) {
      if (c->element() == element) return c;
    }
    return nullptr;
  }

  std::string elementPath(const Frame& f) const { return pathOf(*f.node) + "." + std::string(f.element->name); }

  static const char* kindName(ScalarKind k) {
    switch (k) {
      case kNull: return "null";
      case kTrue:
      case kFalse: return "a boolean";
      case kNumber: return "a number";
      case kString: return "a string";
    }
    return "a value";
  }

  void pushSkip(bool is_object, uint32_t offset) {
    Frame f;
    f.is_object = is_object;
    f.skip = true;
    f.offset = offset;
    frames_.push_back(f);
  }

  // The object or array that holds the value being read: where it goes and as what.
  struct Slot {
    Frame* frame = nullptr;  // object frame that owns the property
    bool in_array = false;
  };

  Slot slot() {
    Slot s;
    if (frames_.empty()) return s;
    Frame& top = frames_.back();
    if (top.is_object) {
      s.frame = &top;
    } else {
      s.frame = &frames_[frames_.size() - 2];
      s.in_array = true;
    }
    return s;
  }

  bool open(bool is_object, uint32_t offset) {
    if (frames_.size() >= options_.max_depth) {
      too_deep = true;
      too_deep_offset = offset;
      return false;
    }
    if (frames_.empty()) {
      if (!is_object) {
        report(Severity::Fatal, IssueType::Structure, offset, "", "The JSON must be an object with a resourceType, not an array",
               "json.root");
        fatal = true;
        return false;
      }
      Frame f;
      f.pending_resource = true;
      f.offset = offset;
      frames_.push_back(f);
      return true;
    }
    Frame& top = frames_.back();
    if (top.skip || (top.is_object && top.element == nullptr && !top.pending_resource)) {
      pushSkip(is_object, offset);
      return true;
    }
    if (top.is_object && top.expect_resource_type) {
      fatalResourceType(top, offset, "resourceType must be a string");
      return false;
    }
    Slot s = slot();
    Frame& owner = *s.frame;
    if (!s.in_array) ++frames_.back().members, --frames_.back().members;  // members counted at Key
    if (s.in_array) ++frames_.back().members;
    const ElementInfo* e = owner.element;
    const TypeInfo* t = owner.element_type;
    uint32_t where = s.in_array ? offset : owner.key_offset;
    if (!is_object) {
      // An array: right only for a repeating element, and never inside another array.
      if (s.in_array) {
        report(Severity::Error, IssueType::Structure, offset, elementPath(owner), "Arrays inside arrays are not FHIR JSON",
               "json.nested-array");
        pushSkip(false, offset);
        return true;
      }
      if (!e->repeats()) {
        report(Severity::Error, IssueType::Structure, owner.key_offset, elementPath(owner),
               "'" + std::string(owner.key) + "' has at most one value, so it must not be an array", "json.array-unexpected");
        pushSkip(false, offset);
        return true;
      }
      Frame f;
      f.is_object = false;
      f.offset = offset;
      f.node = owner.node;
      f.key_offset = owner.key_offset;
      if (owner.underscore || owner.seen_extension.test(e->index)) f.cursor = firstChildOf(owner.node, e);
      frames_.push_back(f);
      return true;
    }
    if (!s.in_array && e->repeats()) {
      report(Severity::Error, IssueType::Structure, owner.key_offset, elementPath(owner),
             "'" + std::string(owner.key) + "' repeats (max " + maxText(e) + "), so it must be a JSON array, not an object",
             "json.array-expected");
      pushSkip(true, offset);
      return true;
    }
    if (owner.underscore) {
      // The id/extension part of a primitive: its properties go onto the primitive's node.
      Node* target = primitiveTarget(owner, s.in_array, where);
      Frame f;
      f.node = target;
      f.type = t;
      f.offset = offset;
      frames_.push_back(f);
      return true;
    }
    if (t->isPrimitive()) {
      report(Severity::Error, IssueType::Structure, offset, elementPath(owner),
             "The value of " + std::string(e->name) + " (" + std::string(t->name) + ") must be a JSON " +
                 (t->json_kind == JsonValueKind::String ? "string" : t->json_kind == JsonValueKind::Number ? "number" : "boolean") +
                 ", not an object",
             "json.primitive-type");
      pushSkip(true, offset);
      return true;
    }
    if (t->isResource()) {
      Frame f;
      f.pending_resource = true;
      f.resource_element = e;
      f.resource_parent = owner.node;
      f.offset = offset;
      f.key_offset = where;
      frames_.push_back(f);
      return true;
    }
    Node* node = doc_.addChild(owner.node, e, t);
    doc_.setSourceOffset(node, where);
    Frame f;
    f.node = node;
    f.type = t;
    f.offset = offset;
    frames_.push_back(f);
    return true;
  }

  // The node that a "_x" entry (or a value after its "_x") belongs to: the existing one, in order, or a
  // new node without a value.
  Node* primitiveTarget(Frame& owner, bool in_array, uint32_t where) {
    const ElementInfo* e = owner.element;
    Frame* array = in_array ? &frames_.back() : nullptr;
    Node* existing = nullptr;
    if (array != nullptr) {
      existing = array->cursor;
      if (existing != nullptr) {
        Node* next = existing->nextSibling();
        array->cursor = next != nullptr && next->element() == e ? next : nullptr;
      }
    } else if (owner.underscore ? owner.seen_value.test(e->index) : owner.seen_extension.test(e->index)) {
      existing = firstChildOf(owner.node, e);
    }
    if (existing != nullptr) return existing;
    if (array != nullptr && (owner.underscore ? owner.seen_value.test(e->index) : owner.seen_extension.test(e->index))) {
      report(Severity::Error, IssueType::Structure, where, elementPath(owner),
             "'" + std::string(owner.key) + "' has more entries than its counterpart: they must line up one to one",
             "json.underscore-length");
    }
    Node* node = doc_.addChild(owner.node, e, owner.element_type);
    doc_.setSourceOffset(node, where);
    return node;
  }

  bool scalar(ScalarKind kind, uint32_t offset, std::string_view text) {
    if (frames_.empty()) {
      report(Severity::Fatal, IssueType::Structure, offset, "",
             std::string("The JSON must be an object with a resourceType, not ") + kindName(kind), "json.root");
      fatal = true;
      return false;
    }
    Frame& top = frames_.back();
    if (top.skip) return true;
    if (top.is_object && top.expect_resource_type) return resourceType(top, kind, offset, text);
    if (top.is_object && top.element == nullptr) return true;  // unknown property, reported
    Slot s = slot();
    Frame& owner = *s.frame;
    if (s.in_array) ++top.members;
    const ElementInfo* e = owner.element;
    const TypeInfo* t = owner.element_type;
    uint32_t where = s.in_array ? offset : owner.key_offset;
    if (!s.in_array && e->repeats()) {
      report(Severity::Error, IssueType::Structure, owner.key_offset, elementPath(owner),
             "'" + std::string(owner.key) + "' repeats (max " + maxText(e) + "), so it must be a JSON array, not " + kindName(kind),
             "json.array-expected");
      return true;
    }
    if (kind == kNull) {
      if (!s.in_array || !t->isPrimitive()) {
        report(Severity::Error, IssueType::Structure, offset, elementPath(owner),
               "null is only allowed inside a primitive array that has a matching '_' entry", "json.null");
        return true;
      }
      // A placeholder: the other array (value or "_x") carries this entry. Its node exists or is made
      // now so that positions line up.
      Node* node = primitiveTarget(owner, true, where);
      (void)node;
      top.saw_null = true;
      return true;
    }
    if (owner.underscore) {
      report(Severity::Error, IssueType::Structure, offset, elementPath(owner),
             "The '_' part of a primitive must be an object with id and/or extension", "json.underscore-object");
      return true;
    }
    if (!t->isPrimitive()) {
      report(Severity::Error, IssueType::Structure, offset, elementPath(owner),
             "'" + std::string(e->name) + "' is a " + std::string(t->name) + " and must be a JSON object, not " + kindName(kind),
             "json.object-expected");
      return true;
    }
    Node* node = primitiveTarget(owner, s.in_array, where);
    setPrimitive(node, t, kind, offset, text);
    return true;
  }

  void setPrimitive(Node* node, const TypeInfo* type, ScalarKind kind, uint32_t offset, std::string_view text) {
    JsonValueKind want = type->json_kind;
    bool kind_ok = (want == JsonValueKind::String && kind == kString) || (want == JsonValueKind::Number && kind == kNumber) ||
                   (want == JsonValueKind::Boolean && (kind == kTrue || kind == kFalse));
    if (!kind_ok) reportWrongJsonKind(issues_, *node, *type, offset, kindName(kind));
    doc_.setValueNoCopy(node, text);
    checkPrimitiveText(issues_, *node, *type, text, offset);
  }

  bool resourceType(Frame& f, ScalarKind kind, uint32_t offset, std::string_view text) {
    f.expect_resource_type = false;
    if (kind != kString) return fatalResourceType(f, offset, "resourceType must be a string");
    const TypeInfo* type = model_.find(text);
    if (type == nullptr || !type->isResource() || type->is_abstract) {
      return fatalResourceType(f, offset,
                               "Unknown resourceType '" + std::string(text) + "' (not an R4 resource type; check spelling and case)");
    }
    f.pending_resource = false;
    f.type = type;
    if (f.resource_parent == nullptr) {
      f.node = root = doc_.createRoot(type);
      doc_.setSourceOffset(f.node, f.offset);
    } else {
      f.node = doc_.addChild(f.resource_parent, f.resource_element, type);
      doc_.setSourceOffset(f.node, f.key_offset);
    }
    return true;
  }

  bool fatalResourceType(Frame& f, uint32_t offset, std::string message) {
    std::string where;
    if (f.resource_parent != nullptr) where = pathOf(*f.resource_parent) + "." + std::string(f.resource_element->name);
    if (f.resource_parent == nullptr) {
      report(Severity::Fatal, IssueType::Structure, offset, where, std::move(message), "json.resource-type");
      fatal = true;
      return false;
    }
    report(Severity::Error, IssueType::Structure, offset, where, std::move(message), "json.resource-type");
    f.pending_resource = false;
    f.expect_resource_type = false;
    f.skip = true;
    return true;
  }

  bool close() {
    Frame f = frames_.back();
    frames_.pop_back();
    if (f.skip) return true;
    if (f.pending_resource) {
      // No properties at all, or no resourceType.
      if (f.members == 0 || !f.expect_resource_type) {
        return fatalResourceType(f, f.offset, "The object has no resourceType property, so it cannot be read as a FHIR resource") ||
               !fatal;
      }
    }
    if (f.members == 0) {
      std::string where = f.node != nullptr ? pathOf(*f.node) : std::string();
      if (f.is_object) {
        report(Severity::Error, IssueType::Structure, f.offset, where,
               "Empty object: FHIR elements must have content (leave the element out instead)", "json.empty-object");
      } else {
        report(Severity::Error, IssueType::Structure, f.key_offset, where,
               "Empty array: leave the property out instead", "json.empty-array");
      }
    }
    if (!f.is_object && f.cursor != nullptr) {
      // Entries of the first array were left without a counterpart in this one.
      report(Severity::Warning, IssueType::Structure, f.key_offset, pathOf(*f.node),
             "'" + std::string(frames_.back().key) + "' has fewer entries than its counterpart: they should line up one to one, with null",
             "json.underscore-length");
    }
    if (!f.is_object && f.saw_null && !frames_.empty()) checkNulls(frames_.back());
    return true;
  }

  // After a primitive array with nulls: each entry needs a value or an extension. The other array
  // (value or "_x") may still follow, so the check runs when the whole document has been read.
  void checkNulls(Frame& owner) { pending_null_checks_.push_back({owner.node, owner.element}); }

  void nullCheck(Node* parent, const ElementInfo* e) {
    for (Node* c = parent->firstChild(); c != nullptr; c = c->nextSibling()) {
      if (c->element() == e && !c->hasValue() && !c->hasChildren()) {
        report(Severity::Error, IssueType::Structure, c->sourceOffset(), pathOf(*c),
               "null is only allowed inside a primitive array that has a matching '_' entry", "json.null");
      }
    }
  }

 public:
  void finish() {
    std::sort(pending_null_checks_.begin(), pending_null_checks_.end());
    pending_null_checks_.erase(std::unique(pending_null_checks_.begin(), pending_null_checks_.end()), pending_null_checks_.end());
    for (auto& [parent, e] : pending_null_checks_) nullCheck(parent, e);
  }

 private:
  static std::string maxText(const ElementInfo* e) { return e->max == kUnbounded ? "*" : std::to_string(e->max); }

  Document& doc_;
  SourceIssues issues_;
  const ParseOptions& options_;
  const char* base_;
  const TypeModel& model_;
  std::vector<Frame> frames_;
  std::vector<std::pair<Node*, const ElementInfo*>> pending_null_checks_;
};

// One parse with the given RapidJSON flags. `stopped_at_comment` tells that the syntax error is a '/'
// (a comment), so the caller can read the text again with comments allowed.
template <unsigned kFlags>
ParseResult parseJsonWith(std::string_view text, const ParseOptions& options, size_t bom, bool& stopped_at_comment) {
  ParseResult result;
  auto syntaxError = [&](std::string_view source, rapidjson::ParseResult ok, bool too_deep, uint32_t too_deep_offset) {
    LineIndex lines(source);
    Issue issue;
    issue.severity = Severity::Fatal;
    issue.type = IssueType::Structure;
    if (too_deep) {
      issue.message = "The JSON is nested more than " + std::to_string(options.max_depth) + " levels deep";
      issue.position = lines.positionOf(too_deep_offset);
      issue.rule_id = "json.too-deep";
    } else {
      issue.message = std::string("Invalid JSON: ") + rapidjson::GetParseError_En(ok.Code());
      issue.position = lines.positionOf(ok.Offset() + bom);
      stopped_at_comment = ok.Offset() + bom < source.size() && source[ok.Offset() + bom] == '/';
      issue.rule_id = "json.syntax";
    }
    result.issues.push_back(std::move(issue));
  };

  // One arena block holds the source copy, the in-situ buffer and the nodes.
  auto doc = std::make_unique<Document>(text.size() * 4 + 4096);
  std::string_view source = doc->copySource(text);
  auto insituCopy = [&](Document& d) {
    char* buffer = static_cast<char*>(d.arena()->allocate(source.size() + 1, 1));
    std::memcpy(buffer, source.data(), source.size());
    buffer[source.size()] = '\0';
    return buffer;
  };
  {
    char* buffer = insituCopy(*doc);
    DirectBuilder builder(*doc, result.issues, options, source, buffer);
    rapidjson::InsituStringStream stream(buffer + bom);
    builder.stream = &stream;
    builder.bom = static_cast<uint32_t>(bom);
    rapidjson::Reader reader;
    rapidjson::ParseResult ok = reader.Parse<kFlags>(stream, builder);
    if (!builder.fallback) {
      if (builder.fatal) return result;
      if (!ok) {
        result.issues.clear();
        syntaxError(source, ok, builder.too_deep, builder.too_deep_offset);
        return result;
      }
      builder.finish();
      result.document = std::move(doc);
      return result;
    }
  }

  // Slow path: a resource whose resourceType is not its first property. Read the generic tree first.
  result.issues.clear();
  doc = std::make_unique<Document>(text.size() * 4 + 4096);
  source = doc->copySource(text);
  char* buffer = insituCopy(*doc);
  // The generic tree lives in a per-thread scratch buffer reused across parses.
  thread_local std::vector<std::max_align_t> scratch_storage;
  size_t wanted = (source.size() * 5) / sizeof(std::max_align_t) + 64;
  if (scratch_storage.size() < wanted) scratch_storage.resize(wanted);
  std::pmr::monotonic_buffer_resource scratch(scratch_storage.data(), scratch_storage.size() * sizeof(std::max_align_t));
  TreeBuilder builder(&scratch, buffer, options.max_depth);
  rapidjson::InsituStringStream stream(buffer + bom);
  builder.stream = &stream;
  builder.bom = static_cast<uint32_t>(bom);
  rapidjson::Reader reader;
  rapidjson::ParseResult ok = reader.Parse<kFlags>(stream, builder);
  if (!ok) {
    syntaxError(source, ok, builder.too_deep, builder.too_deep_offset);
    return result;
  }
  FhirWalker walker(*doc, result.issues, options, source);
  if (walker.walkRoot(builder.root) != nullptr) result.document = std::move(doc);
  return result;
}

// Offsets of the comments ("//" to the line end, "/* ... */") outside JSON strings.
std::vector<size_t> commentOffsets(std::string_view text) {
  std::vector<size_t> found;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '/' && i + 1 < text.size() && (text[i + 1] == '/' || text[i + 1] == '*')) {
      found.push_back(i);
      if (text[i + 1] == '/') {
        while (i < text.size() && text[i] != '\n') ++i;
      } else {
        size_t end = text.find("*/", i + 2);
        i = end == std::string_view::npos ? text.size() : end + 1;
      }
    }
  }
  return found;
}

}  // namespace

ParseResult parseJson(std::string_view text, const ParseOptions& options) {
  if (text.size() > options.max_bytes) {
    ParseResult result;
    result.issues.push_back({Severity::Fatal, IssueType::TooCostly,
                             "The resource is " + std::to_string(text.size()) + " bytes; the limit is " +
                                 std::to_string(options.max_bytes) + " bytes",
                             "", {}, "json.too-large"});
    return result;
  }
  size_t bom = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  bool stopped_at_comment = false;
  ParseResult result = parseJsonWith<kFlags>(text, options, bom, stopped_at_comment);
  if (!stopped_at_comment) return result;
  // Comments are not JSON (RFC 8259), but JSON5-style files carry them: read the text again skipping
  // them, and report each one unless the caller allows comments. Only text that failed to parse pays.
  bool again = false;
  result = parseJsonWith<kFlags | rapidjson::kParseCommentsFlag>(text, options, bom, again);
  if (!options.allow_comments) {
    LineIndex lines(text);
    for (size_t offset : commentOffsets(text)) {
      result.issues.push_back({Severity::Error, IssueType::Invalid,
                               "Comments are not allowed in JSON (allow them with the allow-comments setting)", "",
                               lines.positionOf(static_cast<uint32_t>(offset)), "json.comment"});
    }
  }
  return result;
}

Format detectFormat(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '\xEF') continue;  // UTF-8 byte order mark
    if (c == '\xBB' || c == '\xBF') continue;
    return c == '<' ? Format::Xml : Format::Json;
  }
  return Format::Json;
}

ParseResult parse(std::string_view text, const ParseOptions& options) {
  return detectFormat(text) == Format::Xml ? parseXml(text, options) : parseJson(text, options);
}

}  // namespace medicus::fhir
