// mllp_bench: HL7 v2 messages durably acknowledged over MLLP (loopback connections, the real listener,
// the real SQLite store with WAL + synchronous=FULL + group commit), beside baselines measured in the
// same run on the same disk:
//   - the disk itself: fdatasync latency of a 4 KiB overwrite (what one commit costs at least),
//   - plain SQLite inserts from one thread, one commit (= one fsync) per insert,
//   - plain SQLite inserts from `connections` threads, each committing its own insert (SQLite's locking,
//     no group commit),
//   - the store's group commit with `connections` threads, no network.
// Then the MLLP figures:
//   - stop-and-wait: every connection sends one message and waits for its ACK before the next (the way
//     almost every KIS sends); at most `connections` messages can share a commit;
//   - the same with one connection (the latency of a lone sender, which a commit delay would hurt);
//   - pipelined: every connection keeps `window` messages in flight.
// Every figure reports p50/p99 ACK latency (send of the frame to the ACK's arrival) and messages per
// commit, and is checked: every AA is a stored message, nothing else was answered.
//
// The client is one thread driving every connection with epoll and prebuilt frames, so the benchmark's
// own CPU use stays small next to the gateway's (the machine has 2 cores).
//
// Bounded: --messages (default 20000 per figure) or --seconds (default 10 per figure), whichever first.
//   mllp_bench [--messages N] [--seconds S] [--connections C] [--window W] [--dir FOLDER]
//              [--only lockstep|pipelined|baselines] [--compare 1]
// --compare 1 adds the 8-connection figures with the store untuned (no commit delay, SQLite's inline
// autocheckpoint), right after the tuned ones, for an A/B on the same disk at the same time.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../tests/mllp/mllp_test_support.h"
#include "medicus/gateway/store/sqlite_message_store.h"
#include "medicus/hl7v2/mllp_framer.h"
#include "mllp/mllp_server.h"

using namespace medicus::gateway;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Options {
  int messages = 20'000;
  double seconds = 10;
  int connections = 8;
  int window = 64;  // pipelined figure: messages a connection keeps in flight
  fs::path dir;
  std::string only;
  bool compare = false;  // also stop-and-wait with the store untuned (no commit delay, inline checkpoints)
};

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string message(int connection, int i) {
  return mllp::testing::adtMessage("B" + std::to_string(connection) + "-" + std::to_string(i),
                                   "P" + std::to_string(connection * 1000 + i % 100));
}

// Latencies in microseconds -> "p50 … p99 …".
struct Latencies {
  std::vector<double> us;
  std::string summary() {
    if (us.empty()) return "no samples";
    std::sort(us.begin(), us.end());
    auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
    char line[160];
    std::snprintf(line, sizeof line, "ACK latency p50 %6.0f us, p99 %6.0f us, max %6.0f us", at(0.5), at(0.99),
                  us.back());
    return line;
  }
};

// The floor under every durable commit: how long the disk takes to make one written page durable.
void diskBaseline(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "cannot create %s: %s\n", file.c_str(), std::strerror(errno));
    return;
  }
  std::vector<char> page(4096, 'x');
  Latencies l;
  for (int i = 0; i < 1000; ++i) {
    if (::pwrite(fd, page.data(), page.size(), 4096 * (i % 8)) != 4096) break;
    auto t = Clock::now();
    if (::fdatasync(fd) != 0) break;
    l.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  ::close(fd);
  fs::remove(file);
  std::string s = l.summary();
  s.replace(0, std::strlen("ACK latency"), "fdatasync  ");
  std::printf("disk      4 KiB overwrite + fdatasync, 1000 times         : %s\n", s.c_str());
}

// Baseline: what a naive receiver does: one INSERT + COMMIT (= one fsync) per message, from
// `threads` threads on their own connections (SQLite's own locking between them, no group commit).
void plainSqliteBaseline(const Options& o, const fs::path& file, int threads) {
  auto open = [&] {
    sqlite3* db = nullptr;
    sqlite3_open(file.c_str(), &db);
    sqlite3_busy_timeout(db, 10'000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
    return db;
  };
  sqlite3* setup = open();
  sqlite3_exec(setup,
               "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, sender TEXT, control_id TEXT, body TEXT, "
               "UNIQUE (sender, control_id))",
               nullptr, nullptr, nullptr);
  sqlite3_close(setup);
  std::atomic<int> next{0}, done{0}, failed{0};
  int limit = std::min(o.messages, 10'000);
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      sqlite3* db = open();
      sqlite3_stmt* stmt = nullptr;
      sqlite3_prepare_v2(db, "INSERT INTO messages (sender, control_id, body) VALUES ('KIS|KLINIKUM', ?, ?)", -1,
                         &stmt, nullptr);
      for (;;) {
        int i = next.fetch_add(1);
        if (i >= limit || secondsSince(start) > o.seconds) break;
        std::string id = "X" + std::to_string(i);
        std::string body = message(t, i);
        sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, body.c_str(), -1, SQLITE_TRANSIENT);
        bool ok = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
        ok = ok && sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_reset(stmt);
        ok = ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
        if (ok) {
          ++done;
        } else {
          sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
          ++failed;
        }
      }
      sqlite3_finalize(stmt);
      sqlite3_close(db);
    });
  }
  for (auto& w : workers) w.join();
  double s = secondsSince(start);
  std::printf("baseline  sqlite, %d thread%s, 1 commit+fsync per insert  : %7d msgs in %6.2f s = %9.0f msgs/s%s\n",
              threads, threads == 1 ? " " : "s", done.load(), s, done / s, failed ? " (some inserts FAILED)" : "");
}

// Baseline: the store's group commit with `connections` threads each waiting for its commit.
void groupCommitBaseline(const Options& o, const fs::path& file) {
  auto opened = store::SqliteMessageStore::open({.file = file});
  if (!opened) {
    std::fprintf(stderr, "cannot open store: %s\n", opened.error().message.c_str());
    return;
  }
  auto& s = **opened;
  std::atomic<int> next{0}, ok{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      for (;;) {
        int i = next.fetch_add(1);
        if (i >= o.messages || secondsSince(start) > o.seconds) return;
        store::InboundMessage m;
        m.sender = "KIS|KLINIKUM";
        m.control_id = "G" + std::to_string(i);
        m.message_type = "ADT^A01";
        m.patient_key = "P" + std::to_string(i % 100);
        m.route = "fhir";
        m.text = message(c, i);
        if (s.insertAndWait(std::move(m))) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = secondsSince(start);
  std::printf("baseline  store group commit, %d threads, no network     : %7d msgs in %6.2f s = %9.0f msgs/s (%.1f per commit)\n",
              o.connections, ok.load(), secs, ok / secs, ok / std::max(1.0, static_cast<double>(s.commitCount())));
}

// One thread, `connections` non-blocking sockets, each keeping `window` frames in flight.
struct LoadResult {
  int acked = 0;
  int wrong = 0;
  double seconds = 0;
  Latencies latency;
  bool broken = false;  // a connection failed or timed out
};

LoadResult runClients(uint16_t port, int connections, int window, int messages, double max_seconds) {
  struct Connection {
    int fd = -1;
    std::deque<Clock::time_point> sent;  // send times of the frames waiting for their ACK
    std::string out;                     // bytes not yet written
    medicus::hl7v2::MllpDecoder decoder;
  };
  LoadResult r;
  // Prebuilt frames: the client should spend its time on the sockets, not on building messages.
  std::vector<std::string> frames;
  frames.reserve(static_cast<size_t>(messages));
  for (int i = 0; i < messages; ++i) frames.push_back(medicus::hl7v2::encodeMllpFrame(message(i % connections, i)));
  r.latency.us.reserve(frames.size());

  int ep = ::epoll_create1(0);
  std::vector<Connection> conns(static_cast<size_t>(connections));
  for (int c = 0; c < connections; ++c) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "connect: %s\n", std::strerror(errno));
      r.broken = true;
      return r;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(c);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    conns[static_cast<size_t>(c)].fd = fd;
  }
  int next = 0;
  bool sending = true;
  auto start = Clock::now();
  auto flush = [&](Connection& c) {
    while (!c.out.empty()) {
      ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // rare: the ACKs drain it
      if (n <= 0) {
        r.broken = true;
        return;
      }
      c.out.erase(0, static_cast<size_t>(n));
    }
  };
  auto refill = [&](Connection& c) {
    while (sending && static_cast<int>(c.sent.size()) < window) {
      if (next >= messages || secondsSince(start) > max_seconds) {
        sending = false;
        break;
      }
      c.out += frames[static_cast<size_t>(next++)];
      c.sent.push_back(Clock::now());
    }
    flush(c);
  };
  for (auto& c : conns) refill(c);
  int outstanding = 0;
  for (auto& c : conns) outstanding += static_cast<int>(c.sent.size());
  std::vector<epoll_event> events(static_cast<size_t>(connections));
  char buffer[16 * 1024];
  while (outstanding > 0 && !r.broken) {
    int n = ::epoll_wait(ep, events.data(), connections, 10'000);
    if (n <= 0) {
      std::fprintf(stderr, "no ACK for 10 s\n");
      r.broken = true;
      break;
    }
    for (int e = 0; e < n; ++e) {
      Connection& c = conns[events[static_cast<size_t>(e)].data.u32];
      ssize_t got = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (got <= 0) {
        r.broken = true;
        break;
      }
      c.decoder.feed(std::string_view(buffer, static_cast<size_t>(got)));
      auto now = Clock::now();
      while (auto item = c.decoder.next()) {
        if (!*item || c.sent.empty()) {
          ++r.wrong;
          continue;
        }
        r.latency.us.push_back(std::chrono::duration<double, std::micro>(now - c.sent.front()).count());
        c.sent.pop_front();
        --outstanding;
        if (mllp::testing::msaCode(**item) == "AA") ++r.acked;
        else ++r.wrong;
      }
      size_t before = c.sent.size();
      refill(c);
      outstanding += static_cast<int>(c.sent.size() - before);
    }
  }
  r.seconds = secondsSince(start);
  for (auto& c : conns) ::close(c.fd);
  ::close(ep);
  return r;
}

int mllpRoundTrips(const Options& o, const fs::path& file, int connections, int window, const char* label,
                   bool tuned = true, double* rate = nullptr) {
  store::SqliteStoreOptions store_options{.file = file};
  if (!tuned) {
    // The store as it was before the commit delay and the checkpoint thread.
    store_options.max_commit_delay = std::chrono::microseconds(0);
    store_options.background_checkpoints = false;
  }
  auto opened = store::SqliteMessageStore::open(store_options);
  if (!opened) {
    std::fprintf(stderr, "cannot open store: %s\n", opened.error().message.c_str());
    return 1;
  }
  auto& s = **opened;
  mllp::IntakeMetrics metrics;
  mllp::MllpListenerConfig config;
  config.policy.listener_name = "bench";
  config.policy.route = "fhir";
  mllp::MllpServer server({config}, s, metrics, {}, 2);
  server.start();
  LoadResult r = runClients(server.port("bench"), connections, window, o.messages, o.seconds);
  server.stop();
  auto stats = s.stats();
  std::printf("mllp      %-14s %d conn%s, window %2d, durable AA: %7d msgs in %6.2f s = %9.0f msgs/s, %5.1f per commit, %s\n",
              label, connections, connections == 1 ? " " : "s", window, r.acked, r.seconds, r.acked / r.seconds,
              r.acked / std::max(1.0, static_cast<double>(s.commitCount())), r.latency.summary().c_str());
  auto w = s.writerStats();
  double commits = std::max<double>(1, static_cast<double>(w.commits));
  std::printf("          store: per commit %5.0f us statements + %5.0f us COMMIT (fsync); %llu of %llu commits waited "
              "%4.0f us on average for senders; %llu checkpoints beside, %llu by the writer (%.0f us each)\n",
              static_cast<double>(w.statements.count()) / commits, static_cast<double>(w.commit.count()) / commits,
              static_cast<unsigned long long>(w.delays), static_cast<unsigned long long>(w.commits),
              w.delays ? static_cast<double>(w.delay.count()) / static_cast<double>(w.delays) : 0.0,
              static_cast<unsigned long long>(w.checkpoints), static_cast<unsigned long long>(w.inline_checkpoints),
              w.inline_checkpoints ? static_cast<double>(w.inline_checkpoint.count()) / static_cast<double>(w.inline_checkpoints) : 0.0);
  // Check before trusting the figure: every AA is a stored message, nothing else was answered.
  if (r.broken || r.wrong != 0 || !stats || stats->messages != static_cast<uint64_t>(r.acked)) {
    std::fprintf(stderr, "CHECK FAILED: %s%d non-AA answers, %llu stored vs %d acknowledged\n",
                 r.broken ? "a connection broke, " : "", r.wrong,
                 static_cast<unsigned long long>(stats ? stats->messages : 0), r.acked);
    return 1;
  }
  if (rate) *rate = r.acked / r.seconds;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view key = argv[i];
    if (key == "--messages") o.messages = std::atoi(argv[i + 1]);
    else if (key == "--seconds") o.seconds = std::atof(argv[i + 1]);
    else if (key == "--connections") o.connections = std::atoi(argv[i + 1]);
    else if (key == "--window") o.window = std::atoi(argv[i + 1]);
    else if (key == "--dir") o.dir = argv[i + 1];
    else if (key == "--only") o.only = argv[i + 1];
    else if (key == "--compare") o.compare = std::string_view(argv[i + 1]) == "1";
    else {
      std::fprintf(stderr,
                   "usage: mllp_bench [--messages N] [--seconds S] [--connections C] [--window W] [--dir FOLDER]\n"
                   "                  [--only lockstep|pipelined|baselines] [--compare 1]\n");
      return 2;
    }
  }
  if (argc % 2 == 0 || o.messages <= 0 || o.connections <= 0 || o.window <= 0 || o.seconds <= 0) {
    std::fprintf(stderr, "mllp_bench: every option takes a positive value (see the usage in the source)\n");
    return 2;
  }
  bool own_dir = o.dir.empty();
  if (own_dir) o.dir = fs::temp_directory_path() / ("medicus-mllp-bench-" + std::to_string(::getpid()));
  fs::create_directories(o.dir);
  std::printf("mllp_bench: up to %d messages or %.0f s per figure, %d connections, files in %s (WAL, synchronous=FULL)\n",
              o.messages, o.seconds, o.connections, o.dir.c_str());
  bool all = o.only.empty();
  int rc = 0;
  if (all || o.only == "baselines") {
    diskBaseline(o.dir / "disk.probe");
    plainSqliteBaseline(o, o.dir / "baseline-1.db", 1);
    plainSqliteBaseline(o, o.dir / "baseline-n.db", o.connections);
    groupCommitBaseline(o, o.dir / "group.db");
  }
  // Stop-and-wait senders are bounded by `connections` messages per commit; pipelining senders are not
  // (each message is still acknowledged only after its commit).
  if (all || o.only == "lockstep") {
    double rate = 0;
    rc |= mllpRoundTrips(o, o.dir / "mllp-lockstep.db", o.connections, 1, "stop-and-wait", true, &rate);
    std::printf("target    10000 durable ACKs/s from %d stop-and-wait connections: %s (%.0f msgs/s in this run)\n",
                o.connections, rate >= 10'000 ? "met" : "NOT met", rate);
    if (o.compare) rc |= mllpRoundTrips(o, o.dir / "mllp-untuned.db", o.connections, 1, "s&w untuned", false);
    rc |= mllpRoundTrips(o, o.dir / "mllp-single.db", 1, 1, "stop-and-wait");
  }
  if (all || o.only == "pipelined") {
    rc |= mllpRoundTrips(o, o.dir / "mllp-window.db", o.connections, o.window, "pipelined");
    if (o.compare) {
      rc |= mllpRoundTrips(o, o.dir / "mllp-window-untuned.db", o.connections, o.window, "pipel. untuned", false);
    }
  }
  if (rc == 0) std::printf("check     every AA is a stored message, no other answer\n");
  if (own_dir) fs::remove_all(o.dir);
  return rc;
}
