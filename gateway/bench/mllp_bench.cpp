// mllp_bench: HL7 v2 messages durably acknowledged over MLLP (8 loopback connections, real listener,
// real SQLite store with WAL + synchronous=FULL + group commit), beside two baselines in the same run
// on the same disk: plain SQLite inserts from one thread with one commit (fsync) per insert, and the
// store's group commit without the network.
//
// Bounded: --messages (default 20000) or --seconds (default 30), whichever comes first.
//   mllp_bench [--messages N] [--seconds S] [--connections C] [--window W] [--dir FOLDER]
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../tests/mllp/mllp_test_support.h"
#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp/mllp_server.h"

using namespace medicus::gateway;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Options {
  int messages = 20'000;
  double seconds = 30;
  int connections = 8;
  int window = 64;  // messages a connection sends before it waits for their ACKs (1: strict lock-step)
  fs::path dir;
};

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string message(int connection, int i) {
  return mllp::testing::adtMessage("B" + std::to_string(connection) + "-" + std::to_string(i),
                                   "P" + std::to_string(connection * 1000 + i % 100));
}

// Baseline 1: what a naive receiver does: one INSERT + COMMIT (= one fsync) per message, one thread.
void plainSqliteBaseline(const Options& o, const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
  sqlite3_exec(db,
               "CREATE TABLE messages (id INTEGER PRIMARY KEY, sender TEXT, control_id TEXT, body TEXT, "
               "UNIQUE (sender, control_id))",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO messages (sender, control_id, body) VALUES ('KIS|KLINIKUM', ?, ?)", -1, &stmt,
                     nullptr);
  int limit = std::min(o.messages, 5'000);
  auto start = Clock::now();
  int done = 0;
  for (; done < limit && secondsSince(start) < o.seconds / 3; ++done) {
    std::string id = "X" + std::to_string(done);
    std::string body = message(0, done);
    sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, body.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    if (sqlite3_step(stmt) != SQLITE_DONE) std::fprintf(stderr, "insert failed: %s\n", sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  double s = secondsSince(start);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  std::printf("baseline  sqlite, 1 thread, 1 commit+fsync per insert : %7d msgs in %6.2f s = %9.0f msgs/s\n", done, s,
              done / s);
}

// Baseline 2: the store's group commit with `connections` threads each waiting for its commit.
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
        if (i >= o.messages || secondsSince(start) > o.seconds / 3) return;
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
  std::printf("baseline  store group commit, %d threads, no network     : %7d msgs in %6.2f s = %9.0f msgs/s (%llu commits)\n",
              o.connections, ok.load(), secs, ok / secs, static_cast<unsigned long long>(s.commitCount()));
}

int mllpRoundTrips(const Options& o, const fs::path& file, int window, double max_seconds) {
  auto opened = store::SqliteMessageStore::open({.file = file});
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
  uint16_t port = server.port("bench");
  std::atomic<int> next{0}, acked{0}, wrong{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      mllp::testing::MllpTestClient client(port);
      int in_flight = 0;
      bool sending = true;
      while (sending || in_flight > 0) {
        while (sending && in_flight < window) {
          int i = next.fetch_add(1);
          if (i >= o.messages || secondsSince(start) > max_seconds) {
            sending = false;
            break;
          }
          client.sendMessage(message(c, i));
          ++in_flight;
        }
        if (in_flight == 0) break;
        auto ack = client.receiveFrame();
        --in_flight;
        if (ack && mllp::testing::msaCode(*ack) == "AA") ++acked;
        else ++wrong;
        if (!ack) return;
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = secondsSince(start);
  server.stop();
  auto stats = s.stats();
  std::printf("mllp      %d connections, window %2d, durable AA each     : %7d msgs in %6.2f s = %9.0f msgs/s (%llu commits)\n",
              o.connections, window, acked.load(), secs, acked / secs, static_cast<unsigned long long>(s.commitCount()));
  // Check before trusting the figure: every AA is a stored message, nothing else was answered.
  if (wrong != 0 || !stats || stats->messages != static_cast<uint64_t>(acked.load())) {
    std::fprintf(stderr, "CHECK FAILED: %d non-AA answers, %llu stored vs %d acknowledged\n", wrong.load(),
                 static_cast<unsigned long long>(stats ? stats->messages : 0), acked.load());
    return 1;
  }
  std::printf("check     every AA is a stored message (%llu stored)\n", static_cast<unsigned long long>(stats->messages));
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
    else {
      std::fprintf(stderr, "usage: mllp_bench [--messages N] [--seconds S] [--connections C] [--window W] [--dir FOLDER]\n");
      return 2;
    }
  }
  bool own_dir = o.dir.empty();
  if (own_dir) o.dir = fs::temp_directory_path() / ("medicus-mllp-bench-" + std::to_string(::getpid()));
  fs::create_directories(o.dir);
  std::printf("mllp_bench: %d messages max, %.0f s max, %d connections, files in %s (WAL, synchronous=FULL)\n",
              o.messages, o.seconds, o.connections, o.dir.c_str());
  plainSqliteBaseline(o, o.dir / "baseline.db");
  groupCommitBaseline(o, o.dir / "group.db");
  // Lock-step senders (one message, wait for its ACK) are bounded by 8 / fsync latency; senders that
  // keep a window of messages in flight (each still acknowledged only after its commit) are not.
  int rc = mllpRoundTrips(o, o.dir / "mllp-lockstep.db", 1, o.seconds / 3);
  rc |= mllpRoundTrips(o, o.dir / "mllp-window.db", o.window, o.seconds);
  if (own_dir) fs::remove_all(o.dir);
  return rc;
}
