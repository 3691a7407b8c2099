#pragma once
// Delivers stored HL7 v2 messages to FHIR upstreams, asynchronously from the MLLP listeners: claims due
// messages from the store (oldest first, one per patient at a time), maps each to a transaction Bundle,
// POSTs it to the route's upstream with the gateway's upstream client, and records the result:
//   2xx                                     -> delivered
//   connect error, timeout, 408, 429, 5xx   -> retry with exponential backoff, dead letter after max_attempts
//   other 4xx (the upstream refuses the Bundle), mapping failure -> dead letter at once (replay after the fix)
// A route without a mapper delivers nothing: its messages stay pending (visible in the queue metrics).
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/bundle_mapper.h"
#include "medicus/gateway/config.h"
#include "medicus/gateway/store/message_store.h"
#include "mllp/intake_config.h"
#include "mllp/intake_metrics.h"

namespace medicus::gateway::delivery {

struct DeliveryRoute {
  mllp::DeliveryRouteConfig config;
  const UpstreamConfig* upstream = nullptr;  // owned by `gateway` (or a GatewayConfig that outlives the worker)
  std::shared_ptr<const GatewayConfig> gateway;  // may be null; keeps `upstream` alive across reloads
  BundleMapper mapper;                       // empty: nothing is delivered on this route
};

class DeliveryWorker {
 public:
  using LogSink = std::function<void(std::string_view)>;
  DeliveryWorker(store::MessageStore& store, std::vector<DeliveryRoute> routes, mllp::IntakeMetrics& metrics,
                 LogSink log = {}, std::function<store::UnixMillis()> clock = {});
  ~DeliveryWorker();  // stops
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  void start();  // one thread; throws std::runtime_error when an upstream's TLS set-up fails
  // SIGHUP: new route settings (mapper, upstream, retry policy, batch size, poll interval), by route name.
  // A route's loop takes them before its next batch; new names start a loop, dropped names end theirs
  // after the batch in hand. Throws std::runtime_error (TLS set-up) before changing anything. Thread-safe.
  void update(std::vector<DeliveryRoute> routes);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::delivery
