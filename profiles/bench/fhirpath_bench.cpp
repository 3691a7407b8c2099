// fhirpath_bench: evaluates every invariant (constraint expression) of the R4 core StructureDefinitions
// on every applicable element of every resource of the R4 examples corpus, beside the cost of parsing
// the same corpus in the same run. Target: invariants cost less than parsing.
//
//   fhirpath_bench [EXAMPLES_DIR] [ITERATIONS]
// EXAMPLES_DIR defaults to $MEDICUS_TESTDATA/fhir-r4-examples/json; the core package is read from
// $MEDICUS_FHIR_PACKAGES (default ~/.fhir/packages)/hl7.fhir.r4.core#4.0.1/package.
//
// Applicability: a node gets the constraints of its element definition path (Patient.contact,
// Observation.value[x], ...) and those of its type's root (HumanName, Patient, ...), each constraint
// key once. As the validator's ProfileStore does, an expression is compiled once per (expression text,
// context type: the element's type code, e.g. BackboneElement for every backbone) and shared by every
// element it applies to; all compiling happens before timing.
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "medicus/fhir/format.h"
#include "medicus/fhirpath/fhirpath.h"

namespace fs = std::filesystem;
namespace fp = medicus::fhirpath;
namespace fhir = medicus::fhir;
using Clock = std::chrono::steady_clock;

namespace {

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Invariant {
  std::string key;
  std::string expression;
  // The context type the validator's ProfileStore compiles it for (and shares the compiled form
  // under): the definition's type on its root element, else the element's single type code
  // ("HumanName", "BackboneElement"), else empty (choice elements).
  std::string context_type;
};

// Constraints by element path, from the snapshots of the core StructureDefinitions.
std::map<std::string, std::vector<Invariant>> loadInvariants(const fs::path& package_dir, size_t& definitions) {
  std::map<std::string, std::vector<Invariant>> by_path;
  for (const auto& entry : fs::directory_iterator(package_dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("StructureDefinition-", 0) != 0 || entry.path().extension() != ".json") continue;
    rapidjson::Document doc;
    std::string text = readFile(entry.path());
    if (doc.Parse(text.c_str(), text.size()).HasParseError() || !doc.IsObject()) continue;
    auto derivation = doc.FindMember("derivation");
    if (derivation == doc.MemberEnd() || std::string_view(derivation->value.GetString()) != "specialization") continue;
    auto snapshot = doc.FindMember("snapshot");
    if (snapshot == doc.MemberEnd()) continue;
    ++definitions;
    bool root = true;
    for (const auto& element : snapshot->value["element"].GetArray()) {
      std::string context_type;
      if (root) {
        context_type = doc["type"].GetString();
      } else if (auto types = element.FindMember("type"); types != element.MemberEnd() && types->value.Size() == 1) {
        context_type = types->value[0]["code"].GetString();
      }
      root = false;
      auto constraints = element.FindMember("constraint");
      if (constraints == element.MemberEnd()) continue;
      std::string path = element["path"].GetString();
      auto& list = by_path[path];
      for (const auto& c : constraints->value.GetArray()) {
        auto expr = c.FindMember("expression");
        if (expr == c.MemberEnd()) continue;
        std::string key = c["key"].GetString();
        if (std::none_of(list.begin(), list.end(), [&](const Invariant& i) { return i.key == key; }))
          list.push_back({key, expr->value.GetString(), context_type});
      }
    }
  }
  return by_path;
}

// The invariants of one (element, type): each entry names its compiled expression and, when an
// earlier entry of the set has the same compiled expression (txt-1 and txt-2 are both
// htmlChecks()), that entry's index: the expression runs once on the node and decides both, as the
// validator's checkInvariants() does.
struct CompiledSet {
  struct Entry {
    const fp::Expression* expression;  // owned by InvariantRunner::compiled_by_text_
    int same_as = -1;
  };
  std::vector<Entry> entries;
};
// Outcome counts plus a digest of every outcome in evaluation order (FNV-1a over true/false/error), so
// that two builds of the engine can be compared exactly: same digest, same answers on every node.
struct Counts {
  size_t evaluations = 0, true_results = 0, false_results = 0, errors = 0;
  uint64_t digest = 14695981039346656037ull;
  void add(uint8_t outcome) {
    ++evaluations;
    digest = (digest ^ outcome) * 1099511628211ull;
  }
  bool operator==(const Counts& o) const {
    return evaluations == o.evaluations && true_results == o.true_results && false_results == o.false_results &&
           errors == o.errors && digest == o.digest;
  }
};

class InvariantRunner {
 public:
  explicit InvariantRunner(const std::map<std::string, std::vector<Invariant>>& invariants) : invariants_(invariants) {}

  // Every node of the tree, in document order. Like the validator, which walks an instance beside
  // its type's element definitions, the walk finds a child's invariants through its parent's type
  // (the child's element index there), not by a lookup per node; sets are compiled on first use.
  void run(const fhir::Node* root, Counts& counts) {
    auto [it, inserted] = roots_.try_emplace(root->type());
    if (inserted) it->second = makeSlot(nullptr, root->type());
    walk(root, it->second, counts);
  }

  size_t compiled() const { return compiled_; }
  size_t shared() const { return shared_; }
  size_t compileFailures() const { return compile_failures_; }

 private:
  struct TypeTable;
  // What one (element, type) needs: its invariants and the table of its type for its children.
  struct Slot {
    const fhir::ElementInfo* element = nullptr;
    const fhir::TypeInfo* type = nullptr;
    const CompiledSet* set = nullptr;
    TypeTable* children = nullptr;
  };
  // The slots of the children of one type, by the child's element index in that type; an element
  // has more than one slot when it allows several types (value[x], contained).
  struct TypeTable {
    std::vector<std::vector<Slot>> by_element;
  };

  void walk(const fhir::Node* node, const Slot& slot, Counts& counts) {
    evaluate(slot.set, node, counts);
    TypeTable* table = slot.children;
    for (const fhir::Node* child : node->children()) walk(child, slotFor(*table, child), counts);
  }

  Slot slotFor(TypeTable& table, const fhir::Node* child) {
    const fhir::ElementInfo* element = child->element();
    if (element->index >= table.by_element.size()) table.by_element.resize(element->index + 1u);
    std::vector<Slot>& slots = table.by_element[element->index];
    for (const Slot& s : slots)
      if (s.element == element && s.type == child->type()) return s;
    slots.push_back(makeSlot(element, child->type()));
    return slots.back();
  }

  Slot makeSlot(const fhir::ElementInfo* element, const fhir::TypeInfo* type) {
    Slot slot;
    slot.element = element;
    slot.type = type;
    slot.set = setFor(element, type);
    auto& table = tables_[type];
    if (!table) table = std::make_unique<TypeTable>();
    slot.children = table.get();
    return slot;
  }

  // The invariants of one node: those of its element definition path plus those of its type's root,
  // each constraint key once (ele-1 sits on both).
  const CompiledSet* setFor(const fhir::ElementInfo* element, const fhir::TypeInfo* type) {
    auto set = std::make_unique<CompiledSet>();
    std::vector<const Invariant*> applicable;
    auto add = [&](std::string_view path) {
      auto inv = invariants_.find(std::string(path));
      if (inv == invariants_.end()) return;
      for (const Invariant& i : inv->second)
        if (std::none_of(applicable.begin(), applicable.end(), [&](const Invariant* a) { return a->key == i.key; }))
          applicable.push_back(&i);
    };
    if (element) add(element->path);
    add(type->name);
    for (const Invariant* i : applicable) {
      const fp::Expression* e = compiledFor(i->expression, i->context_type, type->name);
      if (!e) continue;
      CompiledSet::Entry entry{e};
      for (size_t k = 0; k < set->entries.size(); ++k)
        if (set->entries[k].expression == e && set->entries[k].same_as < 0) entry.same_as = static_cast<int>(k);
      set->entries.push_back(entry);
    }
    sets_.push_back(std::move(set));
    return sets_.back().get();
  }

  void evaluate(const CompiledSet* set, const fhir::Node* node, Counts& counts) {
    if (set->entries.empty()) return;
    fp::EvaluationContext ctx;
    ctx.context = node;
    uint8_t outcomes[64];
    for (size_t k = 0; k < set->entries.size(); ++k) {
      const CompiledSet::Entry& entry = set->entries[k];
      uint8_t outcome;
      if (entry.same_as >= 0 && static_cast<size_t>(entry.same_as) < std::size(outcomes)) {
        outcome = outcomes[entry.same_as];
      } else {
        auto r = entry.expression->evaluateBoolean(ctx);
        outcome = !r ? 2 : *r ? 1 : 0;
      }
      if (k < std::size(outcomes)) outcomes[k] = outcome;
      if (outcome == 2) ++counts.errors;
      else if (outcome == 1) ++counts.true_results;
      else ++counts.false_results;
      counts.add(outcome);
    }
  }

  // One compiled expression per (expression text, context type), as ProfileStore caches them;
  // nullptr when it does not compile. The first node it applies to gives the type whose element
  // names compile() checks (the compiled form does not depend on it).
  const fp::Expression* compiledFor(const std::string& expression, const std::string& context_type,
                                    std::string_view type_name) {
    auto key = std::make_pair(expression, context_type);
    auto it = compiled_by_text_.find(key);
    if (it != compiled_by_text_.end()) {
      if (it->second) ++shared_;
      return it->second.get();
    }
    fp::CompileOptions options;
    options.root_type = std::string(type_name);
    auto e = fp::compile(expression, options);
    if (!e) {
      options.root_type.clear();  // fall back to an untyped context
      e = fp::compile(expression, options);
    }
    ++compiled_;
    std::unique_ptr<fp::Expression> owned;
    if (e) owned = std::make_unique<fp::Expression>(std::move(*e));
    else ++compile_failures_;
    const fp::Expression* raw = owned.get();
    compiled_by_text_.emplace(std::move(key), std::move(owned));
    return raw;
  }

  const std::map<std::string, std::vector<Invariant>>& invariants_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<fp::Expression>> compiled_by_text_;
  std::vector<std::unique_ptr<CompiledSet>> sets_;
  std::unordered_map<const fhir::TypeInfo*, std::unique_ptr<TypeTable>> tables_;
  std::unordered_map<const fhir::TypeInfo*, Slot> roots_;
  size_t compiled_ = 0, compile_failures_ = 0, shared_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const char* testdata = std::getenv("MEDICUS_TESTDATA");
  fs::path examples = argc > 1 ? fs::path(argv[1]) : fs::path(testdata ? testdata : MEDICUS_TESTDATA_DEFAULT) / "fhir-r4-examples" / "json";
  int iterations = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  const char* packages = std::getenv("MEDICUS_FHIR_PACKAGES");
  fs::path package_dir = fs::path(packages ? packages : MEDICUS_FHIR_PACKAGES_DEFAULT) / "hl7.fhir.r4.core#4.0.1" / "package";
  if (!fs::is_directory(examples) || !fs::is_directory(package_dir)) {
    std::fprintf(stderr, "fhirpath_bench: need %s and %s\n", examples.c_str(), package_dir.c_str());
    return 2;
  }
  size_t definitions = 0;
  auto invariants = loadInvariants(package_dir, definitions);
  size_t invariant_count = 0;
  for (const auto& [path, list] : invariants) invariant_count += list.size();

  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".json") continue;
    texts.push_back(readFile(entry.path()));
    bytes += texts.back().size();
  }
  std::sort(texts.begin(), texts.end());

  // Parse passes and invariant passes alternate, so that both see the same load on a shared machine;
  // each figure is the best of its passes. The first parse gives the documents the warm-up pass
  // (compiling every applicable expression once) runs on, and the reference counts.
  auto parseAll = [&](std::vector<std::unique_ptr<fhir::Document>>& out) {
    out.clear();
    out.reserve(texts.size());
    auto start = Clock::now();
    for (const auto& t : texts) out.push_back(fhir::parseJson(t).document);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  std::vector<std::unique_ptr<fhir::Document>> documents;
  double parse_seconds = parseAll(documents);
  size_t resources = static_cast<size_t>(std::count_if(documents.begin(), documents.end(), [](const auto& d) { return d != nullptr; }));

  InvariantRunner runner(invariants);
  Counts reference;
  auto compile_start = Clock::now();
  for (const auto& d : documents)
    if (d) runner.run(d->root(), reference);
  double first_pass_seconds = std::chrono::duration<double>(Clock::now() - compile_start).count();

  double eval_seconds = 1e9;
  for (int it = 0; it < iterations; ++it) {
    if (it > 0) parse_seconds = std::min(parse_seconds, parseAll(documents));
    Counts counts;
    auto start = Clock::now();
    for (const auto& d : documents)
      if (d) runner.run(d->root(), counts);
    eval_seconds = std::min(eval_seconds, std::chrono::duration<double>(Clock::now() - start).count());
    if (!(counts == reference)) {
      std::fprintf(stderr, "fhirpath_bench: results differ between passes (not deterministic)\n");
      return 1;
    }
  }

  std::printf("corpus: %zu files, %.1f MB, %zu resources parsed; %zu core definitions with %zu invariants on %zu paths\n",
              texts.size(), static_cast<double>(bytes) / 1e6, resources, definitions, invariant_count, invariants.size());
  std::printf("compiled: %zu expressions for (expression, type) pairs (%zu more (path, type) uses share one), %zu failed to compile; first pass incl. compile %.3f s\n",
              runner.compiled(), runner.shared(), runner.compileFailures(), first_pass_seconds);
  std::printf("evaluations per pass: %zu (true %zu, false %zu, error %zu; outcome digest %016llx)\n", reference.evaluations,
              reference.true_results, reference.false_results, reference.errors, static_cast<unsigned long long>(reference.digest));
  std::printf("parse (JSON -> tree):       %8.3f ms  (%.1f MB/s)\n", parse_seconds * 1e3, static_cast<double>(bytes) / 1e6 / parse_seconds);
  std::printf("invariants (all, compiled): %8.3f ms  (%.0f evaluations/s)\n", eval_seconds * 1e3,
              static_cast<double>(reference.evaluations) / eval_seconds);
  std::printf("ratio invariants/parse: %.2f (target < 1.00) -- best of %d iterations\n", eval_seconds / parse_seconds, iterations);
  return 0;
}
