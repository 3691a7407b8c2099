#include <catch2/catch.hpp>

#include "medicus/fhirpath/fhirpath.h"

namespace fp = medicus::fhirpath;

TEST_CASE("Syntax errors carry their position", "[fhirpath][parser]") {
  auto e = fp::compile("Patient.name.where(use = 'official'");
  REQUIRE_FALSE(e);
  CHECK(e.error().kind == fp::ErrorKind::Syntax);
  CHECK(e.error().column == 36);
  CHECK(e.error().toString().find("expected ')'") != std::string::npos);

  auto multi = fp::compile("1 +\n  * 2");
  REQUIRE_FALSE(multi);
  CHECK(multi.error().line == 2);
  CHECK(multi.error().column == 3);

  CHECK_FALSE(fp::compile("2 + 2 /* not finished"));
  CHECK_FALSE(fp::compile("'unterminated"));
  CHECK_FALSE(fp::compile("@2015-13-01"));
  CHECK_FALSE(fp::compile("a.b)"));
  CHECK(fp::compile("2 + /* inline */ 2 // trailing"));
}

TEST_CASE("Unknown functions, wrong arity and unknown elements are semantic errors", "[fhirpath][parser]") {
  auto unknown = fp::compile("name.frobnicate()");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().kind == fp::ErrorKind::Semantic);
  CHECK_FALSE(fp::compile("name.where()"));
  CHECK_FALSE(fp::compile("substring(1, 2, 3)"));

  fp::CompileOptions patient;
  patient.root_type = "Patient";
  CHECK(fp::compile("Patient.name.given", patient));
  auto foo = fp::compile("Patient.foo", patient);
  REQUIRE_FALSE(foo);
  CHECK(foo.error().kind == fp::ErrorKind::Semantic);
  CHECK(foo.error().column == 9);
  // Choice elements are navigated by their name, not by the JSON property.
  fp::CompileOptions observation;
  observation.root_type = "Observation";
  CHECK(fp::compile("Observation.value.unit", observation));
  CHECK_FALSE(fp::compile("Observation.valueQuantity", observation));
  CHECK_FALSE(fp::compile("(Observation.value as Period).unit", observation));
  CHECK_FALSE(fp::compile("Observation.code.matches('[')", observation));
}

TEST_CASE("Deep nesting is rejected, not overflowed", "[fhirpath][parser]") {
  std::string deep(100000, '(');
  deep += "1";
  deep += std::string(100000, ')');
  auto e = fp::compile(deep);
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("too deeply") != std::string::npos);
  CHECK_FALSE(fp::compile(std::string(100000, '-') + "1"));
}
