#pragma once
// FHIRPath (http://hl7.org/fhirpath/N1/) with the FHIR R4 additions (http://hl7.org/fhir/R4/fhirpath.html).
//
//   auto expr = fhirpath::compile("name.where(use = 'official').exists()", {.root_type = "Patient"});
//   if (!expr) report(expr.error());               // syntax or semantic error, with position
//   auto result = expr->evaluate({.resource = document.root()});
//
// A compiled Expression is immutable: evaluate() may run concurrently from many threads.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "medicus/fhir/node.h"
#include "medicus/fhirpath/value.h"

namespace medicus::fhirpath {

enum class ErrorKind : uint8_t { Syntax, Semantic, Execution };

struct Diagnostic {
  ErrorKind kind = ErrorKind::Syntax;
  std::string message;
  uint32_t position = 0;  // byte offset in the expression (0 for execution errors without one)
  uint32_t line = 1;
  uint32_t column = 1;
  std::string toString() const;  // "syntax error at 1:7: expected ')'"
};

struct CompileOptions {
  // Type of the context (%context) the expression is evaluated on, e.g. "Patient" or
  // "Observation.component"; enables compile-time checks of element names. Empty: unknown.
  std::string root_type;
  // Lenient mode accepts names the type model does not know (they yield empty); strict mode
  // (FHIRPath tests mode="strict") reports them. With a root type, unknown names are errors either way.
  bool strict = false;
  uint32_t max_depth = 200;  // nesting of the expression tree
};

// Services the caller supplies: the validator implements these (conformsTo, memberOf, resolve of
// external references). Each returns an error message for "cannot say" (an execution error).
class ExternalHooks {
 public:
  virtual ~ExternalHooks() = default;
  // conformsTo(url): does `resource` conform to the profile `url`?
  virtual tl::expected<bool, std::string> conformsTo(const fhir::Node& resource, std::string_view url) const;
  // memberOf(valueset): is the code/Coding/CodeableConcept (or string) in the value set?
  virtual tl::expected<bool, std::string> memberOf(const Item& item, std::string_view value_set_url) const;
  // resolve() for references not found in the resource itself (contained, Bundle); nullptr if unknown.
  virtual const fhir::Node* resolveExternal(std::string_view reference) const { return nullptr; }
  // subsumes()/subsumedBy() (http://hl7.org/fhir/R4/fhirpath.html#functions): is `ancestor` an
  // ancestor of `descendant` in the hierarchy of code system `system`? Equal codes never reach the
  // hook (the engine answers true itself).
  virtual tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                                   std::string_view descendant) const;
  // elementDefinition(): the ElementDefinition node that defines `element` (it must outlive the
  // evaluation result, e.g. a node of a loaded StructureDefinition); nullptr when there is none.
  virtual tl::expected<const fhir::Node*, std::string> elementDefinition(const fhir::Node& element) const;
  // slice(structure, name): does `element` match the slice `slice_name` of the profile `structure_url`?
  // An error when the profile or the slice is unknown.
  virtual tl::expected<bool, std::string> inSlice(const fhir::Node& element, std::string_view structure_url,
                                                  std::string_view slice_name) const;
};

struct EvaluationContext {
  // The focus the expression starts on (%context, $this). May be nullptr: an empty input.
  const fhir::Node* context = nullptr;
  // %resource: defaults to the resource enclosing context; %rootResource: to the outermost one.
  const fhir::Node* resource = nullptr;
  const fhir::Node* root_resource = nullptr;
  // Extra variables (%name without '%'); they shadow the built-in ones.
  const std::map<std::string, Collection, std::less<>>* variables = nullptr;
  const ExternalHooks* hooks = nullptr;
  // now()/today()/timeOfDay(); the default is the system clock. All calls in one evaluation agree.
  std::function<std::chrono::system_clock::time_point()> clock;
  uint32_t max_repeat_items = 100000;  // repeat()/descendants() stop with an error beyond this
  // Receives trace() output; default: discarded (libraries never print).
  std::function<void(std::string_view name, const Collection&)> trace;
};

class Expression {
 public:
  Expression();
  ~Expression();
  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;

  const std::string& text() const;
  tl::expected<Collection, Diagnostic> evaluate(const EvaluationContext& context) const;
  // Convenience for invariants: true when the result is the single Boolean true; empty counts as
  // `empty_is` (the caller's choice: FHIR invariants hold only on true, so the validator passes false).
  // Non-boolean singletons are an error.
  tl::expected<bool, Diagnostic> evaluateBoolean(const EvaluationContext& context, bool empty_is = true) const;

  struct Impl;

 private:
  friend tl::expected<Expression, Diagnostic> compile(std::string_view, const CompileOptions&);
  std::shared_ptr<const Impl> impl_;
};

tl::expected<Expression, Diagnostic> compile(std::string_view expression, const CompileOptions& options = {});

}  // namespace medicus::fhirpath
