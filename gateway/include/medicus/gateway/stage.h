#pragma once
// The request pipeline: small named stages, listed per route in the config (like Envoy's HTTP
// filters). A StageFactory checks a stage's options once at config load and builds an immutable
// Stage; per request the server calls Stage::onRequest, which returns Continue or Respond(issues).
// Stages never format replies and never do I/O: forwarding to the upstream is the route's terminal
// action, run by the server as a coroutine. This header has no Beast/Asio/yaml-cpp in it so that
// other modules (MLLP, store) can add stages cheaply.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/fhir/issue.h"

namespace medicus::fhir {
class Document;
class Node;
}  // namespace medicus::fhir

namespace medicus::gateway {

// One validation a stage ran, for the server's metrics (medicus_validation_*): the profile label and the
// rule and severity of every issue found. The server counts and clears these after each stage.
struct ValidationRecord {
  std::string profile;  // the stage's profiles, comma-separated; "core" when it checks R4 core alone
  std::vector<std::pair<std::string, fhir::Severity>> issues;  // rule_id (may be empty), severity
  bool passed = true;                                          // no error or fatal issue
};

// What a stage sees of one request. Views point into the server's request; valid during onRequest.
struct Exchange {
  std::string_view method;           // "GET", "POST", ...
  std::string_view path;             // without the query, e.g. /fhir/Patient/123
  std::string_view route_name;
  std::string_view resource_type;    // from the path after the route prefix ("Patient"); may be empty
  std::string_view client_identity;  // mTLS subject/SAN; empty without a client certificate
  // The parsed request body when the request has a FHIR body and some stage asked for it
  // (Stage::needsResource); null otherwise.
  const fhir::Document* resource = nullptr;
  // POST [base]/$validate or [base]/[type]/$validate: `resource` is the resource to check, and a
  // validate stage answers 200 + OperationOutcome (whatever its mode) with its profiles plus these.
  bool validate_operation = false;
  std::vector<std::string> operation_profiles;
  // Headers a stage adds to the reply sent to the client (e.g. a validation summary in report mode).
  std::vector<std::pair<std::string, std::string>> response_headers;
  // Validations run by stages on this request (see ValidationRecord).
  std::vector<ValidationRecord> validations;
};

struct StageResult {
  enum class Action : uint8_t { Continue, Respond };
  Action action = Action::Continue;
  unsigned http_status = 0;  // for Respond: 400, 403, 422, ...
  fhir::Issues issues;       // for Respond: the OperationOutcome's issues

  static StageResult next() { return {}; }
  static StageResult respond(unsigned status, fhir::Issues issues) {
    return {Action::Respond, status, std::move(issues)};
  }
};

class Stage {
 public:
  virtual ~Stage() = default;
  // True when onRequest needs the parsed request body (the server parses it once for all stages).
  virtual bool needsResource() const { return false; }
  // Must not throw; must be safe to call from several threads at once (the stage is shared).
  virtual StageResult onRequest(Exchange& exchange) const = 0;
};

// A configured stage in a route: its registered name and the immutable object built from its options.
struct NamedStage {
  std::string name;
  std::shared_ptr<const Stage> stage;
};
using StageChain = std::vector<NamedStage>;

// Typed access to one stage's options (the YAML mapping after the stage name). Each accessor records
// the key as known; after the factory returns, keys it never asked for are reported as unknown.
// Errors are collected with file:line:column; on error the accessor returns nullopt.
class StageOptions {
 public:
  virtual ~StageOptions() = default;
  virtual std::optional<std::string> getString(std::string_view key) = 0;
  virtual std::optional<std::vector<std::string>> getStringList(std::string_view key) = 0;
  virtual std::optional<bool> getBool(std::string_view key) = 0;
  // An error at the key's value (or at the stage when the key is absent).
  virtual void error(std::string_view key, std::string message) = 0;
  // The folder of the config file, for relative paths.
  virtual const std::string& baseDir() const = 0;
};

struct StageFactory {
  std::string name;     // as written in the config: "validate"
  std::string summary;  // one line for check-config --help
  // Returns null after reporting errors through options.error().
  std::function<std::shared_ptr<const Stage>(StageOptions& options)> create;
};

class StageRegistry {
 public:
  void add(StageFactory factory);
  const StageFactory* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::vector<StageFactory> factories_;
};

// The registry used by loadConfig. Built-ins are registered explicitly (static self-registration is
// dropped by the linker from static libraries).
StageRegistry& stageRegistry();
void registerBuiltinStages(StageRegistry& registry);

}  // namespace medicus::gateway
