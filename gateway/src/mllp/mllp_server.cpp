// MLLP server: one io_context, `threads` threads, one strand-bound coroutine per connection.
#include "mllp/mllp_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "medicus/hl7v2/mllp_framer.h"
#include "tls_setup.h"

namespace medicus::gateway::mllp {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

namespace {

using InsertOutcome = tl::expected<store::InsertResult, store::StoreError>;

// Stores several messages (the frames of one read, e.g. from a sender that pipelines) in the same
// group commit and resumes the coroutine once every one of them is answered; results keep their order.
template <class Token>
auto asyncStoreAll(store::MessageStore& message_store, std::vector<store::InboundMessage> messages,
                   std::atomic<int64_t>& pending, Token&& token) {
  return asio::async_initiate<Token, void(std::vector<InsertOutcome>)>(
      [&message_store, &pending](auto handler, std::vector<store::InboundMessage> batch) {
        struct Shared {
          decltype(handler) resume;
          std::vector<std::optional<InsertOutcome>> results;
          std::atomic<size_t> remaining;
          Shared(decltype(handler) h, size_t n) : resume(std::move(h)), results(n), remaining(n) {}
        };
        auto executor = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
        auto shared = std::make_shared<Shared>(std::move(handler), batch.size());
        pending.fetch_add(1);
        for (size_t i = 0; i < batch.size(); ++i) {
          message_store.insert(std::move(batch[i]), [shared, executor, i, &pending](InsertOutcome result) mutable {
            shared->results[i] = std::move(result);
            auto local_shared = std::move(shared);
            auto local_executor = std::move(executor);
            if (local_shared->remaining.fetch_sub(1) != 1) return;
            {
              asio::post(local_executor, [local_shared]() mutable {
                std::vector<InsertOutcome> out;
                out.reserve(local_shared->results.size());
                for (auto& r : local_shared->results) out.push_back(std::move(*r));
                std::move(local_shared->resume)(std::move(out));
              });
              local_shared.reset();
              local_executor = {};
            }
            pending.fetch_sub(1);
          });
        }
      },
      token, std::move(messages));
}

}  // namespace

struct MllpServer::Impl {
  struct Listener {
    MllpListenerConfig config;
    // Swapped by updatePolicies() (SIGHUP); a connection takes the current one for each batch of frames.
    std::atomic<std::shared_ptr<MllpMessageHandler>> handler;
    std::unique_ptr<tcp::acceptor> acceptor;
    // Swapped by updatePolicies() with the TLS files read again (a renewed certificate); a connection
    // takes the current one when accepted and keeps it.
    std::atomic<std::shared_ptr<asio::ssl::context>> tls;
    uint16_t bound_port = 0;
  };

  store::MessageStore& message_store;
  IntakeMetrics& metrics;
  LogSink log;
  unsigned thread_count;
  asio::io_context io;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<std::thread> threads;
  std::atomic<int64_t> pending_stores{0};
  bool started = false;

  Impl(store::MessageStore& s, IntakeMetrics& m, LogSink l, unsigned t)
      : message_store(s), metrics(m), log(std::move(l)), thread_count(t == 0 ? 1 : t) {}

  void info(const std::string& line) {
    if (log) log(line);
  }

  asio::awaitable<void> acceptLoop(Listener& listener) {
    for (;;) {
      auto [ec, socket] = co_await listener.acceptor->async_accept(asio::make_strand(io), kUseTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !listener.acceptor->is_open()) co_return;
        continue;  // e.g. too many open files: keep accepting
      }
      socket.set_option(tcp::no_delay(true));
      auto executor = socket.get_executor();
      if (std::shared_ptr<asio::ssl::context> tls = listener.tls.load()) {
        asio::co_spawn(executor, serveTls(listener, std::move(tls), std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(executor, serveConnection(listener, std::move(socket)), asio::detached);
      }
    }
  }

  asio::awaitable<void> serveTls(Listener& listener, std::shared_ptr<asio::ssl::context> tls, tcp::socket socket) {
    auto stream = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(socket), *tls);
    auto state = std::make_shared<ConnectionState>(stream->get_executor());
    asio::co_spawn(stream->get_executor(), watchdog(state, [stream] {
      boost::system::error_code ignored;
      stream->lowest_layer().close(ignored);
    }), asio::detached);
    state->deadline.expires_after(listener.config.read_timeout);
    auto [ec] = co_await stream->async_handshake(asio::ssl::stream_base::server, kUseTuple);
    if (ec) {
      metrics.countFrameError(listener.config.policy.listener_name, "tls_handshake");
      info("mllp " + listener.config.policy.listener_name + ": TLS handshake failed: " + ec.message());
      state->finish();
      co_return;
    }
    co_await serveStream(listener, *stream, state);
  }

  asio::awaitable<void> serveConnection(Listener& listener, tcp::socket socket) {
    auto shared = std::make_shared<tcp::socket>(std::move(socket));
    auto state = std::make_shared<ConnectionState>(shared->get_executor());
    asio::co_spawn(shared->get_executor(), watchdog(state, [shared] {
      boost::system::error_code ignored;
      shared->close(ignored);
    }), asio::detached);
    co_await serveStream(listener, *shared, state);
  }

  // The deadline of the current operation; the watchdog closes the connection when it passes.
  struct ConnectionState {
    explicit ConnectionState(const asio::any_io_executor& executor) : deadline(executor) {
      deadline.expires_at(Clock::time_point::max());
    }
    void finish() {
      done = true;
      deadline.cancel();
    }
    asio::steady_timer deadline;
    bool done = false;
    bool timed_out = false;
  };

  static asio::awaitable<void> watchdog(std::shared_ptr<ConnectionState> state, std::function<void()> close) {
    while (!state->done) {
      if (state->deadline.expiry() <= Clock::now()) {
        state->timed_out = true;
        close();
        co_return;
      }
      co_await state->deadline.async_wait(kUseTuple);
    }
  }

  template <class Stream>
  asio::awaitable<void> serveStream(Listener& listener, Stream& stream, std::shared_ptr<ConnectionState> state) {
    const std::string& name = listener.config.policy.listener_name;
    metrics.connectionOpened(name);
    std::optional<std::string> internal_error;
    try {
      co_await exchangeFrames(listener, stream, *state);
    } catch (const std::exception& e) {
      internal_error = e.what();
    }
    if (internal_error) {
      // Last resort (our bug): answer AR 207 if the connection still works, log, count.
      metrics.countFrameError(name, "internal");
      info("mllp " + name + ": internal error, connection closed: " + *internal_error);
      std::string ack = listener.handler.load()->internalErrorAck("internal error in the gateway; send the message again");
      state->deadline.expires_after(listener.config.write_timeout);
      co_await asio::async_write(stream, asio::buffer(ack), kUseTuple);
    }
    if (state->timed_out) metrics.countFrameError(name, "timeout");
    state->finish();
    metrics.connectionClosed(name);
  }

  template <class Stream>
  asio::awaitable<void> exchangeFrames(Listener& listener, Stream& stream, ConnectionState& state) {
    const auto& config = listener.config;
    const std::string& name = config.policy.listener_name;
    hl7v2::MllpDecoder decoder({.max_frame_bytes = config.max_message_bytes});
    std::array<char, 64 * 1024> buffer;
    bool in_frame = false;
    for (;;) {
      // Every frame that arrived with this read: refused ones are answered without the store, the
      // others are stored together (one commit) and answered in their order after it.
      std::vector<FrameDecision> decisions;
      bool close_after_reply = false;
      // One handler (policy) for the frames of this read and their ACKs, also across a reload.
      const std::shared_ptr<MllpMessageHandler> handler = listener.handler.load();
      while (auto item = decoder.next()) {
        if (!*item) {
          const auto& error = item->error();
          if (error.kind == hl7v2::MllpError::Kind::kFrameTooLarge) {
            metrics.countFrameError(name, "too_large");
            info("mllp " + name + ": " + error.describe() + "; answered AR and closed the connection");
            FrameDecision refused;
            refused.outcome = MllpOutcome::kRejected;
            refused.immediate_reply = handler->internalErrorAck(
                "message larger than " + std::to_string(config.max_message_bytes) +
                " bytes (max_message_bytes of listener " + name + "); not accepted");
            refused.log_detail = "frame too large";
            decisions.push_back(std::move(refused));
            close_after_reply = true;
            break;
          }
          metrics.countFrameError(name, error.kind == hl7v2::MllpError::Kind::kGarbageBetweenFrames ? "garbage"
                                                                                                      : "restarted");
          continue;
        }
        decisions.push_back(handler->examine(**item));
      }
      if (!decisions.empty()) {
        std::vector<store::InboundMessage> to_store;
        std::vector<bool> via_store;
        for (auto& d : decisions) {
          via_store.push_back(d.to_store.has_value());
          if (d.to_store) to_store.push_back(std::move(*d.to_store));
        }
        std::vector<InsertOutcome> stored;
        if (!to_store.empty()) {
          state.deadline.expires_at(Clock::time_point::max());  // the store answers (or fails) on its own
          stored = co_await asyncStoreAll(message_store, std::move(to_store), pending_stores, asio::use_awaitable);
        }
        std::string replies;
        size_t next_stored = 0;
        for (size_t i = 0; i < decisions.size(); ++i) {
          FrameDecision& d = decisions[i];
          MllpOutcome outcome = d.outcome;
          if (via_store[i]) {
            const InsertOutcome& result = stored[next_stored++];
            if (!result) info("mllp " + name + ": store failed, answered AR 207: " + result.error().message);
            replies += handler->ackAfterStore(d, result, outcome);
          } else {
            replies += d.immediate_reply;
            info("mllp " + name + ": " + std::string(outcomeLabel(outcome)) + ": " + d.log_detail);
          }
          metrics.countMessage(name, outcomeLabel(outcome));
        }
        if (!replies.empty()) {
          state.deadline.expires_after(config.write_timeout);
          auto [ec, n] = co_await asio::async_write(stream, asio::buffer(replies), kUseTuple);
          if (ec) co_return;
        }
        if (close_after_reply) co_return;
      }
      // Idle between frames; inside a frame the whole frame must arrive within read_timeout.
      if (!decoder.insideFrame()) {
        in_frame = false;
        state.deadline.expires_after(config.idle_timeout);
      } else if (!in_frame) {
        in_frame = true;
        state.deadline.expires_after(config.read_timeout);
      }
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), kUseTuple);
      if (ec) co_return;  // closed by the peer, the watchdog or stop()
      decoder.feed(std::string_view(buffer.data(), n));
      if (decoder.insideFrame() && !in_frame) {
        in_frame = true;
        state.deadline.expires_after(config.read_timeout);
      }
    }
  }
};

MllpServer::MllpServer(std::vector<MllpListenerConfig> listeners, store::MessageStore& store, IntakeMetrics& metrics,
                       LogSink log, unsigned threads)
    : impl_(std::make_unique<Impl>(store, metrics, std::move(log), threads)) {
  for (auto& config : listeners) {
    auto l = std::make_unique<Impl::Listener>();
    l->config = std::move(config);
    l->config.policy.parse.max_message_bytes = l->config.max_message_bytes;
    l->handler = std::make_shared<MllpMessageHandler>(l->config.policy, hl7NowUtc, unixNowMillis);
    impl_->listeners.push_back(std::move(l));
  }
}

MllpServer::~MllpServer() { stop(); }

namespace {
// Throws std::runtime_error naming the file when a certificate, key or CA bundle does not load.
std::shared_ptr<asio::ssl::context> makeServerContext(const ServerTlsConfig& tls) {
  ensureSelfSignedCertificate(tls);
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  configureServerContext(context->native_handle(), tls);
  return context;
}
}  // namespace

void MllpServer::start() {
  for (auto& l : impl_->listeners) {
    const auto& config = l->config;
    if (config.tls) l->tls = makeServerContext(*config.tls);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.address, ec);
    if (ec) {
      throw std::runtime_error("mllp listener " + config.policy.listener_name + ": address '" + config.address +
                               "' is not an IP address");
    }
    tcp::endpoint endpoint(address, config.port);
    l->acceptor = std::make_unique<tcp::acceptor>(impl_->io);
    l->acceptor->open(endpoint.protocol());
    l->acceptor->set_option(tcp::acceptor::reuse_address(true));
    l->acceptor->bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("mllp listener " + config.policy.listener_name + ": cannot listen on " +
                               config.address + ":" + std::to_string(config.port) + ": " + ec.message() +
                               " (is another process using the port?)");
    }
    l->acceptor->listen();
    l->bound_port = l->acceptor->local_endpoint().port();
    asio::co_spawn(impl_->io, impl_->acceptLoop(*l), asio::detached);
    impl_->info("mllp listener " + config.policy.listener_name + " on " + config.address + ":" +
                std::to_string(l->bound_port) + (config.tls ? " (TLS)" : ""));
  }
  impl_->started = true;
  for (unsigned i = 0; i < impl_->thread_count; ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

std::vector<std::string> MllpServer::updatePolicies(const std::vector<MllpListenerConfig>& listeners) {
  std::vector<std::string> notes;
  for (const auto& next : listeners) {
    const std::string& name = next.policy.listener_name;
    auto it = std::find_if(impl_->listeners.begin(), impl_->listeners.end(),
                           [&](const auto& l) { return l->config.policy.listener_name == name; });
    if (it == impl_->listeners.end()) {
      notes.push_back("mllp listener " + name + " is new: it starts after a restart");
      continue;
    }
    MllpListenerConfig& running = (*it)->config;
    if (next.address != running.address || next.port != running.port || next.tls.has_value() != running.tls.has_value()) {
      notes.push_back("mllp listener " + name + ": address, port and TLS on or off take effect after a restart");
    } else if (next.tls && !impl_->started) {
      running.tls = next.tls;  // (start() reads them)
    } else if (next.tls) {
      // The TLS files read again (a certificate renewed at the same path, another client CA), for
      // connections accepted from now on; when they do not load, the running ones stay.
      try {
        (*it)->tls.store(makeServerContext(*next.tls));
      } catch (const std::exception& e) {
        notes.push_back("mllp listener " + name + ": keeping the running TLS settings: " + e.what());
      }
    }
    if (next.max_message_bytes != running.max_message_bytes || next.read_timeout != running.read_timeout ||
        next.idle_timeout != running.idle_timeout || next.write_timeout != running.write_timeout) {
      notes.push_back("mllp listener " + name + ": size limit and timeout changes take effect after a restart");
    }
    MllpListenerPolicy policy = next.policy;
    policy.parse.max_message_bytes = running.max_message_bytes;
    (*it)->handler.store(std::make_shared<MllpMessageHandler>(std::move(policy), hl7NowUtc, unixNowMillis));
  }
  for (const auto& l : impl_->listeners) {
    const std::string& name = l->config.policy.listener_name;
    if (std::none_of(listeners.begin(), listeners.end(), [&](const auto& c) { return c.policy.listener_name == name; })) {
      notes.push_back("mllp listener " + name + " was removed from the config: it stops after a restart");
    }
  }
  return notes;
}

uint16_t MllpServer::port(std::string_view listener_name) const {
  for (const auto& l : impl_->listeners) {
    if (l->config.policy.listener_name == listener_name) return l->bound_port;
  }
  return 0;
}

void MllpServer::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  asio::post(impl_->io, [this] {
    for (auto& l : impl_->listeners) {
      boost::system::error_code ignored;
      if (l->acceptor) l->acceptor->close(ignored);
    }
  });
  // Store completions post into the io_context: wait for the ones under way before it goes away.
  while (impl_->pending_stores.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace medicus::gateway::mllp
