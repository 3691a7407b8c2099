#pragma once
// HTTP(S)/1.1 client for upstream FHIR servers with a keep-alive pool per worker thread (no locks:
// each io_context thread owns its pool). Private to gateway/src: includes Beast.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <string>

#include "medicus/gateway/config.h"

namespace medicus::gateway {

namespace http = boost::beast::http;

struct UpstreamResult {
  enum class Error : uint8_t { None, Connect, Timeout, Protocol, TooLarge };
  Error error = Error::None;
  std::string detail;  // what failed, for the OperationOutcome and the log
  http::response<http::string_body> response;
};

// One upstream's runtime: its config and the TLS context for its https endpoints.
struct UpstreamRuntime {
  const UpstreamConfig* config = nullptr;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null when no endpoint is https
};

// Sends one request (target, headers and body already set; Host is set here) and reads the reply,
// reusing a pooled connection when one is idle. Must run on the calling worker's io_context.
boost::asio::awaitable<UpstreamResult> exchangeWithUpstream(const UpstreamRuntime& upstream,
                                                            const UpstreamEndpoint& endpoint,
                                                            http::request<http::string_body> request);

// Drops this thread's idle pooled connections (on stop).
void closeIdleUpstreamConnections();

}  // namespace medicus::gateway
