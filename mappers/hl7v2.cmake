# medicus::hl7v2: ER7 parse/encode, charsets, ACK builder, MLLP framing. Pure C++20, nothing of ours.
add_library(medicus_hl7v2
  ${CMAKE_CURRENT_SOURCE_DIR}/src/hl7v2/error.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/hl7v2/message.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/hl7v2/charset.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/hl7v2/ack.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/hl7v2/mllp_framer.cpp)
add_library(medicus::hl7v2 ALIAS medicus_hl7v2)
target_include_directories(medicus_hl7v2
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
  PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
target_link_libraries(medicus_hl7v2 PUBLIC tl::expected)

medicus_add_test_binary(hl7v2_tests
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/hl7v2/message_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/hl7v2/charset_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/hl7v2/ack_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/hl7v2/mllp_framer_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tests/hl7v2/testdata_test.cpp
  LIBS medicus::hl7v2)

medicus_add_fuzz_target(er7_parser_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/er7_parser_fuzz.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/er7_parser_fuzz LIBS medicus::hl7v2)
medicus_add_fuzz_target(mllp_framer_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/mllp_framer_fuzz.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/mllp_framer_fuzz LIBS medicus::hl7v2)

medicus_add_benchmark(hl7v2_bench
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench/hl7v2_bench.cpp
  LIBS medicus::hl7v2)
