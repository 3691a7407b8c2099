#pragma once
// The durable store of received HL7 v2 messages and their delivery queue (issue 6).
//
// Promises every implementation keeps:
// - insert(): the completion runs only after the message is durable (committed and synced); an
//   acknowledgement may be sent from it. A message with the same sender (MSH-3 + MSH-4) and MSH-10 as a
//   stored one is not stored again: the completion reports `duplicate` and the first message's id.
// - Delivery: pending -> in-flight -> delivered; a failed attempt goes back to pending with an
//   exponential backoff, and to the dead-letter state after `max_attempts`. claimDue() hands out
//   per patient (PID-3, first identifier) only the oldest undelivered message: a message waits while an
//   older one of the same patient is pending or in flight. Dead letters do not hold the patient's
//   queue (one poison message must not stop a ward); replay puts them back in the queue.
// - Every method is thread-safe. Completions run on a store thread: keep them short (post elsewhere).
//
// SqliteMessageStore (sqlite_message_store.h) is the embedded implementation; a PostgreSQL one for
// several gateway instances sharing the queue can implement the same interface (claim with
// SELECT ... FOR UPDATE SKIP LOCKED and a lease instead of the start-up reset of in-flight rows).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace medicus::gateway::store {

// Milliseconds since the Unix epoch; the caller owns the clock (tests pass fixed values).
using UnixMillis = int64_t;

struct StoreError {
  enum class Kind : uint8_t {
    kUnavailable,  // the database cannot be written (disk full, I/O error, closed): answer AR 207
    kNotFound,     // no such message id
    kInvalidState, // e.g. replay of a message that is in flight
  };
  Kind kind = Kind::kUnavailable;
  std::string message;  // what failed, for the log: "sqlite: disk I/O error (…/messages.db)"
};

// One received message, already decoded to UTF-8 and parsed by the listener.
struct InboundMessage {
  std::string sender;        // MSH-3 "|" MSH-4 as received (raw ER7), the dedupe scope
  std::string control_id;    // MSH-10
  std::string message_type;  // "ADT^A01"
  std::string patient_key;   // PID-3 first repetition (raw ER7), "" when the message has none
  std::string listener;      // name of the listener that received it
  std::string route;         // delivery route; "" when the message is only stored
  std::string charset;       // MSH-18 spelling of the charset it arrived in
  std::string text;          // the message in UTF-8
  UnixMillis received_at = 0;
};

struct InsertResult {
  int64_t id = 0;          // message id (the first one's id for a duplicate)
  bool duplicate = false;  // same sender and MSH-10 as a stored message: acknowledge, do not deliver
};

enum class DeliveryState : uint8_t { kPending = 0, kInFlight = 1, kDelivered = 2, kDead = 3 };
std::string_view deliveryStateName(DeliveryState state);

// A claimed delivery: the message and how often it was tried before.
struct DeliveryTask {
  int64_t message_id = 0;
  std::string route;
  std::string sender;
  std::string control_id;
  std::string message_type;
  std::string patient_key;
  std::string text;
  uint32_t attempts = 0;  // failed attempts so far
  UnixMillis received_at = 0;
};

struct RetryPolicy {
  uint32_t max_attempts = 10;                   // the attempt that fails for the N-th time dead-letters
  std::chrono::milliseconds initial_backoff{1'000};
  std::chrono::milliseconds max_backoff{300'000};
  // Delay before attempt n+1 after n failures: initial * 2^(n-1), capped at max_backoff.
  std::chrono::milliseconds backoffAfter(uint32_t failures) const;
};

// After markFailed: whether the message will be retried or is now a dead letter.
enum class FailureOutcome : uint8_t { kRetryScheduled, kDeadLettered };

struct QueueStats {
  uint64_t messages = 0;
  uint64_t pending = 0;
  uint64_t in_flight = 0;
  uint64_t delivered = 0;
  uint64_t dead = 0;
  std::optional<UnixMillis> oldest_pending_received_at;  // oldest pending or in-flight message
};

struct MessageRecord {
  int64_t id = 0;
  InboundMessage message;
  DeliveryState state = DeliveryState::kPending;
  uint32_t attempts = 0;
  std::string last_error;
};

class MessageStore {
 public:
  using InsertCompletion = std::function<void(tl::expected<InsertResult, StoreError>)>;

  virtual ~MessageStore() = default;

  // Queues the message for the next group commit; `done` runs after that commit is durable (or failed).
  virtual void insert(InboundMessage message, InsertCompletion done) = 0;
  // Blocking form of insert() (CLI, tests, benchmarks).
  tl::expected<InsertResult, StoreError> insertAndWait(InboundMessage message);

  // Marks up to `max` due messages of `route` (any route when empty) in flight and returns them,
  // oldest first, at most one per patient.
  virtual tl::expected<std::vector<DeliveryTask>, StoreError> claimDue(UnixMillis now, size_t max,
                                                                       std::string_view route = {}) = 0;
  virtual tl::expected<void, StoreError> markDelivered(int64_t message_id) = 0;
  // Several at once, in one commit (the delivery worker records a whole claimed batch).
  virtual tl::expected<void, StoreError> markAllDelivered(const std::vector<int64_t>& message_ids) = 0;
  virtual tl::expected<FailureOutcome, StoreError> markFailed(int64_t message_id, std::string error,
                                                              UnixMillis now, const RetryPolicy& policy) = 0;
  // Dead letters back to pending (attempts reset, due now). Returns how many.
  virtual tl::expected<uint64_t, StoreError> requeueDeadLetters(UnixMillis now) = 0;
  // One message (dead or delivered) back to pending. kNotFound / kInvalidState (in flight).
  virtual tl::expected<void, StoreError> requeue(int64_t message_id, UnixMillis now) = 0;

  virtual tl::expected<QueueStats, StoreError> stats() = 0;
  virtual tl::expected<std::optional<MessageRecord>, StoreError> find(int64_t message_id) = 0;
};

}  // namespace medicus::gateway::store
