#include "tls_session_cache.h"

#include <openssl/ssl.h>

namespace medicus::gateway {
namespace {

// The SSL ex_data slot holding a tagged connection's Slot*.
int slotIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

void TlsSessionCache::enable(SSL_CTX* context) {
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, &TlsSessionCache::onNewSession);
}

TlsSessionCache::TlsSessionCache(size_t endpoints) : slots_(endpoints) {
  for (auto& slot : slots_) slot.cache = this;
}

TlsSessionCache::~TlsSessionCache() {
  for (auto& slot : slots_) SSL_SESSION_free(slot.session);  // (null is fine)
}

void TlsSessionCache::offer(SSL* ssl, size_t index) {
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  SSL_set_ex_data(ssl, slotIndex(), &slot);
  SSL_SESSION* copy = nullptr;
  {
    std::lock_guard lock(mutex_);
    // A copy again (see onNewSession): the one offered becomes the connection's session, which
    // freeing it unshut would mark not resumable, and the saved one must stay resumable.
    if (slot.session) copy = SSL_SESSION_dup(slot.session);
  }
  if (!copy) return;
  // A server that does not accept it does a full handshake and issues a new one, which replaces it.
  SSL_set_session(ssl, copy);  // takes its own reference
  SSL_SESSION_free(copy);
}

bool TlsSessionCache::holds(size_t index) const {
  std::lock_guard lock(mutex_);
  return index < slots_.size() && slots_[index].session != nullptr;
}

int TlsSessionCache::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<Slot*>(SSL_get_ex_data(ssl, slotIndex()));
  if (!slot || !SSL_SESSION_is_resumable(session)) return 0;
  // A copy, not `session` itself: it stays the connection's current session, and freeing an SSL
  // that was not shut down (a pooled connection the upstream closed, or one dropped) marks its
  // current session not resumable.
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (!copy) return 0;
  std::lock_guard lock(slot->cache->mutex_);
  SSL_SESSION_free(slot->session);
  slot->session = copy;
  return 0;  // OpenSSL keeps its reference to `session`
}

}  // namespace medicus::gateway
