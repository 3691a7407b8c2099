#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"
#include "url_rewriter.h"

using namespace medicus::gateway;

TEST_CASE("URLs under the upstream base are rewritten to the gateway base") {
  UrlRewriter rewriter("http://10.0.0.5:8080/fhir", "https://gw.example/fhir");
  CHECK(rewriter.rewrite("http://10.0.0.5:8080/fhir/Patient/1/_history/2") == "https://gw.example/fhir/Patient/1/_history/2");
  CHECK(rewriter.rewrite("http://10.0.0.5:8080/fhir?_getpages=x") == "https://gw.example/fhir?_getpages=x");
  CHECK_FALSE(rewriter.rewrite("http://10.0.0.5:8080/fhirx/Patient"));
  CHECK_FALSE(rewriter.rewrite("urn:uuid:1234"));
}

TEST_CASE("Bundle link / fullUrl and response.location are rewritten / nested Bundles too") {
  UrlRewriter rewriter("http://up:1/fhir", "https://gw/fhir");
  auto parsed = medicus::fhir::parseJson(R"({"resourceType":"Bundle","type":"searchset",
    "link":[{"relation":"self","url":"http://up:1/fhir/Patient?name=x"}],
    "entry":[{"fullUrl":"http://up:1/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"}},
             {"fullUrl":"http://elsewhere/Patient/2","resource":{"resourceType":"Bundle","type":"collection",
               "entry":[{"fullUrl":"http://up:1/fhir/Observation/3"}]},
              "response":{"status":"201","location":"http://up:1/fhir/Patient/2/_history/1"}}]})");
  REQUIRE(parsed.ok());
  CHECK(rewriter.rewriteBundle(*parsed.document) == 4);
  std::string json = medicus::fhir::writeJson(*parsed.document->root());
  CHECK(json.find("http://up:1") == std::string::npos);
  CHECK(json.find("https://gw/fhir/Patient?name=x") != std::string::npos);
  CHECK(json.find("https://gw/fhir/Observation/3") != std::string::npos);
  CHECK(json.find("http://elsewhere/Patient/2") != std::string::npos);
}

TEST_CASE("Only bodies that may be Bundles are scanned for the upstream base") {
  UrlRewriter rewriter("http://up:1/fhir", "https://gw/fhir");
  CHECK(rewriter.mayNeedBundleRewrite(R"({"resourceType":"Bundle","link":[{"url":"http://up:1/fhir/Patient"}]})"));
  CHECK(rewriter.mayNeedBundleRewrite(R"(  {"resourceType":"Bundle","entry":[{"fullUrl":"http://up:1/fhir/Patient/1"}]})"));
  // resourceType later in the object, or XML: the scan decides.
  CHECK(rewriter.mayNeedBundleRewrite(R"({"type":"searchset","resourceType":"Bundle","link":[{"url":"http://up:1/fhir"}]})"));
  CHECK(rewriter.mayNeedBundleRewrite(R"(<Bundle xmlns="http://hl7.org/fhir"><link><url value="http://up:1/fhir"/></link></Bundle>)"));
  CHECK_FALSE(rewriter.mayNeedBundleRewrite(R"({"resourceType":"Bundle","entry":[]})"));
  CHECK_FALSE(rewriter.mayNeedBundleRewrite(R"({"resourceType":"Patient","text":"see http://up:1/fhir/Patient/1"})"));
  CHECK_FALSE(rewriter.mayNeedBundleRewrite(R"({"resourceType":"BundleX","x":"http://up:1/fhir"})"));
  // Pretty-printed openings are recognised too (before, a space after the colon meant a full scan).
  CHECK_FALSE(rewriter.mayNeedBundleRewrite("{\n  \"resourceType\" : \"Patient\",\n  \"text\": \"http://up:1/fhir/Patient/1\"}"));
  CHECK(rewriter.mayNeedBundleRewrite("{\n  \"resourceType\": \"Bundle\",\n  \"link\": [{\"url\": \"http://up:1/fhir\"}]}"));
}
