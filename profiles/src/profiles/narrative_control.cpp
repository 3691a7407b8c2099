#include "profiles/narrative_control.h"

#include <pugixml.hpp>
#include <string>
#include <vector>

namespace medicus::profiles {
namespace {

bool hasSourceClass(const pugi::xml_node& element) {
  std::string_view cls = element.attribute("class").value();
  size_t i = 0;
  while (i < cls.size()) {
    while (i < cls.size() && cls[i] == ' ') ++i;
    size_t end = cls.find(' ', i);
    std::string_view word = cls.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    if (word == "boilerplate" || word == "generated" || word == "original" || word == "extensions" || word == "additional") {
      return true;
    }
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return false;
}

std::string trimmed(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

void findUnattributed(const pugi::xml_node& node, std::vector<std::string>& out) {
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
      std::string text = trimmed(child.value());
      if (!text.empty()) out.push_back(text.size() > 60 ? text.substr(0, 60) + "..." : text);
    } else if (child.type() == pugi::node_element && !hasSourceClass(child)) {
      findUnattributed(child, out);
    }
  }
}

fhir::Severity severityOf(std::string_view code) {
  if (code == "fatal") return fhir::Severity::Fatal;
  if (code == "warning") return fhir::Severity::Warning;
  if (code == "information") return fhir::Severity::Information;
  return fhir::Severity::Error;
}

}  // namespace

std::vector<NarrativeFinding> checkNarrativeControls(std::string_view div, std::string_view language_control,
                                                     std::string_view source_control, std::string_view profile) {
  std::vector<NarrativeFinding> findings;
  const bool check_language = language_control == "_yes" || language_control == "_no";
  const bool check_source = !source_control.empty() && source_control != "success";
  if (!check_language && !check_source) return findings;
  pugi::xml_document doc;
  if (!doc.load_buffer(div.data(), div.size(), pugi::parse_default, pugi::encoding_utf8)) return findings;  // reported elsewhere
  pugi::xml_node root = doc.document_element();
  if (check_language) {
    std::string languages;
    for (pugi::xml_node child : root.children()) {
      if (child.type() != pugi::node_element) continue;
      std::string_view lang = child.attribute("xml:lang").value();
      if (lang.empty()) lang = child.attribute("lang").value();
      if (!lang.empty()) languages += (languages.empty() ? "" : ", ") + std::string(lang);
    }
    if (language_control == "_yes" && languages.empty()) {
      findings.push_back({fhir::Severity::Error, "the narrative has no language sections, but the profile " +
                          std::string(profile) + " requires them (narrative-language-control)", "Narrative:language-sections"});
    } else if (language_control == "_no" && !languages.empty()) {
      findings.push_back({fhir::Severity::Error, "the narrative has language sections (" + languages + "), but the profile " +
                          std::string(profile) + " prohibits them (narrative-language-control)", "Narrative:language-sections"});
    }
  }
  if (check_source && !hasSourceClass(root)) {
    std::vector<std::string> texts;
    findUnattributed(root, texts);
    for (const auto& t : texts) {
      findings.push_back({severityOf(source_control), "the narrative text '" + t + "' is not inside an element whose class "
                          "gives its source (boilerplate, generated, original), as the profile " + std::string(profile) +
                          " requires (narrative-source-control)", "Narrative:source-class"});
    }
  }
  return findings;
}

}  // namespace medicus::profiles
