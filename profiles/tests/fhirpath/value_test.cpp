#include <catch2/catch.hpp>

#include "medicus/fhirpath/value.h"

using medicus::fhirpath::Decimal;
using medicus::fhirpath::Temporal;
using medicus::fhirpath::TemporalKind;
using medicus::fhirpath::TemporalPrecision;

TEST_CASE("Decimal keeps the written digits and computes exactly", "[fhirpath][decimal]") {
  auto a = Decimal::parse("1.50");
  REQUIRE(a);
  CHECK(a->toString() == "1.50");
  CHECK(Decimal::parse("0.1")->add(*Decimal::parse("0.2"))->toString() == "0.3");
  CHECK(Decimal::parse("1.8")->sub(*Decimal::parse("1.2"))->toString() == "0.6");
  CHECK(Decimal::parse("-2.5")->mul(*Decimal::parse("0.4"))->toString() == "-1.00");
  CHECK(Decimal::parse("1")->div(*Decimal::parse("3"))->toString() == "0.33333333");
  CHECK(Decimal::parse("4")->div(*Decimal::parse("2"))->toString() == "2");
  CHECK_FALSE(Decimal::parse("1")->div(Decimal::fromInt(0)));
  CHECK(Decimal::parse("1e2")->toString() == "100");
  CHECK_FALSE(Decimal::parse("1.2.3"));
  CHECK_FALSE(Decimal::parse(""));
  CHECK(compare(*Decimal::parse("1.0"), *Decimal::parse("1")) == 0);
  CHECK(Decimal::parse("2.675")->rescale(2).toString() == "2.68");
  CHECK(Decimal::parse("-2.5")->floor().toString() == "-3");
  CHECK(Decimal::parse("-2.5")->ceiling().toString() == "-2");
}

TEST_CASE("Temporal parses partial precision and time zones", "[fhirpath][temporal]") {
  auto d = Temporal::parse("2015-02", TemporalKind::Date);
  REQUIRE(d);
  CHECK(d->precision == TemporalPrecision::Month);
  CHECK(d->toString() == "2015-02");
  auto dt = Temporal::parse("2015-02-04T14:34:28.123+10:00", TemporalKind::DateTime);
  REQUIRE(dt);
  CHECK(dt->precision == TemporalPrecision::Millisecond);
  CHECK(dt->tz_offset_minutes == 600);
  CHECK(dt->toString() == "2015-02-04T14:34:28.123+10:00");
  CHECK(Temporal::parse("T14:34", TemporalKind::Time)->toString() == "14:34");
  CHECK_FALSE(Temporal::parse("2015-02-30", TemporalKind::Date));
  CHECK_FALSE(Temporal::parse("2015-13", TemporalKind::Date));
  CHECK_FALSE(Temporal::parse("T25:00", TemporalKind::Time));
}
