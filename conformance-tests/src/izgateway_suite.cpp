// medicus-conformance izgateway: the FHIRPath assertions of IZ Gateway's v2tofhir test messages
// (../shared/testdata/hl7v2-izgateway-v2tofhir/messages.txt, format in its SOURCE.md) on the Bundles
// our shipped maps produce.
//
// An assertion "@Type.path ..." is evaluated on the Bundle as entry.resource.ofType(Type).path ...
// ("@Type[n]." picks the n-th such resource); "@Bundle..." and "@%context..." on the Bundle itself.
// It passes when it gives the single Boolean true.
// - Messages whose MSH-9 a map handles: every assertion is evaluated.
// - Other messages (RSP, QBP, ACK, VXU ...: types we do not map): assertions on Patient are evaluated
//   on the Patient our ADT^A31 map gives for the message's MSH and PID (the PID -> Patient mapping
//   is the same whatever the message); assertions on resources no map of ours produces (MessageHeader,
//   OperationOutcome, Parameters, Immunization) are skipped with that reason.
// Exit 0 when every evaluated assertion holds or is listed in --known (default
// conformance-tests/hl7v2_izgateway_known_failures.txt, "<message line>#<assertion index> <reason>");
// 1 otherwise; 77 without data.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "known_issues.h"
#include "suite_report.h"

#if __has_include("medicus/mappers/v2_to_fhir.h") && __has_include("medicus/fhirpath/fhirpath.h")
#include "medicus/fhir/format.h"
#include "medicus/fhirpath/fhirpath.h"
#include "medicus/hl7v2/message.h"
#include "medicus/mappers/maps_location.h"
#include "medicus/mappers/v2_to_fhir.h"
#include "suite_maps.h"
#define MEDICUS_IZGATEWAY_SUITE 1
#endif

namespace medicus::conformance {

#ifndef MEDICUS_IZGATEWAY_SUITE
int runIzgateway(const CommonOptions&, int, char**) {
  std::fputs("izgateway: this build lacks the HL7 v2 mapper or FHIRPath; skipped\n", stderr);
  return 77;
}
#else
namespace {
namespace fs = std::filesystem;

struct Assertion {
  std::string text;  // without the leading '@' and without comments
  int index = 0;     // 1-based within its message
};

struct TestMessage {
  int line = 0;  // line of its MSH in messages.txt
  std::vector<std::string> segments;
  std::vector<Assertion> assertions;
};

// Drops a "//" comment that is not inside a quoted string ('http://...' stays).
std::string stripComment(const std::string& text) {
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == '\\' && i + 1 < text.size()) ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      return text.substr(0, i);
    }
  }
  return text;
}

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// Logical lines: a line ending in '\' continues on the next one (whose leading tabs are dropped).
// In assertion lines a "//" comment is removed first (a '\' inside the comment does not continue);
// comment lines ("//" after the indentation) are dropped whole.
std::vector<std::pair<int, std::string>> logicalLines(std::istream& in) {
  std::vector<std::pair<int, std::string>> out;
  std::string line, pending;
  int number = 0, start = 0;
  bool open = false, assertion = false;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string piece = line;
    if (!open) {
      start = number;
      const std::size_t first = line.find_first_not_of(" \t");
      if (first != std::string::npos && line.compare(first, 2, "//") == 0) continue;
      assertion = first != std::string::npos && line[first] == '@';
    } else {
      piece = line.substr(std::min(line.find_first_not_of(" \t"), line.size()));
    }
    if (assertion) piece = stripComment(piece);
    std::string body = piece;
    while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) body.pop_back();
    // Continued when it ends in a single '\' (a segment's "\&" or "\\" escape is not a continuation).
    if (!body.empty() && body.back() == '\\' && !(body.size() >= 2 && body[body.size() - 2] == '\\')) {
      body.pop_back();
      pending += body;
      open = true;
      continue;
    }
    pending += assertion ? body : piece;
    out.emplace_back(start, pending);
    pending.clear();
    open = false;
  }
  if (open) out.emplace_back(start, pending);
  return out;
}

std::vector<TestMessage> readMessages(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<TestMessage> messages;
  for (auto& [number, text] : logicalLines(in)) {
    if (text.empty() || text[0] == '#') continue;
    if (text[0] == '\t' || text[0] == ' ') {
      const std::string body = trim(text);
      if (body.empty() || body[0] != '@' || messages.empty()) continue;  // comments, stray lines
      const std::string assertion = trim(stripComment(body.substr(1)));
      if (!assertion.empty()) {
        messages.back().assertions.push_back({assertion, static_cast<int>(messages.back().assertions.size()) + 1});
      }
      continue;
    }
    if (text.rfind("MSH", 0) == 0) messages.push_back(TestMessage{number, {}, {}});
    if (!messages.empty()) messages.back().segments.push_back(trim(text));
  }
  return messages;
}

// "Patient.name.count() = 1" -> ("Patient", "entry.resource.ofType(Patient).name.count() = 1").
std::pair<std::string, std::string> onBundle(const std::string& assertion) {
  std::size_t end = 0;
  while (end < assertion.size() && std::isalnum(static_cast<unsigned char>(assertion[end]))) ++end;
  const std::string head = assertion.substr(0, end);
  if (head.empty() || !std::isupper(static_cast<unsigned char>(head[0])) || head == "Bundle") {
    if (head == "Bundle" && end < assertion.size() && assertion[end] == '.') return {"Bundle", assertion.substr(end + 1)};
    return {"Bundle", assertion};
  }
  return {head, "entry.resource.ofType(" + head + ")" + assertion.substr(end)};
}

}  // namespace

int runIzgateway(const CommonOptions& options, int argc, char** argv) {
  std::string map_dir, known_file = std::string(MEDICUS_CONFORMANCE_DIR) + "/hl7v2_izgateway_known_failures.txt";
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--map" && i + 1 < argc) map_dir = argv[++i];
    else if (a == "--known" && i + 1 < argc) known_file = argv[++i];
    else {
      std::fprintf(stderr, "izgateway: unknown option %s (use --map DIR, --known FILE)\n", argv[i]);
      return 2;
    }
  }
  const fs::path file = fs::path(options.data_dir) / "messages.txt";
  if (!fs::is_regular_file(file)) {
    std::fprintf(stderr, "izgateway: %s is absent; skipped\n", file.string().c_str());
    return 77;
  }
  const std::shared_ptr<const mappers::MapSet> maps = loadSuiteMaps("izgateway", map_dir);
  if (!maps) return 2;
  const KnownIssues known = KnownIssues::load(known_file);
  SuiteReport report("izgateway");
  std::size_t messages_mapped = 0, known_failures = 0;
  const std::vector<TestMessage> messages = readMessages(file);
  for (const TestMessage& test : messages) {
    std::string text;
    for (const auto& s : test.segments) text += s + "\r";
    const std::string where = "messages.txt:" + std::to_string(test.line);
    auto message = hl7v2::parseMessage(text);
    if (!message) {
      report.fail("unreadable", where, message.error().describe());
      continue;
    }
    const std::string type = message->messageType() + "^" + message->triggerEvent();
    const bool mapped = maps->handles(message->messageType(), message->triggerEvent());
    // For other types: the Patient our ADT^A31 map gives for the message's MSH + PID.
    std::string surrogate;
    if (!mapped && message->findSegment("PID")) {
      hl7v2::Er7Writer writer(message->delimiters());
      std::string msh(message->segment(0).text());
      std::vector<std::string> fields;
      std::size_t start = 0;
      for (std::size_t at; (at = msh.find(message->delimiters().field, start)) != std::string::npos; start = at + 1) {
        fields.push_back(msh.substr(start, at - start));
      }
      fields.push_back(msh.substr(start));
      if (fields.size() > 8) fields[8] = std::string("ADT") + message->delimiters().component + "A31";
      std::string rebuilt;
      for (std::size_t i = 0; i < fields.size(); ++i) rebuilt += (i ? std::string(1, message->delimiters().field) : "") + fields[i];
      surrogate = rebuilt + "\r" + std::string(message->findSegment("PID")->text()) + "\r";
    }
    std::unique_ptr<fhir::Document> bundle, patient_bundle;
    auto mapText = [&](const std::string& er7) -> std::unique_ptr<fhir::Document> {
      auto parsed = hl7v2::parseMessage(er7);
      if (!parsed) return nullptr;
      auto result = maps->map(*parsed);
      if (!result) return nullptr;
      // Through JSON and back, as a receiver would see it.
      auto reread = fhir::parseJson(fhir::writeJson(*result->bundle->root()));
      return reread.ok() ? std::move(reread.document) : nullptr;
    };
    if (mapped) {
      ++messages_mapped;
      bundle = mapText(text);
      if (!bundle) {
        report.fail(type, where, "the mapped Bundle does not read back");
        continue;
      }
      if (test.assertions.empty()) report.pass(type, where + " (mapped, no assertions)");
    } else if (!surrogate.empty()) {
      patient_bundle = mapText(surrogate);
    }
    for (const Assertion& assertion : test.assertions) {
      const std::string id = std::to_string(test.line) + "#" + std::to_string(assertion.index);
      const std::string name = where + "#" + std::to_string(assertion.index) + " @" + assertion.text;
      auto [resource_type, expression] = onBundle(assertion.text);
      const fhir::Document* target = bundle.get();
      std::string group = type;
      if (!mapped) {
        if (resource_type != "Patient" || !patient_bundle) {
          report.skip(type, name, type + " is not mapped; " + resource_type + " is not produced by our maps");
          continue;
        }
        target = patient_bundle.get();
        group = type + " (PID via ADT^A31)";
      }
      auto fail = [&](std::string why) {
        if (auto reason = known.reasonFor(id)) {
          report.skip(group, name, "known: " + *reason + " (" + why + ")");
          ++known_failures;
        } else {
          report.fail(group, name, std::move(why));
        }
      };
      auto compiled = fhirpath::compile(expression);
      if (!compiled) {
        fail("does not compile: " + compiled.error().toString());
        continue;
      }
      fhirpath::EvaluationContext context;
      context.context = target->root();
      context.resource = target->root();
      context.root_resource = target->root();
      auto holds = compiled->evaluateBoolean(context, false);
      if (!holds) {
        fail("evaluation error: " + holds.error().toString());
      } else if (!*holds) {
        fail("false on our Bundle");
      } else {
        report.pass(group, name);
      }
    }
  }
  report.print(stdout);
  std::printf("(%zu messages, %zu of a mapped type; %zu known failures listed in %s)\n", messages.size(), messages_mapped,
              known_failures, known_file.c_str());
  if (!options.report_file.empty()) report.writeJson(options.report_file);
  return report.failed() == 0 ? 0 : 1;
}
#endif

}  // namespace medicus::conformance
