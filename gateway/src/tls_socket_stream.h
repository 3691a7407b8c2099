#pragma once
// A TLS connection (the gateway's listeners, and its HTTPS upstreams) whose OpenSSL object reads and
// writes the socket itself.
//
// asio::ssl::stream runs OpenSSL against a memory BIO pair and moves every record between that pair
// and the socket through its own buffers: two copies per record, a composed operation per step, and
// a write that completes through a posted handler (one more trip round the event loop per reply).
// Here OpenSSL's BIO is the socket: a record is received into OpenSSL's buffer and sent from it, and
// a reply the socket takes at once is written inline (writeNow), as plain connections are
// (http_wire.h). Reads are drain-aware like DrainAwareSocket's: after a recv that emptied the socket
// the next read waits for readiness first instead of trying a recv that can only say EAGAIN.
//
// For one connection on one thread, one read and one write at a time (as Beast's HTTP operations
// use a stream). The socket must be non-blocking. Private to gateway/src: includes Asio.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>

#include "drain_aware_socket.h"

namespace medicus::gateway {

class TlsSocketStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  // Up to one TLS record's worth of a gather write goes into one SSL_write (one record, one send).
  static constexpr size_t kMaxWriteChunk = 16 * 1024;

  enum class Role { Server, Client };

  // `socket` (non-blocking, connected) outlives the stream; `context` is the listener's or the upstream's.
  TlsSocketStream(boost::asio::ip::tcp::socket& socket, SSL_CTX* context, Role role = Role::Server);
  ~TlsSocketStream();
  TlsSocketStream(const TlsSocketStream&) = delete;
  TlsSocketStream& operator=(const TlsSocketStream&) = delete;

  executor_type get_executor() { return socket_->get_executor(); }
  SSL* native_handle() { return ssl_; }

  // The handshake, as the role's side. (Timeouts: close the socket, as a LazyDeadline does.)
  boost::asio::awaitable<boost::system::error_code> handshake();
  // Sends close_notify if the socket takes it now; never waits for the peer's.
  void shutdownNow();

  // Writes what the socket takes now of `head` then `body`, in whole records; returns the bytes
  // written. `error` is set when the connection failed (not when the socket is full). writeRest
  // (http_wire.h) writes the rest through async_write_some, which retries the same bytes.
  size_t writeNow(const std::string& head, const std::string& body, boost::system::error_code& error);

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
#ifdef MEDICUS_DRAIN_AWARE_READS
    return boost::asio::async_initiate<Token, void(boost::system::error_code, size_t)>(InitiateRead{this}, token,
                                                                                       firstBuffer(buffers));
#else
    return boost::asio::async_compose<Token, void(boost::system::error_code, size_t)>(
        Operation<ReadStep>(this, firstBuffer(buffers)), token, *socket_);
#endif
  }

  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, size_t)>(
        Operation<WriteStep>(this, chunkOf(buffers)), token, *socket_);
  }

 private:
  // What one SSL call asked for next.
  enum class Next { Done, WaitRead, WaitWrite };

  // One try of SSL_read_ex / SSL_write_ex; sets `result` or `error` when Done.
  struct ReadStep {
    static Next attempt(TlsSocketStream& s, boost::asio::mutable_buffer into, size_t& result, boost::system::error_code& error) {
      return s.tryRead(into, result, error);
    }
  };
  struct WriteStep {
    static Next attempt(TlsSocketStream& s, boost::asio::const_buffer from, size_t& result, boost::system::error_code& error) {
      return s.tryWrite(from, result, error);
    }
  };

  // The composed operation: try, wait for the socket as OpenSSL asked, try again. A result known at
  // the first try completes through a post, as Asio's own operations never complete inline.
  template <class Step, class Buffer = std::conditional_t<std::is_same_v<Step, ReadStep>, boost::asio::mutable_buffer,
                                                          boost::asio::const_buffer>>
  struct Operation {
    Operation(TlsSocketStream* s, Buffer b) : stream(s), buffer(b) {}
    TlsSocketStream* stream;
    Buffer buffer;
    size_t result = 0;
    boost::system::error_code error;
    enum { Starting, Waiting, Posted } state = Starting;

    template <class Self>
    void operator()(Self& self, boost::system::error_code wait_error = {}) {
      if (state == Posted) {
        self.complete(error, result);
        return;
      }
      if (state == Waiting && wait_error) {
        self.complete(wait_error, 0);
        return;
      }
      Next next;
      if (buffer.size() == 0) {
        next = Next::Done;  // nothing to move: done at once, as Asio's reads and writes are
      } else if (std::is_same_v<Step, ReadStep> && state == Starting && stream->readShouldWaitFirst()) {
        next = Next::WaitRead;  // the socket was drained: a recv now could only say EAGAIN
      } else {
        next = Step::attempt(*stream, buffer, result, error);
      }
      if (next == Next::Done) {
        if (state == Starting) {
          state = Posted;
          boost::asio::post(stream->get_executor(), std::move(self));
        } else {
          self.complete(error, result);
        }
        return;
      }
      state = Waiting;
      stream->socket_->async_wait(next == Next::WaitRead ? boost::asio::ip::tcp::socket::wait_read
                                                         : boost::asio::ip::tcp::socket::wait_write,
                                  std::move(self));
    }
  };

#ifdef MEDICUS_DRAIN_AWARE_READS
  // A read as one reactor operation (drain_detail::ReadOp) whose perform step is SSL_read, as Asio's
  // own recv operation is a recv: no socket wait operation (Asio re-registers the descriptor with
  // epoll_ctl for each of those), and the reactor's own speculative-read flag does what
  // readShouldWaitFirst does above: a read that left the socket drained (and OpenSSL nothing
  // buffered) reports it exhausted, so the next read waits for epoll first. OpenSSL wanting to write
  // during a read (a full socket while it answers the peer) falls back to a socket wait, then reads again.
  struct Reader {
    TlsSocketStream* stream;
    bool wants_write = false;

    drain_detail::ad::reactor_op::status perform(boost::asio::mutable_buffer buffer, boost::system::error_code& ec,
                                                 std::size_t& n) {
      using Op = drain_detail::ad::reactor_op;
      switch (stream->tryRead(buffer, n, ec)) {
        case Next::WaitRead: return Op::not_done;
        case Next::WaitWrite: wants_write = true; return Op::done;
        case Next::Done: break;
      }
      return ec || stream->readShouldWaitFirst() ? Op::done_and_exhausted : Op::done;
    }
    bool redirected() const { return wants_write; }
    template <class Handler>
    void redirect(boost::asio::mutable_buffer buffer, Handler&& handler) {
      stream->readAfterWritable(buffer, std::forward<Handler>(handler));
    }
  };

  struct InitiateRead {
    TlsSocketStream* stream;

    template <class Handler>
    void operator()(Handler&& handler, boost::asio::mutable_buffer buffer) const {
      drain_detail::startRead(*stream->socket_, *stream->reactor_, Reader{stream}, std::forward<Handler>(handler), buffer);
    }
  };

  // After OpenSSL asked to write during a read: wait until the socket takes data, then read again.
  template <class Handler>
  void readAfterWritable(boost::asio::mutable_buffer buffer, Handler handler) {
    socket_->async_wait(boost::asio::ip::tcp::socket::wait_write,
                        [this, buffer, handler = std::move(handler)](boost::system::error_code error) mutable {
                          if (error) {
                            std::move(handler)(error, 0);
                          } else {
                            async_read_some(buffer, std::move(handler));
                          }
                        });
  }
#endif

  template <class MutableBufferSequence>
  static boost::asio::mutable_buffer firstBuffer(const MutableBufferSequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b(*it);
      if (b.size() != 0) return b;
    }
    return {};
  }

  // The first kMaxWriteChunk bytes of `buffers`: the first buffer itself when it holds that much or is
  // all there is, else a copy into write_chunk_. The same sequence always gives the same bytes, so a
  // write retried after the socket was full passes OpenSSL what it had (as SSL_write requires).
  template <class ConstBufferSequence>
  boost::asio::const_buffer chunkOf(const ConstBufferSequence& buffers) {
    auto begin = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    while (begin != end && boost::asio::const_buffer(*begin).size() == 0) ++begin;
    if (begin == end) return {};
    boost::asio::const_buffer first(*begin);
    auto second = std::next(begin);
    while (second != end && boost::asio::const_buffer(*second).size() == 0) ++second;
    if (first.size() >= kMaxWriteChunk || second == end) {
      return boost::asio::const_buffer(first.data(), std::min(first.size(), kMaxWriteChunk));
    }
    write_chunk_.clear();
    for (auto it = begin; it != end && write_chunk_.size() < kMaxWriteChunk; ++it) {
      boost::asio::const_buffer b(*it);
      write_chunk_.append(static_cast<const char*>(b.data()), std::min(b.size(), kMaxWriteChunk - write_chunk_.size()));
    }
    return boost::asio::buffer(write_chunk_);
  }

  void prepareCall();
  bool readShouldWaitFirst() const;
  Next tryRead(boost::asio::mutable_buffer into, size_t& result, boost::system::error_code& error);
  Next tryWrite(boost::asio::const_buffer from, size_t& result, boost::system::error_code& error);
  Next nextAfter(int ssl_result, boost::system::error_code& error);

 public:
  // What the BIO (tls_socket_stream.cpp) records about the socket calls OpenSSL made through it.
  struct SocketState {
    int fd = -1;           // set before each OpenSSL call (prepareCall)
    bool drained = false;  // the last recv got less than it asked for, or EAGAIN
    bool eof = false;      // the last recv returned 0: the peer closed
    int last_errno = 0;    // of the last failed send or recv, 0 if none
  };

 private:
  boost::asio::ip::tcp::socket* socket_;
#ifdef MEDICUS_DRAIN_AWARE_READS
  drain_detail::ad::epoll_reactor* reactor_;  // serves socket_ (one lookup per connection)
#endif
  SSL* ssl_ = nullptr;
  SocketState socket_state_;
  bool failed_ = false;  // a fatal TLS or socket error: no close_notify
  std::string write_chunk_;
};

}  // namespace medicus::gateway
