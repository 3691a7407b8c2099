// Invariants through medicus::fhirpath (built when that library is part of the build).
#include "medicus/fhirpath/fhirpath.h"
#include "medicus/profiles/invariant_engine.h"

namespace medicus::profiles {
namespace {
class FhirpathInvariant final : public CompiledInvariant {
 public:
  explicit FhirpathInvariant(fhirpath::Expression expression) : expression_(std::move(expression)) {}
  tl::expected<bool, std::string> holds(const fhir::Node& focus, const fhir::Node& resource,
                                        const fhir::Node& root) const override {
    fhirpath::EvaluationContext context;
    context.context = &focus;
    context.resource = &resource;
    context.root_resource = &root;
    auto result = expression_.evaluateBoolean(context, true);
    if (!result) return tl::make_unexpected(result.error().toString());
    return *result;
  }

 private:
  fhirpath::Expression expression_;
};

class FhirpathEngine final : public InvariantEngine {
 public:
  tl::expected<std::shared_ptr<const CompiledInvariant>, std::string> compile(
      std::string_view expression, std::string_view context_type) const override {
    fhirpath::CompileOptions options;
    // Element names are checked only leniently: profiles may constrain types the expression does not name.
    auto compiled = fhirpath::compile(expression, options);
    if (!compiled) return tl::make_unexpected(compiled.error().toString());
    return std::make_shared<const FhirpathInvariant>(std::move(*compiled));
  }
};
}  // namespace

std::shared_ptr<const InvariantEngine> fhirpathInvariantEngine() {
  static const auto engine = std::make_shared<const FhirpathEngine>();
  return engine;
}

}  // namespace medicus::profiles
