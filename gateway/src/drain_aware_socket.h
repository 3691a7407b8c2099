#pragma once
// Reading a plain TCP socket without the recv that only says EAGAIN.
//
// Asio starts every read with a speculative recv and only then waits for epoll. A proxy that
// answers one request at a time reads exactly when nothing can have arrived yet: the client's next
// request after the reply, the upstream's reply after the request. So every proxied request paid two
// recv calls that returned EAGAIN (~0.4 us each here; nginx makes none). Asio skips the speculative
// recv when the previous read reported the socket "exhausted", but its own read says so only at
// EOF. This read says so whenever recv returned fewer bytes than asked for: for TCP that means the
// receive queue was empty at that moment, so epoll's edge-triggered registration reports whatever
// arrives later, and Asio sets the socket back to speculative reads on that report.
// The flag is set inside the reactor's perform step, at the recv itself, as Asio does at EOF.
//
// Built on Asio's reactor internals (Boost 1.81's epoll reactor, Debian 12); with any other Boost or
// reactor DrainAwareSocket is a plain forwarding wrapper. TLS connections read the same way through
// TlsSocketStream (tls_socket_stream.h). Private to gateway/src.
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(BOOST_ASIO_DISABLE_DRAIN_AWARE_READS)
#define MEDICUS_DRAIN_AWARE_READS 1
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/buffer_sequence_adapter.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#endif

namespace medicus::gateway {

#ifdef MEDICUS_DRAIN_AWARE_READS
namespace drain_detail {
namespace ad = boost::asio::detail;
using Socket = boost::asio::ip::tcp::socket;

// basic_socket keeps its service implementation protected; a pointer to member formed through a
// derived class reaches it (the class is never instantiated).
struct SocketAccess : Socket {
  static auto& implOf(Socket& socket) { return socket.*(&SocketAccess::impl_); }
};

// One read as a reactor operation, as Asio's reactive_socket_recv_op is one recv: `Reader` does the
// read in the reactor's perform step and says what to report (not_done: wait for epoll; done; or
// done_and_exhausted: the socket is drained, so the next read waits for epoll first). A Reader may
// instead take the handler over at completion (redirected(), redirect()): TlsSocketStream does when
// OpenSSL wants to write during a read.
template <class Reader, class Handler, class IoExecutor>
class ReadOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadOp);

  ReadOp(Reader reader, boost::asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_executor)
      : ad::reactor_op(boost::system::error_code(), &ReadOp::doPerform, &ReadOp::doComplete),
        reader_(std::move(reader)),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_executor) {}

  static status doPerform(ad::reactor_op* base) {
    auto* op = static_cast<ReadOp*>(base);
    return op->reader_.perform(op->buffer_, op->ec_, op->bytes_transferred_);
  }

  static void doComplete(void* owner, ad::operation* base, const boost::system::error_code&, std::size_t) {
    auto* op = static_cast<ReadOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    ad::handler_work<Handler, IoExecutor> work(std::move(op->work_));
    if (op->reader_.redirected()) {
      Reader reader(std::move(op->reader_));
      boost::asio::mutable_buffer buffer = op->buffer_;
      Handler handler(std::move(op->handler_));
      p.h = std::addressof(handler);
      p.reset();
      if (owner) reader.redirect(buffer, std::move(handler));
      return;
    }
    // The handler is moved out before the operation's memory is freed (it may own that memory).
    ad::binder2<Handler, boost::system::error_code, std::size_t> bound(op->handler_, op->ec_, op->bytes_transferred_);
    p.h = std::addressof(bound.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block fence(ad::fenced_block::half);
      work.complete(bound, bound.handler_);
    }
  }

 private:
  Reader reader_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

// DrainAwareSocket's Reader: one recv, reported exhausted when it got less than it asked for.
struct RecvReader {
  ad::socket_type socket;
  ad::reactor_op::status perform(boost::asio::mutable_buffer buffer, boost::system::error_code& ec, std::size_t& n) {
    if (!ad::socket_ops::non_blocking_recv1(socket, buffer.data(), buffer.size(), 0, true, ec, n)) {
      return ad::reactor_op::not_done;  // EAGAIN: wait for epoll
    }
    return ec || n < buffer.size() ? ad::reactor_op::done_and_exhausted : ad::reactor_op::done;
  }
  bool redirected() const { return false; }
  template <class Handler>
  void redirect(boost::asio::mutable_buffer, Handler&&) {}
};

// Per-operation cancellation (a coroutine's cancellation slot), as Asio's own socket reads have it.
class ReadCancellation {
 public:
  ReadCancellation(ad::epoll_reactor* reactor, ad::epoll_reactor::per_descriptor_data* data, ad::socket_type socket)
      : reactor_(reactor), data_(data), socket_(socket) {}
  void operator()(boost::asio::cancellation_type_t type) {
    using boost::asio::cancellation_type;
    if (!!(type & (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total))) {
      reactor_->cancel_ops_by_key(socket_, *data_, ad::epoll_reactor::read_op, this);
    }
  }

 private:
  ad::epoll_reactor* reactor_;
  ad::epoll_reactor::per_descriptor_data* data_;
  ad::socket_type socket_;
};

// The reactor that serves `socket`. (A lookup under the context's service-registry lock: done once
// per DrainAwareSocket, which therefore lives as long as the connection it reads, not per read.)
inline ad::epoll_reactor& reactorOf(Socket& socket) {
  return boost::asio::use_service<ad::epoll_reactor>(SocketAccess::implOf(socket).get_service().context());
}

// Starts a ReadOp with `reader` on `socket` (served by `reactor`), as Asio starts its own reads: the
// reactor tries it at once unless the last read left the socket drained.
template <class Reader, class Handler>
void startRead(Socket& socket, ad::epoll_reactor& reactor, Reader reader, Handler&& handler, boost::asio::mutable_buffer buffer) {
  using HandlerType = std::decay_t<Handler>;
  auto& io_object = SocketAccess::implOf(socket);
  auto& impl = io_object.get_implementation();
  using IoExecutor = std::decay_t<decltype(io_object.get_executor())>;
  using Op = ReadOp<Reader, HandlerType, IoExecutor>;
  bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
  auto slot = boost::asio::get_associated_cancellation_slot(handler);

  typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
  p.p = new (p.v) Op(std::move(reader), buffer, handler, io_object.get_executor());
  if (slot.is_connected()) {
    p.p->cancellation_key_ = &slot.template emplace<ReadCancellation>(&reactor, &impl.reactor_data_, impl.socket_);
  }
  if (buffer.size() != 0 && ((impl.state_ & ad::socket_ops::non_blocking) ||
                             ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_))) {
    reactor.start_op(ad::epoll_reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation, true);
  } else {
    reactor.post_immediate_completion(p.p, is_continuation);  // nothing to read into, or the error set above
  }
  p.v = p.p = nullptr;
}

struct InitiateRead {
  Socket* socket;
  ad::epoll_reactor* reactor;

  template <class Handler>
  void operator()(Handler&& handler, boost::asio::mutable_buffer buffer) const {
    startRead(*socket, *reactor, RecvReader{socket->native_handle()}, std::forward<Handler>(handler), buffer);
  }
};
}  // namespace drain_detail
#endif

// An AsyncReadStream over a plain socket (which it does not own) whose reads skip the speculative
// recv after a read that emptied the socket. Writes go to the socket itself.
class DrainAwareSocket {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit DrainAwareSocket(boost::asio::ip::tcp::socket& socket)
      : socket_(&socket)
#ifdef MEDICUS_DRAIN_AWARE_READS
        ,
        reactor_(&drain_detail::reactorOf(socket))
#endif
  {
  }

  executor_type get_executor() { return socket_->get_executor(); }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
#ifdef MEDICUS_DRAIN_AWARE_READS
    // The first non-empty buffer, as Asio reads a single-buffer sequence (the gateway's are).
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        drain_detail::InitiateRead{socket_, reactor_}, token,
        drain_detail::ad::buffer_sequence_adapter<boost::asio::mutable_buffer, MutableBufferSequence>::first(buffers));
#else
    return socket_->async_read_some(buffers, std::forward<Token>(token));
#endif
  }

 private:
  boost::asio::ip::tcp::socket* socket_;
#ifdef MEDICUS_DRAIN_AWARE_READS
  drain_detail::ad::epoll_reactor* reactor_;
#endif
};

}  // namespace medicus::gateway
