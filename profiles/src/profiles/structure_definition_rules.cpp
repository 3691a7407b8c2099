#include "profiles/structure_definition_rules.h"

#include <rapidjson/document.h>

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
};

}  // namespace

void checkStructureDefinition(const Node& definition, ProfileStore& store, const fhir::Document& document,
                              fhir::Issues& issues) {
  Rules(definition, store, document, issues).run();
}

}  // namespace medicus::profiles
