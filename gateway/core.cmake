# medicus::gateway_core: config, pipeline stages, HTTP(S) server, upstream client, metrics, TLS.
# Beast/Asio are confined to gateway_server.cpp and upstream_client.cpp (slow to compile); the rest
# builds in well under a second per file.
find_package(Boost 1.81 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)

add_library(gateway_core STATIC
  src/config.cpp
  src/stages.cpp
  src/route_table.cpp
  src/content_negotiation.cpp
  src/url_rewriter.cpp
  src/gateway_metrics.cpp
  src/access_log_writer.cpp
  src/tls_setup.cpp
  src/tls_socket_stream.cpp
  src/tls_session_cache.cpp
  src/host_resolution_cache.cpp
  src/upstream_reply.cpp
  src/upstream_client.cpp
  src/gateway_server.cpp
  src/profile_validator_provider.cpp
  src/validate_operation.cpp
  src/capability_filter.cpp)
add_library(medicus::gateway_core ALIAS gateway_core)
target_include_directories(gateway_core PUBLIC include PRIVATE src)
target_link_libraries(gateway_core
  PUBLIC medicus::fhir_model tl::expected
  PRIVATE Boost::headers OpenSSL::SSL OpenSSL::Crypto yaml-cpp prometheus-cpp::core Threads::Threads)
# The validate stage's provider (profile_validator_provider.cpp) needs the profile validator.
target_link_libraries(gateway_core PUBLIC medicus::profiles)
target_compile_definitions(gateway_core PRIVATE
  MEDICUS_VERSION="${PROJECT_VERSION}"
  BOOST_ASIO_NO_DEPRECATED)

# Unit tests (pure parts) and end-to-end tests (real upstream FHIR server started by the tests).
find_program(MEDICUS_NODE node)
find_program(MEDICUS_OPENSSL openssl)
# Debian's python3 (scripts/setup.sh installs it) for the e2e tests' http.server upstream, not whatever
# python3 comes first in PATH (a pyenv shim runs several scripts before the interpreter starts).
find_program(MEDICUS_SYSTEM_PYTHON3 python3 PATHS /usr/bin /bin NO_DEFAULT_PATH)
find_program(MEDICUS_NGINX nginx PATHS /usr/sbin /usr/bin)  # a compressing proxy in front of the e2e upstream
medicus_add_test_binary(gateway_tests
  SOURCES tests/config_test.cpp tests/route_table_test.cpp tests/content_negotiation_test.cpp
          tests/url_rewriter_test.cpp tests/validate_stage_test.cpp tests/capability_filter_test.cpp tests/gateway_metrics_test.cpp tests/access_log_writer_test.cpp tests/tls_setup_test.cpp tests/upstream_reply_test.cpp tests/drain_aware_socket_test.cpp tests/tls_socket_stream_test.cpp tests/tls_session_cache_test.cpp tests/host_resolution_cache_test.cpp tests/complete_within_test.cpp tests/e2e/fhir_e2e_test.cpp tests/e2e/test_upstream.cpp
          tests/e2e/http_test_client.cpp
  LIBS medicus::gateway_core Boost::headers OpenSSL::SSL OpenSSL::Crypto)
if(TARGET gateway_tests)
  target_include_directories(gateway_tests PRIVATE src tests)
  target_compile_definitions(gateway_tests PRIVATE
    MEDICUS_NODE="${MEDICUS_NODE}" MEDICUS_OPENSSL="${MEDICUS_OPENSSL}" MEDICUS_SYSTEM_PYTHON3="${MEDICUS_SYSTEM_PYTHON3}"
    MEDICUS_NGINX="${MEDICUS_NGINX}"
    MEDICUS_E2E_DIR="${PROJECT_SOURCE_DIR}/scripts/e2e"
    BOOST_ASIO_NO_DEPRECATED)
endif()

# Fixed-rate load generator for gateway/bench/http_bench.sh (latency at a given load, HTTP and HTTPS; wrk has no rate).
medicus_add_benchmark(http_load SOURCES bench/http_load.cpp LIBS Boost::headers OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
