#pragma once
// Helpers of the MLLP tests: a blocking loopback client and temporary folders.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "medicus/hl7v2/mllp_framer.h"

namespace medicus::gateway::mllp::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("medicus-mllp-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// A plain TCP client on 127.0.0.1 with a receive timeout.
class MllpTestClient {
 public:
  explicit MllpTestClient(uint16_t port, std::chrono::milliseconds receive_timeout = std::chrono::milliseconds(5000)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setTimeout(receive_timeout);
  }
  ~MllpTestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  MllpTestClient(const MllpTestClient&) = delete;
  MllpTestClient& operator=(const MllpTestClient&) = delete;

  bool connected() const { return connected_; }
  void setTimeout(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool sendRaw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool sendMessage(std::string_view er7) { return sendRaw(hl7v2::encodeMllpFrame(er7)); }

  // The next ACK payload, or nullopt on timeout or when the server closed the connection
  // (`closed` tells which).
  std::optional<std::string> receiveFrame() {
    for (;;) {
      if (auto item = decoder_.next()) {
        if (*item) return std::move(**item);
        continue;
      }
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n == 0) {
        closed_ = true;
        return std::nullopt;
      }
      if (n < 0) {
        // A reset (the server closed with our bytes unread) is a close too; a timeout is not.
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) closed_ = true;
        return std::nullopt;
      }
      decoder_.feed(std::string_view(buffer, static_cast<size_t>(n)));
    }
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  hl7v2::MllpDecoder decoder_;
};

// An ADT^A01 with CR terminators.
inline std::string adtMessage(const std::string& control_id, const std::string& patient = "4711",
                              const std::string& extra_msh = "") {
  return "MSH|^~\\&|KIS|KLINIKUM|GW|MEDICUS|20261122101500||ADT^A01^ADT_A01|" + control_id + "|P|2.5" + extra_msh +
         "\rEVN|A01|20261122101500\rPID|1||" + patient + "^^^KLINIKUM^PI||Müller^Jürgen||19700101|M\r";
}

// MSA-1 of an ACK payload ("AA"), or "" when there is none.
inline std::string msaCode(const std::string& ack) {
  auto pos = ack.find("\rMSA|");
  if (pos == std::string::npos) return {};
  return ack.substr(pos + 5, 2);
}

}  // namespace medicus::gateway::mllp::testing
