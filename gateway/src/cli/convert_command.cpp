// medicus-gateway convert: FHIR JSON <-> XML, and HL7 v2 -> FHIR transaction Bundle (--from hl7v2).
#include <cstdio>
#include <string>
#if __has_include("medicus/mappers/v2_to_fhir.h")
#include <exception>
#include <filesystem>
#include <memory>

#include "medicus/hl7v2/charset.h"
#include "medicus/hl7v2/message.h"
#include "medicus/mappers/maps_location.h"
#include "medicus/mappers/v2_to_fhir.h"
#define MEDICUS_CONVERT_HL7V2 1
#endif

#include "cli/command.h"
#include "medicus/fhir/format.h"
#include "medicus/fhir/operation_outcome.h"

namespace medicus::gateway::cli {
namespace {

constexpr const char* kUsage =
    "usage: medicus-gateway convert [--to json|xml] [--pretty] [--output text|json] FILE|-\n"
    "       medicus-gateway convert --from hl7v2 [--map DIR] [--charset NAME] [--to json|xml] [--pretty] FILE|-\n"
    "\n"
    "Reads a FHIR resource (JSON or XML, detected from the content) and writes it in the other format,\n"
    "or in the one named by --to. On bad input it prints the issues (as text, or as an OperationOutcome\n"
    "with --output json) to stderr and exits 1. Exit 2: usage error or unreadable file.\n"
    "\n"
    "--from hl7v2 reads one HL7 v2 message (ER7) and prints the FHIR transaction Bundle its map gives\n"
    "(JSON unless --to xml). Maps come from --map DIR, else $MEDICUS_MAPS_DIR, else the shipped maps.\n"
    "The charset is MSH-18's, ISO-8859-1 when MSH-18 is empty; --charset NAME (e.g. 8859/1, UTF-8)\n"
    "forces one. A message that cannot be read or mapped is reported with its HL7 location (exit 1);\n"
    "mapping warnings go to stderr.\n";

#ifdef MEDICUS_CONVERT_HL7V2
int convertHl7v2(const std::string& path, const std::string& input, const std::string& map_dir,
                 const std::string& charset_name, fhir::Format target, bool pretty) {
  hl7v2::CharsetPolicy policy{.mode = hl7v2::CharsetPolicy::Mode::kTrustMsh18,
                              .default_charset = hl7v2::Charset::kLatin1};  // German KIS: Latin-1 without MSH-18
  if (!charset_name.empty()) {
    auto forced = hl7v2::charsetFromMsh18(charset_name);
    if (!forced) {
      std::fprintf(stderr, "convert: unknown charset '%s' (ASCII, 8859/1, 8859/15, UTF-8)\n", charset_name.c_str());
      return kExitUsage;
    }
    policy = {.mode = hl7v2::CharsetPolicy::Mode::kForce, .default_charset = *forced};
  }
  std::shared_ptr<const mappers::MapSet> maps;
  std::filesystem::path folder = map_dir;
  if (folder.empty()) {
    auto shipped = mappers::shippedMapsDirectory();
    if (!shipped) {
      std::fputs("convert: no map folder found; give --map DIR or set MEDICUS_MAPS_DIR\n", stderr);
      return kExitUsage;
    }
    folder = *shipped;
  }
  try {
    maps = mappers::MapSet::loadDirectory(folder);
  } catch (const std::exception& e) {  // config load: exceptions by design (STYLE.md)
    std::fprintf(stderr, "convert: maps in %s: %s\n", folder.string().c_str(), e.what());
    return kExitUsage;
  }
  auto decoded = hl7v2::decodeToUtf8(input, policy);
  if (!decoded) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), decoded.error().describe().c_str());
    return kExitInputErrors;
  }
  auto message = hl7v2::parseMessage(decoded->utf8);
  if (!message) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), message.error().describe().c_str());
    return kExitInputErrors;
  }
  auto mapped = maps->map(*message);
  if (!mapped) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), mapped.error().describe().c_str());
    return kExitInputErrors;
  }
  bool errors = false;
  for (const auto& issue : mapped->issues) {
    const bool error = issue.severity == mappers::MapIssue::Severity::kError;
    errors = errors || error;
    std::fprintf(stderr, "%s: %s: %s (%s): %s\n", path.c_str(), error ? "error" : "warning",
                 issue.v2_location.c_str(), issue.fhir_path.c_str(), issue.message.c_str());
  }
  std::string out = fhir::write(*mapped->bundle->root(), target, {.pretty = pretty});
  if (!pretty) out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return errors ? kExitInputErrors : kExitOk;
}
#endif

}  // namespace

int runConvert(const Args& args) {
  std::string to, output = "text", path, source_kind, map_dir, charset_name;
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
    } else if (a == "--from" && i + 1 < args.size()) {
      source_kind = args[++i];
    } else if (a == "--map" && i + 1 < args.size()) {
      map_dir = args[++i];
    } else if (a == "--charset" && i + 1 < args.size()) {
      charset_name = args[++i];
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
  if (source_kind != "" && source_kind != "hl7v2" && source_kind != "fhir") {
    std::fprintf(stderr, "convert: --from takes hl7v2 or fhir\n%s", kUsage);
    return kExitUsage;
  }
  std::string input;
  if (!readInput(path, input)) return kExitUsage;
  if (source_kind == "hl7v2") {
#ifdef MEDICUS_CONVERT_HL7V2
    return convertHl7v2(path, input, map_dir, charset_name,
                        to == "xml" ? fhir::Format::Xml : fhir::Format::Json, pretty);
#else
    std::fputs("convert: this build has no HL7 v2 mapper (module mappers)\n", stderr);
    return kExitUsage;
#endif
  }

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
