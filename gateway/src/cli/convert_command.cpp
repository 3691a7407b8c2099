// medicus-gateway convert: FHIR JSON <-> XML (HL7v2 -> FHIR once the mapper is wired in).
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "medicus/fhir/format.h"
#include "medicus/fhir/operation_outcome.h"

namespace medicus::gateway::cli {
namespace {

constexpr const char* kUsage =
    "usage: medicus-gateway convert [--to json|xml] [--pretty] [--output text|json] FILE|-\n"
    "\n"
    "Reads a FHIR resource (JSON or XML, detected from the content) and writes it in the other format,\n"
    "or in the one named by --to. On bad input it prints the issues (as text, or as an OperationOutcome\n"
    "with --output json) to stderr and exits 1. Exit 2: usage error or unreadable file.\n";

}  // namespace

int runConvert(const Args& args) {
  std::string to, output = "text", path;
  bool pretty = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--to" && i + 1 < args.size()) {
      to = args[++i];
    } else if (a == "--output" && i + 1 < args.size()) {
      output = args[++i];
    } else if (a == "--pretty") {
      pretty = true;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "convert: unknown option %.*s\n%s", static_cast<int>(a.size()), a.data(), kUsage);
      return kExitUsage;
    } else if (path.empty()) {
      path = a;
    } else {
      std::fprintf(stderr, "convert: only one input may be given\n%s", kUsage);
      return kExitUsage;
    }
  }
  if (path.empty() || (to != "" && to != "json" && to != "xml") || (output != "text" && output != "json")) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string input;
  if (!readInput(path, input)) return kExitUsage;

  fhir::Format from = fhir::detectFormat(input);
  fhir::Format target = to.empty() ? (from == fhir::Format::Json ? fhir::Format::Xml : fhir::Format::Json)
                                   : (to == "xml" ? fhir::Format::Xml : fhir::Format::Json);
  fhir::ParseResult parsed = fhir::parse(input);
  if (!parsed.ok()) {
    if (output == "json") {
      auto oo = fhir::buildOperationOutcome(parsed.issues);
      std::string text = fhir::writeJson(*oo->root(), {.pretty = true});
      std::fwrite(text.data(), 1, text.size(), stderr);
    } else {
      for (const auto& issue : parsed.issues) {
        std::fprintf(stderr, "%s: %s\n", path.c_str(), fhir::formatIssue(issue).c_str());
      }
    }
    return kExitInputErrors;
  }
  for (const auto& issue : parsed.issues) {  // warnings only at this point
    std::fprintf(stderr, "%s: %s\n", path.c_str(), fhir::formatIssue(issue).c_str());
  }
  std::string out = fhir::write(*parsed.document->root(), target, {.pretty = pretty});
  if (!pretty) out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace medicus::gateway::cli
