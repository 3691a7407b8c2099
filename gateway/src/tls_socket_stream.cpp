#include "tls_socket_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <sys/socket.h>

namespace medicus::gateway {

namespace {
namespace asio = boost::asio;
using SocketState = TlsSocketStream::SocketState;

SocketState& stateOf(BIO* bio) { return *static_cast<SocketState*>(BIO_get_data(bio)); }

bool wouldBlock(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

int socketRead(BIO* bio, char* into, int size) {
  SocketState& state = stateOf(bio);
  BIO_clear_retry_flags(bio);
  ssize_t n = ::recv(state.fd, into, static_cast<size_t>(size), 0);
  if (n >= 0) {
    state.drained = n < size;
    state.eof = n == 0 && size > 0;
    return static_cast<int>(n);
  }
  if (wouldBlock(errno)) {
    state.drained = true;
    BIO_set_retry_read(bio);
  } else {
    state.last_errno = errno;
  }
  return -1;
}

int socketWrite(BIO* bio, const char* from, int size) {
  SocketState& state = stateOf(bio);
  BIO_clear_retry_flags(bio);
  ssize_t n = ::send(state.fd, from, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  if (wouldBlock(errno)) {
    BIO_set_retry_write(bio);
  } else {
    state.last_errno = errno;
  }
  return -1;
}

long socketControl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
    case BIO_CTRL_EOF: return stateOf(bio).eof ? 1 : 0;  // tells OpenSSL a peer's close from an error
    default: return 0;
  }
}

int socketCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// Made once, kept for the process (OpenSSL's own methods live as long).
BIO_METHOD* socketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "medicus socket");
    if (!m || !BIO_meth_set_read(m, socketRead) || !BIO_meth_set_write(m, socketWrite) ||
        !BIO_meth_set_ctrl(m, socketControl) || !BIO_meth_set_create(m, socketCreate)) {
      throw std::runtime_error("cannot make the TLS socket BIO");
    }
    return m;
  }();
  return method;
}
}  // namespace

TlsSocketStream::TlsSocketStream(boost::asio::ip::tcp::socket& socket, SSL_CTX* context, Role role)
    : socket_(&socket)
#ifdef MEDICUS_DRAIN_AWARE_READS
      ,
      reactor_(&drain_detail::reactorOf(socket))
#endif
{
  ssl_ = SSL_new(context);
  BIO* bio = ssl_ ? BIO_new(socketMethod()) : nullptr;
  if (!bio) {
    SSL_free(ssl_);
    throw std::runtime_error("cannot make a TLS connection (out of memory)");
  }
  BIO_set_data(bio, &socket_state_);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_
  // Partial writes: a write reports each record as it is sent. Moving buffer: a retried write may pass
  // the same bytes from another address (chunkOf). Read ahead: one recv takes all that arrived.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(ssl_, 1);
  if (role == Role::Server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsSocketStream::~TlsSocketStream() { SSL_free(ssl_); }

bool TlsSocketStream::readShouldWaitFirst() const { return socket_state_.drained && !SSL_has_pending(ssl_); }

// Before each OpenSSL call: the socket's descriptor now (-1 once closed, as a deadline does; a number
// kept from before could name another connection's socket by then), and no stale errors.
void TlsSocketStream::prepareCall() {
  socket_state_.fd = socket_->native_handle();
  socket_state_.last_errno = 0;
  ERR_clear_error();
}

TlsSocketStream::Next TlsSocketStream::tryRead(asio::mutable_buffer into, size_t& result, boost::system::error_code& error) {
  prepareCall();
  size_t n = 0;
  int r = SSL_read_ex(ssl_, into.data(), into.size(), &n);
  if (r == 1) {
    result = n;
    return Next::Done;
  }
  return nextAfter(r, error);
}

TlsSocketStream::Next TlsSocketStream::tryWrite(asio::const_buffer from, size_t& result, boost::system::error_code& error) {
  prepareCall();
  size_t n = 0;
  int r = SSL_write_ex(ssl_, from.data(), from.size(), &n);
  if (r == 1) {
    result = n;
    return Next::Done;
  }
  return nextAfter(r, error);
}

// Errors as asio::ssl::stream reports them, so the session tells a closed connection from a bad one.
TlsSocketStream::Next TlsSocketStream::nextAfter(int ssl_result, boost::system::error_code& error) {
  switch (SSL_get_error(ssl_, ssl_result)) {
    case SSL_ERROR_WANT_READ: return Next::WaitRead;
    case SSL_ERROR_WANT_WRITE: return Next::WaitWrite;
    case SSL_ERROR_ZERO_RETURN: error = asio::error::eof; return Next::Done;  // the peer's close_notify
    case SSL_ERROR_SYSCALL:
      failed_ = true;
      error = socket_state_.last_errno ? boost::system::error_code(socket_state_.last_errno, boost::system::system_category())
                                       : boost::system::error_code(asio::ssl::error::stream_truncated);
      return Next::Done;
    default: {
      failed_ = true;
      unsigned long code = ERR_get_error();
      if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        error = asio::ssl::error::stream_truncated;  // closed without close_notify
      } else {
        error = boost::system::error_code(static_cast<int>(code), asio::error::get_ssl_category());
        if (!error) error = asio::ssl::error::unspecified_system_error;
      }
      ERR_clear_error();
      return Next::Done;
    }
  }
}

asio::awaitable<boost::system::error_code> TlsSocketStream::handshake() {
  constexpr auto use_awaitable = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    prepareCall();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) co_return boost::system::error_code();
    boost::system::error_code error;
    Next next = nextAfter(r, error);
    if (next == Next::Done) co_return error ? error : boost::system::error_code(asio::ssl::error::unspecified_system_error);
    auto [wait_error] = co_await socket_->async_wait(
        next == Next::WaitRead ? asio::ip::tcp::socket::wait_read : asio::ip::tcp::socket::wait_write, use_awaitable);
    if (wait_error) co_return wait_error;
  }
}

void TlsSocketStream::shutdownNow() {
  // (OpenSSL forbids SSL_shutdown after a fatal error.)
  if (failed_ || !SSL_is_init_finished(ssl_) || !socket_->is_open()) return;
  prepareCall();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

size_t TlsSocketStream::writeNow(const std::string& head, const std::string& body, boost::system::error_code& error) {
  size_t total = head.size() + body.size();
  size_t written = 0;
  while (written < total) {
    // What is left, as writeRest's buffers_suffix shows it to async_write_some.
    std::array<asio::const_buffer, 2> rest{asio::buffer(head) + written,
                                           asio::buffer(body) + (written > head.size() ? written - head.size() : 0)};
    size_t n = 0;
    if (tryWrite(chunkOf(rest), n, error) != Next::Done || error) return written;
    written += n;
  }
  return written;
}

}  // namespace medicus::gateway
