#include "medicus/profiles/validator.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "profiles/attachment_checks.h"
#include "profiles/capability_statement_rules.h"
#include "profiles/element_definitions.h"
#include "profiles/invariant_guards.h"
#include "profiles/json_util.h"
#include "profiles/measure_rules.h"
#include "profiles/narrative_control.h"
#include "profiles/node_util.h"
#include "profiles/vital_signs.h"
#include "profiles/questionnaire_validator.h"
#include "profiles/search_parameter_rules.h"
#include "profiles/structure_definition_rules.h"

namespace medicus::profiles {
namespace {
using fhir::IssueType;
using fhir::Node;
using fhir::Severity;

constexpr std::string_view kCoreSdPrefix = "http://hl7.org/fhir/StructureDefinition/";

size_t codePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<double> toNumber(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string jsonText(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(str(v));
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsObject()) {
    std::string out = "{";
    for (const auto& m : v.GetObject()) {
      if (out.size() > 1) out += ", ";
      out += std::string(str(m.name)) + ": " + jsonText(m.value);
    }
    return out + "}";
  }
  if (v.IsArray()) {
    std::string out = "[";
    for (const auto& item : v.GetArray()) {
      if (out.size() > 1) out += ", ";
      out += jsonText(item);
    }
    return out + "]";
  }
  return "null";
}

// Does the instance node carry the fixed/pattern value? Pattern: every property of the pattern is
// present (arrays: each pattern item matches some instance repetition). Fixed: additionally nothing else.
bool matchesValue(const Node& node, const rapidjson::Value& expected, bool exact) {
  if (expected.IsString() || expected.IsBool() || expected.IsNumber()) {
    if (!node.hasValue()) return false;
    if (expected.IsBool()) return node.value() == (expected.GetBool() ? "true" : "false");
    if (expected.IsString()) {
      std::string_view want = str(expected);
      if (node.value() == want) return true;
      // Decimals compare by value when the text differs only in trailing zeros ("1.0" vs "1.00")
      // for patterns; fixed values must match exactly (R4 ElementDefinition.fixed[x]).
      if (!exact && node.type() && node.type()->name == "decimal") {
        auto a = toNumber(node.value()), b = toNumber(want);
        return a && b && *a == *b;
      }
      return false;
    }
    return false;
  }
  if (!expected.IsObject()) return false;
  size_t expected_children = 0;
  for (const auto& m : expected.GetObject()) {
    std::string_view name = str(m.name);
    if (name.starts_with("_")) continue;  // extensions on primitives in patterns: not compared
    auto matchesChild = [&](const rapidjson::Value& want, std::vector<const Node*>* used) {
      for (const Node* child : node.children()) {
        if (child->jsonName() != name) continue;
        if (used && std::find(used->begin(), used->end(), child) != used->end()) continue;
        if (matchesValue(*child, want, exact)) {
          if (used) used->push_back(child);
          return true;
        }
      }
      return false;
    };
    if (m.value.IsArray()) {
      std::vector<const Node*> used;
      for (const auto& item : m.value.GetArray()) {
        ++expected_children;
        if (!matchesChild(item, &used)) return false;
      }
    } else {
      ++expected_children;
      if (!matchesChild(m.value, nullptr)) return false;
    }
  }
  if (exact) {
    size_t actual = 0;
    for (const Node* child : node.children()) { (void)child; ++actual; }
    if (actual != expected_children) return false;
  }
  return true;
}

// The host of an absolute URL ("http://user@Host.Example.org:8080/x" -> "host.example.org", lower
// case); empty when there is none (urn:, relative references).
std::string urlHost(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return {};
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (size_t colon = rest.rfind(':'); colon != std::string_view::npos && rest.find(']', colon) == std::string_view::npos) {
    rest = rest.substr(0, colon);
  }
  std::string host(rest);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!host.empty() && host.back() == '.') host.pop_back();
  return host;
}

// Is the URL's host `domain` or one of its subdomains?
bool urlInDomain(std::string_view url, std::string_view domain) {
  std::string host = urlHost(url);
  return host == domain || (host.size() > domain.size() && host.ends_with(domain) &&
                            host[host.size() - domain.size() - 1] == '.');
}

}  // namespace

// One validation call: the document, the options, the Bundle index and the issue sink.
class ValidationRun {
 public:
  ValidationRun(const Validator& validator, const fhir::Document& document, const ValidationOptions& options,
                fhir::Issues& issues)
      : store_(validator.store()), tx_(validator.terminology()), doc_(document), options_(options), issues_(issues) {}

  void run() {
    const Node* root = doc_.root();
    if (!root) return;
    indexBundle(*root);
    validateResource(*root, &options_.profiles, 0);
  }

 private:
  // memberOf(), subsumes(), conformsTo(), elementDefinition(), slice() and resolve() for
  // invariants, answered by this run.
  class InvariantServicesImpl final : public InvariantServices {
   public:
    explicit InvariantServicesImpl(ValidationRun& run) : run_(run) {}
    tl::expected<bool, std::string> memberOf(const Node* node, std::string_view text,
                                             std::string_view value_set) const override {
      std::vector<std::pair<std::string_view, std::string_view>> codes;  // (system, code)
      if (!node) {
        codes.emplace_back(std::string_view(), text);
      } else if (node->isPrimitive()) {
        if (node->hasValue()) codes.emplace_back(std::string_view(), node->value());
      } else if (node->type()->name == "Coding") {
        codes.emplace_back(childValue(*node, "system"), childValue(*node, "code"));
      } else if (node->type()->name == "CodeableConcept") {
        for (const Node* c : node->children("coding")) codes.emplace_back(childValue(*c, "system"), childValue(*c, "code"));
      } else if (node->type()->isA("Quantity")) {
        codes.emplace_back(childValue(*node, "system"), childValue(*node, "code"));
      }
      std::string cannot;
      for (const auto& [system, code] : codes) {
        if (code.empty()) continue;
        CodeCheck check = run_.tx_.checkValueSet(value_set, system, code);
        if (check.status == CodeStatus::Valid) return true;
        if (check.status == CodeStatus::CannotCheck) cannot = check.detail;
      }
      if (!cannot.empty()) return tl::make_unexpected("memberOf('" + std::string(value_set) + "'): " + cannot);
      return false;
    }
    tl::expected<bool, std::string> conformsTo(const Node& resource, std::string_view url) const override {
      auto compiled = run_.profileOf(url);
      if (!compiled) return tl::make_unexpected(compiled.error());
      // The check nests inside the validation that evaluates the invariant: it continues at that
      // depth (max_depth bounds it). A (resource, profile) pair already being checked further out
      // (conformsTo() of the resource's own profile, resources linking each other) is assumed to
      // conform here; the outer check decides. Each pair is tried once per run (conformsOnce).
      const uint32_t depth = run_.current_depth_;
      if (depth >= run_.options_.max_depth) {
        return tl::make_unexpected("conformsTo('" + std::string(url) + "'): profiles nest too deeply");
      }
      return run_.conformsOnce(resource, **compiled, depth);
    }
    const Node* resolve(std::string_view reference) const override {
      const Node* local = run_.doc_.root() ? run_.resolveReference(*run_.doc_.root(), reference) : nullptr;
      return local ? local : run_.resolveExternal(reference);
    }
    // The CodeSystem hierarchy of the loaded packages (Terminology::subsumes).
    tl::expected<bool, std::string> subsumes(std::string_view system, std::string_view ancestor,
                                             std::string_view descendant) const override {
      auto r = run_.tx_.subsumes(system, ancestor, descendant);
      if (!r) return tl::make_unexpected("subsumes(): " + r.error());
      return *r;
    }
    // The core definition of the element (see element_definitions.h: not a profile's constrained
    // one). The nodes live as long as this object, i.e. the evaluation.
    tl::expected<const Node*, std::string> elementDefinition(const Node& element) const override {
      auto document = coreElementDefinition(run_.store_, element);
      if (!document) return tl::make_unexpected(document.error());
      if (!*document) return nullptr;
      definitions_.push_back(std::move(*document));
      return elementDefinitionNode(*definitions_.back());
    }
    // The validator's slice matching (discriminators, or conformance to the slice without any). The
    // name is a sliceName ("systolic") or an element id ("Observation.component:systolic"); a
    // sliceName used by several slices of the profile is narrowed to those on the element's name.
    tl::expected<bool, std::string> inSlice(const Node& element, std::string_view structure,
                                            std::string_view slice_name) const override {
      auto compiled = run_.profileOf(structure);
      if (!compiled) return tl::make_unexpected("slice(): " + compiled.error());
      const CompiledProfile& profile = **compiled;
      std::vector<uint32_t> candidates;
      if (slice_name.find(':') != std::string_view::npos) {
        uint32_t i = profile.findById(slice_name);
        if (i != kNoElement && profile.elements[i].slice_of != kNoElement) candidates.push_back(i);
      } else {
        for (uint32_t i = 0; i < profile.elements.size(); ++i) {
          const ElementDef& e = profile.elements[i];
          if (e.slice_of != kNoElement && e.slice_name == slice_name) candidates.push_back(i);
        }
        if (candidates.size() > 1) {
          std::vector<uint32_t> named;
          for (uint32_t i : candidates) if (profile.elements[i].name == element.name()) named.push_back(i);
          candidates = std::move(named);
        }
      }
      if (candidates.empty()) {
        return tl::make_unexpected("slice(): profile " + std::string(structure) + " has no slice '" +
                                   std::string(slice_name) + "'" + (element.element() ? " for " + std::string(element.name()) : ""));
      }
      if (candidates.size() > 1) {
        std::string ids;
        for (uint32_t i : candidates) ids += (ids.empty() ? "" : ", ") + profile.elements[i].id;
        return tl::make_unexpected("slice(): '" + std::string(slice_name) + "' names several slices of " +
                                   std::string(structure) + " (" + ids + "); give the element id");
      }
      const uint32_t depth = run_.current_depth_;
      if (depth >= run_.options_.max_depth) {
        return tl::make_unexpected("slice('" + std::string(structure) + "', '" + std::string(slice_name) +
                                   "'): profiles nest too deeply");
      }
      const ElementDef& slice = profile.elements[candidates[0]];
      bool ok = run_.matchesSlice(element, profile, candidates[0], profile.elements[slice.slice_of].slicing, depth);
      run_.current_depth_ = depth;
      return ok;
    }

   private:
    ValidationRun& run_;
    mutable std::vector<std::unique_ptr<fhir::Document>> definitions_;  // elementDefinition() results
  };

  // ---- issues ----
  // Cold: issues are the exception on the per-node paths, so the compiler moves the code that
  // builds their messages out of the hot functions (smaller hot code, fewer instruction cache misses).
  [[gnu::cold]] void report(Severity severity, IssueType type, const Node& node, std::string message, std::string rule_id,
              std::string_view suffix = {}) {
    fhir::Issue issue;
    issue.severity = severity;
    issue.type = type;
    issue.message = std::move(message);
    issue.expression = fhir::pathOf(node);
    if (!suffix.empty()) issue.expression.append(".").append(suffix);
    issue.position = doc_.positionOf(node);
    issue.rule_id = std::move(rule_id);
    issues_.push_back(std::move(issue));
  }
  size_t errorCount() const { return errorsSince(0); }
  size_t errorsSince(size_t first) const {
    size_t n = 0;
    for (size_t k = first; k < issues_.size(); ++k) {
      n += issues_[k].severity == Severity::Error || issues_[k].severity == Severity::Fatal;
    }
    return n;
  }

  // A check of conforms_to_active_ has ended. When it failed, every provisional verdict is taken
  // back: any of them may have assumed that this pair conforms.
  void endCheck(const std::pair<const Node*, const CompiledProfile*>& key, bool ok) {
    conforms_to_active_.erase(key);
    if (!ok) provisional_conforming_.clear();
  }

  // ---- Bundle and contained references ----
  void indexBundle(const Node& root) {
    if (root.type()->name != "Bundle") return;
    const bool history = childValue(root, "type") == "history";
    for (const Node* entry : root.children("entry")) {
      const Node* resource = entry->child("resource");
      if (!resource) continue;
      std::string_view full_url = childValue(*entry, "fullUrl");
      if (!full_url.empty()) {
        // bdl-7 natively (the FHIRPath form compares every pair): fullUrl + versionId unique.
        const Node* meta = resource->child("meta");
        std::string_view version = meta ? childValue(*meta, "versionId") : std::string_view();
        by_full_url_.emplace(full_url, resource);
        if (!history && !seen_versions_.emplace(std::string(full_url) + "|" + std::string(version)).second) {
          report(Severity::Error, IssueType::Invariant, *entry,
                 "constraint failed: bdl-7: FullUrl must be unique in a bundle, or else entries with the same fullUrl "
                 "must have different meta.versionId (except in history bundles); duplicate: " + std::string(full_url),
                 "Bundle:bdl-7");
        }
      }
      std::string_view id = childValue(*resource, "id");
      if (!id.empty()) {
        by_type_id_.emplace(std::string(resource->type()->name) + "/" + std::string(id), resource);
      }
    }
  }

  // ---- Bundle rules (http://hl7.org/fhir/R4/bundle.html#references) ----
  struct RestfulUrl {
    std::string_view base;  // "http://server/fhir/" (with the trailing slash)
    std::string_view type, id, version;
  };
  // [base][Type]/[id](/_history/[vid]) with an absolute http(s) base and a known resource type.
  static std::optional<RestfulUrl> parseRestful(std::string_view url) {
    if (!url.starts_with("http://") && !url.starts_with("https://")) return std::nullopt;
    RestfulUrl r;
    std::string_view rest = url;
    if (size_t h = rest.find("/_history/"); h != std::string_view::npos) {
      r.version = rest.substr(h + 10);
      rest = rest.substr(0, h);
    }
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return std::nullopt;
    size_t prev = rest.rfind('/', slash - 1);
    if (prev == std::string_view::npos) return std::nullopt;
    r.type = rest.substr(prev + 1, slash - prev - 1);
    r.id = rest.substr(slash + 1);
    r.base = url.substr(0, prev + 1);
    const fhir::TypeInfo* t = fhir::TypeModel::r4().find(r.type);
    if (!t || !t->isResource() || r.id.empty() || r.base.size() <= 8) return std::nullopt;
    return r;
  }
  static bool hasScheme(std::string_view url) {
    size_t colon = url.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    for (size_t i = 0; i < colon; ++i) {
      char ch = url[i];
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '+' && ch != '-' && ch != '.') return false;
    }
    return true;
  }

  // Entry-level rules of one Bundle: fullUrl absolute and agreeing with the resource's type and id;
  // in documents and messages every reference resolves inside the Bundle, exactly once, by the
  // fullUrl rules; in documents every entry is reachable from the Composition.
  void checkBundle(const Node& bundle) {
    struct Entry { const Node* entry; const Node* resource; std::string_view full_url; };
    std::vector<Entry> entries;
    std::unordered_multimap<std::string_view, size_t> by_url;
    for (const Node* entry : bundle.children("entry")) {
      const Node* resource = entry->child("resource");
      std::string_view full_url = childValue(*entry, "fullUrl");
      if (!full_url.empty()) {
        if (!hasScheme(full_url)) {
          report(Severity::Error, IssueType::Invalid, *entry, "the fullUrl must be an absolute URL (not '" +
                 std::string(full_url) + "')", "Bundle.entry.fullUrl:absolute");
        } else if (auto restful = parseRestful(full_url); restful && resource) {
          std::string_view id = childValue(*resource, "id");
          if (id.empty()) {
            report(Severity::Error, IssueType::Invalid, *entry, "the fullUrl '" + std::string(full_url) +
                   "' looks like a RESTful server URL, but the resource has no id", "Bundle.entry.fullUrl:id-missing");
          } else if (restful->type != resource->type()->name || restful->id != id) {
            report(Severity::Error, IssueType::Invalid, *entry, "the fullUrl '" + std::string(full_url) +
                   "' looks like a RESTful server URL, so it must end with the resource's type and id (/" +
                   std::string(resource->type()->name) + "/" + std::string(id) + ")", "Bundle.entry.fullUrl:id-match");
          }
        }
      }
      if (!resource) continue;
      if (full_url.empty()) {
        // Relative references resolve against the entry's fullUrl: without one they mean nothing.
        std::vector<const Node*> refs;
        collectReferences(*resource, refs);
        bool reported = false;
        for (const Node* ref : refs) {
          std::string_view target = childValue(*ref, "reference");
          if (target.empty() || target[0] == '#' || hasScheme(target) || target.find('/') == std::string_view::npos) continue;
          if (ref->enclosingResource() != resource) continue;  // inside a contained resource
          if (!reported) {
            report(Severity::Error, IssueType::Required, *entry, "the Bundle entry has no fullUrl, but its resource "
                   "has relative references", "Bundle.entry.fullUrl:missing");
            reported = true;
          }
          report(Severity::Error, IssueType::Invalid, *ref, "relative reference '" + std::string(target) +
                 "' inside a Bundle entry that has no fullUrl", "Bundle.reference:no-base");
        }
      }
      if (!full_url.empty()) by_url.emplace(full_url, entries.size());
      entries.push_back({entry, resource, full_url});
    }
    // The navigation links (http://hl7.org/fhir/R4/bundle.html#searchset, #history) occur at most once each.
    std::vector<std::string_view> seen_relations;
    for (const Node* link : bundle.children("link")) {
      std::string_view relation = childValue(*link, "relation");
      if (relation != "self" && relation != "first" && relation != "previous" && relation != "prev" &&
          relation != "next" && relation != "last") {
        continue;
      }
      if (std::find(seen_relations.begin(), seen_relations.end(), relation) != seen_relations.end()) {
        report(Severity::Error, IssueType::Invalid, *link, "the link relation '" + std::string(relation) +
               "' can only occur once", "Bundle.link:unique");
      } else {
        seen_relations.push_back(relation);
      }
    }
    std::string_view type = childValue(bundle, "type");
    if (type != "document" && type != "message") return;
    // References between entries, resolved by the fullUrl rules.
    std::vector<std::vector<size_t>> links(entries.size());
    std::vector<const Node*> references;
    for (size_t i = 0; i < entries.size(); ++i) {
      references.clear();
      collectReferences(*entries[i].resource, references);
      // The referring entry's fullUrl is a base for its relative references only when it is the
      // RESTful URL of that very resource (type and id agree).
      auto restful = parseRestful(entries[i].full_url);
      if (restful && (restful->type != entries[i].resource->type()->name ||
                      restful->id != childValue(*entries[i].resource, "id"))) {
        restful.reset();
      }
      for (const Node* ref : references) {
        std::string_view target = childValue(*ref, "reference");
        if (target.empty() || target.starts_with("#")) continue;
        std::string absolute;
        std::string_view version;
        if (!hasScheme(target)) {
          std::string_view relative = target;
          if (size_t h = relative.find("/_history/"); h != std::string_view::npos) {
            version = relative.substr(h + 10);
            relative = relative.substr(0, h);
          }
          // An exact fullUrl match (relative fullUrls are an error above, but resolve), else
          // [base of the referring entry's RESTful fullUrl] + Type/id.
          if (by_url.count(relative) == 0 && restful) absolute = std::string(restful->base) + std::string(relative);
          else absolute = std::string(relative);
        } else {
          absolute = std::string(target);
        }
        if (!hasScheme(target) && absolute.find('/') == std::string::npos) continue;  // not Type/id: other rules
        size_t matches = 0, match = 0;
        auto [from, to] = by_url.equal_range(absolute);
        for (auto it = from; it != to; ++it) {
          if (!version.empty()) {
            const Node* meta = entries[it->second].resource->child("meta");
            if (!meta || childValue(*meta, "versionId") != version) continue;
          }
          ++matches;
          match = it->second;
        }
        if (matches == 1) {
          links[i].push_back(match);
          links[match].push_back(i);
        } else if (matches > 1) {
          report(Severity::Error, IssueType::Invalid, *ref, "found " + std::to_string(matches) + " matches for '" +
                 std::string(target) + "' in the bundle", "Bundle.reference:ambiguous");
        } else if (!hasScheme(target) || !parseRestful(target) || by_url.count(std::string_view(absolute)) == 0) {
          // Absolute references to other servers are allowed; relative ones must resolve here.
          if (hasScheme(target) && !target.starts_with("urn:")) continue;
          report(Severity::Error, IssueType::NotFound, *ref, "can't find '" + std::string(target) + "' in the bundle" +
                 (restful || hasScheme(target) ? std::string() : std::string(" (relative references resolve only "
                  "against an entry whose fullUrl is a RESTful URL)")), "Bundle.reference:not-found");
        }
      }
    }
    if (type != "document" || entries.empty()) return;
    std::vector<bool> reached(entries.size(), false);
    std::vector<size_t> queue{0};
    reached[0] = true;
    while (!queue.empty()) {
      size_t i = queue.back();
      queue.pop_back();
      for (size_t j : links[i]) if (!reached[j]) { reached[j] = true; queue.push_back(j); }
    }
    for (size_t i = 1; i < entries.size(); ++i) {
      if (reached[i]) continue;
      report(Severity::Error, IssueType::Invalid, *entries[i].entry, "entry '" + std::string(entries[i].full_url) +
             "' isn't reachable by traversing links (forward or backward) from the Composition",
             "Bundle.entry:document-reachable");
    }
  }

  // Every Reference with a reference inside `node` (also inside contained resources).
  static void collectReferences(const Node& node, std::vector<const Node*>& out) {
    for (const Node* child : node.children()) {
      if (child->isPrimitive()) continue;
      if (child->type()->name == "Reference" && child->child("reference")) out.push_back(child);
      collectReferences(*child, out);
    }
  }

  // The resource a reference points at, when it is inside this document; nullptr otherwise.
  const Node* resolveReference(const Node& from, std::string_view reference) const {
    if (reference.starts_with("#")) {
      const Node* resource = from.enclosingResource();
      // Contained resources belong to the outermost non-contained resource.
      while (resource && resource->element() && resource->element()->name == "contained" && resource->parent()) {
        resource = resource->parent()->enclosingResource();
      }
      if (!resource) return nullptr;
      if (reference.size() == 1) return resource;
      const auto& contained = containedById(*resource);
      auto it = contained.find(reference.substr(1));
      return it != contained.end() ? it->second : nullptr;
    }
    if (auto it = by_full_url_.find(reference); it != by_full_url_.end()) return it->second;
    // Relative "Type/id" (optionally with _history) or an absolute URL ending in Type/id.
    std::string_view ref = reference;
    if (size_t h = ref.find("/_history/"); h != std::string_view::npos) ref = ref.substr(0, h);
    size_t last = ref.rfind('/');
    if (last == std::string_view::npos || last == 0) return nullptr;
    size_t prev = ref.rfind('/', last - 1);
    std::string key(ref.substr(prev == std::string_view::npos ? 0 : prev + 1));
    auto it = by_type_id_.find(key);
    return it == by_type_id_.end() ? nullptr : it->second;
  }

  // Profiles by canonical, remembered for the run (successes only): the store's lookup takes its
  // lock and resolves the canonical each time, and a document asks for the same few over and over
  // (extensions, type profiles, slices).
  tl::expected<const CompiledProfile*, std::string> profileOf(std::string_view url) {
    for (const auto& [key, profile] : profiles_seen_) {
      if (key.size() == url.size() && key == url) return profile;
    }
    auto compiled = store_.profile(url);
    if (compiled) profiles_seen_.emplace_back(std::string(url), *compiled);
    return compiled;
  }

  // The core definition of a type, remembered for the run (the store's lookup takes its lock and
  // hashes the name; a document uses a few dozen types).
  const CompiledProfile* typeDefinition(const fhir::TypeInfo* type) {
    for (const auto& [t, def] : type_definitions_) if (t == type) return def;
    const CompiledProfile* def = store_.typeDefinition(type->name);
    type_definitions_.emplace_back(type, def);
    return def;
  }

  // ---- resources ----
  void validateResource(const Node& resource, const std::vector<std::string>* extra_profiles, uint32_t depth) {
    if (depth > options_.max_depth) {
      report(Severity::Error, IssueType::TooCostly, resource, "resources nest too deeply", "validator.depth");
      return;
    }
    const CompiledProfile* base = typeDefinition(resource.type());
    if (!base) {
      report(Severity::Error, IssueType::NotSupported, resource,
             "no definition for resource type " + std::string(resource.type()->name) + " is loaded", "validator.no-base");
      return;
    }
    const size_t base_start = issues_.size();
    checkResourceId(resource);
    if (resource.type()->name == "Bundle") checkBundle(resource);
    if (options_.no_experimental_content && childValue(resource, "experimental") == "true") {
      report(Severity::Error, IssueType::BusinessRule, resource, "experimental content is not allowed here",
             "Resource.experimental:not-allowed");
    }
    if (resource.type()->name == "SearchParameter" && childValue(resource, "type") == "composite") {
      // A composite search parameter combines two or more components (http://hl7.org/fhir/R4/searchparameter.html).
      size_t components = 0;
      for (const Node* c : resource.children("component")) { (void)c; ++components; }
      if (components < 2) {
        report(Severity::Error, IssueType::BusinessRule, resource, "a SearchParameter of type 'composite' must "
               "define two or more components", "SearchParameter.component:composite");
      }
    }
    if (resource.type()->name == "SearchParameter") checkSearchParameter(resource, store_.registry(), doc_, issues_);
    if (resource.type()->name == "CapabilityStatement") checkCapabilityStatement(resource, store_.registry(), doc_, issues_);
    if (resource.type()->name == "StructureDefinition") checkStructureDefinition(resource, store_, doc_, issues_);
    validateElement(resource, *base, 0, true, depth);
    checkQuestionnaireRules(resource, {store_, tx_, doc_, options_, issues_});
    checkMeasureReport(resource, store_.registry(), doc_, issues_);
    std::vector<std::string> profiles;
    if (options_.use_meta_profiles) {
      if (const Node* meta = resource.child("meta")) {
        for (const Node* p : meta->children("profile")) {
          if (!p->hasValue()) continue;
          auto compiled = profileOf(p->value());
          if (!compiled) {
            report(Severity::Warning, IssueType::NotFound, *p,
                   "meta.profile " + std::string(p->value()) + " cannot be resolved, so the resource was not "
                   "checked against it: " + compiled.error(), "validator.meta-profile-unknown");
            continue;
          }
          profiles.emplace_back(p->value());
        }
      }
    }
    if (options_.use_global_profiles) {
      for (const auto& g : store_.globalProfiles()) {
        if (g.type != resource.type()->name) continue;
        if (auto compiled = profileOf(g.profile); !compiled) {
          report(Severity::Warning, IssueType::NotFound, resource, "global profile " + g.profile + " of the "
                 "implementation guide " + g.guide + " is not loaded, so the resource was not checked against it: " +
                 compiled.error(), "validator.global-profile-unknown");
          continue;
        }
        report(Severity::Information, IssueType::Informational, resource, "checked against " + g.profile + ", a global "
               "profile of the implementation guide " + g.guide, "validator.global-profile");
        profiles.push_back(g.profile);
      }
    }
    if (options_.vital_signs_profiles && resource.type()->name == "Observation") {
      VitalSign vs;
      if (vitalSignOf(resource, vs)) {
        std::string url(vs.profile);
        if (profileOf(url)) {
          report(Severity::Information, IssueType::Informational, resource,
                 "checked against the " + std::string(vs.name) + " profile (" + url + "): the FHIR specification "
                 "requires it of vital signs, and the " + std::string(vs.system) + " code " + std::string(vs.code) +
                 " makes this Observation one", "validator.vital-signs");
          profiles.push_back(std::move(url));
        }
      }
    }
    if (extra_profiles) {
      for (const auto& url : *extra_profiles) {
        auto compiled = profileOf(url);
        if (!compiled) {
          report(Severity::Error, IssueType::NotFound, resource,
                 "profile " + url + " cannot be used: " + compiled.error(), "validator.profile-unknown");
          continue;
        }
        profiles.push_back(url);
      }
    }
    std::unordered_set<const CompiledProfile*> done{base};
    // A profile repeats the base definition's rules: an issue the base pass reported already is not
    // reported again by the profile pass (same location and message).
    const size_t base_end = issues_.size();
    std::unordered_set<std::string> base_issues;
    if (!profiles.empty() && base_end > base_start) {  // (no base issues: nothing to repeat, no walk)
      // Only the resource's own issues: nested resources (entries, contained) meet profiles of their own.
      // Nested ones are told by their paths: the issue's path is a nested resource's path or continues
      // it after a whole segment (ExampleScenario.instance.resourceType is the resource's own).
      std::unordered_set<std::string> nested;
      collectNestedResourcePaths(resource, nested);
      for (size_t i = base_start; i < base_end; ++i) {
        const std::string& e = issues_[i].expression;
        if (!nested.empty() && inNestedResource(e, nested)) continue;
        base_issues.insert(e + "|" + issues_[i].message);
      }
    }
    for (const auto& url : profiles) {
      auto compiled = profileOf(url);
      if (!compiled || !done.insert(*compiled).second) continue;
      const CompiledProfile& p = **compiled;
      if (p.type_info && !resource.type()->isA(p.type_info)) {
        report(Severity::Error, IssueType::Structure, resource,
               "the resource is a " + std::string(resource.type()->name) + " but profile " + url + " constrains " + p.type,
               "validator.profile-type");
        continue;
      }
      const size_t pass_start = issues_.size();
      // A target that refers back to this resource under the same profile is not checked again.
      const bool marked = conforms_to_active_.insert({&resource, &p}).second;
      validateElement(resource, p, 0, false, depth);
      if (marked) endCheck({&resource, &p}, errorsSince(pass_start) == 0);
      if (base_issues.empty()) continue;
      size_t out = pass_start;
      for (size_t i = pass_start; i < issues_.size(); ++i) {
        if (base_issues.count(issues_[i].expression + "|" + issues_[i].message)) continue;
        if (out != i) issues_[out] = std::move(issues_[i]);
        ++out;
      }
      issues_.resize(out);
    }
  }

  // The options' entry_profiles that constrain `resource`'s type when it is an entry of the root Bundle
  // (collected into `out`), else nullptr. Unknown ones are kept: validateResource reports them.
  const std::vector<std::string>* entryProfilesFor(const Node& resource, std::vector<std::string>& out) const {
    if (options_.entry_profiles.empty()) return nullptr;
    const Node* entry = resource.parent();
    if (resource.name() != "resource" || !entry || entry->name() != "entry" || entry->parent() != doc_.root() ||
        doc_.root()->type()->name != "Bundle") {
      return nullptr;
    }
    for (const auto& url : options_.entry_profiles) {
      auto compiled = store_.profile(url);
      if (!compiled || !(*compiled)->type_info || resource.type()->isA((*compiled)->type_info)) out.push_back(url);
    }
    return out.empty() ? nullptr : &out;
  }

  // Resource.id is an id: [A-Za-z0-9\-\.]{1,64} (http://hl7.org/fhir/R4/datatypes.html#id).
  void checkResourceId(const Node& resource) {
    const Node* id = resource.child("id");
    if (!id || !id->hasValue()) return;
    std::string_view v = id->value();
    bool chars_ok = std::all_of(v.begin(), v.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.';
    });
    if (!chars_ok) {
      report(Severity::Error, IssueType::Invalid, *id, "invalid resource id '" + std::string(v) +
             "': only letters, digits, '-' and '.' are allowed", "Resource.id:format");
    } else if (v.size() > 64) {
      report(Severity::Error, IssueType::Invalid, *id, "invalid resource id: too long (" + std::to_string(v.size()) +
             " characters, at most 64)", "Resource.id:format");
    }
  }

  // Paths of the resources nested in `node` (contained, Bundle.entry.resource, Parameters.parameter.resource, ...)
  // not inside another nested one.
  static void collectNestedResourcePaths(const Node& node, std::unordered_set<std::string>& out) {
    for (const Node* child : node.children()) {
      if (child->isResource()) {
        out.insert(fhir::pathOf(*child));
      } else if (child->hasChildren()) {
        collectNestedResourcePaths(*child, out);
      }
    }
  }
  // Is `path` one of `nested` or below one (the next character ends a path segment)?
  static bool inNestedResource(std::string_view path, const std::unordered_set<std::string>& nested) {
    for (size_t end = 0; end <= path.size(); ++end) {
      if (end < path.size() && path[end] != '.' && path[end] != '[') continue;
      if (nested.count(std::string(path.substr(0, end)))) return true;
    }
    return false;
  }

  // ---- elements ----
  // Validates `node` against element `index` of `profile`, then its children. `base_pass` is the
  // walk along the core definitions: it reaches every element, descends into data types and checks
  // the core invariants; profile passes check only what the profile's snapshot lists.
  void validateElement(const Node& node, const CompiledProfile& profile, uint32_t index, bool base_pass, uint32_t depth) {
    if (depth > options_.max_depth) return;
    current_depth_ = depth;
    const ElementDef& def = profile.elements[index];
    checkValue(node, profile, def, base_pass);
    if (base_pass && index != 0 && node.type() == extension_type_) checkExtension(node, depth);
    if (base_pass && index != 0 && options_.check_invariants) checkEmptyPrimitive(node, def);
    if (base_pass && index == 0 && node.type() == attachment_type_) checkAttachment(node, doc_, issues_);

    const ElementDef* container = &def;
    if (container->children.empty() && !def.content_reference.empty() && def.content_reference.starts_with("#")) {
      std::string_view target = std::string_view(def.content_reference).substr(1);
      for (const auto& e : profile.elements) {
        if (e.id == target) { container = &e; break; }
      }
    }
    if (!container->children.empty()) {
      validateChildren(node, profile, *container, base_pass, depth);
    } else if (!node.isPrimitive() || node.hasChildren()) {
      // The snapshot stops here: continue with the type's own definition (base pass) and the type
      // profiles the element names (every pass).
      if (base_pass && index != 0 && node.type()->kind != fhir::TypeKind::Backbone) {
        if (const CompiledProfile* type_def = typeDefinition(node.type())) {
          validateElement(node, *type_def, 0, true, depth + 1);
        }
      }
    }
    if (index != 0 && def.has_type_profiles) validateTypeProfiles(node, def, depth);
  }

  void validateTypeProfiles(const Node& node, const ElementDef& def, uint32_t depth) {
    for (const TypeRef& t : def.types) {
      if (t.profiles.empty() || !(t.code == node.type()->name || (t.info && node.type()->isA(t.info)))) continue;
      if (node.type() == extension_type_) continue;  // extensions are resolved by their url
      // Several profiles are alternatives: the element must conform to one of them.
      std::vector<std::pair<const CompiledProfile*, uint32_t>> candidates;
      std::string wrong_type;
      for (size_t i = 0; i < t.profiles.size(); ++i) {
        const std::string& url = t.profiles[i];
        auto compiled = profileOf(url);
        if (!compiled) {
          // The profile requires conformance to it: not being able to check that is an error.
          report(Severity::Error, IssueType::NotFound, node, "type profile " + url + " is not loaded: " + compiled.error(),
                 def.id + ":type-profile");
          continue;
        }
        if (node.isResource() && (*compiled)->type_info && !node.type()->isA((*compiled)->type_info)) {
          wrong_type += (wrong_type.empty() ? "" : ", ") + (*compiled)->type;
          continue;
        }
        candidates.emplace_back(*compiled, profileElement(**compiled, t, i));
      }
      if (candidates.empty()) {
        if (!wrong_type.empty()) {
          report(Severity::Error, IssueType::Structure, node, "the type '" + std::string(node.type()->name) +
                 "' is not valid here: it must be " + wrong_type, def.id + ":type-profile-type");
        }
        continue;
      }
      if (candidates.size() > 1) {
        const std::pair<const CompiledProfile*, uint32_t>* fit = nullptr;
        for (const auto& c : candidates) {
          if (conforms(node, *c.first, c.second, depth)) { fit = &c; break; }
        }
        if (fit) {
          validateElement(node, *fit->first, fit->second, false, depth + 1);
          continue;
        }
        std::string urls;
        for (const auto& c : candidates) urls += (urls.empty() ? "" : ", ") + c.first->url;
        report(Severity::Error, IssueType::Structure, node, "the element does not conform to any of the profiles " +
               urls + " (one is required); the issues against each follow", def.id + ":type-profile-choice");
        // The issues against every candidate, each distinct one once.
        size_t first = issues_.size();
        for (const auto& c : candidates) validateElement(node, *c.first, c.second, false, depth + 1);
        std::unordered_set<std::string> seen;
        size_t out = first;
        for (size_t i = first; i < issues_.size(); ++i) {
          if (!seen.insert(issues_[i].expression + "|" + issues_[i].message).second) continue;
          if (out != i) issues_[out] = std::move(issues_[i]);
          ++out;
        }
        issues_.resize(out);
        continue;
      }
      validateElement(node, *candidates.back().first, candidates.back().second, false, depth + 1);
    }
  }

  // The element a type profile points at: its root, or the one named by the profile-element extension.
  static uint32_t profileElement(const CompiledProfile& profile, const TypeRef& t, size_t i) {
    if (i >= t.profile_elements.size() || t.profile_elements[i].empty()) return 0;
    uint32_t index = profile.findById(t.profile_elements[i]);
    return index == kNoElement ? 0 : index;
  }

  void validateChildren(const Node& node, const CompiledProfile& profile, const ElementDef& def, bool base_pass,
                        uint32_t depth) {
    // The node's children come in runs of one element, in definition order, and so do the
    // definition's children: one merge walk pairs them. When it leaves a run unpaired (another
    // order, a name the definition lacks) every definition collects its children by name instead.
    // (Trivially constructible: the array below is not zeroed on every call.)
    struct Run { const fhir::ElementInfo* element; const Node* first; uint32_t count; uint64_t key; };
    constexpr size_t kMaxRuns = 64;
    Run runs[kMaxRuns];
    size_t run_count = 0;
    bool merge = def.unique_child_names;
    for (const Node* n = node.firstChild(); n && merge; n = n->nextSibling()) {
      if (run_count > 0 && runs[run_count - 1].element == n->element()) {
        ++runs[run_count - 1].count;
      } else if (run_count == kMaxRuns) {
        merge = false;
      } else {
        runs[run_count++] = {n->element(), n, 1, nameKey(n->element()->name)};
      }
    }
    uint32_t run_slot[kMaxRuns];  // the slot each run pairs with
    if (merge) {
      size_t cursor = 0;
      for (uint32_t i = 0; i < def.child_slots.size() && cursor < run_count; ++i) {
        const ChildSlot& slot = def.child_slots[i];
        if (runs[cursor].key == slot.name_key &&
            (runs[cursor].element->name.size() <= 7 || runs[cursor].element->name == profile.elements[slot.index].name)) {
          run_slot[cursor++] = i;
        }
      }
      merge = cursor == run_count;
    }
    size_t cursor = 0;
    // The matching children: a run copied to the stack (no allocation per node), else the vector.
    constexpr size_t kInline = 16;
    const Node* inline_matches[kInline];
    std::vector<const Node*> matches;
    for (uint32_t slot_index = 0; slot_index < def.child_slots.size(); ++slot_index) {
      const ChildSlot& slot = def.child_slots[slot_index];
      const uint32_t c = slot.index;
      const Node* const* items = nullptr;
      size_t count = 0;
      if (!merge) {
        matches.clear();
        for (const Node* n : node.children()) {
          if (n->name() == profile.elements[slot.index].name) matches.push_back(n);
        }
        items = matches.data();
        count = matches.size();
      } else if (cursor < run_count && run_slot[cursor] == slot_index) {
        count = runs[cursor].count;
        const Node* n = runs[cursor].first;
        if (count <= kInline) {
          for (size_t k = 0; k < count; ++k, n = n->nextSibling()) inline_matches[k] = n;
          items = inline_matches;
        } else {
          matches.clear();
          for (size_t k = 0; k < count; ++k, n = n->nextSibling()) matches.push_back(n);
          items = matches.data();
        }
        ++cursor;
      }
      if (count == 0 && !slot.check_absent) continue;  // nothing to check: ElementDef untouched
      const ElementDef& child = profile.elements[c];
      if (count < slot.min || (slot.max != UINT32_MAX && count > slot.max)) {
        checkCardinality(node, child, count, child.name);
      }
      if (count == 0) {
        // No items at all: the slices' minimum cardinalities still apply.
        for (uint32_t s : child.slices) {
          if (profile.elements[s].min > 0) checkCardinality(node, profile.elements[s], 0, child.name);
        }
        continue;
      }
      // (ElementDefinition ids repeat between snapshot and differential by design.)
      if (base_pass && child.name == "id" && !node.isResource() && items[0]->hasValue() &&
          node.type()->name != "ElementDefinition") {
        checkElementIdUnique(*items[0]);
      }
      if (child.has_slicing && !child.slices.empty()) {
        if (items == inline_matches) {
          matches.assign(items, items + count);
          items = matches.data();
        }
        assignSlices(node, profile, child, matches, depth);
      }
      for (size_t k = 0; k < count; ++k) {
        const Node* n = items[k];
        if (!base_pass) checkType(*n, child);
        if (n->isResource() && n != doc_.root()) {
          if (base_pass && (options_.validate_contained || child.name != "contained")) {
            std::vector<std::string> entry_profiles;
            validateResource(*n, entryProfilesFor(*n, entry_profiles), depth + 1);
          } else if (!base_pass && child.has_type_profiles) {
            validateTypeProfiles(*n, child, depth);  // profiles on Bundle.entry.resource, contained, ...
          }
          continue;
        }
        validateElement(*n, profile, c, base_pass, depth + 1);
      }
    }
  }

  // Element ids (Element.id) are unique within their resource.
  void checkElementIdUnique(const Node& id) {
    const Node* resource = id.enclosingResource();
    std::string key = std::to_string(reinterpret_cast<uintptr_t>(resource)) + "|" + std::string(id.value());
    if (!element_ids_.insert(std::move(key)).second) {
      report(Severity::Error, IssueType::Invalid, id, "duplicate element id '" + std::string(id.value()) +
             "' in this resource", "Element.id:unique");
    }
  }

  void checkCardinality(const Node& parent, const ElementDef& def, size_t count, std::string_view name) {
    // Inside a slice the element is named by its id (Parameters.parameter:param1.extension): the
    // slice's rule and the sliced element's rule are two issues.
    const std::string& label = def.slice_name.empty() && def.id.find(':') == std::string::npos ? def.path : def.id;
    if (count < def.min) {
      report(Severity::Error, IssueType::Required, parent,
             std::string(def.slice_name.empty() ? "element '" : "slice '") + label +
                 "': minimum required = " + std::to_string(def.min) + ", but only found " + std::to_string(count),
             def.id + ":min", def.slice_name.empty() ? name : std::string_view());
    }
    if (def.max != UINT32_MAX && count > def.max) {
      report(Severity::Error, IssueType::Structure, parent,
             std::string(def.slice_name.empty() ? "element '" : "slice '") + label +
                 "': maximum allowed = " + std::to_string(def.max) + ", but found " + std::to_string(count),
             def.id + ":max", def.slice_name.empty() ? name : std::string_view());
    }
  }

  void checkType(const Node& node, const ElementDef& def) {
    if (def.types.empty()) return;
    bool ok = false;
    for (const TypeRef& t : def.types) {
      if (t.info == node.type() || t.code == node.type()->name || (t.info && node.type()->isA(t.info)) || !t.info) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      std::string allowed;
      for (const TypeRef& t : def.types) allowed += (allowed.empty() ? "" : ", ") + t.code;
      report(Severity::Error, IssueType::Structure, node,
             "type " + std::string(node.type()->name) + " is not allowed here (allowed: " + allowed + ")", def.id + ":type");
    }
  }

  // A primitive without a value, on an element that wants one (R5 mustHaveValue) or names the
  // extensions that may stand in for it (valueAlternatives, e.g. data-absent-reason).
  void checkValueAlternatives(const Node& node, const ElementDef& def) {
    if (def.must_have_value) {
      report(Severity::Error, IssueType::Invalid, node, "the element has no value, but the profile requires one "
             "(mustHaveValue)", def.id + ":must-have-value");
      return;
    }
    for (const Node* e : node.children("extension")) {
      std::string_view url = childValue(*e, "url");
      for (const auto& a : def.value_alternatives) if (url == a) return;
    }
    std::string names;
    for (const auto& a : def.value_alternatives) names += (names.empty() ? "" : ", ") + a;
    report(Severity::Error, IssueType::Invalid, node, "the element has no value, and none of the extensions the "
           "profile allows in its place is present (valueAlternatives: " + names + ")", def.id + ":value-alternatives");
  }

  // ---- value rules of one element ----
  void checkValue(const Node& node, const CompiledProfile& profile, const ElementDef& def, bool base_pass) {
    if (def.has_value_presence_rules && node.isPrimitive() && !node.hasValue()) {
      checkValueAlternatives(node, def);
    }
    if (def.has_value_rules) checkValueRules(node, profile, def);
    if (def.has_binding && options_.check_bindings) {
      checkBinding(node, def);
      if (!def.binding.additional.empty()) checkAdditionalBindings(node, def);
    }
    if (def.has_narrative_controls &&
        node.type()->name == "Narrative") {
      if (const Node* div = node.child("div"); div && div->hasValue()) {
        for (auto& f : checkNarrativeControls(div->value(), def.narrative_language_control, def.narrative_source_control,
                                              profile.url)) {
          report(f.severity, IssueType::BusinessRule, node, std::move(f.message), def.id + ":" + f.rule_id);
        }
      }
    }
    if (!def.types.empty() && node.type() == reference_type_) {
      checkReferenceTarget(node, def);
      checkAggregation(node, def);
    }
    if (base_pass && !options_.allow_example_urls && node.isPrimitive() && node.hasValue()) checkExampleUrl(node);
    if (base_pass && node.isPrimitive() && node.hasValue() && node.type() == canonical_type_) checkCanonical(node);
    if (base_pass && node.isPrimitive() && node.hasValue() &&
        node.type()->primitive_kind == fhir::PrimitiveKind::Xhtml) {
      checkXhtmlElements(node);
    }
    if (base_pass && (options_.security_checks || options_.no_html_in_markdown) && node.isPrimitive() &&
        node.hasValue() && node.type()->primitive_kind != fhir::PrimitiveKind::Xhtml) {
      const bool markdown = node.type()->name == "markdown";
      if (((markdown && options_.no_html_in_markdown) || (options_.security_checks && node.type()->name == "string")) &&
          looksLikeHtml(node.value())) {
        report(Severity::Error, IssueType::Security, node, markdown
               ? "the markdown contains content that looks like an embedded HTML tag, which is not allowed here"
               : "the string contains text that looks like embedded HTML tags, which are not allowed for security reasons",
               markdown ? "markdown.no-html" : "string.no-html");
      }
    }
    // Rules of a data type run once per node: at its element, not again at its type's root.
    const bool type_root = &def == &profile.root() && !node.isResource();
    if (base_pass && !type_root && options_.check_codes && node.type() == coding_type_) checkCoding(node, def);
    if (base_pass && !type_root && node.type() == reference_type_) {
      // A local reference names a contained resource of the container (http://hl7.org/fhir/R4/references.html#contained).
      std::string_view target = childValue(node, "reference");
      if (target.size() > 1 && target[0] == '#' && !resolveReference(node, target)) {
        report(Severity::Error, IssueType::NotFound, node, "unable to resolve the local reference '" +
               std::string(target) + "': there is no contained resource with that id", "Reference:local-unresolved");
      } else if (!target.empty() && target[0] != '#' && !hasScheme(target) && target.find('/') == std::string_view::npos) {
        report(Severity::Error, IssueType::Invalid, node, "relative references must have the form [Type]/[id] "
               "(found '" + std::string(target) + "')", "Reference:relative-format");
      }
    }
    if (base_pass && !type_root && node.type() == identifier_type_) {
      std::string_view system = childValue(node, "system");
      if (!system.empty() && !hasScheme(system)) {
        report(Severity::Error, IssueType::Value, *node.child("system"), "Identifier.system must be an absolute "
               "reference, not a local reference ('" + std::string(system) + "')", "Identifier.system:absolute");
      }
    }
    if (options_.check_invariants && !def.constraints.empty()) checkInvariants(node, profile, def, base_pass);
  }

  // fixed[x], pattern[x], maxLength, minLength, minValue, maxValue.
  void checkValueRules(const Node& node, const CompiledProfile& profile, const ElementDef& def) {
    if (def.fixed && !matchesValue(node, *def.fixed, true)) reportFixedMismatch(node, profile, def);
    if (def.pattern && !matchesValue(node, *def.pattern, false)) {
      report(Severity::Error, IssueType::Value, node, "value must match the pattern " + jsonText(*def.pattern) +
             " (profile " + profile.url + ")", def.id + ":pattern");
    }
    if (node.isPrimitive() && node.hasValue()) {
      if (def.max_length >= 0 && codePoints(node.value()) > static_cast<size_t>(def.max_length)) {
        report(Severity::Error, IssueType::TooLong, node, "value is longer than the maximum length " +
               std::to_string(def.max_length), def.id + ":maxLength");
      }
      if (def.min_length >= 0 && codePoints(node.value()) < static_cast<size_t>(def.min_length)) {
        report(Severity::Error, IssueType::Value, node, "value '" + std::string(node.value()) + "' is shorter than "
               "the minimum length " + std::to_string(def.min_length), def.id + ":minLength");
      }
      if (def.min_value || def.max_value) checkRange(node, node.value(), def);
    } else if ((def.min_value || def.max_value) && node.type()->isA("Quantity")) {
      std::string_view v = childValue(node, "value");
      if (!v.empty()) checkRange(node, v, def);
    }
  }

  // A reference the document does not hold, asked of ValidationOptions::reference_resolver.
  const Node* resolveExternal(std::string_view reference) const {
    if (!options_.reference_resolver || reference.empty() || reference.starts_with("#")) return nullptr;
    return options_.reference_resolver->resolve(reference);
  }

  // The type a reference points at (the resolved resource, else the Type in its URL) must be one of
  // the element's target profiles' types; a resolved target (contained, in the Bundle, or from the
  // resolver) must also conform to one of those profiles (checkTargetProfiles).
  void checkReferenceTarget(const Node& node, const ElementDef& def) {
    std::string_view target = childValue(node, "reference");
    if (target.empty() || target.starts_with("#")) {
      if (target.size() > 1) {
        if (const Node* contained = resolveReference(node, target)) checkTargetProfiles(node, def, *contained);
      }
      return;
    }
    const Node* resolved = resolveReference(node, target);
    if (!resolved && !target.starts_with("urn:")) resolved = resolveExternal(target);
    if (resolved) checkTargetProfiles(node, def, *resolved);
    if (target.starts_with("urn:")) return;
    std::string_view type;
    if (resolved) {
      type = resolved->type()->name;
    } else if (!options_.assume_valid_rest_references) {
      return;  // not resolvable here, and not assumed to exist as its URL says
    } else if (hasScheme(target)) {
      auto restful = parseRestful(target);
      if (!restful) return;
      type = restful->type;
    } else {
      std::string_view relative = target.substr(0, target.find("/_history/"));
      size_t slash = relative.find('/');
      if (slash == std::string_view::npos || relative.find('/', slash + 1) != std::string_view::npos) return;
      type = relative.substr(0, slash);
    }
    const fhir::TypeInfo* info = fhir::TypeModel::r4().find(type);
    if (!info || !info->isResource()) return;
    std::string allowed;
    for (const TypeRef& t : def.types) {
      if (t.code != "Reference") continue;
      if (t.target_profiles.empty()) return;  // any resource
      for (const auto& url : t.target_profiles) {
        auto compiled = profileOf(url);
        if (!compiled) return;  // cannot tell
        if (!(*compiled)->type_info || info->isA((*compiled)->type_info)) return;
        allowed += (allowed.empty() ? "" : ", ") + (*compiled)->type;
      }
    }
    if (allowed.empty()) return;
    report(Severity::Error, IssueType::Structure, node, "the reference " + std::string(target) + " points at a " +
           std::string(type) + ", which is not a valid target here (must be one of " + allowed + ")",
           def.id + ":targetType");
  }

  // Does `node` conform to `profile` (a trial from its root)? For Reference.targetProfile, profile
  // discriminators and conformsTo(). A (node, profile) pair already under check further out is
  // taken to conform: resources that link each other (Patient.link) decide at the outermost check.
  // Each pair is tried once per run: a failure is final (found even with the optimistic
  // assumptions); a success that rested on an assumption is provisional until a check fails
  // (endCheck). Trying such pairs again instead made a Bundle of n Observations whose hasMember
  // name each other cost n! trials (and slicing hasMember by resolve() profile recursed down to
  // max_depth). `issues`: on failure, the trial's issues.
  bool conformsOnce(const Node& node, const CompiledProfile& profile, uint32_t depth,
                    const fhir::Issues** issues = nullptr) {
    const std::pair<const Node*, const CompiledProfile*> key(&node, &profile);
    if (conforms_to_active_.count(key) || provisional_conforming_.count(key)) {
      ++assumed_conforming_;
      return true;
    }
    if (auto it = target_verdicts_.find(key); it != target_verdicts_.end()) {
      if (issues) *issues = &it->second.second;
      return it->second.first;
    }
    const uint32_t saved_depth = current_depth_;
    conforms_to_active_.insert(key);
    const uint64_t assumed_before = assumed_conforming_;
    fhir::Issues found;
    const bool ok = conforms(node, profile, 0, depth, &found);
    endCheck(key, ok);
    current_depth_ = saved_depth;
    if (ok && assumed_conforming_ != assumed_before) {
      provisional_conforming_.insert(key);
      return true;
    }
    auto it = target_verdicts_.emplace(key, std::make_pair(ok, ok ? fhir::Issues() : std::move(found))).first;
    if (issues) *issues = &it->second.second;
    return ok;
  }

  // Reference.targetProfile on a resolved target: the target conforms to one of the profiles that
  // constrain its type (core type definitions only say the type, checked by checkReferenceTarget).
  // Many references name one target (every Observation.subject the same Patient): conformsOnce.
  void checkTargetProfiles(const Node& node, const ElementDef& def, const Node& target) {
    std::vector<const CompiledProfile*> candidates;
    for (const TypeRef& t : def.types) {
      if (t.code != "Reference") continue;
      for (const auto& url : t.target_profiles) {
        auto compiled = profileOf(url);
        if (!compiled) return;  // cannot tell
        const CompiledProfile& p = **compiled;
        if (p.type_info && !target.type()->isA(p.type_info)) continue;  // another type: checkReferenceTarget's
        if (p.derivation != "constraint") return;  // the type itself is allowed
        candidates.push_back(&p);
      }
    }
    if (candidates.empty()) return;
    const uint32_t depth = current_depth_;
    if (depth >= options_.max_depth) return;
    std::vector<const fhir::Issues*> failures;
    for (const CompiledProfile* p : candidates) {
      const fhir::Issues* found = nullptr;
      if (conformsOnce(target, *p, depth, &found)) return;
      failures.push_back(found);
    }
    std::string urls;
    for (const CompiledProfile* p : candidates) urls += (urls.empty() ? "" : ", ") + p->url;
    const std::string reference(childValue(node, "reference"));
    report(Severity::Error, IssueType::Structure, node, "the target of " + reference + " conforms to none of the "
           "profiles it must meet (" + urls + ")", def.id + ":targetProfile");
    for (size_t i = 0; i < candidates.size(); ++i) {
      for (const auto& issue : *failures[i]) {
        if (issue.severity != Severity::Error && issue.severity != Severity::Fatal) continue;
        report(Severity::Information, IssueType::Informational, node, "against " + candidates[i]->url + ": " +
               issue.expression + ": " + issue.message, def.id + ":targetProfile-detail");
        break;  // the first reason per profile
      }
    }
  }

  // ElementDefinition.type.aggregation: how the referenced resource may be held (contained in the
  // resource, bundled in the same Bundle, or referenced elsewhere).
  void checkAggregation(const Node& node, const ElementDef& def) {
    const TypeRef* ref = nullptr;
    for (const TypeRef& t : def.types) if (t.code == "Reference" && !t.aggregation.empty()) ref = &t;
    if (!ref) return;
    std::string_view target = childValue(node, "reference");
    if (target.empty()) return;
    auto allows = [&](std::string_view mode) {
      return std::find(ref->aggregation.begin(), ref->aggregation.end(), mode) != ref->aggregation.end();
    };
    std::string modes;
    for (const auto& m : ref->aggregation) modes += (modes.empty() ? "" : ", ") + m;
    const bool in_bundle = doc_.root() && doc_.root()->type()->name == "Bundle";
    if (target.starts_with("#")) {
      if (!allows("contained")) {
        report(Severity::Error, IssueType::Structure, node, "the reference is to a contained resource, which the "
               "aggregation mode(s) of this element (" + modes + ") do not allow", def.id + ":aggregation");
      }
      return;
    }
    const Node* resolved = in_bundle ? resolveReference(node, target) : nullptr;
    if (resolved) {
      if (!allows("bundled")) {
        report(Severity::Error, IssueType::Structure, node, "the reference is to a resource in the Bundle, which the "
               "aggregation mode(s) of this element (" + modes + ") do not allow", def.id + ":aggregation");
      }
      return;
    }
    if (allows("referenced")) return;
    if (!in_bundle && !options_.enforce_aggregation_outside_bundles) return;
    report(Severity::Error, IssueType::Structure, node, "the reference " + std::string(target) + " is external, which "
           "the aggregation mode(s) of this element (" + modes + ") do not allow: it must be " +
           (allows("bundled") ? "bundled or contained" : "contained"), def.id + ":aggregation");
  }

  // A fixed complex value names every child the instance may have: each extra child and each child
  // that differs is an issue of its own (as the reference reports them); primitives: one issue.
  void reportFixedMismatch(const Node& node, const CompiledProfile& profile, const ElementDef& def) {
    const rapidjson::Value& fixed = *def.fixed;
    if (!fixed.IsObject() || node.isPrimitive()) {
      report(Severity::Error, IssueType::Value, node, "value must be exactly " + jsonText(fixed) + " (fixed in " +
             profile.url + ")", def.id + ":fixed");
      return;
    }
    size_t before = issues_.size();
    for (const Node* child : node.children()) {
      std::string name = child->jsonName();
      const rapidjson::Value* want = member(fixed, name.c_str());
      if (!want) {
        report(Severity::Error, IssueType::Value, *child, "the element " + name + " is present in the instance but "
               "not allowed by the fixed value " + jsonText(fixed) + " (profile " + profile.url + ")", def.id + ":fixed");
      }
    }
    for (const auto& m : fixed.GetObject()) {
      std::string_view name = str(m.name);
      if (name.starts_with("_")) continue;
      bool found = false, ok = false;
      for (const Node* child : node.children()) {
        if (child->jsonName() != name) continue;
        found = true;
        const rapidjson::Value& want = m.value.IsArray() && !m.value.Empty() ? m.value[0] : m.value;
        ok = ok || matchesValue(*child, want, true);
      }
      if (!found || !ok) {
        report(Severity::Error, IssueType::Value, node, "the element " + std::string(name) + " must be exactly " +
               jsonText(m.value) + " (fixed in " + profile.url + ")", def.id + ":fixed");
      }
    }
    if (issues_.size() == before) {  // differences the per-child view does not show (repetitions)
      report(Severity::Error, IssueType::Value, node, "value must be exactly " + jsonText(fixed) + " (fixed in " +
             profile.url + ")", def.id + ":fixed");
    }
  }

  // Canonical references should be absolute URLs unless they point at a contained resource ("#id").
  // A warning, not an error: in R4 canonical specializes uri, which may be relative, and the core
  // examples use relative ones ("Library/example"); "never relative" was only added in R5 (FHIR-27789).
  void checkCanonical(const Node& node) {
    std::string_view v = node.value();
    if (v.empty() || v[0] == '#' || hasScheme(v)) return;
    report(Severity::Warning, IssueType::Invalid, node, "canonical URLs should be absolute URLs unless they are "
           "fragment references (found the relative '" + std::string(v) + "'; R4 allows it, R5 does not)",
           "canonical.absolute");
  }

  void checkExampleUrl(const Node& node) {
    std::string_view type = node.type()->name;
    if (type != "uri" && type != "url" && type != "canonical") return;
    if (isExampleUrl(node.value())) {
      report(Severity::Error, IssueType::Value, node, "example URLs are not allowed in this context (" +
             std::string(node.value()) + ")", "uri.example");
    }
  }

  void checkRange(const Node& node, std::string_view value, const ElementDef& def) {
    auto compare = [&](const rapidjson::Value& limit) -> std::optional<int> {
      std::string_view bound;
      if (limit.IsString()) bound = str(limit);
      else if (limit.IsObject()) bound = memberStr(limit, "value");
      auto a = toNumber(value), b = toNumber(bound);
      if (a && b) return *a < *b ? -1 : *a > *b ? 1 : 0;
      // Dates, times and instants of the same precision compare as text (ISO 8601).
      if (bound.empty() || value.size() != bound.size()) return std::nullopt;
      int c = value.compare(bound);
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    };
    if (def.min_value) {
      auto c = compare(*def.min_value);
      if (c && *c < 0) report(Severity::Error, IssueType::Value, node, "value " + std::string(value) +
                              " is below the minimum " + jsonText(*def.min_value), def.id + ":minValue");
    }
    if (def.max_value) {
      auto c = compare(*def.max_value);
      if (c && *c > 0) report(Severity::Error, IssueType::Value, node, "value " + std::string(value) +
                              " is above the maximum " + jsonText(*def.max_value), def.id + ":maxValue");
    }
  }

  void checkBinding(const Node& node, const ElementDef& def) {
    const Binding& b = def.binding;
    if (b.strength == BindingStrength::Preferred || b.strength == BindingStrength::Example) return;
    const bool required = b.strength == BindingStrength::Required;
    const std::string_view type = node.type()->name;
    auto notInValueSet = [&](std::string what) {
      report(required ? Severity::Error : Severity::Warning, IssueType::CodeInvalid, node,
             what + " is not in the value set " + b.value_set + (required ? " (required binding)" : " (extensible binding)"),
             def.id + ":binding");
    };
    auto cannotCheck = [&](const CodeCheck& check, const std::string& what) {
      report(required ? Severity::Warning : Severity::Information, IssueType::NotSupported, node,
             what + " could not be checked against the value set " + b.value_set + ": " + check.detail,
             def.id + ":binding-unchecked");
    };
    auto displayCheck = [&](const CodeCheck& check, std::string_view display) {
      if (check.display_mismatch) {
        report(Severity::Warning, IssueType::Value, node, "display '" + std::string(display) + "' should be '" +
               check.expected_display + "'", def.id + ":display");
      }
    };
    if (node.isPrimitive()) {
      if (!node.hasValue()) return;
      if (type != "code" && type != "string" && type != "uri" && type != "canonical") return;
      CodeCheck check = tx_.checkValueSet(b.value_set, "", node.value());
      if (check.status == CodeStatus::Invalid && required) {
        // A bare code names no system: it is inferred from the value set, and here none has it.
        report(Severity::Error, IssueType::CodeInvalid, node, "the system of code '" + std::string(node.value()) +
               "' cannot be determined: none of the code systems of the value set " + b.value_set + " defines it",
               def.id + ":binding-system");
      }
      if (check.status == CodeStatus::Invalid) notInValueSet("code '" + std::string(node.value()) + "'");
      else if (check.status == CodeStatus::CannotCheck) cannotCheck(check, "code '" + std::string(node.value()) + "'");
      return;
    }
    if (type == "Coding") {
      std::string_view code = childValue(node, "code");
      if (code.empty()) return;
      std::string_view system = childValue(node, "system");
      CodeCheck check = tx_.checkValueSet(b.value_set, system, code, childValue(node, "display"));
      auto what = [&] { return "code '" + std::string(system) + "#" + std::string(code) + "'"; };
      if (check.status == CodeStatus::Invalid) notInValueSet(what());
      else if (check.status == CodeStatus::CannotCheck) cannotCheck(check, what());
      else displayCheck(check, childValue(node, "display"));
      return;
    }
    if (type == "CodeableConcept") {
      bool any = false, valid = false;
      const CodeCheck* unchecked = nullptr;
      CodeCheck last_unchecked;
      for (const Node* coding : node.children("coding")) {
        std::string_view code = childValue(*coding, "code");
        if (code.empty()) continue;
        any = true;
        std::string_view system = childValue(*coding, "system");
        CodeCheck check = tx_.checkValueSet(b.value_set, system, code, childValue(*coding, "display"));
        if (check.status == CodeStatus::Valid) {
          valid = true;
          displayCheck(check, childValue(*coding, "display"));
        } else if (check.status == CodeStatus::CannotCheck) {
          last_unchecked = check;
          unchecked = &last_unchecked;
        }
      }
      if (valid) return;
      if (!any) {
        if (required && !node.child("text")) return;  // nothing coded: cardinality rules decide
        if (required) {
          report(Severity::Error, IssueType::CodeInvalid, node, "no code provided, and a code from the value set " +
                 b.value_set + " is required", def.id + ":binding");
        }
        return;
      }
      std::string codes;  // for the message only
      for (const Node* coding : node.children("coding")) {
        std::string_view code = childValue(*coding, "code");
        if (code.empty()) continue;
        codes += (codes.empty() ? "'" : ", '") + std::string(childValue(*coding, "system")) + "#" + std::string(code) + "'";
      }
      if (unchecked) cannotCheck(*unchecked, "codes " + codes);
      else notInValueSet("none of the codes " + codes);
      return;
    }
    if (type == "Quantity" || node.type()->isA("Quantity")) {
      std::string_view code = childValue(node, "code");
      if (code.empty()) return;
      CodeCheck check = tx_.checkValueSet(b.value_set, childValue(node, "system"), code);
      if (check.status == CodeStatus::Invalid) notInValueSet("unit code '" + std::string(code) + "'");
      else if (check.status == CodeStatus::CannotCheck) cannotCheck(check, "unit code '" + std::string(code) + "'");
    }
  }

  // Additional bindings (R5 binding.additional): required and current ones need a coding in their
  // value set (error), maximum ones every coding, extensible ones should have one (warning). Those
  // limited to usage contexts are not applied (the context of use is not known here).
  void checkAdditionalBindings(const Node& node, const ElementDef& def) {
    std::vector<std::pair<std::string_view, std::string_view>> codes;  // (system, code)
    const std::string_view type = node.type()->name;
    if (node.isPrimitive()) {
      if (node.hasValue() && (type == "code" || type == "string" || type == "uri")) codes.emplace_back("", node.value());
    } else if (type == "Coding" || node.type()->isA("Quantity")) {
      if (!childValue(node, "code").empty()) codes.emplace_back(childValue(node, "system"), childValue(node, "code"));
    } else if (type == "CodeableConcept") {
      for (const Node* c : node.children("coding")) {
        if (!childValue(*c, "code").empty()) codes.emplace_back(childValue(*c, "system"), childValue(*c, "code"));
      }
    }
    if (codes.empty()) return;
    auto text = [](const std::pair<std::string_view, std::string_view>& c) {
      return "'" + (c.first.empty() ? std::string() : std::string(c.first) + "#") + std::string(c.second) + "'";
    };
    using P = AdditionalBinding::Purpose;
    for (const AdditionalBinding& a : def.binding.additional) {
      if (a.has_usage) continue;
      std::string list, unchecked;
      bool valid = false;
      for (const auto& c : codes) {
        CodeCheck check = tx_.checkValueSet(a.value_set, c.first, c.second);
        list += (list.empty() ? "" : ", ") + text(c);
        if (check.status == CodeStatus::Valid) {
          valid = true;
        } else if (check.status == CodeStatus::CannotCheck) {
          unchecked = check.detail;
        } else if (a.purpose == P::Maximum) {
          report(Severity::Error, IssueType::CodeInvalid, node, "code " + text(c) + " is not in the value set " +
                 a.value_set + ", the maximum binding of an additional binding", def.id + ":additional-binding");
        }
      }
      if (a.purpose == P::Maximum || valid) continue;
      if (!unchecked.empty()) {
        report(Severity::Information, IssueType::NotSupported, node, "codes " + list + " could not be checked against "
               "the value set " + a.value_set + " of an additional binding: " + unchecked,
               def.id + ":additional-binding-unchecked");
        continue;
      }
      const bool required = a.purpose != P::Extensible;
      report(required ? Severity::Error : Severity::Warning, IssueType::CodeInvalid, node,
             "none of the codes " + list + " is in the value set " + a.value_set + ", which an additional binding (" +
             (a.purpose == P::Required ? "required" : a.purpose == P::Current ? "current" : "extensible") + ") " +
             (required ? "requires" : "asks for"), def.id + ":additional-binding");
    }
  }

  // Is `system` the canonical of a loaded value set and of no loaded code system? Remembered for the
  // run: a document names the same few systems in many Codings (two registry lookups each).
  bool namesValueSetOnly(std::string_view system) {
    for (const auto& [seen, answer] : value_set_systems_) {
      if (seen.size() == system.size() && seen == system) return answer;
    }
    const PackageRegistry& registry = store_.registry();
    const bool answer = registry.findCanonical(system, "ValueSet") && !registry.findCanonical(system, "CodeSystem");
    value_set_systems_.emplace_back(std::string(system), answer);
    return answer;
  }

  void checkCoding(const Node& node, const ElementDef& def) {
    std::string_view system = childValue(node, "system"), code = childValue(node, "code");
    if (!system.empty()) {
      // Coding.system identifies a code system: an absolute URI, and not a value set's canonical.
      if (!hasScheme(system)) {
        report(Severity::Error, IssueType::CodeInvalid, *node.child("system"), "Coding.system must be an absolute "
               "reference, not a local reference ('" + std::string(system) + "')", "Coding.system:absolute");
        return;
      }
      if (namesValueSetOnly(system)) {
        report(Severity::Error, IssueType::CodeInvalid, *node.child("system"), "the Coding references a value set, "
               "not a code system ('" + std::string(system) + "')", "Coding.system:value-set");
        return;
      }
    }
    if (system.empty() || code.empty()) return;
    CodeCheck check = tx_.checkCodeSystem(system, code, childValue(node, "display"));
    if (check.status == CodeStatus::Invalid) {
      report(Severity::Error, IssueType::CodeInvalid, node, check.detail, "Coding:code-in-system");
    } else if (check.status == CodeStatus::Valid && check.display_mismatch) {
      report(Severity::Warning, IssueType::Value, node, "display '" + std::string(childValue(node, "display")) +
             "' should be '" + check.expected_display + "' for code " + std::string(code), "Coding:display");
    }
  }

  void checkInvariants(const Node& node, const CompiledProfile& profile, const ElementDef& def, bool base_pass) {
    // Constraints of one element sharing an expression (txt-1 and txt-2 are both htmlChecks())
    // share one compiled invariant: it runs once on the node.
    struct Evaluated { const CompiledInvariant* invariant; tl::expected<bool, std::string> result; };
    std::vector<Evaluated> evaluated;
    const bool core_profile = profile.url.starts_with(kCoreSdPrefix);
    const bool constraint_profile = !base_pass && profile.derivation == "constraint";
    for (const Constraint& c : def.constraints) {
      // Profile passes repeat the core constraints in their snapshots; the base pass checks those.
      if (!base_pass && c.from_core && !core_profile) continue;
      if (constraint_profile && c.core_key_without_source) continue;
      bool holds = true;
      // (c.native tells the natively answered ones apart: no key comparisons per node.)
      if (c.native == NativeInvariant::Bdl7) {
        continue;  // checked natively in indexBundle, in linear time
      } else if (c.native == NativeInvariant::Ele1) {
        // hasValue() or (children().count() > id.count()): natively, it runs on every element.
        // The element's definition and its type's both carry it: one issue per node.
        holds = ele1Holds(node) || !ele1_failed_.insert(&node).second;
      } else if (c.native == NativeInvariant::Txt2 && node.hasValue()) {
        holds = narrativeHasContent(node.value());
      } else if (c.native == NativeInvariant::Dom3) {
        holds = !options_.validate_contained || dom3Holds(node);
      } else if (c.native == NativeInvariant::Ref1) {
        // Natively: one id set per container instead of %rootResource.contained.id per reference.
        std::string_view reference = childValue(node, "reference");
        // "#": substring(1) is empty, so is the invariant's value: it holds (as the engine answers).
        holds = !reference.starts_with("#") || reference.size() == 1 ||
                containedById(rootResourceOf(node)).count(reference.substr(1)) > 0;
      } else if (c.native == NativeInvariant::Ext1) {
        bool has_value = false, has_extension = false;
        for (const Node* child : node.children()) {
          has_value = has_value || child->name() == "value";
          has_extension = has_extension || child->name() == "extension";
        }
        holds = has_value != has_extension;
      } else if (c.compiled) {
        // Decided by the focus's children (a failure only when the guards are the whole expression).
        const GuardOutcome by_guard = decideByGuards(node, c.guards, c.guards_complete);
        if (by_guard == GuardOutcome::Holds) continue;
        if (by_guard == GuardOutcome::Fails) {
          holds = false;
        } else {
          const Evaluated* earlier = nullptr;
          for (const Evaluated& e : evaluated) if (e.invariant == c.compiled.get()) earlier = &e;
          if (earlier == nullptr) {
            evaluated.push_back({c.compiled.get(), evaluateInvariant(c, node)});
            earlier = &evaluated.back();
          }
          const auto& result = earlier->result;
          if (!result) {
            report(Severity::Warning, IssueType::Processing, node, "invariant " + c.key + " could not be evaluated: " +
                   result.error(), def.id + ":" + c.key);
            continue;
          }
          holds = *result;
        }
      } else {
        if (!c.expression.empty() && unchecked_.insert(c.key + "|" + def.id).second) {
          report(Severity::Information, IssueType::NotSupported, node,
                 "invariant " + c.key + " was not checked: " +
                     (c.compile_error.empty() ? std::string("no FHIRPath engine in this build") : c.compile_error),
                 def.id + ":" + c.key);
        }
        continue;
      }
      if (!holds) {
        report(c.is_error ? Severity::Error : Severity::Warning, IssueType::Invariant, node,
               "constraint failed: " + c.key + ": " + c.human + " (" + c.expression + ")", def.id + ":" + c.key);
      }
    }
  }
  // %rootResource: the container of a contained resource, else the resource itself; a Bundle
  // entry is its own root (not the Bundle, which would make per-entry invariants see every entry).
  const Node& rootResourceOf(const Node& node) const {
    const Node* root = node.enclosingResource();
    while (root != nullptr && root->element() != nullptr && root->element()->name == "contained" &&
           root->parent() != nullptr && root->parent()->enclosingResource() != nullptr) {
      root = root->parent()->enclosingResource();
    }
    return root != nullptr ? *root : *doc_.root();
  }
  tl::expected<bool, std::string> evaluateInvariant(const Constraint& c, const Node& node) {
    const Node* resource = node.enclosingResource();
    InvariantServicesImpl services(*this);
    return c.compiled->holds(node, resource ? *resource : node, rootResourceOf(node), &services);
  }

  // A resource's contained resources by id (the first of an id), indexed once per container: local
  // references and ref-1 look up there instead of scanning `contained` each time.
  const std::unordered_map<std::string_view, const Node*>& containedById(const Node& container) const {
    auto [it, inserted] = contained_by_id_.try_emplace(&container);
    if (inserted) {
      for (const Node* c : container.children("contained")) {
        if (const Node* id = c->child("id"); id && id->hasValue()) it->second.try_emplace(id->value(), c);
      }
    }
    return it->second;
  }

  // dom-3 natively: every contained resource is referenced from the container (references,
  // canonicals, uris "#id", also links in the narrative: <img src="#id">, <a href="#id">), or
  // refers to the container ("#").
  bool dom3Holds(const Node& container) {
    if (container.children("contained").empty()) return true;  // nothing to be referenced: no walk
    // One walk of the container collects what refers to a contained resource: "#id" values
    // anywhere, ="#id" / ='#id' attributes in the narrative, and "#" inside a contained resource
    // (that one refers to its container).
    std::unordered_set<std::string_view> referenced;
    std::unordered_set<const Node*> refers_to_container;
    auto attributes = [&](std::string_view xhtml, char quote) {
      const std::string open = std::string("=") + quote + "#";
      for (size_t at = xhtml.find(open); at != std::string_view::npos; at = xhtml.find(open, at + 1)) {
        size_t start = at + open.size(), end = xhtml.find(quote, start);
        if (end == std::string_view::npos) break;
        referenced.insert(xhtml.substr(start, end - start));
      }
    };
    auto walk = [&](auto&& self, const Node& n, const Node* contained) -> void {
      if (n.isPrimitive() && n.hasValue()) {
        std::string_view v = n.value();
        if (v.starts_with("#")) {
          referenced.insert(v.substr(1));
          if (v.size() == 1 && contained) refers_to_container.insert(contained);
        }
        if (n.type()->primitive_kind == fhir::PrimitiveKind::Xhtml) {
          attributes(v, '"');
          attributes(v, '\'');
        }
      }
      for (const Node* child : n.children()) {
        self(self, *child, contained ? contained : child->element() && child->element()->name == "contained" &&
                                                     child->parent() == &container ? child : nullptr);
      }
    };
    walk(walk, container, nullptr);
    for (const Node* c : container.children("contained")) {
      std::string_view id = childValue(*c, "id");
      if (id.empty()) continue;
      if (!referenced.count(id) && !refers_to_container.count(c)) return false;
    }
    return true;
  }

  // txt-2: the narrative has some non-whitespace content (text outside the tags, or an image).
  static bool narrativeHasContent(std::string_view xhtml) {
    bool in_tag = false;
    for (size_t i = 0; i < xhtml.size(); ++i) {
      char ch = xhtml[i];
      if (ch == '<') {
        in_tag = true;
        if (xhtml.substr(i + 1, 3) == "img") return true;
      } else if (ch == '>') {
        in_tag = false;
      } else if (!in_tag && !std::isspace(static_cast<unsigned char>(ch))) {
        return true;
      }
    }
    return false;
  }

  // Narrative XHTML must not carry active or form content (http://hl7.org/fhir/R4/narrative.html#xhtml).
  void checkXhtmlElements(const Node& node) {
    static constexpr std::string_view kForbidden[] = {"script", "object", "applet", "embed", "iframe", "frame",
                                                      "frameset", "form", "input", "button", "select", "textarea",
                                                      "base", "link", "meta", "style", "head", "body", "html"};
    constexpr size_t kLongest = 8;  // "frameset", "textarea"
    auto nameChar = [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ':';
    };
    std::string_view v = node.value();
    for (size_t i = v.find('<'); i != std::string_view::npos; i = v.find('<', i + 1)) {
      size_t start = i + 1, end = start;
      while (end < v.size() && nameChar(v[end])) ++end;
      std::string_view name = v.substr(start, end - start);
      if (size_t colon = name.find(':'); colon != std::string_view::npos) name = name.substr(colon + 1);
      if (name.size() < 4 || name.size() > kLongest) continue;  // no forbidden name is shorter or longer
      // Lower case on the stack: the names are compared here for every tag of every narrative.
      char lower[kLongest];
      for (size_t k = 0; k < name.size(); ++k) {
        char ch = name[k];
        lower[k] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
      }
      const std::string_view lowered(lower, name.size());
      for (std::string_view bad : kForbidden) {
        if (lowered == bad) {
          report(Severity::Error, IssueType::Value, node, "invalid element name in the XHTML ('" + std::string(lowered) +
                 "')", "xhtml.element");
          break;
        }
      }
    }
  }

  // Text that looks like an HTML tag: '<', an optional '/', a letter, and a later '>'.
  static bool looksLikeHtml(std::string_view text) {
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      if (text[i] != '<') continue;
      size_t j = i + 1;
      if (text[j] == '/') ++j;
      if (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j])) &&
          text.find('>', j) != std::string_view::npos) {
        return true;
      }
    }
    return false;
  }

  static bool ele1Holds(const Node& node) {
    // A complex element whose content the reader reported and left out (unknown elements) was not empty.
    if (node.hadUnknownContent() && !node.isPrimitive()) return true;
    if (node.hasValue() && !node.value().empty()) return true;
    for (const Node* child : node.children()) if (child->name() != "id") return true;
    return false;
  }
  // A primitive with neither value nor children is not walked into its type definition; its
  // element definition may not list ele-1 (Extension.url is a System.String): check it here.
  void checkEmptyPrimitive(const Node& node, const ElementDef& def) {
    if (!node.isPrimitive() || ele1Holds(node) || !ele1_failed_.insert(&node).second) return;
    report(Severity::Error, IssueType::Invariant, node,
           "constraint failed: ele-1: All FHIR elements must have a @value or children (hasValue() or "
           "(children().count() > id.count()))", def.id + ":ele-1");
  }

  // ---- extensions ----
  void checkExtension(const Node& node, uint32_t depth) {
    const Node* url_node = node.child("url");
    std::string_view url = url_node && url_node->hasValue() ? url_node->value() : std::string_view();
    if (url.empty()) {
      report(Severity::Error, IssueType::Structure, node,
             "Extension.url is required in order to identify, use and validate the extension", "extension.url-missing");
      return;
    }
    bool modifier = node.element() && node.element()->name == "modifierExtension";
    // Nested extensions of a complex extension are checked by the extension's own definition.
    if (!isAbsoluteUrl(url)) return;
    auto compiled = profileOf(url);
    if (!compiled) {
      if (modifier && !unknownModifierAllowed(url)) {
        report(Severity::Error, IssueType::Extension, node, "unknown modifier extension " + std::string(url) +
               ": it may change the meaning of the resource, so the resource cannot be processed safely",
               "extension.modifier-unknown");
      } else if (!unknownExtensionAllowed(url)) {
        report(Severity::Error, IssueType::Extension, node, "the extension " + std::string(url) +
               " is not known (no definition is loaded), so it is not allowed here", "extension.unknown");
      } else {
        report(Severity::Information, IssueType::Extension, node, "extension " + std::string(url) +
               " is not known; its content was not checked", "extension.unknown");
      }
      return;
    }
    const CompiledProfile& ext = **compiled;
    if (ext.type != "Extension") {
      report(Severity::Error, IssueType::Structure, node, std::string(url) + " is not an extension definition",
             "extension.not-extension");
      return;
    }
    if (modifier != ext.root().is_modifier && modifier) {
      report(Severity::Error, IssueType::Structure, node, "extension " + std::string(url) +
             " is not a modifier extension but is used in modifierExtension", "extension.modifier-mismatch");
    }
    if (const Node* host = node.parent()) checkExtensionContext(node, *host, ext);
    checkSubExtensions(node, ext);
    validateElement(node, ext, 0, false, depth + 1);
  }

  static bool isAbsoluteUrl(std::string_view url) {
    return url.starts_with("http:") || url.starts_with("https:") || url.starts_with("urn:");
  }

  // ValidationOptions::unknown_extensions, and the example domains (example.org, acme.com) and
  // allowed domains that may always carry extensions without a definition.
  bool unknownExtensionAllowed(std::string_view url) const {
    if (options_.allow_unknown_extensions) return true;
    // The HL7 extension space beyond R4 core (published in hl7.fhir.uv.extensions, which the
    // reference validator always has): unknown here means "not loaded", not "undefined".
    if (url.starts_with(kCoreSdPrefix)) return true;
    // The tooling extensions and DICOM's (nema.org) are always accepted by the reference validator.
    if (url.starts_with("http://hl7.org/fhir/tools/StructureDefinition/") || urlInDomain(url, "nema.org")) {
      return true;
    }
    if (options_.allow_example_extensions && isExampleUrl(url)) return true;
    for (const auto& domain : options_.allowed_extension_domains) if (url.starts_with(domain)) return true;
    return false;
  }
  // Unknown modifier extensions are errors whatever allow_unknown_extensions says, except in the
  // example domains and the allowed ones.
  bool unknownModifierAllowed(std::string_view url) const {
    if (options_.allow_example_extensions && isExampleUrl(url)) return true;
    for (const auto& domain : options_.allowed_extension_domains) if (url.starts_with(domain)) return true;
    return false;
  }
  static bool isExampleUrl(std::string_view url) {
    return urlInDomain(url, "example.org") || urlInDomain(url, "acme.com");
  }

  // Sub-extensions (relative url) of a complex extension must be ones its definition names.
  void checkSubExtensions(const Node& node, const CompiledProfile& ext) {
    const ElementDef* sliced = nullptr;
    for (uint32_t c : ext.root().children) {
      if (ext.elements[c].name == "extension") sliced = &ext.elements[c];
    }
    if (!sliced) return;
    for (const Node* sub : node.children("extension")) {
      std::string_view sub_url = childValue(*sub, "url");
      if (sub_url.empty() || isAbsoluteUrl(sub_url)) continue;
      bool known = false;
      for (uint32_t s : sliced->slices) {
        for (uint32_t c : ext.elements[s].children) {
          const ElementDef& u = ext.elements[c];
          if (u.name == "url" && u.fixed && u.fixed->IsString() && str(*u.fixed) == sub_url) known = true;
        }
        known = known || ext.elements[s].slice_name == sub_url;
      }
      if (!known && !sliced->slices.empty()) {
        report(Severity::Error, IssueType::Structure, *sub, "sub-extension url '" + std::string(sub_url) +
               "' is not defined by the extension " + ext.url, "extension.sub-extension-unknown");
      }
    }
  }

  // StructureDefinition.context and contextInvariant: may the extension sit on `host`?
  void checkExtensionContext(const Node& extension, const Node& host, const CompiledProfile& ext) {
    if (!ext.contexts.empty()) {
      bool ok = false;
      std::vector<std::string> paths;
      for (const ExtensionContext& context : ext.contexts) {
        switch (context.type) {
          case ContextType::Element:
            // Element, Base (and Resource on a resource) fit anywhere: no paths to build for them.
            if (anyElementContext(context.expression, host)) { ok = true; break; }
            if (paths.empty()) paths = contextPaths(host);
            ok = elementContextMatches(context.expression, host, paths) || coreContextErratum(ext.url, host, paths);
            break;
          case ContextType::Extension:
            ok = host.type() == extension_type_ && childValue(host, "url") == context.expression;
            break;
          case ContextType::Fhirpath: {
            if (!context.compiled) { ok = true; break; }  // cannot evaluate it: do not reject
            const Node* resource = host.enclosingResource();
            if (!resource) break;
            InvariantServicesImpl services(*this);
            auto selected = context.compiled->select(*resource, *resource, *resource, &services);
            ok = !selected || std::find(selected->begin(), selected->end(), &host) != selected->end();
            break;
          }
        }
        if (ok) break;
      }
      if (!ok) {
        std::string allowed;
        for (const ExtensionContext& c : ext.contexts) {
          allowed += (allowed.empty() ? "" : ", ") +
                     std::string(c.type == ContextType::Element ? "element " : c.type == ContextType::Extension
                                                                                  ? "extension "
                                                                                  : "fhirpath ") + c.expression;
        }
        if (paths.empty()) paths = contextPaths(host);
        std::string here;
        for (const auto& p : paths) here += (here.empty() ? "" : ", ") + p;
        report(Severity::Error, IssueType::Structure, host, "the extension " + ext.url +
               " is not allowed to be used here (this element is " + here + "; the extension may be used on " +
               allowed + ")", "extension.context");
        return;
      }
    }
    for (const Constraint& invariant : ext.context_invariants) {
      if (!invariant.compiled) continue;
      const Node* resource = host.enclosingResource();
      InvariantServicesImpl services(*this);
      auto result = invariant.compiled->holds(host, resource ? *resource : host, resource ? *resource : host,
                                              &services, &extension);
      if (result && !*result) {
        report(Severity::Error, IssueType::Structure, host, "the extension " + ext.url +
               " is not allowed to be used here: its context invariant '" + invariant.expression + "' is not met",
               "extension.context-invariant");
      }
    }
  }

  // R4 core extensions whose declared context is narrower than where the specification itself puts
  // them (the reference validator widens the same ones): fhir-type (context ElementDefinition.type.code)
  // and regex (Questionnaire.item, ElementDefinition) sit on ElementDefinition.type in every core
  // snapshot; normative-version (StructureDefinition) marks the normative OperationDefinitions,
  // CodeSystems and ValueSets of core, i.e. any artifact.
  static bool coreContextErratum(std::string_view url, const Node& host, const std::vector<std::string>& paths) {
    constexpr std::string_view kCore = "http://hl7.org/fhir/StructureDefinition/";
    if (!url.starts_with(kCore)) return false;
    std::string_view name = url.substr(kCore.size());
    if (name == "structuredefinition-fhir-type" || name == "regex") {
      return elementContextMatches("ElementDefinition.type", host, paths);
    }
    if (name == "structuredefinition-normative-version") return host.isResource();
    return false;
  }

  // The names the element `host` goes by for context matching: its definition path
  // ("HumanName.given", "Patient.address"), its path from the resource, and its type (for a
  // backbone the path defining it, then BackboneElement).
  static std::vector<std::string> contextPaths(const Node& host) {
    std::vector<std::string> paths;
    auto add = [&](std::string p) {
      if (p.ends_with("[x]")) p.resize(p.size() - 3);
      if (!p.empty() && std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(std::move(p));
    };
    if (host.isResource()) {
      add(std::string(host.type()->name));
      return paths;
    }
    if (host.element()) add(std::string(host.element()->path));
    std::string literal;
    for (const Node* n = &host; n; n = n->parent()) {
      if (n->isResource()) { literal = std::string(n->type()->name) + literal; break; }
      literal = "." + std::string(n->name()) + literal;
    }
    add(literal);
    if (host.type()->kind == fhir::TypeKind::Backbone) {
      // A backbone type is named by the path that defines it, which for a contentReference element
      // is the referenced one: OperationDefinition.parameter.part is an OperationDefinition.parameter.
      add(std::string(host.type()->name));
      add("BackboneElement");
    } else {
      add(std::string(host.type()->name));
    }
    return paths;
  }

  // An element context ("Patient.address", "DomainResource.text", "Address", "Element") matches
  // when one of the paths equals it, also with its first segment replaced by a base type.
  static bool anyElementContext(std::string_view expression, const Node& host) {
    if (expression.ends_with("[x]")) expression.remove_suffix(3);
    return expression == "Element" || expression == "Base" || (expression == "Resource" && host.isResource());
  }
  static bool elementContextMatches(std::string_view expression, const Node& host, const std::vector<std::string>& paths) {
    std::string en(expression);
    if (en.ends_with("[x]")) en.resize(en.size() - 3);
    if (en == "Element" || en == "Base") return true;
    if (en == "Resource" && host.isResource()) return true;
    for (const auto& p : paths) {
      if (p == en) return true;
      size_t dot = p.find('.');
      std::string_view first = std::string_view(p).substr(0, dot);
      std::string_view rest = dot == std::string::npos ? std::string_view() : std::string_view(p).substr(dot);
      const fhir::TypeInfo* t = fhir::TypeModel::r4().find(first);
      for (t = t ? t->base : nullptr; t; t = t->base) {
        if (en.size() == t->name.size() + rest.size() && en.starts_with(t->name) &&
            std::string_view(en).substr(t->name.size()) == rest) {
          return true;
        }
      }
    }
    return false;
  }

  // ---- slicing ----
  void assignSlices(const Node& parent, const CompiledProfile& profile, const ElementDef& sliced,
                    const std::vector<const Node*>& items, uint32_t depth) {
    std::vector<uint32_t> counts(sliced.slices.size(), 0);
    size_t last_slice = 0;
    bool unmatched_seen = false;
    for (const Node* item : items) {
      size_t matched = sliced.slices.size();
      for (size_t s = 0; s < sliced.slices.size(); ++s) {
        if (matchesSlice(*item, profile, sliced.slices[s], sliced.slicing, depth)) { matched = s; break; }
      }
      if (matched == sliced.slices.size()) {
        unmatched_seen = true;
        if (sliced.slicing.rules == SlicingRules::Closed) {
          report(Severity::Error, IssueType::Structure, *item, "this element does not match any known slice of " +
                 sliced.id + " and the slicing is closed", sliced.id + ":closed");
        }
        continue;
      }
      if (sliced.slicing.rules == SlicingRules::OpenAtEnd && unmatched_seen) {
        report(Severity::Error, IssueType::Structure, *item, "slice " + profile.elements[sliced.slices[matched]].slice_name +
               " follows an element that matches no slice, but the slicing of " + sliced.id + " is openAtEnd",
               sliced.id + ":openAtEnd");
      }
      if (sliced.slicing.ordered && matched < last_slice) {
        report(Severity::Error, IssueType::Structure, *item, "slice " + profile.elements[sliced.slices[matched]].slice_name +
               " is out of order (the slicing of " + sliced.id + " is ordered)", sliced.id + ":ordered");
      }
      last_slice = std::max(last_slice, matched);
      ++counts[matched];
      validateElement(*item, profile, sliced.slices[matched], false, depth + 1);
    }
    for (size_t s = 0; s < sliced.slices.size(); ++s) {
      checkCardinality(parent, profile.elements[sliced.slices[s]], counts[s], sliced.name);
    }
  }

  // The segment of a discriminator path at `pos` (advanced past it and its dot): dots inside
  // parentheses are the argument's (extension('http://hl7.org/...').value).
  static std::string_view nextPathSegment(std::string_view path, size_t& pos) {
    size_t end = pos;
    int parens = 0;
    while (end < path.size() && (path[end] != '.' || parens > 0)) {
      if (path[end] == '(') ++parens;
      if (path[end] == ')') --parens;
      ++end;
    }
    std::string_view seg = path.substr(pos, end - pos);
    pos = end + 1;
    return seg;
  }

  // Instance values at a discriminator path ("code.coding.system", "$this", "extension('url').value",
  // "resolve()", "ofType(Quantity)").
  void collectPath(const Node& start, std::string_view path, std::vector<const Node*>& out) {
    std::vector<const Node*> current{&start};
    size_t pos = 0;
    while (pos < path.size() && !current.empty()) {
      std::string_view seg = nextPathSegment(path, pos);
      std::vector<const Node*> next;
      if (seg == "$this") continue;
      if (seg == "resolve()") {
        for (const Node* n : current) {
          std::string_view ref = childValue(*n, "reference");
          if (const Node* target = ref.empty() ? nullptr : resolveReference(*n, ref)) next.push_back(target);
        }
      } else if (seg.starts_with("extension(")) {
        std::string_view url = seg.substr(10, seg.size() - 11);
        if (url.size() >= 2) url = url.substr(1, url.size() - 2);
        for (const Node* n : current) {
          for (const Node* e : n->children("extension")) if (childValue(*e, "url") == url) next.push_back(e);
        }
      } else if (seg.starts_with("ofType(")) {
        std::string_view type = seg.substr(7, seg.size() - 8);
        for (const Node* n : current) if (n->type()->name == type) next.push_back(n);
      } else {
        for (const Node* n : current) {
          for (const Node* c : n->children()) if (c->name() == seg) next.push_back(c);
        }
      }
      current = std::move(next);
    }
    out = std::move(current);
  }

  // The element definition a discriminator path names inside a slice, plus the nearest pattern/fixed
  // found on the way (a pattern on the slice itself constrains the paths below it).
  struct SliceTarget {
    const ElementDef* element = nullptr;
    const rapidjson::Value* expected = nullptr;  // fixed or pattern value at the path
    bool exact = false;
  };
  SliceTarget sliceTarget(const CompiledProfile& profile, uint32_t slice, std::string_view path) {
    SliceTarget target;
    const ElementDef* current = &profile.elements[slice];
    const rapidjson::Value* inherited = current->fixed ? current->fixed : current->pattern;
    bool inherited_exact = current->fixed != nullptr;
    size_t pos = 0;
    while (pos < path.size() && current) {
      std::string_view seg = nextPathSegment(path, pos);
      if (seg == "$this" || seg.starts_with("ofType(") || seg == "resolve()") continue;
      const ElementDef* next = nullptr;
      if (seg.starts_with("extension(")) {
        std::string_view url = seg.substr(10, seg.size() - 11);
        if (url.size() >= 2) url = url.substr(1, url.size() - 2);
        for (uint32_t c : current->children) {
          const ElementDef& e = profile.elements[c];
          if (e.name != "extension") continue;
          for (uint32_t s : e.slices) {
            for (const TypeRef& t : profile.elements[s].types) {
              for (const auto& p : t.profiles) if (p == url) next = &profile.elements[s];
            }
          }
        }
      } else {
        for (uint32_t c : current->children) if (profile.elements[c].name == seg) next = &profile.elements[c];
      }
      if (next && !next->slices.empty() && pos < path.size() && !(next->fixed || next->pattern)) {
        // The value may be fixed inside a slice below (bp: component code.coding:SBPCode.code).
        std::string_view remaining = path.substr(pos);
        for (uint32_t s : next->slices) {
          SliceTarget inner = sliceTarget(profile, s, remaining);
          if (inner.expected) return inner;
        }
      }
      if (inherited) {  // walk into the inherited pattern as well
        const rapidjson::Value* v = inherited->IsObject() ? member(*inherited, std::string(seg).c_str()) : nullptr;
        if (v && v->IsArray()) v = v->Empty() ? nullptr : &(*v)[0];
        inherited = v;
      }
      current = next;
      if (current && (current->fixed || current->pattern)) {
        inherited = current->fixed ? current->fixed : current->pattern;
        inherited_exact = current->fixed != nullptr;
      }
    }
    target.element = current;
    target.expected = inherited;
    target.exact = inherited_exact;
    return target;
  }

  bool matchesSlice(const Node& item, const CompiledProfile& profile, uint32_t slice, const Slicing& slicing, uint32_t depth) {
    const ElementDef& s = profile.elements[slice];
    if (slicing.discriminators.empty()) {
      // No discriminator: the item belongs to the slice if it conforms to it (costly, rare).
      return conforms(item, profile, slice, depth);
    }
    std::vector<const Node*> values;
    for (const Discriminator& d : slicing.discriminators) {
      collectPath(item, d.path, values);
      SliceTarget target = sliceTarget(profile, slice, d.path);
      if (!target.expected && s.types.size() == 1 && s.types[0].profiles.size() == 1 &&
          (d.type == DiscriminatorType::Value || d.type == DiscriminatorType::Pattern)) {
        // The slice names a type profile (extension slices): the fixed value lives in that profile,
        // e.g. Extension.url fixed to the extension's canonical.
        auto type_profile = profileOf(s.types[0].profiles[0]);
        if (type_profile) {
          SliceTarget inner = sliceTarget(**type_profile, profileElement(**type_profile, s.types[0], 0), d.path);
          if (inner.expected) target = inner;
          else if (d.path == "url" && (*type_profile)->type == "Extension") {
            url_scratch_.SetString(s.types[0].profiles[0].c_str(),
                                   static_cast<rapidjson::SizeType>(s.types[0].profiles[0].size()));
            target.expected = &url_scratch_;
            target.exact = true;
          }
        }
      }
      switch (d.type) {
        case DiscriminatorType::Value:
        case DiscriminatorType::Pattern: {
          if (!target.expected) {
            const ElementDef* e = target.element;
            // A discriminating element the slice prohibits (max 0) matches when it is absent.
            if (e && e->max == 0) {
              if (!values.empty()) return false;
              break;
            }
            // A required binding can discriminate by value set membership.
            if (e && e->has_binding && e->binding.strength == BindingStrength::Required) {
              bool any = false;
              for (const Node* v : values) {
                if (v->isPrimitive() && v->hasValue()) {
                  any = any || tx_.checkValueSet(e->binding.value_set, "", v->value()).status == CodeStatus::Valid;
                } else {
                  std::vector<const Node*> codings;
                  if (v->type()->name == "Coding") codings.push_back(v);
                  else for (const Node* c : v->children("coding")) codings.push_back(c);
                  for (const Node* coding : codings) {
                    any = any || tx_.checkValueSet(e->binding.value_set, childValue(*coding, "system"),
                                                   childValue(*coding, "code")).status == CodeStatus::Valid;
                  }
                }
              }
              if (!any) return false;
              break;
            }
            if (s.types.size() == 1 && d.path == "$this" && !s.types[0].profiles.empty()) {
              if (!conformsToProfiles(item, s.types[0].profiles, depth)) return false;
              break;
            }
            if (e && (!e->children.empty() || !e->slices.empty())) {
              // The discriminating values sit below the path (bp: code.coding:SBPCode.code fixed):
              // the value must meet that element of the slice.
              uint32_t element_index = static_cast<uint32_t>(e - profile.elements.data());
              bool any = false;
              for (const Node* v : values) any = any || conforms(*v, profile, element_index, depth);
              if (!any) return false;
              break;
            }
            continue;  // nothing to compare: the discriminator does not separate this slice
          }
          bool any = false;
          for (const Node* v : values) any = any || matchesValue(*v, *target.expected, target.exact && d.type == DiscriminatorType::Value);
          if (!any) return false;
          break;
        }
        case DiscriminatorType::Exists: {
          const ElementDef* e = target.element;
          if (!e) continue;
          if (e->min > 0 && values.empty()) return false;
          if (e->max == 0 && !values.empty()) return false;
          break;
        }
        case DiscriminatorType::Type: {
          const ElementDef* e = target.element;
          if (!e || e->types.empty()) continue;
          if (values.empty()) return false;
          // Through resolve() the type is the referenced resource's: the Reference's target profiles.
          const bool via_resolve = std::string_view(d.path).ends_with("resolve()");
          std::vector<std::string> allowed;
          for (const TypeRef& t : e->types) {
            if (!via_resolve || t.target_profiles.empty()) { allowed.push_back(t.code); continue; }
            for (const auto& url : t.target_profiles) {
              auto target = profileOf(url);
              if (target) allowed.push_back((*target)->type);
            }
          }
          for (const Node* v : values) {
            bool ok = false;
            for (const auto& a : allowed) ok = ok || a == v->type()->name;
            if (!ok) return false;
          }
          break;
        }
        case DiscriminatorType::Profile: {
          const ElementDef* e = target.element;
          if (!e) continue;
          std::vector<std::string> urls;
          for (const TypeRef& t : e->types) {
            for (const auto& p : t.profiles) urls.push_back(p);
            for (const auto& p : t.target_profiles) urls.push_back(p);
          }
          if (urls.empty()) continue;
          if (values.empty()) return false;
          for (const Node* v : values) if (!conformsToProfiles(*v, urls, depth)) return false;
          break;
        }
      }
    }
    return true;
  }

  bool conformsToProfiles(const Node& node, const std::vector<std::string>& urls, uint32_t depth) {
    for (const auto& url : urls) {
      auto compiled = profileOf(url);
      if (compiled && conformsOnce(node, **compiled, depth)) return true;
    }
    return false;
  }

  // Trial validation into a scratch sink: does the node meet the element without errors?
  // `found`, when given, receives the trial's issues.
  bool conforms(const Node& node, const CompiledProfile& profile, uint32_t index, uint32_t depth,
                fhir::Issues* found = nullptr) {
    fhir::Issues scratch;
    std::swap(scratch, issues_);
    std::unordered_set<const Node*> ele1_saved = ele1_failed_;
    validateElement(node, profile, index, false, depth + 1);
    bool ok = errorCount() == 0;
    std::swap(scratch, issues_);
    ele1_failed_ = std::move(ele1_saved);
    if (found) *found = std::move(scratch);
    return ok;
  }

  ProfileStore& store_;
  Terminology& tx_;
  const fhir::Document& doc_;
  const ValidationOptions& options_;
  fhir::Issues& issues_;
  const fhir::TypeInfo* extension_type_ = fhir::TypeModel::r4().extension_type;
  // Types the per-node checks ask about, compared by identity (one TypeInfo per name) instead of by name.
  const fhir::TypeInfo* reference_type_ = fhir::TypeModel::r4().find("Reference");
  const fhir::TypeInfo* canonical_type_ = fhir::TypeModel::r4().find("canonical");
  const fhir::TypeInfo* coding_type_ = fhir::TypeModel::r4().find("Coding");
  const fhir::TypeInfo* identifier_type_ = fhir::TypeModel::r4().find("Identifier");
  const fhir::TypeInfo* attachment_type_ = fhir::TypeModel::r4().find("Attachment");
  std::unordered_map<std::string_view, const Node*> by_full_url_;
  std::unordered_map<std::string, const Node*> by_type_id_;
  std::unordered_set<std::string> unchecked_;
  std::unordered_set<std::string> seen_versions_;
  std::unordered_set<const Node*> ele1_failed_;
  std::vector<std::pair<const fhir::TypeInfo*, const CompiledProfile*>> type_definitions_;
  std::vector<std::pair<std::string, const CompiledProfile*>> profiles_seen_;  // see profileOf()
  std::vector<std::pair<std::string, bool>> value_set_systems_;  // see namesValueSetOnly()
  std::unordered_set<std::string> element_ids_;  // "<resource>|<element id>"  // nodes with an ele-1 issue already
  mutable std::unordered_map<const Node*, std::unordered_map<std::string_view, const Node*>> contained_by_id_;
  uint32_t current_depth_ = 0;  // depth of the element being validated (conformsTo() nests below it)
  std::set<std::pair<const Node*, const CompiledProfile*>> conforms_to_active_;  // conformsTo() checks under way
  uint64_t assumed_conforming_ = 0;  // times a target under check further out was taken to conform
  // Pairs that conform as long as the pairs assumed to conform while trying them do: dropped as soon
  // as any check fails (endCheck), kept otherwise (the assumptions held).
  std::set<std::pair<const Node*, const CompiledProfile*>> provisional_conforming_;
  // conformsOnce() verdicts: (node, profile) -> (conforms, the trial's issues when not)
  std::map<std::pair<const Node*, const CompiledProfile*>, std::pair<bool, fhir::Issues>> target_verdicts_;
  rapidjson::Value url_scratch_;  // an extension canonical as a JSON string (points into a ProfileStore string)
};

void Validator::validate(const fhir::Document& document, const ValidationOptions& options, fhir::Issues& issues) const {
  ValidationRun run(*this, document, options, issues);
  run.run();
}

}  // namespace medicus::profiles
