#pragma once
// Prometheus metrics of the HL7 v2 intake (MLLP listeners, store, delivery), in their own
// prometheus-cpp registry: the gateway's GatewayMetrics does not expose its registry, so the serve
// command appends renderText() to the gateway's /metrics text. Thread-safe.
#include <memory>
#include <string>
#include <string_view>

#include "medicus/gateway/store/message_store.h"

namespace medicus::gateway::mllp {

class IntakeMetrics {
 public:
  IntakeMetrics();
  ~IntakeMetrics();

  // medicus_hl7v2_messages_total{listener,outcome}: accepted, duplicate, content_error, rejected, store_failed.
  void countMessage(std::string_view listener, std::string_view outcome);
  // medicus_hl7v2_frame_errors_total{listener,kind}: garbage, too_large, restarted, read_timeout, internal.
  void countFrameError(std::string_view listener, std::string_view kind);
  void connectionOpened(std::string_view listener);
  void connectionClosed(std::string_view listener);
  // medicus_hl7v2_delivery_attempts_total{route,result}: delivered, retry, dead_letter; plus the two totals the
  // issue asks for by name: medicus_hl7v2_delivery_retries_total and medicus_hl7v2_delivery_dead_letters_total.
  void countDelivery(std::string_view route, std::string_view result);
  // medicus_hl7v2_queue_messages{state} and medicus_hl7v2_oldest_pending_age_seconds from the store.
  void setQueue(const store::QueueStats& stats, store::UnixMillis now);

  double messageCount(std::string_view listener, std::string_view outcome) const;  // test hook
  double frameErrorCount(std::string_view listener, std::string_view kind) const;  // test hook

  std::string renderText() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medicus::gateway::mllp
