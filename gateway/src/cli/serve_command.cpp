// medicus-gateway serve [--config FILE.yaml]: runs the gateway until SIGTERM/SIGINT; SIGHUP reloads.
// Without --config it runs the embedded default (kDefaultConfig below, the same as
// gateway/config/default.yaml): HTTPS on 127.0.0.1:8443 with a self-signed certificate made at first
// start under ./medicus-data/, plain HTTP on 127.0.0.1:8080, one route /fhir to a FHIR server on
// http://127.0.0.1:8103/fhir. --https-port, --http-port, --upstream and --base-dir change those four
// values of the embedded default (a second instance, the process-level test); nothing else.
#include <charconv>
#include <cstdio>
#include <optional>
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

constexpr const char* kUsage =
    "usage: medicus-gateway serve [--config FILE.yaml]\n"
    "       medicus-gateway serve [--https-port N] [--http-port N] [--upstream URL] [--base-dir DIR]\n";

// What the embedded default's options change; unset: the embedded value.
struct DefaultOverrides {
  std::optional<uint16_t> https_port, http_port;  // 0: any free port (the log says which)
  std::optional<UpstreamEndpoint> upstream;
  std::string base_dir;  // its relative paths (medicus-data/tls/...) are under this; empty: the current directory
  bool any() const { return https_port || http_port || upstream || !base_dir.empty(); }
};

std::optional<uint16_t> parsePort(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// The embedded default with `overrides` applied to its listeners "https"/"http" and upstream "fhir".
std::shared_ptr<const GatewayConfig> withOverrides(const GatewayConfig& embedded, const DefaultOverrides& overrides) {
  auto config = std::make_shared<GatewayConfig>(embedded);
  for (auto& listener : config->listeners) {
    if (listener.name == "https" && overrides.https_port) listener.port = *overrides.https_port;
    if (listener.name == "http" && overrides.http_port) listener.port = *overrides.http_port;
  }
  for (auto& upstream : config->upstreams) {
    if (upstream.name == "fhir" && overrides.upstream) upstream.endpoints = {*overrides.upstream};
  }
  return config;
}

}  // namespace

int runServe(const Args& args) {
  std::string config_path;
  DefaultOverrides overrides;
  auto usageError = [](std::string_view what, std::string_view argument) {
    std::fprintf(stderr, "serve: %.*s '%.*s'\n%s", static_cast<int>(what.size()), what.data(),
                 static_cast<int>(argument.size()), argument.data(), kUsage);
    return kExitUsage;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--config" && has_value) {
      config_path = std::string(args[++i]);
    } else if ((args[i] == "--https-port" || args[i] == "--http-port") && has_value) {
      std::optional<uint16_t> port = parsePort(args[i + 1]);
      if (!port) return usageError("a port is a number from 0 (any free port) to 65535, not", args[i + 1]);
      (args[i] == "--https-port" ? overrides.https_port : overrides.http_port) = port;
      ++i;
    } else if (args[i] == "--upstream" && has_value) {
      overrides.upstream = parseEndpoint(args[++i]);
      if (!overrides.upstream) return usageError("--upstream is a URL such as http://127.0.0.1:8103/fhir, not", args[i]);
    } else if (args[i] == "--base-dir" && has_value) {
      overrides.base_dir = std::filesystem::absolute(std::string(args[++i])).string();
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::printf("%s\n"
                  "Runs the FHIR gateway. SIGTERM/SIGINT drain requests in flight and stop; SIGHUP reloads the\n"
                  "config, the hl7v2 listener policies, maps and delivery routes included (a config with errors is\n"
                  "reported and the running one kept). Without --config the\n"
                  "embedded default runs (see gateway/config/default.yaml): HTTPS on 127.0.0.1:8443 with a\n"
                  "self-signed certificate made at first start under ./medicus-data/tls/, HTTP on 127.0.0.1:8080,\n"
                  "/fhir forwarded to http://127.0.0.1:8103/fhir. Options for the embedded default only:\n"
                  "  --https-port N, --http-port N  listen there instead (0: any free port, the log says which)\n"
                  "  --upstream URL                 forward /fhir to this FHIR base URL instead\n"
                  "  --base-dir DIR                 keep medicus-data/ (the certificate) under DIR, not the current directory\n",
                  kUsage);
      return kExitOk;
    } else {
      return usageError("unknown argument", args[i]);
    }
  }
  if (!config_path.empty() && overrides.any()) {
    return usageError("--https-port, --http-port, --upstream and --base-dir change the embedded default; with --config, write them in",
                      config_path);
  }
  installProfileValidatorProvider();  // validate stages: medicus::profiles, packages cached by list
  const std::string base_dir = overrides.base_dir.empty() ? std::filesystem::current_path().string() : overrides.base_dir;
  auto config = config_path.empty() ? loadConfigText(kDefaultConfig, "<embedded default>", base_dir) : loadConfig(config_path);
  if (!config) {
    for (const auto& error : config.error()) std::fprintf(stderr, "%s\n", formatConfigError(error).c_str());
    return kExitInputErrors;
  }
  if (overrides.any()) config = withOverrides(**config, overrides);
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
