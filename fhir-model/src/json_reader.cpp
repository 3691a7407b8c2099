// FHIR JSON -> element tree (http://hl7.org/fhir/R4/json.html).
// Two steps: RapidJSON's SAX reader builds a small generic tree with byte offsets (the DOM keeps none),
// then a walk driven by the type model turns it into Nodes, merging "x"/"_x" pairs and reporting every
// problem with its FHIRPath location and line:col.
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <memory_resource>
#include <pugixml.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "medicus/fhir/format.h"
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
      : doc_(doc), issues_(issues), options_(options), source_(source), model_(TypeModel::r4()) {}

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
    Issue issue;
    issue.severity = severity;
    issue.type = type;
    issue.message = std::move(message);
    issue.expression = std::move(expression);
    // The line index is built only when there is something to report.
    if (!lines_) lines_ = std::make_unique<LineIndex>(source_);
    issue.position = lines_->positionOf(offset);
    issue.rule_id = std::move(rule);
    issues_.push_back(std::move(issue));
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
      const char* expected = want == JsonValueKind::String ? "a JSON string" : want == JsonValueKind::Number ? "a JSON number" : "true or false";
      report(Severity::Error, IssueType::Structure, value->offset, pathOf(*node),
             "The value of " + std::string(node->name()) + " (" + std::string(type->name) + ") must be " + expected +
                 ", not " + kindName(value->kind),
             "json.primitive-type");
      if (value->kind == JVal::Object || value->kind == JVal::Array) return;
    }
    std::string_view text = value->kind == JVal::True ? std::string_view("true")
                            : value->kind == JVal::False ? std::string_view("false")
                                                         : value->text;
    doc_.setValueNoCopy(node, text);
    if (type->primitive_kind == PrimitiveKind::Xhtml) {
      checkXhtml(node, value);
      return;
    }
    std::string problem = checkPrimitiveValue(*type, text);
    if (!problem.empty()) {
      report(Severity::Error, IssueType::Value, value->offset, pathOf(*node),
             "The value '" + shorten(text) + "' of " + std::string(node->name()) + " (" + std::string(type->name) + ") " + problem,
             "type." + std::string(type->name));
    }
  }

  void checkXhtml(Node* node, const JVal* value) {
    pugi::xml_document div;
    auto result = div.load_buffer(value->text.data(), value->text.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!result || std::string_view(div.document_element().name()) != "div") {
      report(Severity::Error, IssueType::Value, value->offset, pathOf(*node),
             std::string("The narrative is not well-formed XHTML: ") + (result ? "the root element must be <div>" : result.description()),
             "xhtml.well-formed");
    }
  }

  static std::string shorten(std::string_view text) {
    if (text.size() <= 60) return std::string(text);
    return std::string(text.substr(0, 57)) + "...";
  }

  Document& doc_;
  Issues& issues_;
  const ParseOptions& options_;
  std::string_view source_;
  std::unique_ptr<LineIndex> lines_;
  const TypeModel& model_;
  // Per nesting level: for each element of the type, its value member and its "_x" member.
  struct Slots {
    std::vector<const JVal*> value;
    std::vector<const JVal*> extension;
  };
  static inline thread_local std::vector<Slots> slots_;  // reused across documents
  uint32_t depth_ = 0;
};

}  // namespace

ParseResult parseJson(std::string_view text, const ParseOptions& options) {
  ParseResult result;
  if (text.size() > options.max_bytes) {
    result.issues.push_back({Severity::Fatal, IssueType::TooCostly,
                             "The resource is " + std::to_string(text.size()) + " bytes; the limit is " +
                                 std::to_string(options.max_bytes) + " bytes",
                             "", {}, "json.too-large"});
    return result;
  }
  size_t bom = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  // One arena block holds the source copy, the in-situ buffer and the nodes.
  auto doc = std::make_unique<Document>(text.size() * 4 + 4096);
  std::string_view source = doc->copySource(text);

  // In-situ parsing: strings are decoded in place in a scratch copy that lives in the document's arena,
  // so the nodes can point into it without another copy.
  char* buffer = static_cast<char*>(doc->arena()->allocate(source.size() + 1, 1));
  std::memcpy(buffer, source.data(), source.size());
  buffer[source.size()] = '\0';

  // The generic tree lives in a per-thread scratch buffer reused across parses (no page faults for
  // every document); it grows to the largest document seen.
  thread_local std::vector<std::max_align_t> scratch_storage;
  size_t wanted = (source.size() * 5) / sizeof(std::max_align_t) + 64;
  if (scratch_storage.size() < wanted) scratch_storage.resize(wanted);
  std::pmr::monotonic_buffer_resource scratch(scratch_storage.data(), scratch_storage.size() * sizeof(std::max_align_t));
  TreeBuilder builder(&scratch, buffer, options.max_depth);
  rapidjson::InsituStringStream stream(buffer + bom);
  builder.stream = &stream;
  builder.bom = static_cast<uint32_t>(bom);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  rapidjson::ParseResult ok = reader.Parse<kFlags>(stream, builder);
  if (!ok) {
    LineIndex lines(source);
    Issue issue;
    issue.severity = Severity::Fatal;
    issue.type = IssueType::Structure;
    if (builder.too_deep) {
      issue.message = "The JSON is nested more than " + std::to_string(options.max_depth) + " levels deep";
      issue.position = lines.positionOf(builder.too_deep_offset);
      issue.rule_id = "json.too-deep";
    } else {
      issue.message = std::string("Invalid JSON: ") + rapidjson::GetParseError_En(ok.Code());
      issue.position = lines.positionOf(ok.Offset() + bom);
      issue.rule_id = "json.syntax";
    }
    result.issues.push_back(std::move(issue));
    return result;
  }
  FhirWalker walker(*doc, result.issues, options, source);
  if (walker.walkRoot(builder.root) != nullptr) result.document = std::move(doc);
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
