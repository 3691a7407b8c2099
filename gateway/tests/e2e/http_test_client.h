#pragma once
// A small blocking HTTP(S) client for the end-to-end tests (one request per connection, 10 s socket
// timeouts), plus a raw-socket helper for slow-client tests.
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace medicus::gateway::test {

struct TlsClientOptions {
  bool enabled = false;
  std::string ca_file;           // verify the server against this CA
  std::string certificate_file;  // client certificate (mTLS)
  std::string private_key_file;
};

struct HttpReply {
  bool ok = false;           // false: connection/TLS failure (see error)
  std::string error;
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

HttpReply httpRequest(int port, const std::string& method, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                      const std::string& body = {}, const TlsClientOptions& tls = {});

// A blocking TCP connection to 127.0.0.1:port, with SO_RCVBUF set before connecting when
// `receive_buffer` > 0 (so the advertised window stays that small); -1 on failure.
int connectLoopback(int port, int receive_buffer = 0);

// Sends `sent_first` at once, then `bytes` one at a time with `pause_ms` between them; returns the
// milliseconds from the first trickled byte until the server closed the connection (or -1 if it stayed
// open for all bytes).
long trickleUntilClosed(int port, const std::string& bytes, int pause_ms, const std::string& sent_first = {});

}  // namespace medicus::gateway::test
