#pragma once
// An upstream's HTTP/1.x reply parsed in place: the head stays one string and each field is a pair
// of offsets into it, the body is read straight into its string. Beast's response_parser built a
// field map with one allocation per field, only for the gateway to erase the hop-by-hop fields and
// serialize the rest again (a third of the gateway's instructions per proxied GET, callgrind).
// The grammar and the errors are Beast's (http::error codes, so the messages in OperationOutcomes
// and logs stay the same), except obs-fold: a folded field is rejected (bad_value), which RFC 9112
// section 5.2 allows a proxy; Beast joined the lines.
// Pure: no I/O, no Asio.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/container/small_vector.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace medicus::gateway {

struct UpstreamReply {
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Field {
    Span name;
    Span value;
  };
  unsigned status = 0;
  unsigned version = 11;  // 10 or 11
  std::string head;       // the status line and fields as received (and chunked trailers after them)
  Span reason;
  // In order; repeated fields stay repeated. Room for a typical reply's fields inline (a vector
  // cost an allocation per reply).
  boost::container::small_vector<Field, 16> fields;
  std::string body;
  bool keep_alive = false;  // as Beast's message::keep_alive(): version and the first Connection field

  std::string_view text(Span span) const { return std::string_view(head).substr(span.offset, span.size); }
  std::string_view name(const Field& field) const { return text(field.name); }
  std::string_view value(const Field& field) const { return text(field.value); }
  std::string_view reasonText() const { return text(reason); }
  // The first field called `name` (case-insensitive), else empty.
  std::string_view operator[](std::string_view name) const;
};

// How the body follows the head (RFC 9112 section 6.3, as Beast's parser decides it).
struct ReplyFraming {
  enum class Kind : uint8_t { None, Length, Chunked, UntilClose };
  Kind kind = Kind::None;
  uint64_t length = 0;  // Kind::Length
};

struct ReplyHeadResult {
  boost::beast::http::error error{};  // need_more: no complete head yet
  bool ok() const { return error == boost::beast::http::error{}; }
  size_t consumed = 0;                // the head's bytes, blank line included
  ReplyFraming framing;
};

// Parses the head at the start of `input` into `reply` (status, version, reason, fields, keep_alive).
// `head_request`: the request was HEAD, so no body follows whatever the fields say. A head longer than
// `header_limit` is error::header_limit, as soon as that many bytes are there without a blank line.
ReplyHeadResult parseReplyHead(std::string_view input, size_t header_limit, bool head_request, UpstreamReply& reply);

// Decodes a chunked body incrementally: feed it what arrived, it appends the data to the body and the
// trailer fields to the reply's head and fields.
class ChunkedDecoder {
 public:
  struct Result {
    boost::beast::http::error error{};  // need_more: feed more
    size_t consumed = 0;
  };
  // `body_limit`: the most body bytes allowed (error::body_limit beyond).
  Result put(std::string_view input, uint64_t body_limit, UpstreamReply& reply);
  bool done() const { return state_ == State::Done; }

 private:
  enum class State : uint8_t { Size, Data, DataEnd, Trailers, Done };
  State state_ = State::Size;
  uint64_t remaining_ = 0;
};

}  // namespace medicus::gateway
