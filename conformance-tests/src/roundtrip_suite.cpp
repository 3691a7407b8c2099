// medicus-conformance roundtrip: every JSON resource JSON->XML->JSON and every XML resource
// XML->JSON->XML must come back equal (decimals compared as exact text, JSON key order and XML
// formatting ignored). Inputs that are broken upstream are listed in roundtrip_known_issues.txt with
// the reason and reported as skipped; any other failure fails the suite.
#include <rapidjson/document.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <pugixml.hpp>
#include <string>
#include <vector>

#include "known_issues.h"
#include "medicus/fhir/format.h"
#include "suite_report.h"

namespace medicus::conformance {
namespace {

namespace fs = std::filesystem;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using JsonDoc = rapidjson::GenericDocument<rapidjson::UTF8<>>;
using JsonValue = rapidjson::Value;

// Structural JSON equality: objects as key sets, arrays in order, numbers by exact text.
bool jsonEqual(const JsonValue& a, const JsonValue& b, std::string& where) {
  if (a.GetType() != b.GetType()) {
    where += " (type differs)";
    return false;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) {
      std::string keys;
      for (auto& m : a.GetObject()) if (!b.HasMember(m.name)) keys += std::string(" -") + m.name.GetString();
      for (auto& m : b.GetObject()) if (!a.HasMember(m.name)) keys += std::string(" +") + m.name.GetString();
      where += " (members differ:" + keys + ")";
      return false;
    }
    for (auto& m : a.GetObject()) {
      auto it = b.FindMember(m.name);
      if (it == b.MemberEnd()) {
        where += std::string(" (missing ") + m.name.GetString() + ")";
        return false;
      }
      std::string sub = where + "." + m.name.GetString();
      if (!jsonEqual(m.value, it->value, sub)) {
        where = sub;
        return false;
      }
    }
    return true;
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) {
      where += " (array length " + std::to_string(a.Size()) + " vs " + std::to_string(b.Size()) + ")";
      return false;
    }
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      std::string sub = where + "[" + std::to_string(i) + "]";
      if (!jsonEqual(a[i], b[i], sub)) {
        where = sub;
        return false;
      }
    }
    return true;
  }
  if (a.IsString()) {
    if (std::string_view(a.GetString(), a.GetStringLength()) == std::string_view(b.GetString(), b.GetStringLength())) return true;
    where += std::string(" ('") + a.GetString() + "' vs '" + b.GetString() + "')";
    return false;
  }
  return a == b;  // bool, null (numbers are strings with kParseNumbersAsStringsFlag)
}

bool parseExact(const std::string& text, JsonDoc& doc) {
  doc.Parse<rapidjson::kParseNumbersAsStringsFlag>(text.c_str(), text.size());
  return !doc.HasParseError();
}

bool isBlank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// XML equality: element names, attributes (xmlns ignored) and child elements in order; text compared
// trimmed, blank text and comments ignored.
bool xmlEqual(pugi::xml_node a, pugi::xml_node b, std::string& where) {
  if (std::string_view(a.name()) != b.name()) {
    where += std::string(" (<") + a.name() + "> vs <" + b.name() + ">)";
    return false;
  }
  std::map<std::string, std::string> attrs_a, attrs_b;
  // Namespace declarations and foreign attributes (xsi:schemaLocation) are not FHIR content.
  auto content = [](pugi::xml_attribute at) {
    std::string_view n = at.name();
    return n != "xmlns" && n.find(':') == std::string_view::npos;
  };
  for (auto at : a.attributes()) if (content(at)) attrs_a[at.name()] = at.value();
  for (auto at : b.attributes()) if (content(at)) attrs_b[at.name()] = at.value();
  if (attrs_a != attrs_b) {
    where += std::string("/") + a.name() + " (attributes differ)";
    return false;
  }
  auto significant = [](pugi::xml_node n) {
    std::vector<pugi::xml_node> out;
    for (auto c : n.children()) {
      if (c.type() == pugi::node_element) out.push_back(c);
      else if ((c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) && !isBlank(c.value())) out.push_back(c);
    }
    return out;
  };
  auto ca = significant(a), cb = significant(b);
  if (ca.size() != cb.size()) {
    where += std::string("/") + a.name() + " (" + std::to_string(ca.size()) + " vs " + std::to_string(cb.size()) + " children)";
    return false;
  }
  for (size_t i = 0; i < ca.size(); ++i) {
    if (ca[i].type() != pugi::node_element || cb[i].type() != pugi::node_element) {
      std::string_view ta = ca[i].value(), tb = cb[i].value();
      auto trim = [](std::string_view s) {
        s.remove_prefix(std::min(s.find_first_not_of(" \t\r\n"), s.size()));
        s.remove_suffix(s.size() - std::min(s.size(), s.find_last_not_of(" \t\r\n") + 1));
        return s;
      };
      if (ca[i].type() != cb[i].type() || trim(ta) != trim(tb)) {
        where += std::string("/") + a.name() + " (text differs)";
        return false;
      }
      continue;
    }
    std::string sub = where + "/" + a.name();
    if (!xmlEqual(ca[i], cb[i], sub)) {
      where = sub;
      return false;
    }
  }
  return true;
}

std::string firstError(const fhir::Issues& issues) {
  for (const auto& i : issues) {
    if (i.severity == fhir::Severity::Fatal || i.severity == fhir::Severity::Error) return fhir::formatIssue(i);
  }
  return {};
}

// Returns an empty string on success, else why it failed.
std::string roundTripJson(const std::string& text) {
  auto first = fhir::parseJson(text);
  if (!first.ok()) return "not read cleanly: " + firstError(first.issues);
  std::string xml = fhir::writeXml(*first.document->root());
  auto second = fhir::parseXml(xml);
  if (!second.ok()) return "our XML does not read back: " + firstError(second.issues);
  std::string json = fhir::writeJson(*second.document->root());
  JsonDoc original, result;
  if (!parseExact(text, original) || !parseExact(json, result)) return "JSON comparison could not parse";
  std::string where = "$";
  if (!jsonEqual(original, result, where)) return "differs at " + where;
  return {};
}

std::string roundTripXml(const std::string& text) {
  auto first = fhir::parseXml(text);
  if (!first.ok()) return "not read cleanly: " + firstError(first.issues);
  std::string json = fhir::writeJson(*first.document->root());
  auto second = fhir::parseJson(json);
  if (!second.ok()) return "our JSON does not read back: " + firstError(second.issues);
  std::string xml = fhir::writeXml(*second.document->root());
  pugi::xml_document original, result;
  if (!original.load_buffer(text.data(), text.size()) || !result.load_buffer(xml.data(), xml.size())) {
    return "XML comparison could not parse";
  }
  std::string where;
  if (!xmlEqual(original.document_element(), result.document_element(), where)) return "differs at " + where;
  return {};
}

bool looksLikeResourceJson(const std::string& text) {
  // Index files and manifests in the data folders (arrays, or objects without a resourceType) are
  // not resources.
  size_t first = text.find_first_not_of(" \t\r\n\xEF\xBB\xBF");
  return first != std::string::npos && text[first] == '{' && text.find("\"resourceType\"") != std::string::npos;
}

}  // namespace

int runRoundtrip(const CommonOptions& options, int argc, char** argv) {
  bool only_xml = false, only_json = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--only-xml") only_xml = true;
    else if (a == "--only-json") only_json = true;
    else {
      std::fprintf(stderr, "roundtrip: unknown option %s (known: --only-xml, --only-json)\n", argv[i]);
      return 2;
    }
  }
  fs::path root(options.data_dir);
  if (!fs::is_directory(root)) {
    std::fprintf(stderr, "roundtrip: %s is not a folder\n", options.data_dir.c_str());
    return 2;
  }
  KnownIssues known = KnownIssues::load(fs::path(MEDICUS_CONFORMANCE_DIR) / "roundtrip_known_issues.txt");
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    auto ext = e.path().extension();
    if ((ext == ".json" && !only_xml) || (ext == ".xml" && !only_json)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  SuiteReport report("roundtrip");
  report.setProgress(options.verbose ? 100 : 0);
  for (const auto& path : files) {
    std::string rel = fs::relative(path, root).generic_string();
    std::string text = readFile(path);
    bool json = path.extension() == ".json";
    std::string group = json ? "json->xml->json" : "xml->json->xml";
    if (json && !looksLikeResourceJson(text)) continue;
    if (!json && text.find("xmlns=\"http://hl7.org/fhir\"") == std::string::npos) continue;  // not FHIR XML
    std::string why = json ? roundTripJson(text) : roundTripXml(text);
    if (why.empty()) {
      report.pass(group, rel);
    } else if (auto reason = known.reasonFor(rel)) {
      report.skip(group, rel, "known upstream problem: " + *reason + " (" + why + ")");
    } else {
      report.fail(group, rel, why);
    }
  }
  report.print(stdout);
  if (!options.report_file.empty() && !report.writeJson(options.report_file)) {
    std::fprintf(stderr, "roundtrip: cannot write %s\n", options.report_file.c_str());
  }
  return report.failed() == 0 ? 0 : 1;
}

}  // namespace medicus::conformance
