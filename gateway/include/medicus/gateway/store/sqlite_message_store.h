#pragma once
// MessageStore on one SQLite file: WAL journal, synchronous=FULL (the WAL is fsynced at every commit),
// and group commit: one writer thread takes every queued write (inserts from all connections, delivery
// updates), runs them in one transaction and completes them together after COMMIT returned. Under load
// one fsync covers hundreds of messages; an idle store commits a single message at once (no timer).
//
// Commit delay (adaptive, bounded): when the previous commit carried k > 1 inserts and fewer than k are
// queued, the writer waits until k are queued, at most min(max_commit_delay, the recent COMMIT time).
// Stop-and-wait senders (one message, then wait for its ACK) come back together after a commit; without
// the wait the first one back is committed alone and the rest wait a whole commit for the next, and the
// senders stay split into groups that take turns (half the messages per fsync). A lone sender (k = 1)
// never waits; a wait that ends without the k inserts lowers k to what came.
//
// Checkpoints run on a checkpoint thread with its own connection (PASSIVE: it never blocks the writer),
// started when the WAL passes checkpoint_pages, instead of inside the COMMIT that crossed the limit
// (SQLite's autocheckpoint, which holds that commit's ACKs for a whole checkpoint). Under steady load
// it cannot finish alone (new frames keep coming), so it copies the bulk and the writer copies the
// last frames between two batches, after the ACKs went out; then the WAL is reused from its start.
// If the WAL grows past 16 times checkpoint_pages (checkpoint thread stuck) the writer copies it all.
//
// Reads (stats, find) use a further connection, which WAL lets run beside the writer.
#include <chrono>
#include <filesystem>
#include <memory>

#include "medicus/gateway/store/message_store.h"

namespace medicus::gateway::store {

struct SqliteStoreOptions {
  std::filesystem::path file;         // created with its tables when missing
  size_t max_batch = 2048;            // writes per transaction at most
  // Longest wait for the senders of the previous commit (see above); 0: commit whatever is queued.
  std::chrono::microseconds max_commit_delay{1000};
  int checkpoint_pages = 1000;        // WAL size (pages) that starts a background checkpoint
  // false: SQLite's own autocheckpoint at checkpoint_pages, inside the COMMIT that crosses it (for
  // comparisons in benchmarks).
  bool background_checkpoints = true;
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

  // What the writer spent its time on, since open (benchmarks, tests).
  struct WriterStats {
    uint64_t commits = 0;
    uint64_t writes = 0;                  // jobs committed (inserts and delivery updates)
    std::chrono::microseconds statements{0};  // running the batches' statements
    std::chrono::microseconds commit{0};  // COMMIT, i.e. the WAL write and its fsync
    std::chrono::microseconds delay{0};   // waiting for the senders of the previous commit
    uint64_t delays = 0;                  // commits that waited
    uint64_t checkpoints = 0;             // background checkpoints run
    uint64_t inline_checkpoints = 0;      // checkpoints the writer ran itself (the WAL's last frames)
    std::chrono::microseconds inline_checkpoint{0};
  };
  WriterStats writerStats() const;

 private:
  struct Impl;
  explicit SqliteMessageStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::store
