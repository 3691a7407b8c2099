#pragma once
// The upstream's reply passed on to the client in wire form, assembled without a Beast field map.
// ReplyFieldList keeps Beast's semantics for what the gateway changes (set(): every field of that
// name goes, the new one is appended), so the client gets the same bytes as when the reply was a
// Beast message edited in place. Pure: no I/O.
#include <boost/beast/http/status.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "ascii_case.h"
#include "upstream_reply.h"

namespace medicus::gateway {

// Field views, in the order they will be written; the texts must outlive the list.
class ReplyFieldList {
 public:
  void reserve(size_t n) { fields_.reserve(n); }
  void append(std::string_view name, std::string_view value) { fields_.emplace_back(name, value); }
  void set(std::string_view name, std::string_view value) {
    erase(name);
    append(name, value);
  }
  void erase(std::string_view name) {
    fields_.erase(std::remove_if(fields_.begin(), fields_.end(), [name](const auto& field) { return asciiIequals(field.first, name); }),
                  fields_.end());
  }
  // The first field called `name`, else empty (as Beast's operator[]).
  std::string_view operator[](std::string_view name) const {
    for (const auto& field : fields_) {
      if (asciiIequals(field.first, name)) return field.second;
    }
    return {};
  }
  using Fields = boost::container::small_vector<std::pair<std::string_view, std::string_view>, 20>;
  const Fields& fields() const { return fields_; }

 private:
  Fields fields_;  // (inline room for a typical reply: no allocation)
};

struct PassedReply {
  unsigned status = 200;
  unsigned version = 11;  // the client's
  bool keep_alive = true;  // as decided when the reply was assembled
  // The status line and the fields, each line ended by CRLF; without Connection, Content-Length and
  // the blank line, which appendHead() adds.
  std::string head;
  std::string body;

  // "HTTP/1.1 200 OK\r\n": `reason` as the upstream sent it, else the standard phrase (Beast's reason()).
  static void appendStatusLine(std::string& out, unsigned version, unsigned status, std::string_view reason) {
    char line[13] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + version / 10 % 10), '.',
                     static_cast<char>('0' + version % 10), ' ', static_cast<char>('0' + status / 100 % 10),
                     static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10), ' '};
    out.append(line, sizeof line);
    if (reason.empty()) {
      auto standard = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
      out.append(standard.data(), standard.size());
    } else {
      out.append(reason.data(), reason.size());
    }
    out.append("\r\n", 2);
  }
  static void appendFields(std::string& out, const ReplyFieldList& fields) {
    for (const auto& [name, value] : fields.fields()) {
      out.append(name.data(), name.size()).append(": ", 2).append(value.data(), value.size()).append("\r\n", 2);
    }
  }

  // The whole head into `out`: what Beast's keep_alive(keep_alive) and prepare_payload() added to the
  // message, then (`keep_alive_now` false: a drain began meanwhile) what keep_alive(false) changed after
  // them: on 1.1 it sets "Connection: close" again, so the field moves behind Content-Length; on 1.0
  // it drops the "keep-alive" token and with it the field.
  void appendHead(std::string& out, bool keep_alive_now) const {
    out.append(head);
    bool dropped = !keep_alive_now;
    if (!dropped) {
      if (version >= 11 && !keep_alive) out.append("Connection: close\r\n");
      if (version < 11 && keep_alive) out.append("Connection: keep-alive\r\n");
    }
    char digits[24];
    size_t n = 0;
    size_t size = body.size();
    do {
      digits[sizeof digits - 1 - n++] = static_cast<char>('0' + size % 10);
      size /= 10;
    } while (size != 0);
    out.append("Content-Length: ").append(digits + sizeof digits - n, n).append("\r\n", 2);
    if (dropped && version >= 11) out.append("Connection: close\r\n");
    out.append("\r\n", 2);
  }
};

}  // namespace medicus::gateway
