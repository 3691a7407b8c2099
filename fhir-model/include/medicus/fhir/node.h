#pragma once
// The in-memory FHIR element tree. One representation for JSON and XML: every element is a Node with
// its definition (ElementInfo) and actual type (TypeInfo); primitives keep their value as the exact
// source text (decimals stay "1.50"), with id/extension as child nodes. Repeated elements are sibling
// nodes with the same element; children are kept in definition order. All memory belongs to the
// Document's arena: nodes and strings live exactly as long as their Document.
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/type_model.h"

namespace medicus::fhir {

class Document;

class Node {
 public:
  const TypeInfo* type() const { return type_; }
  // The definition of this element in its parent's type; nullptr for the root resource.
  const ElementInfo* element() const { return element_; }
  // Element name without choice suffix ("value" for valueQuantity); the type name for the root.
  std::string_view name() const;
  // Property name as written in JSON/XML: "valueQuantity" for a choice, else name().
  std::string jsonName() const;

  bool isResource() const { return type_->kind == TypeKind::Resource; }
  bool isPrimitive() const { return type_->kind == TypeKind::Primitive; }

  // Primitive value as exact text (booleans "true"/"false", numbers as written). A primitive may have
  // no value but only id/extension children (JSON null in a primitive array).
  bool hasValue() const { return has_value_; }
  // The source had content here that the reader reported and left out (unknown elements): the
  // element was not empty in the instance, though it may have no children in the tree.
  bool hadUnknownContent() const { return had_unknown_content_; }
  std::string_view value() const { return value_; }

  Node* parent() const { return parent_; }
  Node* firstChild() const { return first_child_; }
  Node* nextSibling() const { return next_sibling_; }
  bool hasChildren() const { return first_child_ != nullptr; }
  // First child for the element with this definition name ("name", "value"), or nullptr.
  Node* child(std::string_view name) const;
  // Index of this node among its parent's children of the same element (for paths like name[1]); O(1).
  uint32_t indexInElement() const { return element_index_; }
  // The nearest resource containing this node (itself if it is a resource).
  const Node* enclosingResource() const;

  // Byte offset of the element in the parsed source; UINT32_MAX for built nodes.
  uint32_t sourceOffset() const { return source_offset_; }

  // Iteration over children: for (Node* c : node.children()) or node.children("given").
  class ChildIterator {
   public:
    ChildIterator(Node* n, const ElementInfo* filter) : node_(n), filter_(filter) { skip(); }
    Node* operator*() const { return node_; }
    ChildIterator& operator++() { node_ = node_->next_sibling_; skip(); return *this; }
    bool operator!=(const ChildIterator& other) const { return node_ != other.node_; }
    bool operator==(const ChildIterator& other) const { return node_ == other.node_; }
   private:
    // Children are kept in definition order, so the search for one element stops at the first child of
    // a later element: finding Bundle.type does not walk 10,000 entries.
    void skip() {
      while (filter_ && node_ && node_->element_ != filter_) {
        node_ = node_->element_->index > filter_->index ? nullptr : node_->next_sibling_;
      }
    }
    Node* node_;
    const ElementInfo* filter_;
  };
  struct ChildRange {
    Node* first;
    const ElementInfo* filter;
    ChildIterator begin() const { return {first, filter}; }
    ChildIterator end() const { return {nullptr, nullptr}; }
    bool empty() const { return !(begin() != end()); }
  };
  ChildRange children() const { return {first_child_, nullptr}; }
  // Children of one element by definition name; empty when the type has no such element.
  ChildRange children(std::string_view name) const;

 private:
  friend class Document;
  const TypeInfo* type_ = nullptr;
  const ElementInfo* element_ = nullptr;
  Node* parent_ = nullptr;
  Node* first_child_ = nullptr;
  Node* last_child_ = nullptr;
  Node* next_sibling_ = nullptr;
  std::string_view value_;
  uint32_t source_offset_ = UINT32_MAX;
  uint32_t element_index_ = 0;  // kept by Document::addChild/removeChild
  bool has_value_ = false;
  bool had_unknown_content_ = false;
};

// "Patient.name[1].given[0]", with ".ofType(Quantity)" after choice elements and the resource type
// for contained/entry resources: "Bundle.entry[2].resource.ofType(Patient).name[0]" is shortened to
// "Bundle.entry[2].resource.name[0]" as the reference validator writes it.
std::string pathOf(const Node& node);

class Document {
 public:
  Document();
  // Sizes the arena's first block (parsers pass a multiple of the input size: one allocation).
  explicit Document(size_t initial_arena_bytes);
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  const TypeModel& model() const { return TypeModel::r4(); }
  Node* root() const { return root_; }

  // Builders; nodes are appended in definition order among their siblings.
  Node* createRoot(const TypeInfo* resource_type);
  // A child for `element` (of parent's type) with actual type `type` (one of element->types).
  Node* addChild(Node* parent, const ElementInfo* element, const TypeInfo* type);
  // Convenience: by property name as in JSON ("valueQuantity", "name"); nullptr if the type has no
  // such element.
  Node* addChild(Node* parent, std::string_view property);
  // A primitive child with a value: addPrimitive(patient, "gender", "female").
  Node* addPrimitive(Node* parent, std::string_view property, std::string_view value);
  // A resource as the value of a resource-typed element (contained, Bundle.entry.resource).
  Node* addResource(Node* parent, std::string_view property, const TypeInfo* resource_type);
  void setValue(Node* node, std::string_view text);  // copies the text into the arena
  void setValueNoCopy(Node* node, std::string_view text);  // text must outlive the document
  void setSourceOffset(Node* node, uint32_t offset) { node->source_offset_ = offset; }
  void markUnknownContent(Node* node) { node->had_unknown_content_ = true; }
  // Deep copy of a node (from any document) as a new child of parent, under the given element.
  Node* copyInto(Node* parent, const ElementInfo* element, const Node& source);
  void removeChild(Node* parent, Node* child);

  std::string_view copyString(std::string_view text);
  std::pmr::memory_resource* arena() { return &arena_; }

  // The source text this document was parsed from (empty for built documents) and its line index.
  std::string_view sourceText() const { return source_text_; }
  SourcePosition positionOf(const Node& node) const;
  void adoptSource(std::string text);
  // Copies the source text into the arena and returns the copy.
  std::string_view copySource(std::string_view text);

 private:
  std::pmr::monotonic_buffer_resource arena_;
  Node* root_ = nullptr;
  std::string source_storage_;
  std::string_view source_text_;
  mutable std::unique_ptr<LineIndex> line_index_;
};

}  // namespace medicus::fhir
