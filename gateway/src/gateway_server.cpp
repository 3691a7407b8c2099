// The gateway's HTTP(S) server: Beast/Asio C++20 coroutines, one io_context per worker thread.
// Per connection: read the head under a deadline and size limit, then the body, run the route's
// pipeline, forward, convert and rewrite the reply, write it under a deadline. Every error reply is
// an OperationOutcome (http://hl7.org/fhir/R4/http.html#summary).
#include "medicus/gateway/gateway_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <list>
#include <map>
#include <mutex>
#include <sched.h>
#include <thread>

#include "access_log_writer.h"
#include "ascii_case.h"
#include "content_negotiation.h"
#include "gateway_metrics.h"
#include "http_wire.h"
#include "lazy_deadline.h"
#include "medicus/fhir/format.h"
#include "passed_reply.h"
#include "medicus/fhir/operation_outcome.h"
#include "route_table.h"
#include "validate_operation.h"
#include "capability_filter.h"
#include "tls_setup.h"
#include "tls_socket_stream.h"
#include "upstream_client.h"
#include "url_rewriter.h"

namespace medicus::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseAwaitable = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadBufferBytes = 16 * 1024;
constexpr size_t kAccessLogBatchBytes = 32 * 1024;
constexpr auto kAccessLogFlushInterval = std::chrono::milliseconds(200);
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// What handle() answers: a reply the gateway built, or the upstream's passed on (passed_reply.h).
struct ClientReply {
  ClientReply() = default;
  ClientReply(Response&& built) : message(std::move(built)) {}
  ClientReply(PassedReply&& upstream) : passed(true), upstream(std::move(upstream)) {}
  bool passed = false;
  Response message;      // !passed
  PassedReply upstream;  // passed
  bool keep_alive_now = true;  // passed: false once a drain began (dropKeepAlive)

  bool keepAlive() const { return passed ? upstream.keep_alive && keep_alive_now : message.keep_alive(); }
  void dropKeepAlive() {
    if (passed) keep_alive_now = false;
    else message.keep_alive(false);
  }
  unsigned status() const { return passed ? upstream.status : message.result_int(); }
  size_t bodySize() const { return passed ? upstream.body.size() : message.body().size(); }
};

fhir::Issue makeIssue(fhir::IssueType type, std::string message, std::string rule_id,
                      fhir::Severity severity = fhir::Severity::Error) {
  fhir::Issue issue;
  issue.severity = severity;
  issue.type = type;
  issue.message = std::move(message);
  issue.rule_id = std::move(rule_id);
  return issue;
}

// A config snapshot plus what it needs at run time (TLS contexts for upstreams).
struct Runtime {
  std::shared_ptr<const GatewayConfig> config;
  std::map<std::string, UpstreamRuntime, std::less<>> upstreams;
};

// Health of one endpoint, kept across reloads (keyed by upstream name and endpoint URL).
struct EndpointHealth {
  std::atomic<bool> healthy{true};
  std::atomic<uint32_t> failures{0};
};

struct ConnectionInfo {
  const ListenerConfig* listener = nullptr;
  std::string remote_address;
  std::string client_identity;
  bool https = false;
  // The access log's listener, remote and client fields, JSON-escaped (built at the first request).
  std::string access_log_fields;
};

// Per worker thread: the sessions, so a drain can close the idle ones.
// alignas: each registry's in-flight count on a cache line of its own, written by its thread only.
struct alignas(64) SessionRegistry {
  struct Entry {
    beast::tcp_stream* stream;
    bool busy;
  };
  std::list<Entry> sessions;
  // Requests read and not yet answered on this thread; the drain sums them. Per thread, not one
  // shared count: two read-modify-writes per request on a line both cores kept taking from each other.
  std::atomic<int64_t> requests_in_flight{0};
};

// A session's place in its registry for as long as the stream lives: erased on every exit,
// exceptions included, so a drain never cancels a destroyed stream.
class SessionRegistration {
 public:
  SessionRegistration(SessionRegistry& registry, beast::tcp_stream* stream)
      : registry_(registry), entry_(registry.sessions.insert(registry.sessions.end(), {stream, true})) {}
  ~SessionRegistration() { registry_.sessions.erase(entry_); }
  SessionRegistration(const SessionRegistration&) = delete;
  SessionRegistration& operator=(const SessionRegistration&) = delete;
  SessionRegistry::Entry& entry() { return *entry_; }
  SessionRegistry& registry() { return registry_; }

 private:
  SessionRegistry& registry_;
  std::list<SessionRegistry::Entry>::iterator entry_;
};

// This worker thread's access log lines not yet written (GatewayServer::Impl::flushAccessLog).
thread_local std::string t_access_log_batch;

// Fields that describe one hop (RFC 9110 section 7.6.1) or that the gateway sets itself. By name,
// from its length and then one comparison: an upstream reply's names are not Beast fields, and Beast's
// string_to_field hashed every name of every reply.
bool isHopByHopName(std::string_view name) {
  auto is = [name](std::string_view known) { return asciiIequals(name, known); };
  switch (name.size()) {
    case 2: return is("te");
    case 4: return is("host");
    case 6: return is("expect");
    case 7: return is("trailer") || is("upgrade");
    case 10: return is("connection") || is("keep-alive");
    case 14: return is("content-length");
    case 16: return is("proxy-connection");
    case 17: return is("transfer-encoding");
    default: return false;
  }
}
bool isHopByHop(http::field name) { return name != http::field::unknown && isHopByHopName(http::to_string(name)); }

// What the gateway does with a field of an upstream's reply.
enum class ReplyFieldRole : uint8_t { Pass, Drop, Location, ContentLocation };
ReplyFieldRole replyFieldRole(std::string_view name) {
  if (isHopByHopName(name) || asciiIequals(name, "server")) return ReplyFieldRole::Drop;
  if (asciiIequals(name, "location")) return ReplyFieldRole::Location;
  if (asciiIequals(name, "content-location")) return ReplyFieldRole::ContentLocation;
  return ReplyFieldRole::Pass;
}

// The cores this process may run on (its CPU affinity: taskset, a container's cpuset), not all the
// machine's: more I/O threads than cores only adds switches and queueing to the tail latency.
unsigned usableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::atomic<uint64_t> next_server_id{1};

}  // namespace

struct GatewayServer::Impl {
  LogSink log;
  const uint64_t server_id = next_server_id++;  // never reused, unlike an address
  std::atomic<std::shared_ptr<const Runtime>> runtime;  // set with setRuntime
  std::atomic<uint64_t> runtime_generation{0};

  void setRuntime(std::shared_ptr<const Runtime> rt) {
    runtime.store(std::move(rt));
    runtime_generation.fetch_add(1, std::memory_order_release);  // after the store: see currentRuntime
  }

  // The runtime a request works with, kept alive by the request. Loading the shared atomic pointer
  // took its lock bit and counted the shared control block up and down on every request, on cache
  // lines both cores kept taking from each other. Each worker thread keeps its own reference instead,
  // behind a control block of its own, and takes a new one only when a reload has changed the
  // generation (which a thread that sees the new generation finds stored, by release and acquire).
  std::shared_ptr<const Runtime> currentRuntime() {
    struct ThreadView {
      uint64_t server_id = 0;
      uint64_t generation = 0;
      std::shared_ptr<const Runtime> runtime;
    };
    static thread_local ThreadView view;
    uint64_t generation = runtime_generation.load(std::memory_order_acquire);
    if (view.server_id != server_id || view.generation != generation || !view.runtime) {
      auto holder = std::make_shared<const std::shared_ptr<const Runtime>>(runtime.load());
      view = {server_id, generation, std::shared_ptr<const Runtime>(holder, holder->get())};
    }
    return view.runtime;
  }
  GatewayMetrics metrics;
  std::mutex metrics_sources_mutex;
  std::vector<std::function<std::string()>> metrics_sources;  // appended to /metrics
  std::vector<std::function<void(const std::string&, std::shared_ptr<const GatewayConfig>)>> reload_hooks;

  std::string renderMetrics() {
    std::string text = metrics.renderText();
    std::lock_guard lock(metrics_sources_mutex);
    for (const auto& source : metrics_sources) text += source();
    return text;
  }

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::unique_ptr<SessionRegistry>> registries;  // one per context, used only on its thread
  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::atomic<size_t> next_context{0};

  // What a connection takes from its listener when it is accepted and keeps until it closes. A reload
  // builds a new one (the certificate, key and CA files read again, so a certificate renewed at the
  // same path takes effect; limits; admin endpoints); connections already open keep theirs.
  struct ListenerState {
    ListenerConfig config;
    std::shared_ptr<asio::ssl::context> tls;  // null for plain HTTP
  };
  struct BoundListener {
    std::unique_ptr<tcp::acceptor> acceptor;
    uint16_t port = 0;
    std::atomic<std::shared_ptr<const ListenerState>> state;  // loaded once per accepted connection
  };
  std::vector<std::unique_ptr<BoundListener>> listeners;
  std::mutex reload_mutex;  // one reload at a time (SIGHUP and callers of reload())

  // Throws std::runtime_error naming the file when a certificate, key or CA bundle does not load.
  std::shared_ptr<const ListenerState> makeListenerState(const ListenerConfig& config) {
    auto state = std::make_shared<ListenerState>();
    state->config = config;
    if (config.tls) {
      if (ensureSelfSignedCertificate(*config.tls)) {
        info("listener " + config.name + ": made a self-signed certificate " + config.tls->certificate_file +
             " (replace it with a real one for production)");
      }
      state->tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
      configureServerContext(state->tls->native_handle(), *config.tls);
    }
    return state;
  }

  std::mutex health_mutex;
  std::map<std::string, std::shared_ptr<EndpointHealth>> health;  // "upstream|url"
  std::atomic<uint64_t> health_generation{0};

  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::mutex stop_mutex;
  std::condition_variable stop_cv;

  std::unique_ptr<AccessLogWriter> access_log;  // null when off

  void info(std::string_view line) {
    if (log) log(line);
  }

  // --- configuration -------------------------------------------------------------------------

  std::shared_ptr<const Runtime> buildRuntime(std::shared_ptr<const GatewayConfig> config) {
    auto rt = std::make_shared<Runtime>();
    rt->config = config;
    for (const auto& upstream : config->upstreams) {
      UpstreamRuntime u;
      u.config = &upstream;
      u.describeEndpoints();
      bool any_https = std::any_of(upstream.endpoints.begin(), upstream.endpoints.end(), [](const auto& e) { return e.https; });
      if (any_https) {
        u.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
        configureClientContext(u.tls->native_handle(), upstream.tls);
        if (upstream.tls.session_reuse) {
          TlsSessionCache::enable(u.tls->native_handle());
          u.tls_sessions = std::make_shared<TlsSessionCache>(upstream.endpoints.size());
        }
      }
      rt->upstreams.emplace(upstream.name, std::move(u));
    }
    return rt;
  }

  std::shared_ptr<EndpointHealth> healthOf(const UpstreamConfig& upstream, const UpstreamEndpoint& endpoint) {
    std::lock_guard lock(health_mutex);
    auto& slot = health[upstream.name + "|" + endpoint.url()];
    if (!slot) slot = std::make_shared<EndpointHealth>();
    return slot;
  }

  void openAccessLog(const std::string& where) {
    if (where == "off") return;
    access_log = std::make_unique<AccessLogWriter>(where);
    std::lock_guard lock(metrics_sources_mutex);
    metrics_sources.push_back([writer = access_log.get()] {
      return "# HELP medicus_gateway_access_log_dropped_batches_total Access log batches dropped while the log "
             "file did not take writes\n# TYPE medicus_gateway_access_log_dropped_batches_total counter\n"
             "medicus_gateway_access_log_dropped_batches_total " +
             std::to_string(writer->droppedBatches()) + "\n";
    });
  }

  // Access log lines collect in a batch per worker thread and go to the writer thread in one piece
  // (access_log_writer.h): when the batch passes kAccessLogBatchBytes, every kAccessLogFlushInterval
  // (a timer per worker) and when the worker stops.
  void flushAccessLog() {
    if (access_log) access_log->submit(t_access_log_batch);
  }

  asio::awaitable<void> accessLogFlushLoop() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!stopped) {
      timer.expires_after(kAccessLogFlushInterval);
      auto [error] = co_await timer.async_wait(kUseAwaitable);
      flushAccessLog();
      if (error) co_return;
    }
  }

  // --- health checks ---------------------------------------------------------------------------

  void startHealthChecks(const std::shared_ptr<const Runtime>& rt) {
    uint64_t generation = ++health_generation;
    for (const auto& upstream : rt->config->upstreams) {
      for (const auto& endpoint : upstream.endpoints) {
        auto health_slot = healthOf(upstream, endpoint);
        metrics.setUpstreamHealth(upstream.name, endpoint.url(), health_slot->healthy.load());
        if (!upstream.health_check.enabled) {
          health_slot->healthy = true;
          continue;
        }
        asio::co_spawn(*contexts[0], healthCheckLoop(rt, &upstream, endpoint, health_slot, generation), asio::detached);
      }
    }
  }

  asio::awaitable<void> healthCheckLoop(std::shared_ptr<const Runtime> rt, const UpstreamConfig* upstream,
                                        UpstreamEndpoint endpoint, std::shared_ptr<EndpointHealth> slot,
                                        uint64_t generation) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    // A dedicated config copy so the check's timeout applies, not the data-path timeouts.
    UpstreamConfig check_config = *upstream;
    check_config.connect_timeout = upstream->health_check.timeout;
    check_config.response_timeout = upstream->health_check.timeout;
    check_config.max_idle_connections = 0;
    UpstreamRuntime runtime_copy = rt->upstreams.find(upstream->name)->second;
    runtime_copy.config = &check_config;
    while (!draining && health_generation == generation) {
      Request request(http::verb::get, endpoint.base_path + upstream->health_check.path, 11);
      request.set(http::field::accept, "application/fhir+json");
      request.set(http::field::user_agent, "medicus-gateway-health");
      UpstreamResult result = co_await exchangeWithUpstream(runtime_copy, endpoint, std::move(request));
      bool ok = result.error == UpstreamResult::Error::None && result.reply.status < 500;
      if (ok) {
        slot->failures = 0;
        if (!slot->healthy.exchange(true)) info("upstream " + upstream->name + " endpoint " + endpoint.url() + " is healthy again");
      } else if (++slot->failures >= upstream->health_check.unhealthy_after) {
        if (slot->healthy.exchange(false)) {
          info("upstream " + upstream->name + " endpoint " + endpoint.url() + " is unhealthy: " +
               (result.detail.empty() ? "status " + std::to_string(result.reply.status) : result.detail));
        }
      }
      metrics.setUpstreamHealth(upstream->name, endpoint.url(), slot->healthy.load());
      timer.expires_after(upstream->health_check.interval);
      co_await timer.async_wait(kUseAwaitable);
    }
  }

  // --- replies ---------------------------------------------------------------------------------

  // A reply the gateway writes itself: `document` in the client's format.
  static Response resourceReply(http::status status, const fhir::Document& document, WireFormat format, unsigned version,
                                bool keep_alive) {
    Response res{status, version};
    res.body() = format == WireFormat::Xml ? fhir::writeXml(*document.root()) : fhir::writeJson(*document.root());
    res.set(http::field::content_type, mediaTypeOf(format));
    res.set(http::field::server, "medicus-gateway");
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
  }

  static Response outcomeReply(unsigned status, const fhir::Issues& issues, WireFormat format, unsigned version,
                               bool keep_alive) {
    return resourceReply(static_cast<http::status>(status), *fhir::buildOperationOutcome(issues), format, version,
                         keep_alive);
  }

  static Response textReply(unsigned status, std::string body, std::string_view content_type, unsigned version,
                            bool keep_alive) {
    Response res{static_cast<http::status>(status), version};
    res.body() = std::move(body);
    res.set(http::field::content_type, content_type);
    res.set(http::field::server, "medicus-gateway");
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
  }

  // --- one request -----------------------------------------------------------------------------

  struct RequestLog {
    std::string route = "-";
    unsigned upstream_status = 0;
    std::string upstream;
  };

  // The routes a client sees under the selected route's base: same path prefix, identity allowed.
  static std::vector<const RouteConfig*> routesUnder(const GatewayConfig& config, const RouteConfig& selected,
                                                     std::string_view identity) {
    std::vector<const RouteConfig*> out;
    for (const auto& r : config.routes) {
      if (r.match.path_prefix != selected.match.path_prefix) continue;
      const auto& clients = r.match.clients;
      if (!clients.empty() && std::find(clients.begin(), clients.end(), identity) == clients.end()) continue;
      out.push_back(&r);
    }
    return out;
  }

  asio::awaitable<ClientReply> handle(Request& req, const ConnectionInfo& conn, RequestLog& log_entry) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive() && !draining;
    std::string_view target = req.target();
    size_t question = target.find('?');
    std::string_view path = target.substr(0, question);
    std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
    const std::string method(req.method_string());

    if (conn.listener->admin_endpoints) {
      if (path == "/healthz") co_return textReply(200, "{\"status\":\"ok\"}\n", "application/json", version, keep_alive);
      if (path == "/readyz") {
        bool ready = !draining && anyUpstreamHealthy();
        co_return textReply(ready ? 200 : 503, ready ? "{\"status\":\"ready\"}\n" : "{\"status\":\"not ready\"}\n",
                            "application/json", version, keep_alive);
      }
      if (path == "/metrics") {
        co_return textReply(200, renderMetrics(), "text/plain; version=0.0.4; charset=utf-8", version, keep_alive);
      }
    }

    std::shared_ptr<const Runtime> rt = currentRuntime();
    const GatewayConfig& config = *rt->config;

    // Request body format (Content-Type) and reply format (_format, Accept).
    std::string_view content_type = req[http::field::content_type];
    std::optional<WireFormat> body_format = formatOfMediaType(content_type);
    bool has_body = !req.body().empty();
    Negotiated reply = negotiateReplyFormat(queryParameter(query, "_format"), req[http::field::accept],
                                            has_body && body_format ? *body_format : WireFormat::Json);
    if (!reply.acceptable) {
      co_return outcomeReply(406, {makeIssue(fhir::IssueType::NotSupported,
                                             "cannot reply in any format the client accepts (Accept: '" +
                                                 std::string(req[http::field::accept]) + "', _format: '" +
                                                 std::string(queryParameter(query, "_format")) +
                                                 "'); ask for application/fhir+json or application/fhir+xml",
                                             "gateway.not-acceptable")},
                             WireFormat::Json, version, keep_alive);
    }

    RouteSelection selection = selectRoute(config, method, path, conn.client_identity);
    if (selection.outcome == RouteSelection::Outcome::NoRoute) {
      co_return outcomeReply(404, {makeIssue(fhir::IssueType::NotFound,
                                             "no route for " + method + " " + std::string(path) +
                                                 "; check the path prefix (and client certificate) against the "
                                                 "gateway's routes",
                                             "gateway.no-route")},
                             reply.format, version, keep_alive);
    }
    if (selection.outcome == RouteSelection::Outcome::MethodNotAllowed) {
      Response res = outcomeReply(405, {makeIssue(fhir::IssueType::NotSupported,
                                                  "method " + method + " is not allowed on " + std::string(path),
                                                  "gateway.method-not-allowed")},
                                  reply.format, version, keep_alive);
      res.set(http::field::allow, allowedMethods(config, path, conn.client_identity));
      co_return res;
    }
    const RouteConfig& route = *selection.route;
    log_entry.route = route.name;
    const UpstreamRuntime& upstream = rt->upstreams.find(route.upstream)->second;
    const UpstreamConfig& upstream_config = *upstream.config;

    // A FHIR body must be JSON or XML; form-encoded POST _search, JSON Patch and the bodies of operations
    // (POST [base]/$graphql as application/graphql, say: http://hl7.org/fhir/R4/graphql.html) pass through.
    bool fhir_body = has_body && body_format.has_value();
    if (has_body && !fhir_body) {
      bool form_search = req.method() == http::verb::post && path.ends_with("/_search") &&
                         content_type.starts_with("application/x-www-form-urlencoded");
      bool patch = req.method() == http::verb::patch &&
                   (content_type.starts_with("application/json-patch+json") || content_type.starts_with("application/fhirpath-patch"));
      bool operation = req.method() == http::verb::post && path.substr(path.rfind('/') + 1).starts_with('$') &&
                       !isValidateOperation(method, path);
      if (!form_search && !patch && !operation) {
        co_return outcomeReply(415, {makeIssue(fhir::IssueType::NotSupported,
                                               "unsupported Content-Type '" + std::string(content_type) +
                                                   "'; send application/fhir+json or application/fhir+xml",
                                               "gateway.unsupported-media-type")},
                               reply.format, version, keep_alive);
      }
    }

    // Parse once when a stage needs the resource or the upstream speaks the other format.
    bool stages_need_resource = std::any_of(route.stages.begin(), route.stages.end(),
                                            [](const NamedStage& s) { return s.stage->needsResource(); });
    bool convert_request = fhir_body && route.convert_format && *body_format != upstream_config.format;
    const bool validate_operation = isValidateOperation(method, path);
    std::unique_ptr<fhir::Document> resource;
    if (fhir_body && (stages_need_resource || convert_request)) {
      fhir::ParseOptions options;
      options.max_bytes = conn.listener->limits.max_body_bytes;
      fhir::ParseResult parsed =
          *body_format == WireFormat::Json ? fhir::parseJson(req.body(), options) : fhir::parseXml(req.body(), options);
      if (!parsed.ok()) {
        // http://hl7.org/fhir/R4/http.html#create: 400 when the resource cannot be parsed or fails
        // basic FHIR rules.
        if (parsed.issues.empty()) {
          parsed.issues.push_back(makeIssue(fhir::IssueType::Structure, "the request body is not a FHIR resource",
                                            "gateway.unparseable"));
        }
        co_return outcomeReply(400, parsed.issues, reply.format, version, keep_alive);
      }
      resource = std::move(parsed.document);
    }

    Exchange exchange;
    exchange.method = method;
    exchange.path = path;
    exchange.route_name = route.name;
    exchange.resource_type = selection.resource_type;
    exchange.client_identity = conn.client_identity;
    exchange.resource = resource.get();
    ValidateOperationRequest operation;
    if (validate_operation && resource && stages_need_resource) {
      // Answered by the route's validate stage; a route without active validation forwards $validate upstream.
      operation = unwrapValidateRequest(*resource, query, selection.resource_type);
      if (!operation.issues.empty()) co_return outcomeReply(400, operation.issues, reply.format, version, keep_alive);
      exchange.resource = operation.resource;
      exchange.validate_operation = true;
      exchange.operation_profiles = operation.profiles;
    }
    for (const auto& named : route.stages) {
      StageResult result;
      try {
        result = named.stage->onRequest(exchange);
      } catch (const std::exception& e) {
        // Stages must not throw; if one does, it is our bug: 500, counted.
        metrics.countStage(named.name, "exception");
        co_return outcomeReply(500, {makeIssue(fhir::IssueType::Exception,
                                               "stage '" + named.name + "' failed: " + e.what(), "gateway.stage-exception")},
                               reply.format, version, keep_alive);
      }
      for (const auto& validation : exchange.validations) metrics.countValidation(validation);
      exchange.validations.clear();
      if (result.action == StageResult::Action::Respond) {
        metrics.countStage(named.name, "respond");
        Response res = outcomeReply(result.http_status, result.issues, reply.format, version, keep_alive);
        for (auto& [name, value] : exchange.response_headers) res.set(name, value);
        co_return res;
      }
      metrics.countStage(named.name, "continue");
    }

    // Pick an endpoint: round robin over the healthy ones.
    const UpstreamEndpoint* endpoint = pickEndpoint(upstream_config);
    log_entry.upstream = upstream_config.name;
    // GET [base]/metadata: when the upstream cannot be asked, the gateway answers from its routes.
    const bool metadata_request = req.method() == http::verb::get &&
                                  (path == route.match.path_prefix + "/metadata" ||
                                   (route.match.path_prefix == "/" && path == "/metadata"));
    if (!endpoint) {
      if (metadata_request) {
        co_return gatewayCapabilities(config, route, conn, req, reply.format, keep_alive,
                                      "upstream '" + upstream_config.name + "' has no healthy endpoint");
      }
      Response res = outcomeReply(503, {makeIssue(fhir::IssueType::Transient,
                                                  "upstream '" + upstream_config.name +
                                                      "' has no healthy endpoint; retry later",
                                                  "gateway.upstream-unhealthy")},
                                  reply.format, version, keep_alive);
      res.set(http::field::retry_after, "5");
      co_return res;
    }

    // The forwarded request goes straight into wire form (upstream_client.h): the client's fields minus
    // the hop-by-hop ones and those the gateway sets; repeated fields stay repeated.
    UpstreamRequest up;
    up.method = req.method();
    {
      std::string& head = up.head;
      head.reserve(256 + req.target().size());
      std::string_view method_text = req.method_string();
      head.append(method_text.data(), method_text.size()).append(1, ' ').append(endpoint->base_path);
      head.append(selection.rest.data(), selection.rest.size());
      if (!query.empty()) head.append(1, '?').append(query.data(), query.size());
      head += " HTTP/1.1\r\n";
      auto append_field = [&head](std::string_view name, std::string_view value) {
        head.append(name.data(), name.size()).append(": ", 2).append(value.data(), value.size()).append("\r\n", 2);
      };
      for (const auto& field : req) {
        http::field name = field.name();
        // (Not Accept-Encoding: the gateway converts, rewrites and validates bodies, so they come uncompressed.)
        if (isHopByHop(name) || name == http::field::accept || name == http::field::content_type ||
            name == http::field::accept_encoding) {
          continue;
        }
        std::string_view name_text = field.name_string();
        if (name == http::field::unknown &&
            (beast::iequals(name_text, "X-Forwarded-For") || beast::iequals(name_text, "X-Forwarded-Proto") ||
             beast::iequals(name_text, "X-Forwarded-Host"))) {
          continue;
        }
        append_field(name_text, field.value());
      }
      // (The bare media type: a charset parameter means nothing in Accept, and the upstream parses every byte.)
      std::string_view accept = mediaTypeOf(upstream_config.format);
      append_field("Accept", accept.substr(0, accept.find(';')));
      std::string_view forwarded_for = req["X-Forwarded-For"];
      head.append("X-Forwarded-For: ");
      if (!forwarded_for.empty()) head.append(forwarded_for.data(), forwarded_for.size()).append(", ");
      head.append(conn.remote_address).append("\r\n");
      append_field("X-Forwarded-Proto", conn.https ? "https" : "http");
      if (auto host_field = req.find(http::field::host); host_field != req.end()) {
        append_field("X-Forwarded-Host", host_field->value());
      }
      if (has_body) {
        if (convert_request) {
          up.body = upstream_config.format == WireFormat::Json ? fhir::writeJson(*resource->root())
                                                               : fhir::writeXml(*resource->root());
          append_field("Content-Type", mediaTypeOf(upstream_config.format));
        } else {
          up.body = std::move(req.body());
          append_field("Content-Type", content_type);
        }
      }
    }

    auto upstream_started = Clock::now();
    UpstreamResult result = co_await exchangeWithUpstream(upstream, *endpoint, std::move(up));
    metrics.countUpstream(upstream_config.name, std::chrono::duration<double>(Clock::now() - upstream_started).count());
    if (result.connection != UpstreamResult::Connection::Pooled) {
      metrics.countUpstreamConnection(upstream_config.name,
                                      result.connection == UpstreamResult::Connection::OpenedPlain       ? "none"
                                      : result.connection == UpstreamResult::Connection::OpenedTlsResumed ? "resumed"
                                                                                                           : "full");
    }
    if (result.resolution != UpstreamResult::Resolution::None) {
      metrics.countUpstreamResolution(upstream_config.name, result.resolution == UpstreamResult::Resolution::Resolved ? "resolved"
                                                            : result.resolution == UpstreamResult::Resolution::Stale  ? "stale"
                                                                                                                       : "failed");
    }
    if (result.error != UpstreamResult::Error::None) {
      bool timeout = result.error == UpstreamResult::Error::Timeout;
      metrics.countUpstreamError(upstream_config.name, timeout ? "timeout"
                                                       : result.error == UpstreamResult::Error::Connect ? "connect"
                                                       : result.error == UpstreamResult::Error::TooLarge ? "too-large"
                                                                                                         : "protocol");
      if (metadata_request) {
        co_return gatewayCapabilities(config, route, conn, req, reply.format, keep_alive,
                                      "upstream '" + upstream_config.name + "' could not be asked: " + result.detail);
      }
      co_return outcomeReply(timeout ? 504 : 502,
                             {makeIssue(timeout ? fhir::IssueType::Timeout : fhir::IssueType::Transient,
                                        "upstream '" + upstream_config.name + "' (" + endpoint->url() + "): " + result.detail,
                                        timeout ? "gateway.upstream-timeout" : "gateway.upstream-failed")},
                             reply.format, version, keep_alive);
    }
    // The upstream's reply becomes the client's: its fields minus the hop-by-hop ones as views into its
    // head, its body where it already lies; the client's head is written once, from those views.
    UpstreamReply& upstream_reply = result.reply;
    log_entry.upstream_status = upstream_reply.status;
    // (No co_await from here on: the rewriter's views stay valid, gatewayBase() is this thread's.)
    UrlRewriter rewriter(upstream.endpoint_urls[static_cast<size_t>(upstream.indexOf(*endpoint))],
                         gatewayBase(conn.https, req[http::field::host], route.match.path_prefix));
    ReplyFieldList fields;
    fields.reserve(upstream_reply.fields.size() + 4);
    // (Complete before `fields` takes views into it below.)
    boost::container::small_vector<std::pair<std::string_view, std::string>, 2> rewritten_fields;
    for (const auto& field : upstream_reply.fields) {
      std::string_view name = upstream_reply.name(field);
      ReplyFieldRole role = replyFieldRole(name);
      if (role == ReplyFieldRole::Drop) continue;
      if (route.rewrite_urls && role != ReplyFieldRole::Pass) {
        if (auto rewritten = rewriter.rewrite(upstream_reply.value(field))) {
          // (In the standard spelling, as Beast's set() names a known field.)
          rewritten_fields.emplace_back(role == ReplyFieldRole::Location ? "Location" : "Content-Location",
                                        std::move(*rewritten));
          continue;
        }
      }
      fields.append(name, upstream_reply.value(field));
    }
    fields.set("Server", "medicus-gateway");
    for (const auto& [name, value] : rewritten_fields) fields.set(name, value);
    for (const auto& [name, value] : exchange.response_headers) fields.set(name, value);

    std::string_view upstream_type = fields["Content-Type"];
    std::optional<WireFormat> upstream_format = formatOfMediaType(upstream_type);
    std::string& body = upstream_reply.body;
    if (upstream_reply.status >= 400 && req.method() != http::verb::head && (body.empty() || !upstream_format)) {
      // Errors are always an OperationOutcome: an upstream (or a proxy before it) that answers one with
      // an HTML page or nothing keeps its status and fields; its body becomes an OperationOutcome.
      std::string what = body.empty() ? std::string("no body")
                                      : "a " + (upstream_type.empty() ? std::string("untyped") : std::string(upstream_type)) + " body";
      Response outcome = outcomeReply(upstream_reply.status,
                                      {makeIssue(upstream_reply.status >= 500 ? fhir::IssueType::Transient : fhir::IssueType::Processing,
                                                 "upstream '" + upstream_config.name + "' answered " +
                                                     std::to_string(upstream_reply.status) + " with " + what +
                                                     ", not an OperationOutcome",
                                                 "gateway.upstream-error-not-fhir")},
                                      reply.format, version, keep_alive);
      body = std::move(outcome.body());
      fields.erase("Content-Encoding");
      fields.set("Content-Type", mediaTypeOf(reply.format));
    } else if (!body.empty() && upstream_format) {
      bool convert = route.convert_format && *upstream_format != reply.format;
      bool rewrite = route.rewrite_urls && rewriter.mayNeedBundleRewrite(body);
      // /metadata reflects the routes: the upstream's statement narrowed to what the routes allow.
      bool capabilities = metadata_request && upstream_reply.status == 200;
      if (convert || rewrite || capabilities) {
        fhir::ParseOptions options;
        options.max_bytes = upstream_config.max_response_bytes;
        // The upstream's extras (newer elements) must not make its reply unreadable.
        options.unknown_elements_are_warnings = true;
        fhir::ParseResult parsed = *upstream_format == WireFormat::Json ? fhir::parseJson(body, options)
                                                                        : fhir::parseXml(body, options);
        if (!parsed.document) {
          metrics.countUpstreamError(upstream_config.name, "unreadable-body");
          fhir::Issues issues = parsed.issues;
          issues.insert(issues.begin(), makeIssue(fhir::IssueType::Exception,
                                                  "upstream '" + upstream_config.name + "' sent a body that is not readable FHIR",
                                                  "gateway.upstream-body"));
          co_return outcomeReply(502, issues, reply.format, version, keep_alive);
        }
        if (rewrite) rewriter.rewriteBundle(*parsed.document);
        if (capabilities) restrictCapabilities(*parsed.document, routesUnder(config, route, conn.client_identity));
        WireFormat out_format = convert ? reply.format : *upstream_format;
        body = out_format == WireFormat::Json ? fhir::writeJson(*parsed.document->root())
                                              : fhir::writeXml(*parsed.document->root());
        fields.set("Content-Type", mediaTypeOf(out_format));
      }
    }
    PassedReply passed;
    passed.status = upstream_reply.status;
    passed.version = version;
    passed.keep_alive = keep_alive;
    passed.head.reserve(upstream_reply.head.size() + 64);
    PassedReply::appendStatusLine(passed.head, version, upstream_reply.status, upstream_reply.reasonText());
    PassedReply::appendFields(passed.head, fields);
    passed.body = std::move(body);
    co_return ClientReply(std::move(passed));
  }

  // "https://host/prefix" as clients reach the route: the base the upstream's URLs are rewritten to.
  // Kept per worker thread for the last Host and prefix (a client sends the same Host every time),
  // so it is not built per request; valid until the next call on this thread.
  static const std::string& gatewayBase(bool https, std::string_view host, const std::string& path_prefix) {
    struct Cached {
      bool https = false;
      std::string host;
      std::string path_prefix;
      std::string base;
    };
    thread_local Cached cached;
    if (cached.base.empty() || cached.https != https || cached.host != host || cached.path_prefix != path_prefix) {
      cached.https = https;
      cached.host.assign(host.data(), host.size());
      cached.path_prefix = path_prefix;
      cached.base.assign(https ? "https://" : "http://");
      cached.base.append(host.empty() ? std::string_view("localhost") : host);
      if (path_prefix != "/") cached.base.append(path_prefix);
    }
    return cached.base;
  }

  // The gateway-built CapabilityStatement (capability_filter.h) for GET [base]/metadata without an upstream.
  Response gatewayCapabilities(const GatewayConfig& config, const RouteConfig& route, const ConnectionInfo& conn,
                               const Request& req, WireFormat format, bool keep_alive, const std::string& why) {
    std::string host(req[http::field::host]);
    if (host.empty()) host = "localhost";
    std::string base = std::string(conn.https ? "https://" : "http://") + host +
                       (route.match.path_prefix == "/" ? std::string() : route.match.path_prefix);
    char date[16];
    std::time_t now = std::time(nullptr);
    std::tm tm_utc;
    gmtime_r(&now, &tm_utc);
    std::strftime(date, sizeof date, "%Y-%m-%d", &tm_utc);
    auto document = buildCapabilities(routesUnder(config, route, conn.client_identity), base, date,
                                      "Built by the gateway from its routes, because " + why +
                                          "; the upstream's own statement lists its search parameters and operations");
    return resourceReply(http::status::ok, *document, format, req.version(), keep_alive);
  }

  bool anyUpstreamHealthy() {
    std::shared_ptr<const Runtime> rt = runtime.load();
    for (const auto& upstream : rt->config->upstreams) {
      if (pickEndpoint(upstream)) return true;
    }
    return rt->config->upstreams.empty();
  }

  const UpstreamEndpoint* pickEndpoint(const UpstreamConfig& upstream) {
    static thread_local size_t round_robin = 0;
    size_t n = upstream.endpoints.size();
    for (size_t i = 0; i < n; ++i) {
      const UpstreamEndpoint& e = upstream.endpoints[(round_robin + i) % n];
      if (!upstream.health_check.enabled || healthOf(upstream, e)->healthy) {
        round_robin = (round_robin + i + 1) % n;
        return &e;
      }
    }
    return nullptr;
  }

  // --- connections -----------------------------------------------------------------------------

  template <class Stream>
  asio::awaitable<void> serveRequests(Stream& stream, LazyDeadline& deadline, ConnectionInfo& conn,
                                      SessionRegistration& registration) {
    SessionRegistry::Entry& entry = registration.entry();
    const ListenerLimits& limits = conn.listener->limits;
    beast::flat_buffer buffer;
    // Room for a whole head plus a typical body per read: Beast reads at most the buffer's free
    // space (at least 512 bytes), and the parser empties the buffer as it goes, so an unreserved
    // buffer never grows and a 3 KB body would take six read calls.
    buffer.reserve(kReadBufferBytes);
    std::string wire_scratch;  // reply heads
    bool first = true;
    auto&& readable = readableOf(stream);
    while (!draining) {
      entry.busy = false;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
      parser.body_limit(limits.max_body_bytes);
      // The first request's head must arrive within header_timeout (slow clients); later ones may
      // wait idle_timeout for keep-alive.
      deadline.expiresAfter(first ? limits.header_timeout : limits.idle_timeout);
      first = false;
      auto [head_error, head_bytes] = co_await http::async_read_header(readable, buffer, parser, kUseAwaitable);
      entry.busy = true;
      auto started = Clock::now();
      if (head_error) {
        if (head_error == http::error::body_limit) {
          // Beast checks Content-Length against body_limit once the head's fields are read.
          metrics.countRequest("-", "-", 413, 0);
          co_await writeReply(stream, deadline, limits, bodyTooLarge(limits, parser.get()));
        } else if (head_error == http::error::header_limit) {
          metrics.countRequest("-", "-", 431, 0);
          Response reply = brokenHeadReply(431,
                                           makeIssue(fhir::IssueType::TooLong,
                                                     "the request head is larger than max_header_bytes (" +
                                                         std::to_string(limits.max_header_bytes) + ")",
                                                     "gateway.header-too-large"),
                                           parser.get(), unparsedHead(buffer, head_bytes, limits));
          co_await writeReply(stream, deadline, limits, std::move(reply));
        } else if (!deadline.expired() && head_error != http::error::end_of_stream && head_error != beast::error::timeout &&
                   head_error != asio::error::operation_aborted && head_error != asio::error::connection_reset &&
                   head_error != asio::error::eof && head_error != asio::ssl::error::stream_truncated) {
          metrics.countRequest("-", "-", 400, 0);
          Response reply = brokenHeadReply(400,
                                           makeIssue(fhir::IssueType::Structure,
                                                     "malformed HTTP request: " + head_error.message(), "gateway.bad-http"),
                                           parser.get(), unparsedHead(buffer, head_bytes, limits));
          co_await writeReply(stream, deadline, limits, std::move(reply));
        }
        co_return;
      }
      // Only this thread writes its count: a plain load and store, no locked instruction.
      std::atomic<int64_t>& in_flight_here = registration.registry().requests_in_flight;
      in_flight_here.store(in_flight_here.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      struct InFlight {
        std::atomic<int64_t>& n;
        ~InFlight() { n.store(n.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
      } in_flight{in_flight_here};

      auto& head = parser.get();
      if (parser.content_length() && *parser.content_length() > limits.max_body_bytes) {
        metrics.countRequest("-", std::string(head.method_string()), 413, 0);
        co_await writeReply(stream, deadline, limits, bodyTooLarge(limits, head));
        co_return;
      }
      if (beast::iequals(head[http::field::expect], "100-continue")) {
        Response proceed{http::status::continue_, head.version()};
        deadline.expiresAfter(limits.write_timeout);
        auto [continue_error, n] = co_await http::async_write(stream, proceed, kUseAwaitable);
        if (continue_error) co_return;
      }
      // The body (or its absence) usually came with the head: parse what is buffered first. Beast's
      // async_read would finish such a request through a posted completion, one more trip round the
      // event loop (an epoll_wait) per request.
      boost::system::error_code body_error;
      while (!parser.is_done() && buffer.size() != 0) {
        size_t used = parser.put(buffer.data(), body_error);
        buffer.consume(used);
        if (body_error == http::error::need_more) body_error = {};
        if (body_error || used == 0) break;
      }
      if (!body_error && !parser.is_done()) {
        deadline.expiresAfter(limits.body_timeout);
        auto [read_error, body_bytes] = co_await http::async_read(readable, buffer, parser, kUseAwaitable);
        body_error = read_error;
      }
      if (body_error) {
        if (body_error == http::error::body_limit) {
          metrics.countRequest("-", std::string(head.method_string()), 413, 0);
          co_await writeReply(stream, deadline, limits, bodyTooLarge(limits, head));
        }
        co_return;
      }
      // The upstream exchange has its own deadline; the client's applies again to the reply's write.
      deadline.expiresNever();
      Request req = parser.release();
      size_t bytes_in = req.body().size();
      const std::string method(req.method_string());
      RequestLog log_entry;
      ClientReply res;
      try {
        res = co_await handle(req, conn, log_entry);
      } catch (const std::exception& e) {
        // Last resort for this request: our bug, never the client's.
        info(std::string("internal error while handling a request: ") + e.what());
        res = outcomeReply(500, {makeIssue(fhir::IssueType::Exception, std::string("internal error: ") + e.what(),
                                           "gateway.internal")},
                           WireFormat::Json, req.version(), false);
      }
      if (draining) res.dropKeepAlive();
      bool keep_alive = res.keepAlive();
      unsigned status = res.status();
      size_t bytes_out = res.bodySize();
      bool written = false;
      if (res.passed) {
        // The upstream's reply, inline: the socket usually takes it at once (writeNow, http_wire.h),
        // and then no coroutine frame is made for the write.
        deadline.expiresAfter(limits.write_timeout);
        wire_scratch.clear();
        res.upstream.appendHead(wire_scratch, res.keep_alive_now);
        boost::system::error_code write_error;
        size_t sent = writeNow(stream, wire_scratch, res.upstream.body, write_error);
        if (!writeIsComplete(sent, wire_scratch, res.upstream.body, write_error)) {
          auto [rest_error, all_sent] = co_await writeRest(stream, wire_scratch, res.upstream.body, sent);
          write_error = rest_error;
        }
        written = !write_error;
      } else {
        written = co_await writeReply(stream, deadline, limits, std::move(res.message), &wire_scratch);
      }
      double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      metrics.countRequest(log_entry.route, method, status, seconds);
      if (access_log) {
        // (handle() moves the body on, never the target.)
        std::string_view target = req.target();
        size_t question = target.find('?');
        appendAccessLogLine(conn, method, target.substr(0, question),
                            question == std::string_view::npos ? std::string_view() : target.substr(question + 1),
                            log_entry, status, bytes_in, bytes_out, seconds);
      }
      if (!written || !keep_alive) co_return;
    }
  }

  // One JSON line per request; no bodies, no query values (they carry patient data). Appended to this
  // worker's batch (see flushAccessLog).
  void appendAccessLogLine(ConnectionInfo& conn, std::string_view method, std::string_view path,
                           std::string_view query, const RequestLog& log_entry, unsigned status, size_t bytes_in,
                           size_t bytes_out, double seconds) {
    using namespace std::string_view_literals;
    // The time text changes once a second; format it only then.
    thread_local std::time_t formatted_second = -1;
    thread_local char when[32];
    thread_local size_t when_size = 0;
    std::time_t now = std::time(nullptr);
    if (now != formatted_second) {
      std::tm tm_utc;
      gmtime_r(&now, &tm_utc);
      when_size = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
      formatted_second = now;
    }
    // The connection's fields are the same on every request it carries: escaped once.
    if (conn.access_log_fields.empty()) {
      std::string& fields = conn.access_log_fields;
      fields += "\",\"listener\":\""sv;
      fhir::appendJsonEscaped(fields, conn.listener->name);
      fields += "\",\"remote\":\""sv;
      fhir::appendJsonEscaped(fields, conn.remote_address);
      fields += "\",\"client\":\""sv;
      fhir::appendJsonEscaped(fields, conn.client_identity);
    }
    auto number = [](std::string& out, auto value) {
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
      out.append(digits, end);
    };
    std::string& out = t_access_log_batch;
    out += "{\"time\":\""sv;
    out.append(when, when_size);
    out += conn.access_log_fields;
    out += "\",\"method\":\""sv;
    fhir::appendJsonEscaped(out, method);
    out += "\",\"path\":\""sv;
    fhir::appendJsonEscaped(out, path);
    out += "\",\"query_params\":\""sv;
    for (bool first = true; !query.empty(); first = false) {  // names only
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (!first) out += ',';
      fhir::appendJsonEscaped(out, pair.substr(0, pair.find('=')));
    }
    out += "\",\"route\":\""sv;
    fhir::appendJsonEscaped(out, log_entry.route);
    out += "\",\"status\":"sv;
    number(out, status);
    out += ",\"upstream\":\""sv;
    fhir::appendJsonEscaped(out, log_entry.upstream);
    out += "\",\"upstream_status\":"sv;
    number(out, log_entry.upstream_status);
    out += ",\"bytes_in\":"sv;
    number(out, bytes_in);
    out += ",\"bytes_out\":"sv;
    number(out, bytes_out);
    // Milliseconds with six decimals, from whole nanoseconds (integer formatting; a double's took
    // a sixth of this line's instructions).
    out += ",\"duration_ms\":"sv;
    uint64_t nanos = seconds > 0 ? static_cast<uint64_t>(seconds * 1e9 + 0.5) : 0;
    number(out, nanos / 1000000);
    char fraction[7];
    uint64_t rest = nanos % 1000000;
    for (int i = 5; i >= 0; --i, rest /= 10) fraction[i] = static_cast<char>('0' + rest % 10);
    fraction[6] = '}';
    out += '.';
    out.append(fraction, 7);
    out += '\n';
    if (out.size() >= kAccessLogBatchBytes) flushAccessLog();
  }

  // `head`: the request line and fields (the body is not read); the reply in the format it asks for.
  Response bodyTooLarge(const ListenerLimits& limits, const Request& head) {
    return outcomeReply(413, {makeIssue(fhir::IssueType::TooLong,
                                        "the request body is larger than max_body_bytes (" +
                                            std::to_string(limits.max_body_bytes) + " bytes)",
                                        "gateway.body-too-large")},
                        errorReplyFormat(head.target(), head[http::field::accept], head[http::field::content_type]),
                        head.version(), false);
  }

  // The format of an error answered before the request is handled (its head only): as the request's
  // _format, Accept and Content-Type ask, else JSON.
  static WireFormat errorReplyFormat(std::string_view target, std::string_view accept, std::string_view content_type) {
    size_t question = target.find('?');
    std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
    std::optional<WireFormat> body_format = formatOfMediaType(content_type);
    Negotiated reply = negotiateReplyFormat(queryParameter(query, "_format"), accept,
                                            body_format ? *body_format : WireFormat::Json);
    return reply.acceptable ? reply.format : WireFormat::Json;
  }

  // A head Beast refused (too large, malformed): it parsed `parsed_bytes` into the parser's message; the
  // rest of what was received is still buffered. That rest, up to max_header_bytes in all.
  static std::string_view unparsedHead(const beast::flat_buffer& buffer, size_t parsed_bytes, const ListenerLimits& limits) {
    std::string_view unparsed(static_cast<const char*>(buffer.data().data()), buffer.size());
    return unparsed.substr(0, limits.max_header_bytes > parsed_bytes ? limits.max_header_bytes - parsed_bytes : 0);
  }

  // 431 or 400 for a head Beast refused, in the format asked for by what was received within
  // max_header_bytes: the request line and fields Beast parsed (`parsed`), then the complete lines
  // of the bytes after them (`unparsed`).
  Response brokenHeadReply(unsigned status, fhir::Issue issue, const Request& parsed, std::string_view unparsed) {
    PartialHeadHints hints = formatHintsOfPartialHead(unparsed);
    auto parsedOr = [](std::string_view parsed_value, std::string_view hint) { return parsed_value.empty() ? hint : parsed_value; };
    WireFormat format = errorReplyFormat(parsedOr(parsed.target(), hints.target), parsedOr(parsed[http::field::accept], hints.accept),
                                         parsedOr(parsed[http::field::content_type], hints.content_type));
    return outcomeReply(status, {std::move(issue)}, format, 11, false);
  }

  // `scratch` (optional): a per-connection string for the head, so its capacity is reused.
  template <class Stream>
  asio::awaitable<bool> writeReply(Stream& stream, LazyDeadline& deadline, const ListenerLimits& limits, Response res,
                                   std::string* scratch = nullptr) {
    deadline.expiresAfter(limits.write_timeout);
    std::string local;
    auto [error, n] = co_await writeMessage(stream, res, scratch ? *scratch : local);
    co_return !error;
  }

  static Clock::duration shortestTimeout(const ListenerLimits& limits) {
    return std::min({limits.header_timeout, limits.body_timeout, limits.write_timeout, limits.idle_timeout});
  }

  asio::awaitable<void> session(tcp::socket socket, BoundListener* bound, size_t context_index) {
    const std::shared_ptr<const ListenerState> listener = bound->state.load();  // this connection's, for its life
    ConnectionInfo conn;
    conn.listener = &listener->config;
    conn.https = listener->tls != nullptr;
    boost::system::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (!ec) conn.remote_address = remote.address().to_string();
    socket.set_option(tcp::no_delay(true), ec);
    metrics.connectionOpened(listener->config.name);
    SessionRegistry& registry = *registries[context_index];
    try {
      beast::tcp_stream transport(std::move(socket));
      // Non-blocking for writeNow's direct writes (http_wire.h), and TlsSocketStream's OpenSSL calls
      // recv and send itself.
      transport.socket().non_blocking(true, ec);
      SessionRegistration registration(registry, &transport);
      LazyDeadline deadline(transport.get_executor(), transport.socket(), shortestTimeout(listener->config.limits));
      if (listener->tls) {
        TlsSocketStream stream(transport.socket(), listener->tls->native_handle());
        deadline.expiresAfter(listener->config.limits.header_timeout);
        auto handshake_error = co_await stream.handshake();
        if (!handshake_error) {
          conn.client_identity = clientIdentityOf(stream.native_handle());
          co_await serveRequests(stream, deadline, conn, registration);
          stream.shutdownNow();
        }
      } else {
        co_await serveRequests(transport, deadline, conn, registration);
      }
      transport.socket().shutdown(tcp::socket::shutdown_send, ec);
    } catch (const std::exception& e) {
      info(std::string("connection error: ") + e.what());
    }
    metrics.connectionClosed(listener->config.name);
  }

  asio::awaitable<void> acceptLoop(BoundListener* listener) {
    while (!draining) {
      size_t index = next_context++ % contexts.size();
      auto [error, socket] = co_await listener->acceptor->async_accept(*contexts[index], kUseAwaitable);
      if (error) {
        if (error == asio::error::operation_aborted || draining) co_return;
        // Out of file descriptors and similar: back off a little instead of spinning.
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await pause.async_wait(kUseAwaitable);
        continue;
      }
      asio::co_spawn(*contexts[index], session(std::move(socket), listener, index), asio::detached);
    }
  }
};

GatewayServer::GatewayServer(std::shared_ptr<const GatewayConfig> config, LogSink log) : impl_(std::make_unique<Impl>()) {
  impl_->log = std::move(log);
  impl_->setRuntime(impl_->buildRuntime(std::move(config)));
}

GatewayServer::~GatewayServer() {
  stop();
  wait();
  impl_->access_log.reset();  // writes what the workers handed over
}

void GatewayServer::start() {
  auto rt = impl_->runtime.load();
  const GatewayConfig& config = *rt->config;
  unsigned workers = config.server.workers ? config.server.workers : usableCores();
  for (unsigned i = 0; i < workers; ++i) {
    // One thread per context, and every socket and timer is used only by its own context's thread
    // (sessions, their upstream pools, health checks on context 0; other threads only post): so the
    // reactor may skip its per-socket lock. Registration and the scheduler stay locked, for the accept
    // on context 0 that hands a socket to another context and for posts from other threads.
    impl_->contexts.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    impl_->registries.push_back(std::make_unique<SessionRegistry>());
    impl_->guards.push_back(asio::make_work_guard(*impl_->contexts.back()));
  }
  impl_->openAccessLog(config.server.access_log);
  for (const auto& listener_config : config.listeners) {
    if (listener_config.protocol == ListenerProtocol::Mllp) {
      impl_->info("listener " + listener_config.name + ": mllp listeners are not served by the HTTP server; skipped");
      continue;
    }
    auto bound = std::make_unique<Impl::BoundListener>();
    bound->state = impl_->makeListenerState(listener_config);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(listener_config.address, ec);
    if (ec) throw std::runtime_error("listener " + listener_config.name + ": '" + listener_config.address + "' is not an IP address");
    tcp::endpoint endpoint(address, listener_config.port);
    bound->acceptor = std::make_unique<tcp::acceptor>(*impl_->contexts[0]);
    bound->acceptor->open(endpoint.protocol());
    bound->acceptor->set_option(asio::socket_base::reuse_address(true));
    bound->acceptor->bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("listener " + listener_config.name + ": cannot listen on " + listener_config.address + ":" +
                               std::to_string(listener_config.port) + ": " + ec.message() +
                               " (is another process using the port?)");
    }
    bound->acceptor->listen(asio::socket_base::max_listen_connections);
    bound->port = bound->acceptor->local_endpoint().port();
    impl_->info("listener " + listener_config.name + " on " + (listener_config.tls ? "https://" : "http://") +
                listener_config.address + ":" + std::to_string(bound->port));
    impl_->listeners.push_back(std::move(bound));
  }
  for (auto& listener : impl_->listeners) {
    asio::co_spawn(*impl_->contexts[0], impl_->acceptLoop(listener.get()), asio::detached);
  }
  impl_->startHealthChecks(rt);
  for (auto& context : impl_->contexts) {
    if (impl_->access_log) asio::co_spawn(*context, impl_->accessLogFlushLoop(), asio::detached);
    impl_->threads.emplace_back([impl = impl_.get(), ctx = context.get()] {
      ctx->run();
      impl->flushAccessLog();
      closeIdleUpstreamConnections();
    });
  }
}

uint16_t GatewayServer::port(std::string_view listener_name) const {
  for (const auto& l : impl_->listeners) {
    if (l->state.load()->config.name == listener_name) return l->port;
  }
  return 0;
}

void GatewayServer::reload(std::shared_ptr<const GatewayConfig> config) {
  std::lock_guard lock(impl_->reload_mutex);
  auto old = impl_->runtime.load();
  // Everything is built before anything is swapped in: a certificate or CA bundle that does not load
  // throws here and the running config stays, listeners included.
  std::vector<std::pair<Impl::BoundListener*, std::shared_ptr<const Impl::ListenerState>>> listener_states;
  for (auto& bound : impl_->listeners) {
    const std::shared_ptr<const Impl::ListenerState> running_state = bound->state.load();
    const ListenerConfig& running = running_state->config;
    // (Same name, protocol, address and port: the socket stays; any other change waits for a restart.
    // Listener names are unique.)
    auto next = std::find_if(config->listeners.begin(), config->listeners.end(), [&](const ListenerConfig& l) {
      return l.name == running.name && l.protocol == running.protocol && l.address == running.address && l.port == running.port;
    });
    if (next != config->listeners.end()) listener_states.emplace_back(bound.get(), impl_->makeListenerState(*next));
  }
  auto rt = impl_->buildRuntime(config);
  for (const std::string& change : listenerChangesNeedingRestart(*old->config, *config)) {
    impl_->info("reload: " + change + " (takes effect only after a restart)");
  }
  for (auto& [bound, state] : listener_states) bound->state.store(std::move(state));
  impl_->setRuntime(rt);
  impl_->metrics.countReload(true);
  if (!impl_->contexts.empty()) impl_->startHealthChecks(rt);
  impl_->info("reload: new config active (" + std::to_string(rt->config->routes.size()) + " routes)");
}

bool GatewayServer::reloadFromFile(const std::string& path) {
  auto loaded = loadConfig(path);
  // (The TLS files as serve checks them at start: each problem at its 'tls:' line.)
  ConfigErrors errors = loaded ? checkTlsFiles(**loaded) : loaded.error();
  if (!errors.empty()) {
    impl_->metrics.countReload(false);
    std::string message = "reload failed; keeping the running config:";
    for (const auto& e : errors) message += "\n  " + formatConfigError(e);
    impl_->info(message);
    return false;
  }
  try {
    reload(*loaded);
  } catch (const std::exception& e) {
    impl_->metrics.countReload(false);
    impl_->info(std::string("reload failed; keeping the running config: ") + e.what());
    return false;
  }
  for (const auto& hook : impl_->reload_hooks) hook(path, *loaded);
  return true;
}

void GatewayServer::addReloadHook(std::function<void(const std::string&, std::shared_ptr<const GatewayConfig>)> hook) {
  impl_->reload_hooks.push_back(std::move(hook));
}

void GatewayServer::stop() {
  if (impl_->draining.exchange(true)) return;
  if (impl_->contexts.empty()) {
    impl_->stopped = true;
    return;
  }
  ++impl_->health_generation;
  // Stop accepting; close idle keep-alive connections; busy ones finish their request (they see
  // `draining` and reply with Connection: close).
  for (auto& listener : impl_->listeners) {
    asio::post(*impl_->contexts[0], [acceptor = listener->acceptor.get()] {
      boost::system::error_code ec;
      acceptor->close(ec);
    });
  }
  for (size_t i = 0; i < impl_->contexts.size(); ++i) {
    asio::post(*impl_->contexts[i], [registry = impl_->registries[i].get()] {
      for (auto& entry : registry->sessions) {
        if (!entry.busy) entry.stream->cancel();
      }
    });
  }
  auto drain_timeout = impl_->runtime.load()->config->server.drain_timeout;
  std::thread([impl = impl_.get(), drain_timeout] {
    auto deadline = Clock::now() + drain_timeout;
    auto requests_in_flight = [impl] {
      int64_t n = 0;
      for (const auto& registry : impl->registries) n += registry->requests_in_flight.load(std::memory_order_relaxed);
      return n;
    };
    while (requests_in_flight() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // Let finished sessions write their replies, then stop the loops.
    for (auto& guard : impl->guards) guard.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (auto& context : impl->contexts) context->stop();
    std::lock_guard lock(impl->stop_mutex);
    impl->stopped = true;
    impl->stop_cv.notify_all();
  }).detach();
}

void GatewayServer::wait() {
  {
    std::unique_lock lock(impl_->stop_mutex);
    impl_->stop_cv.wait(lock, [&] { return impl_->stopped.load(); });
  }
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // Every worker handed over its last batch when it stopped: on disk before wait() returns.
  if (impl_->access_log) impl_->access_log->drain();
}

void GatewayServer::runUntilSignalled(const std::string& config_path) {
  asio::io_context signals_context(1);
  asio::signal_set signals(signals_context, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> arm;
  arm = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        if (config_path.empty()) {  // the embedded default: not a failed reload
          impl_->info("SIGHUP: no config file to reload (the embedded default runs; start with --config FILE.yaml to reload)");
          arm();
          return;
        }
        impl_->info("SIGHUP: reloading " + config_path);
        reloadFromFile(config_path);
        arm();
        return;
      }
      impl_->info("stopping: draining requests in flight");
      stop();
    });
  };
  arm();
  std::thread signal_thread([&] { signals_context.run(); });
  wait();
  signals_context.stop();
  signal_thread.join();
}

std::string GatewayServer::metricsText() const { return impl_->renderMetrics(); }

void GatewayServer::addMetricsSource(std::function<std::string()> source) {
  std::lock_guard lock(impl_->metrics_sources_mutex);
  impl_->metrics_sources.push_back(std::move(source));
}

}  // namespace medicus::gateway
