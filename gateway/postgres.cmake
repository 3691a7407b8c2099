# medicus::gateway_store_postgres: the MessageStore on PostgreSQL (several gateway instances sharing one
# queue). Its tests run against a throw-away server that ctest starts and stops (scripts/pg-test-server.sh).
find_package(PostgreSQL REQUIRED)

add_library(gateway_store_postgres STATIC src/store/postgres_message_store.cpp)
add_library(medicus::gateway_store_postgres ALIAS gateway_store_postgres)
target_include_directories(gateway_store_postgres PUBLIC include)
target_link_libraries(gateway_store_postgres PUBLIC medicus::gateway_store PRIVATE PostgreSQL::PostgreSQL Threads::Threads)

if(MEDICUS_BUILD_TESTS)
  set(MEDICUS_PG_TEST_DIR ${CMAKE_BINARY_DIR}/pg-test-server)
  add_test(NAME postgres.server.start COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg-test-server.sh start ${MEDICUS_PG_TEST_DIR})
  add_test(NAME postgres.server.stop COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg-test-server.sh stop ${MEDICUS_PG_TEST_DIR})
  set_tests_properties(postgres.server.start PROPERTIES FIXTURES_SETUP postgres)
  set_tests_properties(postgres.server.stop PROPERTIES FIXTURES_CLEANUP postgres)
  add_executable(gateway_postgres_tests tests/store/postgres_message_store_test.cpp ${PROJECT_SOURCE_DIR}/cmake/catch_main.cpp)
  target_link_libraries(gateway_postgres_tests PRIVATE Catch2::Catch2 medicus::gateway_store_postgres Threads::Threads)
  # One ctest entry: the cases share the server and must not run in parallel with each other.
  add_test(NAME postgres.message_store COMMAND gateway_postgres_tests)
  set_tests_properties(postgres.message_store PROPERTIES FIXTURES_REQUIRED postgres
    ENVIRONMENT "MEDICUS_PG_DSN_FILE=${MEDICUS_PG_TEST_DIR}/dsn")
endif()
