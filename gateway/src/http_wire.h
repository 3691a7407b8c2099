#pragma once
// Writing an HTTP/1.1 message in one gather write: the start line and the header fields, exactly as
// the message holds them, go into one reused string and the body is sent from where it lies.
// Beast's serializer produces the same bytes but walks a deep view of one buffer per field piece
// on every partial write; for a proxy that writes two small messages per request that walk was a
// quarter of the gateway's instructions (callgrind). Chunked messages still go through Beast.
// Private to gateway/src: includes Beast.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "drain_aware_socket.h"
#include "passed_reply.h"
#include "tls_socket_stream.h"

namespace medicus::gateway {

namespace http_wire_detail {
// (string_view literals: appending a plain literal would run strlen on every piece.)
using namespace std::string_view_literals;
inline void appendVersion(std::string& out, unsigned version) {
  char text[8] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + version / 10 % 10), '.', static_cast<char>('0' + version % 10)};
  out.append(text, sizeof text);
}
inline void appendFields(std::string& out, const boost::beast::http::fields& fields) {
  for (const auto& field : fields) {
    std::string_view name = field.name_string();
    std::string_view value = field.value();
    out.append(name.data(), name.size());
    out += ": "sv;
    out.append(value.data(), value.size());
    out += "\r\n"sv;
  }
  out += "\r\n"sv;
}
}  // namespace http_wire_detail

// "GET /target HTTP/1.1\r\n" + fields + "\r\n"
inline void appendHead(std::string& out, const boost::beast::http::request<boost::beast::http::string_body>& request) {
  using namespace std::string_view_literals;
  std::string_view method = request.method_string();
  std::string_view target = request.target();
  out.append(method.data(), method.size());
  out += ' ';
  out.append(target.data(), target.size());
  out += ' ';
  http_wire_detail::appendVersion(out, request.version());
  out += "\r\n"sv;
  http_wire_detail::appendFields(out, request);
}

// "HTTP/1.1 200 OK\r\n" + fields + "\r\n" (the reason phrase as stored, else the standard one)
inline void appendHead(std::string& out, const boost::beast::http::response<boost::beast::http::string_body>& response) {
  PassedReply::appendStatusLine(out, response.version(), response.result_int(), response.reason());
  http_wire_detail::appendFields(out, response);
}

// What a connection is read from: a plain connection's socket itself, through DrainAwareSocket
// (beast::tcp_stream wraps each read in its timer bookkeeping, unused in the gateway: a LazyDeadline
// closes the socket), else the stream (TLS). Bind the result to `auto&&`: a value for plain
// connections, a reference otherwise.
template <class Stream>
decltype(auto) readableOf(Stream& stream) {
  if constexpr (std::is_same_v<Stream, boost::beast::tcp_stream>) {
    return DrainAwareSocket(stream.socket());
  } else {
    return (stream);
  }
}

// The part of writing `head` and `body` that needs no waiting: a plain socket in non-blocking mode
// takes a whole small message at once, so it is written directly (an async write completes through a
// posted handler: one more trip round the event loop, and a coroutine frame). Returns the bytes
// written; `error` is set when the write failed (not for would_block). A TlsSocketStream writes the
// records the socket takes now; other streams write nothing here.
template <class Stream>
size_t writeNow(Stream& stream, const std::string& head, const std::string& body, boost::system::error_code& error) {
  if constexpr (std::is_same_v<Stream, boost::beast::tcp_stream>) {
    if (stream.socket().non_blocking()) {
      std::array<boost::asio::const_buffer, 2> buffers{boost::asio::buffer(head), boost::asio::buffer(body)};
      size_t written = stream.socket().write_some(buffers, error);
      if (error == boost::asio::error::would_block) error = {};
      return written;
    }
  } else if constexpr (std::is_same_v<Stream, TlsSocketStream>) {
    return stream.writeNow(head, body, error);
  }
  return 0;
}

// Writes what is left of `head` and `body` after the first `written` bytes. Returns the error and the
// bytes written in all, like http::async_write.
template <class Stream>
boost::asio::awaitable<std::tuple<boost::system::error_code, size_t>> writeRest(Stream& stream, const std::string& head,
                                                                                const std::string& body, size_t written) {
  constexpr auto use_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);
  std::array<boost::asio::const_buffer, 2> buffers{boost::asio::buffer(head), boost::asio::buffer(body)};
  boost::beast::buffers_suffix<std::array<boost::asio::const_buffer, 2>> rest(buffers);
  rest.consume(written);
  auto [error, rest_written] = co_await boost::asio::async_write(stream, rest, use_awaitable);
  co_return std::tuple{error, written + rest_written};
}

// Whether writeNow left nothing to do: all written, or failed.
inline bool writeIsComplete(size_t written, const std::string& head, const std::string& body,
                            const boost::system::error_code& error) {
  return error || written == head.size() + body.size();
}

// Writes `head` (request or status line and fields, ended by the blank line) and `body` to `stream`:
// writeNow, then writeRest for what is left. Returns the error and the bytes written, like
// http::async_write. The hot paths call the two steps themselves, so a write the socket takes at once
// costs no coroutine frame.
template <class Stream>
boost::asio::awaitable<std::tuple<boost::system::error_code, size_t>> writeHeadAndBody(Stream& stream,
                                                                                       const std::string& head,
                                                                                       const std::string& body) {
  boost::system::error_code error;
  size_t written = writeNow(stream, head, body, error);
  if (writeIsComplete(written, head, body, error)) co_return std::tuple{error, written};
  co_return co_await writeRest(stream, head, body, written);
}

// Writes `message` (head and body) to `stream`; `scratch` is a per-connection string whose capacity
// is kept between messages. Returns the error and the bytes written, like http::async_write. (Not a
// coroutine itself: no second frame per message.)
template <class Stream, bool isRequest>
boost::asio::awaitable<std::tuple<boost::system::error_code, size_t>> writeMessage(
    Stream& stream, boost::beast::http::message<isRequest, boost::beast::http::string_body>& message,
    std::string& scratch) {
  if (message.chunked()) {
    return boost::beast::http::async_write(stream, message, boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  scratch.clear();
  appendHead(scratch, message);
  return writeHeadAndBody(stream, scratch, message.body());
}

}  // namespace medicus::gateway
