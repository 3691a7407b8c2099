#pragma once
// The seam between the gateway's `validate` stage and the profile validator (medicus::profiles).
// The gateway does not validate by itself: until a ResourceValidatorProvider is installed, a route that
// asks for validation (mode enforce or report) is a config error that says so.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/fhir/issue.h"

namespace medicus::fhir {
class Document;
}

namespace medicus::gateway {

class ResourceValidator {
 public:
  virtual ~ResourceValidator() = default;
  // Validates one resource (and, for a Bundle, its entries) against FHIR R4 core and
  // - `profiles` (a route's): each applies to the resources it constrains: the request's resource when it
  //   is of the profile's type, and the entries of a Bundle (batch, transaction) that are;
  // - `required` ($validate's profile parameter): the resource itself must conform, whatever its type.
  // Thread-safe; never throws.
  virtual fhir::Issues validate(const fhir::Document& resource, const std::vector<std::string>& profiles,
                                const std::vector<std::string>& required = {}) const = 0;
};

struct ValidatorRequest {
  std::vector<std::string> packages;  // "de.basisprofil.r4#1.4.0" or package folders
  std::vector<std::string> profiles;  // canonical URLs that must be known after loading the packages
};

// Builds a validator at config load; an error string (e.g. "package X not found in ~/.fhir/packages")
// becomes a config error at the stage.
using ResourceValidatorProvider =
    std::function<tl::expected<std::shared_ptr<const ResourceValidator>, std::string>(const ValidatorRequest&)>;

// Installed once at startup by whoever links the validator (the CLI's serve/check-config).
void setResourceValidatorProvider(ResourceValidatorProvider provider);
const ResourceValidatorProvider& resourceValidatorProvider();

}  // namespace medicus::gateway
