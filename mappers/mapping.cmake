# medicus::mappers: config-driven HL7 v2 -> FHIR R4 mapping (YAML maps compiled at start).
find_package(yaml-cpp REQUIRED)
add_library(medicus_mappers
  ${CMAKE_CURRENT_SOURCE_DIR}/src/mappers/converters.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/mappers/maps_location.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/mappers/v2_to_fhir.cpp)
add_library(medicus::mappers ALIAS medicus_mappers)
target_include_directories(medicus_mappers
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
  PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/mappers)
target_compile_definitions(medicus_mappers PRIVATE MEDICUS_SHIPPED_MAPS_DIR="${CMAKE_CURRENT_SOURCE_DIR}/maps")
target_link_libraries(medicus_mappers PUBLIC medicus::hl7v2 medicus::fhir_model tl::expected PRIVATE yaml-cpp)

medicus_add_test_binary(mappers_tests
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/mappers/converters_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/mappers/v2_to_fhir_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/mappers/shared_data_test.cpp
  LIBS medicus::mappers RapidJSON)
if(TARGET mappers_tests)
  target_include_directories(mappers_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/mappers)
  target_compile_definitions(mappers_tests PRIVATE MEDICUS_MAPPERS_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
endif()

medicus_add_benchmark(mapping_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench/mapping_bench.cpp
  LIBS medicus::mappers)
if(TARGET mapping_bench)
  target_compile_definitions(mapping_bench PRIVATE MEDICUS_MAPPERS_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
endif()

medicus_add_fuzz_target(v2_mapping_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/v2_mapping_fuzz.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/v2_mapping_fuzz LIBS medicus::mappers)
target_compile_definitions(v2_mapping_fuzz PRIVATE MEDICUS_MAPPERS_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
