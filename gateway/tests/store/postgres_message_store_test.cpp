// PostgresMessageStore against a real PostgreSQL server (started by ctest's postgres fixture; the
// connection string is in the file named by MEDICUS_PG_DSN_FILE). Each case works in its own table.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <unistd.h>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "medicus/gateway/store/postgres_message_store.h"

using namespace medicus::gateway::store;

namespace {

std::string dsn() {
  const char* file = std::getenv("MEDICUS_PG_DSN_FILE");
  if (file == nullptr) return {};
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

int table_counter = 0;

std::unique_ptr<PostgresMessageStore> openStore(const std::string& table) {
  PostgresStoreOptions options;
  options.dsn = dsn();
  options.table = table;
  options.lease = std::chrono::milliseconds(1000);
  auto store = PostgresMessageStore::open(options);
  INFO((store ? std::string() : store.error().message));
  REQUIRE(store);
  return std::move(*store);
}

std::string freshTable() {
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(++table_counter);
}

InboundMessage message(std::string control_id, std::string patient = "P1", std::string route = "fhir") {
  InboundMessage m;
  m.sender = "KIS|HOSP";
  m.control_id = std::move(control_id);
  m.message_type = "ADT^A01";
  m.patient_key = std::move(patient);
  m.listener = "mllp-main";
  m.route = std::move(route);
  m.charset = "8859/1";
  m.text = "MSH|^~\\&|KIS|HOSP|||20240101||ADT^A01|" + m.control_id + "|P|2.5\rPID|||4711||Müller^Jörg";
  m.received_at = 1000;
  return m;
}

#define REQUIRE_SERVER()                                                                   \
  if (dsn().empty()) {                                                                     \
    WARN("skipped: no PostgreSQL test server (run through ctest, which starts one)");     \
    return;                                                                                \
  }

}  // namespace

TEST_CASE("inserts are durable and readable, text kept exactly", "[postgres]") {
  REQUIRE_SERVER();
  std::string table = freshTable();
  int64_t id = 0;
  {
    auto store = openStore(table);
    auto r = store->insertAndWait(message("1"));
    REQUIRE(r);
    CHECK_FALSE(r->duplicate);
    id = r->id;
  }
  auto reopened = openStore(table);  // a new connection sees the committed row
  auto found = reopened->find(id);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->message.text == message("1").text);
  CHECK((*found)->state == DeliveryState::kPending);
}

TEST_CASE("a repeated message (same sender and MSH-10) is recognised, not stored twice", "[postgres]") {
  REQUIRE_SERVER();
  auto store = openStore(freshTable());
  auto first = store->insertAndWait(message("42"));
  auto again = store->insertAndWait(message("42"));
  REQUIRE(first);
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(again->id == first->id);
  auto other_sender = message("42");
  other_sender.sender = "LAB|HOSP";
  auto third = store->insertAndWait(other_sender);
  REQUIRE(third);
  CHECK_FALSE(third->duplicate);
  CHECK(store->stats()->messages == 2);
}

TEST_CASE("concurrent inserts share group commits", "[postgres]") {
  REQUIRE_SERVER();
  auto store = openStore(freshTable());
  constexpr int kMessages = 400;
  std::vector<std::promise<bool>> done(kMessages);
  for (int i = 0; i < kMessages; ++i) {
    store->insert(message(std::to_string(i), "P" + std::to_string(i)),
                  [&done, i](tl::expected<InsertResult, StoreError> r) { done[i].set_value(r.has_value()); });
  }
  int ok = 0;
  for (auto& d : done) ok += d.get_future().get() ? 1 : 0;
  CHECK(ok == kMessages);
  CHECK(store->commitCount() < static_cast<uint64_t>(kMessages));
  CHECK(store->stats()->pending == kMessages);
}

TEST_CASE("delivery: one message per patient at a time, oldest first", "[postgres]") {
  REQUIRE_SERVER();
  auto store = openStore(freshTable());
  auto a1 = store->insertAndWait(message("1", "A"));
  auto b1 = store->insertAndWait(message("2", "B"));
  auto a2 = store->insertAndWait(message("3", "A"));
  auto tasks = store->claimDue(2000, 10);
  REQUIRE(tasks);
  REQUIRE(tasks->size() == 2);
  CHECK((*tasks)[0].message_id == a1->id);
  CHECK((*tasks)[1].message_id == b1->id);
  // A's second message waits while the first is in flight.
  CHECK(store->claimDue(2000, 10)->empty());
  REQUIRE(store->markDelivered(a1->id));
  auto next = store->claimDue(2000, 10);
  REQUIRE(next->size() == 1);
  CHECK((*next)[0].message_id == a2->id);
  REQUIRE(store->markAllDelivered({a2->id, b1->id}));
  CHECK(store->stats()->delivered == 3);
  CHECK(store->claimDue(2000, 10)->empty());
}

TEST_CASE("failures back off, then dead-letter; replay re-queues", "[postgres]") {
  REQUIRE_SERVER();
  auto store = openStore(freshTable());
  RetryPolicy policy;
  policy.max_attempts = 2;
  policy.initial_backoff = std::chrono::milliseconds(500);
  auto id = store->insertAndWait(message("1"))->id;
  REQUIRE(store->claimDue(2000, 1)->size() == 1);
  CHECK(*store->markFailed(id, "upstream 503", 2000, policy) == FailureOutcome::kRetryScheduled);
  CHECK(store->claimDue(2400, 1)->empty());       // still backing off
  REQUIRE(store->claimDue(2500, 1)->size() == 1);  // due again
  CHECK(*store->markFailed(id, "upstream 503", 2600, policy) == FailureOutcome::kDeadLettered);
  auto record = store->find(id);
  CHECK((*record)->state == DeliveryState::kDead);
  CHECK((*record)->last_error == "upstream 503");
  CHECK(store->stats()->dead == 1);
  CHECK(*store->requeueDeadLetters(3000) == 1);
  CHECK(store->claimDue(3000, 1)->size() == 1);
  CHECK(store->requeue(id, 3000).error().kind == StoreError::Kind::kInvalidState);  // in flight
  CHECK(store->requeue(999999, 3000).error().kind == StoreError::Kind::kNotFound);
}

TEST_CASE("two instances share the queue without handing out a message twice", "[postgres]") {
  REQUIRE_SERVER();
  std::string table = freshTable();
  auto first = openStore(table);
  auto second = openStore(table);
  constexpr int kMessages = 200;
  for (int i = 0; i < kMessages; ++i) REQUIRE(first->insertAndWait(message(std::to_string(i), "P" + std::to_string(i))));
  std::atomic<int> claimed{0};
  std::vector<int> seen(kMessages + 1000, 0);
  std::mutex seen_mutex;
  auto worker = [&](PostgresMessageStore& store) {
    while (true) {
      auto tasks = store.claimDue(5000, 7);
      REQUIRE(tasks);
      if (tasks->empty()) return;
      for (auto& t : *tasks) {
        {
          std::lock_guard lock(seen_mutex);
          ++seen[static_cast<size_t>(t.message_id) % seen.size()];
        }
        REQUIRE(store.markDelivered(t.message_id));
        ++claimed;
      }
    }
  };
  std::thread a(worker, std::ref(*first)), b(worker, std::ref(*second));
  a.join();
  b.join();
  CHECK(claimed == kMessages);
  for (int count : seen) CHECK(count <= 1);
  CHECK(first->stats()->delivered == kMessages);
}

TEST_CASE("an expired lease (instance died mid-delivery) makes the message claimable again", "[postgres]") {
  REQUIRE_SERVER();
  std::string table = freshTable();
  auto crashed = openStore(table);  // lease 1 s
  auto id = crashed->insertAndWait(message("1"))->id;
  REQUIRE(crashed->claimDue(2000, 1)->size() == 1);
  auto survivor = openStore(table);
  CHECK(survivor->claimDue(2500, 1)->empty());  // lease still held
  auto again = survivor->claimDue(3500, 1);      // lease (until 3000) ran out
  REQUIRE(again->size() == 1);
  CHECK((*again)[0].message_id == id);
}

TEST_CASE("an unreachable server is a store error, not a crash", "[postgres]") {
  PostgresStoreOptions options;
  options.dsn = "host=127.0.0.1 port=1 connect_timeout=2 user=nobody dbname=none";
  auto store = PostgresMessageStore::open(options);
  REQUIRE_FALSE(store);
  CHECK(store.error().kind == StoreError::Kind::kUnavailable);
  CHECK(store.error().message.find("postgres") != std::string::npos);
  options.table = "bad name; drop table x";
  CHECK_FALSE(PostgresMessageStore::open(options));
}
