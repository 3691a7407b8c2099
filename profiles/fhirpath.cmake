# medicus::fhirpath: the FHIRPath engine (parser, compile-time checks, evaluator over fhir_model nodes).
add_library(fhirpath
  src/fhirpath/value.cpp
  src/fhirpath/parser.cpp
  src/fhirpath/ucum.cpp
  src/fhirpath/operators.cpp
  src/fhirpath/compiler.cpp
  src/fhirpath/evaluator.cpp)
add_library(medicus::fhirpath ALIAS fhirpath)
target_include_directories(fhirpath PUBLIC include PRIVATE src)
target_link_libraries(fhirpath PUBLIC medicus::fhir_model tl::expected)

medicus_add_test_binary(fhirpath_tests
  SOURCES tests/fhirpath/value_test.cpp tests/fhirpath/parser_test.cpp tests/fhirpath/evaluator_test.cpp
  LIBS medicus::fhirpath)

medicus_add_fuzz_target(fhirpath_parser_fuzz fuzz/fhirpath_parser/fhirpath_parser_fuzz.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fhirpath_parser/corpus LIBS medicus::fhirpath)

if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/bench/fhirpath_bench.cpp)
  medicus_add_benchmark(fhirpath_bench SOURCES bench/fhirpath_bench.cpp LIBS medicus::fhirpath RapidJSON)
  if(TARGET fhirpath_bench)
    target_compile_definitions(fhirpath_bench PRIVATE MEDICUS_FHIR_PACKAGES_DEFAULT="${MEDICUS_FHIR_PACKAGES}")
  endif()
endif()
