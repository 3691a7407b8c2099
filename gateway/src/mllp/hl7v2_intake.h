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
  // file:line, store or listener start-up failures). `gateway` must outlive the intake.
  static std::unique_ptr<Hl7v2Intake> start(const std::string& config_path, const GatewayConfig& gateway, LogSink log);
  ~Hl7v2Intake();  // stops listeners, then delivery, then the store (queued commits finish)

  uint16_t port(std::string_view listener_name) const;
  std::string metricsText() const;  // Prometheus text of the intake metrics

 private:
  struct Impl;
  explicit Hl7v2Intake(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::mllp
