// v2 -> FHIR mapping throughput (messages/s) with the shipped maps over the shared sample messages
// they handle, beside a same-run baseline: ER7 parsing of the same messages alone (the floor any mapping
// pays); then ORU^R01 alone the same way. Every message is mapped and checked for a Patient (ORU: one
// Observation per OBX) before timing.
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
#include "bench_util.h"

namespace fs = std::filesystem;
using namespace medicus;
using medicus::bench::readFile;
using medicus::bench::unitsPerSecond;

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
  std::vector<std::string> oru_messages;  // ORU^R01 alone: per-OBX resources make these the heaviest maps
  const fs::path folder = root / "hl7v2-ms-fhir-converter" / "messages";
  if (fs::is_directory(folder)) {
    for (const auto& entry : fs::directory_iterator(folder)) {
      auto decoded = hl7v2::decodeToUtf8(readFile(entry.path()), hl7v2::CharsetPolicy{});
      if (!decoded) continue;
      auto message = hl7v2::parseMessage(decoded->utf8);
      if (message && maps->handles(message->messageType(), message->triggerEvent())) {
        if (message->messageType() == "ORU") oru_messages.push_back(decoded->utf8);
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
  const double parse_rate = unitsPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += hl7v2::parseMessage(text)->segmentCount();
    return n;
  }, sink);
  const double map_rate = unitsPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += maps->map(*hl7v2::parseMessage(text))->issues.size() + 1;
    return n;
  }, sink);
  const double json_rate = unitsPerSecond(seconds, messages.size(), [&] {
    std::size_t n = 0;
    for (const auto& text : messages) n += fhir::writeJson(*maps->map(*hl7v2::parseMessage(text))->bundle->root()).size();
    return n;
  }, sink);
  // ORU^R01 only, checked first: every OBX gives an Observation.
  double oru_parse_rate = 0, oru_map_rate = 0;
  if (!oru_messages.empty()) {
    for (const auto& text : oru_messages) {
      auto message = hl7v2::parseMessage(text);
      const std::string json = fhir::writeJson(*maps->map(*message)->bundle->root());
      std::size_t observations = 0;
      for (std::size_t at = json.find("\"resourceType\":\"Observation\""); at != std::string::npos;
           at = json.find("\"resourceType\":\"Observation\"", at + 1)) {
        ++observations;
      }
      if (observations != static_cast<std::size_t>(message->countSegments("OBX"))) {
        std::fprintf(stderr, "mapping_bench: an ORU message did not give one Observation per OBX: %.60s\n", text.c_str());
        return 1;
      }
    }
    oru_parse_rate = unitsPerSecond(seconds, oru_messages.size(), [&] {
      std::size_t n = 0;
      for (const auto& text : oru_messages) n += hl7v2::parseMessage(text)->segmentCount();
      return n;
    }, sink);
    oru_map_rate = unitsPerSecond(seconds, oru_messages.size(), [&] {
      std::size_t n = 0;
      for (const auto& text : oru_messages) n += fhir::writeJson(*maps->map(*hl7v2::parseMessage(text))->bundle->root()).size();
      return n;
    }, sink);
  }
  std::printf("messages: %zu mapped messages (ADT, ORM, OML, ORU, MDM, SIU; checksum %zu)\n", messages.size(), sink % 10);
  std::printf("baseline ER7 parse only:         %10.0f messages/s\n", parse_rate);
  std::printf("parse + map to Bundle:           %10.0f messages/s\n", map_rate);
  std::printf("parse + map + write JSON:        %10.0f messages/s\n", json_rate);
  std::printf("map / parse: %.3f   map+json / parse: %.3f\n", map_rate / parse_rate, json_rate / parse_rate);
  if (!oru_messages.empty()) {
    std::printf("ORU^R01 (%zu messages) baseline parse only: %10.0f messages/s\n", oru_messages.size(), oru_parse_rate);
    std::printf("ORU^R01 parse + map + write JSON:         %10.0f messages/s (%.3f of parse)\n", oru_map_rate,
                oru_map_rate / oru_parse_rate);
  }
  return 0;
}
