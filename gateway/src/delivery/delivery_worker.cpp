#include "delivery/delivery_worker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "mllp/mllp_message_handler.h"
#include "tls_setup.h"

namespace medicus::gateway::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Our own small HTTP/1.1 client with one keep-alive connection per route. The gateway's
// exchangeWithUpstream() crashed here (SIGSEGV destroying UpstreamResult in its coroutine frame, likely
// the g++ 12 bug with co_await inside ?:) — see the report; switch to it once that is fixed.
struct UpstreamConnection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

struct PostResult {
  std::string error;  // empty: `status` and `body` are the reply
  unsigned status = 0;
  std::string body;
  bool keep_alive = false;
};

template <class Stream>
asio::awaitable<PostResult> roundTrip(Stream& stream, UpstreamConnection& c, const UpstreamConfig& config,
                                      const http::request<http::string_body>& request) {
  PostResult result;
  c.lowest().expires_after(config.response_timeout);
  auto [write_error, written] = co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
  if (write_error) {
    result.error = "sending the request failed: " + write_error.message();
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(config.max_response_bytes);
  auto [read_error, read] = co_await http::async_read(stream, c.buffer, parser, asio::as_tuple(asio::use_awaitable));
  if (read_error) {
    result.error = "reading the reply failed: " + read_error.message();
    co_return result;
  }
  result.status = parser.get().result_int();
  result.body = parser.get().body();
  result.keep_alive = parser.get().keep_alive();
  co_return result;
}

}  // namespace

// A route as the worker runs it: its settings and the TLS context of its upstream, built when the route is
// set (start or update), so that a TLS set-up failure is the caller's error, not a delivery loop's.
struct ActiveRoute {
  DeliveryRoute route;
  std::shared_ptr<asio::ssl::context> tls;
};

struct UpstreamRuntime {
  const UpstreamConfig* config = nullptr;
  std::shared_ptr<asio::ssl::context> tls;
  std::unique_ptr<UpstreamConnection> connection;
};

namespace {
std::shared_ptr<const ActiveRoute> activate(DeliveryRoute route) {
  auto active = std::make_shared<ActiveRoute>();
  const UpstreamConfig* upstream = route.upstream;
  bool https = upstream && std::any_of(upstream->endpoints.begin(), upstream->endpoints.end(),
                                       [](const UpstreamEndpoint& e) { return e.https; });
  if (https) {
    active->tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    configureClientContext(active->tls->native_handle(), upstream->tls);
  }
  active->route = std::move(route);
  return active;
}
}  // namespace

struct DeliveryWorker::Impl {
  store::MessageStore& message_store;
  std::vector<DeliveryRoute> initial_routes;  // until start()
  mllp::IntakeMetrics& metrics;
  LogSink log;
  std::function<store::UnixMillis()> clock;
  asio::io_context io;
  std::thread thread;
  std::atomic<bool> stopping{false};
  // The routes by name; update() swaps entries, each route's loop reads its entry before every batch.
  std::mutex routes_mutex;
  std::map<std::string, std::shared_ptr<const ActiveRoute>, std::less<>> routes;

  Impl(store::MessageStore& s, std::vector<DeliveryRoute> r, mllp::IntakeMetrics& m, LogSink l,
       std::function<store::UnixMillis()> c)
      : message_store(s), initial_routes(std::move(r)), metrics(m), log(std::move(l)), clock(std::move(c)) {
    if (!clock) clock = mllp::unixNowMillis;
  }

  std::shared_ptr<const ActiveRoute> currentRoute(std::string_view name) {
    std::lock_guard lock(routes_mutex);
    auto it = routes.find(name);
    return it == routes.end() ? nullptr : it->second;
  }

  // Sets the routes (all TLS contexts built first: a failure changes nothing) and starts a loop for each
  // name not running yet. Routes no longer named end their loop after the batch in hand.
  void setRoutes(std::vector<DeliveryRoute> next, bool running) {
    std::map<std::string, std::shared_ptr<const ActiveRoute>, std::less<>> built;
    for (auto& r : next) {
      std::string name = r.config.name;
      built[name] = activate(std::move(r));
    }
    std::vector<std::string> started;
    {
      std::lock_guard lock(routes_mutex);
      for (const auto& [name, route] : built) {
        if (!routes.count(name)) started.push_back(name);
      }
      routes = std::move(built);
    }
    for (const auto& name : started) {
      if (running) asio::post(io, [this, name] { asio::co_spawn(io, routeLoop(name), asio::detached); });
      else asio::co_spawn(io, routeLoop(name), asio::detached);
    }
  }

  void info(const std::string& line) {
    if (log) log(line);
  }

  asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Queue gauges for /metrics, also when no route delivers.
  asio::awaitable<void> statsLoop() {
    while (!stopping) {
      if (auto stats = message_store.stats()) metrics.setQueue(*stats, clock());
      co_await pause(std::chrono::milliseconds(1000));
    }
  }

  asio::awaitable<void> routeLoop(std::string name) {
    UpstreamRuntime runtime;
    std::shared_ptr<const ActiveRoute> active;
    bool said_idle = false;
    while (!stopping) {
      std::shared_ptr<const ActiveRoute> now = currentRoute(name);
      if (!now) {
        info("delivery " + name + ": the route was removed from the config; its loop ends");
        co_return;
      }
      if (now != active) {
        // New settings (reload): a new upstream or TLS context means a new connection.
        if (!active || now->route.upstream != runtime.config || now->tls != runtime.tls) {
          runtime = UpstreamRuntime{now->route.upstream, now->tls, nullptr};
        }
        active = now;
        said_idle = false;
      }
      const DeliveryRoute& route = active->route;
      if (!route.mapper || !route.upstream || route.upstream->endpoints.empty()) {
        if (!said_idle) {
          info("delivery " + name + ": no v2 -> FHIR mapping available; stored messages stay pending and nothing is sent");
          said_idle = true;
        }
        co_await pause(route.config.poll_interval);
        continue;
      }
      auto tasks = message_store.claimDue(clock(), route.config.batch_size, name);
      if (!tasks) {
        info("delivery " + name + ": cannot read the queue: " + tasks.error().message);
        co_await pause(route.config.poll_interval * 10);
        continue;
      }
      if (tasks->empty()) {
        co_await pause(route.config.poll_interval);
        continue;
      }
      // One task per patient in a batch, so they may be recorded together: one commit for the batch.
      std::vector<int64_t> delivered;
      for (const auto& task : *tasks) {
        if (stopping) break;  // the claimed rest goes back to pending at the next start
        if (co_await deliverOne(route, runtime, task)) delivered.push_back(task.message_id);
      }
      if (!delivered.empty()) {
        if (auto done = message_store.markAllDelivered(delivered); !done) {
          info("delivery " + name + ": delivered but not recorded (they will be sent again): " + done.error().message);
        }
      }
    }
  }

  void fail(const DeliveryRoute& route, const store::DeliveryTask& task, const std::string& why, bool permanent) {
    store::RetryPolicy policy = route.config.retry;
    if (permanent) policy.max_attempts = task.attempts + 1;  // dead letter now
    auto outcome = message_store.markFailed(task.message_id, why, clock(), policy);
    if (!outcome) {
      info("delivery " + route.config.name + ": cannot record a failure: " + outcome.error().message);
      return;
    }
    bool dead = *outcome == store::FailureOutcome::kDeadLettered;
    metrics.countDelivery(route.config.name, dead ? "dead_letter" : "retry");
    info("delivery " + route.config.name + ": message " + std::to_string(task.message_id) + " (" + task.sender +
         " " + task.control_id + ") " + (dead ? "dead-lettered" : "will be retried") + ": " + why);
  }

  asio::awaitable<std::unique_ptr<UpstreamConnection>> connect(UpstreamRuntime& runtime, const UpstreamEndpoint& endpoint,
                                                               std::string& error) {
    auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(executor);
    auto [resolve_error, results] =
        co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), asio::as_tuple(asio::use_awaitable));
    if (resolve_error) {
      error = "cannot resolve " + endpoint.host + ": " + resolve_error.message();
      co_return nullptr;
    }
    auto c = std::make_unique<UpstreamConnection>();
    if (endpoint.https) {
      c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor, *runtime.tls);
    } else {
      c->plain = std::make_unique<beast::tcp_stream>(executor);
    }
    c->lowest().expires_after(runtime.config->connect_timeout);
    auto [connect_error, ep] = co_await c->lowest().async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (connect_error) {
      error = "cannot connect: " + connect_error.message();
      co_return nullptr;
    }
    boost::system::error_code ignored;
    c->lowest().socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    if (c->tls) {
      std::string sni = runtime.config->tls.server_name.empty() ? endpoint.host : runtime.config->tls.server_name;
      SSL_set_tlsext_host_name(c->tls->native_handle(), sni.c_str());
      if (runtime.config->tls.verify) SSL_set1_host(c->tls->native_handle(), sni.c_str());
      auto [hs_error] = co_await c->tls->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
      if (hs_error) {
        error = "TLS handshake failed: " + hs_error.message();
        co_return nullptr;
      }
    }
    c->lowest().expires_never();
    co_return c;
  }

  // True when the upstream took it (the caller records it); failures are recorded here.
  asio::awaitable<bool> deliverOne(const DeliveryRoute& route, UpstreamRuntime& runtime,
                                   const store::DeliveryTask& task) {
    auto bundle = route.mapper(task);
    if (!bundle) {
      fail(route, task, bundle.error().message, /*permanent=*/true);
      co_return false;
    }
    const UpstreamEndpoint& endpoint = runtime.config->endpoints.front();
    http::request<http::string_body> request{http::verb::post, endpoint.base_path.empty() ? "/" : endpoint.base_path + "/", 11};
    request.set(http::field::host, endpoint.host + ":" + std::to_string(endpoint.port));
    request.set(http::field::content_type, "application/fhir+json");
    request.set(http::field::accept, "application/fhir+json");
    request.set("X-Medicus-Message", task.sender + " " + task.control_id);
    request.keep_alive(true);
    request.body() = std::move(*bundle);
    request.prepare_payload();
    PostResult result;
    // A kept-alive connection may have been closed by the upstream: one retry on a fresh one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = runtime.connection != nullptr;
      if (!runtime.connection) {
        std::string error;
        runtime.connection = co_await connect(runtime, endpoint, error);
        if (!runtime.connection) {
          result.error = error;
          break;
        }
      }
      auto& c = *runtime.connection;
      if (c.tls) result = co_await roundTrip(*c.tls, c, *runtime.config, request);
      else result = co_await roundTrip(*c.plain, c, *runtime.config, request);
      if (!result.error.empty()) {
        runtime.connection.reset();
        if (reused) continue;
      } else if (!result.keep_alive) {
        runtime.connection.reset();
      }
      break;
    }
    if (!result.error.empty()) {
      fail(route, task, "upstream " + runtime.config->name + " (" + endpoint.url() + "): " + result.error, false);
      co_return false;
    }
    unsigned status = result.status;
    if (status >= 200 && status < 300) {
      metrics.countDelivery(route.config.name, "delivered");
      co_return true;
    }
    std::string body = result.body.substr(0, 300);
    bool transient = status >= 500 || status == 408 || status == 429;
    fail(route, task, "upstream " + runtime.config->name + " answered HTTP " + std::to_string(status) + ": " + body,
         !transient);
    co_return false;
  }
};

DeliveryWorker::DeliveryWorker(store::MessageStore& store, std::vector<DeliveryRoute> routes,
                               mllp::IntakeMetrics& metrics, LogSink log, std::function<store::UnixMillis()> clock)
    : impl_(std::make_unique<Impl>(store, std::move(routes), metrics, std::move(log), std::move(clock))) {}

DeliveryWorker::~DeliveryWorker() { stop(); }

void DeliveryWorker::start() {
  impl_->setRoutes(std::move(impl_->initial_routes), /*running=*/false);
  asio::co_spawn(impl_->io, impl_->statsLoop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void DeliveryWorker::update(std::vector<DeliveryRoute> routes) { impl_->setRoutes(std::move(routes), /*running=*/true); }

void DeliveryWorker::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stopping = true;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace medicus::gateway::delivery
