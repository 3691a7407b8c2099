// Built when medicus::fhirpath is not part of the build: invariants stay uncompiled and the validator
// reports them as not checked.
#include "medicus/profiles/invariant_engine.h"

namespace medicus::profiles {
std::shared_ptr<const InvariantEngine> fhirpathInvariantEngine() { return nullptr; }
}  // namespace medicus::profiles
