#pragma once
// Case-insensitive comparison of ASCII names (HTTP field names, media types, tokens). Inline, with a
// fast path for equal bytes: Beast's iequals is an out-of-line call that lowers both sides of every
// byte, and the proxy compares field names several times per field of every reply. Pure.
#include <cstddef>
#include <string_view>

namespace medicus::gateway {

inline bool asciiIequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    // Differ only in the case bit, and a letter.
    unsigned char lower = static_cast<unsigned char>(x | 0x20);
    if ((x ^ y) != 0x20 || lower < 'a' || lower > 'z') return false;
  }
  return true;
}

}  // namespace medicus::gateway
