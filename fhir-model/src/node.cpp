#include "medicus/fhir/node.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "medicus/fhir/issue.h"

namespace medicus::fhir {

std::string_view Node::name() const { return element_ != nullptr ? element_->name : type_->name; }

std::string Node::jsonName() const {
  std::string out(name());
  if (element_ != nullptr && element_->is_choice) {
    char buffer[64];
    out += capitalizedTypeName(*type_, buffer, sizeof buffer);
  }
  return out;
}

Node* Node::child(std::string_view child_name) const {
  const ElementInfo* e = type_->findElement(child_name);
  if (e == nullptr) return nullptr;
  for (Node* c = first_child_; c != nullptr && c->element_->index <= e->index; c = c->next_sibling_) {
    if (c->element_ == e) return c;
  }
  return nullptr;
}

Node::ChildRange Node::children(std::string_view child_name) const {
  const ElementInfo* e = type_->findElement(child_name);
  if (e == nullptr) return {nullptr, nullptr};
  return {first_child_, e};
}

const Node* Node::enclosingResource() const {
  const Node* n = this;
  while (n != nullptr && !n->isResource()) n = n->parent_;
  return n;
}

std::string pathOf(const Node& node) {
  std::vector<const Node*> chain;
  for (const Node* n = &node; n != nullptr; n = n->parent()) chain.push_back(n);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Node* n = *it;
    if (n->element() == nullptr) {
      out += n->type()->name;
      continue;
    }
    out += '.';
    out += n->element()->name;
    if (n->element()->repeats()) {
      out += '[';
      out += std::to_string(n->indexInElement());
      out += ']';
    }
    if (n->element()->is_choice) {
      out += ".ofType(";
      out += n->type()->name;
      out += ')';
    }
  }
  return out;
}

Document::Document() : arena_(4096) {}

Document::Document(size_t initial_arena_bytes) : arena_(std::max<size_t>(initial_arena_bytes, 1024)) {}

std::string_view Document::copySource(std::string_view text) {
  source_text_ = copyString(text);
  line_index_.reset();
  return source_text_;
}

std::string_view Document::copyString(std::string_view text) {
  if (text.empty()) return {};
  char* p = static_cast<char*>(arena_.allocate(text.size(), 1));
  std::memcpy(p, text.data(), text.size());
  return {p, text.size()};
}

Node* Document::createRoot(const TypeInfo* resource_type) {
  root_ = new (arena_.allocate(sizeof(Node), alignof(Node))) Node();
  root_->type_ = resource_type;
  return root_;
}

Node* Document::addChild(Node* parent, const ElementInfo* element, const TypeInfo* type) {
  Node* n = new (arena_.allocate(sizeof(Node), alignof(Node))) Node();
  n->type_ = type;
  n->element_ = element;
  n->parent_ = parent;
  // Keep children in definition order; appending is the common case (input usually is in order).
  // New nodes go after every sibling of the same element, so no other index changes.
  if (parent->last_child_ == nullptr) {
    parent->first_child_ = parent->last_child_ = n;
  } else if (parent->last_child_->element_->index <= element->index) {
    Node* last = parent->last_child_;
    if (last->element_ == element) n->element_index_ = last->element_index_ + 1;
    last->next_sibling_ = n;
    parent->last_child_ = n;
  } else {
    Node* prev = nullptr;
    Node** link = &parent->first_child_;
    while (*link != nullptr && (*link)->element_->index <= element->index) {
      prev = *link;
      link = &(*link)->next_sibling_;
    }
    if (prev != nullptr && prev->element_ == element) n->element_index_ = prev->element_index_ + 1;
    n->next_sibling_ = *link;
    *link = n;
  }
  return n;
}

Node* Document::addChild(Node* parent, std::string_view property) {
  const ElementInfo* element = nullptr;
  const TypeInfo* type = nullptr;
  if (!parent->type()->resolveProperty(property, element, type)) return nullptr;
  return addChild(parent, element, type);
}

Node* Document::addPrimitive(Node* parent, std::string_view property, std::string_view value) {
  Node* n = addChild(parent, property);
  if (n != nullptr) setValue(n, value);
  return n;
}

Node* Document::addResource(Node* parent, std::string_view property, const TypeInfo* resource_type) {
  const ElementInfo* element = parent->type()->findElement(property);
  if (element == nullptr || resource_type == nullptr || !resource_type->isResource()) return nullptr;
  return addChild(parent, element, resource_type);
}

void Document::setValue(Node* node, std::string_view text) {
  node->value_ = copyString(text);
  node->has_value_ = true;
}

void Document::setValueNoCopy(Node* node, std::string_view text) {
  node->value_ = text;
  node->has_value_ = true;
}

Node* Document::copyInto(Node* parent, const ElementInfo* element, const Node& source) {
  Node* n = parent == nullptr ? createRoot(source.type()) : addChild(parent, element, source.type());
  if (source.hasValue()) setValue(n, source.value());
  n->source_offset_ = source.source_offset_;
  for (Node* c = source.firstChild(); c != nullptr; c = c->nextSibling()) {
    // Element definitions are shared (one type model), so the child's element stays valid.
    copyInto(n, c->element(), *c);
  }
  return n;
}

void Document::removeChild(Node* parent, Node* child) {
  Node* prev = nullptr;
  for (Node* c = parent->first_child_; c != nullptr; prev = c, c = c->next_sibling_) {
    if (c != child) continue;
    (prev ? prev->next_sibling_ : parent->first_child_) = c->next_sibling_;
    if (parent->last_child_ == c) parent->last_child_ = prev;
    for (Node* after = c->next_sibling_; after != nullptr && after->element_ == c->element_; after = after->next_sibling_) {
      --after->element_index_;
    }
    c->parent_ = nullptr;
    c->next_sibling_ = nullptr;
    return;
  }
}

void Document::adoptSource(std::string text) {
  source_storage_ = std::move(text);
  source_text_ = source_storage_;
  line_index_.reset();
}

SourcePosition Document::positionOf(const Node& node) const {
  if (node.sourceOffset() == UINT32_MAX || source_text_.empty()) return {};
  if (!line_index_) line_index_ = std::make_unique<LineIndex>(source_text_);
  return line_index_->positionOf(node.sourceOffset());
}

}  // namespace medicus::fhir
