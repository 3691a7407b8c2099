#include "mllp/hl7v2_intake.h"

#include <filesystem>
#include <stdexcept>

#include "delivery/delivery_worker.h"
#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp/intake_config.h"

namespace medicus::gateway::mllp {

namespace {

std::string describe(const ConfigErrors& errors) {
  std::string text;
  for (const auto& e : errors) text += (text.empty() ? "" : "\n") + formatConfigError(e);
  return text;
}

// The delivery routes with their maps compiled ("compiled at start and reloaded with the config").
tl::expected<std::vector<delivery::DeliveryRoute>, std::string> buildRoutes(const IntakeConfig& config,
                                                                           const std::shared_ptr<const GatewayConfig>& gateway) {
  std::vector<delivery::DeliveryRoute> routes;
  for (const auto& r : config.routes) {
    delivery::DeliveryRoute route;
    route.config = r;
    route.upstream = gateway->findUpstream(r.upstream);
    route.gateway = gateway;
    if (!r.maps_dir.empty()) {
      auto mapper = delivery::loadV2ToFhirMapper(r.maps_dir);
      if (!mapper) return tl::unexpected("delivery route " + r.name + ": maps in " + r.maps_dir + ": " + mapper.error());
      route.mapper = std::move(*mapper);
    }
    routes.push_back(std::move(route));
  }
  return routes;
}

}  // namespace

struct Hl7v2Intake::Impl {
  LogSink log;
  IntakeConfig config;  // the running one (store, listeners, routes)
  IntakeMetrics metrics;
  std::unique_ptr<store::MessageStore> store;
  std::unique_ptr<delivery::DeliveryWorker> delivery;
  std::unique_ptr<MllpServer> server;
  ~Impl() {
    server.reset();    // no new messages
    delivery.reset();  // no new claims
    store.reset();     // finishes queued commits
  }
  void info(const std::string& line) {
    if (log) log(line);
  }
};

Hl7v2Intake::Hl7v2Intake(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Hl7v2Intake::~Hl7v2Intake() = default;

std::unique_ptr<Hl7v2Intake> Hl7v2Intake::start(const std::string& config_path, std::shared_ptr<const GatewayConfig> gateway,
                                                LogSink log) {
  auto config = loadIntakeConfig(config_path, gateway.get());
  if (!config) throw std::runtime_error(describe(config.error()));
  if (!*config) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->log = log;
  impl->config = **config;
  auto opened = openIntakeStore(impl->config, /*recover_in_flight=*/true);
  if (!opened) throw std::runtime_error("hl7v2 store: " + opened.error().message);
  impl->store = std::move(*opened);

  auto routes = buildRoutes(impl->config, gateway);
  if (!routes) throw std::runtime_error(routes.error());
  impl->delivery = std::make_unique<delivery::DeliveryWorker>(*impl->store, std::move(*routes), impl->metrics, log);
  impl->delivery->start();
  impl->server = std::make_unique<MllpServer>(impl->config.listeners, *impl->store, impl->metrics, log, impl->config.threads);
  impl->server->start();
  return std::unique_ptr<Hl7v2Intake>(new Hl7v2Intake(std::move(impl)));
}

bool Hl7v2Intake::reload(const std::string& config_path, std::shared_ptr<const GatewayConfig> gateway) {
  const std::string keeping = "hl7v2 reload failed; keeping the running listeners, maps and delivery routes: ";
  auto loaded = loadIntakeConfig(config_path, gateway.get());
  if (!loaded) {
    impl_->info(keeping + "\n" + describe(loaded.error()));
    return false;
  }
  if (!*loaded) {
    impl_->info(keeping + "the file has no hl7v2: section any more; stopping the intake needs a restart");
    return false;
  }
  IntakeConfig& next = **loaded;
  auto routes = buildRoutes(next, gateway);
  if (!routes) {
    impl_->info(keeping + routes.error());
    return false;
  }
  try {
    impl_->delivery->update(std::move(*routes));
  } catch (const std::exception& e) {
    impl_->info(keeping + e.what());
    return false;
  }
  std::vector<std::string> notes = impl_->server->updatePolicies(next.listeners);
  if (next.store_file != impl_->config.store_file || next.store_postgres_dsn != impl_->config.store_postgres_dsn) {
    notes.push_back("hl7v2 store changes take effect after a restart");
  }
  if (next.threads != impl_->config.threads) notes.push_back("hl7v2 threads: the change takes effect after a restart");
  for (const auto& note : notes) impl_->info("hl7v2 reload: " + note);
  // What runs now: the new policies and routes, the old addresses, limits and store.
  next.store_file = impl_->config.store_file;
  next.store_postgres_dsn = impl_->config.store_postgres_dsn;
  next.threads = impl_->config.threads;
  impl_->config = std::move(next);
  impl_->info("hl7v2 reload: listener policies, maps and " + std::to_string(impl_->config.routes.size()) +
              " delivery route(s) active");
  return true;
}

uint16_t Hl7v2Intake::port(std::string_view listener_name) const { return impl_->server->port(listener_name); }

std::string Hl7v2Intake::metricsText() const { return impl_->metrics.renderText(); }

}  // namespace medicus::gateway::mllp
