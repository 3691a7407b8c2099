// DeliveryWorker against a real HTTP server on 127.0.0.1 (port 0) and a real SQLite store. The mapper
// here is a test function (the worker's job is queueing, retries and HTTP, not mapping).
#include "delivery/delivery_worker.h"

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>

#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp_test_support.h"

using namespace medicus::gateway;
using namespace medicus::gateway::mllp::testing;
using namespace std::chrono_literals;

namespace {

// Answers each POST with the next status of `statuses` (the last one repeats) and records the bodies.
class RecordingUpstream {
 public:
  explicit RecordingUpstream(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) return;
        std::lock_guard lock(mutex_);
        connections_.emplace_back([this, fd] { serve(fd); });
      }
    });
  }
  ~RecordingUpstream() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : connections_) t.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }

 private:
  void serve(int fd) {
    {
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
    }
    std::string buffer;
    char chunk[4096];
    for (;;) {
      size_t head_end;
      while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          ::close(fd);
          return;
        }
        buffer.append(chunk, static_cast<size_t>(n));
      }
      std::string head = buffer.substr(0, head_end);
      size_t length = 0;
      if (auto p = head.find("Content-Length: "); p != std::string::npos) length = std::stoul(head.substr(p + 16));
      while (buffer.size() < head_end + 4 + length) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          ::close(fd);
          return;
        }
        buffer.append(chunk, static_cast<size_t>(n));
      }
      int status;
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(buffer.substr(head_end + 4, length));
        status = statuses_[std::min(next_++, statuses_.size() - 1)];
      }
      buffer.erase(0, head_end + 4 + length);
      std::string reply = "HTTP/1.1 " + std::to_string(status) +
                          " X\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{}";
      ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
  }

  std::vector<int> statuses_;
  size_t next_ = 0;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<int> fds_;
  std::vector<std::string> bodies_;
};

UpstreamConfig upstreamAt(uint16_t port) {
  UpstreamConfig u;
  u.name = "fhir";
  u.endpoints.push_back({false, "127.0.0.1", port, "/fhir"});
  u.connect_timeout = 1s;
  u.response_timeout = 2s;
  return u;
}

delivery::DeliveryRoute route(const UpstreamConfig* upstream, bool with_mapper = true) {
  delivery::DeliveryRoute r;
  r.config.name = "to-fhir";
  r.config.upstream = "fhir";
  r.config.retry = {.max_attempts = 3, .initial_backoff = 20ms, .max_backoff = 50ms};
  r.config.poll_interval = 10ms;
  r.upstream = upstream;
  if (with_mapper) {
    r.mapper = [](const store::DeliveryTask& t) -> tl::expected<std::string, delivery::MappingFailure> {
      if (t.message_type == "ZZZ^Z99") return tl::unexpected(delivery::MappingFailure{"no map for ZZZ^Z99"});
      return R"({"resourceType":"Bundle","type":"transaction","id":")" + t.control_id + R"("})";
    };
  }
  return r;
}

store::InboundMessage stored(const std::string& id, const std::string& type = "ADT^A01") {
  store::InboundMessage m;
  m.sender = "KIS|KLINIKUM";
  m.control_id = id;
  m.message_type = type;
  m.patient_key = "P1";
  m.route = "to-fhir";
  m.text = adtMessage(id);
  m.received_at = 1;
  return m;
}

template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

TEST_CASE("delivery: 2xx marks delivered, in order of the patient's messages", "[delivery]") {
  TempDir dir;
  auto s = std::move(*store::SqliteMessageStore::open({.file = dir.path / "m.db"}));
  RecordingUpstream upstream({200});
  auto config = upstreamAt(upstream.port());
  REQUIRE(s->insertAndWait(stored("D1")));
  REQUIRE(s->insertAndWait(stored("D2")));
  mllp::IntakeMetrics metrics;
  delivery::DeliveryWorker worker(*s, {route(&config)}, metrics);
  worker.start();
  REQUIRE(eventually([&] { return s->stats()->delivered == 2; }));
  auto bodies = upstream.bodies();
  REQUIRE(bodies.size() == 2);
  CHECK(bodies[0].find("\"D1\"") != std::string::npos);
  CHECK(bodies[1].find("\"D2\"") != std::string::npos);
}

TEST_CASE("delivery: 503 is retried with backoff, 400 and mapping failures dead-letter", "[delivery]") {
  TempDir dir;
  auto s = std::move(*store::SqliteMessageStore::open({.file = dir.path / "m.db"}));
  RecordingUpstream upstream({503, 200, 400});
  auto config = upstreamAt(upstream.port());
  auto first = *s->insertAndWait(stored("R1"));
  mllp::IntakeMetrics metrics;
  delivery::DeliveryWorker worker(*s, {route(&config)}, metrics);
  worker.start();
  REQUIRE(eventually([&] { return s->stats()->delivered == 1; }));
  CHECK((*s->find(first.id))->attempts == 1);  // one failure before it went through
  auto refused = *s->insertAndWait(stored("R2"));
  auto unmappable = *s->insertAndWait(stored("R3", "ZZZ^Z99"));
  REQUIRE(eventually([&] { return s->stats()->dead == 2; }));
  CHECK((*s->find(refused.id))->last_error.find("HTTP 400") != std::string::npos);
  CHECK((*s->find(unmappable.id))->last_error.find("no map") != std::string::npos);
  CHECK(upstream.bodies().size() == 3);  // the unmappable one was never sent
  CHECK(metrics.renderText().find("medicus_hl7v2_delivery_dead_letters_total") != std::string::npos);
}

TEST_CASE("delivery: an unreachable upstream leads to the dead letter after max_attempts", "[delivery]") {
  TempDir dir;
  auto s = std::move(*store::SqliteMessageStore::open({.file = dir.path / "m.db"}));
  uint16_t closed_port;
  { RecordingUpstream gone({200}); closed_port = gone.port(); }
  auto config = upstreamAt(closed_port);
  auto id = s->insertAndWait(stored("U1"))->id;
  mllp::IntakeMetrics metrics;
  delivery::DeliveryWorker worker(*s, {route(&config)}, metrics);
  worker.start();
  REQUIRE(eventually([&] { return s->stats()->dead == 1; }));
  CHECK((*s->find(id))->attempts == 3);
}

TEST_CASE("delivery: a route without a mapper sends nothing and leaves messages pending", "[delivery]") {
  TempDir dir;
  auto s = std::move(*store::SqliteMessageStore::open({.file = dir.path / "m.db"}));
  RecordingUpstream upstream({200});
  auto config = upstreamAt(upstream.port());
  REQUIRE(s->insertAndWait(stored("N1")));
  mllp::IntakeMetrics metrics;
  delivery::DeliveryWorker worker(*s, {route(&config, /*with_mapper=*/false)}, metrics);
  worker.start();
  std::this_thread::sleep_for(200ms);
  CHECK(s->stats()->pending == 1);
  CHECK(upstream.bodies().empty());
}
