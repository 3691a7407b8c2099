#pragma once
// MLLP listeners (TCP, or TLS with optional client certificates) that store every accepted HL7 v2
// message durably before acknowledging it. Asio stays inside mllp_server.cpp.
//
// Per connection: frames are read with MllpDecoder (size limit), each frame is handled by
// MllpMessageHandler, stored through the MessageStore and answered after the store's commit.
// Timeouts: an unfinished frame must be complete within read_timeout (slow or stuck senders); a
// connection without any frame for idle_timeout is closed; every write must finish in write_timeout.
// An oversized frame is answered with AR (207) and the connection closed.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/gateway/config.h"
#include "medicus/gateway/store/message_store.h"
#include "mllp/intake_metrics.h"
#include "mllp/mllp_message_handler.h"

namespace medicus::gateway::mllp {

struct MllpListenerConfig {
  MllpListenerPolicy policy;  // policy.listener_name names the listener
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (tests)
  std::optional<ServerTlsConfig> tls;
  size_t max_message_bytes = 4u << 20;
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{600'000};
  std::chrono::milliseconds write_timeout{30'000};
};

class MllpServer {
 public:
  using LogSink = std::function<void(std::string_view line)>;

  // `store` and `metrics` must outlive the server.
  MllpServer(std::vector<MllpListenerConfig> listeners, store::MessageStore& store, IntakeMetrics& metrics,
             LogSink log = {}, unsigned threads = 1);
  ~MllpServer();  // stops
  MllpServer(const MllpServer&) = delete;
  MllpServer& operator=(const MllpServer&) = delete;

  // Binds every listener and starts the threads. Throws std::runtime_error (address in use,
  // unreadable certificate) with a message saying what to fix.
  void start();
  uint16_t port(std::string_view listener_name) const;
  // SIGHUP: the listeners of the same name take the new policies (charset policy and senders, accepted
  // versions and message types, delivery route) for every frame from now on, also on open connections.
  // The TLS files are read again for connections accepted from now on (the running ones stay when they do
  // not load). Address, port, TLS on or off, size limits and timeouts need a restart: returns a note for
  // each such change (and for added or removed listeners), to be logged. Thread-safe.
  std::vector<std::string> updatePolicies(const std::vector<MllpListenerConfig>& listeners);
  // Closes the listeners and connections and joins the threads.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::mllp
