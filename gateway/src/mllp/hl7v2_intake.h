#pragma once
// The running HL7 v2 intake of `medicus-gateway serve`: the message store, the MLLP listeners and the
// delivery worker, built from the `hl7v2:` section of the config file.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "medicus/gateway/config.h"

namespace medicus::gateway::mllp {

class Hl7v2Intake {
 public:
  using LogSink = std::function<void(std::string_view)>;

  // nullptr when the file has no `hl7v2:` section. Throws std::runtime_error (config errors with
  // file:line, a map folder with errors, store or listener start-up failures).
  static std::unique_ptr<Hl7v2Intake> start(const std::string& config_path, std::shared_ptr<const GatewayConfig> gateway,
                                            LogSink log);
  ~Hl7v2Intake();  // stops listeners, then delivery, then the store (queued commits finish)

  // SIGHUP: reads the `hl7v2:` section again and compiles every delivery route's maps. When all of it
  // loads, the listeners take their new policies (charset, senders, versions, message types, route) and
  // the delivery its new routes (maps, upstream, retries); otherwise nothing changes. Either way the log
  // says what happened and why (also what needs a restart: store, listener addresses, TLS on or off, limits).
  // `gateway` is the gateway config loaded from the same file. Returns true when the new settings are active.
  bool reload(const std::string& config_path, std::shared_ptr<const GatewayConfig> gateway);

  uint16_t port(std::string_view listener_name) const;
  std::string metricsText() const;  // Prometheus text of the intake metrics

 private:
  struct Impl;
  explicit Hl7v2Intake(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::mllp
