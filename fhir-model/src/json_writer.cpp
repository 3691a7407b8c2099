// Element tree -> FHIR JSON (http://hl7.org/fhir/R4/json.html): properties in definition order,
// repeating elements as arrays, primitives' id/extension in "_x" siblings with nulls lining up arrays,
// numbers and booleans written from their exact text.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "medicus/fhir/format.h"

namespace medicus::fhir {
namespace {

class JsonWriter {
 public:
  JsonWriter(std::string& out, bool pretty) : out_(out), pretty_(pretty) {}

  void resource(const Node& r) {
    out_ += '{';
    ++depth_;
    bool first = true;
    key("resourceType", first);
    string(r.type()->name);
    members(r, first);
    --depth_;
    if (!first) newline();
    out_ += '}';
  }

 private:
  void newline() {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(depth_) * 2, ' ');
  }

  void key(std::string_view name, bool& first) {
    if (!first) out_ += ',';
    first = false;
    newline();
    out_ += '"';
    out_ += name;
    out_ += pretty_ ? "\": " : "\":";
  }

  void string(std::string_view s) {
    out_ += '"';
    appendJsonEscaped(out_, s);
    out_ += '"';
  }

  static bool isJsonNumber(std::string_view v) {
    // The decimal/integer lexical forms are JSON numbers except for a leading '+' (positiveInt).
    if (v.empty()) return false;
    size_t i = v[0] == '-' ? 1 : 0;
    if (i >= v.size() || !(v[i] >= '0' && v[i] <= '9')) return false;
    if (v[i] == '0' && i + 1 < v.size() && v[i + 1] >= '0' && v[i + 1] <= '9') return false;
    for (; i < v.size(); ++i) {
      char c = v[i];
      if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return false;
    }
    char last = v.back();
    return last >= '0' && last <= '9';
  }

  void primitiveValue(const Node& n) {
    std::string_view v = n.value();
    switch (n.type()->json_kind) {
      case JsonValueKind::Number:
        if (isJsonNumber(v)) { out_ += v; return; }
        break;
      case JsonValueKind::Boolean:
        if (v == "true" || v == "false") { out_ += v; return; }
        break;
      case JsonValueKind::String:
        break;
    }
    string(v);  // an invalid number/boolean (already reported) is kept as text rather than lost
  }

  // The id/extension part of a primitive, written as the object of its "_x" property.
  void primitiveExtras(const Node& n) {
    out_ += '{';
    ++depth_;
    bool first = true;
    members(n, first);
    --depth_;
    newline();
    out_ += '}';
  }

  void complex(const Node& n) {
    out_ += '{';
    ++depth_;
    bool first = true;
    members(n, first);
    --depth_;
    if (!first) newline();
    out_ += '}';
  }

  void value(const Node& n) {
    if (n.isResource()) resource(n);
    else complex(n);
  }

  void members(const Node& parent, bool& first) {
    const Node* c = parent.firstChild();
    while (c != nullptr) {
      // A run of siblings of the same element: one JSON property (contained resources of different
      // types share one array).
      const Node* run_end = c->nextSibling();
      while (run_end != nullptr && run_end->element() == c->element()) {
        run_end = run_end->nextSibling();
      }
      std::string name = c->jsonName();
      bool repeats = c->element()->repeats();
      if (c->isPrimitive()) {
        bool any_value = false, any_extra = false;
        for (const Node* n = c; n != run_end; n = n->nextSibling()) {
          any_value |= n->hasValue();
          any_extra |= n->hasChildren();
        }
        if (any_value) {
          key(name, first);
          if (repeats) out_ += '[';
          bool first_item = true;
          for (const Node* n = c; n != run_end; n = n->nextSibling()) {
            if (!first_item) out_ += pretty_ ? ", " : ",";
            first_item = false;
            if (n->hasValue()) primitiveValue(*n); else out_ += "null";
            if (!repeats) break;
          }
          if (repeats) out_ += ']';
        }
        if (any_extra) {
          key("_" + name, first);
          if (repeats) out_ += '[';
          bool first_item = true;
          for (const Node* n = c; n != run_end; n = n->nextSibling()) {
            if (!first_item) out_ += ',';
            first_item = false;
            if (n->hasChildren()) primitiveExtras(*n); else out_ += "null";
            if (!repeats) break;
          }
          if (repeats) out_ += ']';
        }
      } else {
        key(name, first);
        if (repeats) {
          out_ += '[';
          ++depth_;
          bool first_item = true;
          for (const Node* n = c; n != run_end; n = n->nextSibling()) {
            if (!first_item) out_ += ',';
            first_item = false;
            newline();
            value(*n);
          }
          --depth_;
          newline();
          out_ += ']';
        } else {
          value(*c);
        }
      }
      c = run_end;
    }
  }

  std::string& out_;
  bool pretty_;
  int depth_ = 0;
};

// The first byte of `s` from `from` on that JSON must escape (a control character, '"' or '\\'),
// else s.size(). Eight bytes per step: most strings need no escape at all, and byte by byte the scan
// was the larger part of the gateway's access log line. The lowest flagged byte is exact (a borrow
// only propagates upwards), and bytes >= 0x80 (UTF-8) are never flagged.
size_t findJsonEscape(std::string_view s, size_t from) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHighs; };
  size_t i = from;
  if constexpr (std::endian::native == std::endian::little) {
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      uint64_t flagged = ((word - kOnes * 0x20) & ~word & kHighs) | zero_byte(word ^ (kOnes * '"')) |
                         zero_byte(word ^ (kOnes * '\\'));
      if (flagged != 0) return i + static_cast<size_t>(std::countr_zero(flagged)) / 8;
    }
  }
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return s.size();
}

}  // namespace

void appendJsonEscaped(std::string& out, std::string_view s) {
  size_t start = 0;
  for (size_t i = findJsonEscape(s, 0); i < s.size(); i = findJsonEscape(s, i + 1)) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.append(s.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        static const char* hex = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
  }
  out.append(s.data() + start, s.size() - start);
}

void writeJson(const Node& resource, std::string& out, const WriteOptions& options) {
  JsonWriter(out, options.pretty).resource(resource);
  if (options.pretty) out += '\n';
}

std::string writeJson(const Node& resource, const WriteOptions& options) {
  std::string out;
  writeJson(resource, out, options);
  return out;
}

std::string write(const Node& resource, Format format, const WriteOptions& options) {
  return format == Format::Xml ? writeXml(resource, options) : writeJson(resource, options);
}

}  // namespace medicus::fhir
