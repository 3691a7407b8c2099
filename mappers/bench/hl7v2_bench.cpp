// ER7 parse throughput over every shared HL7 v2 message, beside a same-run baseline: a bare scan of the
// same bytes counting segment and field separators. Results are checked against each other first.
//
//   hl7v2_bench [TESTDATA_DIR] [SECONDS_PER_RUN]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"
#include "bench_util.h"

namespace fs = std::filesystem;
using namespace medicus::hl7v2;
using medicus::bench::readFile;
using medicus::bench::unitsPerSecond;

namespace {

struct ScanCounts {
  std::size_t segments = 0;
  std::size_t field_separators = 0;
};

// Baseline: one pass counting non-empty lines and field separators.
ScanCounts bareScan(const std::string& text) {
  ScanCounts counts;
  const char fs = text.size() > 3 ? text[3] : '|';
  bool line_has_content = false;
  for (char c : text) {
    if (c == '\r' || c == '\n') {
      counts.segments += line_has_content;
      line_has_content = false;
    } else {
      line_has_content = true;
      counts.field_separators += c == fs;
    }
  }
  counts.segments += line_has_content;
  return counts;
}

ScanCounts parsedCounts(const Message& message) {
  ScanCounts counts;
  counts.segments = message.segmentCount();
  for (std::size_t i = 0; i < message.segmentCount(); ++i) {
    counts.field_separators += static_cast<std::size_t>(message.segment(i).fieldCount());
  }
  counts.field_separators -= 1;  // MSH-1 is the separator itself, counted as a field
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? fs::path(argv[1])
                                 : (std::getenv("MEDICUS_TESTDATA") ? fs::path(std::getenv("MEDICUS_TESTDATA"))
                                                                    : fs::path(MEDICUS_TESTDATA_DEFAULT));
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::vector<std::string> messages;
  for (const char* folder : {"hl7v2-hapi", "hl7v2-lfh-converter", "hl7v2-ms-fhir-converter", "hl7v2-nhapi/Parser"}) {
    if (!fs::is_directory(root / folder)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".hl7" && ext != ".txt")) continue;
      const std::string text = readFile(entry.path());
      for (std::string_view part : splitMessages(text)) {
        auto decoded = decodeToUtf8(part, CharsetPolicy{});
        if (decoded && parseMessage(decoded->utf8)) messages.push_back(std::move(decoded->utf8));
      }
    }
  }
  if (messages.empty()) {
    std::fprintf(stderr, "hl7v2_bench: no HL7 v2 messages under %s (set MEDICUS_TESTDATA)\n", root.c_str());
    return 1;
  }
  std::size_t total_bytes = 0;
  for (const auto& m : messages) total_bytes += m.size();

  // Verify: the parser sees exactly the segments and fields the bare scan counts.
  for (const auto& text : messages) {
    const ScanCounts scan = bareScan(text);
    const ScanCounts parsed = parsedCounts(*parseMessage(text));
    if (scan.segments != parsed.segments || scan.field_separators != parsed.field_separators) {
      std::fprintf(stderr, "hl7v2_bench: parser and scan disagree on a message starting %.40s\n", text.c_str());
      return 1;
    }
  }

  std::size_t sink = 0;
  const double scan_mbs = unitsPerSecond(seconds, total_bytes, [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += bareScan(text).field_separators;
    return n;
  }, sink) / 1e6;  // MB/s
  const double parse_mbs = unitsPerSecond(seconds, total_bytes, [&] {
    std::size_t n = 0;
    for (const auto& text : messages) {
      auto message = parseMessage(text);
      n += message->segmentCount() + message->controlId().size();
    }
    return n;
  }, sink) / 1e6;  // MB/s
  std::printf("messages: %zu, bytes: %zu (checksum %zu)\n", messages.size(), total_bytes, sink % 10);
  std::printf("baseline bare scan (count separators): %8.1f MB/s\n", scan_mbs);
  std::printf("ER7 parse (index + MSH-10 decode):     %8.1f MB/s\n", parse_mbs);
  std::printf("parse / baseline: %.2f\n", parse_mbs / scan_mbs);
  return 0;
}
