#include "profiles/structure_definition_rules.h"

#include <rapidjson/document.h>

#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include "medicus/fhir/type_model.h"
#include "profiles/json_util.h"
#include "profiles/node_util.h"

namespace medicus::profiles {
namespace {
using fhir::Node;

class Rules {
 public:
  Rules(const Node& definition, ProfileStore& store, const fhir::Document& document, fhir::Issues& issues)
      : sd_(definition), store_(store), doc_(document), issues_(issues) {
    if (const Node* differential = sd_.child("differential")) {
      for (const Node* e : differential->children("element")) elements_.push_back(e);
    }
  }

  void run() {
    if (elements_.empty()) return;
    checkTypeProfiles();
    checkRootSlicing();
    checkDiscriminatorTypes();
    checkDiscriminatorPaths();
    checkSlicingRedefinitions();
    checkRenamedChoices();
    checkBindings();
    checkOrder();
  }

 private:
  void add(const Node& node, std::string message, std::string rule_id) {
    fhir::Issue issue;
    issue.severity = fhir::Severity::Error;
    issue.type = fhir::IssueType::BusinessRule;
    issue.message = std::move(message);
    issue.expression = fhir::pathOf(node);
    issue.position = doc_.positionOf(node);
    issue.rule_id = std::move(rule_id);
    issues_.push_back(std::move(issue));
  }

  // The differential cannot be turned into a snapshot: the reference validator reports the
  // generation failure on the StructureDefinition, besides the rule on the element that causes it.
  void snapshotError(const std::string& why) {
    add(sd_, "the snapshot cannot be generated from the differential: " + why, "StructureDefinition.snapshot:generation");
  }

  // Slicing needs repetitions of the sliced element; the root (the resource or type itself) has none.
  void checkRootSlicing() {
    for (const Node* e : elements_) {
      std::string_view path = childValue(*e, "path");
      if (path.empty() || path.find('.') != std::string_view::npos || !e->child("slicing")) continue;
      add(*e, "slicing is not allowed at the root of a profile", "ElementDefinition.slicing:root");
      snapshotError("the profile slices its root element (" + std::string(path) + ")");
    }
  }

  // ElementDefinition.slicing.discriminator.type (http://hl7.org/fhir/R4/valueset-discriminator-type.html;
  // 'position' is R5's, which the reference validator knows too): the generator cannot slice by another.
  void checkDiscriminatorTypes() {
    for (const Node* e : elements_) {
      const Node* slicing = e->child("slicing");
      if (!slicing) continue;
      for (const Node* d : slicing->children("discriminator")) {
        std::string_view type = childValue(*d, "type");
        if (type.empty() || type == "value" || type == "exists" || type == "pattern" || type == "type" ||
            type == "profile" || type == "position") continue;
        snapshotError("unknown discriminator type '" + std::string(type) + "' on " + std::string(childValue(*e, "path")));
      }
    }
  }

  // ---- definitions of the elements the differential constrains ----
  // The children of `path` are the elements of `elements` (a snapshot) at `path`.name.
  struct Scope {
    const rapidjson::Value* elements = nullptr;
    std::string path;
  };

  static bool isChoiceOf(std::string_view element_name, std::string_view name) {
    if (!element_name.ends_with("[x]")) return false;
    std::string_view stem = element_name.substr(0, element_name.size() - 3);
    return name == stem || (name.size() > stem.size() && name.starts_with(stem) &&
                            std::isupper(static_cast<unsigned char>(name[stem.size()])));
  }

  // The child `name` of the scope (a choice element for "value" or "valueQuantity"); nullptr if none.
  static const rapidjson::Value* childOf(const Scope& scope, std::string_view name) {
    const std::string prefix = scope.path + ".";
    for (const auto& e : scope.elements->GetArray()) {
      std::string_view path = memberStr(e, "path");
      if (!path.starts_with(prefix) || !memberStr(e, "sliceName").empty()) continue;
      std::string_view rest = path.substr(prefix.size());
      if (rest.find('.') != std::string_view::npos) continue;
      if (rest == name || isChoiceOf(rest, name)) return &e;
    }
    return nullptr;
  }

  static bool hasChildren(const rapidjson::Value& elements, const std::string& path) {
    const std::string prefix = path + ".";
    for (const auto& e : elements.GetArray()) if (memberStr(e, "path").starts_with(prefix)) return true;
    return false;
  }

  // The snapshot of a type or profile as a scope on its root; nullopt when it is not loaded.
  std::optional<Scope> typeScope(std::string_view type_or_url) {
    auto elements = store_.snapshotElements(type_or_url);
    if (!elements || !(*elements)->IsArray() || (*elements)->Empty()) return std::nullopt;
    return Scope{*elements, std::string(memberStr((**elements)[0], "path"))};
  }

  // The children of an element given by its types: {code, profile} of each type (profile empty when
  // none); nullopt when they are not one type (choices) or not loaded.
  std::optional<Scope> scopeOfTypes(const std::vector<std::pair<std::string, std::string>>& types) {
    if (types.size() != 1) return std::nullopt;
    const auto& [code, type_profile] = types[0];
    if (code.empty() || code == "Element" || code == "BackboneElement") return std::nullopt;
    if (!type_profile.empty()) return typeScope(type_profile);
    return typeScope(code);
  }

  // The element a child of `scope` has children of its own in: the same snapshot when it lists them,
  // else its type's definition.
  std::optional<Scope> childScope(const Scope& scope, const rapidjson::Value& child) {
    std::string path(memberStr(child, "path"));
    if (hasChildren(*scope.elements, path)) return Scope{scope.elements, path};
    std::vector<std::pair<std::string, std::string>> types;
    if (const rapidjson::Value* list = memberArray(child, "type")) {
      for (const auto& t : list->GetArray()) {
        const rapidjson::Value* profiles = memberArray(t, "profile");
        types.emplace_back(std::string(memberStr(t, "code")),
                           profiles && profiles->Size() == 1 ? std::string(str((*profiles)[0])) : std::string());
      }
    }
    return scopeOfTypes(types);
  }

  const rapidjson::Value* baseSnapshot() {
    if (base_loaded_) return base_;
    base_loaded_ = true;
    std::string_view url = childValue(sd_, "baseDefinition");
    if (url.empty()) return nullptr;
    auto elements = store_.snapshotElements(url);
    if (elements && (*elements)->IsArray() && !(*elements)->Empty()) base_ = *elements;
    return base_;
  }

  // The base snapshot element a differential path constrains, walking renamed choices
  // (Observation.valueQuantity is Observation.value[x]); nullptr when the path leaves the base snapshot.
  const rapidjson::Value* baseElement(std::string_view path) {
    const rapidjson::Value* base = baseSnapshot();
    if (!base) return nullptr;
    size_t dot = path.find('.');
    Scope scope{base, std::string(memberStr((*base)[0], "path"))};
    if (path.substr(0, dot) != scope.path) return nullptr;
    if (dot == std::string_view::npos) return &(*base)[0];
    const rapidjson::Value* element = nullptr;
    while (dot != std::string_view::npos) {
      size_t next = path.find('.', dot + 1);
      std::string_view name = path.substr(dot + 1, next == std::string_view::npos ? next : next - dot - 1);
      element = childOf(scope, name);
      if (!element) return nullptr;
      scope.path = std::string(memberStr(*element, "path"));
      dot = next;
    }
    return element;
  }

  // The children of a differential element: by its own type list when it gives one, else by the
  // base element's.
  std::optional<Scope> scopeOfDifferential(const Node& e) {
    std::vector<std::pair<std::string, std::string>> types;
    for (const Node* t : e.children("type")) {
      std::string type_profile;
      size_t profiles = 0;
      for (const Node* p : t->children("profile")) {
        ++profiles;
        if (p->hasValue()) type_profile = std::string(p->value());
      }
      types.emplace_back(std::string(childValue(*t, "code")), profiles == 1 ? type_profile : std::string());
    }
    if (!types.empty()) {
      // A type profile decides the children; otherwise the base element's (or its type's) do.
      if (types.size() == 1 && !types[0].second.empty()) return scopeOfTypes(types);
    }
    const rapidjson::Value* base = baseElement(childValue(e, "path"));
    if (base) {
      if (auto scope = childScope(Scope{baseSnapshot(), ""}, *base)) return scope;
      return std::nullopt;
    }
    if (!types.empty()) return scopeOfTypes(types);
    return std::nullopt;
  }

  // slicing.discriminator.path names an element inside the sliced one (http://hl7.org/fhir/R4/profiling.html#discriminator).
  // Only plain dotted names are walked; FHIRPath functions (resolve(), extension(), ofType()) and
  // $this are taken as they are.
  void checkDiscriminatorPaths() {
    for (const Node* e : elements_) {
      const Node* slicing = e->child("slicing");
      if (!slicing) continue;
      std::optional<Scope> scope;
      bool scoped = false;
      for (const Node* d : slicing->children("discriminator")) {
        std::string_view path = childValue(*d, "path");
        if (path.empty() || path.find_first_of("()$[]'` ") != std::string_view::npos) continue;
        if (!scoped) {
          scope = scopeOfDifferential(*e);
          scoped = true;
        }
        if (!scope) break;
        Scope at = *scope;
        size_t start = 0;
        while (true) {
          size_t dot = path.find('.', start);
          std::string_view name = path.substr(start, dot == std::string_view::npos ? dot : dot - start);
          const rapidjson::Value* child = childOf(at, name);
          if (!child) {
            add(*d, "the discriminator path '" + std::string(path) + "' does not name an element of the sliced element " +
                        std::string(childValue(*e, "path")),
                "ElementDefinition.slicing.discriminator.path:element");
            break;
          }
          if (dot == std::string_view::npos) break;
          auto next = childScope(at, *child);
          if (!next) break;  // not resolvable here: not judged
          at = std::move(*next);
          start = dot + 1;
        }
      }
    }
  }

  static std::string discriminatorsOf(const Node& slicing) {
    std::string out;
    for (const Node* d : slicing.children("discriminator")) {
      out += (out.empty() ? "" : ", ") + std::string(childValue(*d, "type")) + "=" + std::string(childValue(*d, "path"));
    }
    return out;
  }

  // A slice that gives a slicing (for its re-slices) keeps the discriminators the differential gives
  // the element it slices: the re-slices are slices of that slicing too.
  void checkSlicingRedefinitions() {
    for (const Node* e : elements_) {
      const Node* slicing = e->child("slicing");
      std::string_view id = childValue(*e, "id");
      if (!slicing || id.empty()) continue;
      size_t last = id.rfind('.');
      size_t colon = id.find(':', last == std::string_view::npos ? 0 : last);
      if (colon == std::string_view::npos) continue;
      size_t slash = id.find('/', colon);
      std::string_view sliced_id = id.substr(0, slash == std::string_view::npos ? colon : slash);
      for (const Node* other : elements_) {
        if (other == e || childValue(*other, "id") != sliced_id) continue;
        const Node* original = other->child("slicing");
        if (!original) break;
        std::string before = discriminatorsOf(*original), after = discriminatorsOf(*slicing);
        if (before != after) {
          add(*e, "the slice " + std::string(id) + " redefines the slicing of " + std::string(sliced_id) + " (" + before +
                      ") with other discriminators (" + after + ")",
              "ElementDefinition.slicing:redefined");
        }
        break;
      }
    }
  }

  // A renamed choice (Observation.valueQuantity for Observation.value[x], profiling.html#choices)
  // names one of the choice's types; anything else cannot be placed in the snapshot.
  void checkRenamedChoices() {
    const rapidjson::Value* base = baseSnapshot();
    if (!base) return;
    for (const Node* e : elements_) {
      std::string_view path = childValue(*e, "path");
      size_t dot = path.find('.');
      Scope scope{base, std::string(memberStr((*base)[0], "path"))};
      if (dot == std::string_view::npos || path.substr(0, dot) != scope.path) continue;
      while (dot != std::string_view::npos) {
        size_t next = path.find('.', dot + 1);
        std::string_view name = path.substr(dot + 1, next == std::string_view::npos ? next : next - dot - 1);
        const rapidjson::Value* element = childOf(scope, name);
        if (!element) break;
        std::string_view element_path = memberStr(*element, "path");
        std::string_view element_name = element_path.substr(element_path.rfind('.') + 1);
        std::string_view stem = element_name.substr(0, element_name.size() - 3);
        if (element_name.ends_with("[x]") && name != stem && name != element_name) {
          std::string_view suffix = name.substr(stem.size());
          bool known = false;
          if (const rapidjson::Value* types = memberArray(*element, "type")) {
            for (const auto& t : types->GetArray()) {
              std::string_view code = memberStr(t, "code");
              known = known || (code.size() == suffix.size() && !code.empty() &&
                                std::toupper(static_cast<unsigned char>(code[0])) == suffix[0] &&
                                code.substr(1) == suffix.substr(1));
            }
          }
          if (!known) {
            snapshotError("the path must be '" + std::string(path.substr(0, dot + 1)) + std::string(element_name) +
                          "' not '" + std::string(path.substr(0, next)) + "': " + std::string(suffix) +
                          " is none of its types");
            break;
          }
        }
        scope.path = std::string(element_path);
        dot = next;
      }
    }
  }

  // A binding constrains coded values (terminologies.html#binding): it needs an element that can carry
  // a code. The types are the differential's, else the base element's.
  void checkBindings() {
    for (const Node* e : elements_) {
      if (!e->child("binding")) continue;
      std::vector<std::string> types;
      for (const Node* t : e->children("type")) {
        if (!childValue(*t, "code").empty()) types.emplace_back(childValue(*t, "code"));
      }
      if (types.empty()) {
        const rapidjson::Value* base = baseElement(childValue(*e, "path"));
        const rapidjson::Value* list = base ? memberArray(*base, "type") : nullptr;
        if (list) for (const auto& t : list->GetArray()) types.emplace_back(memberStr(t, "code"));
      }
      if (types.empty()) continue;
      bool bindable = false;
      std::string names;
      for (const auto& t : types) {
        bindable = bindable || t == "code" || t == "Coding" || t == "CodeableConcept" || t == "Quantity" ||
                   t == "string" || t == "uri" || t == "CodeableReference";
        names += (names.empty() ? "" : ", ") + t;
      }
      if (bindable) continue;
      add(*e, "the element " + std::string(childValue(*e, "path")) + " has a binding, but none of its types (" + names +
                  ") carries a code",
          "ElementDefinition.binding:type");
    }
  }

  // The differential lists elements in the order of the snapshot (profiling.html#snapshot: the
  // generator walks the base and the differential together). Among siblings (same parent id), an
  // element followed by one the base defines earlier is passed by then and has no match, nor have its
  // children. Elements the base snapshot does not list (inside types) are not placed.
  void checkOrder() {
    const rapidjson::Value* base = baseSnapshot();
    if (!base) return;
    struct Placed {
      size_t position;   // in the differential
      std::string id;
      std::string parent;
      size_t base_index;
    };
    std::vector<Placed> placed;
    for (size_t i = 0; i < elements_.size(); ++i) {
      std::string id(childValue(*elements_[i], "id"));
      const rapidjson::Value* element = baseElement(childValue(*elements_[i], "path"));
      if (id.empty() || !element) continue;
      size_t dot = id.rfind('.');
      if (dot == std::string::npos) continue;  // the root
      placed.push_back({i, id, id.substr(0, dot), static_cast<size_t>(element - &(*base)[0])});
    }
    std::vector<std::string> unmatched;  // ids
    for (size_t a = 0; a < placed.size(); ++a) {
      for (size_t b = a + 1; b < placed.size(); ++b) {
        if (placed[b].parent == placed[a].parent && placed[b].base_index < placed[a].base_index) {
          unmatched.push_back(placed[a].id);
          break;
        }
      }
    }
    if (unmatched.empty()) return;
    std::string ids;
    size_t count = 0;
    for (const Node* e : elements_) {
      std::string_view id = childValue(*e, "id");
      bool lost = false;
      for (const auto& u : unmatched) {
        lost = lost || id == u || (id.size() > u.size() && id.starts_with(u) && id[u.size()] == '.');
      }
      if (!lost) continue;
      ++count;
      ids += (ids.empty() ? "" : ", ") + std::string(id);
      add(*e, "no match for " + std::string(childValue(*e, "path")) + " in the generated snapshot: the differential "
              "gives it after an element the base definition defines before it (differential elements follow the "
              "order of the base)",
          "ElementDefinition:order");
    }
    add(sd_, std::to_string(count) + " element(s) of the differential have no match in the generated snapshot (" + ids +
                 ")",
        "StructureDefinition.snapshot:unmatched");
  }

  // A type profile is a profile of the type it is given for: Count (a specialization of Quantity)
  // is no profile for a Quantity element. An abstract type (Resource) is narrowed by a profile of any
  // type derived from it (Observation). Type codes that are URLs (logical models) are not judged.
  void checkTypeProfiles() {
    const fhir::TypeModel& model = fhir::TypeModel::r4();
    for (const Node* e : elements_) {
      for (const Node* t : e->children("type")) {
        std::string_view code = childValue(*t, "code");
        if (code.empty() || code.find('/') != std::string_view::npos) continue;
        for (const Node* p : t->children("profile")) {
          if (!p->hasValue()) continue;
          const ResourceInfo* info = store_.registry().findCanonical(p->value(), "StructureDefinition");
          if (!info || info->type.empty() || info->type == code) continue;
          const fhir::TypeInfo* abstract = model.find(code);
          const fhir::TypeInfo* type = model.find(info->type);
          if (abstract && abstract->is_abstract && type && type->isA(abstract)) continue;
          add(*p, "profile " + std::string(p->value()) + " is for type " + info->type + ", but the element " +
                      std::string(childValue(*e, "path")) + " has type " + std::string(code),
              "ElementDefinition.type.profile:type");
        }
      }
    }
  }

  const Node& sd_;
  ProfileStore& store_;
  const fhir::Document& doc_;
  fhir::Issues& issues_;
  std::vector<const Node*> elements_;  // differential.element, in order
  const rapidjson::Value* base_ = nullptr;  // snapshot elements of the baseDefinition
  bool base_loaded_ = false;
};

}  // namespace

void checkStructureDefinition(const Node& definition, ProfileStore& store, const fhir::Document& document,
                              fhir::Issues& issues) {
  Rules(definition, store, document, issues).run();
}

}  // namespace medicus::profiles
