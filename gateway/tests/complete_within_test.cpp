#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>

#include "complete_within.h"

using namespace medicus::gateway;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// An operation that takes `duration` on a timer and then yields `value`; sets `finished` when it ends.
asio::awaitable<int> takes(Clock::duration duration, int value, bool& finished) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  finished = true;
  co_return value;
}

asio::awaitable<int> immediately(int value) { co_return value; }

asio::awaitable<int> throws() {
  throw std::runtime_error("lookup failed");
  co_return 0;
}

struct Outcome {
  std::optional<int> result;
  Clock::duration waited{};
};

// Runs completeWithin on a fresh io_context; the context then runs on until the operation has ended too.
Outcome run(Clock::duration timeout, asio::awaitable<int> operation) {
  asio::io_context io;
  Outcome outcome;
  auto started = Clock::now();
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    outcome.result = co_await completeWithin(timeout, std::move(operation));
    outcome.waited = Clock::now() - started;
  }, asio::detached);
  io.run();
  return outcome;
}

}  // namespace

TEST_CASE("completeWithin: an operation that ends in time gives its result without waiting out the timeout") {
  bool finished = false;
  Outcome outcome = run(10s, takes(20ms, 7, finished));
  REQUIRE(outcome.result == 7);
  CHECK(finished);
  CHECK(outcome.waited < 5s);
}

TEST_CASE("completeWithin: an operation that ends before the wait begins is not waited for") {
  Outcome outcome = run(10s, immediately(3));
  REQUIRE(outcome.result == 3);
  CHECK(outcome.waited < 5s);
}

TEST_CASE("completeWithin: a slow operation is given up at the timeout; it ends later without harm") {
  bool finished = false;
  asio::io_context io;
  std::optional<int> result = 1;
  Clock::duration waited{};
  bool finished_when_given_up = true;
  auto started = Clock::now();
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    result = co_await completeWithin(50ms, takes(600ms, 9, finished));
    waited = Clock::now() - started;
    finished_when_given_up = finished;
  }, asio::detached);
  io.run();  // returns once the late operation has ended as well
  CHECK_FALSE(result.has_value());
  CHECK_FALSE(finished_when_given_up);
  CHECK(waited >= 50ms);
  CHECK(waited < 500ms);
  CHECK(finished);
}

TEST_CASE("completeWithin: an operation that throws has no result and is not waited out") {
  Outcome outcome = run(10s, throws());
  CHECK_FALSE(outcome.result.has_value());
  CHECK(outcome.waited < 5s);
}
