#include <catch2/catch.hpp>

#include <map>

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
  // Errors inside the Boolean fast path come back as values, with the failing node's position.
  auto failing = fp::compile("name.exists() and (name.given.single() = 'Peter' or true)");
  REQUIRE(failing);
  auto f = failing->evaluateBoolean(ctx);
  REQUIRE_FALSE(f);
  CHECK(f.error().kind == fp::ErrorKind::Execution);
  CHECK(f.error().message.find("single()") != std::string::npos);
  auto not_boolean = fp::compile("name.exists() implies name.given");  // several strings: singleton rule
  REQUIRE(not_boolean);
  CHECK_FALSE(not_boolean->evaluateBoolean(ctx));
  auto counted = fp::compile("name.count() = 2 and name.given.count() > 2 and (id.count() + 1) = 2");
  REQUIRE(counted);
  CHECK(*counted->evaluateBoolean(ctx));
}

TEST_CASE("FHIR additions answered through hooks: subsumes, subsumedBy, elementDefinition, slice", "[fhirpath][evaluator]") {
  auto obs = fhir::parseJson(R"({"resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}, {"system": "http://snomed.info/sct", "code": "271649006"}]},
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
    "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}},
                  {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}]})");
  REQUIRE(obs.document);
  // A StructureDefinition whose ElementDefinitions the hook hands out.
  auto sd = fhir::parseJson(R"({"resourceType": "StructureDefinition", "url": "http://example.org/sd", "name": "X",
    "status": "draft", "kind": "resource", "abstract": false, "type": "Observation",
    "snapshot": {"element": [{"path": "Observation"}, {"path": "Observation.status", "min": 1, "max": "1"}]}})");
  REQUIRE(sd.document);
  struct Hooks : fp::ExternalHooks {
    const fhir::Node* status_definition = nullptr;
    // SNOMED CT: 271649006 (systolic blood pressure) is-a 75367002 (blood pressure).
    tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                             std::string_view descendant) const override {
      if (system == "http://loinc.org") return false;  // LOINC codes have no hierarchy here
      if (system != "http://snomed.info/sct") return tl::unexpected(std::string("unknown code system"));
      return ancestor == "75367002" && descendant == "271649006";
    }
    tl::expected<const fhir::Node*, std::string> elementDefinition(const fhir::Node& element) const override {
      return element.name() == "status" ? status_definition : nullptr;
    }
    tl::expected<bool, std::string> inSlice(const fhir::Node& element, std::string_view url, std::string_view name) const override {
      if (url != "http://hl7.org/fhir/StructureDefinition/bp") return tl::unexpected("unknown profile " + std::string(url));
      if (name != "SystolicBP") return tl::unexpected("no slice " + std::string(name));
      const fhir::Node* code = element.child("code")->child("coding")->child("code");
      return code && code->value() == "8480-6";
    }
  } hooks;
  int n = 0;
  for (const fhir::Node* e = sd.document->root()->child("snapshot")->firstChild(); e; e = e->nextSibling())
    if (++n == 2) hooks.status_definition = e;
  REQUIRE(hooks.status_definition);

  fp::EvaluationContext ctx;
  ctx.context = obs.document->root();
  ctx.hooks = &hooks;
  auto run = [&](const std::string& expr) {
    auto e = fp::compile(expr, {.root_type = "Observation"});
    INFO(expr << ": " << (e ? "" : e.error().toString()));
    REQUIRE(e);
    return e->evaluate(ctx);
  };
  auto boolean = [&](const std::string& expr) {
    auto r = run(expr);
    INFO(expr << ": " << (r ? "" : r.error().toString()));
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    return std::get<bool>(r->front().value);
  };
  auto bp = fhir::parseJson(R"({"resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "75367002"}]}})");
  REQUIRE(bp.document);
  std::map<std::string, fp::Collection, std::less<>> variables;
  variables["bp"].emplace_back(bp.document->root()->child("code")->child("coding"));
  ctx.variables = &variables;

  // CodeableConcept against a Coding: a coding of the same system is below / above the other.
  CHECK(boolean("code.subsumedBy(%bp)"));
  CHECK_FALSE(boolean("code.subsumes(%bp)"));
  CHECK(boolean("code.coding[1].subsumes(code.coding[1])"));  // equal codes, no hook needed
  CHECK_FALSE(boolean("component[0].code.subsumes(component[1].code)"));  // same system, hook says no
  CHECK_FALSE(run("category.subsumes(%bp)"));                           // no common code system
  CHECK(run("{}.subsumes(%bp)")->empty());

  auto min = run("status.elementDefinition().min");
  REQUIRE(min);
  REQUIRE(min->size() == 1);
  CHECK(min->front().node->value() == "1");
  CHECK(run("code.elementDefinition()")->empty());

  auto systolic = run("component.slice('http://hl7.org/fhir/StructureDefinition/bp', 'SystolicBP')");
  REQUIRE(systolic);
  REQUIRE(systolic->size() == 1);
  CHECK(systolic->front().node == obs.document->root()->child("component")->nextSibling());
  CHECK_FALSE(run("component.slice('http://hl7.org/fhir/StructureDefinition/bp', 'Nope')"));
  CHECK_FALSE(run("component.slice('http://example.org/unknown', 'SystolicBP')"));

  // Without hooks these cannot be answered: errors, not guesses.
  ctx.hooks = nullptr;
  CHECK_FALSE(run("code.subsumedBy(%bp)"));
  CHECK_FALSE(run("status.elementDefinition()"));
  CHECK_FALSE(run("component.slice('http://hl7.org/fhir/StructureDefinition/bp', 'SystolicBP')"));
}

TEST_CASE("checkModifiers() passes only the listed modifier extensions", "[fhirpath][evaluator]") {
  auto parsed = fhir::parseJson(R"({"resourceType": "Patient",
    "modifierExtension": [{"url": "http://example.org/mod-a", "valueBoolean": true},
                          {"url": "http://example.org/mod-b", "valueBoolean": true}],
    "name": [{"family": "Chalmers"}]})");
  REQUIRE(parsed.document);
  fp::EvaluationContext ctx;
  ctx.context = parsed.document->root();
  auto run = [&](const std::string& expr) {
    auto e = fp::compile(expr, {.root_type = "Patient"});
    INFO(expr << ": " << (e ? "" : e.error().toString()));
    REQUIRE(e);
    return e->evaluate(ctx);
  };
  auto both = run("checkModifiers('http://example.org/mod-a,http://example.org/mod-b').count()");
  REQUIRE(both);
  CHECK(std::get<int64_t>(both->front().value) == 1);
  CHECK(run("checkModifiers('http://example.org/mod-a' | 'http://example.org/mod-b').exists()"));
  auto one = run("checkModifiers('http://example.org/mod-a')");
  REQUIRE_FALSE(one);
  CHECK(one.error().message.find("mod-b") != std::string::npos);
  CHECK_FALSE(run("checkModifiers()"));
  CHECK(run("name.checkModifiers()")->size() == 1);  // HumanName has no modifiers
}

TEST_CASE_METHOD(Fixture, "Quantities convert between commensurable UCUM units of vital signs and lab results", "[fhirpath][ucum]") {
  auto truth = [&](const std::string& expr) {
    auto r = eval(expr);
    INFO(expr);
    REQUIRE(r.size() == 1);
    return std::get<bool>(r[0].value);
  };
  // mass concentration, volume, counts per volume
  CHECK(truth("1 'g/L' = 100 'mg/dL'"));
  CHECK(truth("1 'L' = 1000 'mL'"));
  CHECK(truth("5 '10*3/uL' = 5 '10*9/L'"));
  CHECK(truth("1 'mmol/L' = 1000 'umol/L'"));
  CHECK(truth("1 'mmol/L' = 1 'meq/L'"));  // UCUM: 1 eq = 1 mol
  // pressure: mm[Hg] is 133.322 Pa in UCUM
  CHECK(truth("120 'mm[Hg]' = 15.99864 'kPa'"));
  CHECK(truth("10 'cm[H2O]' = 0.980665 'kPa'"));
  // body weight and height, heart rate, ECG
  CHECK(truth("1 '[lb_av]' = 453.59237 'g'"));
  CHECK(truth("70 'kg' > 150 '[lb_av]'"));
  CHECK(truth("6 '[ft_i]' = 72 '[in_i]'"));
  CHECK(truth("60 '/min' = 1 'Hz'"));
  CHECK(truth("72 '{beats}/min' = 72 '/min'"));
  CHECK(truth("1 'mV' = 0.001 'V'"));
  CHECK(truth("1 'kcal' = 4.184 'kJ'"));
  CHECK(truth("(1 'g/L').toQuantity('mg/dL') = 100 'mg/dL'"));
  // not commensurable: amount vs mass concentration, temperature scales with an offset
  CHECK(eval("5.5 'mmol/L' = 99 'mg/dL'").empty());
  CHECK(eval("37 'Cel' = 98.6 '[degF]'").empty());
  CHECK(eval("1 'kg' = 1 'L'").empty());
  // calendar durations (http://hl7.org/fhirpath/N1/#time-valued-quantities)
  CHECK(truth("1 year = 12 months"));
  CHECK(truth("2 weeks = 14 days"));
  CHECK(truth("3 days = 72 hours"));
  CHECK(truth("1 'wk' = 7 'd'"));
  CHECK(truth("1 hour = 60 'min'"));
  CHECK(eval("1 year = 1 'a'").empty());  // a calendar year is not the UCUM year
  CHECK(text("@2020-01-31 + 1 month") == "2020-02-29");
}

TEST_CASE_METHOD(Fixture, "matches() answers the same through regcomp() and std::regex", "[fhirpath][evaluator]") {
  auto truth = [&](const std::string& expr) {
    auto r = eval(expr);
    INFO(expr);
    REQUIRE(r.size() == 1);
    return std::get<bool>(r[0].value);
  };
  // In the common subset (regcomp): search semantics, anchors, classes, bounded repetition, single-line '.'.
  CHECK(truth("'Patient'.matches('[A-Z]([A-Za-z0-9_]){0,254}')"));
  CHECK_FALSE(truth("'patient'.matches('^[A-Z]')"));
  CHECK(truth("'abc'.matches('b')"));
  CHECK_FALSE(truth("'abc'.matchesFull('b')"));
  CHECK(truth("'abc'.matchesFull('a(b|x)c')"));
  CHECK(truth("'a\\nb'.matches('a.b')"));
  CHECK(truth("'1.5'.matches('^[0-9]+\\\\.[0-9]$')"));
  CHECK_FALSE(truth("'15'.matches('^[0-9]+\\\\.[0-9]$')"));
  // Outside it (std::regex): escapes like \d, lazy quantifiers, classes with escapes.
  CHECK(truth("'a1'.matches('\\\\d')"));
  CHECK(truth("'aaa'.matches('^a+?$')"));
  CHECK(truth("'a-b'.matches('^a[\\\\-]b$')"));
}

TEST_CASE_METHOD(Fixture, "matches() cannot be made to backtrack exponentially", "[fhirpath][evaluator]") {
  auto truth = [&](const std::string& expr) {
    auto r = eval(expr);
    INFO(expr);
    REQUIRE(r.size() == 1);
    return std::get<bool>(r[0].value);
  };
  const std::string evil = std::string(49, 'a') + "b";
  // In the subset (regcomp, no backtracking): literal and computed patterns, \d \s \w rewritten.
  CHECK_FALSE(truth("'" + evil + "'.matches('^(a|aa)+$')"));
  CHECK_FALSE(truth("'" + evil + "'.matchesFull('(a+)+')"));
  CHECK_FALSE(truth("'" + evil + "'.matches('^(a|a' + 'a)+$')"));  // a pattern computed at run time
  CHECK(truth("'x@y.z'.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')"));
  CHECK_FALSE(truth("'x @y.z'.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')"));
  CHECK(truth("'ab_1 '.matches('^\\\\w+\\\\s$')"));
  CHECK_FALSE(truth("'ab-1'.matches('^\\\\w+$')"));
  CHECK(truth("'a1'.matches('^\\\\D\\\\d$')"));
  // Outside it, std::regex runs only on patterns without nested repetition, on bounded input.
  CHECK_FALSE(tryEval("'" + evil + "'.matches('^(a|aa)+?$')"));
  CHECK_FALSE(tryEval("'" + evil + "'.replaceMatches('(a+)+b', 'x')"));
  CHECK_FALSE(tryEval("'" + std::string(20000, 'a') + "'.matches('^a+?$')"));
  CHECK(truth("'aaa'.matches('^a+?$')"));
  CHECK(text("'aab'.replaceMatches('a+', 'x')") == "xb");
  // Counted repetitions that would expand to a huge automaton are not compiled by regcomp() either.
  CHECK_FALSE(tryEval("'a'.matches('((a{100}){100}' + '){100}')"));
}

TEST_CASE("htmlChecks() rejects active content wherever it sits in a narrative", "[fhirpath][evaluator]") {
  auto check = [](const std::string& xhtml) {
    std::string json = R"({"resourceType": "Patient", "text": {"status": "generated", "div": ")" + xhtml + R"("}})";
    auto parsed = fhir::parseJson(json);
    REQUIRE(parsed.document);
    auto e = fp::compile("text.`div`.htmlChecks()");
    REQUIRE(e);
    fp::EvaluationContext ctx;
    ctx.context = parsed.document->root();
    auto r = e->evaluateBoolean(ctx);
    REQUIRE(r);
    return *r;
  };
  const std::string open = R"(<div xmlns=\"http://www.w3.org/1999/xhtml\")";
  CHECK(check(open + R"(><p class=\"a b c d e f g h i j k\">Text: plain, on purpose</p></div>)"));
  CHECK(check(open + R"(><p data-onclick=\"x\" title=\"run on\">x</p></div>)"));  // no whitespace before "on", no '='
  // An event handler attribute after whitespace of any kind, at any offset within the tag.
  for (std::string space : {" ", "\\t", "\\n", "\\r"}) {
    for (size_t pad = 0; pad < 12; ++pad) {
      std::string attribute = "title=\\\"" + std::string(pad, 'a') + "\\\"" + space + "onClick=\\\"x()\\\"";
      INFO(attribute);
      CHECK_FALSE(check(open + "><p " + attribute + ">x</p></div>"));
    }
  }
  CHECK_FALSE(check(open + "><script>x()</script></div>"));
  CHECK_FALSE(check(open + R"(><a href=\"JavaScript:x()\">x</a></div>)"));
  // Strings are checked as well as nodes.
  auto literal = fp::compile("'<p>a\tb</p>'.htmlChecks() and '<p\tonload=\"x\">'.htmlChecks().not()");
  REQUIRE(literal);
  CHECK(*literal->evaluateBoolean(fp::EvaluationContext{}));
}

// evaluateBoolean() answers comparisons with literals, startsWith()/endsWith()/contains() and
// `in` a union of literals without building collections; it must say what evaluate() says.
TEST_CASE_METHOD(Fixture, "The Boolean fast paths agree with the full evaluation", "[fhirpath][evaluator]") {
  const char* expressions[] = {
      "managingOrganization.reference.startsWith('#')", "managingOrganization.reference.endsWith('org1')",
      "managingOrganization.reference.contains('rg')", "managingOrganization.reference.startsWith('Organization/')",
      "name.given.startsWith('P')", "name.use.startsWith('o')", "birthDate.startsWith('1974')",
      "active.startsWith('t')", "gender.startsWith('x')", "managingOrganization.startsWith('#')",
      "name.startsWith('a')", "name.where(use.startsWith('us')).given = 'Jim'",
      "name.where(family.startsWith('Ch')).exists()", "name.all(given.startsWith('J') or use = 'official')",
      "name.family = 'Chalmers'", "name.use = 'official'", "name.use != 'official'", "'Chalmers' = name.family",
      "name.family != 'Chalmers'", "gender = 'male'", "gender != 'male'", "birthDate = '1974-12-25'",
      "active = 'true'", "name = 'x'", "contained.name = 'Acme'", "name.given.count() = 3",
      "name.use in ('usual' | 'official')", "name.family in ('a' | 'Chalmers')", "name.family in ('a' | 'b')",
      "gender in ('a' | 'b')", "name.family in ('Chalmers' | 1)", "name.family in ('a' | {} | 'Chalmers')",
      "birthDate in ('1974-12-25' | 'x')", "name.first().use in ('usual' | 'official')",
      "managingOrganization.reference.startsWith('#').not() or "
      "(managingOrganization.reference.substring(1) in %rootResource.contained.id)",
      "name.where(given.startsWith('J')).family.startsWith('C') = true", "active.startsWith('t') or true",
      "name.family.matches('^Ch[a-z]+$')", "name.family.matchesFull('Ch[a-z]+')", "name.family.matchesFull('Ch')",
      "name.given.matches('J')", "gender.matches('m')", "birthDate.matches('1974')", "name.matches('x')",
      "id.matches('[a-z][0-9]')", "name.where(given.matches('^J')).exists()",
      "name.given.where(as(string) = 'Jim').exists()", "descendants().where(as(code) = 'usual').exists()",
      "descendants().where(ofType(string) = 'Acme').exists()", "name.where(as(HumanName) = 'x').exists()",
      "name.given.select(as(string) != 'Jim').allTrue()", "descendants().where(as(uri) = '#').exists()",
      "name.use.as(code) = 'official'", "as(Patient) = 'x'",
  };
  fp::EvaluationContext ctx;
  ctx.context = parsed.document->root();
  for (const char* text : expressions) {
    INFO(text);
    auto e = fp::compile(text);
    REQUIRE(e);
    auto full = e->evaluate(ctx);
    auto fast = e->evaluateBoolean(ctx);
    if (!full) {
      REQUIRE_FALSE(fast);
      CHECK(fast.error().message == full.error().message);
      continue;
    }
    if (full->empty()) {
      REQUIRE(fast);
      CHECK(*fast);  // empty counts as true
      continue;
    }
    auto v = full->size() == 1 ? fp::toSystemValue((*full)[0]) : std::nullopt;
    if (!v || v->index() != 0) {
      CHECK_FALSE(fast);
      continue;
    }
    REQUIRE(fast);
    CHECK(*fast == std::get<bool>(*v));
  }
}

TEST_CASE_METHOD(Fixture, "Criteria of where(), exists(), all() and distinct() over collections", "[fhirpath][evaluator]") {
  CHECK(text("name.where(use = 'usual').given") == "Jim");
  CHECK(text("name.exists(family = 'Chalmers')") == "true");
  CHECK(text("name.all(use.exists())") == "true");
  CHECK(text("name.all(family.exists())") == "false");
  CHECK(text("name.where(family.empty()).count()") == "1");
  CHECK(eval("name.where({}).given").empty());  // empty criteria: not selected
  CHECK(text("name.given.combine(name.given).distinct().count()") == "3");
  CHECK(text("name.given.combine(name.given).isDistinct()") == "false");
  CHECK(text("(name.given | name.use).isDistinct()") == "true");
  CHECK(text("name.combine(name).distinct().count()") == "2");  // complex values: by identity
  CHECK(text("(1 | 1.0 | 2).count()") == "2");
  // A criterion that is not a single Boolean is an error with the call's position, as in where().
  auto several = tryEval("name.where(given.startsWith('J'))");
  REQUIRE_FALSE(several);
  CHECK(several.error().message.find("single") != std::string::npos);
  CHECK_FALSE(tryEval("name.all(given)"));
  CHECK_FALSE(tryEval("name.exists(given.single())"));
}

TEST_CASE_METHOD(Fixture, "descendants() followed by a name, as() or ofType() lists what descendants() lists", "[fhirpath][evaluator]") {
  // The streamed forms against the same steps over a collected descendants() (select() collects it).
  CHECK(text("descendants().given.count()") == "3");
  CHECK(text("descendants().given.first()") == "Peter");
  CHECK(text("descendants().reference") == "#org1");
  CHECK(text("descendants().ofType(HumanName).count()") == "2");
  CHECK(text("descendants().as(code).count()") == "2");
  CHECK(text("descendants().use.select($this) = descendants().select(use)") == "true");
  CHECK(text("descendants().as(string).count() = descendants().select(as(string)).count()") == "true");
  CHECK(eval("name.first().family.descendants().id").empty());
  CHECK(text("%resource.descendants().as(date)") == "1974-12-25");
  fp::EvaluationContext ctx;
  ctx.context = parsed.document->root();
  ctx.max_repeat_items = 5;
  for (const char* expr : {"descendants().given", "descendants().as(string)", "descendants().select(given)"}) {
    INFO(expr);
    auto e = fp::compile(expr);
    REQUIRE(e);
    auto r = e->evaluate(ctx);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "descendants() produced more than 5 items");
  }
}
