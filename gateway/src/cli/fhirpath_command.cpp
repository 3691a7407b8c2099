// medicus-gateway fhirpath EXPR [FILE|-]: evaluates a FHIRPath expression on a FHIR resource (JSON or
// XML) and prints the result collection as typed JSON: [{"type":"string","value":"Peter"}, ...].
// Exit 0 on success, 1 when evaluation fails, 2 for usage errors, unreadable input or syntax errors.
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "medicus/fhir/format.h"
#include "medicus/fhirpath/fhirpath.h"

namespace medicus::gateway::cli {
namespace {

namespace fp = medicus::fhirpath;

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  fhir::appendJsonEscaped(out, s);
  out += '"';
}

// A primitive's value as JSON: numbers and booleans bare, everything else as a string.
void appendPrimitive(std::string& out, const fhir::Node& node) {
  if (!node.hasValue()) {
    out += "null";
    return;
  }
  if (node.type()->json_kind != fhir::JsonValueKind::String) out += node.value();
  else appendJsonString(out, node.value());
}

// Complex values as FHIR JSON objects (primitives' id/extension left out for brevity).
void appendNode(std::string& out, const fhir::Node& node) {
  if (node.isPrimitive()) {
    appendPrimitive(out, node);
    return;
  }
  if (node.isResource() && node.parent() == nullptr) {
    out += fhir::writeJson(node);
    return;
  }
  out += '{';
  bool first = true;
  if (node.isResource()) {
    out += "\"resourceType\":";
    appendJsonString(out, node.type()->name);
    first = false;
  }
  const fhir::Node* child = node.firstChild();
  while (child) {
    const fhir::ElementInfo* element = child->element();
    if (!first) out += ',';
    first = false;
    appendJsonString(out, child->jsonName());
    out += ':';
    bool repeats = element && element->repeats();
    if (repeats) out += '[';
    const fhir::Node* c = child;
    bool first_item = true;
    for (; c && c->element() == element; c = c->nextSibling()) {
      if (!first_item) out += ',';
      first_item = false;
      appendNode(out, *c);
      if (!repeats) {
        c = c->nextSibling();
        break;
      }
    }
    if (repeats) out += ']';
    child = c;
  }
  out += '}';
}

void appendItem(std::string& out, const fp::Item& item) {
  out += "{\"type\":";
  appendJsonString(out, fp::outputTypeName(item));
  out += ",\"value\":";
  if (item.node) {
    appendNode(out, *item.node);
  } else {
    const fp::SystemValue& v = item.value;
    switch (v.index()) {
      case 0: out += std::get<bool>(v) ? "true" : "false"; break;
      case 2: out += std::to_string(std::get<int64_t>(v)); break;
      case 3: out += std::get<fp::Decimal>(v).toString(); break;  // exact digits
      case 5: {
        const auto& q = std::get<fp::Quantity>(v);
        out += "{\"value\":" + q.value.toString() + ",\"unit\":";
        appendJsonString(out, q.unit);
        out += '}';
        break;
      }
      default: appendJsonString(out, fp::toText(v));
    }
  }
  out += '}';
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: medicus-gateway fhirpath EXPRESSION [FILE|-]\n"
               "Evaluates a FHIRPath expression on a FHIR resource (JSON or XML; '-' reads stdin; without FILE\n"
               "the expression runs on an empty context) and prints the result as typed JSON.\n"
               "Exit 0 ok, 1 evaluation error, 2 usage, unreadable input or syntax/semantic error.\n");
}

}  // namespace

int runFhirpath(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    usage(args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args.size() > 2) {
    usage(stderr);
    return kExitUsage;
  }
  std::unique_ptr<fhir::Document> document;
  fp::CompileOptions options;
  if (args.size() == 2) {
    std::string text;
    if (!readInput(args[1], text)) return kExitUsage;
    fhir::ParseOptions parse_options;
    parse_options.unknown_elements_are_warnings = true;
    auto parsed = fhir::parse(text, parse_options);
    if (!parsed.document) {
      std::fprintf(stderr, "medicus-gateway fhirpath: %.*s is not a FHIR resource\n", static_cast<int>(args[1].size()), args[1].data());
      return kExitUsage;
    }
    document = std::move(parsed.document);
    options.root_type = std::string(document->root()->type()->name);
  }
  auto expression = fp::compile(args[0], options);
  if (!expression) {
    std::fprintf(stderr, "medicus-gateway fhirpath: %s\n", expression.error().toString().c_str());
    return kExitUsage;
  }
  fp::EvaluationContext context;
  context.context = document ? document->root() : nullptr;
  context.trace = [](std::string_view name, const fp::Collection& items) {
    std::string line;
    for (const auto& item : items) {
      if (!line.empty()) line += ',';
      appendItem(line, item);
    }
    std::fprintf(stderr, "trace %.*s: [%s]\n", static_cast<int>(name.size()), name.data(), line.c_str());
  };
  auto result = expression->evaluate(context);
  if (!result) {
    std::fprintf(stderr, "medicus-gateway fhirpath: %s\n", result.error().toString().c_str());
    return kExitInputErrors;
  }
  std::string out = "[";
  for (size_t i = 0; i < result->size(); ++i) {
    if (i) out += ',';
    appendItem(out, (*result)[i]);
  }
  out += "]\n";
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace medicus::gateway::cli
