#pragma once
// The rules of Questionnaire and QuestionnaireResponse that their StructureDefinitions cannot express
// (http://hl7.org/fhir/R4/questionnaireresponse.html#link, http://hl7.org/fhir/R4/questionnaire.html),
// checked the way the HL7 Java validator checks them (its QuestionnaireValidator and
// EnableWhenEvaluator), so that our verdicts agree with the reference:
//
// - QuestionnaireResponse: resolved against the Questionnaire named in .questionnaire (contained
//   "#id", an entry of the Bundle being validated, or a loaded package / supporting file); every
//   item's linkId must exist there, at the right nesting level and in order; answers must have the
//   value type of item.type; repeats, required (status completed/amended: error, otherwise warning),
//   enableWhen (answers to disabled items are errors), enableWhen expressions, group/display items
//   without answers, answerOption and answerValueSet membership, maxLength and the SDC/core
//   extensions minLength, regex, minValue/maxValue, maxDecimalPlaces, min/maxQuantity, unitOption,
//   unitValueSet, mimeType, maxSize, referenceResource, minOccurs/maxOccurs, optionExclusive; the
//   authored date against effectivePeriod. enableWhenExpression (SDC) is FHIRPath with the SDC
//   variables in scope; one that cannot be evaluated (e.g. it needs %patient) leaves the item enabled.
//   Reference answers are checked against questionnaire-referenceResource only with
//   ValidationOptions::assume_valid_rest_references, as the reference validator does.
// - Questionnaire: enableWhen.question must name another, earlier item that is not inside the item
//   itself; derivedFrom should resolve, and with derivation type 'extends' or 'compliesWith' the
//   inherited items keep their type, repeats, required, maxLength and answer options ('compliesWith'
//   adds no items).
//
// Called once per resource by the Validator (also for contained resources and Bundle entries).
#include "medicus/fhir/issue.h"
#include "medicus/fhir/node.h"
#include "medicus/profiles/profile_store.h"
#include "medicus/profiles/terminology.h"
#include "medicus/profiles/validator.h"

namespace medicus::profiles {

struct QuestionnaireContext {
  ProfileStore& store;         // its registry resolves questionnaires and value sets by canonical
  Terminology& terminology;
  const fhir::Document& document;  // the document being validated (contained resources, Bundle entries)
  const ValidationOptions& options;
  fhir::Issues& issues;            // where the issues go
};

// Checks `resource` when it is a Questionnaire or a QuestionnaireResponse; other resources: nothing.
void checkQuestionnaireRules(const fhir::Node& resource, const QuestionnaireContext& context);

}  // namespace medicus::profiles
