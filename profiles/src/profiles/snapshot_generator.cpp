#include "profiles/snapshot_generator.h"

#include <memory>
#include <unordered_map>
#include <vector>

#include "profiles/json_util.h"

namespace medicus::profiles {
namespace {
using Allocator = rapidjson::Document::AllocatorType;
constexpr int kMaxExpansionDepth = 24;  // bounded: recursive types (Extension.extension, Identifier.assigner)

struct SnapNode {
  std::string name;        // path segment: "value[x]", "coding"
  std::string slice_name;  // set for slices
  rapidjson::Value def;      // the element definition as constrained so far
  rapidjson::Value original;  // as in the base snapshot (slices copy this)
  std::vector<std::unique_ptr<SnapNode>> children;
  std::vector<std::unique_ptr<SnapNode>> slices;
  bool expanded = false;  // children known (from the base snapshot or a type expansion)
  bool introduced = false;  // defined by a specialization's differential: it is its own base
  int depth = 0;
};

// Splits an id into segments at '.', ignoring dots inside slice names after ':' up to the next '.'
// that starts a known element (slice names rarely contain dots; we accept that limitation).
std::vector<std::string_view> splitId(std::string_view id) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= id.size(); ++i) {
    if (i == id.size() || id[i] == '.') {
      parts.push_back(id.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

std::pair<std::string_view, std::string_view> splitSegment(std::string_view seg) {
  size_t colon = seg.find(':');
  if (colon == std::string_view::npos) return {seg, {}};
  return {seg.substr(0, colon), seg.substr(colon + 1)};
}

class Builder {
 public:
  Builder(const SnapshotLookup& lookup, Allocator& alloc, bool specialization)
      : lookup_(lookup), alloc_(alloc), specialization_(specialization) {}

  std::unique_ptr<SnapNode> buildTree(const rapidjson::Value& elements) {
    if (!elements.IsArray() || elements.Empty()) return nullptr;
    std::unique_ptr<SnapNode> root;
    for (const auto& e : elements.GetArray()) {
      std::string_view id = memberStr(e, "id");
      auto segs = splitId(id);
      if (segs.empty()) continue;
      if (!root) {
        root = std::make_unique<SnapNode>();
        root->name = std::string(segs[0]);
        root->def.CopyFrom(e, alloc_);
        root->original.CopyFrom(e, alloc_);
        root->expanded = true;
        continue;
      }
      SnapNode* node = root.get();
      for (size_t i = 1; i < segs.size() && node; ++i) {
        auto [name, slice] = splitSegment(segs[i]);
        SnapNode* child = findChild(*node, name);
        if (!child) {
          node->children.push_back(std::make_unique<SnapNode>());
          child = node->children.back().get();
          child->name = std::string(name);
          child->depth = node->depth + 1;
          node->expanded = true;
        }
        if (!slice.empty()) {
          SnapNode* s = findSlice(*child, slice);
          if (!s) {
            child->slices.push_back(std::make_unique<SnapNode>());
            s = child->slices.back().get();
            s->name = std::string(name);
            s->slice_name = std::string(slice);
            s->depth = child->depth;
          }
          child = s;
        }
        node = child;
        if (i + 1 == segs.size()) {
          node->def.CopyFrom(e, alloc_);
          node->original.CopyFrom(e, alloc_);
          node->expanded = node->expanded || false;
        }
      }
    }
    markExpanded(*root);
    return root;
  }

  // Applies one differential element; returns a problem description or empty.
  std::string apply(SnapNode& root, const rapidjson::Value& diff) {
    std::string_view id = memberStr(diff, "id");
    auto segs = splitId(id);
    if (segs.empty()) return "differential element without id or path";
    SnapNode* node = &root;
    bool inside_slice = false;
    for (size_t i = 1; i < segs.size(); ++i) {
      auto [name, slice] = splitSegment(segs[i]);
      ensureExpanded(*node);
      SnapNode* child = findChild(*node, name);
      std::string_view renamed_type;
      if (!child) {
        // A renamed choice: "valueQuantity" constrains "value[x]" to Quantity (R4 profiling §5.1.0.5).
        for (auto& c : node->children) {
          if (c->name.size() > 3 && c->name.ends_with("[x]")) {
            std::string_view stem = std::string_view(c->name).substr(0, c->name.size() - 3);
            if (name.size() > stem.size() && name.substr(0, stem.size()) == stem &&
                std::isupper(static_cast<unsigned char>(name[stem.size()]))) {
              child = c.get();
              renamed_type = name.substr(stem.size());
              break;
            }
          }
        }
      }
      if (!child && specialization_ && renamed_type.empty() && slice.empty()) {
        // A specialization (logical model, new type) defines its own elements: a new node, expanded
        // from its type when later differential elements reach into it.
        node->children.push_back(std::make_unique<SnapNode>());
        child = node->children.back().get();
        child->name = std::string(name);
        child->depth = node->depth + 1;
        child->def.SetObject();
        child->introduced = true;
      }
      if (!child) return "element '" + std::string(id) + "' is not in the base definition";
      std::string_view choice_slice;  // "valueQuantity" for a type slice on value[x]
      if (!renamed_type.empty()) {
        choice_slice = name;
      } else if (!slice.empty() && child->name.ends_with("[x]")) {
        std::string_view stem = std::string_view(child->name).substr(0, child->name.size() - 3);
        if (slice.size() > stem.size() && slice.substr(0, stem.size()) == stem) {
          choice_slice = slice;
          renamed_type = slice.substr(stem.size());
        }
      }
      if (!choice_slice.empty()) {
        // The R4 generator writes a renamed choice as a type slice of the choice ("value[x]:valueQuantity",
        // discriminator type on $this) at the top level, and renames in place inside slices.
        if (inside_slice) {
          if (i + 1 == segs.size() && !member(diff, "type")) narrowChoice(*child, renamed_type);
        } else {
          if (!member(child->def, "slicing")) {
            rapidjson::Value slicing(rapidjson::kObjectType);
            rapidjson::Value discriminators(rapidjson::kArrayType);
            rapidjson::Value d(rapidjson::kObjectType);
            d.AddMember("type", "type", alloc_);
            d.AddMember("path", "$this", alloc_);
            discriminators.PushBack(d, alloc_);
            slicing.AddMember("discriminator", discriminators, alloc_);
            slicing.AddMember("ordered", false, alloc_);
            slicing.AddMember("rules", "closed", alloc_);
            child->def.AddMember("slicing", slicing, alloc_);
            narrowChoice(*child, renamed_type);  // closed type slicing: only the sliced types remain
          } else {
            widenChoice(*child, renamed_type);
          }
          SnapNode* s = findSlice(*child, choice_slice);
          if (!s) {
            s = createSlice(*child, choice_slice);
            narrowChoice(*s, renamed_type);
          }
          child = s;
          inside_slice = true;
        }
      } else if (!slice.empty()) {
        SnapNode* s = findSlice(*child, slice);
        if (!s) s = createSlice(*child, slice);
        child = s;
        inside_slice = true;
      }
      node = child;
    }
    merge(*node, diff);
    return {};
  }

  void write(const SnapNode& node, const std::string& parent_id, const std::string& parent_path,
             rapidjson::Value& out) {
    std::string id = parent_id.empty() ? node.name : parent_id + "." + node.name;
    std::string path = parent_path.empty() ? node.name : parent_path + "." + node.name;
    if (!node.slice_name.empty()) id += ":" + node.slice_name;
    rapidjson::Value e(node.def, alloc_);
    if (!e.IsObject()) e.SetObject();
    setString(e, "id", id);
    setString(e, "path", path);
    if (!node.slice_name.empty()) setString(e, "sliceName", node.slice_name);
    if (node.introduced && !member(e, "base")) {
      rapidjson::Value base(rapidjson::kObjectType);
      base.AddMember("path", rapidjson::Value(path.c_str(), static_cast<rapidjson::SizeType>(path.size()), alloc_), alloc_);
      base.AddMember("min", member(e, "min") ? rapidjson::Value(e["min"], alloc_) : rapidjson::Value(0), alloc_);
      base.AddMember("max", member(e, "max") ? rapidjson::Value(e["max"], alloc_) : rapidjson::Value("*"), alloc_);
      e.AddMember("base", base, alloc_);
    }
    out.PushBack(e, alloc_);
    for (const auto& c : node.children) write(*c, id, path, out);
    for (const auto& s : node.slices) {
      // A slice's id is the sliced element's id plus ":name"; its path is the sliced element's path.
      write(*s, parent_id, parent_path, out);
    }
  }

 private:
  static SnapNode* findChild(SnapNode& node, std::string_view name) {
    for (auto& c : node.children) if (c->name == name) return c.get();
    return nullptr;
  }
  static SnapNode* findSlice(SnapNode& node, std::string_view slice) {
    for (auto& s : node.slices) if (s->slice_name == slice) return s.get();
    return nullptr;
  }
  static void markExpanded(SnapNode& node) {
    if (!node.children.empty()) node.expanded = true;
    for (auto& c : node.children) markExpanded(*c);
    for (auto& s : node.slices) markExpanded(*s);
  }

  void setString(rapidjson::Value& obj, const char* key, const std::string& value) {
    auto it = obj.FindMember(key);
    rapidjson::Value v(value.c_str(), static_cast<rapidjson::SizeType>(value.size()), alloc_);
    if (it != obj.MemberEnd()) it->value = v;
    else obj.AddMember(rapidjson::Value(key, alloc_), v, alloc_);
  }

  void narrowChoice(SnapNode& node, std::string_view type_suffix) {
    const rapidjson::Value* types = memberArray(node.def, "type");
    if (!types) return;
    rapidjson::Value kept(rapidjson::kArrayType);
    for (const auto& t : types->GetArray()) {
      std::string_view code = memberStr(t, "code");
      if (code.size() == type_suffix.size() &&
          std::equal(code.begin(), code.end(), type_suffix.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        kept.PushBack(rapidjson::Value(t, alloc_), alloc_);
      }
    }
    if (!kept.Empty()) node.def["type"] = kept;
  }

  // Adds a type of the unconstrained choice back (a second type slice on a closed type slicing).
  void widenChoice(SnapNode& node, std::string_view type_suffix) {
    const rapidjson::Value* original = memberArray(node.original, "type");
    rapidjson::Value* current = node.def.HasMember("type") ? &node.def["type"] : nullptr;
    if (!original || !current || !current->IsArray()) return;
    for (const auto& t : original->GetArray()) {
      std::string_view code = memberStr(t, "code");
      if (code.size() != type_suffix.size() ||
          !std::equal(code.begin(), code.end(), type_suffix.begin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); })) continue;
      for (const auto& existing : current->GetArray()) if (memberStr(existing, "code") == code) return;
      current->PushBack(rapidjson::Value(t, alloc_), alloc_);
    }
  }

  SnapNode* createSlice(SnapNode& base, std::string_view slice) {
    // A slice is the sliced element as constrained so far, its children included: what the profile
    // says of every item (Parameters.parameter.extension max 0) holds in each slice too.
    auto s = copyConstrained(base);
    s->slice_name = std::string(slice);
    s->def.RemoveMember("slicing");
    // A new slice starts optional unless the differential says otherwise; the sliced element keeps
    // the overall cardinality.
    s->def.RemoveMember("min");
    s->def.AddMember("min", rapidjson::Value(0u), alloc_);
    s->def.RemoveMember("sliceName");
    base.slices.push_back(std::move(s));
    return base.slices.back().get();
  }

  std::unique_ptr<SnapNode> copyOriginal(const SnapNode& node) {
    auto copy = std::make_unique<SnapNode>();
    copy->name = node.name;
    copy->depth = node.depth;
    const rapidjson::Value& src = node.original.IsObject() ? node.original : node.def;
    copy->def.CopyFrom(src, alloc_);
    copy->original.CopyFrom(src, alloc_);
    copy->expanded = node.expanded && !node.children.empty();
    for (const auto& c : node.children) copy->children.push_back(copyOriginal(*c));
    if (copy->children.empty()) copy->expanded = false;
    return copy;
  }

  // The node as constrained so far with its children (and their slices; the node's own slices are
  // its siblings, not part of it), the base definition kept as each copy's original.
  std::unique_ptr<SnapNode> copyConstrained(const SnapNode& node, bool with_slices = false) {
    auto copy = std::make_unique<SnapNode>();
    copy->name = node.name;
    copy->slice_name = node.slice_name;
    copy->depth = node.depth;
    copy->def.CopyFrom(node.def, alloc_);
    copy->original.CopyFrom(node.original.IsObject() ? node.original : node.def, alloc_);
    copy->expanded = node.expanded;
    for (const auto& c : node.children) copy->children.push_back(copyConstrained(*c, true));
    if (with_slices) for (const auto& c : node.slices) copy->slices.push_back(copyConstrained(*c, true));
    return copy;
  }

  // Loads the children of a complex element from its type's snapshot (or its type profile's).
  void ensureExpanded(SnapNode& node) {
    if (node.expanded) return;
    node.expanded = true;
    if (node.depth >= kMaxExpansionDepth) return;
    const rapidjson::Value* types = memberArray(node.def, "type");
    std::string_view content_ref = memberStr(node.def, "contentReference");
    const rapidjson::Value* elements = nullptr;
    if (!content_ref.empty()) {
      elements = nullptr;  // handled below via the root tree
      pending_content_refs_.push_back(&node);
      return;
    }
    if (!types || types->Size() != 1) return;  // choices are expanded only after narrowing to one type
    const rapidjson::Value& t = (*types)[0];
    std::string_view code = memberStr(t, "code");
    if (code == "BackboneElement" || code == "Element") return;
    if (const rapidjson::Value* profiles = memberArray(t, "profile"); profiles && profiles->Size() == 1) {
      elements = lookup_(str((*profiles)[0]));
    }
    if (!elements) elements = lookup_(code);
    if (!elements || !elements->IsArray() || elements->Size() < 2) return;
    auto subtree = buildTree(*elements);
    if (!subtree) return;
    for (auto& c : subtree->children) {
      setDepth(*c, node.depth + 1);
      node.children.push_back(std::move(c));
    }
  }

  void setDepth(SnapNode& node, int depth) {
    node.depth = depth;
    for (auto& c : node.children) setDepth(*c, depth + 1);
    for (auto& s : node.slices) setDepth(*s, depth);
  }

  void merge(SnapNode& node, const rapidjson::Value& diff) {
    if (!node.def.IsObject()) node.def.SetObject();
    for (const auto& m : diff.GetObject()) {
      std::string_view key = str(m.name);
      if (key == "id" || key == "path" || key == "sliceName") continue;
      if (key == "constraint" && m.value.IsArray()) {
        if (!node.def.HasMember("constraint")) node.def.AddMember("constraint", rapidjson::Value(rapidjson::kArrayType), alloc_);
        rapidjson::Value& list = node.def["constraint"];
        for (const auto& c : m.value.GetArray()) {
          bool present = false;
          for (const auto& existing : list.GetArray()) present = present || memberStr(existing, "key") == memberStr(c, "key");
          if (!present) list.PushBack(rapidjson::Value(c, alloc_), alloc_);
        }
        continue;
      }
      // A type change invalidates children that came from the old type's expansion.
      if (key == "type" && !node.children.empty() && node.expanded && typeChangesProfile(node.def, m.value)) {
        // keep children: they come from the base definition and still apply
      }
      // fixed[x]/pattern[x] replace any inherited fixed/pattern of another type.
      auto it = node.def.FindMember(m.name);
      if (it != node.def.MemberEnd()) it->value.CopyFrom(m.value, alloc_);
      else node.def.AddMember(rapidjson::Value(m.name, alloc_), rapidjson::Value(m.value, alloc_), alloc_);
    }
  }
  static bool typeChangesProfile(const rapidjson::Value&, const rapidjson::Value&) { return false; }

 public:
  void resolveContentReferences(SnapNode& root) {
    // contentReference "#Questionnaire.item" reuses the children of that element.
    for (size_t i = 0; i < pending_content_refs_.size(); ++i) {
      SnapNode* node = pending_content_refs_[i];
      std::string_view ref = memberStr(node->def, "contentReference");
      if (!ref.starts_with("#")) continue;
      auto segs = splitId(ref.substr(1));
      SnapNode* target = &root;
      for (size_t s = 1; s < segs.size() && target; ++s) target = findChild(*target, segs[s]);
      if (!target || target == node) continue;
      for (const auto& c : target->children) {
        auto copy = copyOriginal(*c);
        setDepth(*copy, node->depth + 1);
        node->children.push_back(std::move(copy));
      }
    }
    pending_content_refs_.clear();
  }

 private:
  const SnapshotLookup& lookup_;
  Allocator& alloc_;
  bool specialization_;
  std::vector<SnapNode*> pending_content_refs_;
};
}  // namespace

void assignElementIds(rapidjson::Value& elements, Allocator& alloc) {
  if (!elements.IsArray()) return;
  std::unordered_map<std::string, std::string> current_id;  // path -> id of the latest element there
  for (auto& e : elements.GetArray()) {
    if (!e.IsObject()) continue;
    std::string path(memberStr(e, "path"));
    std::string id(memberStr(e, "id"));
    if (id.empty()) {
      size_t dot = path.rfind('.');
      if (dot == std::string::npos) {
        id = path;
      } else {
        std::string parent_path = path.substr(0, dot);
        auto it = current_id.find(parent_path);
        id = (it != current_id.end() ? it->second : parent_path) + path.substr(dot);
      }
      std::string_view slice = memberStr(e, "sliceName");
      if (!slice.empty()) id += ":" + std::string(slice);
      e.AddMember("id", rapidjson::Value(id.c_str(), static_cast<rapidjson::SizeType>(id.size()), alloc), alloc);
    }
    // Children of a slice hang below the slice; a new unsliced occurrence resets to the plain path.
    current_id[path] = id;
  }
}

SnapshotResult generateSnapshot(const rapidjson::Value& base_elements, const rapidjson::Value& differential_elements,
                                const SnapshotLookup& lookup, rapidjson::Value& out, Allocator& alloc,
                                bool specialization) {
  SnapshotResult result;
  Builder builder(lookup, alloc, specialization);
  auto root = builder.buildTree(base_elements);
  if (!root) {
    result.problems.push_back("the base definition has no snapshot elements");
    return result;
  }
  // A specialization names its own root ("Laborbefund" on Element); a constraint keeps the base's.
  if (specialization && differential_elements.IsArray() && !differential_elements.Empty()) {
    auto segs = splitId(memberStr(differential_elements[0], "id"));
    if (segs.size() == 1 && !segs[0].empty()) root->name = std::string(segs[0]);
  }
  if (differential_elements.IsArray()) {
    for (const auto& diff : differential_elements.GetArray()) {
      std::string problem = builder.apply(*root, diff);
      if (!problem.empty()) result.problems.push_back(std::move(problem));
    }
  }
  builder.resolveContentReferences(*root);
  out.SetArray();
  builder.write(*root, "", "", out);
  return result;
}

}  // namespace medicus::profiles
