#include "upstream_reply.h"

#include "ascii_case.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace medicus::gateway {

namespace {

using boost::beast::http::error;

// Character classes, one table lookup per byte (a switch per byte was most of the parse).
struct CharClasses {
  bool token[256] = {};  // RFC 9110 tchar (Beast's is_token table)
  bool text[256] = {};   // field values and the reason phrase: HTAB, SP, VCHAR, obs-text
  constexpr CharClasses() {
    for (int c = 0x21; c < 0x7f; ++c) token[c] = true;
    for (char c : std::string_view("\"(),/:;<=>?@[\\]{}")) token[static_cast<unsigned char>(c)] = false;
    text[static_cast<unsigned char>('\t')] = true;
    for (int c = 0x20; c < 256; ++c) text[c] = c != 0x7f;
  }
};
constexpr CharClasses kChars;
bool isTokenChar(unsigned char c) { return kChars.token[c]; }
bool isTextChar(unsigned char c) { return kChars.text[c]; }

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated token list `list` holds `token` (case-insensitive).
bool listHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (asciiIequals(trimmed(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The last coding of a Transfer-Encoding list is chunked.
bool endsWithChunked(std::string_view list) {
  size_t comma = list.rfind(',');
  return asciiIequals(trimmed(comma == std::string_view::npos ? list : list.substr(comma + 1)), "chunked");
}

// The first control character (< 0x20, or DEL) in `s` from `from` on, else s.size(). Eight bytes
// per step: a field value is checked and its line end found in one pass (byte by byte this was most
// of the reply's parse). For the lowest flagged byte the bit tricks are exact (a borrow only
// propagates upwards), and bytes >= 0x80 (obs-text) are never flagged.
size_t findControl(std::string_view s, size_t from) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  size_t i = from;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighs;
    uint64_t del = word ^ (kOnes * 0x7f);
    del = (del - kOnes) & ~del & kHighs;
    if (uint64_t flagged = below_space | del; flagged != 0) {
      if constexpr (std::endian::native == std::endian::little) return i + static_cast<size_t>(std::countr_zero(flagged)) / 8;
      else break;  // (big-endian: the byte loop below finds it)
    }
  }
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return i;
  }
  return s.size();
}

// The field lines of `head` from `pos` to `end` (where the blank line's CRLF starts, or the end of the
// trailers), each "name: value" CRLF, appended to `reply.fields`.
error parseFieldLines(const std::string& head, size_t pos, size_t end, UpstreamReply& reply) {
  std::string_view text(head.data(), end);
  while (pos < end) {
    // A line starting with whitespace continues the previous one (obs-fold): rejected, see the header.
    if (text[pos] == ' ' || text[pos] == '\t') return error::bad_value;
    // The name: token characters up to the colon (':' is not one, so the scan stops there).
    size_t colon = pos;
    while (colon < end && isTokenChar(static_cast<unsigned char>(text[colon]))) ++colon;
    if (colon == pos || colon == end || text[colon] != ':') return error::bad_field;
    size_t value_begin = colon + 1;
    while (value_begin < end && (text[value_begin] == ' ' || text[value_begin] == '\t')) ++value_begin;
    // The line ends at the first CR; HTAB is the one control character a value may hold.
    size_t line_end = value_begin;
    for (;;) {
      line_end = findControl(text, line_end);
      if (line_end < end && text[line_end] == '\t') {
        ++line_end;
        continue;
      }
      break;
    }
    if (line_end < end && text[line_end] != '\r') return error::bad_value;
    if (line_end + 1 < head.size() && head[line_end + 1] != '\n') return error::bad_line_ending;
    size_t value_end = line_end;
    while (value_end > value_begin && (text[value_end - 1] == ' ' || text[value_end - 1] == '\t')) --value_end;
    UpstreamReply::Field field;
    field.name = {static_cast<uint32_t>(pos), static_cast<uint32_t>(colon - pos)};
    field.value = {static_cast<uint32_t>(value_begin), static_cast<uint32_t>(value_end - value_begin)};
    reply.fields.push_back(field);
    pos = line_end + 2;
  }
  return {};
}

// Content-Length: one or more equal decimal numbers, comma-separated.
error parseContentLength(std::string_view value, std::optional<uint64_t>& length) {
  bool any = false;
  while (true) {
    size_t comma = value.find(',');
    std::string_view token = trimmed(value.substr(0, comma));
    if (token.empty()) return error::bad_content_length;
    uint64_t n = 0;
    for (char c : token) {
      if (c < '0' || c > '9') return error::bad_content_length;
      uint64_t digit = static_cast<uint64_t>(c - '0');
      if (n > (UINT64_MAX - digit) / 10) return error::bad_content_length;
      n = n * 10 + digit;
    }
    if (length && *length != n) return error::multiple_content_length;
    length = n;
    any = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return any ? error{} : error::bad_content_length;
}

}  // namespace

std::string_view UpstreamReply::operator[](std::string_view wanted) const {
  for (const Field& field : fields) {
    if (asciiIequals(name(field), wanted)) return value(field);
  }
  return {};
}

ReplyHeadResult parseReplyHead(std::string_view input, size_t header_limit, bool head_request, UpstreamReply& reply) {
  ReplyHeadResult result;
  size_t end = input.substr(0, header_limit).find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > header_limit) {
    result.error = input.size() >= header_limit ? error::header_limit : error::need_more;
    return result;
  }
  reply.head.assign(input.data(), end + 2);  // the last field's CRLF kept: every line ends with one
  reply.fields.clear();
  const std::string& head = reply.head;

  // status-line = HTTP-version SP status-code SP reason-phrase CRLF
  size_t line_end = head.find("\r\n");
  std::string_view line = std::string_view(head).substr(0, line_end);
  if (line.size() < 8 || !line.starts_with("HTTP/") || line[5] < '0' || line[5] > '9' || line[6] != '.' ||
      line[7] < '0' || line[7] > '9') {
    result.error = error::bad_version;
    return result;
  }
  reply.version = static_cast<unsigned>((line[5] - '0') * 10 + (line[7] - '0'));
  if (reply.version < 10 || reply.version > 11 || line.size() < 9 || line[8] != ' ') {
    result.error = error::bad_version;
    return result;
  }
  if (line.size() < 13 || line[12] != ' ') {
    result.error = error::bad_status;
    return result;
  }
  reply.status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      result.error = error::bad_status;
      return result;
    }
    reply.status = reply.status * 10 + static_cast<unsigned>(line[i] - '0');
  }
  for (size_t i = 13; i < line.size(); ++i) {
    if (!isTextChar(static_cast<unsigned char>(line[i]))) {
      result.error = error::bad_reason;
      return result;
    }
  }
  reply.reason = {13, static_cast<uint32_t>(line.size() - 13)};

  if (error e = parseFieldLines(head, line_end + 2, head.size() - 2, reply); e != error{}) {
    result.error = e;
    return result;
  }

  // Framing and keep-alive, checked in field order as Beast does.
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool transfer_encoding = false;
  std::string_view connection;
  bool connection_seen = false;
  for (const auto& field : reply.fields) {
    std::string_view name = reply.name(field);
    std::string_view value = reply.value(field);
    if (asciiIequals(name, "Content-Length")) {
      if (chunked) {
        result.error = error::bad_content_length;
        return result;
      }
      if (error e = parseContentLength(value, content_length); e != error{}) {
        result.error = e;
        return result;
      }
    } else if (asciiIequals(name, "Transfer-Encoding")) {
      if (chunked || content_length) {
        result.error = error::bad_transfer_encoding;
        return result;
      }
      transfer_encoding = true;
      chunked = endsWithChunked(value);
    } else if (!connection_seen && asciiIequals(name, "Connection")) {
      connection = value;
      connection_seen = true;
    }
  }
  (void)transfer_encoding;
  reply.keep_alive = reply.version >= 11 ? !listHas(connection, "close") : listHas(connection, "keep-alive");

  result.consumed = end + 4;
  if (head_request || reply.status / 100 == 1 || reply.status == 204 || reply.status == 304) {
    result.framing.kind = ReplyFraming::Kind::None;
  } else if (chunked) {
    result.framing.kind = ReplyFraming::Kind::Chunked;
  } else if (content_length) {
    result.framing.kind = *content_length == 0 ? ReplyFraming::Kind::None : ReplyFraming::Kind::Length;
    result.framing.length = *content_length;
  } else {
    result.framing.kind = ReplyFraming::Kind::UntilClose;
  }
  return result;
}

ChunkedDecoder::Result ChunkedDecoder::put(std::string_view input, uint64_t body_limit, UpstreamReply& reply) {
  // Trailers (and chunk-size lines) longer than this are refused like an oversize head.
  constexpr size_t kLineLimit = 64 * 1024;
  Result result;
  size_t pos = 0;
  auto fail = [&](error e) {
    result.error = e;
    result.consumed = pos;
    return result;
  };
  while (state_ != State::Done) {
    std::string_view rest = input.substr(pos);
    switch (state_) {
      case State::Size: {
        // chunk-size [ chunk-ext ] CRLF
        size_t eol = rest.substr(0, kLineLimit).find("\r\n");
        if (eol == std::string_view::npos) return fail(rest.size() >= kLineLimit ? error::bad_chunk : error::need_more);
        std::string_view line = rest.substr(0, eol);
        uint64_t size = 0;
        size_t i = 0;
        for (; i < line.size(); ++i) {
          char c = line[i];
          int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
          if (digit < 0) break;
          if (size > (UINT64_MAX >> 4)) return fail(error::bad_chunk);
          size = size * 16 + static_cast<uint64_t>(digit);
        }
        if (i == 0) return fail(error::bad_chunk);
        std::string_view extension = trimmed(line.substr(i));
        if (!extension.empty() && extension[0] != ';') return fail(error::bad_chunk_extension);
        for (char c : extension) {
          if (!isTextChar(static_cast<unsigned char>(c))) return fail(error::bad_chunk_extension);
        }
        if (size > body_limit - std::min<uint64_t>(body_limit, reply.body.size())) return fail(error::body_limit);
        pos += eol + 2;
        remaining_ = size;
        state_ = size == 0 ? State::Trailers : State::Data;
        break;
      }
      case State::Data: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        reply.body.append(rest.data(), take);
        pos += take;
        remaining_ -= take;
        if (remaining_ != 0) return fail(error::need_more);
        state_ = State::DataEnd;
        break;
      }
      case State::DataEnd:
        if (rest.size() < 2) return fail(error::need_more);
        if (rest[0] != '\r' || rest[1] != '\n') return fail(error::bad_chunk);
        pos += 2;
        state_ = State::Size;
        break;
      case State::Trailers: {
        // *( field-line CRLF ) CRLF; the trailer fields join the reply's fields, as with Beast.
        size_t end;
        if (rest.starts_with("\r\n")) {
          end = 0;
        } else {
          end = rest.substr(0, kLineLimit).find("\r\n\r\n");
          if (end == std::string_view::npos) return fail(rest.size() >= kLineLimit ? error::header_limit : error::need_more);
          end += 2;
        }
        if (end != 0) {
          size_t start = reply.head.size();
          reply.head.append(rest.data(), end);
          if (error e = parseFieldLines(reply.head, start, reply.head.size(), reply); e != error{}) return fail(e);
        }
        pos += end + 2;
        state_ = State::Done;
        break;
      }
      case State::Done:
        break;
    }
  }
  result.consumed = pos;
  return result;
}

}  // namespace medicus::gateway
