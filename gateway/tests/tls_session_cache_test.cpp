// TlsSessionCache with real OpenSSL handshakes between a client and a server SSL over a BIO pair: the
// session a server issued is offered on the next connection to that endpoint and resumes it, per
// endpoint and per cache, over TLS 1.3 (tickets after the handshake) and TLS 1.2.
#include "tls_session_cache.h"

#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "e2e/test_upstream.h"
#include "tls_setup.h"

using namespace medicus::gateway;

namespace {

using SslPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using ContextPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

struct Contexts {
  test::TempDir dir;
  ContextPtr server{SSL_CTX_new(TLS_server_method()), SSL_CTX_free};
  ContextPtr client{SSL_CTX_new(TLS_client_method()), SSL_CTX_free};

  explicit Contexts(int max_version = 0) {
    ServerTlsConfig tls;
    tls.certificate_file = dir.path + "/server.crt";
    tls.private_key_file = dir.path + "/server.key";
    tls.self_signed_if_missing = true;
    REQUIRE(ensureSelfSignedCertificate(tls));
    configureServerContext(server.get(), tls);
    UpstreamTlsConfig upstream;
    upstream.verify = false;
    configureClientContext(client.get(), upstream);
    if (max_version) SSL_CTX_set_max_proto_version(client.get(), max_version);
    TlsSessionCache::enable(client.get());
  }

  // One connection to endpoint `index` of `cache`: handshake, then one record from the server that
  // the client reads (TLS 1.3 tickets arrive after the handshake, before it). Returns whether the
  // client's handshake resumed a session.
  bool connect(TlsSessionCache& cache, size_t index) {
    SslPtr c(SSL_new(client.get()), SSL_free), s(SSL_new(server.get()), SSL_free);
    BIO *client_bio = nullptr, *server_bio = nullptr;
    REQUIRE(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1);
    SSL_set_bio(c.get(), client_bio, client_bio);
    SSL_set_bio(s.get(), server_bio, server_bio);
    SSL_set_connect_state(c.get());
    SSL_set_accept_state(s.get());
    SSL_set_tlsext_host_name(c.get(), "localhost");
    cache.offer(c.get(), index);
    bool client_done = false, server_done = false;
    for (int turn = 0; turn < 20 && !(client_done && server_done); ++turn) {
      if (!client_done) client_done = SSL_do_handshake(c.get()) == 1;
      if (!server_done) server_done = SSL_do_handshake(s.get()) == 1;
    }
    REQUIRE(client_done);
    REQUIRE(server_done);
    REQUIRE(SSL_write(s.get(), "ok", 2) == 2);
    char got[2];
    REQUIRE(SSL_read(c.get(), got, sizeof got) == 2);
    return SSL_session_reused(c.get()) == 1;
  }
};

}  // namespace

TEST_CASE("TlsSessionCache: a TLS 1.3 ticket from the first connection resumes the next ones to that endpoint") {
  Contexts contexts;
  TlsSessionCache cache(2);
  CHECK_FALSE(cache.holds(0));
  CHECK_FALSE(contexts.connect(cache, 0));  // nothing saved yet: a full handshake
  CHECK(cache.holds(0));
  CHECK(contexts.connect(cache, 0));
  CHECK(contexts.connect(cache, 0));  // the newest ticket replaced the used one
  // Another endpoint has its own slot.
  CHECK_FALSE(cache.holds(1));
  CHECK_FALSE(contexts.connect(cache, 1));
  CHECK(contexts.connect(cache, 1));
  // An index past the endpoints is not tagged: a full handshake, nothing saved.
  CHECK_FALSE(contexts.connect(cache, 7));
  CHECK_FALSE(cache.holds(7));
}

TEST_CASE("TlsSessionCache: a server that issues no new ticket on resumption (as node's) keeps resuming with the old one") {
  Contexts contexts;
  TlsSessionCache cache(1);
  CHECK_FALSE(contexts.connect(cache, 0));
  SSL_CTX_set_num_tickets(contexts.server.get(), 0);
  // Each connection is freed without a shutdown, as a dropped pooled one is: the saved session
  // must not become the one OpenSSL then marks not resumable.
  for (int i = 0; i < 3; ++i) CHECK(contexts.connect(cache, 0));
}

TEST_CASE("TlsSessionCache: another cache (a reloaded config) does not offer the old one's sessions") {
  Contexts contexts;
  TlsSessionCache before(1), after(1);
  CHECK_FALSE(contexts.connect(before, 0));
  CHECK(contexts.connect(before, 0));
  CHECK_FALSE(contexts.connect(after, 0));
  CHECK(contexts.connect(after, 0));
}

TEST_CASE("TlsSessionCache: TLS 1.2 sessions resume too") {
  Contexts contexts(TLS1_2_VERSION);
  TlsSessionCache cache(1);
  CHECK_FALSE(contexts.connect(cache, 0));
  CHECK(cache.holds(0));
  CHECK(contexts.connect(cache, 0));
}
