// SqliteMessageStore: WAL + synchronous=FULL + group commit by one writer thread.
// Internally a failed SQLite call throws SqliteFailure, caught by the writer loop (the batch is rolled
// back and every caller gets kUnavailable) or by the read path; nothing is thrown across the API.
#include "medicus/gateway/store/sqlite_message_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace medicus::gateway::store {

std::string_view deliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending: return "pending";
    case DeliveryState::kInFlight: return "in-flight";
    case DeliveryState::kDelivered: return "delivered";
    case DeliveryState::kDead: return "dead";
  }
  return "unknown";
}

std::chrono::milliseconds RetryPolicy::backoffAfter(uint32_t failures) const {
  if (failures == 0) return std::chrono::milliseconds(0);
  auto delay = initial_backoff;
  for (uint32_t i = 1; i < failures && delay < max_backoff; ++i) delay *= 2;
  return std::min(delay, max_backoff);
}

tl::expected<InsertResult, StoreError> MessageStore::insertAndWait(InboundMessage message) {
  auto promise = std::make_shared<std::promise<tl::expected<InsertResult, StoreError>>>();
  auto future = promise->get_future();
  insert(std::move(message), [promise](tl::expected<InsertResult, StoreError> result) {
    promise->set_value(std::move(result));
  });
  return future.get();
}

namespace {

struct SqliteFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages (
  id           INTEGER PRIMARY KEY,
  sender       TEXT NOT NULL,
  control_id   TEXT NOT NULL,
  message_type TEXT NOT NULL,
  patient_key  TEXT NOT NULL,
  listener     TEXT NOT NULL,
  route        TEXT NOT NULL,
  charset      TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  body         TEXT NOT NULL,
  UNIQUE (sender, control_id)
);
CREATE TABLE IF NOT EXISTS deliveries (
  message_id      INTEGER PRIMARY KEY REFERENCES messages(id),
  route           TEXT NOT NULL,
  patient_key     TEXT NOT NULL,
  state           INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (route, patient_key, message_id) WHERE state IN (0, 1);
)sql";

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      throw SqliteFailure(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    next_ = 1;
    return *this;
  }
  Statement& bind(int64_t v) {
    check(sqlite3_bind_int64(stmt_, next_++, v));
    return *this;
  }
  Statement& bind(std::string_view v) {
    check(sqlite3_bind_text(stmt_, next_++, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw SqliteFailure(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw SqliteFailure(std::string("sqlite bind: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int next_ = 1;
};

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string text = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw SqliteFailure("sqlite: " + text);
  }
}

sqlite3* openConnection(const std::filesystem::path& file, bool synchronous_full) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string text = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw SqliteFailure("cannot open the message store " + file.string() + ": " + text);
  }
  sqlite3_busy_timeout(db, 10'000);  // a replay command may hold the write lock briefly
  try {
    exec(db, "PRAGMA journal_mode=WAL");
    // FULL: the WAL is synced at every commit, so a commit that returned survives power loss
    // (https://www.sqlite.org/pragma.html#pragma_synchronous). NORMAL only for benchmark baselines.
    exec(db, synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
  return db;
}

// The statements of the writer connection.
struct WriterStatements {
  explicit WriterStatements(sqlite3* connection)
      : db(connection),
        insert_message(db,
                       "INSERT INTO messages (sender, control_id, message_type, patient_key, listener, route, "
                       "charset, received_at, body) VALUES (?,?,?,?,?,?,?,?,?) "
                       "ON CONFLICT (sender, control_id) DO NOTHING"),
        find_duplicate(db, "SELECT id FROM messages WHERE sender = ? AND control_id = ?"),
        insert_delivery(db,
                        "INSERT INTO deliveries (message_id, route, patient_key, state, attempts, next_attempt_at) "
                        "VALUES (?, ?, ?, 0, 0, ?)"),
        // Oldest due first; only when no older message of the same patient and route is still open.
        select_due(db,
                   "SELECT d.message_id, d.route, m.sender, m.control_id, m.message_type, d.patient_key, m.body, "
                   "d.attempts, m.received_at FROM deliveries d JOIN messages m ON m.id = d.message_id "
                   "WHERE d.state = 0 AND d.next_attempt_at <= ?1 AND (?3 = '' OR d.route = ?3) "
                   "AND (d.patient_key = '' OR NOT EXISTS ("
                   "  SELECT 1 FROM deliveries o WHERE o.state IN (0, 1) AND o.route = d.route "
                   "  AND o.patient_key = d.patient_key AND o.message_id < d.message_id)) "
                   "ORDER BY d.message_id LIMIT ?2"),
        set_in_flight(db, "UPDATE deliveries SET state = 1 WHERE message_id = ?"),
        set_delivered(db, "UPDATE deliveries SET state = 2, last_error = '' WHERE message_id = ? AND state = 1"),
        select_attempts(db, "SELECT attempts, state FROM deliveries WHERE message_id = ?"),
        set_failed(db,
                   "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ? "
                   "WHERE message_id = ?"),
        requeue_dead(db, "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_at = ? WHERE state = 3"),
        requeue_one(db, "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_at = ? WHERE message_id = ?") {}

  sqlite3* db;
  Statement insert_message, find_duplicate, insert_delivery, select_due, set_in_flight, set_delivered,
      select_attempts, set_failed, requeue_dead, requeue_one;
};

}  // namespace

struct SqliteMessageStore::Impl {
  using Clock = std::chrono::steady_clock;

  // One queued write. `run` executes inside the batch transaction (throws SqliteFailure on error);
  // `finish` runs after COMMIT (error == nullptr) or after the rollback.
  struct Job {
    std::function<void(WriterStatements&)> run;
    std::function<void(const StoreError* error)> finish;
    bool insert = false;  // an MLLP insert (the commit delay waits for these only)
  };

  SqliteStoreOptions options;
  sqlite3* writer = nullptr;
  sqlite3* reader = nullptr;
  sqlite3* checkpointer = nullptr;
  std::unique_ptr<WriterStatements> statements;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> queue;
  size_t queued_inserts = 0;   // inserts in `queue`
  size_t awaited_inserts = 0;  // > 0 while the writer waits for that many queued inserts
  bool stopping = false;       // drain, then exit
  bool closed = false;         // refuse everything
  std::thread thread;
  std::atomic<uint64_t> commits{0};

  // Writer thread only.
  size_t last_batch_inserts = 0;          // inserts in the last commit that had any
  Clock::duration commit_average{0};      // moving average of COMMIT (mostly the fsync)

  // The checkpoint thread.
  std::mutex checkpoint_mutex;
  std::condition_variable checkpoint_wake;
  bool checkpoint_requested = false;
  bool checkpoint_stopping = false;
  std::thread checkpoint_thread;
  std::atomic<int> wal_pages{0};                 // WAL size after the last commit
  // One checkpoint round at a time: the WAL passed checkpoint_pages -> the checkpoint thread copies
  // what is there -> the writer copies the rest -> idle (the WAL starts again from its beginning).
  static constexpr int kCheckpointIdle = 0, kCheckpointCopying = 1, kCheckpointTail = 2;
  std::atomic<int> checkpoint_phase{kCheckpointIdle};
  uint64_t last_inline_checkpoint_commit = 0;   // writer thread only

  mutable std::mutex stats_mutex;
  WriterStats writer_stats;

  std::mutex reader_mutex;

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    if (thread.joinable()) thread.join();
    {
      std::lock_guard lock(checkpoint_mutex);
      checkpoint_stopping = true;
    }
    checkpoint_wake.notify_all();
    if (checkpoint_thread.joinable()) checkpoint_thread.join();
    statements.reset();
    sqlite3_close(writer);
    sqlite3_close(reader);
    sqlite3_close(checkpointer);
  }

  void enqueue(Job job) {
    {
      std::unique_lock lock(mutex);
      if (!closed && !stopping) {
        bool was_empty = queue.empty();
        if (job.insert) ++queued_inserts;
        queue.push_back(std::move(job));
        // The writer sleeps only on an empty queue or while it waits for `awaited_inserts`.
        bool wake_writer = was_empty || (awaited_inserts > 0 && queued_inserts >= awaited_inserts);
        lock.unlock();
        if (wake_writer) wake.notify_one();
        return;
      }
    }
    StoreError error{StoreError::Kind::kUnavailable, "the message store is closed"};
    job.finish(&error);
  }

  void writerLoop() {
    std::vector<Job> batch;
    for (;;) {
      Clock::duration waited{0};
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return !queue.empty() || stopping || closed; });
        // The commit delay: the inserts of the last commit were answered and their senders are
        // sending the next ones. Wait for as many, but no longer than a commit takes (a sender that
        // does not come back costs at most that) and never beyond max_commit_delay.
        size_t expected = std::min(last_batch_inserts, options.max_batch);
        if (expected > 1 && queued_inserts > 0 && queued_inserts < expected && !stopping && !closed &&
            options.max_commit_delay.count() > 0) {
          auto limit = std::min<Clock::duration>(options.max_commit_delay, commit_average);
          auto begin = Clock::now();
          awaited_inserts = expected;
          wake.wait_until(lock, begin + limit, [&] { return queued_inserts >= expected || stopping || closed; });
          awaited_inserts = 0;
          waited = Clock::now() - begin;
        }
        if (closed) {
          auto rejected = std::move(queue);
          queue.clear();
          queued_inserts = 0;
          lock.unlock();
          StoreError error{StoreError::Kind::kUnavailable, "the message store is closed"};
          for (auto& job : rejected) job.finish(&error);
          return;
        }
        if (queue.empty() && stopping) return;
        size_t n = std::min(queue.size(), options.max_batch);
        batch.clear();
        for (size_t i = 0; i < n; ++i) {
          if (queue.front().insert) --queued_inserts;
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      size_t inserts = 0;
      for (const auto& job : batch) inserts += job.insert ? 1 : 0;
      if (inserts > 0) last_batch_inserts = inserts;
      runBatch(batch, waited);
      checkpointTailIfAsked();
    }
  }

  void runBatch(std::vector<Job>& batch, Clock::duration waited) {
    std::optional<StoreError> failure;
    auto begin = Clock::now();
    auto statements_done = begin;
    auto committed = begin;
    try {
      exec(writer, "BEGIN IMMEDIATE");
      try {
        for (auto& job : batch) job.run(*statements);
        statements_done = Clock::now();
        exec(writer, "COMMIT");
        committed = Clock::now();
        commits.fetch_add(1, std::memory_order_relaxed);
      } catch (...) {
        sqlite3_exec(writer, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    } catch (const std::exception& e) {
      failure = StoreError{StoreError::Kind::kUnavailable,
                           std::string(e.what()) + " (" + options.file.string() + ")"};
    }
    if (!failure) recordBatch(batch.size(), committed - statements_done, statements_done - begin, waited);
    for (auto& job : batch) job.finish(failure ? &*failure : nullptr);
  }

  // Before the completions run, so that a caller that got its answer also sees it counted.
  void recordBatch(size_t writes, Clock::duration commit_time, Clock::duration statements_time,
                   Clock::duration waited) {
    commit_average = commit_average == Clock::duration::zero() ? commit_time
                                                               : (commit_average * 7 + commit_time) / 8;
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    std::lock_guard lock(stats_mutex);
    writer_stats.commits++;
    writer_stats.writes += writes;
    writer_stats.statements += duration_cast<microseconds>(statements_time);
    writer_stats.commit += duration_cast<microseconds>(commit_time);
    if (waited > Clock::duration::zero()) {
      writer_stats.delays++;
      writer_stats.delay += duration_cast<microseconds>(waited);
    }
  }

  // sqlite3_wal_hook of the writer connection: runs inside each COMMIT with the WAL's size in pages.
  static int walHook(void* arg, sqlite3*, const char*, int pages) {
    auto* self = static_cast<Impl*>(arg);
    self->wal_pages.store(pages, std::memory_order_relaxed);
    int idle = kCheckpointIdle;
    if (pages >= self->options.checkpoint_pages &&
        self->checkpoint_phase.compare_exchange_strong(idle, kCheckpointCopying)) {
      {
        std::lock_guard lock(self->checkpoint_mutex);
        self->checkpoint_requested = true;
      }
      self->checkpoint_wake.notify_one();
    }
    return SQLITE_OK;
  }

  // Writer thread, after a batch was answered (its senders are busy with the ACKs, so this overlaps
  // with their round trip instead of delaying an ACK). The WAL starts again from its beginning only at
  // a write transaction that finds every frame copied to the database; while inserts keep coming, the
  // checkpoint thread never quite gets there, so it copies the bulk and asks the writer for the last
  // frames. If the WAL gets very large anyway (checkpoint thread stuck), the writer checkpoints it all.
  void checkpointTailIfAsked() {
    int pages = wal_pages.load(std::memory_order_relaxed);
    bool tail = checkpoint_phase.load() == kCheckpointTail &&
                commits.load(std::memory_order_relaxed) >= last_inline_checkpoint_commit + 16;
    if (!tail && pages < 16 * options.checkpoint_pages) return;
    auto begin = Clock::now();
    sqlite3_wal_checkpoint_v2(writer, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    last_inline_checkpoint_commit = commits.load(std::memory_order_relaxed);
    // Idle again: the next write transaction reuses the WAL from its start (or, if a reader still
    // holds old frames, the next commit past the limit starts another round).
    int expected = kCheckpointTail;
    checkpoint_phase.compare_exchange_strong(expected, kCheckpointIdle);
    std::lock_guard lock(stats_mutex);
    writer_stats.inline_checkpoints++;
    writer_stats.inline_checkpoint +=
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin);
  }

  // Copies the WAL into the database file beside the writer. PASSIVE takes no lock the writer needs.
  // Once every frame is copied, the writer's next transaction starts the WAL from its beginning again
  // (it is overwritten, not grown, so a commit's fsync needs no file-size update).
  void checkpointLoop() {
    for (;;) {
      {
        std::unique_lock lock(checkpoint_mutex);
        checkpoint_wake.wait(lock, [&] { return checkpoint_requested || checkpoint_stopping; });
        if (checkpoint_stopping) return;
        checkpoint_requested = false;
      }
      // A failure (e.g. disk full) leaves the frames in the WAL, where they are safe; the next
      // request tries again, and the writer's own checkpoint is the last resort.
      int log = 0;
      int rc = sqlite3_wal_checkpoint_v2(checkpointer, "main", SQLITE_CHECKPOINT_PASSIVE, &log, nullptr);
      // `log` is the WAL as it was when the checkpoint began: the writer committed more meanwhile,
      // so the WAL is not fully copied yet; the writer copies the rest after its next batch.
      checkpoint_phase.store(rc == SQLITE_OK && log >= options.checkpoint_pages ? kCheckpointTail : kCheckpointIdle);
      std::lock_guard lock(stats_mutex);
      writer_stats.checkpoints++;
    }
  }

  // Runs `work` in the next group commit and waits for the commit.
  template <class T>
  tl::expected<T, StoreError> writeAndWait(std::function<tl::expected<T, StoreError>(WriterStatements&)> work) {
    auto result = std::make_shared<std::optional<tl::expected<T, StoreError>>>();
    auto promise = std::make_shared<std::promise<tl::expected<T, StoreError>>>();
    auto future = promise->get_future();
    enqueue(Job{[work = std::move(work), result](WriterStatements& s) { result->emplace(work(s)); },
                [result, promise](const StoreError* error) {
                  if (error) promise->set_value(tl::unexpected(*error));
                  else promise->set_value(std::move(**result));
                }});
    return future.get();
  }
};

tl::expected<std::unique_ptr<SqliteMessageStore>, StoreError> SqliteMessageStore::open(
    const SqliteStoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.max_batch == 0) impl->options.max_batch = 1;
  if (impl->options.checkpoint_pages <= 0) impl->options.checkpoint_pages = 1000;
  try {
    impl->writer = openConnection(options.file, options.synchronous_full);
    exec(impl->writer, kSchema);
    // A crash left these in flight; this process is the only owner of the file, so nobody else is
    // delivering them. The upstream may have received some: the Bundles are idempotent (conditional
    // create/update with deterministic ids), so sending them again is safe.
    if (options.recover_in_flight) exec(impl->writer, "UPDATE deliveries SET state = 0 WHERE state = 1");
    // A WAL that a burst grew beyond 64 MiB is cut back after the next checkpoint; below that it is
    // reused as it is (overwriting needs no file-size change on each fsync).
    exec(impl->writer, "PRAGMA journal_size_limit=67108864");
    impl->reader = openConnection(options.file, options.synchronous_full);
    impl->checkpointer = openConnection(options.file, options.synchronous_full);
    impl->statements = std::make_unique<WriterStatements>(impl->writer);
  } catch (const std::exception& e) {
    return tl::unexpected(StoreError{StoreError::Kind::kUnavailable, e.what()});
  }
  Impl* raw = impl.get();
  if (options.background_checkpoints) {
    // Replaces SQLite's autocheckpoint (which would checkpoint inside the COMMIT of an insert).
    sqlite3_wal_hook(impl->writer, &Impl::walHook, raw);
    impl->checkpoint_thread = std::thread([raw] { raw->checkpointLoop(); });
  } else {
    sqlite3_wal_autocheckpoint(impl->writer, impl->options.checkpoint_pages);
  }
  impl->thread = std::thread([raw] { raw->writerLoop(); });
  return std::unique_ptr<SqliteMessageStore>(new SqliteMessageStore(std::move(impl)));
}

SqliteMessageStore::SqliteMessageStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteMessageStore::~SqliteMessageStore() = default;

void SqliteMessageStore::close() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->closed = true;
  }
  impl_->wake.notify_all();
}

SqliteMessageStore::WriterStats SqliteMessageStore::writerStats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->writer_stats;
}

uint64_t SqliteMessageStore::commitCount() const { return impl_->commits.load(); }

void SqliteMessageStore::insert(InboundMessage message, InsertCompletion done) {
  auto result = std::make_shared<InsertResult>();
  auto msg = std::make_shared<InboundMessage>(std::move(message));
  impl_->enqueue(Impl::Job{
      [msg, result](WriterStatements& s) {
        auto& ins = s.insert_message.reset();
        ins.bind(msg->sender).bind(msg->control_id).bind(msg->message_type).bind(msg->patient_key);
        ins.bind(msg->listener).bind(msg->route).bind(msg->charset).bind(msg->received_at).bind(msg->text);
        ins.run();
        if (sqlite3_changes(s.db) == 1) {
          result->id = sqlite3_last_insert_rowid(s.db);
          if (!msg->route.empty()) {
            s.insert_delivery.reset().bind(result->id).bind(msg->route).bind(msg->patient_key).bind(msg->received_at).run();
          }
          return;
        }
        // Same sender and MSH-10 as a stored message (HL7 v2.5 2.10.1: MSH-10 identifies the message
        // for its sender): acknowledge again, store and deliver nothing.
        auto& dup = s.find_duplicate.reset();
        dup.bind(msg->sender).bind(msg->control_id);
        if (!dup.step()) throw SqliteFailure("sqlite: a duplicate message cannot be read back");
        result->id = dup.integer(0);
        result->duplicate = true;
        dup.reset();
      },
      [result, done = std::move(done)](const StoreError* error) {
        if (error) done(tl::unexpected(*error));
        else done(*result);
      },
      /*insert=*/true});
}


tl::expected<std::vector<DeliveryTask>, StoreError> SqliteMessageStore::claimDue(UnixMillis now, size_t max,
                                                                                 std::string_view route) {
  using Tasks = std::vector<DeliveryTask>;
  return impl_->writeAndWait<Tasks>([now, max, route = std::string(route)](WriterStatements& s) -> tl::expected<Tasks, StoreError> {
    Tasks tasks;
    auto& due = s.select_due.reset();
    due.bind(now).bind(static_cast<int64_t>(max)).bind(route);
    while (due.step()) {
      DeliveryTask t;
      t.message_id = due.integer(0);
      t.route = due.text(1);
      t.sender = due.text(2);
      t.control_id = due.text(3);
      t.message_type = due.text(4);
      t.patient_key = due.text(5);
      t.text = due.text(6);
      t.attempts = static_cast<uint32_t>(due.integer(7));
      t.received_at = due.integer(8);
      tasks.push_back(std::move(t));
    }
    due.reset();
    for (const auto& t : tasks) s.set_in_flight.reset().bind(t.message_id).run();
    return tasks;
  });
}

tl::expected<void, StoreError> SqliteMessageStore::markDelivered(int64_t message_id) {
  auto done = impl_->writeAndWait<bool>([message_id](WriterStatements& s) -> tl::expected<bool, StoreError> {
    s.set_delivered.reset().bind(message_id).run();
    if (sqlite3_changes(s.db) == 0) {
      return tl::unexpected(StoreError{StoreError::Kind::kInvalidState,
                                       "message " + std::to_string(message_id) + " is not in flight"});
    }
    return true;
  });
  if (!done) return tl::unexpected(done.error());
  return {};
}

tl::expected<void, StoreError> SqliteMessageStore::markAllDelivered(const std::vector<int64_t>& message_ids) {
  auto done = impl_->writeAndWait<bool>([message_ids](WriterStatements& s) -> tl::expected<bool, StoreError> {
    for (int64_t id : message_ids) s.set_delivered.reset().bind(id).run();
    return true;
  });
  if (!done) return tl::unexpected(done.error());
  return {};
}

tl::expected<FailureOutcome, StoreError> SqliteMessageStore::markFailed(int64_t message_id, std::string error,
                                                                         UnixMillis now, const RetryPolicy& policy) {
  return impl_->writeAndWait<FailureOutcome>(
      [message_id, error = std::move(error), now, policy](WriterStatements& s) -> tl::expected<FailureOutcome, StoreError> {
        auto& q = s.select_attempts.reset();
        q.bind(message_id);
        if (!q.step()) {
          return tl::unexpected(StoreError{StoreError::Kind::kNotFound, "no message " + std::to_string(message_id)});
        }
        auto attempts = static_cast<uint32_t>(q.integer(0)) + 1;
        q.reset();
        bool dead = attempts >= policy.max_attempts;
        UnixMillis next = now + policy.backoffAfter(attempts).count();
        s.set_failed.reset()
            .bind(static_cast<int64_t>(dead ? DeliveryState::kDead : DeliveryState::kPending))
            .bind(static_cast<int64_t>(attempts))
            .bind(next)
            .bind(error)
            .bind(message_id)
            .run();
        return dead ? FailureOutcome::kDeadLettered : FailureOutcome::kRetryScheduled;
      });
}

tl::expected<uint64_t, StoreError> SqliteMessageStore::requeueDeadLetters(UnixMillis now) {
  return impl_->writeAndWait<uint64_t>([now](WriterStatements& s) -> tl::expected<uint64_t, StoreError> {
    s.requeue_dead.reset().bind(now).run();
    return static_cast<uint64_t>(sqlite3_changes(s.db));
  });
}

tl::expected<void, StoreError> SqliteMessageStore::requeue(int64_t message_id, UnixMillis now) {
  auto done = impl_->writeAndWait<bool>([message_id, now](WriterStatements& s) -> tl::expected<bool, StoreError> {
    auto& q = s.select_attempts.reset();
    q.bind(message_id);
    if (!q.step()) {
      return tl::unexpected(StoreError{StoreError::Kind::kNotFound,
                                       "message " + std::to_string(message_id) +
                                           " has no delivery (unknown id, or its listener has no route)"});
    }
    auto state = static_cast<DeliveryState>(q.integer(1));
    q.reset();
    if (state == DeliveryState::kInFlight) {
      return tl::unexpected(StoreError{StoreError::Kind::kInvalidState,
                                       "message " + std::to_string(message_id) + " is being delivered right now"});
    }
    s.requeue_one.reset().bind(now).bind(message_id).run();
    return true;
  });
  if (!done) return tl::unexpected(done.error());
  return {};
}

tl::expected<QueueStats, StoreError> SqliteMessageStore::stats() {
  std::lock_guard lock(impl_->reader_mutex);
  try {
    QueueStats stats;
    sqlite3* db = impl_->reader;
    exec(db, "BEGIN");  // one snapshot for all three queries
    {
      Statement by_state(db, "SELECT state, count(*) FROM deliveries GROUP BY state");
      while (by_state.step()) {
        auto n = static_cast<uint64_t>(by_state.integer(1));
        switch (static_cast<DeliveryState>(by_state.integer(0))) {
          case DeliveryState::kPending: stats.pending = n; break;
          case DeliveryState::kInFlight: stats.in_flight = n; break;
          case DeliveryState::kDelivered: stats.delivered = n; break;
          case DeliveryState::kDead: stats.dead = n; break;
        }
      }
      Statement count(db, "SELECT count(*) FROM messages");
      if (count.step()) stats.messages = static_cast<uint64_t>(count.integer(0));
      Statement oldest(db,
                       "SELECT min(m.received_at) FROM deliveries d JOIN messages m ON m.id = d.message_id "
                       "WHERE d.state IN (0, 1)");
      if (oldest.step() && !oldest.isNull(0)) stats.oldest_pending_received_at = oldest.integer(0);
    }
    exec(db, "COMMIT");
    return stats;
  } catch (const std::exception& e) {
    sqlite3_exec(impl_->reader, "ROLLBACK", nullptr, nullptr, nullptr);
    return tl::unexpected(StoreError{StoreError::Kind::kUnavailable, e.what()});
  }
}

tl::expected<std::optional<MessageRecord>, StoreError> SqliteMessageStore::find(int64_t message_id) {
  std::lock_guard lock(impl_->reader_mutex);
  try {
    Statement q(impl_->reader,
                "SELECT m.sender, m.control_id, m.message_type, m.patient_key, m.listener, m.route, m.charset, "
                "m.received_at, m.body, d.state, d.attempts, d.last_error "
                "FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id WHERE m.id = ?");
    q.bind(message_id);
    if (!q.step()) return std::optional<MessageRecord>();
    MessageRecord r;
    r.id = message_id;
    r.message.sender = q.text(0);
    r.message.control_id = q.text(1);
    r.message.message_type = q.text(2);
    r.message.patient_key = q.text(3);
    r.message.listener = q.text(4);
    r.message.route = q.text(5);
    r.message.charset = q.text(6);
    r.message.received_at = q.integer(7);
    r.message.text = q.text(8);
    if (!q.isNull(9)) {
      r.state = static_cast<DeliveryState>(q.integer(9));
      r.attempts = static_cast<uint32_t>(q.integer(10));
      r.last_error = q.text(11);
    }
    return std::optional<MessageRecord>(std::move(r));
  } catch (const std::exception& e) {
    return tl::unexpected(StoreError{StoreError::Kind::kUnavailable, e.what()});
  }
}

}  // namespace medicus::gateway::store
