#pragma once
// Character sets of HL7 v2 messages (MSH-18, HL7 table 0211) and their conversion to and from UTF-8.
// German hospital systems often send ISO-8859-1 with a missing or wrong MSH-18, so the receiver
// chooses a policy per listener or per sender: trust MSH-18 (with a default when it is empty) or
// force one charset. Bytes invalid in the chosen charset are an error with their offset: never mojibake.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "medicus/hl7v2/error.h"

namespace medicus::hl7v2 {

enum class Charset {
  kAscii,     // MSH-18 "ASCII": 7-bit only
  kLatin1,    // "8859/1"
  kLatin9,    // "8859/15" (Latin-1 with the euro sign)
  kUtf8,      // "UNICODE UTF-8"
};

// The canonical MSH-18 spelling: "ASCII", "8859/1", "8859/15", "UNICODE UTF-8".
std::string_view charsetName(Charset charset);

// Reads an MSH-18 value. Accepts the table 0211 codes and common spellings ("ISO-8859-1", "ISO_8859-1",
// "LATIN1", "8859-15", "UTF-8", "UTF8", "UNICODE", "US-ASCII"), case-insensitively.
// nullopt for anything else (e.g. "ISO IR87", which we do not support).
std::optional<Charset> charsetFromMsh18(std::string_view value);

struct CharsetPolicy {
  enum class Mode {
    kTrustMsh18,  // use MSH-18 when present; `default_charset` when empty
    kForce,       // ignore MSH-18 and use `default_charset`
  };
  Mode mode = Mode::kTrustMsh18;
  Charset default_charset = Charset::kUtf8;
};

struct DecodedMessage {
  std::string utf8;  // the message text in UTF-8 (a UTF-8 BOM removed)
  Charset charset;   // the charset the bytes were read as; answer in it (see encodeFromUtf8)
};

// Decodes raw message bytes to UTF-8 following the policy. MSH-18 is read from the raw bytes (all
// supported charsets agree on ASCII). Errors: an MSH-18 we do not support (103, location MSH-18);
// a byte invalid in the chosen charset (102, byte_offset = offset in `bytes`).
tl::expected<DecodedMessage, Error> decodeToUtf8(std::string_view bytes, const CharsetPolicy& policy);

// Converts UTF-8 bytes that claim to be in `charset` to UTF-8 (validating when it is UTF-8).
tl::expected<std::string, Error> convertToUtf8(std::string_view bytes, Charset charset);

// Converts UTF-8 text (e.g. an ACK) to `charset`. A character the charset cannot represent is
// replaced by '?' (an ACK must still go out); `replaced` counts them when given.
// Invalid UTF-8 input is an error (102).
tl::expected<std::string, Error> encodeFromUtf8(std::string_view utf8, Charset charset,
                                                std::size_t* replaced = nullptr);

}  // namespace medicus::hl7v2
