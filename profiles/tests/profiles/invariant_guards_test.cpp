#include "profiles/invariant_guards.h"

#include <catch2/catch.hpp>

#include "medicus/fhir/format.h"

using namespace medicus;
using namespace medicus::profiles;

namespace {
std::unique_ptr<fhir::Document> parse(std::string_view json) {
  auto parsed = fhir::parseJson(json);
  REQUIRE(parsed.document);
  return std::move(parsed.document);
}
}  // namespace

TEST_CASE("invariant guards: leading tests of or/implies chains", "[invariant-guards]") {
  auto qty3 = parseInvariantGuards("code.empty() or system.exists()");
  REQUIRE(qty3.size() == 2);
  CHECK(qty3[0].all_of[0].kind == GuardTest::Kind::Empty);
  CHECK(qty3[0].all_of[0].path == std::vector<std::string>{"code"});
  CHECK(qty3[1].all_of[0].kind == GuardTest::Kind::Exists);

  auto dom4 = parseInvariantGuards("contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()");
  REQUIRE(dom4.size() == 1);
  CHECK(dom4[0].all_of.size() == 2);
  CHECK(dom4[0].all_of[1].path == std::vector<std::string>{"contained", "meta", "lastUpdated"});

  auto bdl8 = parseInvariantGuards("fullUrl.exists() implies fullUrl.contains('/_history/').not()");
  REQUIRE(bdl8.size() == 1);
  CHECK(bdl8[0].all_of[0].kind == GuardTest::Kind::Empty);  // no fullUrl: the implication holds

  auto ref1 = parseInvariantGuards(
      "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id)");
  REQUIRE(ref1.size() == 1);
  CHECK(ref1[0].all_of[0].kind == GuardTest::Kind::NotStartsWith);
  CHECK(ref1[0].all_of[0].prefix == "#");

  auto dom6 = parseInvariantGuards("text.`div`.exists()");
  REQUIRE(dom6.size() == 1);
  CHECK(dom6[0].all_of[0].path == std::vector<std::string>{"text", "div"});

  // Only the leading disjuncts: after one the engine evaluates (and may fail on) parsing stops.
  auto cmd1 = parseInvariantGuards("comment.exists() or (equivalence != 'narrower') or equivalence.empty()");
  CHECK(cmd1.size() == 1);
}

TEST_CASE("invariant guards: forms that are left to the engine", "[invariant-guards]") {
  CHECK(parseInvariantGuards("a.empty() xor b.empty()").empty());      // xor: not an or chain
  CHECK(parseInvariantGuards("a.empty() or b implies c").empty());     // implies binds last
  CHECK(parseInvariantGuards("a.empty() or b implies(c)").empty());    // keywords need no spaces
  CHECK(parseInvariantGuards("Patient.name.empty() or x").empty());    // type names
  CHECK(parseInvariantGuards("%resource.x.empty() or y").empty());     // variables
  CHECK(parseInvariantGuards("$this.x.empty() or y").empty());
  CHECK(parseInvariantGuards("a.exists(b) or c").empty());             // exists with criteria
  CHECK(parseInvariantGuards("a.count() = 0 or c").empty());
  CHECK(parseInvariantGuards("(a.empty() or b").empty());              // unbalanced
  CHECK(parseInvariantGuards("a.startsWith('x\\'y').not() or b").empty());
  CHECK(parseInvariantGuards("'a or b'.empty()").empty());
  CHECK(parseInvariantGuards("a.startsWith('#').not() implies b").empty());
}

TEST_CASE("invariant guards: decided on the focus's children", "[invariant-guards]") {
  auto doc = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
    "valueQuantity":{"value":1},
    "subject":{"reference":"Patient/1"},"performer":[{"reference":"#p"},{"display":"x"}],
    "contained":[{"resourceType":"Patient","id":"p","meta":{"versionId":"1"}}]})");
  const fhir::Node* obs = doc->root();
  const fhir::Node* quantity = obs->child("value");
  const fhir::Node* subject = obs->child("subject");
  auto guards = [](std::string_view e) { return parseInvariantGuards(e); };
  CHECK(invariantHoldsByGuard(*quantity, guards("code.empty() or system.exists()")));
  CHECK_FALSE(invariantHoldsByGuard(*obs, guards("code.empty() or system.exists()")));  // code present: engine
  CHECK(invariantHoldsByGuard(*subject, guards("reference.startsWith('#').not() or x")));
  CHECK_FALSE(invariantHoldsByGuard(*obs->children("performer").begin().operator*(),
                                    guards("reference.startsWith('#').not() or x")));
  // No reference at all: startsWith gives empty, the engine decides.
  const fhir::Node* second = nullptr;
  for (const fhir::Node* p : obs->children("performer")) second = p;
  CHECK_FALSE(invariantHoldsByGuard(*second, guards("reference.startsWith('#').not() or x")));
  CHECK(invariantHoldsByGuard(*second, guards("reference.exists() implies x")));
  CHECK(invariantHoldsByGuard(*obs, guards("contained.contained.empty()")));
  CHECK_FALSE(invariantHoldsByGuard(*obs, guards("contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()")));
  CHECK(invariantHoldsByGuard(*obs, guards("contained.meta.security.empty()")));
  CHECK_FALSE(invariantHoldsByGuard(*obs, guards("text.`div`.exists()")));
  // `value` of a primitive is its System value, not a child: left to the engine.
  CHECK_FALSE(invariantHoldsByGuard(*obs, guards("status.value.empty() or x")));
  // Primitive focus: never.
  CHECK_FALSE(invariantHoldsByGuard(*obs->child("status"), guards("extension.empty() or x")));
}

TEST_CASE("invariant guards: extension('url') steps, all(), the right side of implies", "[invariant-guards]") {
  auto hum1 = parseInvariantGuards(
      "family.extension('http://fhir.de/StructureDefinition/humanname-namenszusatz').empty() or family.hasValue()");
  REQUIRE(hum1.size() == 1);
  CHECK(hum1[0].all_of[0].path.size() == 2);
  auto hum4 = parseInvariantGuards("prefix.all($this.extension('http://x').empty() or $this.hasValue())");
  REQUIRE(hum4.size() == 1);
  CHECK(hum4[0].all_of[0].kind == GuardTest::Kind::AllOf);
  CHECK(parseInvariantGuards("prefix.all(x) or y").size() == 1);
  CHECK(parseInvariantGuards("prefix.all(x).not() or y").empty());
  CHECK(parseInvariantGuards("extension('http://x').empty() or y").size() == 1);  // on the focus itself
  CHECK(parseInvariantGuards("extension('http://x').empty() or y")[0].all_of[0].path.size() == 1);
  auto con1 = parseInvariantGuards("code.coding.exists() implies encounter.exists()");
  REQUIRE(con1.size() == 2);
  CHECK(con1[1].all_of[0].kind == GuardTest::Kind::Exists);
  CHECK(con1[1].all_of[0].path == std::vector<std::string>{"encounter"});
  CHECK(parseInvariantGuards("a.exists() implies b.exists() or c").empty());  // implies binds last: not split

  auto parsed = fhir::parseJson(R"({"resourceType":"Patient","name":[
    {"family":"Meier","_family":{"extension":[{"url":"http://x","valueString":"von"}]}},
    {"family":"Schmidt","prefix":["Dr."]}]})");
  REQUIRE(parsed.document);
  std::vector<const fhir::Node*> names;
  for (const fhir::Node* n : parsed.document->root()->children("name")) names.push_back(n);
  REQUIRE(names.size() == 2);
  auto ext = parseInvariantGuards("family.extension('http://x').empty() or x");
  CHECK_FALSE(invariantHoldsByGuard(*names[0], ext));
  CHECK(invariantHoldsByGuard(*names[1], ext));
  auto other = parseInvariantGuards("family.extension('http://y').empty() or x");
  CHECK(invariantHoldsByGuard(*names[0], other));
  auto all = parseInvariantGuards("prefix.all($this.hasValue()) or x");
  CHECK(invariantHoldsByGuard(*names[0], all));        // no prefix: all() of nothing
  CHECK_FALSE(invariantHoldsByGuard(*names[1], all));  // the engine decides
  auto implies = parseInvariantGuards("family.exists() implies given.exists() and family.exists()");
  CHECK_FALSE(invariantHoldsByGuard(*names[0], implies));
  auto rhs = parseInvariantGuards("prefix.exists() implies family.exists()");
  CHECK(invariantHoldsByGuard(*names[1], rhs));  // prefix present, family present: B true
}

#include "profiles/narrative_control.h"

TEST_CASE("narrative control: language sections required or prohibited, source classes", "[validator][narrative]") {
  using medicus::profiles::checkNarrativeControls;
  const char* none = R"(<div xmlns="http://www.w3.org/1999/xhtml">Text without container</div>)";
  const char* two = R"(<div xmlns="http://www.w3.org/1999/xhtml"><div xml:lang="en" lang="en">A</div><div lang="de">B</div></div>)";
  CHECK(checkNarrativeControls(none, "_yes", "", "P").size() == 1);
  CHECK(checkNarrativeControls(none, "_no", "", "P").empty());
  CHECK(checkNarrativeControls(two, "_yes", "", "P").empty());
  auto prohibited = checkNarrativeControls(two, "_no", "", "P");
  REQUIRE(prohibited.size() == 1);
  CHECK(prohibited[0].message.find("en, de") != std::string::npos);
  CHECK(checkNarrativeControls(two, "_resource", "", "P").empty());  // not checked here

  const char* mixed = R"(<div xmlns="http://www.w3.org/1999/xhtml">Loose text<h1 class="boilerplate">H</h1>)"
                      R"(<p>no source</p><p class="x generated">g</p><p class="original">o</p></div>)";
  auto sources = checkNarrativeControls(mixed, "", "warning", "P");
  REQUIRE(sources.size() == 2);
  CHECK(sources[0].severity == medicus::fhir::Severity::Warning);
  CHECK(sources[1].message.find("'no source'") != std::string::npos);
  CHECK(checkNarrativeControls(mixed, "", "error", "P")[0].severity == medicus::fhir::Severity::Error);
  CHECK(checkNarrativeControls(mixed, "", "success", "P").empty());
  CHECK(checkNarrativeControls(R"(<div xmlns="http://www.w3.org/1999/xhtml" class="generated">all <b>x</b></div>)", "",
                               "error", "P").empty());
}

TEST_CASE("invariant guards: complete guards also decide failures", "[invariant-guards]") {
  auto doc = parse(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},
    "valueQuantity":{"value":1,"code":"mg"},"subject":{"reference":"#p"}})");
  const fhir::Node* obs = doc->root();
  const fhir::Node* quantity = obs->child("value");
  auto decide = [](const fhir::Node& focus, std::string_view expression) {
    bool complete = false;
    auto guards = parseInvariantGuards(expression, &complete);
    return decideByGuards(focus, guards, complete);
  };
  auto complete = [](std::string_view expression) {
    bool c = true;
    (void)parseInvariantGuards(expression, &c);
    return c;
  };
  // The whole expression is tests: every one decided, none holding, means false.
  CHECK(complete("text.`div`.exists()"));
  CHECK(decide(*obs, "text.`div`.exists()") == GuardOutcome::Fails);
  CHECK(decide(*quantity, "code.empty() or system.exists()") == GuardOutcome::Fails);
  CHECK(decide(*quantity, "value.empty() or code.exists()") == GuardOutcome::Holds);
  CHECK(complete("code.exists() implies system.exists()"));  // not A, or B: both parsed
  CHECK(decide(*quantity, "code.exists() implies system.exists()") == GuardOutcome::Fails);
  CHECK(decide(*obs->child("subject"), "reference.startsWith('#').not()") == GuardOutcome::Fails);
  // Parts left to the engine: never a failure from the guards.
  CHECK_FALSE(complete("comment.exists() or (equivalence != 'narrower') or equivalence.empty()"));
  CHECK(decide(*obs, "comment.exists() or (equivalence != 'narrower')") == GuardOutcome::Undecided);
  CHECK_FALSE(complete("fullUrl.exists() implies fullUrl.contains('/_history/').not()"));
  CHECK(decide(*obs, "specimen.exists() implies specimen.contains('x').not()") == GuardOutcome::Holds);  // no specimen
  CHECK(decide(*obs, "subject.exists() implies subject.contains('x').not()") == GuardOutcome::Undecided);
  // all() decides only an empty collection (true); a test it cannot decide leaves it to the engine.
  CHECK(decide(*obs, "code.coding.all(system.exists())") == GuardOutcome::Holds);
  CHECK(decide(*quantity, "extension.all(x) or code.empty()") == GuardOutcome::Holds);
  CHECK(decide(*obs, "status.value.empty() or text.exists()") == GuardOutcome::Undecided);
  CHECK(decide(*obs->child("status"), "extension.exists()") == GuardOutcome::Undecided);  // primitive focus
  CHECK_FALSE(complete("a.empty() xor b.empty()"));
}

TEST_CASE("invariant guards: natively answered core invariants are told apart when compiled", "[invariant-guards]") {
  constexpr std::string_view kBundle = "http://hl7.org/fhir/StructureDefinition/Bundle";
  CHECK(nativeInvariantOf("ele-1", "hasValue() or (children().count() > id.count())", kBundle) == NativeInvariant::Ele1);
  CHECK(nativeInvariantOf("bdl-7", "x", kBundle) == NativeInvariant::Bdl7);
  CHECK(nativeInvariantOf("bdl-7", "x", "http://example.org/StructureDefinition/MyBundle") == NativeInvariant::None);
  CHECK(nativeInvariantOf("ref-1", kRef1Expression, "http://hl7.org/fhir/StructureDefinition/Reference") ==
        NativeInvariant::Ref1);
  CHECK(nativeInvariantOf("ref-1", "reference.exists()", "http://hl7.org/fhir/StructureDefinition/Reference") ==
        NativeInvariant::None);  // another expression under the key: the engine
  CHECK(nativeInvariantOf("dom-6", "text.`div`.exists()", "http://hl7.org/fhir/StructureDefinition/Patient") ==
        NativeInvariant::None);
}
