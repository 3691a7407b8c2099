// GatewayMetrics: validation outcomes by profile and rule, with bounded cardinality; per-thread shards
// summed at /metrics.
#include "gateway_metrics.h"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

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

TEST_CASE("request metrics counted on several threads are summed per series at /metrics") {
  GatewayMetrics metrics;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.countRequest("patients", "GET", 200, 0.0002);  // below the first bucket bound, 0.5 ms
        metrics.countUpstream("fhir", 0.003);
        metrics.countStage("validate", "continue");
      }
      if (t == 0) metrics.countRequest("patients", "POST", 422, 0.2);  // a series only one thread has
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(metrics.requestCount("patients", "GET", 200) == kThreads * kPerThread);
  CHECK(metrics.requestCount("patients", "POST", 422) == 1);
  CHECK(metrics.requestCount("patients", "DELETE", 200) == 0);
  CHECK(metrics.stageCount("validate", "continue") == kThreads * kPerThread);
  std::string text = metrics.renderText();
  CHECK_THAT(text, Catch::Contains("medicus_gateway_requests_total{method=\"GET\",route=\"patients\",status=\"200\"} 1000\n"));
  CHECK_THAT(text, Catch::Contains("medicus_gateway_request_duration_seconds_count{route=\"patients\"} 1001\n"));
  CHECK_THAT(text, Catch::Contains("medicus_gateway_request_duration_seconds_bucket{route=\"patients\",le=\"0.0005\"} 1000\n"));
  CHECK_THAT(text, Catch::Contains("medicus_gateway_request_duration_seconds_bucket{route=\"patients\",le=\"+Inf\"} 1001\n"));
  CHECK_THAT(text, Catch::Contains("medicus_gateway_upstream_duration_seconds_bucket{upstream=\"fhir\",le=\"0.0025\"} 0\n"));
  CHECK_THAT(text, Catch::Contains("medicus_gateway_upstream_duration_seconds_bucket{upstream=\"fhir\",le=\"0.005\"} 1000\n"));
  // One HELP and TYPE per family, however many shards.
  size_t first = text.find("# TYPE medicus_gateway_requests_total counter");
  REQUIRE(first != std::string::npos);
  CHECK(text.find("# TYPE medicus_gateway_requests_total counter", first + 1) == std::string::npos);
}
