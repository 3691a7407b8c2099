#pragma once
// The gateway's configuration: listeners, upstreams and routes, read from one YAML file.
// loadConfig() checks everything once at startup (and on SIGHUP): unknown keys, wrong types, dangling
// names, stage options. Every error names file:line:column and what to write instead. A loaded
// GatewayConfig is immutable and shared by all workers (shared_ptr<const GatewayConfig>).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/gateway/stage.h"

namespace medicus::gateway {

using Millis = std::chrono::milliseconds;

// One problem found in a config file. `line`/`column` are 1-based, 0 when unknown (missing file).
struct ConfigError {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;  // what is wrong and what to write instead
};
using ConfigErrors = std::vector<ConfigError>;
// "file:line:column: message"
std::string formatConfigError(const ConfigError& error);

struct ServerTlsConfig {
  std::string certificate_file;  // PEM chain
  std::string private_key_file;  // PEM
  // Make a self-signed certificate (and key) at these paths at first start when they are missing.
  bool self_signed_if_missing = false;
  std::string client_ca_file;    // mutual TLS: verify client certificates against this bundle
  bool require_client_certificate = false;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  uint32_t line = 0, column = 0;    // where 'tls:' is in the file (check-config's certificate checks)
};

struct ListenerLimits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 10u << 20;
  Millis header_timeout{10'000};   // whole request head, from the first byte (slow clients)
  Millis body_timeout{30'000};
  Millis write_timeout{30'000};
  Millis idle_timeout{60'000};     // keep-alive wait for the next request

  bool operator==(const ListenerLimits&) const = default;
};

enum class ListenerProtocol : uint8_t { Http, Https, Mllp };

struct ListenerConfig {
  std::string name;
  ListenerProtocol protocol = ListenerProtocol::Http;
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (tests)
  std::optional<ServerTlsConfig> tls;  // required for https
  ListenerLimits limits;
  bool admin_endpoints = true;  // /metrics, /healthz, /readyz on this listener
};

struct UpstreamEndpoint {
  bool https = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // "/fhir" (no trailing slash; empty for the root)
  std::string url() const;  // "http://host:port/fhir"
};

struct HealthCheckConfig {
  bool enabled = false;
  std::string path = "/metadata";  // appended to the endpoint's base path
  Millis interval{5'000};
  Millis timeout{2'000};
  uint32_t unhealthy_after = 2;  // consecutive failures
};

struct UpstreamTlsConfig {
  bool verify = true;
  std::string ca_file;           // empty: the system's default trust store
  std::string certificate_file;  // client certificate for mTLS towards the upstream
  std::string private_key_file;
  std::string server_name;       // SNI and name check; default: the endpoint host
  bool session_reuse = true;     // new connections resume the session the endpoint issued last
  uint32_t line = 0, column = 0; // where 'tls:' is in the file, 0 without one
};

enum class WireFormat : uint8_t { Json, Xml };

// "http://host:port/base" or "https://..." (port defaults to 80/443); nullopt for anything else.
std::optional<UpstreamEndpoint> parseEndpoint(std::string_view url);

struct UpstreamConfig {
  std::string name;
  std::vector<UpstreamEndpoint> endpoints;
  WireFormat format = WireFormat::Json;  // the format the upstream reads and writes
  UpstreamTlsConfig tls;
  size_t max_idle_connections = 32;  // per worker thread and endpoint
  Millis connect_timeout{2'000};
  // How long a host name's addresses are used for new connections before it is looked up again (per
  // worker thread); 0: a lookup for every new connection. (IP addresses need none.)
  Millis resolve_ttl{30'000};
  Millis response_timeout{30'000};
  size_t max_response_bytes = 64u << 20;
  HealthCheckConfig health_check;
};

struct RouteMatch {
  std::string path_prefix = "/";
  std::vector<std::string> methods;         // empty: any
  std::vector<std::string> resource_types;  // empty: any (also requests without a type, e.g. /metadata)
  std::vector<std::string> clients;         // empty: any; else the client identity must be one of these
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  StageChain stages;           // request stages, run in order before forwarding
  std::string upstream;        // forward to this upstream (checked to exist)
  bool convert_format = true;  // convert bodies between the client's and the upstream's format
  bool rewrite_urls = true;    // upstream base URL -> gateway base URL in headers and Bundles
};

struct ServerConfig {
  uint32_t workers = 0;  // io_context threads; 0: one per core this process may use (CPU affinity)
  std::string access_log = "stderr";  // "stderr", "stdout", "off" or a file path
  Millis drain_timeout{10'000};
};

struct GatewayConfig {
  std::string source_file;  // the YAML file this came from
  ServerConfig server;
  std::vector<ListenerConfig> listeners;
  std::vector<UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;

  const UpstreamConfig* findUpstream(std::string_view name) const;
};

// Reads and checks a config file. Relative paths inside it are resolved against its folder.
// Never throws; all errors found are returned (not just the first).
tl::expected<std::shared_ptr<const GatewayConfig>, ConfigErrors> loadConfig(const std::string& path);
// The same for YAML text already in memory; `file_name` is used in error messages and `base_dir`
// for relative paths.
tl::expected<std::shared_ptr<const GatewayConfig>, ConfigErrors> loadConfigText(const std::string& yaml,
                                                                                const std::string& file_name,
                                                                                const std::string& base_dir);

// What a reload cannot apply to the running HTTP(S) listeners, one text per listener: their sockets are
// bound once, at start, so a changed protocol, address or port, and listeners added or removed, wait
// for a restart ("listener 'main': port", "listener 'admin': added"). Empty: nothing. TLS files,
// limits and admin_endpoints of a listener that stays are applied by the reload. MLLP listeners are the
// HL7 v2 intake's, which says its own.
std::vector<std::string> listenerChangesNeedingRestart(const GatewayConfig& running, const GatewayConfig& reloaded);

// "10s", "250ms", "2m", or a bare integer of milliseconds.
std::optional<Millis> parseDuration(std::string_view text);
// "16KiB", "10MiB", "1048576": bytes.
std::optional<size_t> parseByteSize(std::string_view text);

}  // namespace medicus::gateway
