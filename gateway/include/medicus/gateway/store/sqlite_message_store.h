#pragma once
// MessageStore on one SQLite file: WAL journal, synchronous=FULL (the WAL is fsynced at every commit),
// and group commit: one writer thread takes every queued write (inserts from all connections, delivery
// updates), runs them in one transaction and completes them together after COMMIT returned. Under load
// one fsync covers hundreds of messages; an idle store commits a single message at once (no timer).
//
// Reads (stats, find) use a second connection, which WAL lets run beside the writer.
#include <filesystem>
#include <memory>

#include "medicus/gateway/store/message_store.h"

namespace medicus::gateway::store {

struct SqliteStoreOptions {
  std::filesystem::path file;         // created with its tables when missing
  size_t max_batch = 2048;            // writes per transaction at most
  bool synchronous_full = true;       // false only for benchmarks' baselines (NORMAL)
  // Put deliveries left in flight by a previous run back to pending. Only the owning gateway process
  // does this; a second process (the replay command) must not, the gateway may be delivering them.
  bool recover_in_flight = true;
};

class SqliteMessageStore final : public MessageStore {
 public:
  // Opens (or creates) the database and starts the writer thread. In-flight deliveries of a previous
  // run (crash) go back to pending when `recover_in_flight`: the store has a single owner process.
  static tl::expected<std::unique_ptr<SqliteMessageStore>, StoreError> open(const SqliteStoreOptions& options);
  ~SqliteMessageStore() override;  // finishes queued writes, then closes

  // Stops accepting writes: queued and later calls complete with kUnavailable. For tests of
  // "store down" and for shutdown.
  void close();

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

  // Commits done so far (tests check that concurrent inserts share commits).
  uint64_t commitCount() const;

 private:
  struct Impl;
  explicit SqliteMessageStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::store
