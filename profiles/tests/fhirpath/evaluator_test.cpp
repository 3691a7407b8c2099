#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"
#include "medicus/fhirpath/fhirpath.h"

namespace fp = medicus::fhirpath;
namespace fhir = medicus::fhir;

namespace {

constexpr const char* kPatient = R"({
  "resourceType": "Patient", "id": "p1",
  "contained": [{"resourceType": "Organization", "id": "org1", "name": "Acme"}],
  "active": true,
  "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
           {"use": "usual", "given": ["Jim"]}],
  "birthDate": "1974-12-25",
  "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
  "managingOrganization": {"reference": "#org1"}
})";

struct Fixture {
  fhir::ParseResult parsed = fhir::parseJson(kPatient);

  fp::Collection eval(const std::string& expr) {
    REQUIRE(parsed.document);
    fp::CompileOptions options;
    options.root_type = "Patient";
    auto e = fp::compile(expr, options);
    INFO(expr << ": " << (e ? "" : e.error().toString()));
    REQUIRE(e);
    fp::EvaluationContext ctx;
    ctx.context = parsed.document->root();
    auto r = e->evaluate(ctx);
    INFO(expr << ": " << (r ? "" : r.error().toString()));
    REQUIRE(r);
    return *r;
  }
  std::string text(const std::string& expr) {
    auto r = eval(expr);
    REQUIRE(r.size() == 1);
    if (r[0].node) return std::string(r[0].node->value());
    return fp::toText(*fp::toSystemValue(r[0]));
  }
  tl::expected<fp::Collection, fp::Diagnostic> tryEval(const std::string& expr) {
    auto e = fp::compile(expr);
    REQUIRE(e);
    fp::EvaluationContext ctx;
    ctx.context = parsed.document->root();
    return e->evaluate(ctx);
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "Navigation, filtering and FHIR primitives", "[fhirpath][evaluator]") {
  CHECK(eval("Patient.name.given").size() == 3);
  CHECK(text("name.where(use = 'official').family") == "Chalmers");
  CHECK(text("name.given.first()") == "Peter");
  CHECK(text("name[1].given") == "Jim");
  CHECK(text("birthDate.extension('http://example.org/time').value") == "1974-12-25T14:35:45-05:00");
  CHECK(text("managingOrganization.resolve().name") == "Acme");
  CHECK(text("%resource.id") == "p1");
  CHECK(text("birthDate.hasValue()") == "true");
  CHECK(text("descendants().where($this is HumanName).count()") == "2");
  CHECK(text("name.select(given.count()).aggregate($this + $total, 0)") == "3");
  CHECK(outputTypeName(eval("active")[0]) == "boolean");
  CHECK(text("active.is(boolean)") == "true");
  CHECK(text("birthDate < @2000-01-01") == "true");
}

TEST_CASE_METHOD(Fixture, "Operators follow FHIRPath semantics", "[fhirpath][evaluator]") {
  CHECK(text("0.1 + 0.2 = 0.3") == "true");
  CHECK(text("1 / 3") == "0.33333333");
  CHECK(eval("{} = 1").empty());
  CHECK(text("{} or true") == "true");
  CHECK(eval("{} and true").empty());
  CHECK(text("false implies {}") == "true");
  CHECK(eval("@2012-04-15 = @2012-04-15T10:00").empty());  // different precision: unknown
  CHECK(text("@2012-04-15T15:00:00Z = @2012-04-15T10:00:00-05:00") == "true");
  CHECK(text("'ABC' ~ 'abc'") == "true");
  CHECK(text("1.2 / 1.8 ~ 0.67") == "true");
  CHECK(text("4 'g' = 4000 'mg'") == "true");
  CHECK(text("@2019-01-31 + 1 month") == "2019-02-28");
  CHECK(text("@T10:00 + 90 minutes") == "11:30");
  CHECK(text("(1 | 2 | 2).count()") == "2");
  CHECK(text("'a,b'.split(',').join('-')") == "a-b");
  CHECK(text("iif(name.exists(), 'yes', 'no')") == "yes");
}

TEST_CASE_METHOD(Fixture, "Run-time errors are values", "[fhirpath][evaluator]") {
  auto single = tryEval("name.single()");
  REQUIRE_FALSE(single);
  CHECK(single.error().kind == fp::ErrorKind::Execution);
  CHECK_FALSE(tryEval("name.given + 1"));
  CHECK_FALSE(tryEval("1 < 'a'"));
  CHECK_FALSE(tryEval("conformsTo('http://example.org/profile')"));  // no hook supplied
  CHECK_FALSE(tryEval("%unknownVariable"));
  // repeat() stops at its item bound instead of running away.
  auto e = fp::compile("repeat(children())");
  REQUIRE(e);
  fp::EvaluationContext ctx;
  ctx.context = parsed.document->root();
  ctx.max_repeat_items = 5;
  CHECK_FALSE(e->evaluate(ctx));
}

TEST_CASE_METHOD(Fixture, "Hooks and invariant helpers", "[fhirpath][evaluator]") {
  struct Hooks : fp::ExternalHooks {
    tl::expected<bool, std::string> memberOf(const fp::Item& item, std::string_view url) const override {
      return url == "http://hl7.org/fhir/ValueSet/name-use" && item.node && item.node->value() == "official";
    }
  } hooks;
  auto e = fp::compile("name.first().use.memberOf(%vs-name-use)");
  REQUIRE(e);
  fp::EvaluationContext ctx;
  ctx.context = parsed.document->root();
  ctx.hooks = &hooks;
  auto r = e->evaluateBoolean(ctx);
  REQUIRE(r);
  CHECK(*r);
  auto empty = fp::compile("name.where(use = 'maiden').exists().not() and {}.exists().not()");
  REQUIRE(empty);
  CHECK(*empty->evaluateBoolean(ctx));
}
