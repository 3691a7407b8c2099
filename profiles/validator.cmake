# medicus::profiles — FHIR package loading, snapshot generation, terminology and profile validation.
find_package(ZLIB REQUIRED)

add_library(profiles STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/tar_reader.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/package_registry.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/snapshot_generator.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/profile_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/terminology.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/validator.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/invariant_guards.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/questionnaire_validator.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/core_invariant_errata.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/attachment_checks.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/measure_rules.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/element_definitions.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/vital_signs.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/search_parameter_rules.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/capability_statement_rules.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/structure_definition_rules.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/narrative_control.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/folder_resolver.cpp)
add_library(medicus::profiles ALIAS profiles)
target_include_directories(profiles PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
# RapidJSON is header-only; the registry's public header hands out definition JSON (rapidjson/fwd.h).
target_link_libraries(profiles PUBLIC medicus::fhir_model tl::expected RapidJSON PRIVATE ZLIB::ZLIB pugixml::pugixml)
# Invariants use the FHIRPath engine when it is part of the build (profiles/fhirpath.cmake).
if(TARGET medicus::fhirpath)
  target_sources(profiles PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/fhirpath_invariant_engine.cpp)
  target_link_libraries(profiles PUBLIC medicus::fhirpath)
  target_compile_definitions(profiles PRIVATE MEDICUS_PROFILES_WITH_FHIRPATH=1)
else()
  target_sources(profiles PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/profiles/no_invariant_engine.cpp)
endif()

medicus_add_test_binary(profiles_tests
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/package_registry_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/snapshot_generator_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/terminology_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/validator_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/capability_statement_rules_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/validator_profile_rules_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/structure_definition_rules_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/questionnaire_validator_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/invariant_guards_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/tests/profiles/invariant_hooks_test.cpp
  LIBS medicus::profiles)
target_include_directories(profiles_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)

medicus_add_benchmark(profiles_bench SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench/profiles_bench.cpp LIBS medicus::profiles)
