#pragma once
// MessageStore on PostgreSQL, for several gateway instances sharing one queue.
//
// - Durability: inserts are committed with synchronous_commit=on (the WAL is flushed before COMMIT
//   returns), batched by one writer thread per instance (group commit), completions after COMMIT.
// - Dedupe: a UNIQUE (sender, control_id) constraint; a repeat gets the first message's id.
// - Sharing work: claimDue() takes rows with SELECT ... FOR UPDATE SKIP LOCKED and leases them for
//   `lease`; an instance that dies leaves its in-flight rows to be claimed again when the lease ends
//   (delivery is at-least-once across a crash, as with the SQLite store).
// - Order per patient: a row is claimable only while no older row of the same patient is pending or in
//   flight (dead letters do not hold the queue).
#include <chrono>
#include <memory>
#include <string>

#include "medicus/gateway/store/message_store.h"

namespace medicus::gateway::store {

struct PostgresStoreOptions {
  std::string dsn;                         // libpq connection string: "host=... port=... dbname=... user=..."
  std::string table = "medicus_messages";  // created when missing
  size_t max_batch = 1024;                 // inserts per transaction at most
  std::chrono::milliseconds lease{60'000}; // how long a claim holds a row in flight
};

class PostgresMessageStore final : public MessageStore {
 public:
  // Connects, creates the table and indexes when missing, starts the writer thread.
  static tl::expected<std::unique_ptr<PostgresMessageStore>, StoreError> open(const PostgresStoreOptions& options);
  ~PostgresMessageStore() override;  // finishes queued inserts, then disconnects

  // medicus::gateway::store::MessageStore
  void insert(InboundMessage message, InsertCompletion done) override;
  tl::expected<std::vector<DeliveryTask>, StoreError> claimDue(UnixMillis now, size_t max,
                                                               std::string_view route = {}) override;
  tl::expected<void, StoreError> markDelivered(int64_t message_id) override;
  tl::expected<void, StoreError> markAllDelivered(const std::vector<int64_t>& message_ids) override;
  tl::expected<FailureOutcome, StoreError> markFailed(int64_t message_id, std::string error, UnixMillis now,
                                                      const RetryPolicy& policy) override;
  tl::expected<uint64_t, StoreError> requeueDeadLetters(UnixMillis now) override;
  tl::expected<void, StoreError> requeue(int64_t message_id, UnixMillis now) override;
  tl::expected<QueueStats, StoreError> stats() override;
  tl::expected<std::optional<MessageRecord>, StoreError> find(int64_t message_id) override;

  uint64_t commitCount() const;  // insert transactions committed so far

 private:
  struct Impl;
  explicit PostgresMessageStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::store
