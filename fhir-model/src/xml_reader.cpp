// FHIR XML -> element tree (http://hl7.org/fhir/R4/xml.html). pugixml never expands DTD entities or
// fetches anything; a DOCTYPE is rejected outright. The narrative <div> is kept as its exact source text.
#include <algorithm>
#include <cstring>
#include <pugixml.hpp>
#include <string>

#include "medicus/fhir/format.h"
#include "source_issues.h"

namespace medicus::fhir {
namespace {

constexpr std::string_view kFhirNamespace = "http://hl7.org/fhir";
constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";
constexpr std::string_view kXsiNamespace = "http://www.w3.org/2001/XMLSchema-instance";

// Offset of the first invalid UTF-8 sequence, or npos.
size_t invalidUtf8Offset(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    for (size_t k = 1; k < len; ++k) if ((p[i + k] & 0xC0) != 0x80) return i;
    uint32_t cp = len == 2 ? ((c & 0x1F) << 6) | (p[i + 1] & 0x3F)
                : len == 3 ? ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F)
                           : ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// The exact source text of the element starting at `start` ('<'): scans tags keeping depth.
std::string_view rawElementText(std::string_view src, size_t start) {
  int depth = 0;
  size_t i = start;
  while (i < src.size()) {
    size_t lt = src.find('<', i);
    if (lt == std::string_view::npos) break;
    if (src.compare(lt, 4, "<!--") == 0) {
      size_t end = src.find("-->", lt + 4);
      if (end == std::string_view::npos) break;
      i = end + 3;
      continue;
    }
    if (src.compare(lt, 9, "<![CDATA[") == 0) {
      size_t end = src.find("]]>", lt + 9);
      if (end == std::string_view::npos) break;
      i = end + 3;
      continue;
    }
    if (src.compare(lt, 2, "<?") == 0) {
      size_t end = src.find("?>", lt + 2);
      if (end == std::string_view::npos) break;
      i = end + 2;
      continue;
    }
    bool closing = lt + 1 < src.size() && src[lt + 1] == '/';
    // Find the end of the tag, skipping quoted attribute values.
    size_t j = lt + 1;
    char quote = 0;
    while (j < src.size()) {
      char c = src[j];
      if (quote) { if (c == quote) quote = 0; }
      else if (c == '"' || c == '\'') quote = c;
      else if (c == '>') break;
      ++j;
    }
    if (j >= src.size()) break;
    bool self_closing = !closing && src[j - 1] == '/';
    if (closing) --depth;
    else if (!self_closing) ++depth;
    i = j + 1;
    if (depth == 0) return src.substr(start, i - start);
  }
  return {};
}

std::string_view localName(std::string_view qname) {
  auto colon = qname.find(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

class XmlWalker {
 public:
  XmlWalker(Document& doc, Issues& issues, const ParseOptions& options, std::string_view source)
      : doc_(doc), issues_(issues, source), options_(options), source_(source), model_(TypeModel::r4()) {}

  Node* walkRoot(pugi::xml_node element) {
    std::string_view name = localName(element.name());
    const TypeInfo* type = model_.find(name);
    if (type == nullptr || !type->isResource() || type->is_abstract) {
      report(Severity::Fatal, IssueType::Structure, offsetOf(element), "",
             "The root element <" + std::string(element.name()) + "> is not an R4 resource type", "xml.resource-type");
      return nullptr;
    }
    if (namespaceOf(element) != kFhirNamespace) {
      report(Severity::Error, IssueType::Structure, offsetOf(element), std::string(name),
             "The resource must be in the FHIR namespace: write <" + std::string(name) + " xmlns=\"http://hl7.org/fhir\">",
             "xml.namespace");
    }
    Node* root = doc_.createRoot(type);
    doc_.setSourceOffset(root, offsetOf(element));
    walkElement(root, element, type, 1);
    return root;
  }

 private:
  uint32_t offsetOf(pugi::xml_node n) const {
    auto off = n.offset_debug();
    if (off < 0) return 0;
    size_t o = static_cast<size_t>(off);
    // pugixml points at the element name; the location we report is its '<'.
    if (o < source_.size() && source_[o] != '<' && o > 0 && source_[o - 1] == '<') --o;
    return static_cast<uint32_t>(o);
  }

  static std::string_view namespaceOf(pugi::xml_node element) { return namespaceOf(element, element.name()); }

  // The namespace that `qname`'s prefix (or the default namespace) is bound to in `element`'s scope.
  static std::string_view namespaceOf(pugi::xml_node element, std::string_view qname) {
    auto colon = qname.find(':');
    std::string attr = colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(qname.substr(0, colon));
    for (pugi::xml_node n = element; n; n = n.parent()) {
      if (n.type() != pugi::node_element) break;
      pugi::xml_attribute a = n.attribute(attr.c_str());
      if (a) return a.value();
    }
    return {};
  }

  void report(Severity severity, IssueType type, uint32_t offset, std::string expression, std::string message,
              std::string rule) {
    issues_.report(severity, type, offset, std::move(expression), std::move(message), std::move(rule));
  }

  void walkElement(Node* node, pugi::xml_node element, const TypeInfo* type, uint32_t depth) {
    if (depth > options_.max_depth) {
      report(Severity::Fatal, IssueType::Structure, offsetOf(element), pathOf(*node),
             "The XML is nested more than " + std::to_string(options_.max_depth) + " levels deep", "xml.too-deep");
      return;
    }
    for (pugi::xml_attribute a : element.attributes()) {
      std::string_view name = a.name();
      // Namespace declarations are not content; FHIR elements have only the attributes their definition
      // gives (value, id, url), so any other is reported below, xsi:schemaLocation unless allowed.
      if (name == "xmlns" || name.starts_with("xmlns:")) continue;
      if (options_.allow_xsi_schema_location && name.ends_with(":schemaLocation") &&
          namespaceOf(element, name) == kXsiNamespace) {
        continue;
      }
      if (type->isPrimitive() && name == "value") {
        doc_.setValue(node, a.value());
        checkValue(node, type, element);
        continue;
      }
      const ElementInfo* e = type->findElement(name);
      if (e == nullptr || !e->is_xml_attribute || e->types.empty()) {
        report(Severity::Error, IssueType::Structure, offsetOf(element), pathOf(*node),
               "Unknown attribute '" + std::string(name) + "' on <" + std::string(element.name()) + ">",
               "xml.unknown-attribute");
        continue;
      }
      Node* attr = doc_.addChild(node, e, e->types[0]);
      doc_.setValue(attr, a.value());
      doc_.setSourceOffset(attr, offsetOf(element));
      checkValue(attr, e->types[0], element);
    }
    int last_index = -1;
    const ElementInfo* last_element = nullptr;
    for (pugi::xml_node child : element.children()) {
      switch (child.type()) {
        case pugi::node_element: break;
        case pugi::node_pcdata:
        case pugi::node_cdata: {
          std::string_view text = child.value();
          if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
            report(Severity::Error, IssueType::Structure, offsetOf(element), pathOf(*node),
                   "Text content is not allowed in FHIR XML elements (values go in the value attribute)", "xml.text");
          }
          continue;
        }
        default: continue;  // comments, processing instructions
      }
      std::string_view name = localName(child.name());
      const ElementInfo* e = nullptr;
      const TypeInfo* t = nullptr;
      if (!type->resolveProperty(name, e, t) || e->is_xml_attribute) {
        report(options_.unknown_elements_are_warnings ? Severity::Warning : Severity::Error, IssueType::Structure,
               offsetOf(child), pathOf(*node),
               "Unknown element <" + std::string(name) + "> in " + std::string(type->name) +
                   ": it is not defined in FHIR R4; check the spelling, or carry extra data in an extension",
               "xml.unknown-element");
        doc_.markUnknownContent(node);
        continue;
      }
      if (static_cast<int>(e->index) < last_index) {
        report(Severity::Error, IssueType::Structure, offsetOf(child), pathOf(*node),
               "Element <" + std::string(name) + "> is out of order: FHIR XML elements must follow the order of the definition",
               "xml.order");
      }
      if (e == last_element && !e->repeats()) {
        report(Severity::Error, IssueType::Structure, offsetOf(child), pathOf(*node),
               "Element <" + std::string(name) + "> may appear only once here (max 1); the repetition is ignored",
               "xml.repeated");
        continue;
      }
      last_index = std::max(last_index, static_cast<int>(e->index));
      last_element = e;
      walkChild(node, child, e, t, depth);
    }
    if (type->isPrimitive() && !node->hasValue() && !node->hasChildren()) {
      report(Severity::Error, IssueType::Required, offsetOf(element), pathOf(*node),
             "<" + std::string(element.name()) + "> has neither a value attribute nor an extension", "xml.empty-primitive");
    }
  }

  void walkChild(Node* parent, pugi::xml_node child, const ElementInfo* e, const TypeInfo* t, uint32_t depth) {
    if (t->name == "xhtml") {
      Node* node = doc_.addChild(parent, e, t);
      uint32_t offset = offsetOf(child);
      doc_.setSourceOffset(node, offset);
      std::string_view raw = rawElementText(source_, offset);
      if (namespaceOf(child) != kXhtmlNamespace) {
        report(Severity::Error, IssueType::Structure, offset, pathOf(*node),
               "The narrative <div> must be in the XHTML namespace: write <div xmlns=\"http://www.w3.org/1999/xhtml\">",
               "xml.xhtml-namespace");
      }
      if (!raw.empty() && std::string_view(child.name()) == "div") {
        doc_.setValue(node, raw);
      } else {
        // Fallback: re-serialise (a prefixed or unusual div).
        std::string text;
        struct StringWriter : pugi::xml_writer {
          std::string* out;
          void write(const void* data, size_t size) override { out->append(static_cast<const char*>(data), size); }
        } w;
        w.out = &text;
        child.print(w, "", pugi::format_raw);
        doc_.setValue(node, text);
      }
      return;
    }
    if (t->isResource()) {
      // <contained><Patient>...</Patient></contained>: exactly one resource element inside.
      pugi::xml_node inner;
      int count = 0;
      for (pugi::xml_node c : child.children()) {
        if (c.type() == pugi::node_element) {
          if (!inner) inner = c;
          ++count;
        }
      }
      if (count != 1) {
        report(Severity::Error, IssueType::Structure, offsetOf(child), pathOf(*parent),
               "<" + std::string(child.name()) + "> must contain exactly one resource element", "xml.resource-wrapper");
        if (!inner) return;
      }
      const TypeInfo* rt = model_.find(localName(inner.name()));
      if (rt == nullptr || !rt->isResource() || rt->is_abstract) {
        report(Severity::Error, IssueType::Structure, offsetOf(inner), pathOf(*parent),
               "<" + std::string(inner.name()) + "> is not an R4 resource type", "xml.resource-type");
        return;
      }
      Node* node = doc_.addChild(parent, e, rt);
      doc_.setSourceOffset(node, offsetOf(inner));
      walkElement(node, inner, rt, depth + 1);
      return;
    }
    Node* node = doc_.addChild(parent, e, t);
    doc_.setSourceOffset(node, offsetOf(child));
    walkElement(node, child, t, depth + 1);
  }

  void checkValue(Node* node, const TypeInfo* type, pugi::xml_node element) {
    std::string problem = checkPrimitiveValue(*type, node->value());
    if (problem.empty()) return;
    std::string v(node->value().substr(0, 60));
    report(Severity::Error, IssueType::Value, offsetOf(element), pathOf(*node),
           "The value '" + v + "' of " + std::string(node->name()) + " (" + std::string(type->name) + ") " + problem,
           "type." + std::string(type->name));
  }

  Document& doc_;
  SourceIssues issues_;
  const ParseOptions& options_;
  std::string_view source_;
  const TypeModel& model_;
};

// XML without a DTD knows five entities (amp, lt, gt, quot, apos) and character references; pugixml
// passes any other "&name;" through as text, so the source is checked here (outside comments, CDATA
// sections and processing instructions). Returns the offset of the first bad reference and its
// message, or npos. Input without '&' costs one memchr.
std::pair<size_t, std::string> badEntityReference(std::string_view s) {
  if (s.find('&') == std::string_view::npos) return {std::string_view::npos, {}};
  auto isNameChar = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
  };
  size_t i = 0;
  while ((i = s.find_first_of("<&", i)) != std::string_view::npos) {
    if (s[i] == '<') {
      std::string_view rest = s.substr(i);
      std::string_view end;
      if (rest.starts_with("<!--")) end = "-->";
      else if (rest.starts_with("<![CDATA[")) end = "]]>";
      else if (rest.starts_with("<?")) end = "?>";
      if (end.empty()) { ++i; continue; }
      size_t close = s.find(end, i + 2);
      if (close == std::string_view::npos) break;  // unterminated: pugixml has reported it
      i = close + end.size();
      continue;
    }
    size_t semi = s.find(';', i + 1);
    std::string_view ref = semi == std::string_view::npos ? std::string_view() : s.substr(i + 1, semi - i - 1);
    bool ok = false;
    if (ref.size() > 1 && ref[0] == '#') {
      bool hex = ref[1] == 'x';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      ok = !digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
        return (c >= '0' && c <= '9') || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
      });
      if (!ok) return {i, "Invalid character reference '&" + std::string(ref.substr(0, 16)) + ";'"};
    } else if (!ref.empty() && std::all_of(ref.begin(), ref.end(), isNameChar)) {
      if (ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos") ok = true;
      else return {i, "The entity '" + std::string(ref.substr(0, 40)) + "' was referenced, but not declared (FHIR XML has no DTD: use a character reference such as &#174; or the character itself)"};
    }
    if (!ok) return {i, "A '&' must start an entity or character reference (write '&amp;' for the character itself)"};
    i = semi + 1;
  }
  return {std::string_view::npos, {}};
}

}  // namespace

ParseResult parseXml(std::string_view text, const ParseOptions& options) {
  ParseResult result;
  auto fatal = [&](std::string message, std::string rule, SourcePosition pos = {}) {
    result.issues.push_back({Severity::Fatal, IssueType::Structure, std::move(message), "", pos, std::move(rule)});
  };
  if (text.size() > options.max_bytes) {
    result.issues.push_back({Severity::Fatal, IssueType::TooCostly,
                             "The resource is " + std::to_string(text.size()) + " bytes; the limit is " +
                                 std::to_string(options.max_bytes) + " bytes",
                             "", {}, "xml.too-large"});
    return result;
  }
  auto doc = std::make_unique<Document>(text.size() * 3 + 4096);
  std::string_view source = doc->copySource(text);
  if (size_t bad = invalidUtf8Offset(source); bad != std::string_view::npos) {
    fatal("The XML is not valid UTF-8 (FHIR XML must be UTF-8)", "xml.encoding", LineIndex(source).positionOf(bad));
    return result;
  }
  pugi::xml_document xml;
  // No parse_eol: offsets must match the source for line:col. parse_doctype only to detect and reject it.
  unsigned flags = pugi::parse_escapes | pugi::parse_wconv_attribute | pugi::parse_cdata | pugi::parse_doctype;
  pugi::xml_parse_result parsed = xml.load_buffer(source.data(), source.size(), flags, pugi::encoding_utf8);
  if (!parsed) {
    fatal(std::string("Invalid XML: ") + parsed.description(), "xml.syntax",
          LineIndex(source).positionOf(static_cast<size_t>(std::max<ptrdiff_t>(parsed.offset, 0))));
    return result;
  }
  for (pugi::xml_node n : xml.children()) {
    if (n.type() == pugi::node_doctype) {
      fatal("DOCTYPE declarations are not allowed in FHIR XML (no DTDs, no entities)", "xml.doctype");
      return result;
    }
  }
  if (auto [offset, message] = badEntityReference(source); offset != std::string_view::npos) {
    fatal(std::move(message), "xml.entity", LineIndex(source).positionOf(offset));
    return result;
  }
  pugi::xml_node root = xml.document_element();
  if (!root) {
    fatal("The XML has no root element", "xml.syntax");
    return result;
  }
  XmlWalker walker(*doc, result.issues, options, source);
  if (walker.walkRoot(root) != nullptr) result.document = std::move(doc);
  return result;
}

}  // namespace medicus::fhir
