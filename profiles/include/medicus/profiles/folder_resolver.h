#pragma once
// A ReferenceResolver over a folder of resource files: "Patient/p1" (also as the tail of an absolute
// URL, with or without /_history/) is looked up as Patient-p1.json/.xml (also lower-cased) or
// p1.json/.xml, and taken only when the file holds a Patient with id p1. Files are read on first use
// and kept; misses are remembered too.
//
//   FolderResolver resolver("/data/resources");
//   options.reference_resolver = &resolver;
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "medicus/fhir/node.h"
#include "medicus/profiles/validator.h"

namespace medicus::profiles {

class FolderResolver final : public ReferenceResolver {
 public:
  explicit FolderResolver(std::string dir) : dir_(std::move(dir)) {}
  const fhir::Node* resolve(std::string_view reference) override;

 private:
  struct Loaded {
    std::string text;  // the parsed document points into it
    std::unique_ptr<fhir::Document> document;
  };
  std::string dir_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Loaded>, std::less<>> cache_;  // "Type/id" -> resource (null: none)
};

}  // namespace medicus::profiles
