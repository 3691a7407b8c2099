#include "access_log_writer.h"

#include <stdexcept>

namespace medicus::gateway {

namespace {
constexpr size_t kMaxSpareBatches = 8;
}

AccessLogWriter::AccessLogWriter(const std::string& where, size_t max_queued_bytes)
    : max_queued_bytes_(max_queued_bytes) {
  if (where == "stderr") {
    file_ = stderr;
  } else if (where == "stdout") {
    file_ = stdout;
  } else {
    file_ = std::fopen(where.c_str(), "a");
    if (!file_) throw std::runtime_error("cannot open the access log " + where + " for appending");
    owns_file_ = true;
  }
  thread_ = std::thread([this] { run(); });
}

AccessLogWriter::~AccessLogWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (owns_file_) std::fclose(file_);
}

void AccessLogWriter::submit(std::string& batch) {
  if (batch.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (queued_bytes_ + batch.size() > max_queued_bytes_) {
      ++dropped_;
      batch.clear();
      return;
    }
    queued_bytes_ += batch.size();
    ++submitted_;
    queue_.push_back(std::move(batch));
    if (!spare_.empty()) {
      batch = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  batch.clear();
  wake_.notify_one();
}

void AccessLogWriter::drain() {
  std::unique_lock lock(mutex_);
  uint64_t target = submitted_;
  written_.wait(lock, [&] { return completed_ >= target; });
}

uint64_t AccessLogWriter::droppedBatches() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void AccessLogWriter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is written
    std::string batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::fwrite(batch.data(), 1, batch.size(), file_);
    std::fflush(file_);
    lock.lock();
    queued_bytes_ -= batch.size();
    ++completed_;
    if (spare_.size() < kMaxSpareBatches) {
      batch.clear();
      spare_.push_back(std::move(batch));
    }
    written_.notify_all();
  }
}

}  // namespace medicus::gateway
