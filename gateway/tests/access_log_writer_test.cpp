#include "access_log_writer.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

using medicus::gateway::AccessLogWriter;

namespace {
std::filesystem::path tempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("medicus-" + name + "-" + std::to_string(::getpid()));
}
std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("access log writer: batches from several threads all reach the file, each thread's in order") {
  auto path = tempPath("access-writer");
  std::filesystem::remove(path);
  constexpr int kThreads = 4, kBatches = 200;
  {
    AccessLogWriter writer(path.string());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        std::string batch;
        for (int b = 0; b < kBatches; ++b) {
          batch += "t" + std::to_string(t) + " b" + std::to_string(b) + "\n";
          writer.submit(batch);
          CHECK(batch.empty());  // taken; only its capacity may come back
        }
      });
    }
    for (auto& thread : threads) thread.join();
    writer.drain();
    // drain() means written: the file has every line now, before the writer is destroyed.
    std::string text = readAll(path);
    CHECK(std::count(text.begin(), text.end(), '\n') == kThreads * kBatches);
    CHECK(writer.droppedBatches() == 0);
  }
  std::string text = readAll(path);
  std::filesystem::remove(path);
  for (int t = 0; t < kThreads; ++t) {
    size_t last = 0;
    for (int b = 0; b < kBatches; ++b) {
      size_t at = text.find("t" + std::to_string(t) + " b" + std::to_string(b) + "\n");
      REQUIRE(at != std::string::npos);
      CHECK(at >= last);
      last = at;
    }
  }
}

TEST_CASE("access log writer: a stalled log file never blocks submit; batches over the cap are dropped and counted") {
  // A FIFO nobody reads stands for a disk that does not take writes: the writer thread blocks in
  // its write once the pipe buffer (64 KB) is full.
  auto path = tempPath("access-fifo");
  std::filesystem::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);  // so that the writer's open succeeds
  REQUIRE(reader >= 0);
  const std::string line(1000, 'x');
  {
    AccessLogWriter writer(path.string(), 256 * 1024);
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {  // 1 MB: far more than the pipe and the cap hold
      std::string batch = line + "\n";
      writer.submit(batch);
    }
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    CHECK(writer.droppedBatches() > 0);
    CHECK(writer.droppedBatches() < 1000);
    // The reader catches up: everything not dropped arrives, then drain() returns.
    std::string received;
    std::thread drainer([&writer] { writer.drain(); });
    char chunk[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    size_t expected = (1000 - writer.droppedBatches()) * (line.size() + 1);
    while (received.size() < expected && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::read(reader, chunk, sizeof chunk);
      if (n > 0) received.append(chunk, static_cast<size_t>(n));
      else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    drainer.join();
    CHECK(received.size() == expected);
  }
  ::close(reader);
  std::filesystem::remove(path);
}
