#pragma once
// MeasureReport against its Measure (http://hl7.org/fhir/R4/measurereport.html): the rules the
// StructureDefinitions cannot express, as the HL7 Java validator checks them.
//
// - every report group matches a group of the Measure by code (a single group on each side matches
//   without codes); every Measure group is reported;
// - every population code of a report group is one of the matched Measure group's populations;
// - a 'cohort' Measure has no measureScore;
// - in a subject-list report, a population's count equals its number of subjects.
// The Measure is found by its canonical (MeasureReport.measure) among the loaded resources; when it
// is not loaded, nothing is checked here.
#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/package_registry.h"

namespace medicus::profiles {

void checkMeasureReport(const fhir::Node& report, const PackageRegistry& registry, const fhir::Document& document,
                        fhir::Issues& issues);

}  // namespace medicus::profiles
