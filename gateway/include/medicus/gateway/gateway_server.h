#pragma once
// The HTTP(S) FHIR gateway server: listeners, the route pipeline, the upstream client, /metrics,
// /healthz, /readyz and the access log. Boost.Asio/Beast stay behind this interface.
//
// Threads: `workers` io_contexts, one thread each; accepted connections are spread over them. The
// config is swapped atomically on reload(); requests in flight keep the config they started with.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "medicus/gateway/config.h"

namespace medicus::gateway {

class GatewayServer {
 public:
  // Log lines (startup, reload, errors) go to `log`; the JSON access log goes where the config says.
  using LogSink = std::function<void(std::string_view line)>;

  explicit GatewayServer(std::shared_ptr<const GatewayConfig> config, LogSink log = {});
  ~GatewayServer();
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  // Binds every listener and starts the worker threads. Throws std::runtime_error on startup
  // failures (address in use, unreadable certificate) with a message saying what to fix.
  void start();
  // The bound port of a listener (useful with port 0), or 0 if there is no such listener.
  uint16_t port(std::string_view listener_name) const;

  // Swaps in a new config for routes, upstreams and stages, and for each listener that keeps its name,
  // protocol, address and port: its TLS files (read again), limits and admin endpoints, for connections
  // accepted from then on. Other listener changes need a restart (logged). Throws std::runtime_error
  // (naming the file) when a certificate, key or CA bundle does not load; then nothing changed.
  void reload(std::shared_ptr<const GatewayConfig> config);
  // Loads the file and reloads; on failure keeps the running config, logs why and returns false.
  // After a successful reload, the reload hooks run with the new config (on the calling thread).
  bool reloadFromFile(const std::string& path);
  // Runs after each successful reloadFromFile (e.g. the HL7 v2 intake reading its section of the same
  // file). Not thread-safe against a reload in progress: add hooks before runUntilSignalled.
  void addReloadHook(std::function<void(const std::string& path, std::shared_ptr<const GatewayConfig> config)> hook);

  // Graceful stop: stop accepting, let requests in flight finish (up to drain_timeout), then stop.
  // Safe to call from any thread, also from a signal handler thread.
  void stop();
  // Blocks until the server has stopped.
  void wait();

  // Runs until SIGTERM/SIGINT (graceful stop); SIGHUP reloads from `config_path`.
  void runUntilSignalled(const std::string& config_path);

  std::string metricsText() const;
  // More Prometheus text appended to /metrics (e.g. the HL7 v2 intake's). Thread-safe.
  void addMetricsSource(std::function<std::string()> source);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway
