#pragma once
// ER7 ("pipe and hat") messages: a compact read-only model over the message text, the parser and
// the encoder. HL7 v2.5 chapter 2.5 (message construction rules) and 2.7 (escape sequences).
//
// Model: a Message owns one copy of its text plus an index of segments and fields. Repetitions,
// components and sub-components are found by scanning the (short) field on access, so parsing costs
// one pass over the bytes. Values come back raw (ER7, escape sequences intact) or decoded.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "medicus/hl7v2/error.h"

namespace medicus::hl7v2 {

// The separators of one message, from MSH-1 and MSH-2 (any legal choice, not only |^~\&).
// A separator the sender left out of MSH-2 is '\0' and never matches.
struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = '\0';  // 5th MSH-2 character (v2.7+); carries no parsing meaning

  // MSH-2 as it would be written: "^~\&" (plus the truncation character when set).
  std::string encodingCharacters() const;
  friend bool operator==(const Delimiters&, const Delimiters&) = default;
};

// Limits that keep hostile input cheap. Exceeding one is an error, never a truncation.
struct ParseOptions {
  std::size_t max_message_bytes = 16 * 1024 * 1024;
  std::size_t max_segments = 100'000;
  std::size_t max_fields_per_segment = 5'000;
  // Strict: every segment id must be three characters [A-Z][A-Z0-9][A-Z0-9] (error 100 otherwise).
  // Lenient (default): any id is kept as given, as nHapi does for its "NoException" inputs.
  bool strict_segment_ids = false;
};

class Message;

// A read-only view of one segment of a Message; valid while the Message lives.
class SegmentView {
 public:
  std::string_view id() const;
  // Number of fields after the id (MSH counts MSH-1, the field separator, as field 1).
  int fieldCount() const;
  // Raw ER7 text of field n (1-based), "" when absent. For MSH, field 1 is the separator and
  // field 2 the encoding characters, both returned verbatim.
  std::string_view field(int n) const;
  int index() const { return index_; }         // 0-based position among all segments
  int occurrence() const { return occurrence_; }  // 1-based among segments with the same id
  std::string_view text() const;               // the whole segment without its terminator

 private:
  friend class Message;
  SegmentView(const Message* message, int index, int occurrence)
      : message_(message), index_(index), occurrence_(occurrence) {}
  const Message* message_;
  int index_;
  int occurrence_;
};

class Message {
 public:
  Message() = default;

  const Delimiters& delimiters() const { return delimiters_; }
  std::size_t segmentCount() const { return segments_.size(); }
  SegmentView segment(std::size_t index) const;
  // The n-th (1-based) segment with this id, or nullopt.
  std::optional<SegmentView> findSegment(std::string_view id, int occurrence = 1) const;
  int countSegments(std::string_view id) const;

  // Raw ER7 at a location, "" when absent. Repetition 0 means the first; component 0 the whole
  // repetition; subcomponent 0 the whole component. `""` (explicit null) comes back as `""`.
  std::string_view raw(const Location& location) const;
  // Decoded text at a location (escape sequences resolved, see unescape()); "" when absent or null.
  std::string get(const Location& location) const;
  // Same, with a location written as text ("PID-5.2", "OBX[2]-5", "PID-3(2).4.1"); "" when the
  // location does not parse.
  std::string get(std::string_view location) const;
  // True when the value is the explicit null `""` (HL7 2.5.3: delete the value in the receiver),
  // which is different from an empty (not sent) value.
  bool isExplicitNull(const Location& location) const;
  // Number of repetitions of a field (0 when empty).
  int repetitionCount(const Location& field_location) const;

  // Shortcuts for MSH fields used everywhere.
  std::string messageType() const { return get("MSH-9.1"); }    // "ADT"
  std::string triggerEvent() const { return get("MSH-9.2"); }   // "A01"
  std::string controlId() const { return get("MSH-10"); }
  std::string version() const { return get("MSH-12.1"); }

  // The text the message was parsed from (terminators as received).
  std::string_view text() const { return text_; }

 private:
  friend class SegmentView;
  friend tl::expected<Message, Error> parseMessage(std::string_view, const ParseOptions&);
  struct Span {
    std::uint32_t begin;
    std::uint32_t end;
  };
  struct SegmentEntry {
    Span text;
    std::uint32_t first_field;  // index into fields_ of the id; fields follow
    std::uint32_t field_count;  // including the id
    std::uint32_t occurrence;
  };
  std::string_view spanText(Span s) const { return std::string_view(text_).substr(s.begin, s.end - s.begin); }

  std::string text_;
  Delimiters delimiters_;
  std::vector<SegmentEntry> segments_;
  std::vector<Span> fields_;
};

// Parses one message that starts with MSH (after an optional UTF-8 BOM and blank lines).
// Segments may end with CR, LF or CRLF, also mixed; blank lines are skipped. The text must already
// be UTF-8 or ASCII (see charset.h to decode ISO-8859-x first).
// Rejected (with location and code): no MSH at the start; MSH-2 with fewer than 2 characters;
// separators that repeat, are letters, are not 7-bit ASCII, or are CR/LF; more than 28 MSH fields
// (no HL7 version defines more); missing MSH-9.1 or MSH-12; a size or count limit exceeded.
tl::expected<Message, Error> parseMessage(std::string_view text, const ParseOptions& options = {});

// A batch (HL7 2.10.3): optional FHS/BHS header segments, messages, optional BTS/FTS trailers.
struct Batch {
  std::vector<std::string> envelope_segments;  // FHS, BHS, BTS, FTS as raw text, in order
  std::vector<Message> messages;
};
// Parses a batch file, or a plain stream of messages; every message must parse.
tl::expected<Batch, Error> parseBatch(std::string_view text, const ParseOptions& options = {});

// Splits text holding several messages at each segment starting with "MSH" (BOM, FHS/BHS/BTS/FTS
// lines dropped). Does not validate; pass each part to parseMessage.
std::vector<std::string_view> splitMessages(std::string_view text);

// Parses "PID-5.2", "OBX[2]-5", "PID-3(2).4.1" (segment[occurrence]-field(repetition).component.sub).
tl::expected<Location, std::string> parseLocation(std::string_view text);

// ER7 text of the message with CR after every segment. For a message received with CR terminators
// this gives back the received bytes exactly.
std::string encode(const Message& message);

// Resolves escape sequences (HL7 2.7): \F\ \S\ \T\ \R\ \E\ give the delimiters, \Xhh..\ the bytes,
// \.br\ a line feed, \H\ and \N\ (highlighting) are dropped; any other sequence (\Cxxyy\, \.sp\, \Z..\,
// unknown) and an unterminated escape are kept verbatim.
std::string unescape(std::string_view raw, const Delimiters& delimiters);
// The inverse for plain text: delimiters become \F\ \S\ \T\ \R\ \E\, LF becomes \.br\, other
// control characters \Xhh\.
std::string escape(std::string_view text, const Delimiters& delimiters);

// Builds ER7 text segment by segment; values given to field()/component() are escaped.
// Used for ACKs and tests. Segments end with CR.
class Er7Writer {
 public:
  explicit Er7Writer(Delimiters delimiters = {}) : delimiters_(delimiters) {}
  // Starts "MSH|^~\&" (MSH-1 and MSH-2 written from the delimiters); next field() is MSH-3.
  Er7Writer& beginMsh();
  Er7Writer& beginSegment(std::string_view id);
  Er7Writer& field(std::string_view text);          // escaped text as the next field
  Er7Writer& rawField(std::string_view er7);        // already-encoded ER7 as the next field
  // The next field made of components (each escaped); trailing empty components are dropped.
  Er7Writer& components(const std::vector<std::string>& parts);
  std::string finish();  // closes the last segment and returns the text

 private:
  void closeSegment();
  Delimiters delimiters_;
  std::string out_;
  bool in_segment_ = false;
};

}  // namespace medicus::hl7v2
