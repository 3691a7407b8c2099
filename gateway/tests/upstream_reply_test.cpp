#include <catch2/catch.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "passed_reply.h"
#include "upstream_reply.h"

using namespace medicus::gateway;
using boost::beast::http::error;

namespace {

struct Parsed {
  ReplyHeadResult head;
  UpstreamReply reply;
};

Parsed parse(std::string_view text, bool head_request = false, size_t limit = 64 * 1024) {
  Parsed p;
  p.head = parseReplyHead(text, limit, head_request, p.reply);
  return p;
}

// Feeds `text` to a chunked decoder in pieces of `step` bytes, as reads would deliver it.
ChunkedDecoder::Result decodeChunked(std::string_view text, size_t step, UpstreamReply& reply, uint64_t limit = 1 << 20) {
  ChunkedDecoder decoder;
  std::string pending;
  ChunkedDecoder::Result result;
  for (size_t at = 0; at < text.size() && !decoder.done();) {
    size_t take = std::min(step, text.size() - at);
    pending.append(text.substr(at, take));
    at += take;
    result = decoder.put(pending, limit, reply);
    pending.erase(0, result.consumed);
    if (result.error != error::need_more && result.error != error{}) return result;
  }
  if (!decoder.done() && result.error == error{}) result.error = error::need_more;
  return result;
}

}  // namespace

TEST_CASE("upstream reply: status line, fields in order, duplicates kept, value whitespace trimmed") {
  auto p = parse("HTTP/1.1 201 Created\r\nContent-Type: application/fhir+json \r\nX-A:one\r\nx-a:  two\t\r\n"
                 "Content-Length: 2\r\n\r\n{}");
  REQUIRE(p.head.ok());
  CHECK(p.head.consumed == p.reply.head.size() + 2);
  CHECK(p.reply.status == 201);
  CHECK(p.reply.version == 11);
  CHECK(p.reply.reasonText() == "Created");
  REQUIRE(p.reply.fields.size() == 4);
  CHECK(p.reply.name(p.reply.fields[1]) == "X-A");
  CHECK(p.reply.value(p.reply.fields[1]) == "one");
  CHECK(p.reply.name(p.reply.fields[2]) == "x-a");
  CHECK(p.reply.value(p.reply.fields[2]) == "two");
  CHECK(p.reply["content-type"] == "application/fhir+json");
  CHECK(p.reply["X-A"] == "one");
  CHECK(p.head.framing.kind == ReplyFraming::Kind::Length);
  CHECK(p.head.framing.length == 2);
  CHECK(p.reply.keep_alive);
}

TEST_CASE("upstream reply: an incomplete head needs more; an oversize one is header_limit") {
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n").head.error == error::need_more);
  CHECK(parse("").head.error == error::need_more);
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(200, 'a');
  CHECK(parse(big, false, 100).head.error == error::header_limit);
  CHECK(parse(big + "\r\n\r\n", false, 100).head.error == error::header_limit);
  CHECK(parse(big + "\r\n\r\n", false, 1000).head.ok());
}

TEST_CASE("upstream reply: malformed status lines and fields are Beast's errors") {
  CHECK(parse("HTTP/2.0 200 OK\r\n\r\n").head.error == error::bad_version);
  CHECK(parse("HTTX/1.1 200 OK\r\n\r\n").head.error == error::bad_version);
  CHECK(parse("HTTP/1.1 2x0 OK\r\n\r\n").head.error == error::bad_status);
  CHECK(parse("HTTP/1.1 200\r\n\r\n").head.error == error::bad_status);
  CHECK(parse("HTTP/1.1 200 O\x01K\r\n\r\n").head.error == error::bad_reason);
  CHECK(parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n").head.error == error::bad_field);
  CHECK(parse("HTTP/1.1 200 OK\r\n: x\r\n\r\n").head.error == error::bad_field);
  CHECK(parse("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n").head.error == error::bad_field);
  CHECK(parse("HTTP/1.1 200 OK\r\nX: a\x01" "b\r\n\r\n").head.error == error::bad_value);
  CHECK(parse("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n").head.error == error::bad_line_ending);
  // obs-fold (RFC 9112 section 5.2): rejected.
  CHECK(parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n").head.error == error::bad_value);
  // An empty reason phrase is allowed (the standard one is written then).
  auto empty_reason = parse("HTTP/1.0 404 \r\n\r\n");
  REQUIRE(empty_reason.head.ok());
  CHECK(empty_reason.reply.reasonText().empty());
  CHECK(empty_reason.reply.version == 10);
}

TEST_CASE("upstream reply: field values are checked at every position (eight bytes per step)") {
  std::string long_value = "0123456789abcdefghijklmnopqrstuvwxyz";
  auto ok = parse("HTTP/1.1 200 OK\r\nX: " + long_value + "\tend \r\nY: \x80\xff obs-text " + long_value + "\r\n\r\n");
  REQUIRE(ok.head.ok());
  CHECK(ok.reply["X"] == long_value + "\tend");
  CHECK(ok.reply["Y"] == "\x80\xff obs-text " + long_value);
  for (size_t at = 0; at < long_value.size(); ++at) {
    for (char bad : {'\x01', '\x7f', '\n', '\x1f'}) {
      std::string value = long_value;
      value[at] = bad;
      INFO("position " << at << " byte " << int(bad));
      CHECK(parse("HTTP/1.1 200 OK\r\nX: " + value + "\r\n\r\n").head.error == error::bad_value);
    }
  }
}

TEST_CASE("upstream reply: Content-Length lists, conflicts with chunked, duplicates") {
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").head.framing.length == 5);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").head.ok());
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").head.error == error::multiple_content_length);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5,,5\r\n\r\n").head.error == error::bad_content_length);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").head.error == error::bad_content_length);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n").head.error == error::bad_content_length);
  CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").head.error == error::bad_content_length);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").head.error == error::bad_transfer_encoding);
  CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n").head.error == error::bad_transfer_encoding);
}

TEST_CASE("upstream reply: framing by method, status and fields") {
  CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").head.framing.kind == ReplyFraming::Kind::Chunked);
  CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").head.framing.kind == ReplyFraming::Kind::UntilClose);
  CHECK(parse("HTTP/1.1 200 OK\r\n\r\n").head.framing.kind == ReplyFraming::Kind::UntilClose);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").head.framing.kind == ReplyFraming::Kind::None);
  CHECK(parse("HTTP/1.1 204 No Content\r\n\r\n").head.framing.kind == ReplyFraming::Kind::None);
  CHECK(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").head.framing.kind == ReplyFraming::Kind::None);
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).head.framing.kind == ReplyFraming::Kind::None);
}

TEST_CASE("upstream reply: keep-alive as Beast's message::keep_alive()") {
  CHECK(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").reply.keep_alive);
  CHECK_FALSE(parse("HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n").reply.keep_alive);
  CHECK_FALSE(parse("HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\n\r\n").reply.keep_alive);
  CHECK_FALSE(parse("HTTP/1.0 200 OK\r\n\r\n").reply.keep_alive);
  CHECK(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").reply.keep_alive);
}

TEST_CASE("upstream reply: chunked bodies decode in any split, trailers join the fields") {
  std::string wire = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (size_t step : {size_t(1), size_t(3), size_t(7), wire.size()}) {
    auto p = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE(p.head.ok());
    auto result = decodeChunked(wire, step, p.reply);
    CHECK(result.error == error{});
    CHECK(p.reply.body == "hello world");
    CHECK(p.reply["X-Trailer"] == "t");
    CHECK(p.reply["Transfer-Encoding"] == "chunked");
  }
  UpstreamReply plain;
  auto no_trailers = decodeChunked("3\r\nabc\r\n0\r\n\r\n", 100, plain);
  CHECK(no_trailers.error == error{});
  CHECK(no_trailers.consumed == 13);
  CHECK(plain.body == "abc");
  UpstreamReply bad;
  CHECK(decodeChunked("zz\r\n", 100, bad).error == error::bad_chunk);
  CHECK(decodeChunked("3\r\nabcX\r\n", 100, bad).error == error::bad_chunk);
  CHECK(decodeChunked("3 x\r\nabc\r\n", 100, bad).error == error::bad_chunk_extension);
  UpstreamReply limited;
  CHECK(decodeChunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 100, limited, 8).error == error::body_limit);
  UpstreamReply partial;
  CHECK(decodeChunked("5\r\nhel", 100, partial).error == error::need_more);
}

TEST_CASE("passed reply: Beast's set() order, keep-alive and Content-Length as Beast wrote them") {
  namespace http = boost::beast::http;
  // The same edits on a Beast message and on a ReplyFieldList give the same head.
  http::response<http::string_body> beast{http::status::created, 11};
  beast.insert("Content-Type", "application/fhir+json");
  beast.insert("Location", "http://up/fhir/Patient/1");
  beast.insert("X-One", "1");
  beast.set(http::field::server, "medicus-gateway");
  beast.set(http::field::location, "http://gw/fhir/Patient/1");
  beast.set("x-one", "2");
  beast.set(http::field::content_type, "application/fhir+xml");
  beast.body() = "<Patient/>";
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {true, false}) {
      for (bool drained : {false, true}) {
        http::response<http::string_body> expected = beast;
        expected.version(version);
        expected.keep_alive(keep_alive);
        expected.prepare_payload();
        if (drained) expected.keep_alive(false);
        std::string expected_head;
        for (const auto& field : expected) {
          expected_head.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
        }
        ReplyFieldList fields;
        fields.append("Content-Type", "application/fhir+json");
        fields.append("Location", "http://up/fhir/Patient/1");
        fields.append("X-One", "1");
        fields.set("Server", "medicus-gateway");
        fields.set("Location", "http://gw/fhir/Patient/1");
        fields.set("x-one", "2");
        fields.set("Content-Type", "application/fhir+xml");
        PassedReply passed;
        passed.version = version;
        passed.status = 201;
        passed.keep_alive = keep_alive;
        PassedReply::appendStatusLine(passed.head, version, 201, "");
        PassedReply::appendFields(passed.head, fields);
        passed.body = "<Patient/>";
        std::string head;
        passed.appendHead(head, !drained);
        std::string status_line = std::string(version == 11 ? "HTTP/1.1" : "HTTP/1.0") + " 201 Created\r\n";
        CHECK(head == status_line + expected_head + "\r\n");
      }
    }
  }
}
