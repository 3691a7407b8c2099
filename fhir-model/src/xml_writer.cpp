// Element tree -> FHIR XML (http://hl7.org/fhir/R4/xml.html): elements in definition order, values in
// value attributes, Element.id and Extension.url as attributes, resources wrapped in their element,
// the narrative div written as its XHTML text.
#include <string>

#include "medicus/fhir/format.h"

namespace medicus::fhir {
namespace {

class XmlWriter {
 public:
  XmlWriter(std::string& out, bool pretty) : out_(out), pretty_(pretty) {}

  void resource(const Node& r, bool with_namespace) {
    indent();
    out_ += '<';
    out_ += r.type()->name;
    if (with_namespace) out_ += " xmlns=\"http://hl7.org/fhir\"";
    attributes(r);
    contentAndClose(r, r.type()->name);
  }

 private:
  void newline() { if (pretty_) out_ += '\n'; }
  void indent() { if (pretty_) out_.append(static_cast<size_t>(depth_) * 2, ' '); }

  static bool hasElementChildren(const Node& n) {
    for (const Node* c = n.firstChild(); c != nullptr; c = c->nextSibling()) {
      if (!c->element()->is_xml_attribute) return true;
    }
    return false;
  }

  void escaped(std::string_view s) {
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const char* rep = nullptr;
      switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\n': rep = "&#10;"; break;
        case '\r': rep = "&#13;"; break;
        case '\t': rep = "&#9;"; break;
        default: continue;
      }
      out_.append(s.data() + start, i - start);
      out_ += rep;
      start = i + 1;
    }
    out_.append(s.data() + start, s.size() - start);
  }

  void attribute(std::string_view name, std::string_view value) {
    out_ += ' ';
    out_ += name;
    out_ += "=\"";
    escaped(value);
    out_ += '"';
  }

  void attributes(const Node& n) {
    for (const Node* c = n.firstChild(); c != nullptr; c = c->nextSibling()) {
      if (c->element()->is_xml_attribute && c->hasValue()) attribute(c->element()->name, c->value());
    }
    if (n.isPrimitive() && n.hasValue() && n.type()->name != "xhtml") attribute("value", n.value());
  }

  void element(const Node& n) {
    if (n.type()->name == "xhtml") {
      indent();
      out_ += n.value();
      newline();
      return;
    }
    std::string name = n.jsonName();
    indent();
    out_ += '<';
    out_ += name;
    if (n.isResource()) {
      out_ += '>';
      newline();
      ++depth_;
      resource(n, false);
      --depth_;
      indent();
      out_ += "</";
      out_ += name;
      out_ += '>';
      newline();
      return;
    }
    attributes(n);
    contentAndClose(n, name);
  }

  // After the start tag's attributes: "/>" for an empty element, else the children and the end tag.
  void contentAndClose(const Node& n, std::string_view name) {
    if (!hasElementChildren(n)) {
      out_ += "/>";
      newline();
      return;
    }
    out_ += '>';
    newline();
    ++depth_;
    children(n);
    --depth_;
    indent();
    out_ += "</";
    out_ += name;
    out_ += '>';
    newline();
  }

  void children(const Node& n) {
    for (const Node* c = n.firstChild(); c != nullptr; c = c->nextSibling()) {
      if (!c->element()->is_xml_attribute) element(*c);
    }
  }

  std::string& out_;
  bool pretty_;
  int depth_ = 0;
};

}  // namespace

void writeXml(const Node& resource, std::string& out, const WriteOptions& options) {
  XmlWriter(out, options.pretty).resource(resource, true);
}

std::string writeXml(const Node& resource, const WriteOptions& options) {
  std::string out;
  writeXml(resource, out, options);
  return out;
}

}  // namespace medicus::fhir
