#include "upstream_client.h"

#include "complete_within.h"
#include "host_resolution_cache.h"
#include "http_wire.h"
#include "lazy_deadline.h"
#include "tls_socket_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace medicus::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kUseAwaitable = asio::as_tuple(asio::use_awaitable);
using LookupResult = std::tuple<boost::system::error_code, tcp::resolver::results_type>;

struct Connection {
  // An HTTPS connection's TLS settings (the config snapshot's context it was made with): after a
  // reload with others (CA bundle, client certificate, server name, verify) it is not reused.
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  std::shared_ptr<TlsSessionCache> tls_sessions;  // (before `tls`: outlives it, its SSL points into it)
  std::unique_ptr<beast::tcp_stream> tcp;  // the socket; an HTTPS one is read and written through `tls`
  std::unique_ptr<TlsSocketStream> tls;    // (after `tcp`: destroyed before the socket it uses)
  beast::flat_buffer buffer;
  std::unique_ptr<LazyDeadline> deadline;  // the handshake's, then the reply's from the request's write on
  std::optional<DrainAwareSocket> plain_reader;  // reads a plain `tcp` (set once connected; one reactor lookup)
};

// The idle pool of this worker thread: "upstream|https://host:port" -> idle connections. Entries are
// never erased (closeIdleUpstreamConnections empties them), so an exchange keeps a reference to its
// endpoint's across its co_awaits: one lookup per request.
using IdleConnections = std::deque<std::unique_ptr<Connection>>;
thread_local std::unordered_map<std::string, IdleConnections> t_idle;
// This worker thread's addresses of upstream host names (host_resolution_cache.h).
thread_local HostResolutionCache t_resolved;

// One read into `into` from what the connection is read from: the TLS stream, or for a plain
// connection its socket through `plain_reader`. (Not a coroutine itself: no frame per read.)
template <class Readable>
asio::awaitable<std::tuple<boost::system::error_code, size_t>> readSome(Readable& readable, asio::mutable_buffer into) {
  return readable.async_read_some(into, kUseAwaitable);
}

// Where the next read into `buffer` goes: its free space, at least 512 bytes (as Beast's read did).
asio::mutable_buffer readRoom(beast::flat_buffer& buffer) {
  return buffer.prepare(std::max<size_t>(512, buffer.capacity() - buffer.size()));
}

// Reads more into `buffer`. `received` counts the bytes, so a failure can tell "closed before any
// reply byte" from a broken reply.
template <class Readable>
asio::awaitable<boost::system::error_code> fill(Readable& readable, beast::flat_buffer& buffer, size_t& received) {
  auto [error, n] = co_await readSome(readable, readRoom(buffer));
  buffer.commit(n);
  received += n;
  co_return error;
}

// Reads one reply (upstream_reply.h): the head from the connection's buffer, then the body as its
// framing says. Errors as Beast's http::async_read gave them (end_of_stream, partial_message, ...).
template <class Readable>
asio::awaitable<boost::system::error_code> readReply(Readable& readable, beast::flat_buffer& buffer,
                                                     const UpstreamConfig& config, bool head_request,
                                                     UpstreamReply& reply, size_t& received) {
  auto buffered = [&buffer] {
    auto data = buffer.data();
    return std::string_view(static_cast<const char*>(data.data()), data.size());
  };
  // An EOF: before any byte of this reply end_of_stream, within it partial_message.
  auto at_eof = [&buffer](bool started) -> boost::system::error_code {
    return started || buffer.size() != 0 ? http::error::partial_message : http::error::end_of_stream;
  };
  ReplyHeadResult head;
  for (;;) {
    if (buffer.size() != 0) {
      head = parseReplyHead(buffered(), 64 * 1024, head_request, reply);
      if (head.error != http::error::need_more) break;
    }
    // (fill() inlined: the read usually completes the head, and a coroutine per read costs a frame.)
    auto [error, n] = co_await readSome(readable, readRoom(buffer));
    buffer.commit(n);
    received += n;
    if (error) co_return error == asio::error::eof ? at_eof(false) : error;
  }
  if (!head.ok()) co_return head.error;
  buffer.consume(head.consumed);
  switch (head.framing.kind) {
    case ReplyFraming::Kind::None:
      co_return boost::system::error_code{};
    case ReplyFraming::Kind::Length: {
      if (head.framing.length > config.max_response_bytes) co_return http::error::body_limit;
      size_t length = static_cast<size_t>(head.framing.length);
      size_t have = std::min(length, buffer.size());
      reply.body.assign(buffered().substr(0, have));
      buffer.consume(have);
      if (have < length) {
        // The rest straight into the body.
        reply.body.resize(length);
        while (have < length) {
          auto [error, n] = co_await readSome(readable, asio::buffer(reply.body.data() + have, length - have));
          have += n;
          received += n;
          if (error) co_return error == asio::error::eof ? at_eof(true) : error;
        }
      }
      co_return boost::system::error_code{};
    }
    case ReplyFraming::Kind::Chunked: {
      ChunkedDecoder decoder;
      for (;;) {
        auto [error, consumed] = decoder.put(buffered(), config.max_response_bytes, reply);
        buffer.consume(consumed);
        if (decoder.done()) co_return boost::system::error_code{};
        if (error != http::error::need_more) co_return error;
        if (auto read_error = co_await fill(readable, buffer, received)) {
          co_return read_error == asio::error::eof ? at_eof(true) : read_error;
        }
      }
    }
    case ReplyFraming::Kind::UntilClose:
      // No length: the body ends with the connection, which therefore cannot go back to the pool.
      reply.keep_alive = false;
      for (bool closed = false;;) {
        reply.body.append(buffered());
        buffer.consume(buffer.size());
        if (reply.body.size() > config.max_response_bytes) co_return http::error::body_limit;
        if (closed) co_return boost::system::error_code{};
        if (auto error = co_await fill(readable, buffer, received)) {
          if (error != asio::error::eof) co_return error;
          closed = true;  // what came with the EOF is taken in the next round
        }
      }
  }
  co_return boost::system::error_code{};
}

// Writes to `stream`, reads the reply from `readable` (the stream itself, or a plain one's plain_reader).
template <class Stream, class Readable>
asio::awaitable<UpstreamResult> roundTrip(Stream& stream, Readable& readable, Connection& connection,
                                          const UpstreamConfig& config, const UpstreamRequest& request) {
  UpstreamResult result;
  LazyDeadline& deadline = *connection.deadline;
  deadline.expiresAfter(config.response_timeout);
  boost::system::error_code write_error;
  size_t written = writeNow(stream, request.head, request.body, write_error);
  if (!writeIsComplete(written, request.head, request.body, write_error)) {
    auto [rest_error, all_written] = co_await writeRest(stream, request.head, request.body, written);
    write_error = rest_error;
  }
  if (write_error) {
    result.error = deadline.expired() ? UpstreamResult::Error::Timeout : UpstreamResult::Error::Connect;
    result.detail = "sending the request failed: " + write_error.message();
    co_return result;
  }
  // A HEAD reply has headers but no body.
  size_t received = 0;
  boost::system::error_code read_error =
      co_await readReply(readable, connection.buffer, config, request.method == http::verb::head, result.reply, received);
  if (read_error) {
    if (deadline.expired()) {
      result.error = UpstreamResult::Error::Timeout;
      result.detail = "no complete reply within " + std::to_string(config.response_timeout.count()) + " ms";
    } else if (read_error == http::error::body_limit) {
      result.error = UpstreamResult::Error::TooLarge;
      result.detail = "the reply is larger than max_response_bytes (" + std::to_string(config.max_response_bytes) + ")";
    } else {
      result.error = received == 0 ? UpstreamResult::Error::Connect : UpstreamResult::Error::Protocol;
      result.detail = "reading the reply failed: " + read_error.message();
    }
    co_return result;
  }
  deadline.expiresNever();  // idle in the pool: the upstream closes it when it likes
  co_return result;
}

asio::awaitable<std::unique_ptr<Connection>> connect(const UpstreamRuntime& upstream, const UpstreamEndpoint& endpoint,
                                                     std::string& detail, bool& timed_out,
                                                     UpstreamResult::Resolution& resolution) {
  auto executor = co_await asio::this_coro::executor;
  auto connection = std::make_unique<Connection>();
  // Beast reads at most the buffer's free space (at least 512 bytes) and the parser empties the
  // buffer as it goes: without room reserved, a 3 KB reply would take six read calls.
  connection->buffer.reserve(16 * 1024);
  // An IP address needs no resolver: Asio's runs getaddrinfo on a thread of its own, which cost
  // two thread hand-offs (futex wake-ups) per new connection. A host name's addresses come from this
  // thread's cache while younger than resolve_ttl.
  HostResolutionCache::Addresses addresses;
  boost::system::error_code not_an_address;
  asio::ip::address address = asio::ip::make_address(endpoint.host, not_an_address);
  if (!not_an_address) {
    addresses.emplace_back(address, endpoint.port);
  } else {
    addresses = t_resolved.fresh(endpoint.host, endpoint.port, HostResolutionCache::Clock::now(), upstream.config->resolve_ttl);
  }
  // The lookup and the TCP connect share the connect timeout.
  const auto connect_deadline = std::chrono::steady_clock::now() + upstream.config->connect_timeout;
  if (addresses.empty()) {
    auto lookup = [](std::string host, std::string port) -> asio::awaitable<LookupResult> {
      tcp::resolver resolver(co_await asio::this_coro::executor);
      co_return co_await resolver.async_resolve(host, port, kUseAwaitable);
    };
    // getaddrinfo cannot be cancelled: a DNS server that does not answer would hold the connection
    // (and the client) for resolv.conf's timeouts, so it is waited for only until the connect timeout.
    std::optional<LookupResult> looked_up = co_await completeWithin(
        upstream.config->connect_timeout, lookup(endpoint.host, std::to_string(endpoint.port)));
    boost::system::error_code resolve_error = asio::error::timed_out;
    if (looked_up) {
      resolve_error = std::get<0>(*looked_up);
      for (const auto& result : std::get<1>(*looked_up)) addresses.push_back(result.endpoint());
    }
    if (resolve_error || addresses.empty()) {
      // (A DNS outage should not take down an upstream whose addresses have not changed.)
      addresses = t_resolved.stale(endpoint.host, endpoint.port);
      if (addresses.empty()) {
        resolution = UpstreamResult::Resolution::Failed;
        timed_out = !looked_up;
        detail = "cannot resolve " + endpoint.host + ": " +
                 (!looked_up ? "no answer within the connect timeout (" +
                                   std::to_string(upstream.config->connect_timeout.count()) + " ms)"
                             : resolve_error ? resolve_error.message() : std::string("no addresses"));
        co_return nullptr;
      }
      resolution = UpstreamResult::Resolution::Stale;
    } else {
      resolution = UpstreamResult::Resolution::Resolved;
      if (upstream.config->resolve_ttl.count() > 0) {
        t_resolved.store(endpoint.host, endpoint.port, addresses, HostResolutionCache::Clock::now());
      }
    }
  }
  if (endpoint.https && !upstream.tls) {
    detail = "no TLS context for " + endpoint.url();
    co_return nullptr;
  }
  connection->tcp = std::make_unique<beast::tcp_stream>(executor);
  beast::tcp_stream& lowest = *connection->tcp;
  lowest.expires_at(std::max(connect_deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
  auto [connect_error, connected] = co_await lowest.async_connect(addresses, kUseAwaitable);
  if (connect_error) {
    // Addresses that do not answer are not kept: the next connection looks the name up again.
    if (not_an_address) t_resolved.forget(endpoint.host, endpoint.port);
    timed_out = connect_error == beast::error::timeout;
    detail = "cannot connect to " + endpoint.url() + ": " + connect_error.message();
    co_return nullptr;
  }
  lowest.expires_never();  // from here on the connection's own deadline (lazy_deadline.h)
  lowest.socket().set_option(tcp::no_delay(true));
  boost::system::error_code ignored;
  lowest.socket().non_blocking(true, ignored);  // for writeNow (http_wire.h); TlsSocketStream needs it
  connection->deadline = std::make_unique<LazyDeadline>(
      executor, lowest.socket(), std::min(upstream.config->connect_timeout, upstream.config->response_timeout));
  if (endpoint.https) {
    connection->tls_context = upstream.tls;
    connection->tls = std::make_unique<TlsSocketStream>(lowest.socket(), upstream.tls->native_handle(),
                                                        TlsSocketStream::Role::Client);
    const std::string& server_name = upstream.config->tls.server_name.empty() ? endpoint.host : upstream.config->tls.server_name;
    SSL_set_tlsext_host_name(connection->tls->native_handle(), server_name.c_str());
    if (upstream.config->tls.verify) {
      SSL_set1_host(connection->tls->native_handle(), server_name.c_str());
    }
    // The session this endpoint's server issued last (if any), and its next one saved for the next
    // connection. (Keyed by endpoint within one config snapshot, so by host, port and server name.)
    if (ptrdiff_t index = upstream.indexOfUrl(endpoint); upstream.tls_sessions && index >= 0) {
      connection->tls_sessions = upstream.tls_sessions;
      connection->tls_sessions->offer(connection->tls->native_handle(), static_cast<size_t>(index));
    }
    // The handshake has the connect timeout too.
    connection->deadline->expiresAfter(upstream.config->connect_timeout);
    boost::system::error_code handshake_error = co_await connection->tls->handshake();
    if (handshake_error) {
      timed_out = connection->deadline->expired();
      detail = "TLS handshake with " + endpoint.url() + " failed: " +
               (timed_out ? std::string("no reply within the connect timeout") : handshake_error.message());
      co_return nullptr;
    }
    connection->deadline->expiresNever();
  } else {
    connection->plain_reader.emplace(lowest.socket());
  }
  co_return connection;
}

}  // namespace

asio::awaitable<UpstreamResult> exchangeWithUpstream(const UpstreamRuntime& upstream, const UpstreamEndpoint& endpoint,
                                                     http::request<http::string_body> request) {
  UpstreamRequest wire;
  wire.method = request.method();
  std::string_view method = request.method_string();
  std::string_view target = request.target();
  wire.head.append(method.data(), method.size()).append(1, ' ').append(target.data(), target.size());
  wire.head += " HTTP/1.1\r\n";
  for (const auto& field : request) {
    if (field.name() == http::field::host || field.name() == http::field::content_length) continue;
    std::string_view name = field.name_string();
    std::string_view value = field.value();
    wire.head.append(name.data(), name.size()).append(": ").append(value.data(), value.size()).append("\r\n");
  }
  wire.body = std::move(request.body());
  UpstreamResult result = co_await exchangeWithUpstream(upstream, endpoint, std::move(wire));
  co_return result;
}

asio::awaitable<UpstreamResult> exchangeWithUpstream(const UpstreamRuntime& upstream, const UpstreamEndpoint& endpoint,
                                                     UpstreamRequest request) {
  const UpstreamConfig& config = *upstream.config;
  std::string built_key;  // for an endpoint without a cached key (health checks use copies)
  ptrdiff_t index = upstream.indexOf(endpoint);
  if (index < 0 || static_cast<size_t>(index) >= upstream.pool_keys.size()) built_key = config.name + "|" + endpoint.url();
  const std::string& key = built_key.empty() ? upstream.pool_keys[static_cast<size_t>(index)] : built_key;
  // Host, then Content-Length (also 0 for the methods that carry a body), then the blank line.
  // HTTP/1.1 keeps the connection alive without a Connection field.
  char number[24];
  auto [port_end, port_error] = std::to_chars(number, number + sizeof number, endpoint.port);
  request.head.append("Host: ").append(endpoint.host).append(1, ':').append(number, port_end).append("\r\n");
  if (!request.body.empty() || request.method == http::verb::post || request.method == http::verb::put ||
      request.method == http::verb::patch || request.method == http::verb::options) {
    auto [length_end, length_error] = std::to_chars(number, number + sizeof number, request.body.size());
    request.head.append("Content-Length: ").append(number, length_end).append("\r\n");
  }
  request.head += "\r\n";

  // A pooled connection may have been closed by the upstream meanwhile (servers close idle
  // keep-alive connections, node after 5 s): on a failure before any reply byte, retry once on a
  // fresh connection. The other idle connections of that endpoint have most likely been idle as
  // long, so they go too (before, the retry took the next stale one and the client got a 502).
  IdleConnections& idle = t_idle[key];
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> connection;
    bool reused = false;
    UpstreamResult::Connection opened = UpstreamResult::Connection::Pooled;
    UpstreamResult::Resolution resolution = UpstreamResult::Resolution::None;
    // (Pooled HTTPS connections made under an older config's TLS settings are dropped on the way.)
    while (attempt == 0 && !connection && !idle.empty()) {
      connection = std::move(idle.back());
      idle.pop_back();
      if (connection->tls && connection->tls_context != upstream.tls) connection.reset();
    }
    if (connection) {
      reused = true;
    } else {
      std::string detail;
      bool timed_out = false;
      connection = co_await connect(upstream, endpoint, detail, timed_out, resolution);
      if (!connection) {
        UpstreamResult failed;
        failed.error = timed_out ? UpstreamResult::Error::Timeout : UpstreamResult::Error::Connect;
        failed.detail = detail;
        failed.resolution = resolution;
        co_return failed;
      }
      opened = !connection->tls                                ? UpstreamResult::Connection::OpenedPlain
               : SSL_session_reused(connection->tls->native_handle()) ? UpstreamResult::Connection::OpenedTlsResumed
                                                                      : UpstreamResult::Connection::OpenedTlsFull;
    }
    // (No co_await inside ?: — g++ 12 destroys the temporaries of both arms.)
    UpstreamResult result;
    if (connection->tls) {
      result = co_await roundTrip(*connection->tls, *connection->tls, *connection, config, request);
    } else {
      result = co_await roundTrip(*connection->tcp, *connection->plain_reader, *connection, config, request);
    }
    result.connection = opened;
    result.resolution = resolution;
    if (result.error == UpstreamResult::Error::Connect && reused) {
      idle.clear();
      continue;
    }
    if (result.error == UpstreamResult::Error::None && result.reply.keep_alive &&
        idle.size() < config.max_idle_connections) {
      idle.push_back(std::move(connection));
    }
    co_return result;
  }
  UpstreamResult failed;
  failed.error = UpstreamResult::Error::Connect;
  failed.detail = "the upstream closed the connection twice";
  co_return failed;
}

void closeIdleUpstreamConnections() {
  for (auto& [key, idle] : t_idle) idle.clear();
}

void UpstreamRuntime::describeEndpoints() {
  endpoint_urls.clear();
  pool_keys.clear();
  for (const auto& endpoint : config->endpoints) {
    endpoint_urls.push_back(endpoint.url());
    pool_keys.push_back(config->name + "|" + endpoint_urls.back());
  }
}

ptrdiff_t UpstreamRuntime::indexOfUrl(const UpstreamEndpoint& endpoint) const {
  if (ptrdiff_t index = indexOf(endpoint); index >= 0) return index;
  auto found = std::find(endpoint_urls.begin(), endpoint_urls.end(), endpoint.url());
  return found == endpoint_urls.end() ? -1 : found - endpoint_urls.begin();
}

ptrdiff_t UpstreamRuntime::indexOf(const UpstreamEndpoint& endpoint) const {
  const auto& endpoints = config->endpoints;
  if (endpoints.empty() || &endpoint < endpoints.data() || &endpoint >= endpoints.data() + endpoints.size()) return -1;
  return &endpoint - endpoints.data();
}

}  // namespace medicus::gateway
