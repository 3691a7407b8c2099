// Fuzz target: charset decoding, ER7 parsing, every accessor and the encoder must survive any bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "medicus/hl7v2/ack.h"
#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"

using namespace medicus::hl7v2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)decodeToUtf8(bytes, CharsetPolicy{CharsetPolicy::Mode::kTrustMsh18, Charset::kLatin1});
  (void)parseBatch(bytes);
  for (std::string_view part : splitMessages(bytes)) (void)parseMessage(part);
  auto message = parseMessage(bytes);
  if (!message) {
    (void)buildAckWithoutOriginal(AckParams{AckCode::kAR, "1", "1", {AckError::fromError(message.error())}});
    return 0;
  }
  for (std::size_t i = 0; i < message->segmentCount(); ++i) {
    SegmentView segment = message->segment(i);
    for (int f = 1; f <= segment.fieldCount() && f < 30; ++f) {
      Location location{std::string(segment.id()), 0, static_cast<int>(i), f, 1, 1, 1};
      (void)message->get(location);
      (void)message->repetitionCount(location);
      (void)message->isExplicitNull(location);
    }
  }
  const std::string encoded = encode(*message);
  auto again = parseMessage(encoded);
  if (!again || encode(*again) != encoded) __builtin_trap();  // encoding must be stable
  (void)buildAck(*message, AckParams{AckCode::kAE, "1", "1"});
  (void)planAcks(*message, true, false);
  return 0;
}
