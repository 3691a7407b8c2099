#pragma once
// The access log's file writes, off the I/O threads: a worker hands over a batch of lines in O(1)
// under a short lock, and one writer thread does the write and flush. A write to a file can block for
// milliseconds (dirty page throttling, a slow disk), and on a worker that delay lands on every request
// of that worker, and, through a shared lock, on the other workers too.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace medicus::gateway {

class AccessLogWriter {
 public:
  // `where`: "stderr", "stdout" or a file path (opened for appending). Throws std::runtime_error when
  // the file cannot be opened.
  explicit AccessLogWriter(const std::string& where, size_t max_queued_bytes = kMaxQueuedBytes);
  // Writes everything handed over, then closes the file (not stderr/stdout).
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Takes the batch (complete lines) and leaves `batch` empty, keeping a recycled capacity when one is
  // free. While more than max_queued_bytes wait for the disk, batches are dropped and counted instead:
  // the gateway keeps serving when its log disk stalls.
  void submit(std::string& batch);
  // Returns once every batch submitted before the call is written and flushed.
  void drain();

  uint64_t droppedBatches() const;

  static constexpr size_t kMaxQueuedBytes = 64u << 20;

 private:
  void run();

  const size_t max_queued_bytes_;
  std::FILE* file_ = nullptr;
  bool owns_file_ = false;
  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // drain(): progress
  std::deque<std::string> queue_;
  std::deque<std::string> spare_;  // written batches, cleared, for their capacity
  size_t queued_bytes_ = 0;
  uint64_t submitted_ = 0;
  uint64_t completed_ = 0;
  uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace medicus::gateway
