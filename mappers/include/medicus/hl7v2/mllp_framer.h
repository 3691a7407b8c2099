#pragma once
// MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): each message travels as
// <VT 0x0B> payload <FS 0x1C><CR 0x0D>. No sockets here: the listener feeds received bytes and writes
// encoded frames itself.
//
//   MllpDecoder decoder({.max_frame_bytes = 1 << 20});
//   decoder.feed(chunk);                     // any chunking, even byte by byte
//   while (auto item = decoder.next()) {
//     if (*item) handle(std::move(**item));  // payload bytes between VT and FS
//     else log(item->error().describe());    // garbage skipped or frame too large; decoding goes on
//   }

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace medicus::hl7v2 {

inline constexpr char kMllpStartBlock = '\x0B';
inline constexpr char kMllpEndBlock = '\x1C';
inline constexpr char kMllpCarriageReturn = '\x0D';

struct MllpError {
  enum class Kind {
    kGarbageBetweenFrames,  // bytes outside a frame were skipped (resynchronised at the next VT)
    kFrameTooLarge,         // a frame exceeded max_frame_bytes; it was dropped up to its FS
    kFrameRestarted,        // a VT arrived inside a frame; the unfinished frame was dropped
  };
  Kind kind;
  std::size_t stream_offset = 0;    // offset in the whole stream where the problem started
  std::size_t discarded_bytes = 0;  // bytes thrown away when the error was raised (an oversized
                                    // frame keeps being skipped silently until its FS)
  std::string describe() const;
};

struct MllpDecoderOptions {
  std::size_t max_frame_bytes = 16 * 1024 * 1024;
};

// Incremental decoder. Memory stays bounded by max_frame_bytes plus the decoded frames not yet taken
// with next(). FS followed by something other than CR still ends the frame (lenient; some senders
// omit the CR); the byte after it is then read as the start of the next frame or garbage.
// CR and LF between frames are skipped silently; other bytes there are reported as garbage when the
// next frame starts.
class MllpDecoder {
 public:
  explicit MllpDecoder(MllpDecoderOptions options = {}) : options_(options) {}

  void feed(std::string_view bytes);
  // The next frame payload or error, in stream order; nullopt when more bytes are needed.
  std::optional<tl::expected<std::string, MllpError>> next();
  // True while a frame has started but not ended (a closing peer then lost data).
  bool insideFrame() const { return state_ != State::kIdle; }
  std::size_t bufferedBytes() const { return current_.size(); }

 private:
  enum class State { kIdle, kInFrame, kAfterEndBlock, kDiscarding, kDiscardingAfterEndBlock };
  void emitGarbage();
  MllpDecoderOptions options_;
  State state_ = State::kIdle;
  std::string current_;
  std::size_t offset_ = 0;  // stream offset of the next byte fed
  std::size_t frame_start_ = 0;
  std::size_t garbage_start_ = 0;
  std::size_t garbage_bytes_ = 0;
  std::deque<tl::expected<std::string, MllpError>> ready_;
};

// VT + payload + FS + CR.
std::string encodeMllpFrame(std::string_view payload);

}  // namespace medicus::hl7v2
