#include "mllp/intake_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>

namespace medicus::gateway::mllp {

struct IntakeMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& messages =
      prometheus::BuildCounter().Name("medicus_hl7v2_messages_total").Help("HL7 v2 messages received over MLLP, by outcome").Register(*registry);
  prometheus::Family<prometheus::Counter>& frame_errors =
      prometheus::BuildCounter().Name("medicus_hl7v2_frame_errors_total").Help("MLLP framing problems and dropped connections").Register(*registry);
  prometheus::Family<prometheus::Counter>& connections =
      prometheus::BuildCounter().Name("medicus_hl7v2_connections_total").Help("MLLP connections accepted").Register(*registry);
  prometheus::Family<prometheus::Gauge>& open_connections =
      prometheus::BuildGauge().Name("medicus_hl7v2_open_connections").Help("MLLP connections open now").Register(*registry);
  prometheus::Family<prometheus::Counter>& deliveries =
      prometheus::BuildCounter().Name("medicus_hl7v2_delivery_attempts_total").Help("Delivery attempts to FHIR upstreams, by result").Register(*registry);
  prometheus::Family<prometheus::Counter>& retries =
      prometheus::BuildCounter().Name("medicus_hl7v2_delivery_retries_total").Help("Failed deliveries scheduled again with backoff").Register(*registry);
  prometheus::Family<prometheus::Counter>& dead_letters =
      prometheus::BuildCounter().Name("medicus_hl7v2_delivery_dead_letters_total").Help("Messages moved to the dead-letter state").Register(*registry);
  prometheus::Family<prometheus::Gauge>& queue =
      prometheus::BuildGauge().Name("medicus_hl7v2_queue_messages").Help("Stored messages by delivery state").Register(*registry);
  prometheus::Family<prometheus::Gauge>& oldest =
      prometheus::BuildGauge().Name("medicus_hl7v2_oldest_pending_age_seconds").Help("Age of the oldest undelivered message (0 when none)").Register(*registry);
};

IntakeMetrics::IntakeMetrics() : impl_(std::make_unique<Impl>()) {}
IntakeMetrics::~IntakeMetrics() = default;

void IntakeMetrics::countMessage(std::string_view listener, std::string_view outcome) {
  impl_->messages.Add({{"listener", std::string(listener)}, {"outcome", std::string(outcome)}}).Increment();
}
void IntakeMetrics::countFrameError(std::string_view listener, std::string_view kind) {
  impl_->frame_errors.Add({{"listener", std::string(listener)}, {"kind", std::string(kind)}}).Increment();
}
void IntakeMetrics::connectionOpened(std::string_view listener) {
  impl_->connections.Add({{"listener", std::string(listener)}}).Increment();
  impl_->open_connections.Add({{"listener", std::string(listener)}}).Increment();
}
void IntakeMetrics::connectionClosed(std::string_view listener) {
  impl_->open_connections.Add({{"listener", std::string(listener)}}).Decrement();
}
void IntakeMetrics::countDelivery(std::string_view route, std::string_view result) {
  impl_->deliveries.Add({{"route", std::string(route)}, {"result", std::string(result)}}).Increment();
  if (result == "retry") impl_->retries.Add({{"route", std::string(route)}}).Increment();
  if (result == "dead_letter") impl_->dead_letters.Add({{"route", std::string(route)}}).Increment();
}
void IntakeMetrics::setQueue(const store::QueueStats& stats, store::UnixMillis now) {
  impl_->queue.Add({{"state", "pending"}}).Set(static_cast<double>(stats.pending));
  impl_->queue.Add({{"state", "in_flight"}}).Set(static_cast<double>(stats.in_flight));
  impl_->queue.Add({{"state", "delivered"}}).Set(static_cast<double>(stats.delivered));
  impl_->queue.Add({{"state", "dead"}}).Set(static_cast<double>(stats.dead));
  double age = stats.oldest_pending_received_at ? static_cast<double>(now - *stats.oldest_pending_received_at) / 1000.0 : 0.0;
  impl_->oldest.Add({}).Set(age < 0 ? 0 : age);
}

double IntakeMetrics::messageCount(std::string_view listener, std::string_view outcome) const {
  return impl_->messages.Add({{"listener", std::string(listener)}, {"outcome", std::string(outcome)}}).Value();
}
double IntakeMetrics::frameErrorCount(std::string_view listener, std::string_view kind) const {
  return impl_->frame_errors.Add({{"listener", std::string(listener)}, {"kind", std::string(kind)}}).Value();
}

std::string IntakeMetrics::renderText() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace medicus::gateway::mllp
