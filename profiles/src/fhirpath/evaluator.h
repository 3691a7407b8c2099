#pragma once
#include "fhirpath/ast.h"

namespace medicus::fhirpath {

struct Expression::Impl {
  std::string text;
  detail::AstPtr root;
  CompileOptions options;
};

}  // namespace medicus::fhirpath
