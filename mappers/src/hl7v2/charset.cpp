#include "medicus/hl7v2/charset.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

namespace medicus::hl7v2 {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

Error charsetError(ErrorCode code, std::string message, std::size_t offset, int field = 0) {
  Error error;
  error.code = code;
  error.byte_offset = offset;
  error.message = std::move(message);
  if (field > 0) {
    error.location.segment = "MSH";
    error.location.segment_occurrence = 1;
    error.location.segment_index = 0;
    error.location.field = field;
  }
  return error;
}

void appendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes one UTF-8 sequence at `pos`; returns the code point and advances, or nullopt when invalid
// (overlong forms, surrogates and values above U+10FFFF are invalid, RFC 3629).
std::optional<std::uint32_t> nextCodePoint(std::string_view s, std::size_t& pos) {
  auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  int length;
  std::uint32_t cp;
  std::uint32_t min;
  if ((b0 & 0xE0) == 0xC0) length = 2, cp = b0 & 0x1F, min = 0x80;
  else if ((b0 & 0xF0) == 0xE0) length = 3, cp = b0 & 0x0F, min = 0x800;
  else if ((b0 & 0xF8) == 0xF0) length = 4, cp = b0 & 0x07, min = 0x10000;
  else return std::nullopt;
  if (pos + length > s.size()) return std::nullopt;
  for (int i = 1; i < length; ++i) {
    auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += length;
  return cp;
}

// ISO-8859-15 differs from ISO-8859-1 in eight positions.
constexpr std::pair<unsigned char, std::uint32_t> kLatin9Differences[] = {
    {0xA4, 0x20AC}, {0xA6, 0x0160}, {0xA8, 0x0161}, {0xB4, 0x017D},
    {0xB8, 0x017E}, {0xBC, 0x0152}, {0xBD, 0x0153}, {0xBE, 0x0178}};

std::string normalizeName(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ' ' || c == '-' || c == '_' || c == '/' || c == '.') continue;
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

// MSH-18 (first repetition, first component) read straight from the bytes of the first segment.
std::optional<std::pair<std::string_view, std::size_t>> rawMsh18(std::string_view bytes, std::size_t msh) {
  if (bytes.substr(msh, 3) != "MSH" || msh + 4 >= bytes.size()) return std::nullopt;
  const char fs = bytes[msh + 3];
  const char cs = bytes[msh + 4];
  std::size_t pos = msh + 4;  // start of MSH-2
  for (int field = 2; field < 18; ++field) {
    while (pos < bytes.size() && bytes[pos] != fs && bytes[pos] != '\r' && bytes[pos] != '\n') ++pos;
    if (pos >= bytes.size() || bytes[pos] != fs) return std::nullopt;
    ++pos;
  }
  std::size_t end = pos;
  while (end < bytes.size() && bytes[end] != fs && bytes[end] != '\r' && bytes[end] != '\n' && bytes[end] != cs &&
         bytes[end] != '~')
    ++end;
  return std::make_pair(bytes.substr(pos, end - pos), pos);
}

}  // namespace

std::string_view charsetName(Charset charset) {
  switch (charset) {
    case Charset::kAscii: return "ASCII";
    case Charset::kLatin1: return "8859/1";
    case Charset::kLatin9: return "8859/15";
    case Charset::kUtf8: return "UNICODE UTF-8";
  }
  return "ASCII";
}

std::optional<Charset> charsetFromMsh18(std::string_view value) {
  const std::string name = normalizeName(value);
  if (name == "ASCII" || name == "USASCII") return Charset::kAscii;
  if (name == "88591" || name == "ISO88591" || name == "LATIN1" || name == "ISOIR100") return Charset::kLatin1;
  if (name == "885915" || name == "ISO885915" || name == "LATIN9" || name == "ISOIR203") return Charset::kLatin9;
  if (name == "UNICODEUTF8" || name == "UTF8" || name == "UNICODE") return Charset::kUtf8;
  return std::nullopt;
}

tl::expected<std::string, Error> convertToUtf8(std::string_view bytes, Charset charset) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  switch (charset) {
    case Charset::kUtf8: {
      std::size_t pos = 0;
      while (pos < bytes.size()) {
        std::size_t at = pos;
        if (!nextCodePoint(bytes, pos)) {
          return tl::unexpected(charsetError(ErrorCode::kDataTypeError,
                                             "byte " + std::to_string(at) + " is not valid UTF-8; check MSH-18 "
                                             "or the listener's charset policy (Latin-1 sent as UTF-8?)",
                                             at));
        }
      }
      out.assign(bytes);
      return out;
    }
    case Charset::kAscii:
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (static_cast<unsigned char>(bytes[i]) >= 0x80) {
          return tl::unexpected(charsetError(ErrorCode::kDataTypeError,
                                             "byte " + std::to_string(i) + " is not 7-bit ASCII as MSH-18 or the "
                                             "charset policy says; declare 8859/1 or UNICODE UTF-8",
                                             i));
        }
      }
      out.assign(bytes);
      return out;
    case Charset::kLatin1:
    case Charset::kLatin9:
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        auto b = static_cast<unsigned char>(bytes[i]);
        if (b < 0x80) {
          out += static_cast<char>(b);
          continue;
        }
        // 0x80-0x9F are not characters in ISO 8859 (they are C1 controls); seeing them usually means
        // Windows-1252 or UTF-8 mislabelled as Latin-1.
        if (b < 0xA0) {
          return tl::unexpected(charsetError(ErrorCode::kDataTypeError,
                                             "byte " + std::to_string(i) + " (0x" + "0123456789ABCDEF"[b >> 4] +
                                                 "0123456789ABCDEF"[b & 0xF] + ") is not a character in " +
                                                 std::string(charsetName(charset)) +
                                                 " (Windows-1252 or UTF-8 sent as Latin-1?)",
                                             i));
        }
        std::uint32_t cp = b;
        if (charset == Charset::kLatin9) {
          for (auto [byte, code] : kLatin9Differences) {
            if (byte == b) cp = code;
          }
        }
        appendUtf8(out, cp);
      }
      return out;
  }
  return out;
}

tl::expected<DecodedMessage, Error> decodeToUtf8(std::string_view bytes, const CharsetPolicy& policy) {
  const bool has_bom = bytes.substr(0, 3) == kBom;
  const std::size_t body_start = has_bom ? 3 : 0;
  std::size_t msh = body_start;
  while (msh < bytes.size() && (bytes[msh] == '\r' || bytes[msh] == '\n' || bytes[msh] == ' ')) ++msh;
  Charset charset = policy.default_charset;
  if (policy.mode == CharsetPolicy::Mode::kTrustMsh18) {
    auto declared = rawMsh18(bytes, msh);
    if (declared && !declared->first.empty()) {
      auto parsed = charsetFromMsh18(declared->first);
      if (!parsed) {
        return tl::unexpected(charsetError(ErrorCode::kTableValueNotFound,
                                           "MSH-18 character set '" + std::string(declared->first) +
                                               "' is not supported (ASCII, 8859/1, 8859/15, UNICODE UTF-8)",
                                           declared->second, 18));
      }
      charset = *parsed;
    } else if (has_bom) {
      charset = Charset::kUtf8;  // a BOM is a declaration too
    }
  }
  auto converted = convertToUtf8(bytes.substr(charset == Charset::kUtf8 ? body_start : 0), charset);
  if (!converted) {
    Error error = converted.error();
    if (charset == Charset::kUtf8 && error.byte_offset != std::string::npos) error.byte_offset += body_start;
    return tl::unexpected(error);
  }
  return DecodedMessage{std::move(*converted), charset};
}

tl::expected<std::string, Error> encodeFromUtf8(std::string_view utf8, Charset charset, std::size_t* replaced) {
  if (replaced) *replaced = 0;
  std::string out;
  out.reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    std::size_t at = pos;
    auto cp = nextCodePoint(utf8, pos);
    if (!cp) {
      return tl::unexpected(charsetError(ErrorCode::kDataTypeError, "text to encode is not valid UTF-8", at));
    }
    if (charset == Charset::kUtf8) {
      out.append(utf8.substr(at, pos - at));
      continue;
    }
    std::optional<unsigned char> byte;
    if (*cp < 0x80) {
      byte = static_cast<unsigned char>(*cp);
    } else if (charset == Charset::kLatin1 && *cp >= 0xA0 && *cp <= 0xFF) {
      byte = static_cast<unsigned char>(*cp);
    } else if (charset == Charset::kLatin9) {
      for (auto [b, code] : kLatin9Differences) {
        if (code == *cp) byte = b;
      }
      const bool replaced_position =
          std::any_of(std::begin(kLatin9Differences), std::end(kLatin9Differences),
                      [&](const auto& d) { return d.first == *cp; });
      if (!byte && *cp >= 0xA0 && *cp <= 0xFF && !replaced_position) byte = static_cast<unsigned char>(*cp);
    }
    if (byte) {
      out += static_cast<char>(*byte);
    } else {
      out += '?';
      if (replaced) ++*replaced;
    }
  }
  return out;
}

}  // namespace medicus::hl7v2
