// medicus-gateway serve [--config FILE.yaml]: runs the gateway until SIGTERM/SIGINT; SIGHUP reloads.
// Without --config it runs the embedded default (kDefaultConfig below, the same as
// gateway/config/default.yaml): HTTPS on 127.0.0.1:8443 with a self-signed certificate made at first
// start under ./medicus-data/, plain HTTP on 127.0.0.1:8080, one route /fhir to a FHIR server on
// http://127.0.0.1:8103/fhir.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/command.h"
#include "medicus/gateway/config.h"
#include "medicus/gateway/profile_validator_provider.h"
#include "medicus/gateway/gateway_server.h"
#include "tls_setup.h"
#ifdef MEDICUS_HAVE_HL7V2_INTAKE
#include "mllp/hl7v2_intake.h"
#endif

namespace medicus::gateway::cli {
namespace {

constexpr const char* kDefaultConfig = R"(# Embedded default of `medicus-gateway serve` (same as gateway/config/default.yaml).
server:
  workers: 2
  access_log: stderr
listeners:
  - name: https
    protocol: https
    address: 127.0.0.1
    port: 8443
    tls:
      certificate: medicus-data/tls/gateway.crt
      private_key: medicus-data/tls/gateway.key
      self_signed_if_missing: true
  - name: http
    protocol: http
    address: 127.0.0.1
    port: 8080
upstreams:
  - name: fhir
    endpoints: [http://127.0.0.1:8103/fhir]
    format: json
    connect_timeout: 2s
    response_timeout: 30s
routes:
  - name: fhir
    match: { path_prefix: /fhir }
    forward: { upstream: fhir }
)";

void logLine(std::string_view line) {
  std::fprintf(stderr, "medicus-gateway: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

int runServe(const Args& args) {
  std::string config_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = std::string(args[++i]);
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::printf("usage: medicus-gateway serve [--config FILE.yaml]\n\n"
                  "Runs the FHIR gateway. SIGTERM/SIGINT drain requests in flight and stop; SIGHUP reloads the\n"
                  "config, the hl7v2 listener policies, maps and delivery routes included (a config with errors is\n"
                  "reported and the running one kept). Without --config the\n"
                  "embedded default runs (see gateway/config/default.yaml).\n");
      return kExitOk;
    } else {
      std::fprintf(stderr, "serve: unknown argument '%.*s'; usage: medicus-gateway serve [--config FILE.yaml]\n",
                   static_cast<int>(args[i].size()), args[i].data());
      return kExitUsage;
    }
  }
  installProfileValidatorProvider();  // validate stages: medicus::profiles, packages cached by list
  auto config = config_path.empty()
                    ? loadConfigText(kDefaultConfig, "<embedded default>", std::filesystem::current_path().string())
                    : loadConfig(config_path);
  if (!config) {
    for (const auto& error : config.error()) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    return kExitInputErrors;
  }
  // Certificates that will not load: said with the config's file:line, as check-config says it.
  if (ConfigErrors tls_errors = checkTlsFiles(**config); !tls_errors.empty()) {
    for (const auto& error : tls_errors) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    return kExitInputErrors;
  }
  try {
    GatewayServer server(*config, logLine);
    server.start();
#ifdef MEDICUS_HAVE_HL7V2_INTAKE
    // The HL7 v2 intake (MLLP listeners, store, delivery) of the config's hl7v2: section, if any.
    auto intake = config_path.empty() ? nullptr : mllp::Hl7v2Intake::start(config_path, *config, logLine);
    if (intake) {
      server.addMetricsSource([&intake] { return intake->metricsText(); });
      // SIGHUP: after the gateway's part of the file, the intake's (listener policies, maps, delivery).
      server.addReloadHook([&intake](const std::string& path, std::shared_ptr<const GatewayConfig> reloaded) {
        intake->reload(path, std::move(reloaded));
      });
    }
#endif
    server.runUntilSignalled(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "medicus-gateway serve: cannot start: %s\n", e.what());
    return kExitUsage;
  }
  logLine("stopped");
  return kExitOk;
}

}  // namespace medicus::gateway::cli
