// medicus-gateway check-config FILE.yaml: loads and checks a config like `serve` would, without
// binding ports or connecting anywhere: the file itself, the certificates, keys and CA bundles it
// names (loaded as at start), the hl7v2 section and its maps (compiled). Exit 0 when valid, 1 with
// every error as "file:line:column: message".
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "medicus/gateway/config.h"
#include "medicus/gateway/profile_validator_provider.h"
#include "tls_setup.h"
#ifdef MEDICUS_HAVE_HL7V2_INTAKE
#include "delivery/bundle_mapper.h"
#include "mllp/intake_config.h"
#endif

namespace medicus::gateway::cli {
namespace {

// Prints "file:line:column: <owner>: <problem>" when `problem` is not empty; returns 1 then, else 0.
size_t reportTls(const std::string& file, uint32_t line, uint32_t column, const std::string& owner, const std::string& problem) {
  if (problem.empty()) return 0;
  std::fprintf(stderr, "%s\n", formatConfigError({file, line, column, owner + " tls: " + problem}).c_str());
  return 1;
}

}  // namespace

int runCheckConfig(const Args& args) {
  if (args.size() != 1 || args[0] == "--help" || args[0] == "-h") {
    std::fprintf(args.size() == 1 ? stdout : stderr,
                 "usage: medicus-gateway check-config FILE.yaml\n\n"
                 "Checks a gateway config (listeners, upstreams, routes, stages, the hl7v2 section and its maps)\n"
                 "as serve reads it at start: certificates, keys and CA bundles are loaded, maps compiled; nothing\n"
                 "is bound or connected (upstreams, the PostgreSQL store). Relative paths are relative to the\n"
                 "file's folder. Prints every error as\n"
                 "file:line:column: message. Exit 0 when valid, 1 when it has errors.\n"
                 "Stages: ");
    for (const auto& name : stageRegistry().names()) std::fprintf(stdout, "%s ", name.c_str());
    std::fprintf(stdout, "\n");
    return args.size() == 1 ? kExitOk : kExitUsage;
  }
  installProfileValidatorProvider();  // validate stages: medicus::profiles, packages cached by list
  auto config = loadConfig(std::string(args[0]));
  if (!config) {
    for (const auto& error : config.error()) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    std::fprintf(stderr, "%zu error(s)\n", config.error().size());
    return kExitInputErrors;
  }
  const GatewayConfig& c = **config;
  const std::string file(args[0]);
  // The certificates, keys and CA bundles serve loads at start (it would refuse to start, or fail the
  // first upstream handshake).
  if (ConfigErrors tls_errors = checkTlsFiles(c); !tls_errors.empty()) {
    for (const auto& error : tls_errors) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    std::fprintf(stderr, "%zu error(s)\n", tls_errors.size());
    return kExitInputErrors;
  }
  std::string hl7v2_summary;
#ifdef MEDICUS_HAVE_HL7V2_INTAKE
  // The hl7v2: section (MLLP listeners, store, delivery) is read by the intake, as `serve` does.
  auto intake = mllp::loadIntakeConfig(std::string(args[0]), &c);
  if (!intake) {
    for (const auto& error : intake.error()) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    std::fprintf(stderr, "%zu error(s)\n", intake.error().size());
    return kExitInputErrors;
  }
  if (*intake) {
    size_t tls_errors = 0;
    for (const auto& l : (**intake).listeners) {
      if (l.tls) {
        tls_errors += reportTls(file, l.tls->line, l.tls->column, "hl7v2 listener '" + l.policy.listener_name + "'",
                                checkServerTlsFiles(*l.tls));
      }
    }
    if (tls_errors) {
      std::fprintf(stderr, "%zu error(s)\n", tls_errors);
      return kExitInputErrors;
    }
    // Each delivery route's maps are compiled, as serve does at start and on SIGHUP.
    size_t map_errors = 0;
    for (const auto& route : (**intake).routes) {
      if (route.maps_dir.empty()) continue;
      if (auto mapper = delivery::loadV2ToFhirMapper(route.maps_dir); !mapper) {
        std::fprintf(stderr, "%s: delivery route %s: maps in %s: %s\n", std::string(args[0]).c_str(), route.name.c_str(),
                     route.maps_dir.c_str(), mapper.error().c_str());
        ++map_errors;
      }
    }
    if (map_errors) {
      std::fprintf(stderr, "%zu error(s)\n", map_errors);
      return kExitInputErrors;
    }
    hl7v2_summary = ", " + std::to_string((**intake).listeners.size()) + " MLLP listeners, " +
                    std::to_string((**intake).routes.size()) + " delivery routes";
  }
#endif
  std::printf("%s: ok (%zu listeners, %zu upstreams, %zu routes%s)\n", std::string(args[0]).c_str(),
              c.listeners.size(), c.upstreams.size(), c.routes.size(), hl7v2_summary.c_str());
  return kExitOk;
}

}  // namespace medicus::gateway::cli
