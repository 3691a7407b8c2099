#include "host_resolution_cache.h"

namespace medicus::gateway {

std::string HostResolutionCache::keyOf(std::string_view host, uint16_t port) {
  std::string key(host);
  key += ':';
  key += std::to_string(port);
  return key;
}

HostResolutionCache::Addresses HostResolutionCache::fresh(std::string_view host, uint16_t port, Clock::time_point now,
                                                          Clock::duration ttl) const {
  auto it = entries_.find(keyOf(host, port));
  if (it == entries_.end() || now - it->second.resolved_at >= ttl) return {};
  return it->second.addresses;
}

HostResolutionCache::Addresses HostResolutionCache::stale(std::string_view host, uint16_t port) const {
  auto it = entries_.find(keyOf(host, port));
  return it == entries_.end() ? Addresses{} : it->second.addresses;
}

void HostResolutionCache::store(std::string_view host, uint16_t port, Addresses addresses, Clock::time_point now) {
  if (addresses.empty()) return;
  entries_[keyOf(host, port)] = Entry{std::move(addresses), now};
}

void HostResolutionCache::forget(std::string_view host, uint16_t port) { entries_.erase(keyOf(host, port)); }

}  // namespace medicus::gateway
