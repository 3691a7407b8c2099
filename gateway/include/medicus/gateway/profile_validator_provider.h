#pragma once
// The gateway's ResourceValidatorProvider backed by medicus::profiles: R4 core from the package cache
// ($MEDICUS_FHIR_PACKAGES, else ~/.fhir/packages) plus the packages a validate stage names.
namespace medicus::gateway {

// Installs the provider (idempotent). Call once at startup, before configs are loaded (serve,
// check-config). Validators are cached by their package list, so stages naming the same packages
// share one loaded registry, also across config reloads.
void installProfileValidatorProvider();

}  // namespace medicus::gateway
