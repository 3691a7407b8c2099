#pragma once
// Addresses of upstream host names, kept for a while so a new connection does not wait on a lookup.
// Asio's resolver runs getaddrinfo on a thread of its own: a lookup per new connection cost two thread
// hand-offs, and a DNS server that is slow or down held up every connection the pool opened.
//
// Per worker thread (like the idle pool), so no locks. An entry younger than the upstream's
// resolve_ttl is used as it is; an older one is looked up again, and kept (stale) when that lookup
// fails, so a DNS outage does not take down upstreams whose addresses have not changed. A connection
// that fails to every address forgets the entry: the next one looks the name up again.
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace medicus::gateway {

class HostResolutionCache {
 public:
  using Clock = std::chrono::steady_clock;
  using Addresses = std::vector<boost::asio::ip::tcp::endpoint>;

  // The addresses of host:port resolved less than `ttl` ago; empty when there are none.
  Addresses fresh(std::string_view host, uint16_t port, Clock::time_point now, Clock::duration ttl) const;
  // The addresses of host:port however old (for when a new lookup failed); empty when there are none.
  Addresses stale(std::string_view host, uint16_t port) const;
  void store(std::string_view host, uint16_t port, Addresses addresses, Clock::time_point now);
  void forget(std::string_view host, uint16_t port);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Addresses addresses;
    Clock::time_point resolved_at;
  };
  static std::string keyOf(std::string_view host, uint16_t port);
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace medicus::gateway
