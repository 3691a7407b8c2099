// v2 -> FHIR mapping throughput (messages/s) with the shipped maps over the shared ADT
// messages, beside a same-run baseline: ER7 parsing of the same messages alone (the floor any mapping
// pays). Every message is mapped and checked for a Patient before timing.
//
//   mapping_bench [TESTDATA_DIR] [SECONDS_PER_RUN]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "medicus/fhir/format.h"
#include "medicus/hl7v2/charset.h"
#include "medicus/mappers/v2_to_fhir.h"

namespace fs = std::filesystem;
using namespace medicus;

namespace {
std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <typename Fn>
double messagesPerSecond(double seconds, std::size_t messages_per_pass, Fn&& pass, std::size_t& sink) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::size_t passes = 0;
  double elapsed = 0;
  do {
    sink += pass();
    ++passes;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(messages_per_pass * passes) / elapsed;
}
}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("MEDICUS_TESTDATA");
  const fs::path root = argc > 1 ? fs::path(argv[1]) : fs::path(env && *env ? env : MEDICUS_TESTDATA_DEFAULT);
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::shared_ptr<const mappers::MapSet> maps;
  try {
    maps = mappers::MapSet::loadDirectory(fs::path(MEDICUS_MAPPERS_DIR) / "maps");
  } catch (const mappers::MapConfigError& e) {
    std::fprintf(stderr, "mapping_bench: %s\n", e.what());
    return 1;
  }
  std::vector<std::string> messages;
  const fs::path folder = root / "hl7v2-ms-fhir-converter" / "messages";
  if (fs::is_directory(folder)) {
    for (const auto& entry : fs::directory_iterator(folder)) {
      auto decoded = hl7v2::decodeToUtf8(readFile(entry.path()), hl7v2::CharsetPolicy{});
      if (!decoded) continue;
      auto message = hl7v2::parseMessage(decoded->utf8);
      if (message && maps->handles(message->messageType(), message->triggerEvent())) {
        messages.push_back(std::move(decoded->utf8));
      }
    }
  }
  if (messages.empty()) {
    std::fprintf(stderr, "mapping_bench: no mappable messages under %s (set MEDICUS_TESTDATA)\n", folder.c_str());
    return 1;
  }
  // Verify before timing: every message maps to a Bundle whose first entry is a Patient.
  for (const auto& text : messages) {
    auto mapped = maps->map(*hl7v2::parseMessage(text));
    if (!mapped || fhir::writeJson(*mapped->bundle->root()).find("\"resourceType\":\"Patient\"") == std::string::npos) {
      std::fprintf(stderr, "mapping_bench: a message did not map to a Patient: %.60s\n", text.c_str());
      return 1;
    }
  }
  std::size_t sink = 0;
  const double parse_rate = messagesPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += hl7v2::parseMessage(text)->segmentCount();
    return n;
  }, sink);
  const double map_rate = messagesPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += maps->map(*hl7v2::parseMessage(text))->issues.size() + 1;
    return n;
  }, sink);
  const double json_rate = messagesPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += fhir::writeJson(*maps->map(*hl7v2::parseMessage(text))->bundle->root()).size();
    return n;
  }, sink);
  std::printf("messages: %zu mapped ADT messages (checksum %zu)\n", messages.size(), sink % 10);
  std::printf("baseline ER7 parse only:         %10.0f messages/s\n", parse_rate);
  std::printf("parse + map to Bundle:           %10.0f messages/s\n", map_rate);
  std::printf("parse + map + write JSON:        %10.0f messages/s\n", json_rate);
  std::printf("map / parse: %.3f   map+json / parse: %.3f\n", map_rate / parse_rate, json_rate / parse_rate);
  return 0;
}
