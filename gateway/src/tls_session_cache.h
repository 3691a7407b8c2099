#pragma once
// Client-side TLS session resumption for upstream connections. Per endpoint, the newest session its
// server issued (a TLS 1.3 ticket, or a TLS 1.2 session) is offered on the next new connection to
// it, as nginx's proxy_ssl_session_reuse does. A pool that reconnects then skips the certificate
// exchange with its signature and chain verification. Reconnects happen when the upstream closed
// idle connections, restarted, or a burst needs more connections, and on every health check.
// A cache belongs to one SSL_CTX, and so to one config snapshot: a session verified under an old CA
// bundle or server name is never offered under a new one. Thread-safe; plain OpenSSL.
#include <cstddef>
#include <mutex>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace medicus::gateway {

class TlsSessionCache {
 public:
  // Client session caching on `context`: each session a server issues on a connection that offer()
  // tagged goes to that connection's slot (OpenSSL's internal store stays off).
  static void enable(SSL_CTX* context);

  explicit TlsSessionCache(size_t endpoints);
  ~TlsSessionCache();
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;

  // Before the handshake of a new connection to endpoint `index` (< endpoints): sets its saved
  // session on `ssl`, if any, and tags `ssl` so that sessions the server issues on it replace it.
  // The cache must outlive `ssl`.
  void offer(SSL* ssl, size_t index);
  bool holds(size_t index) const;  // a session is saved for endpoint `index`

 private:
  struct Slot {
    TlsSessionCache* cache = nullptr;
    SSL_SESSION* session = nullptr;
  };
  static int onNewSession(SSL* ssl, SSL_SESSION* session);

  mutable std::mutex mutex_;
  std::vector<Slot> slots_;  // sized once: each tagged SSL points into it
};

}  // namespace medicus::gateway
