// GatewayMetrics: validation outcomes by profile and rule, with bounded cardinality.
#include "gateway_metrics.h"

#include <catch2/catch.hpp>

#include <string>

using namespace medicus;
using namespace medicus::gateway;

TEST_CASE("validation metrics count resources by result and issues by profile, rule and severity") {
  GatewayMetrics metrics;
  ValidationRecord failed{"http://example.org/StructureDefinition/p", {}, false};
  failed.issues = {{"Patient.gender:binding", fhir::Severity::Error},
                   {"Patient.gender:binding", fhir::Severity::Error},
                   {"Patient:dom-6", fhir::Severity::Warning},
                   {"", fhir::Severity::Information}};
  metrics.countValidation(failed);
  metrics.countValidation(ValidationRecord{"core", {}, true});

  CHECK(metrics.validationIssueCount("http://example.org/StructureDefinition/p", "Patient.gender:binding", "error") == 2);
  CHECK(metrics.validationIssueCount("http://example.org/StructureDefinition/p", "Patient:dom-6", "warning") == 1);
  CHECK(metrics.validationIssueCount("http://example.org/StructureDefinition/p", "_none", "information") == 1);
  std::string text = metrics.renderText();
  CHECK_THAT(text, Catch::Contains("medicus_validation_resources_total{profile=\"core\",result=\"passed\"} 1"));
  CHECK_THAT(text, Catch::Contains(
                       "medicus_validation_resources_total{profile=\"http://example.org/StructureDefinition/p\",result=\"failed\"} 1"));
  CHECK_THAT(text, Catch::Contains("medicus_validation_issues_total{profile=\"http://example.org/StructureDefinition/p\","
                                   "rule=\"Patient.gender:binding\",severity=\"error\"} 2"));
}

TEST_CASE("validation metrics: past kMaxValidationRules series, new rules count under _other") {
  GatewayMetrics metrics;
  ValidationRecord many{"core", {}, false};
  for (size_t i = 0; i < GatewayMetrics::kMaxValidationRules + 50; ++i) {
    many.issues.emplace_back("Rule" + std::to_string(i), fhir::Severity::Error);
  }
  metrics.countValidation(many);
  metrics.countValidation(many);
  CHECK(metrics.validationIssueCount("core", "Rule0", "error") == 2);
  CHECK(metrics.validationIssueCount("core", "Rule" + std::to_string(GatewayMetrics::kMaxValidationRules - 1), "error") == 2);
  CHECK(metrics.validationIssueCount("core", "_other", "error") == 100);  // 50 new rules, twice
  std::string text = metrics.renderText();
  CHECK(text.find("rule=\"Rule" + std::to_string(GatewayMetrics::kMaxValidationRules) + "\"") == std::string::npos);
  // An already counted rule keeps its own series.
  metrics.countValidation(ValidationRecord{"core", {{"Rule3", fhir::Severity::Error}}, false});
  CHECK(metrics.validationIssueCount("core", "Rule3", "error") == 3);
}
