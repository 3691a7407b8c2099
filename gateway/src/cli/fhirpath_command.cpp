// medicus-gateway fhirpath [--package PKG]... EXPR [FILE|-]: evaluates a FHIRPath expression on a FHIR
// resource (JSON or XML) and prints the result collection as typed JSON: [{"type":"string","value":"Peter"}, ...].
// With --package, memberOf() and subsumes()/subsumedBy() are answered from the ValueSets and
// CodeSystems of R4 core and the packages given (the validator's local terminology).
// Exit 0 on success, 1 when evaluation fails, 2 for usage errors, unreadable input or syntax errors.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "medicus/fhir/format.h"
#include "medicus/fhirpath/fhirpath.h"
#include "medicus/profiles/package_registry.h"
#include "medicus/profiles/terminology.h"

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
               "usage: medicus-gateway fhirpath [--package PKG]... EXPRESSION [FILE|-]\n"
               "Evaluates a FHIRPath expression on a FHIR resource (JSON or XML; '-' reads stdin; without FILE\n"
               "the expression runs on an empty context) and prints the result as typed JSON.\n"
               "  --package PKG   answer memberOf() and subsumes()/subsumedBy() from the ValueSets and CodeSystems\n"
               "                  of R4 core and PKG (.tgz, folder, definition file/Bundle, name#version from the\n"
               "                  package cache; 'core' for R4 core alone); repeatable. Codes of systems not in\n"
               "                  the packages (SNOMED CT, LOINC, ...) are an evaluation error.\n"
               "Exit 0 ok, 1 evaluation error, 2 usage, unreadable input, unknown package or syntax/semantic error.\n");
}

std::string_view childValue(const fhir::Node& node, std::string_view name) {
  const fhir::Node* c = node.child(name);
  return c && c->hasValue() ? c->value() : std::string_view();
}

// memberOf() and subsumes() against the local terminology of the loaded packages.
class TerminologyHooks final : public fp::ExternalHooks {
 public:
  explicit TerminologyHooks(profiles::Terminology& tx) : tx_(tx) {}
  tl::expected<bool, std::string> memberOf(const fp::Item& item, std::string_view value_set) const override {
    std::vector<std::pair<std::string_view, std::string_view>> codes;  // (system, code)
    if (item.isNode()) {
      const fhir::Node& node = *item.node;
      if (node.isPrimitive()) {
        if (node.hasValue()) codes.emplace_back(std::string_view(), node.value());
      } else if (node.type()->name == "Coding" || node.type()->isA("Quantity")) {
        codes.emplace_back(childValue(node, "system"), childValue(node, "code"));
      } else if (node.type()->name == "CodeableConcept") {
        for (const fhir::Node* c : node.children("coding")) codes.emplace_back(childValue(*c, "system"), childValue(*c, "code"));
      } else {
        return tl::make_unexpected(std::string("memberOf() needs a code, Coding, CodeableConcept or string"));
      }
    } else if (const auto* text = std::get_if<std::string>(&item.value)) {
      codes.emplace_back(std::string_view(), *text);
    } else {
      return tl::make_unexpected(std::string("memberOf() needs a code, Coding, CodeableConcept or string"));
    }
    std::string cannot;
    for (const auto& [system, code] : codes) {
      if (code.empty()) continue;
      profiles::CodeCheck check = tx_.checkValueSet(value_set, system, code);
      if (check.status == profiles::CodeStatus::Valid) return true;
      if (check.status == profiles::CodeStatus::CannotCheck) cannot = check.detail;
    }
    if (!cannot.empty()) return tl::make_unexpected("memberOf('" + std::string(value_set) + "'): " + cannot);
    return false;
  }
  tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                           std::string_view descendant) const override {
    return tx_.subsumes(system, ancestor, descendant);
  }

 private:
  profiles::Terminology& tx_;
};

}  // namespace

int runFhirpath(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    usage(args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  std::vector<std::string> packages;
  std::vector<std::string_view> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--package") {
      if (i + 1 >= args.size()) {
        usage(stderr);
        return kExitUsage;
      }
      packages.emplace_back(args[++i]);
    } else if (a.size() > 1 && a[0] == '-' && positional.size() == 1) {
      // An option after the expression (the expression itself may start with '-': -1.abs()).
      std::fprintf(stderr, "medicus-gateway fhirpath: unknown option %.*s\n", static_cast<int>(a.size()), a.data());
      usage(stderr);
      return kExitUsage;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.empty() || positional.size() > 2) {
    usage(stderr);
    return kExitUsage;
  }
  // Terminology for memberOf()/subsumes() when packages are given.
  profiles::PackageRegistry registry;
  std::unique_ptr<profiles::Terminology> terminology;
  std::optional<TerminologyHooks> hooks;
  if (!packages.empty()) {
    if (auto core = registry.loadCore(); !core) {
      std::fprintf(stderr, "medicus-gateway fhirpath: %s\n", core.error().c_str());
      return kExitUsage;
    }
    for (const auto& p : packages) {
      if (p == "core") continue;
      if (auto loaded = registry.load(p); !loaded) {
        std::fprintf(stderr, "medicus-gateway fhirpath: --package %s: %s\n", p.c_str(), loaded.error().c_str());
        return kExitUsage;
      }
    }
    terminology = std::make_unique<profiles::Terminology>(registry);
    hooks.emplace(*terminology);
  }
  std::unique_ptr<fhir::Document> document;
  fp::CompileOptions options;
  if (positional.size() == 2) {
    std::string_view file = positional[1];
    std::string text;
    if (!readInput(file, text)) return kExitUsage;
    fhir::ParseOptions parse_options;
    parse_options.unknown_elements_are_warnings = true;
    auto parsed = fhir::parse(text, parse_options);
    if (!parsed.document) {
      std::fprintf(stderr, "medicus-gateway fhirpath: %.*s is not a FHIR resource\n", static_cast<int>(file.size()), file.data());
      return kExitUsage;
    }
    document = std::move(parsed.document);
    options.root_type = std::string(document->root()->type()->name);
  }
  auto expression = fp::compile(positional[0], options);
  if (!expression) {
    std::fprintf(stderr, "medicus-gateway fhirpath: %s\n", expression.error().toString().c_str());
    return kExitUsage;
  }
  fp::EvaluationContext context;
  context.context = document ? document->root() : nullptr;
  if (hooks) context.hooks = &*hooks;
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
