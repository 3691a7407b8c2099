#include <catch2/catch.hpp>

#include <vector>

#include "medicus/hl7v2/mllp_framer.h"

using namespace medicus::hl7v2;

namespace {
struct Drained {
  std::vector<std::string> frames;
  std::vector<MllpError> errors;
};
Drained drain(MllpDecoder& decoder) {
  Drained out;
  while (auto item = decoder.next()) {
    if (*item) out.frames.push_back(**item);
    else out.errors.push_back(item->error());
  }
  return out;
}
}  // namespace

TEST_CASE("MLLP: encode and decode frames", "[hl7v2][mllp]") {
  CHECK(encodeMllpFrame("MSH|x") == "\x0BMSH|x\x1C\r");
  MllpDecoder decoder;
  decoder.feed(encodeMllpFrame("one") + encodeMllpFrame("two") + encodeMllpFrame(""));
  Drained d = drain(decoder);
  CHECK(d.frames == std::vector<std::string>{"one", "two", ""});
  CHECK(d.errors.empty());
  CHECK_FALSE(decoder.insideFrame());
}

TEST_CASE("MLLP: any chunking gives the same frames", "[hl7v2][mllp]") {
  const std::string stream = encodeMllpFrame("MSH|^~\\&|A\rPID|1\r") + "\r\n" + encodeMllpFrame("second");
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    MllpDecoder decoder;
    std::vector<std::string> frames;
    for (std::size_t i = 0; i < stream.size(); i += chunk) {
      decoder.feed(std::string_view(stream).substr(i, chunk));
      for (auto& f : drain(decoder).frames) frames.push_back(f);
    }
    REQUIRE(frames == std::vector<std::string>{"MSH|^~\\&|A\rPID|1\r", "second"});
  }
}

TEST_CASE("MLLP: garbage between frames is skipped and reported", "[hl7v2][mllp]") {
  MllpDecoder decoder;
  decoder.feed("junk" + encodeMllpFrame("ok") + "xx");
  decoder.feed(encodeMllpFrame("ok2"));
  Drained d = drain(decoder);
  CHECK(d.frames == std::vector<std::string>{"ok", "ok2"});
  REQUIRE(d.errors.size() == 2);
  CHECK(d.errors[0].kind == MllpError::Kind::kGarbageBetweenFrames);
  CHECK(d.errors[0].stream_offset == 0);
  CHECK(d.errors[0].discarded_bytes == 4);
  CHECK(d.errors[1].stream_offset == 9);
  CHECK(d.errors[1].discarded_bytes == 2);
  CHECK(d.errors[1].describe().find("skipped") != std::string::npos);
}

TEST_CASE("MLLP: oversized frames are dropped with a clear error, then decoding resumes", "[hl7v2][mllp]") {
  MllpDecoder decoder(MllpDecoderOptions{8});
  decoder.feed(encodeMllpFrame("12345678"));  // exactly the limit
  decoder.feed("\x0B" "0123456789");
  decoder.feed("more bytes of the huge frame");
  CHECK(decoder.bufferedBytes() == 0);  // nothing is kept for the dropped frame
  decoder.feed("\x1C\r" + encodeMllpFrame("small"));
  Drained d = drain(decoder);
  CHECK(d.frames == std::vector<std::string>{"12345678", "small"});
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].kind == MllpError::Kind::kFrameTooLarge);
  CHECK(d.errors[0].stream_offset == 11);
}

TEST_CASE("MLLP: a VT inside a frame restarts it; FS without CR still ends it", "[hl7v2][mllp]") {
  MllpDecoder decoder;
  decoder.feed("\x0B" "lost" "\x0B" "kept\x1C" "\x0B" "next\x1C\r");
  Drained d = drain(decoder);
  CHECK(d.frames == std::vector<std::string>{"kept", "next"});
  REQUIRE(d.errors.size() == 1);
  CHECK(d.errors[0].kind == MllpError::Kind::kFrameRestarted);
  MllpDecoder partial;
  partial.feed("\x0B" "half");
  CHECK(partial.insideFrame());
  CHECK_FALSE(partial.next());
}
