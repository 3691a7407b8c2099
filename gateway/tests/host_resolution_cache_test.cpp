// HostResolutionCache: a host's addresses are fresh for resolve_ttl, then kept only as stale ones (for a
// failed lookup); entries per host and port; forget; empty lookups are not kept.
#include <catch2/catch.hpp>

#include "host_resolution_cache.h"

using namespace medicus::gateway;
using Clock = HostResolutionCache::Clock;
using tcp = boost::asio::ip::tcp;

namespace {
HostResolutionCache::Addresses addressesOf(const char* ip, uint16_t port) {
  return {tcp::endpoint(boost::asio::ip::make_address(ip), port)};
}
}  // namespace

TEST_CASE("host resolution cache: addresses are fresh for the ttl, then only stale") {
  HostResolutionCache cache;
  const auto t0 = Clock::now();
  const auto ttl = std::chrono::seconds(30);
  CHECK(cache.fresh("fhir.internal", 8080, t0, ttl).empty());
  CHECK(cache.stale("fhir.internal", 8080).empty());
  cache.store("fhir.internal", 8080, addressesOf("10.0.0.7", 8080), t0);
  CHECK(cache.fresh("fhir.internal", 8080, t0 + std::chrono::seconds(29), ttl) == addressesOf("10.0.0.7", 8080));
  CHECK(cache.fresh("fhir.internal", 8080, t0 + ttl, ttl).empty());
  // Past the ttl the last addresses stay, for when a new lookup fails.
  CHECK(cache.stale("fhir.internal", 8080) == addressesOf("10.0.0.7", 8080));
  // A new lookup replaces them and starts the ttl again.
  cache.store("fhir.internal", 8080, addressesOf("10.0.0.8", 8080), t0 + ttl);
  CHECK(cache.fresh("fhir.internal", 8080, t0 + ttl + std::chrono::seconds(1), ttl) == addressesOf("10.0.0.8", 8080));
}

TEST_CASE("host resolution cache: entries are per host and port; forget and empty lookups") {
  HostResolutionCache cache;
  const auto now = Clock::now();
  const auto ttl = std::chrono::seconds(30);
  cache.store("fhir.internal", 8080, addressesOf("10.0.0.7", 8080), now);
  CHECK(cache.fresh("fhir.internal", 8443, now, ttl).empty());
  CHECK(cache.fresh("other.internal", 8080, now, ttl).empty());
  // An empty lookup is not kept (it would hide the stale addresses).
  cache.store("fhir.internal", 8080, {}, now);
  CHECK(cache.fresh("fhir.internal", 8080, now, ttl) == addressesOf("10.0.0.7", 8080));
  // A ttl of 0: nothing is fresh.
  CHECK(cache.fresh("fhir.internal", 8080, now, Clock::duration::zero()).empty());
  cache.forget("fhir.internal", 8080);
  CHECK(cache.stale("fhir.internal", 8080).empty());
  CHECK(cache.size() == 0);
}
