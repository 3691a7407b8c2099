// Invariants through medicus::fhirpath (built when that library is part of the build).
#include "medicus/fhirpath/fhirpath.h"
#include "medicus/profiles/invariant_engine.h"

namespace medicus::profiles {
namespace {
// memberOf(), subsumes(), conformsTo(), elementDefinition(), slice() and resolve() of the FHIRPath
// engine answered by the validator.
class Hooks final : public fhirpath::ExternalHooks {
 public:
  explicit Hooks(const InvariantServices& services) : services_(services) {}
  tl::expected<bool, std::string> conformsTo(const fhir::Node& resource, std::string_view url) const override {
    return services_.conformsTo(resource, url);
  }
  tl::expected<bool, std::string> memberOf(const fhirpath::Item& item, std::string_view value_set) const override {
    if (item.isNode()) return services_.memberOf(item.node, {}, value_set);
    if (const auto* text = std::get_if<std::string>(&item.value)) return services_.memberOf(nullptr, *text, value_set);
    return tl::unexpected(std::string("memberOf() needs a code, Coding, CodeableConcept or string"));
  }
  const fhir::Node* resolveExternal(std::string_view reference) const override { return services_.resolve(reference); }
  tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                           std::string_view descendant) const override {
    return services_.subsumes(system, ancestor, descendant);
  }
  tl::expected<const fhir::Node*, std::string> elementDefinition(const fhir::Node& element) const override {
    return services_.elementDefinition(element);
  }
  tl::expected<bool, std::string> inSlice(const fhir::Node& element, std::string_view structure_url,
                                          std::string_view slice_name) const override {
    return services_.inSlice(element, structure_url, slice_name);
  }

 private:
  const InvariantServices& services_;
};

class FhirpathInvariant final : public CompiledInvariant {
 public:
  explicit FhirpathInvariant(fhirpath::Expression expression) : expression_(std::move(expression)) {}
  tl::expected<bool, std::string> holds(const fhir::Node& focus, const fhir::Node& resource, const fhir::Node& root,
                                        const InvariantServices* services,
                                        const fhir::Node* extension) const override {
    fhirpath::EvaluationContext context;
    context.context = &focus;
    context.resource = &resource;
    context.root_resource = &root;
    std::optional<Hooks> hooks;
    if (services) context.hooks = &hooks.emplace(*services);
    std::map<std::string, fhirpath::Collection, std::less<>> variables;
    if (extension) {
      variables["extension"] = fhirpath::Collection{fhirpath::Item(extension)};
      context.variables = &variables;
    }
    auto result = expression_.evaluateBoolean(context, false);  // empty: not met (see holds() in the header)
    if (!result) return tl::make_unexpected(result.error().toString());
    return *result;
  }
  tl::expected<std::vector<const fhir::Node*>, std::string> select(const fhir::Node& focus, const fhir::Node& resource,
                                                                   const fhir::Node& root,
                                                                   const InvariantServices* services) const override {
    fhirpath::EvaluationContext context;
    context.context = &focus;
    context.resource = &resource;
    context.root_resource = &root;
    std::optional<Hooks> hooks;
    if (services) context.hooks = &hooks.emplace(*services);
    auto result = expression_.evaluate(context);
    if (!result) return tl::make_unexpected(result.error().toString());
    std::vector<const fhir::Node*> nodes;
    for (const auto& item : *result) if (item.isNode()) nodes.push_back(item.node);
    return nodes;
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
