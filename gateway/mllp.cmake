# medicus::gateway_mllp: MLLP listeners (TCP/TLS), the HL7 v2 intake pipeline, delivery to FHIR
# upstreams and the intake metrics. Needs medicus::hl7v2 and medicus::gateway_store.
if(NOT TARGET medicus::hl7v2 OR NOT TARGET medicus::gateway_store OR NOT TARGET medicus::gateway_core)
  return()
endif()

add_library(gateway_mllp STATIC
  src/mllp/mllp_message_handler.cpp
  src/mllp/intake_metrics.cpp
  src/mllp/mllp_server.cpp
  src/mllp/intake_config.cpp
  src/mllp/hl7v2_intake.cpp
  src/mllp/intake_store.cpp
  src/delivery/v2_fhir_mapper.cpp
  src/delivery/delivery_worker.cpp)
add_library(medicus::gateway_mllp ALIAS gateway_mllp)
target_include_directories(gateway_mllp PUBLIC include PRIVATE src)
target_link_libraries(gateway_mllp
  PUBLIC medicus::gateway_store medicus::gateway_store_postgres medicus::hl7v2 tl::expected
  PRIVATE medicus::gateway_core Boost::headers OpenSSL::SSL OpenSSL::Crypto prometheus-cpp::core Threads::Threads)
target_compile_definitions(gateway_mllp PRIVATE BOOST_ASIO_NO_DEPRECATED)
# Lets medicus-gateway (serve, replay) know the intake is linked in.
target_compile_definitions(gateway_mllp INTERFACE MEDICUS_HAVE_HL7V2_INTAKE)
target_link_libraries(gateway_mllp PRIVATE yaml-cpp)
# The v2 -> FHIR mapping, when its module is built; without it the delivery sends nothing.
if(TARGET medicus::mappers)
  target_link_libraries(gateway_mllp PRIVATE medicus::mappers)
  target_compile_definitions(gateway_mllp PRIVATE MEDICUS_HAVE_MAPPERS)
endif()

medicus_add_test_binary(gateway_mllp_tests
  SOURCES tests/mllp/mllp_message_handler_test.cpp tests/mllp/mllp_server_test.cpp
          tests/mllp/delivery_worker_test.cpp tests/mllp/intake_config_test.cpp tests/mllp/hl7v2_intake_test.cpp
  LIBS medicus::gateway_mllp medicus::gateway_core Boost::headers OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
if(TARGET gateway_mllp_tests)
  target_include_directories(gateway_mllp_tests PRIVATE src)
endif()

# The MLLP frame handler (charset policy, parse, checks, ACKs before and after the store) under any bytes;
# the corpus is replayed by ctest (mllp_message_handler_fuzz.corpus).
medicus_add_fuzz_target(mllp_message_handler_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/mllp_message_handler_fuzz.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/mllp_message_handler_fuzz LIBS medicus::gateway_mllp medicus::hl7v2)
target_include_directories(mllp_message_handler_fuzz PRIVATE src)

medicus_add_benchmark(mllp_bench
  SOURCES bench/mllp_bench.cpp
  LIBS medicus::gateway_mllp medicus::gateway_core SQLite::SQLite3 Threads::Threads)
if(TARGET mllp_bench)
  target_include_directories(mllp_bench PRIVATE src)
endif()

# Crash test (kill -9 during a 10,000-message MLLP load, restart, nothing lost); needs python3 and the
# medicus-gateway executable with the mapping module. About 15 s.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(MEDICUS_BUILD_TESTS AND Python3_Interpreter_FOUND AND TARGET medicus::mappers)
  add_test(NAME mllp_crash_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/mllp/crash/mllp_crash_test.sh $<TARGET_FILE:medicus-gateway>
            ${PROJECT_SOURCE_DIR}/mappers/maps 10000)
  set_tests_properties(mllp_crash_test PROPERTIES TIMEOUT 300 RUN_SERIAL ON)
  # SIGHUP reload of the intake in a real serve process (charset policy, maps; a failing reload keeps them).
  add_test(NAME mllp_reload_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/mllp/crash/mllp_reload_test.sh $<TARGET_FILE:medicus-gateway>
            ${PROJECT_SOURCE_DIR}/mappers/maps)
  set_tests_properties(mllp_reload_test PROPERTIES TIMEOUT 120)
endif()
