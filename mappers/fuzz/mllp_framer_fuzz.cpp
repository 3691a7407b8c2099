// Fuzz target: the MLLP decoder with a small frame limit, fed the input in uneven chunks; the
// frames must not depend on the chunking.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "medicus/hl7v2/mllp_framer.h"

using namespace medicus::hl7v2;

namespace {
std::vector<std::string> frames(std::string_view bytes, std::size_t chunk) {
  MllpDecoder decoder(MllpDecoderOptions{64});
  std::vector<std::string> out;
  for (std::size_t i = 0; i < bytes.size(); i += chunk) {
    decoder.feed(bytes.substr(i, chunk));
    while (auto item = decoder.next()) {
      if (*item) out.push_back(std::move(**item));
      else (void)item->error().describe();
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto whole = frames(bytes, bytes.size() + 1);
  if (frames(bytes, 1) != whole || frames(bytes, 7) != whole) __builtin_trap();
  for (const std::string& frame : whole) {
    if (frame.size() > 64) __builtin_trap();
    MllpDecoder again;
    again.feed(encodeMllpFrame(frame));
    auto item = again.next();
    if (!item || !*item || **item != frame) __builtin_trap();
  }
  return 0;
}
