# Helpers shared by the modules: one Catch2 binary per module, fuzz targets whose corpus ctest replays,
# and benchmarks.

# medicus_add_test_binary(NAME SOURCES... LIBS ...): a Catch2 binary registered test by test with ctest.
function(medicus_add_test_binary name)
  if(NOT MEDICUS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/cmake/catch_main.cpp)
  target_link_libraries(${name} PRIVATE Catch2::Catch2 ${ARG_LIBS})
  target_compile_definitions(${name} PRIVATE
    MEDICUS_TESTDATA_DEFAULT="${MEDICUS_TESTDATA}"
    MEDICUS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  catch_discover_tests(${name}
    PROPERTIES ENVIRONMENT "MEDICUS_FHIR_PACKAGES=${MEDICUS_FHIR_PACKAGES}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# medicus_add_fuzz_target(NAME SOURCE CORPUS_DIR LIBS ...): with MEDICUS_LIBFUZZER a libFuzzer binary;
# otherwise a replay driver that runs every file of the corpus once, registered with ctest.
function(medicus_add_fuzz_target name source corpus)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  if(MEDICUS_LIBFUZZER)
    add_executable(${name} ${source})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address)
  else()
    add_executable(${name} ${source} ${PROJECT_SOURCE_DIR}/cmake/fuzz_replay_main.cpp)
    if(MEDICUS_BUILD_TESTS)
      add_test(NAME ${name}.corpus COMMAND ${name} ${corpus})
    endif()
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
endfunction()

function(medicus_add_benchmark name)
  if(NOT MEDICUS_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  target_compile_definitions(${name} PRIVATE MEDICUS_TESTDATA_DEFAULT="${MEDICUS_TESTDATA}")
endfunction()
