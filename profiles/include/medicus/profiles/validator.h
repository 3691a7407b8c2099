#pragma once
// Profile validation of FHIR resources (http://hl7.org/fhir/R4/validation.html): against the base
// definition of the resource type, every meta.profile, the global profiles of loaded ImplementationGuides
// and the profiles the caller asks for.
//
//   PackageRegistry registry; registry.loadCore();
//   ProfileStore store(registry);
//   Terminology terminology(registry);
//   Validator validator(store, terminology);
//   fhir::Issues issues = validator.validate(*parsed.document, {.profiles = {url}});
//
// Checks: cardinality, types (choices, Reference.targetProfile, type profiles), fixed[x]/pattern[x],
// minValue/maxValue, maxLength, bindings (required: error, extensible: warning, codes of systems not
// available locally: information; additional bindings, R5's binding.additional as R4 extensions:
// required/current/maximum/extensible), invariants (FHIRPath), slicing (value, pattern, type, profile,
// exists; closed/open/openAtEnd; ordered), extensions by URL, contained resources and Bundle entries
// with references resolved inside the Bundle (and by an optional ReferenceResolver beyond it);
// resolved targets must conform to one of the element's targetProfiles. Primitive formats are checked by the parser.
// Rules of single resource types that their definitions cannot express are in their own files:
// SearchParameter, CapabilityStatement (search parameter types), StructureDefinition (the differential
// against its base: type profiles, slicing, renamed choices, element order, bindings), MeasureReport,
// QuestionnaireResponse.
// Every issue carries a FHIRPath location, line:col when the document was parsed, and a rule id.
//
// A Validator is immutable after construction apart from the caches of its ProfileStore and
// Terminology, which are thread-safe: one Validator may serve many threads.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/profile_store.h"
#include "medicus/profiles/terminology.h"

namespace medicus::profiles {

// Resolves references that point outside the validated document ("Patient/1", an absolute URL) to
// the resource they name: a folder of resources, a set loaded beforehand, a server behind the gateway.
// The returned node must stay valid until the validate() call returns; nullptr when unknown. Called
// from the validating thread only.
class ReferenceResolver {
 public:
  virtual ~ReferenceResolver() = default;
  virtual const fhir::Node* resolve(std::string_view reference) = 0;
};

struct ValidationOptions {
  std::vector<std::string> profiles;  // canonicals the root resource must conform to (besides meta.profile)
  // Profiles for the entries of a root Bundle (the gateway's route profiles on a batch or transaction):
  // each Bundle.entry.resource must also conform to those of them that constrain its type; the others
  // do not apply to it.
  std::vector<std::string> entry_profiles;
  bool use_meta_profiles = true;
  // The global profiles of the loaded ImplementationGuides (ImplementationGuide.global) apply to
  // every resource of their type, as the guide says.
  bool use_global_profiles = true;
  bool check_invariants = true;
  bool check_bindings = true;
  bool check_codes = true;  // Codings of locally available, complete code systems must exist there
  bool validate_contained = true;  // false: contained resources are neither validated nor checked by dom-3
  // Strings that look like HTML tags are errors (security checks).
  bool security_checks = false;
  bool no_experimental_content = false;  // resources marked experimental are errors
  // Aggregation modes without "referenced" also reject external references when the resource is
  // not in a Bundle (the reference validator's default; its enforceAggregationOutsideBundles).
  bool enforce_aggregation_outside_bundles = true;
  bool no_html_in_markdown = false;  // markdown with HTML tags is an error
  uint32_t max_depth = 96;  // nesting of elements and contained resources
  // Extensions whose definition is not loaded: information when allowed, else an error (as the
  // reference validator does unless told to allow any extension). Unknown modifier extensions
  // are always errors.
  bool allow_unknown_extensions = true;
  // URLs in example domains (example.org, acme.com): when false, every uri/url/canonical pointing
  // there is an error (published content must not use them).
  bool allow_example_urls = true;
  // Unknown extensions, modifier ones included, in the example domains are accepted without a
  // definition (the reference validator's example mode); off: they are treated like any other.
  bool allow_example_extensions = false;
  std::vector<std::string> allowed_extension_domains;  // url prefixes whose extensions may be unknown
  // RESTful references ("Patient/1", ".../Patient/1") are taken to exist; what can be told from
  // them alone is checked: a QuestionnaireResponse reference answer must name a resource type the
  // item allows (questionnaire-referenceResource) or at least a FHIR resource type. The reference
  // validator's assumeValidRestReferences setting; off by default, as there.
  bool assume_valid_rest_references = false;
  // References neither contained nor in the Bundle are looked up here (nullptr: they are not). A
  // resolved target is checked like a Bundle entry: its type and, when the element names profiles
  // (Reference.targetProfile), its conformance to one of them. resolve() in invariants uses it too.
  ReferenceResolver* reference_resolver = nullptr;
  // R4: an Observation with a vital sign code (LOINC, or SNOMED CT) SHALL conform to the matching core
  // vital signs profile (observation-vitalsigns.html); it is checked against it like a meta.profile.
  bool vital_signs_profiles = true;
};

class Validator {
 public:
  Validator(ProfileStore& store, Terminology& terminology) : store_(store), terminology_(terminology) {}

  // Appends the issues found in `document` (its root resource and everything inside) to `issues`.
  void validate(const fhir::Document& document, const ValidationOptions& options, fhir::Issues& issues) const;
  fhir::Issues validate(const fhir::Document& document, const ValidationOptions& options = {}) const {
    fhir::Issues issues;
    validate(document, options, issues);
    return issues;
  }

  ProfileStore& store() const { return store_; }
  Terminology& terminology() const { return terminology_; }

 private:
  ProfileStore& store_;
  Terminology& terminology_;
};

}  // namespace medicus::profiles
