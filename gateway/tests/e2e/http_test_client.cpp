#include "e2e/http_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <chrono>

namespace medicus::gateway::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

void setTimeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

template <class Stream>
HttpReply exchange(Stream& stream, const std::string& method, const std::string& target, int port,
                   const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
  HttpReply reply;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) {
    reply.error = "write: " + ec.message();
    return reply;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256u << 20);
  if (method == "HEAD") parser.skip(true);
  http::read(stream, buffer, parser, ec);
  if (ec) {
    reply.error = "read: " + ec.message();
    return reply;
  }
  auto res = parser.release();
  reply.ok = true;
  reply.status = res.result_int();
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    reply.headers[name] = std::string(field.value());
  }
  reply.body = std::move(res.body());
  return reply;
}

}  // namespace

HttpReply httpRequest(int port, const std::string& method, const std::string& target,
                      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                      const TlsClientOptions& tls) {
  HttpReply reply;
  try {
    asio::io_context ioc;
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    if (!tls.enabled) {
      tcp::socket socket(ioc);
      socket.connect(endpoint);
      setTimeouts(socket.native_handle());
      return exchange(socket, method, target, port, headers, body);
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (!tls.ca_file.empty()) {
      ctx.load_verify_file(tls.ca_file);
      ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
      ctx.set_verify_mode(asio::ssl::verify_none);
    }
    if (!tls.certificate_file.empty()) {
      ctx.use_certificate_chain_file(tls.certificate_file);
      ctx.use_private_key_file(tls.private_key_file, asio::ssl::context::pem);
    }
    asio::ssl::stream<tcp::socket> stream(ioc, ctx);
    stream.next_layer().connect(endpoint);
    setTimeouts(stream.next_layer().native_handle());
    beast::error_code ec;
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      reply.error = "handshake: " + ec.message();
      return reply;
    }
    return exchange(stream, method, target, port, headers, body);
  } catch (const std::exception& e) {
    reply.error = e.what();
    return reply;
  }
}

int connectLoopback(int port, int receive_buffer) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

long trickleUntilClosed(int port, const std::string& bytes, int pause_ms, const std::string& sent_first) {
  int fd = connectLoopback(port);
  if (fd < 0) return 0;
  if (!sent_first.empty() && send(fd, sent_first.data(), sent_first.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(sent_first.size())) {
    close(fd);
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  long closed_after = -1;
  for (char c : bytes) {
    // Closed (EOF or reset) by the server?
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, pause_ms) > 0) {
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_after = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - start).count());
        break;
      }
    }
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed_after = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start).count());
      break;
    }
  }
  close(fd);
  return closed_after;
}

}  // namespace medicus::gateway::test
