#include "profiles/measure_rules.h"

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "profiles/json_util.h"
#include "profiles/node_util.h"

namespace medicus::profiles {
namespace {
using fhir::IssueType;
using fhir::Node;
using fhir::Severity;

// (system, code) pairs and text of a CodeableConcept, from an instance node or Measure JSON.
struct Concept {
  std::vector<std::pair<std::string, std::string>> codings;
  std::string text;
  bool empty() const { return codings.empty() && text.empty(); }
  bool matches(const Concept& other) const {
    for (const auto& a : codings) {
      for (const auto& b : other.codings) if (a == b) return true;
    }
    return codings.empty() && other.codings.empty() && !text.empty() && text == other.text;
  }
  std::string label() const {
    if (!codings.empty()) return codings[0].second;
    return text;
  }
};

Concept conceptOf(const Node* node) {
  Concept c;
  if (!node) return c;
  for (const Node* coding : node->children("coding")) {
    c.codings.emplace_back(std::string(childValue(*coding, "system")), std::string(childValue(*coding, "code")));
  }
  c.text = std::string(childValue(*node, "text"));
  return c;
}

Concept conceptOf(const rapidjson::Value* json) {
  Concept c;
  if (!json || !json->IsObject()) return c;
  if (const rapidjson::Value* codings = memberArray(*json, "coding")) {
    for (const auto& coding : codings->GetArray()) {
      c.codings.emplace_back(std::string(memberStr(coding, "system")), std::string(memberStr(coding, "code")));
    }
  }
  c.text = std::string(memberStr(*json, "text"));
  return c;
}

class MeasureReportCheck {
 public:
  MeasureReportCheck(const Node& report, const rapidjson::Value& measure, const fhir::Document& document,
                     fhir::Issues& issues)
      : report_(report), measure_(measure), doc_(document), issues_(issues) {}

  void run() {
    std::string_view scoring;
    if (const rapidjson::Value* s = member(measure_, "scoring"); s && memberArray(*s, "coding")) {
      for (const auto& coding : memberArray(*s, "coding")->GetArray()) scoring = memberStr(coding, "code");
    }
    std::vector<const rapidjson::Value*> measure_groups;
    if (const rapidjson::Value* groups = memberArray(measure_, "group")) {
      for (const auto& g : groups->GetArray()) measure_groups.push_back(&g);
    }
    std::vector<const Node*> report_groups;
    for (const Node* g : report_.children("group")) report_groups.push_back(g);
    std::vector<bool> reported(measure_groups.size(), false);
    for (const Node* group : report_groups) {
      const rapidjson::Value* match = nullptr;
      if (measure_groups.size() == 1 && report_groups.size() == 1) {
        match = measure_groups[0];
        reported[0] = true;
      } else {
        Concept code = conceptOf(group->child("code"));
        for (size_t i = 0; i < measure_groups.size(); ++i) {
          if (!code.empty() && code.matches(conceptOf(member(*measure_groups[i], "code")))) {
            match = measure_groups[i];
            reported[i] = true;
            break;
          }
        }
        if (!match) {
          add(Severity::Error, IssueType::BusinessRule, *group,
              "the group should have a code that matches a group definition in the measure", "MeasureReport.group:code");
        }
      }
      if (scoring == "cohort" && group->child("measureScore")) {
        add(Severity::Error, IssueType::BusinessRule, *group->child("measureScore"),
            "no measureScore is allowed when the scoring of the measure is 'cohort'", "MeasureReport.group:measureScore");
      }
      if (match) checkPopulations(*group, *match);
    }
    for (size_t i = 0; i < measure_groups.size(); ++i) {
      if (reported[i]) continue;
      add(Severity::Error, IssueType::BusinessRule, report_, "the MeasureReport does not include a group for the "
          "measure's group with code '" + conceptOf(member(*measure_groups[i], "code")).label() + "'",
          "MeasureReport.group:missing");
    }
  }

 private:
  void checkPopulations(const Node& group, const rapidjson::Value& measure_group) {
    std::vector<Concept> defined;
    if (const rapidjson::Value* populations = memberArray(measure_group, "population")) {
      for (const auto& p : populations->GetArray()) defined.push_back(conceptOf(member(p, "code")));
    }
    const bool subject_list = childValue(report_, "type") == "subject-list";
    for (const Node* population : group.children("population")) {
      Concept code = conceptOf(population->child("code"));
      bool known = false;
      for (const auto& d : defined) known = known || code.matches(d);
      if (!known) {
        add(Severity::Error, IssueType::BusinessRule, *population,
            "the code of this group population has no match in the measure's group", "MeasureReport.group.population:code");
      }
      if (subject_list) checkSubjectCount(*population);
    }
  }

  // count equals the number of subjects: the entries of the List that subjectResults names when it
  // is contained, else the number of subjectResults references.
  void checkSubjectCount(const Node& population) {
    std::string_view count_text = childValue(population, "count");
    if (count_text.empty()) return;
    size_t subjects = 0;
    bool any = false;
    for (const Node* ref : population.children("subjectResults")) {
      any = true;
      std::string_view target = childValue(*ref, "reference");
      const Node* list = nullptr;
      if (target.starts_with("#")) {
        for (const Node* c : report_.children("contained")) {
          if (childValue(*c, "id") == target.substr(1)) list = c;
        }
      }
      if (list) {
        for (const Node* e : list->children("entry")) { (void)e; ++subjects; }
      } else {
        ++subjects;
      }
    }
    if (!any) return;
    if (std::to_string(subjects) != count_text) {
      add(Severity::Error, IssueType::BusinessRule, population, "mismatch between count " + std::string(count_text) +
          " and the number of subjects " + std::to_string(subjects), "MeasureReport.group.population:count");
    }
  }

  void add(Severity severity, IssueType type, const Node& node, std::string message, std::string rule_id) {
    fhir::Issue issue;
    issue.severity = severity;
    issue.type = type;
    issue.message = std::move(message);
    issue.expression = fhir::pathOf(node);
    issue.position = doc_.positionOf(node);
    issue.rule_id = std::move(rule_id);
    issues_.push_back(std::move(issue));
  }

  const Node& report_;
  const rapidjson::Value& measure_;
  const fhir::Document& doc_;
  fhir::Issues& issues_;
};
}  // namespace

void checkMeasureReport(const Node& report, const PackageRegistry& registry, const fhir::Document& document,
                        fhir::Issues& issues) {
  if (report.type()->name != "MeasureReport") return;
  std::string_view url = childValue(report, "measure");
  if (url.empty()) return;
  const ResourceInfo* info = registry.findCanonical(url, "Measure");
  const rapidjson::Value* measure = info ? registry.json(*info) : nullptr;
  if (!measure || !measure->IsObject()) return;
  MeasureReportCheck(report, *measure, document, issues).run();
}

}  // namespace medicus::profiles
