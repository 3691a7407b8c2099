#include "profiles/element_definitions.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "medicus/fhir/format.h"
#include "profiles/json_util.h"

namespace medicus::profiles {

tl::expected<std::unique_ptr<fhir::Document>, std::string> coreElementDefinition(ProfileStore& store,
                                                                                const fhir::Node& element) {
  // The definition path: a resource (the root, contained, a Bundle entry) is its type's root element.
  std::string path;
  if (element.isResource() || element.element() == nullptr) {
    path = std::string(element.type()->name);
  } else {
    path = std::string(element.element()->path);
  }
  if (path.empty()) return std::unique_ptr<fhir::Document>();
  const std::string type = path.substr(0, path.find('.'));
  auto elements = store.snapshotElements(type);
  if (!elements) return tl::make_unexpected("elementDefinition(): " + elements.error());
  const rapidjson::Value* found = nullptr;
  for (const auto& e : (*elements)->GetArray()) {
    if (memberStr(e, "path") == path && memberStr(e, "sliceName").empty()) {
      found = &e;
      break;
    }
  }
  if (!found) return std::unique_ptr<fhir::Document>();
  // One element, wrapped so that the FHIR reader types it as an ElementDefinition.
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  found->Accept(writer);
  std::string text = R"({"resourceType":"StructureDefinition","snapshot":{"element":[)";
  text.append(buffer.GetString(), buffer.GetSize());
  text += "]}}";
  fhir::ParseOptions options;
  options.unknown_elements_are_warnings = true;
  auto parsed = fhir::parseJson(text, options);
  if (!parsed.document || !elementDefinitionNode(*parsed.document)) {
    return tl::make_unexpected("elementDefinition(): the definition of " + path + " in " + type + " cannot be read");
  }
  return std::move(parsed.document);
}

const fhir::Node* elementDefinitionNode(const fhir::Document& document) {
  const fhir::Node* root = document.root();
  const fhir::Node* snapshot = root ? root->child("snapshot") : nullptr;
  return snapshot ? snapshot->child("element") : nullptr;
}

}  // namespace medicus::profiles
