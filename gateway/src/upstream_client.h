#pragma once
// HTTP(S)/1.1 client for upstream FHIR servers with a keep-alive pool per worker thread (no locks:
// each io_context thread owns its pool). Private to gateway/src: includes Beast.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <string>
#include <vector>

#include "medicus/gateway/config.h"
#include "tls_session_cache.h"
#include "upstream_reply.h"

namespace medicus::gateway {

namespace http = boost::beast::http;

struct UpstreamResult {
  enum class Error : uint8_t { None, Connect, Timeout, Protocol, TooLarge };
  Error error = Error::None;
  // The connection the exchange used: a pooled one, or one opened for it (plain, or TLS with a full
  // or a resumed handshake), for medicus_gateway_upstream_connections_opened_total.
  enum class Connection : uint8_t { Pooled, OpenedPlain, OpenedTlsFull, OpenedTlsResumed };
  Connection connection = Connection::Pooled;
  // The host name lookup the exchange made, for medicus_gateway_upstream_resolutions_total: None (a
  // pooled connection, an IP address, or addresses kept from a lookup less than resolve_ttl ago),
  // Resolved, Failed, or Stale (failed, and the addresses of the last lookup were used).
  enum class Resolution : uint8_t { None, Resolved, Failed, Stale };
  Resolution resolution = Resolution::None;
  std::string detail;  // what failed, for the OperationOutcome and the log
  UpstreamReply reply;
};

// One upstream's runtime: its config and the TLS context for its https endpoints.
struct UpstreamRuntime {
  const UpstreamConfig* config = nullptr;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null when no endpoint is https
  // With `tls`: the session each endpoint's server issued last, offered when connecting to it again.
  std::shared_ptr<TlsSessionCache> tls_sessions;
  // Per endpoint of `config`, in its order, made once per config snapshot (describeEndpoints): the
  // endpoint's url() and its idle pool's key, which every request used to build again.
  std::vector<std::string> endpoint_urls;
  std::vector<std::string> pool_keys;

  void describeEndpoints();
  // The endpoint's place in config->endpoints, or -1 for an endpoint from elsewhere (a copy).
  ptrdiff_t indexOf(const UpstreamEndpoint& endpoint) const;
  // The same, also for a copy (a health check's): the first endpoint with the same URL, or -1.
  ptrdiff_t indexOfUrl(const UpstreamEndpoint& endpoint) const;
};

// A request already in wire form: building the forwarded request as a Beast message cost one
// allocation per field, only to be serialized again right away.
struct UpstreamRequest {
  http::verb method = http::verb::get;
  // "GET /target HTTP/1.1\r\n" and the fields, each line ended by CRLF, without Host,
  // Content-Length and the blank line (exchangeWithUpstream adds them).
  std::string head;
  std::string body;
};

// Sends one request and reads the reply, reusing a pooled connection when one is idle. Must run on
// the calling worker's io_context.
boost::asio::awaitable<UpstreamResult> exchangeWithUpstream(const UpstreamRuntime& upstream,
                                                            const UpstreamEndpoint& endpoint, UpstreamRequest request);
// The same for a message (target, headers and body set; Host and Content-Length are set here).
boost::asio::awaitable<UpstreamResult> exchangeWithUpstream(const UpstreamRuntime& upstream,
                                                            const UpstreamEndpoint& endpoint,
                                                            http::request<http::string_body> request);

// Drops this thread's idle pooled connections (on stop).
void closeIdleUpstreamConnections();

}  // namespace medicus::gateway
