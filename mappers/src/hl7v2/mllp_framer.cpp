#include "medicus/hl7v2/mllp_framer.h"

namespace medicus::hl7v2 {

std::string MllpError::describe() const {
  std::string where = " at stream byte " + std::to_string(stream_offset) + " (" + std::to_string(discarded_bytes) +
                      " bytes discarded)";
  switch (kind) {
    case Kind::kGarbageBetweenFrames: return "MLLP: bytes outside a VT...FS CR frame were skipped" + where;
    case Kind::kFrameTooLarge: return "MLLP: frame larger than the configured maximum was dropped" + where;
    case Kind::kFrameRestarted: return "MLLP: a new frame started (VT) before the previous one ended (FS CR); the "
                                       "unfinished frame was dropped" + where;
  }
  return "MLLP error" + where;
}

void MllpDecoder::emitGarbage() {
  if (garbage_bytes_ == 0) return;
  ready_.push_back(tl::unexpected(MllpError{MllpError::Kind::kGarbageBetweenFrames, garbage_start_, garbage_bytes_}));
  garbage_bytes_ = 0;
}

void MllpDecoder::feed(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const char c = bytes[i];
    switch (state_) {
      case State::kIdle:
        if (c == kMllpStartBlock) {
          emitGarbage();
          state_ = State::kInFrame;
          frame_start_ = offset_ + i;
          current_.clear();
        } else if (c == kMllpCarriageReturn || c == '\n') {
          // Line breaks between frames (FS CR LF senders) are tolerated silently.
        } else if (garbage_bytes_++ == 0) {
          garbage_start_ = offset_ + i;
        }
        ++i;
        break;
      case State::kInFrame: {
        // Copy the run of ordinary bytes at once.
        std::size_t run = i;
        while (run < bytes.size() && bytes[run] != kMllpEndBlock && bytes[run] != kMllpStartBlock) ++run;
        const std::size_t room = options_.max_frame_bytes - current_.size();
        if (run - i > room) {
          ready_.push_back(tl::unexpected(
              MllpError{MllpError::Kind::kFrameTooLarge, frame_start_, current_.size() + 1 + (run - i)}));
          current_.clear();
          current_.shrink_to_fit();
          state_ = State::kDiscarding;
          i = run;
          break;
        }
        current_.append(bytes.substr(i, run - i));
        i = run;
        if (i == bytes.size()) break;
        if (bytes[i] == kMllpStartBlock) {
          ready_.push_back(tl::unexpected(
              MllpError{MllpError::Kind::kFrameRestarted, frame_start_, current_.size() + 1}));
          current_.clear();
          frame_start_ = offset_ + i;
        } else {
          state_ = State::kAfterEndBlock;
        }
        ++i;
        break;
      }
      case State::kAfterEndBlock:
        ready_.push_back(std::move(current_));
        current_ = std::string();
        state_ = State::kIdle;
        if (c == kMllpCarriageReturn) ++i;  // otherwise re-read the byte in kIdle
        break;
      case State::kDiscarding:
        if (c == kMllpEndBlock) {
          state_ = State::kDiscardingAfterEndBlock;
        } else if (c == kMllpStartBlock) {
          state_ = State::kIdle;  // the oversized frame never ended; re-read VT as a new start
          break;
        }
        ++i;
        break;
      case State::kDiscardingAfterEndBlock:
        state_ = State::kIdle;
        if (c == kMllpCarriageReturn) ++i;
        break;
    }
  }
  offset_ += bytes.size();
}

std::optional<tl::expected<std::string, MllpError>> MllpDecoder::next() {
  if (ready_.empty()) return std::nullopt;
  auto item = std::move(ready_.front());
  ready_.pop_front();
  return item;
}

std::string encodeMllpFrame(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 3);
  out += kMllpStartBlock;
  out.append(payload);
  out += kMllpEndBlock;
  out += kMllpCarriageReturn;
  return out;
}

}  // namespace medicus::hl7v2
