#pragma once
// One deadline per connection, kept by a single timer that is re-armed only when it fires.
// beast::tcp_stream::expires_after() arms and cancels a timer for every read and write, and each
// arm moved the reactor's timerfd: ~6 timerfd_settime calls per proxied request (strace), more
// than the request's own I/O calls. Here setting a deadline is only a store; the timer wakes at
// most every `check_every`, and when the deadline has passed it closes the socket, so the
// pending operation fails (the caller asks expired() to tell a timeout from other errors).
//
// Never late: every deadline given is at least `check_every` ahead (the shortest timeout the
// connection uses), and the timer is never further ahead than min(deadline, now + check_every).
// Private to gateway/src: includes Asio.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

namespace medicus::gateway {

class LazyDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  LazyDeadline(const boost::asio::any_io_executor& executor, boost::asio::ip::tcp::socket& socket,
               Clock::duration check_every)
      : state_(std::make_shared<State>(executor, socket,
                                       std::max<Clock::duration>(check_every, std::chrono::milliseconds(1)))) {
    state_->timer.expires_after(state_->check_every);
    wait(state_);
  }
  ~LazyDeadline() {
    state_->socket = nullptr;  // the handler may still run (cancelled); it must not touch the socket
    state_->timer.cancel();
  }
  LazyDeadline(const LazyDeadline&) = delete;
  LazyDeadline& operator=(const LazyDeadline&) = delete;

  void expiresAfter(Clock::duration d) { state_->due = Clock::now() + d; }
  void expiresNever() { state_->due = Clock::time_point::max(); }
  bool expired() const { return state_->expired; }

 private:
  struct State {
    State(const boost::asio::any_io_executor& executor, boost::asio::ip::tcp::socket& s, Clock::duration every)
        : timer(executor), socket(&s), check_every(every) {}
    boost::asio::steady_timer timer;
    boost::asio::ip::tcp::socket* socket;
    Clock::duration check_every;
    Clock::time_point due = Clock::time_point::max();
    bool expired = false;
  };

  static void wait(std::shared_ptr<State> state) {
    State& s = *state;
    s.timer.async_wait([state = std::move(state)](const boost::system::error_code& error) mutable {
      if (error || !state->socket) return;
      auto now = Clock::now();
      if (now >= state->due) {
        state->expired = true;
        boost::system::error_code ignored;
        state->socket->close(ignored);
        return;
      }
      auto next = now + state->check_every;
      state->timer.expires_at(state->due < next ? state->due : next);
      wait(std::move(state));
    });
  }

  std::shared_ptr<State> state_;
};

}  // namespace medicus::gateway
