#include "medicus/gateway/store/postgres_message_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace medicus::gateway::store {
namespace {

// Owns a PGresult.
struct Result {
  PGresult* r = nullptr;
  explicit Result(PGresult* result) : r(result) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { if (r) PQclear(r); }
  ExecStatusType status() const { return r ? PQresultStatus(r) : PGRES_FATAL_ERROR; }
  bool ok() const { return status() == PGRES_COMMAND_OK || status() == PGRES_TUPLES_OK; }
  int rows() const { return r ? PQntuples(r) : 0; }
  std::string text(int row, int col) const { return PQgetvalue(r, row, col); }
  int64_t number(int row, int col) const { return std::stoll(PQgetvalue(r, row, col)); }
  bool isNull(int row, int col) const { return PQgetisnull(r, row, col) != 0; }
  uint64_t affected() const { return std::stoull(PQcmdTuples(r)[0] ? PQcmdTuples(r) : "0"); }
};

StoreError unavailable(PGconn* conn, std::string_view what) {
  std::string detail = conn ? PQerrorMessage(conn) : "no connection";
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  return {StoreError::Kind::kUnavailable, "postgres: " + std::string(what) + ": " + detail};
}

bool validIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Runs a parameterised statement; all parameters are passed as text.
Result exec(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return Result(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                             nullptr, 0));
}

}  // namespace

struct PostgresMessageStore::Impl {
  PostgresStoreOptions options;
  PGconn* writer = nullptr;  // used only by the writer thread
  PGconn* reader = nullptr;  // claims, updates and reads, under `reader_mutex`
  std::mutex reader_mutex;

  struct PendingInsert {
    InboundMessage message;
    InsertCompletion done;
  };
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<PendingInsert> queue;
  bool stopping = false;
  std::thread writer_thread;
  std::atomic<uint64_t> commits{0};

  std::string sql_insert, sql_existing, sql_claim, sql_delivered, sql_failed_read, sql_failed_write, sql_requeue_dead,
      sql_requeue_one, sql_stats, sql_find;

  ~Impl() {
    {
      std::lock_guard lock(queue_mutex);
      stopping = true;
    }
    queue_cv.notify_all();
    if (writer_thread.joinable()) writer_thread.join();
    if (writer) PQfinish(writer);
    if (reader) PQfinish(reader);
  }

  void prepareSql() {
    const std::string& t = options.table;
    sql_insert = "INSERT INTO " + t +
                 " (sender, control_id, message_type, patient_key, listener, route, charset, body, received_at, due_at)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (sender, control_id) DO NOTHING RETURNING id";
    sql_existing = "SELECT id FROM " + t + " WHERE sender = $1 AND control_id = $2";
    // Due pending rows, and in-flight rows whose lease ran out (their instance died), that are the
    // oldest undelivered row of their patient; locked rows belong to another instance's claim.
    sql_claim = "WITH candidates AS (SELECT m.id FROM " + t + " m WHERE ((m.state = 0 AND m.due_at <= $1) OR "
                "(m.state = 1 AND m.lease_until < $1)) AND ($3 = '' OR m.route = $3) AND (m.patient_key = '' OR NOT EXISTS "
                "(SELECT 1 FROM " + t + " o WHERE o.patient_key = m.patient_key AND o.id < m.id AND o.state IN (0, 1))) "
                "ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED) "
                "UPDATE " + t + " SET state = 1, lease_until = $4 WHERE id IN (SELECT id FROM candidates) "
                "RETURNING id, route, sender, control_id, message_type, patient_key, body, attempts, received_at";
    sql_delivered = "UPDATE " + t + " SET state = 2, lease_until = NULL WHERE id = $1";
    sql_failed_read = "SELECT attempts FROM " + t + " WHERE id = $1 FOR UPDATE";
    sql_failed_write = "UPDATE " + t + " SET state = $2, attempts = $3, due_at = $4, lease_until = NULL, last_error = $5 WHERE id = $1";
    sql_requeue_dead = "UPDATE " + t + " SET state = 0, attempts = 0, due_at = $1, last_error = '' WHERE state = 3";
    sql_requeue_one = "UPDATE " + t + " SET state = 0, attempts = 0, due_at = $2, lease_until = NULL WHERE id = $1 AND state IN (0, 2, 3) RETURNING id";
    sql_stats = "SELECT count(*), count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1), "
                "count(*) FILTER (WHERE state = 2), count(*) FILTER (WHERE state = 3), "
                "min(received_at) FILTER (WHERE state IN (0, 1)) FROM " + t;
    sql_find = "SELECT id, sender, control_id, message_type, patient_key, listener, route, charset, body, received_at, "
               "state, attempts, last_error FROM " + t + " WHERE id = $1";
  }

  tl::expected<void, StoreError> createSchema() {
    const std::string& t = options.table;
    std::string ddl =
        "CREATE TABLE IF NOT EXISTS " + t + " ("
        " id BIGSERIAL PRIMARY KEY, sender TEXT NOT NULL, control_id TEXT NOT NULL, message_type TEXT NOT NULL,"
        " patient_key TEXT NOT NULL, listener TEXT NOT NULL, route TEXT NOT NULL, charset TEXT NOT NULL,"
        " body TEXT NOT NULL, received_at BIGINT NOT NULL, state SMALLINT NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0, due_at BIGINT NOT NULL, lease_until BIGINT,"
        " last_error TEXT NOT NULL DEFAULT '', UNIQUE (sender, control_id));"
        "CREATE INDEX IF NOT EXISTS " + t + "_due ON " + t + " (state, due_at);"
        "CREATE INDEX IF NOT EXISTS " + t + "_patient ON " + t + " (patient_key, id) WHERE state IN (0, 1);";
    Result r(PQexec(reader, ddl.c_str()));
    if (!r.ok()) return tl::unexpected(unavailable(reader, "creating " + t));
    return {};
  }

  bool ensureConnected(PGconn*& conn) {
    if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) return true;
    if (conn != nullptr) {
      PQreset(conn);
      return PQstatus(conn) == CONNECTION_OK;
    }
    return false;
  }

  void writerLoop() {
    std::vector<PendingInsert> batch;
    while (true) {
      {
        std::unique_lock lock(queue_mutex);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty() && stopping) return;
        while (!queue.empty() && batch.size() < options.max_batch) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      commitBatch(batch);
      batch.clear();
    }
  }

  // One transaction for the whole batch; the completions run after COMMIT returned (durable).
  void commitBatch(std::vector<PendingInsert>& batch) {
    std::vector<tl::expected<InsertResult, StoreError>> results;
    results.reserve(batch.size());
    auto failAll = [&](StoreError error) {
      for (auto& p : batch) p.done(tl::unexpected(error));
    };
    if (!ensureConnected(writer)) return failAll(unavailable(writer, "connecting"));
    Result begin(PQexec(writer, "BEGIN"));
    if (!begin.ok()) return failAll(unavailable(writer, "BEGIN"));
    for (auto& p : batch) {
      const InboundMessage& m = p.message;
      Result ins = exec(writer, sql_insert,
                        {m.sender, m.control_id, m.message_type, m.patient_key, m.listener, m.route, m.charset, m.text,
                         std::to_string(m.received_at)});
      if (!ins.ok()) {
        StoreError error = unavailable(writer, "inserting");
        Result rollback(PQexec(writer, "ROLLBACK"));
        return failAll(error);
      }
      if (ins.rows() == 1) {
        results.push_back(InsertResult{ins.number(0, 0), false});
        continue;
      }
      Result existing = exec(writer, sql_existing, {m.sender, m.control_id});
      if (!existing.ok() || existing.rows() != 1) {
        StoreError error = unavailable(writer, "finding the original of a repeated message");
        Result rollback(PQexec(writer, "ROLLBACK"));
        return failAll(error);
      }
      results.push_back(InsertResult{existing.number(0, 0), true});
    }
    Result commit(PQexec(writer, "COMMIT"));
    if (!commit.ok()) return failAll(unavailable(writer, "COMMIT"));
    commits.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }
};

PostgresMessageStore::PostgresMessageStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresMessageStore::~PostgresMessageStore() = default;

tl::expected<std::unique_ptr<PostgresMessageStore>, StoreError> PostgresMessageStore::open(
    const PostgresStoreOptions& options) {
  if (!validIdentifier(options.table)) {
    return tl::unexpected(StoreError{StoreError::Kind::kUnavailable,
                                     "postgres: table name '" + options.table + "' must be a lower-case SQL identifier"});
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (PGconn** conn : {&impl->writer, &impl->reader}) {
    *conn = PQconnectdb(options.dsn.c_str());
    if (PQstatus(*conn) != CONNECTION_OK) return tl::unexpected(unavailable(*conn, "connecting to '" + options.dsn + "'"));
    // Durable commits regardless of the server default.
    Result set(PQexec(*conn, "SET synchronous_commit = on"));
    if (!set.ok()) return tl::unexpected(unavailable(*conn, "SET synchronous_commit"));
  }
  if (auto schema = impl->createSchema(); !schema) return tl::unexpected(schema.error());
  impl->prepareSql();
  Impl* raw = impl.get();
  impl->writer_thread = std::thread([raw] { raw->writerLoop(); });
  return std::unique_ptr<PostgresMessageStore>(new PostgresMessageStore(std::move(impl)));
}

void PostgresMessageStore::insert(InboundMessage message, InsertCompletion done) {
  {
    std::lock_guard lock(impl_->queue_mutex);
    if (!impl_->stopping) {
      impl_->queue.push_back({std::move(message), std::move(done)});
      impl_->queue_cv.notify_one();
      return;
    }
  }
  done(tl::unexpected(StoreError{StoreError::Kind::kUnavailable, "postgres: the store is shutting down"}));
}

tl::expected<std::vector<DeliveryTask>, StoreError> PostgresMessageStore::claimDue(UnixMillis now, size_t max,
                                                                                  std::string_view route) {
  std::lock_guard lock(impl_->reader_mutex);
  if (!impl_->ensureConnected(impl_->reader)) return tl::unexpected(unavailable(impl_->reader, "connecting"));
  Result r = exec(impl_->reader, impl_->sql_claim,
                  {std::to_string(now), std::to_string(max), std::string(route),
                   std::to_string(now + impl_->options.lease.count())});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "claiming due messages"));
  std::vector<DeliveryTask> tasks;
  tasks.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    DeliveryTask t;
    t.message_id = r.number(i, 0);
    t.route = r.text(i, 1);
    t.sender = r.text(i, 2);
    t.control_id = r.text(i, 3);
    t.message_type = r.text(i, 4);
    t.patient_key = r.text(i, 5);
    t.text = r.text(i, 6);
    t.attempts = static_cast<uint32_t>(r.number(i, 7));
    t.received_at = r.number(i, 8);
    tasks.push_back(std::move(t));
  }
  // UPDATE ... RETURNING gives no order: oldest first, as the interface promises.
  std::sort(tasks.begin(), tasks.end(), [](const DeliveryTask& a, const DeliveryTask& b) { return a.message_id < b.message_id; });
  return tasks;
}

tl::expected<void, StoreError> PostgresMessageStore::markDelivered(int64_t message_id) {
  std::lock_guard lock(impl_->reader_mutex);
  Result r = exec(impl_->reader, impl_->sql_delivered, {std::to_string(message_id)});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "marking delivered"));
  if (r.affected() == 0) return tl::unexpected(StoreError{StoreError::Kind::kNotFound, "no message " + std::to_string(message_id)});
  return {};
}

tl::expected<void, StoreError> PostgresMessageStore::markAllDelivered(const std::vector<int64_t>& message_ids) {
  if (message_ids.empty()) return {};
  // One statement, one commit: the ids as a PostgreSQL array literal of integers.
  std::string array = "{";
  for (size_t i = 0; i < message_ids.size(); ++i) {
    if (i) array += ',';
    array += std::to_string(message_ids[i]);
  }
  array += '}';
  std::lock_guard lock(impl_->reader_mutex);
  Result r = exec(impl_->reader,
                  "UPDATE " + impl_->options.table + " SET state = 2, lease_until = NULL WHERE id = ANY($1::bigint[])",
                  {array});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "marking delivered"));
  return {};
}

tl::expected<FailureOutcome, StoreError> PostgresMessageStore::markFailed(int64_t message_id, std::string error,
                                                                          UnixMillis now, const RetryPolicy& policy) {
  std::lock_guard lock(impl_->reader_mutex);
  PGconn* c = impl_->reader;
  Result begin(PQexec(c, "BEGIN"));
  if (!begin.ok()) return tl::unexpected(unavailable(c, "BEGIN"));
  Result read = exec(c, impl_->sql_failed_read, {std::to_string(message_id)});
  if (!read.ok() || read.rows() != 1) {
    bool missing = read.ok();
    Result rollback(PQexec(c, "ROLLBACK"));
    if (missing) return tl::unexpected(StoreError{StoreError::Kind::kNotFound, "no message " + std::to_string(message_id)});
    return tl::unexpected(unavailable(c, "reading attempts"));
  }
  uint32_t attempts = static_cast<uint32_t>(read.number(0, 0)) + 1;
  bool dead = attempts >= policy.max_attempts;
  UnixMillis due = dead ? now : now + policy.backoffAfter(attempts).count();
  Result write = exec(c, impl_->sql_failed_write,
                      {std::to_string(message_id), dead ? "3" : "0", std::to_string(attempts), std::to_string(due), error});
  if (!write.ok()) {
    StoreError e = unavailable(c, "recording the failure");
    Result rollback(PQexec(c, "ROLLBACK"));
    return tl::unexpected(e);
  }
  Result commit(PQexec(c, "COMMIT"));
  if (!commit.ok()) return tl::unexpected(unavailable(c, "COMMIT"));
  return dead ? FailureOutcome::kDeadLettered : FailureOutcome::kRetryScheduled;
}

tl::expected<uint64_t, StoreError> PostgresMessageStore::requeueDeadLetters(UnixMillis now) {
  std::lock_guard lock(impl_->reader_mutex);
  Result r = exec(impl_->reader, impl_->sql_requeue_dead, {std::to_string(now)});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "re-queueing dead letters"));
  return r.affected();
}

tl::expected<void, StoreError> PostgresMessageStore::requeue(int64_t message_id, UnixMillis now) {
  std::lock_guard lock(impl_->reader_mutex);
  Result r = exec(impl_->reader, impl_->sql_requeue_one, {std::to_string(message_id), std::to_string(now)});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "re-queueing"));
  if (r.rows() == 1) return {};
  Result exists = exec(impl_->reader, "SELECT state FROM " + impl_->options.table + " WHERE id = $1", {std::to_string(message_id)});
  if (exists.ok() && exists.rows() == 1) {
    return tl::unexpected(StoreError{StoreError::Kind::kInvalidState,
                                     "message " + std::to_string(message_id) + " is being delivered right now"});
  }
  return tl::unexpected(StoreError{StoreError::Kind::kNotFound, "no message " + std::to_string(message_id)});
}

tl::expected<QueueStats, StoreError> PostgresMessageStore::stats() {
  std::lock_guard lock(impl_->reader_mutex);
  Result r(PQexec(impl_->reader, impl_->sql_stats.c_str()));
  if (!r.ok() || r.rows() != 1) return tl::unexpected(unavailable(impl_->reader, "reading queue statistics"));
  QueueStats s;
  s.messages = static_cast<uint64_t>(r.number(0, 0));
  s.pending = static_cast<uint64_t>(r.number(0, 1));
  s.in_flight = static_cast<uint64_t>(r.number(0, 2));
  s.delivered = static_cast<uint64_t>(r.number(0, 3));
  s.dead = static_cast<uint64_t>(r.number(0, 4));
  if (!r.isNull(0, 5)) s.oldest_pending_received_at = r.number(0, 5);
  return s;
}

tl::expected<std::optional<MessageRecord>, StoreError> PostgresMessageStore::find(int64_t message_id) {
  std::lock_guard lock(impl_->reader_mutex);
  Result r = exec(impl_->reader, impl_->sql_find, {std::to_string(message_id)});
  if (!r.ok()) return tl::unexpected(unavailable(impl_->reader, "reading a message"));
  if (r.rows() == 0) return std::optional<MessageRecord>{};
  MessageRecord m;
  m.id = r.number(0, 0);
  m.message.sender = r.text(0, 1);
  m.message.control_id = r.text(0, 2);
  m.message.message_type = r.text(0, 3);
  m.message.patient_key = r.text(0, 4);
  m.message.listener = r.text(0, 5);
  m.message.route = r.text(0, 6);
  m.message.charset = r.text(0, 7);
  m.message.text = r.text(0, 8);
  m.message.received_at = r.number(0, 9);
  m.state = static_cast<DeliveryState>(r.number(0, 10));
  m.attempts = static_cast<uint32_t>(r.number(0, 11));
  m.last_error = r.text(0, 12);
  return std::optional<MessageRecord>{std::move(m)};
}

uint64_t PostgresMessageStore::commitCount() const { return impl_->commits.load(); }

}  // namespace medicus::gateway::store
