#include "mllp/hl7v2_intake.h"

#include <filesystem>
#include <stdexcept>

#include "delivery/delivery_worker.h"
#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp/intake_config.h"

namespace medicus::gateway::mllp {

struct Hl7v2Intake::Impl {
  IntakeMetrics metrics;
  std::unique_ptr<store::MessageStore> store;
  std::unique_ptr<delivery::DeliveryWorker> delivery;
  std::unique_ptr<MllpServer> server;
  ~Impl() {
    server.reset();    // no new messages
    delivery.reset();  // no new claims
    store.reset();     // finishes queued commits
  }
};

Hl7v2Intake::Hl7v2Intake(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Hl7v2Intake::~Hl7v2Intake() = default;

std::unique_ptr<Hl7v2Intake> Hl7v2Intake::start(const std::string& config_path, const GatewayConfig& gateway,
                                                LogSink log) {
  auto config = loadIntakeConfig(config_path, &gateway);
  if (!config) {
    std::string text;
    for (const auto& e : config.error()) text += (text.empty() ? "" : "\n") + formatConfigError(e);
    throw std::runtime_error(text);
  }
  if (!*config) return nullptr;
  IntakeConfig& c = **config;
  auto impl = std::make_unique<Impl>();
  auto opened = openIntakeStore(c, /*recover_in_flight=*/true);
  if (!opened) throw std::runtime_error("hl7v2 store: " + opened.error().message);
  impl->store = std::move(*opened);

  std::vector<delivery::DeliveryRoute> routes;
  for (const auto& r : c.routes) {
    delivery::DeliveryRoute route;
    route.config = r;
    route.upstream = gateway.findUpstream(r.upstream);
    if (!r.maps_dir.empty()) {
      auto mapper = delivery::loadV2ToFhirMapper(r.maps_dir);
      if (!mapper) throw std::runtime_error("delivery route " + r.name + ": " + mapper.error());
      route.mapper = std::move(*mapper);
    }
    routes.push_back(std::move(route));
  }
  impl->delivery = std::make_unique<delivery::DeliveryWorker>(*impl->store, std::move(routes), impl->metrics, log);
  impl->delivery->start();
  impl->server = std::make_unique<MllpServer>(std::move(c.listeners), *impl->store, impl->metrics, log, c.threads);
  impl->server->start();
  return std::unique_ptr<Hl7v2Intake>(new Hl7v2Intake(std::move(impl)));
}

uint16_t Hl7v2Intake::port(std::string_view listener_name) const { return impl_->server->port(listener_name); }

std::string Hl7v2Intake::metricsText() const { return impl_->metrics.renderText(); }

}  // namespace medicus::gateway::mllp
