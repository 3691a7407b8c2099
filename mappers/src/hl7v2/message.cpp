#include "medicus/hl7v2/message.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <unordered_map>

namespace medicus::hl7v2 {
namespace {

constexpr std::string_view kExplicitNull = "\"\"";
// MSH has 21 fields in v2.5, 25 in v2.7/2.8 and 28 in v2.9; more cannot be a real header.
constexpr int kMaxMshFields = 28;

bool isLineBreak(char c) { return c == '\r' || c == '\n'; }
bool isBlank(char c) { return c == ' ' || c == '\t'; }
bool isAsciiLetter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool isAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// The n-th (1-based) piece of `text` split at `delimiter`; "" when there are fewer pieces.
std::string_view nthPiece(std::string_view text, char delimiter, int n) {
  if (n <= 1) {
    if (delimiter == '\0') return text;
    std::size_t end = text.find(delimiter);
    return end == std::string_view::npos ? text : text.substr(0, end);
  }
  if (delimiter == '\0') return {};
  std::size_t start = 0;
  for (int i = 1; i < n; ++i) {
    std::size_t next = text.find(delimiter, start);
    if (next == std::string_view::npos) return {};
    start = next + 1;
  }
  std::size_t end = text.find(delimiter, start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

Error makeError(ErrorCode code, std::string message, std::size_t offset, Location location = {}) {
  Error error;
  error.code = code;
  error.location = std::move(location);
  error.byte_offset = offset;
  error.message = std::move(message);
  return error;
}

Location mshField(int field) {
  Location location;
  location.segment = "MSH";
  location.segment_occurrence = 1;
  location.segment_index = 0;
  location.field = field;
  return location;
}

std::string printable(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xf];
}

std::size_t skipBomAndBlankLines(std::string_view text) {
  std::size_t pos = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  while (pos < text.size() && (isLineBreak(text[pos]) || isBlank(text[pos]))) ++pos;
  return pos;
}

// Reads MSH-1 and MSH-2 at `msh` (the offset of "MSH") and checks them (HL7 2.5.4).
tl::expected<Delimiters, Error> readDelimiters(std::string_view text, std::size_t msh) {
  const std::size_t sep_at = msh + 3;
  if (sep_at >= text.size() || isLineBreak(text[sep_at])) {
    return tl::unexpected(makeError(ErrorCode::kRequiredFieldMissing,
                                    "MSH-1 (field separator) is missing after 'MSH'", sep_at, mshField(1)));
  }
  Delimiters d;
  d.field = text[sep_at];
  auto bad_separator = [](char c) {
    return static_cast<unsigned char>(c) >= 0x80 || c == '\0' || isLineBreak(c) || isAsciiLetter(c);
  };
  if (bad_separator(d.field) || isAsciiDigit(d.field) || isBlank(d.field)) {
    return tl::unexpected(makeError(ErrorCode::kDataTypeError,
                                    "MSH-1 field separator " + printable(d.field) +
                                        " is not usable: it must be a 7-bit ASCII punctuation character such as '|'",
                                    sep_at, mshField(1)));
  }
  std::size_t enc_begin = sep_at + 1;
  std::size_t enc_end = enc_begin;
  while (enc_end < text.size() && text[enc_end] != d.field && !isLineBreak(text[enc_end])) ++enc_end;
  std::string enc(text.substr(enc_begin, enc_end - enc_begin));
  // Lenient: "^~\\&" is a common mistake (a doubled backslash written by a string literal).
  if (enc.size() == 5 && enc[2] == enc[3] && enc[2] == '\\') enc.erase(3, 1);
  if (enc.size() < 2 || enc.size() > 5) {
    return tl::unexpected(makeError(
        ErrorCode::kDataTypeError,
        "MSH-2 (encoding characters) must hold 2 to 5 characters (component, repetition, escape, "
        "sub-component, truncation), got " + std::to_string(enc.size()) + "; the usual value is ^~\\&",
        enc_begin, mshField(2)));
  }
  char* slots[] = {&d.component, &d.repetition, &d.escape, &d.subcomponent, &d.truncation};
  d.escape = d.subcomponent = d.truncation = '\0';
  std::string seen(1, d.field);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    char c = enc[i];
    if (bad_separator(c)) {
      return tl::unexpected(makeError(ErrorCode::kDataTypeError,
                                      "MSH-2 encoding character " + printable(c) +
                                          " is not usable: separators must be 7-bit ASCII and not letters",
                                      enc_begin + i, mshField(2)));
    }
    if (seen.find(c) != std::string::npos) {
      return tl::unexpected(makeError(ErrorCode::kDataTypeError,
                                      "MSH-2 encoding character " + printable(c) +
                                          " is used twice; every separator must be distinct",
                                      enc_begin + i, mshField(2)));
    }
    seen += c;
    *slots[i] = c;
  }
  return d;
}

bool isStrictSegmentId(std::string_view id) {
  return id.size() == 3 && id[0] >= 'A' && id[0] <= 'Z' &&
         std::all_of(id.begin() + 1, id.end(), [](char c) { return (c >= 'A' && c <= 'Z') || isAsciiDigit(c); });
}

bool isEnvelopeId(std::string_view line) {
  std::string_view id = line.substr(0, 3);
  return id == "FHS" || id == "BHS" || id == "BTS" || id == "FTS";
}

}  // namespace

std::string Delimiters::encodingCharacters() const {
  std::string out;
  for (char c : {component, repetition, escape, subcomponent, truncation}) {
    if (c == '\0') break;
    out += c;
  }
  return out;
}

// ---- SegmentView

std::string_view SegmentView::id() const {
  const auto& entry = message_->segments_[index_];
  return message_->spanText(message_->fields_[entry.first_field]);
}

int SegmentView::fieldCount() const {
  return static_cast<int>(message_->segments_[index_].field_count) - 1;
}

std::string_view SegmentView::field(int n) const {
  const auto& entry = message_->segments_[index_];
  if (n <= 0 || n >= static_cast<int>(entry.field_count)) return {};
  return message_->spanText(message_->fields_[entry.first_field + n]);
}

std::string_view SegmentView::text() const { return message_->spanText(message_->segments_[index_].text); }

// ---- Message

SegmentView Message::segment(std::size_t index) const {
  // Callers check index < segmentCount(); parseMessage guarantees segment 0 (MSH).
  return SegmentView(this, static_cast<int>(index), static_cast<int>(segments_[index].occurrence));
}

std::optional<SegmentView> Message::findSegment(std::string_view id, int occurrence) const {
  int seen = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (spanText(fields_[segments_[i].first_field]) == id && ++seen == std::max(occurrence, 1)) {
      return segment(i);
    }
  }
  return std::nullopt;
}

int Message::countSegments(std::string_view id) const {
  int count = 0;
  for (const auto& entry : segments_) count += spanText(fields_[entry.first_field]) == id;
  return count;
}

std::string_view Message::raw(const Location& location) const {
  std::optional<SegmentView> seg;
  if (location.segment_index >= 0) {
    if (static_cast<std::size_t>(location.segment_index) >= segments_.size()) return {};
    seg = segment(location.segment_index);
    if (!location.segment.empty() && seg->id() != location.segment) return {};
  } else {
    seg = findSegment(location.segment, location.segment_occurrence);
  }
  if (!seg) return {};
  std::string_view value = seg->field(location.field);
  if (location.field <= 2 && seg->id() == "MSH") return value;  // separators are not split
  value = nthPiece(value, delimiters_.repetition, location.repetition);
  if (location.component <= 0) return value;
  value = nthPiece(value, delimiters_.component, location.component);
  if (location.subcomponent <= 0) return value;
  return nthPiece(value, delimiters_.subcomponent, location.subcomponent);
}

std::string Message::get(const Location& location) const {
  std::string_view value = raw(location);
  if (value == kExplicitNull) return {};
  return unescape(value, delimiters_);
}

std::string Message::get(std::string_view location) const {
  auto parsed = parseLocation(location);
  return parsed ? get(*parsed) : std::string();
}

bool Message::isExplicitNull(const Location& location) const { return raw(location) == kExplicitNull; }

int Message::repetitionCount(const Location& field_location) const {
  Location whole = field_location;
  whole.repetition = whole.component = whole.subcomponent = 0;
  // raw() with repetition 0 gives the first repetition only; read the whole field instead.
  std::optional<SegmentView> seg = whole.segment_index >= 0 && static_cast<std::size_t>(whole.segment_index) < segments_.size()
                                       ? std::optional<SegmentView>(segment(whole.segment_index))
                                       : findSegment(whole.segment, whole.segment_occurrence);
  if (!seg) return 0;
  std::string_view value = seg->field(whole.field);
  if (value.empty()) return 0;
  if (delimiters_.repetition == '\0' || (whole.field <= 2 && seg->id() == "MSH")) return 1;
  return static_cast<int>(std::count(value.begin(), value.end(), delimiters_.repetition)) + 1;
}

// ---- parsing

tl::expected<Message, Error> parseMessage(std::string_view text, const ParseOptions& options) {
  const std::size_t max_bytes = std::min<std::size_t>(options.max_message_bytes, 0xFFFFFFF0u);
  if (text.size() > max_bytes) {
    return tl::unexpected(makeError(ErrorCode::kApplicationInternalError,
                                    "message of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                                        std::to_string(max_bytes) + " bytes",
                                    max_bytes));
  }
  const std::size_t start = skipBomAndBlankLines(text);
  if (text.substr(start, 3) != "MSH") {
    std::string what = isEnvelopeId(text.substr(start)) ? "this is a batch (FHS/BHS); parse it with parseBatch"
                                                         : "the text does not start with an MSH segment, so it is "
                                                           "not an ER7 (pipe-delimited) HL7 v2 message";
    return tl::unexpected(makeError(ErrorCode::kSegmentSequenceError, what, start));
  }
  auto delimiters = readDelimiters(text, start);
  if (!delimiters) return tl::unexpected(delimiters.error());

  Message message;
  message.text_.assign(text);
  message.delimiters_ = *delimiters;
  const std::string_view body = message.text_;
  const char fs = delimiters->field;
  using Span = Message::Span;
  std::unordered_map<std::string_view, std::uint32_t> occurrences;

  std::size_t pos = start;
  while (pos < body.size()) {
    std::size_t line_end = pos;
    while (line_end < body.size() && !isLineBreak(body[line_end])) ++line_end;
    std::size_t next = line_end;
    while (next < body.size() && isLineBreak(body[next])) ++next;
    std::string_view line = body.substr(pos, line_end - pos);
    if (std::all_of(line.begin(), line.end(), isBlank)) {
      pos = next;
      continue;
    }
    const int index = static_cast<int>(message.segments_.size());
    if (message.segments_.size() >= options.max_segments) {
      return tl::unexpected(makeError(ErrorCode::kApplicationInternalError,
                                      "more than " + std::to_string(options.max_segments) + " segments", pos));
    }
    std::size_t id_end = line.find(fs);
    std::string_view id = line.substr(0, id_end);
    if (index > 0 && id == "MSH") {
      return tl::unexpected(makeError(ErrorCode::kSegmentSequenceError,
                                      "a second MSH segment starts another message; split the text with "
                                      "splitMessages or parseBatch",
                                      pos, Location{"MSH", 2, index}));
    }
    if (options.strict_segment_ids && !isStrictSegmentId(id)) {
      return tl::unexpected(makeError(ErrorCode::kSegmentSequenceError,
                                      "segment id '" + std::string(id) + "' is not three upper-case letters or digits",
                                      pos, Location{std::string(id), 0, index}));
    }
    Message::SegmentEntry entry;
    entry.text = Span{static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(line_end)};
    entry.first_field = static_cast<std::uint32_t>(message.fields_.size());
    message.fields_.push_back(Span{static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(pos + id.size())});
    std::size_t field_begin;
    if (index == 0) {
      // MSH-1 is the separator itself and MSH-2 runs up to the next separator.
      const std::size_t sep_at = pos + 3;
      message.fields_.push_back(Span{static_cast<std::uint32_t>(sep_at), static_cast<std::uint32_t>(sep_at + 1)});
      field_begin = sep_at + 1;
    } else {
      field_begin = id_end == std::string_view::npos ? line_end : pos + id_end + 1;
    }
    if (index == 0 || id_end != std::string_view::npos) {
      std::size_t fields_here = 0;
      while (true) {
        std::size_t field_end = field_begin;
        while (field_end < line_end && body[field_end] != fs) ++field_end;
        if (++fields_here > options.max_fields_per_segment) {
          return tl::unexpected(makeError(ErrorCode::kApplicationInternalError,
                                          "segment " + std::string(id) + " has more than " +
                                              std::to_string(options.max_fields_per_segment) + " fields",
                                          field_end, Location{std::string(id), 0, index}));
        }
        message.fields_.push_back(
            Span{static_cast<std::uint32_t>(field_begin), static_cast<std::uint32_t>(field_end)});
        if (field_end >= line_end) break;
        field_begin = field_end + 1;
      }
    }
    entry.field_count = static_cast<std::uint32_t>(message.fields_.size() - entry.first_field);
    entry.occurrence = ++occurrences[id];
    message.segments_.push_back(entry);
    pos = next;
  }

  const SegmentView msh = message.segment(0);
  if (msh.fieldCount() > kMaxMshFields) {
    return tl::unexpected(makeError(ErrorCode::kDataTypeError,
                                    "MSH has " + std::to_string(msh.fieldCount()) + " fields; no HL7 version defines more than " +
                                        std::to_string(kMaxMshFields) + " (is a segment terminator missing?)",
                                    message.fields_[message.segments_[0].first_field + kMaxMshFields + 1].begin,
                                    mshField(kMaxMshFields + 1)));
  }
  auto require = [&](int field, int component, const char* what) -> std::optional<Error> {
    Location location = mshField(field);
    location.component = component;
    if (!message.raw(location).empty()) return std::nullopt;
    return makeError(ErrorCode::kRequiredFieldMissing, std::string(what) + " is empty", std::string::npos, location);
  };
  if (auto error = require(9, 1, "MSH-9.1 (message type)")) return tl::unexpected(*error);
  if (auto error = require(12, 1, "MSH-12 (version id)")) return tl::unexpected(*error);
  return message;
}

std::vector<std::string_view> splitMessages(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t pos = skipBomAndBlankLines(text);
  std::size_t message_begin = std::string_view::npos;
  std::size_t message_end = 0;
  auto flush = [&] {
    if (message_begin != std::string_view::npos) out.push_back(text.substr(message_begin, message_end - message_begin));
    message_begin = std::string_view::npos;
  };
  while (pos < text.size()) {
    std::size_t line_end = pos;
    while (line_end < text.size() && !isLineBreak(text[line_end])) ++line_end;
    std::size_t next = line_end;
    // Keep one terminator (CR, LF or CRLF) with the line.
    if (next < text.size() && text[next] == '\r') ++next;
    if (next < text.size() && text[next] == '\n') ++next;
    if (next == line_end && next < text.size()) ++next;
    std::string_view line = text.substr(pos, line_end - pos);
    if (line.substr(0, 3) == "MSH") {
      flush();
      message_begin = pos;
    } else if (isEnvelopeId(line)) {
      flush();
    }
    if (message_begin != std::string_view::npos && !isEnvelopeId(line)) message_end = next;
    pos = next;
  }
  flush();
  return out;
}

tl::expected<Batch, Error> parseBatch(std::string_view text, const ParseOptions& options) {
  Batch batch;
  std::size_t pos = skipBomAndBlankLines(text);
  if (text.substr(pos, 3) != "MSH" && !isEnvelopeId(text.substr(pos))) {
    return tl::unexpected(makeError(ErrorCode::kSegmentSequenceError,
                                    "a batch must start with FHS, BHS or MSH", pos));
  }
  std::size_t message_begin = std::string_view::npos;
  auto flush = [&](std::size_t end) -> std::optional<Error> {
    if (message_begin == std::string_view::npos) return std::nullopt;
    auto message = parseMessage(text.substr(message_begin, end - message_begin), options);
    if (!message) {
      Error error = message.error();
      if (error.byte_offset != std::string::npos) error.byte_offset += message_begin;
      error.message = "message " + std::to_string(batch.messages.size() + 1) + " of the batch: " + error.message;
      return error;
    }
    batch.messages.push_back(std::move(*message));
    message_begin = std::string_view::npos;
    return std::nullopt;
  };
  while (pos < text.size()) {
    std::size_t line_end = pos;
    while (line_end < text.size() && !isLineBreak(text[line_end])) ++line_end;
    std::size_t next = line_end;
    while (next < text.size() && isLineBreak(text[next])) ++next;
    std::string_view line = text.substr(pos, line_end - pos);
    if (line.substr(0, 3) == "MSH" || isEnvelopeId(line)) {
      if (auto error = flush(pos)) return tl::unexpected(*error);
      if (isEnvelopeId(line)) batch.envelope_segments.emplace_back(line);
      else message_begin = pos;
    }
    pos = next;
  }
  if (auto error = flush(text.size())) return tl::unexpected(*error);
  return batch;
}

tl::expected<Location, std::string> parseLocation(std::string_view text) {
  Location location;
  std::size_t pos = 0;
  while (pos < text.size() && pos < 3 && (isAsciiLetter(text[pos]) || isAsciiDigit(text[pos]))) ++pos;
  if (pos == 0) return tl::unexpected("location '" + std::string(text) + "' does not start with a segment id");
  location.segment.assign(text.substr(0, pos));
  auto number = [&](int& out) -> bool {
    const char* first = text.data() + pos;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, out);
    if (ec != std::errc() || ptr == first || out < 1) return false;
    pos += static_cast<std::size_t>(ptr - first);
    return true;
  };
  auto bad = [&] { return tl::unexpected("location '" + std::string(text) + "' is not like PID-5.2 or OBX[2]-5(1).1.1"); };
  if (pos < text.size() && text[pos] == '[') {
    ++pos;
    if (!number(location.segment_occurrence) || pos >= text.size() || text[pos] != ']') return bad();
    ++pos;
  }
  if (pos == text.size()) return location;
  if (text[pos] != '-') return bad();
  ++pos;
  if (!number(location.field)) return bad();
  if (pos < text.size() && text[pos] == '(') {
    ++pos;
    if (!number(location.repetition) || pos >= text.size() || text[pos] != ')') return bad();
    ++pos;
  }
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (!number(location.component)) return bad();
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      if (!number(location.subcomponent)) return bad();
    }
  }
  if (pos != text.size()) return bad();
  return location;
}

std::string encode(const Message& message) {
  std::string out;
  out.reserve(message.text().size() + 1);
  for (std::size_t i = 0; i < message.segmentCount(); ++i) {
    out += message.segment(i).text();
    out += '\r';
  }
  return out;
}

// ---- escape sequences (HL7 v2.5 section 2.7)

namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string unescape(std::string_view raw, const Delimiters& d) {
  if (d.escape == '\0' || raw.find(d.escape) == std::string_view::npos) return std::string(raw);
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    char c = raw[i];
    if (c != d.escape) {
      out += c;
      ++i;
      continue;
    }
    std::size_t close = raw.find(d.escape, i + 1);
    if (close == std::string_view::npos) {  // unterminated: keep as text
      out.append(raw.substr(i));
      break;
    }
    std::string_view seq = raw.substr(i + 1, close - i - 1);
    bool handled = true;
    if (seq == "F") out += d.field;
    else if (seq == "S") out += d.component;
    else if (seq == "T") out += d.subcomponent;
    else if (seq == "R") out += d.repetition;
    else if (seq == "E") out += d.escape;
    else if (seq == "H" || seq == "N") {
    } else if (seq == ".br") out += '\n';
    else if (seq.size() >= 3 && (seq[0] == 'X' || seq[0] == 'x') && (seq.size() - 1) % 2 == 0) {
      std::string bytes;
      for (std::size_t k = 1; k + 1 < seq.size() + 1 && handled; k += 2) {
        int hi = hexValue(seq[k]);
        int lo = hexValue(seq[k + 1]);
        if (hi < 0 || lo < 0) handled = false;
        else bytes += static_cast<char>(hi * 16 + lo);
      }
      if (handled) out += bytes;
    } else {
      handled = false;
    }
    if (!handled) out.append(raw.substr(i, close - i + 1));
    i = close + 1;
  }
  return out;
}

std::string escape(std::string_view text, const Delimiters& d) {
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char e = d.escape == '\0' ? '\\' : d.escape;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    const char* code = nullptr;
    if (c == d.field) code = "F";
    else if (c == d.component) code = "S";
    else if (c == d.subcomponent && d.subcomponent != '\0') code = "T";
    else if (c == d.repetition && d.repetition != '\0') code = "R";
    else if (c == e) code = "E";
    else if (c == '\n') code = ".br";
    if (code) {
      out += e;
      out += code;
      out += e;
    } else if (u < 0x20 && c != '\t') {
      out += e;
      out += 'X';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
      out += e;
    } else {
      out += c;
    }
  }
  return out;
}

// ---- Er7Writer

void Er7Writer::closeSegment() {
  if (in_segment_) out_ += '\r';
  in_segment_ = false;
}

Er7Writer& Er7Writer::beginMsh() {
  closeSegment();
  out_ += "MSH";
  out_ += delimiters_.field;
  out_ += delimiters_.encodingCharacters();
  in_segment_ = true;
  return *this;
}

Er7Writer& Er7Writer::beginSegment(std::string_view id) {
  closeSegment();
  out_ += id;
  in_segment_ = true;
  return *this;
}

Er7Writer& Er7Writer::field(std::string_view text) {
  out_ += delimiters_.field;
  out_ += escape(text, delimiters_);
  return *this;
}

Er7Writer& Er7Writer::rawField(std::string_view er7) {
  out_ += delimiters_.field;
  out_ += er7;
  return *this;
}

Er7Writer& Er7Writer::components(const std::vector<std::string>& parts) {
  std::size_t used = parts.size();
  while (used > 0 && parts[used - 1].empty()) --used;
  out_ += delimiters_.field;
  for (std::size_t i = 0; i < used; ++i) {
    if (i > 0) out_ += delimiters_.component;
    out_ += escape(parts[i], delimiters_);
  }
  return *this;
}

std::string Er7Writer::finish() {
  closeSegment();
  return std::move(out_);
}

}  // namespace medicus::hl7v2
