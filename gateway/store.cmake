# medicus::gateway_store: the durable HL7 v2 message store and delivery queue (SQLite, WAL, group commit).
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)

add_library(gateway_store STATIC src/store/sqlite_message_store.cpp)
add_library(medicus::gateway_store ALIAS gateway_store)
target_include_directories(gateway_store PUBLIC include PRIVATE src)
target_link_libraries(gateway_store PUBLIC tl::expected PRIVATE SQLite::SQLite3 Threads::Threads)

medicus_add_test_binary(gateway_store_tests
  SOURCES tests/store/sqlite_message_store_test.cpp
  LIBS medicus::gateway_store SQLite::SQLite3 Threads::Threads)
