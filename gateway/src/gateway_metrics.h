#pragma once
// The gateway's Prometheus metrics (prometheus-cpp), rendered as text exposition by the gateway's own
// HTTP server at /metrics. One instance per server; every method is thread-safe.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "medicus/gateway/stage.h"

namespace medicus::gateway {

class GatewayMetrics {
 public:
  GatewayMetrics();
  ~GatewayMetrics();

  void countRequest(std::string_view route, std::string_view method, unsigned status, double seconds);
  void countUpstream(std::string_view upstream, double seconds);
  void countUpstreamError(std::string_view upstream, std::string_view kind);  // connect, timeout, protocol
  void countUpstreamConnection(std::string_view upstream, std::string_view tls);  // tls: none, full, resumed
  void countUpstreamResolution(std::string_view upstream, std::string_view result);  // resolved, failed, stale
  void setUpstreamHealth(std::string_view upstream, std::string_view endpoint, bool healthy);
  void countStage(std::string_view stage, std::string_view outcome);          // messages_total{stage,outcome}
  void countReload(bool ok);
  // medicus_validation_resources_total{profile,result} (passed/failed) and
  // medicus_validation_issues_total{profile,rule,severity}. Bounded cardinality: profile labels come from
  // the config; at most kMaxValidationRules distinct (profile, rule, severity) series, later new ones count
  // under rule="_other"; an issue without a rule id counts under rule="_none".
  static constexpr size_t kMaxValidationRules = 500;
  void countValidation(const ValidationRecord& record);
  void connectionOpened(std::string_view listener);
  void connectionClosed(std::string_view listener);

  // Test hooks: current values.
  double stageCount(std::string_view stage, std::string_view outcome) const;
  double requestCount(std::string_view route, std::string_view method, unsigned status) const;
  double validationIssueCount(std::string_view profile, std::string_view rule, std::string_view severity) const;

  std::string renderText() const;  // Prometheus text format 0.0.4

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway
