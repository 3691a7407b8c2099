// MllpServer over real TCP on 127.0.0.1 (port 0) with a real SQLite store in a temp folder.
#include "mllp/mllp_server.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp_test_support.h"

using namespace medicus::gateway;
using namespace medicus::gateway::mllp;
using namespace medicus::gateway::mllp::testing;
using namespace std::chrono_literals;

namespace {

// A real store whose insert completions are held until the test releases them: shows that no ACK
// leaves before the store's completion (= the commit).
class GatedStore final : public store::MessageStore {
 public:
  explicit GatedStore(store::MessageStore& inner) : inner_(inner) {}
  void insert(store::InboundMessage message, InsertCompletion done) override {
    inner_.insert(std::move(message), [this, done = std::move(done)](auto result) {
      std::unique_lock lock(mutex_);
      ++arrived_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return open_; });
      lock.unlock();
      done(std::move(result));
    });
  }
  void waitForCommit() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return arrived_ > 0; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  tl::expected<std::vector<store::DeliveryTask>, store::StoreError> claimDue(store::UnixMillis n, size_t m,
                                                                             std::string_view r) override {
    return inner_.claimDue(n, m, r);
  }
  tl::expected<void, store::StoreError> markDelivered(int64_t id) override { return inner_.markDelivered(id); }
  tl::expected<void, store::StoreError> markAllDelivered(const std::vector<int64_t>& ids) override {
    return inner_.markAllDelivered(ids);
  }
  tl::expected<store::FailureOutcome, store::StoreError> markFailed(int64_t id, std::string e, store::UnixMillis n,
                                                                    const store::RetryPolicy& p) override {
    return inner_.markFailed(id, std::move(e), n, p);
  }
  tl::expected<uint64_t, store::StoreError> requeueDeadLetters(store::UnixMillis n) override {
    return inner_.requeueDeadLetters(n);
  }
  tl::expected<void, store::StoreError> requeue(int64_t id, store::UnixMillis n) override {
    return inner_.requeue(id, n);
  }
  tl::expected<store::QueueStats, store::StoreError> stats() override { return inner_.stats(); }
  tl::expected<std::optional<store::MessageRecord>, store::StoreError> find(int64_t id) override {
    return inner_.find(id);
  }

 private:
  store::MessageStore& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  bool open_ = false;
};

MllpListenerConfig listenerConfig() {
  MllpListenerConfig c;
  c.policy.listener_name = "mllp-test";
  c.policy.route = "fhir";
  c.max_message_bytes = 64 * 1024;
  c.read_timeout = 300ms;
  c.idle_timeout = 2s;
  c.write_timeout = 2s;
  return c;
}

std::unique_ptr<store::SqliteMessageStore> openStore(const TempDir& dir) {
  auto s = store::SqliteMessageStore::open({.file = dir.path / "messages.db"});
  REQUIRE(s);
  return std::move(*s);
}

// The set-up most cases share: a real SQLite store in a temp folder and a started MllpServer with one
// listener (listenerConfig(), port 0) in front of it.
struct StartedServer {
  explicit StartedServer(unsigned threads = 1) : server({listenerConfig()}, *sqlite, metrics, {}, threads) {
    server.start();
  }
  TempDir dir;
  std::unique_ptr<store::SqliteMessageStore> sqlite = openStore(dir);
  IntakeMetrics metrics;
  MllpServer server;
};

struct StartedServerTwoThreads : StartedServer {
  StartedServerTwoThreads() : StartedServer(2) {}
};

}  // namespace

TEST_CASE("AA only after the store committed the message", "[mllp][server]") {
  TempDir dir;
  auto sqlite = openStore(dir);
  GatedStore gated(*sqlite);
  IntakeMetrics metrics;
  MllpServer server({listenerConfig()}, gated, metrics);
  server.start();
  MllpTestClient client(server.port("mllp-test"), 300ms);
  REQUIRE(client.connected());
  REQUIRE(client.sendMessage(adtMessage("G1")));
  gated.waitForCommit();
  // Committed but the completion is held: no ACK may arrive.
  CHECK_FALSE(client.receiveFrame());
  CHECK_FALSE(client.closed());
  CHECK(sqlite->stats()->messages == 1);
  gated.open();
  client.setTimeout(5s);
  auto ack = client.receiveFrame();
  REQUIRE(ack);
  CHECK(msaCode(*ack) == "AA");
  CHECK(metrics.messageCount("mllp-test", "accepted") == 1);
  // The intake's metrics carry the medicus_hl7v2_ prefix (beside the gateway's medicus_gateway_).
  std::string text = metrics.renderText();
  CHECK(text.find("medicus_hl7v2_messages_total{listener=\"mllp-test\",outcome=\"accepted\"} 1") != std::string::npos);
  CHECK(text.find("medicus_hl7v2_connections_total{listener=\"mllp-test\"} 1") != std::string::npos);
}

TEST_CASE_METHOD(StartedServer, "a repeated message is acknowledged again but stored once", "[mllp][server]") {
  MllpTestClient client(server.port("mllp-test"));
  for (int i = 0; i < 2; ++i) {
    REQUIRE(client.sendMessage(adtMessage("D1")));
    auto ack = client.receiveFrame();
    REQUIRE(ack);
    CHECK(msaCode(*ack) == "AA");
  }
  CHECK(sqlite->stats()->messages == 1);
  CHECK(sqlite->stats()->pending == 1);
  CHECK(metrics.messageCount("mllp-test", "duplicate") == 1);
}

TEST_CASE_METHOD(StartedServer, "AR with 207 when the store is unavailable", "[mllp][server]") {
  sqlite->close();
  MllpTestClient client(server.port("mllp-test"));
  REQUIRE(client.sendMessage(adtMessage("S1")));
  auto ack = client.receiveFrame();
  REQUIRE(ack);
  CHECK(msaCode(*ack) == "AR");
  CHECK(ack->find("207") != std::string::npos);
  CHECK(metrics.messageCount("mllp-test", "store_failed") == 1);
}

TEST_CASE_METHOD(StartedServer,
                 "garbage between frames is skipped and counted; the next frame is answered", "[mllp][server]") {
  MllpTestClient client(server.port("mllp-test"));
  REQUIRE(client.sendRaw("GET / HTTP/1.1\r\n\r\n"));
  REQUIRE(client.sendMessage(adtMessage("B1")));
  auto ack = client.receiveFrame();
  REQUIRE(ack);
  CHECK(msaCode(*ack) == "AA");
  CHECK(metrics.frameErrorCount("mllp-test", "garbage") == 1);
  // A frame that is not HL7 at all: AE, connection stays usable.
  REQUIRE(client.sendMessage("hello"));
  auto ae = client.receiveFrame();
  REQUIRE(ae);
  CHECK(msaCode(*ae) == "AE");
  REQUIRE(client.sendMessage(adtMessage("B2")));
  CHECK(msaCode(client.receiveFrame().value_or("")) == "AA");
}

TEST_CASE_METHOD(StartedServer, "an oversized frame is answered AR and the connection closed", "[mllp][server]") {
  MllpTestClient client(server.port("mllp-test"));
  std::string big = adtMessage("O1") + "NTE|1||" + std::string(100 * 1024, 'x') + "\r";
  client.sendMessage(big);  // the server may close before all is sent
  auto ack = client.receiveFrame();
  REQUIRE(ack);
  CHECK(msaCode(*ack) == "AR");
  CHECK_FALSE(client.receiveFrame());
  CHECK(client.closed());
  CHECK(sqlite->stats()->messages == 0);
  CHECK(metrics.frameErrorCount("mllp-test", "too_large") == 1);
}

TEST_CASE_METHOD(StartedServer,
                 "a slow client with an unfinished frame is disconnected after read_timeout", "[mllp][server]") {
  MllpTestClient client(server.port("mllp-test"), 5s);
  auto started = std::chrono::steady_clock::now();
  std::string frame = medicus::hl7v2::encodeMllpFrame(adtMessage("T1"));
  REQUIRE(client.sendRaw(frame.substr(0, 40)));  // and then nothing
  CHECK_FALSE(client.receiveFrame());
  CHECK(client.closed());
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(waited >= 250ms);
  CHECK(waited < 3s);
  CHECK(sqlite->stats()->messages == 0);
}

TEST_CASE_METHOD(StartedServerTwoThreads,
                 "many concurrent connections all get AA and every message is stored", "[mllp][server]") {
  constexpr int kConnections = 8, kPerConnection = 50;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([&, c] {
      MllpTestClient client(server.port("mllp-test"));
      for (int i = 0; i < kPerConnection; ++i) {
        client.sendMessage(adtMessage("M" + std::to_string(c) + "-" + std::to_string(i), "P" + std::to_string(c)));
        auto ack = client.receiveFrame();
        if (ack && msaCode(*ack) == "AA") ++acked;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(acked == kConnections * kPerConnection);
  CHECK(sqlite->stats()->messages == static_cast<uint64_t>(kConnections * kPerConnection));
  CHECK(sqlite->commitCount() < static_cast<uint64_t>(kConnections * kPerConnection));
}

TEST_CASE_METHOD(StartedServer,
                 "frames sent back to back are stored in one commit and answered in their order", "[mllp][server]") {
  MllpTestClient client(server.port("mllp-test"));
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += medicus::hl7v2::encodeMllpFrame(adtMessage("W" + std::to_string(i)));
  burst += medicus::hl7v2::encodeMllpFrame("not hl7");  // refused in the middle of stored ones
  burst += medicus::hl7v2::encodeMllpFrame(adtMessage("W0"));  // a repeat inside the same burst
  REQUIRE(client.sendRaw(burst));
  for (int i = 0; i < 20; ++i) {
    auto ack = client.receiveFrame();
    REQUIRE(ack);
    CHECK(msaCode(*ack) == "AA");
    CHECK(ack->find("|W" + std::to_string(i) + "\r") != std::string::npos);  // MSA-2 in order
  }
  CHECK(msaCode(client.receiveFrame().value_or("")) == "AE");
  CHECK(msaCode(client.receiveFrame().value_or("")) == "AA");
  CHECK(sqlite->stats()->messages == 20);
  CHECK(metrics.messageCount("mllp-test", "duplicate") == 1);
}

namespace {
// listenerConfig() over TLS, with a self-signed certificate that the listener makes at start in `dir`.
MllpListenerConfig tlsListenerConfig(const TempDir& dir) {
  MllpListenerConfig config = listenerConfig();
  ServerTlsConfig tls;
  tls.certificate_file = (dir.path / "mllp.crt").string();
  tls.private_key_file = (dir.path / "mllp.key").string();
  tls.self_signed_if_missing = true;
  config.tls = tls;
  return config;
}

// A started server with one TLS listener (tlsListenerConfig); `tls` is its certificate and key files.
struct StartedTlsServer {
  StartedTlsServer() : server({config}, *sqlite, metrics) {
    server.start();
    port = server.port("mllp-test");
  }
  TempDir dir;
  std::unique_ptr<store::SqliteMessageStore> sqlite = openStore(dir);
  IntakeMetrics metrics;
  MllpListenerConfig config = tlsListenerConfig(dir);
  const ServerTlsConfig& tls = *config.tls;
  MllpServer server;
  uint16_t port = 0;  // bound at start
};

// An MLLP client over TLS that trusts one certificate (file); the handshake's error, if any, in handshake_error.
struct TlsClient {
  boost::asio::ssl::context context{boost::asio::ssl::context::tls_client};
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> stream;
  boost::system::error_code handshake_error;
  TlsClient(boost::asio::io_context& io, const std::string& trusted, uint16_t port) {
    context.load_verify_file(trusted);
    context.set_verify_mode(boost::asio::ssl::verify_peer);
    stream = std::make_unique<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>>(io, context);
    stream->next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    stream->handshake(boost::asio::ssl::stream_base::client, handshake_error);
  }
  std::string exchange(const std::string& message) {
    std::string frame = medicus::hl7v2::encodeMllpFrame(message);
    boost::system::error_code ec;
    boost::asio::write(*stream, boost::asio::buffer(frame), ec);
    std::string reply;
    boost::asio::read_until(*stream, boost::asio::dynamic_buffer(reply), std::string("\x1c\x0d"), ec);
    return ec ? std::string() : msaCode(reply.substr(1));  // the MSA code of the ACK, empty when none came
  }
};
}  // namespace

TEST_CASE_METHOD(StartedTlsServer, "MLLP over TLS: handshake, AA after the commit; a plain client gets nothing",
                 "[mllp][server][tls]") {
  boost::asio::io_context io;
  TlsClient client(io, tls.certificate_file, port);
  REQUIRE_FALSE(client.handshake_error);
  CHECK(client.exchange(adtMessage("TLS1")) == "AA");
  CHECK(sqlite->stats()->messages == 1);

  // Plain MLLP on the TLS port: the handshake fails, nothing is stored.
  MllpTestClient plain(port, 2s);
  plain.sendMessage(adtMessage("PLAIN1"));
  CHECK_FALSE(plain.receiveFrame());
  CHECK(sqlite->stats()->messages == 1);
}

TEST_CASE_METHOD(StartedTlsServer, "MLLP over TLS: a reload reads the TLS files again for new connections; open ones keep theirs",
                 "[mllp][server][tls]") {
  namespace asio = boost::asio;
  namespace fs = std::filesystem;
  const std::string first_certificate = (dir.path / "first.crt").string();
  fs::copy_file(tls.certificate_file, first_certificate);

  asio::io_context io;
  TlsClient before(io, first_certificate, port);
  REQUIRE_FALSE(before.handshake_error);
  CHECK(before.exchange(adtMessage("RENEW1")) == "AA");

  // A new certificate at the same paths (made by self_signed_if_missing, another key), then the reload.
  fs::remove(tls.certificate_file);
  fs::remove(tls.private_key_file);
  CHECK(server.updatePolicies({config}).empty());
  TlsClient trusts_first(io, first_certificate, port);
  CHECK(trusts_first.handshake_error);
  TlsClient trusts_new(io, tls.certificate_file, port);
  REQUIRE_FALSE(trusts_new.handshake_error);
  CHECK(trusts_new.exchange(adtMessage("RENEW2")) == "AA");
  // The connection from before the reload goes on with its own.
  CHECK(before.exchange(adtMessage("RENEW3")) == "AA");

  // A key that does not load: the reload says so and the running certificate stays.
  std::ofstream(tls.private_key_file) << "not a key\n";
  auto notes = server.updatePolicies({config});
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("mllp listener mllp-test: keeping the running TLS settings") &&
                           Catch::Contains("mllp.key"));
  TlsClient after_failure(io, tls.certificate_file, port);
  REQUIRE_FALSE(after_failure.handshake_error);
  CHECK(after_failure.exchange(adtMessage("RENEW4")) == "AA");
  CHECK(sqlite->stats()->messages == 4);
}
