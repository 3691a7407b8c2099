// Fuzz target: compile arbitrary text as FHIRPath (with and without a context type) and evaluate what
// compiles on an empty context. Must never crash, hang or overflow the stack.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "medicus/fhirpath/fhirpath.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace fp = medicus::fhirpath;
  auto lenient = fp::compile(text);
  if (lenient) {
    fp::EvaluationContext ctx;
    ctx.max_repeat_items = 1000;
    (void)lenient->evaluate(ctx);
  }
  fp::CompileOptions typed;
  typed.root_type = "Patient";
  (void)fp::compile(text, typed);
  return 0;
}
