#pragma once
// Waits for an asynchronous operation at most `timeout`, and returns without it when that passes.
// For operations that cannot be cancelled while they run: Asio's resolver calls getaddrinfo on a
// thread of its own, and a DNS server that does not answer holds that call for resolv.conf's
// timeout times its attempts (10 s and more), longer than an upstream's connect_timeout. Asio's
// `||` operator would cancel the lookup and then still wait for it to end.
//
// The operation runs on as a detached coroutine; its result, when it comes late, is dropped.
// The executor must run one handler at a time (an io_context with one thread, or a strand).
// Private to gateway/src: includes Asio.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace medicus::gateway {

// The operation's result, or nothing when it did not complete within `timeout` (or threw).
template <class T>
boost::asio::awaitable<std::optional<T>> completeWithin(std::chrono::steady_clock::duration timeout,
                                                        boost::asio::awaitable<T> operation) {
  namespace asio = boost::asio;
  struct Shared {
    explicit Shared(const asio::any_io_executor& executor) : wake(executor) {}
    asio::steady_timer wake;
    std::optional<T> result;
  };
  auto executor = co_await asio::this_coro::executor;
  auto shared = std::make_shared<Shared>(executor);
  shared->wake.expires_after(timeout);
  auto run = [](std::shared_ptr<Shared> state, asio::awaitable<T> op) -> asio::awaitable<void> {
    try {
      state->result.emplace(co_await std::move(op));
    } catch (...) {
      // (an operation that throws has no result)
    }
    // A time in the past ends the wait, also one that has not started yet (co_spawn may run the
    // operation up to its first suspension, or to its end, before the wait begins).
    state->wake.expires_at(asio::steady_timer::time_point::min());
  };
  asio::co_spawn(executor, run(shared, std::move(operation)), asio::detached);
  co_await shared->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(shared->result);
}

}  // namespace medicus::gateway
