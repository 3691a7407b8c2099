// The stage registry and the built-in stages: validate (the seam to medicus::profiles) and
// require-client (reject requests without an authenticated client identity).
#include <algorithm>
#include <mutex>

#include "medicus/fhir/node.h"
#include "medicus/gateway/resource_validator.h"
#include "medicus/gateway/stage.h"

namespace medicus::gateway {

void StageRegistry::add(StageFactory factory) {
  auto it = std::find_if(factories_.begin(), factories_.end(), [&](const StageFactory& f) { return f.name == factory.name; });
  if (it != factories_.end()) *it = std::move(factory);
  else factories_.push_back(std::move(factory));
}

const StageFactory* StageRegistry::find(std::string_view name) const {
  for (const auto& f : factories_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::vector<std::string> StageRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& f : factories_) out.push_back(f.name);
  return out;
}

StageRegistry& stageRegistry() {
  static StageRegistry registry;
  static std::once_flag builtins;
  std::call_once(builtins, [] { registerBuiltinStages(registry); });
  return registry;
}

namespace {

ResourceValidatorProvider& providerSlot() {
  static ResourceValidatorProvider provider;
  return provider;
}

enum class ValidationMode : uint8_t { Off, Report, Enforce };

// validate: { mode: enforce|report|off, profiles: [canonical URLs], packages: [name#version] }
// enforce: errors -> 422 + OperationOutcome (http://hl7.org/fhir/R4/http.html#2.21.0.10);
// report: forward, and add X-Medicus-Validation: "errors=N; warnings=M" to the reply.
class ValidateStage final : public Stage {
 public:
  ValidateStage(ValidationMode mode, std::shared_ptr<const ResourceValidator> validator, std::vector<std::string> profiles)
      : mode_(mode), validator_(std::move(validator)), profiles_(std::move(profiles)) {
    for (const auto& p : profiles_) profile_label_ += (profile_label_.empty() ? "" : ",") + p;
    if (profile_label_.empty()) profile_label_ = "core";
  }

  bool needsResource() const override { return mode_ != ValidationMode::Off; }

  StageResult onRequest(Exchange& exchange) const override {
    if (!validator_ || !exchange.resource || !exchange.resource->root()) return StageResult::next();
    if (exchange.validate_operation) {
      // $validate: the outcome is the answer (http://hl7.org/fhir/R4/resource-operation-validate.html).
      // The route's profiles where they apply; those the client names must hold for the resource.
      fhir::Issues issues = validator_->validate(*exchange.resource, profiles_, exchange.operation_profiles);
      // Profiles named by the client are not metric labels (unbounded); they count under the stage's label.
      record(exchange, issues);
      return StageResult::respond(200, std::move(issues));
    }
    if (mode_ == ValidationMode::Off) return StageResult::next();
    fhir::Issues issues = validator_->validate(*exchange.resource, profiles_);
    record(exchange, issues);
    size_t errors = fhir::countAtLeast(issues, fhir::Severity::Error);
    size_t warnings = fhir::countAtLeast(issues, fhir::Severity::Warning) - errors;
    if (mode_ == ValidationMode::Enforce && errors > 0) return StageResult::respond(422, std::move(issues));
    if (mode_ == ValidationMode::Report) {
      exchange.response_headers.emplace_back("X-Medicus-Validation",
                                             "errors=" + std::to_string(errors) + "; warnings=" + std::to_string(warnings));
    }
    return StageResult::next();
  }

 private:
  void record(Exchange& exchange, const fhir::Issues& issues) const {
    ValidationRecord& r = exchange.validations.emplace_back();
    r.profile = profile_label_;
    r.issues.reserve(issues.size());
    for (const auto& issue : issues) r.issues.emplace_back(issue.rule_id, issue.severity);
    r.passed = !fhir::hasErrors(issues);
  }

  ValidationMode mode_;
  std::shared_ptr<const ResourceValidator> validator_;
  std::vector<std::string> profiles_;
  std::string profile_label_;
};

std::shared_ptr<const Stage> makeValidateStage(StageOptions& options) {
  ValidationMode mode = ValidationMode::Enforce;
  if (auto m = options.getString("mode")) {
    if (*m == "enforce") mode = ValidationMode::Enforce;
    else if (*m == "report") mode = ValidationMode::Report;
    else if (*m == "off") mode = ValidationMode::Off;
    else {
      options.error("mode", "mode must be enforce (reject with 422), report (forward and add a header) or off");
      return nullptr;
    }
  }
  ValidatorRequest request;
  if (auto p = options.getStringList("profiles")) request.profiles = *p;
  if (auto p = options.getStringList("packages")) request.packages = *p;
  if (mode == ValidationMode::Off) return std::make_shared<ValidateStage>(mode, nullptr, std::move(request.profiles));
  const ResourceValidatorProvider& provider = providerSlot();
  if (!provider) {
    options.error("mode",
                  "validation is not available in this build yet: no profile validator (medicus::profiles) is wired "
                  "into the gateway. Write 'mode: off' or remove the validate stage for now");
    return nullptr;
  }
  auto validator = provider(request);
  if (!validator) {
    options.error(request.packages.empty() ? "profiles" : "packages", "cannot set up validation: " + validator.error());
    return nullptr;
  }
  return std::make_shared<ValidateStage>(mode, std::move(*validator), std::move(request.profiles));
}

// require-client: { clients: [identity, ...] } — 403 unless the client presented a certificate whose
// identity is listed (or any certificate when the list is empty). Routes' match.clients selects a
// route; this stage turns "no route for you" into an explicit 403 on a shared route.
class RequireClientStage final : public Stage {
 public:
  explicit RequireClientStage(std::vector<std::string> clients) : clients_(std::move(clients)) {}
  StageResult onRequest(Exchange& exchange) const override {
    bool allowed = !exchange.client_identity.empty() &&
                   (clients_.empty() ||
                    std::find(clients_.begin(), clients_.end(), exchange.client_identity) != clients_.end());
    if (allowed) return StageResult::next();
    fhir::Issue issue;
    issue.severity = fhir::Severity::Error;
    issue.type = fhir::IssueType::Security;
    issue.message = exchange.client_identity.empty()
                        ? "this route needs a client certificate (mutual TLS); none was presented"
                        : "client '" + std::string(exchange.client_identity) + "' may not use route '" +
                              std::string(exchange.route_name) + "'";
    issue.rule_id = "gateway.require-client";
    return StageResult::respond(403, {std::move(issue)});
  }

 private:
  std::vector<std::string> clients_;
};

}  // namespace

void setResourceValidatorProvider(ResourceValidatorProvider provider) { providerSlot() = std::move(provider); }
const ResourceValidatorProvider& resourceValidatorProvider() { return providerSlot(); }

void registerBuiltinStages(StageRegistry& registry) {
  registry.add({"validate", "validate the request resource against FHIR R4 core and named profiles (enforce/report/off)",
                makeValidateStage});
  registry.add({"require-client", "reply 403 unless the client presented an allowed certificate identity",
                [](StageOptions& options) -> std::shared_ptr<const Stage> {
                  std::vector<std::string> clients;
                  if (auto c = options.getStringList("clients")) clients = *c;
                  return std::make_shared<RequireClientStage>(std::move(clients));
                }});
}

}  // namespace medicus::gateway
