#include "medicus/profiles/terminology.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <regex>

#include "profiles/json_util.h"

namespace medicus::profiles {
namespace {
constexpr int kMaxValueSetNesting = 16;
constexpr size_t kMaxExpansion = 200000;

template <class V>
using StringMap = std::unordered_map<std::string, V, StringViewHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringViewHash, std::equal_to<>>;

// Per validating thread: the expansions it was handed before, by where the value set url lives
// (like Terminology::recent_). An expansion never changes once expand() returned it, so a hit
// needs neither the mutex nor a hash. `owner` tells the Terminology apart (ids are never reused).
struct ThreadExpansion {
  uint64_t owner = 0;
  const char* data = nullptr;
  size_t size = 0;
  const std::string* key = nullptr;
  const void* expansion = nullptr;
};
thread_local ThreadExpansion t_recent[512];
thread_local std::string t_key;  // "system|code" of this thread's lookup in progress, reused
std::atomic<uint64_t> next_terminology_id{1};

std::string key(std::string_view system, std::string_view code) {
  std::string k;
  k.reserve(system.size() + code.size() + 1);
  k.append(system).push_back('|');
  k.append(code);
  return k;
}

// urn:ietf:bcp:13 (media types) has no code list to load, but its grammar (RFC 6838 section 4.2:
// restricted-name characters, type "/" subtype, parameters after ';') tells codes that cannot be
// one. Only the characters and the single '/' are judged: R4 also binds bare 'xml' and 'json'
// (CapabilityStatement.format) to the MIME type value set.
constexpr std::string_view kMediaTypes = "urn:ietf:bcp:13";
bool mediaTypeCharacters(std::string_view code) {
  code = code.substr(0, code.find(';'));
  while (!code.empty() && code.back() == ' ') code.remove_suffix(1);
  if (code.empty() || code.front() == '/' || code.back() == '/') return false;
  size_t slashes = 0;
  for (char c : code) {
    if (c == '/') { ++slashes; continue; }
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("!#$&-^_.+*").find(c) == std::string_view::npos) return false;
  }
  return slashes <= 1;
}
}  // namespace

struct Terminology::CodeSystemIndex {
  std::string url;
  bool complete = false;  // content = complete: codes not listed are not codes of the system
  bool case_sensitive = true;
  bool nesting_is_a = true;  // hierarchyMeaning absent or is-a: nesting (and `parent`) mean is-a
  struct Concept {
    std::string display;
    std::vector<std::string> designations;
    std::vector<std::string> parents;
    std::vector<std::string> children;
    std::vector<std::string> subsumed_by;  // the `subsumedBy` property values (is-a whatever the hierarchy means)
    std::unordered_map<std::string, std::string> properties;
  };
  StringMap<Concept> concepts;
  std::vector<std::string> order;  // definition order, for stable expansions
};

struct Terminology::Expansion {
  bool usable = false;
  std::string error;  // when not usable
  StringMap<std::string> codes;  // "system|code" -> display
  struct Bare {
    std::string system;   // first seen
    std::string display;  // of system|code, so a bare code is one lookup
  };
  StringMap<Bare> bare;  // code -> first system defining it
  StringSet external_systems;    // included but not available locally
};

Terminology::Terminology(const PackageRegistry& registry) : registry_(registry), id_(next_terminology_id++) {}
Terminology::~Terminology() = default;

const Terminology::CodeSystemIndex* Terminology::codeSystem(std::string_view url) {
  if (auto it = code_systems_.find(url); it != code_systems_.end()) return it->second.get();
  std::string k(url);
  const ResourceInfo* info = registry_.findCanonical(url, "CodeSystem");
  const rapidjson::Value* json = info ? registry_.json(*info) : nullptr;
  std::unique_ptr<CodeSystemIndex> index;
  if (json) {
    index = std::make_unique<CodeSystemIndex>();
    index->url = k;
    index->complete = memberStr(*json, "content") == "complete";
    index->case_sensitive = memberBool(*json, "caseSensitive", true);
    std::string_view meaning = memberStr(*json, "hierarchyMeaning");
    index->nesting_is_a = meaning.empty() || meaning == "is-a";
    // Concepts nest (hierarchy meaning is-a in almost every code system in the packages).
    std::vector<std::pair<const rapidjson::Value*, std::string>> stack;
    if (const rapidjson::Value* cs = memberArray(*json, "concept")) {
      for (auto it = cs->End(); it != cs->Begin();) stack.emplace_back(&*--it, std::string());
    }
    while (!stack.empty() && index->concepts.size() < kMaxExpansion) {
      auto [c, parent] = stack.back();
      stack.pop_back();
      std::string code(memberStr(*c, "code"));
      auto& concept_entry = index->concepts[code];
      if (concept_entry.display.empty()) index->order.push_back(code);
      concept_entry.display = std::string(memberStr(*c, "display"));
      if (!parent.empty()) {
        concept_entry.parents.push_back(parent);
        index->concepts[parent].children.push_back(code);
      }
      if (const rapidjson::Value* ds = memberArray(*c, "designation")) {
        for (const auto& d : ds->GetArray()) concept_entry.designations.emplace_back(memberStr(d, "value"));
      }
      if (const rapidjson::Value* ps = memberArray(*c, "property")) {
        for (const auto& p : ps->GetArray()) {
          std::string pcode(memberStr(p, "code"));
          std::string value;
          for (const auto& m : p.GetObject()) {
            if (str(m.name).starts_with("value")) {
              if (m.value.IsString()) value = str(m.value);
              else if (m.value.IsBool()) value = m.value.GetBool() ? "true" : "false";
              else if (const rapidjson::Value* c2 = member(m.value, "code")) value = str(*c2);
            }
          }
          if (pcode == "parent" || pcode == "subsumedBy") concept_entry.parents.push_back(value);
          if (pcode == "subsumedBy") concept_entry.subsumed_by.push_back(value);
          concept_entry.properties[pcode] = value;
        }
      }
      if (const rapidjson::Value* kids = memberArray(*c, "concept")) {
        for (auto it = kids->End(); it != kids->Begin();) stack.emplace_back(&*--it, code);
      }
    }
    // Parents named by property get their children lists too.
    for (auto& [code, concept_entry] : index->concepts) {
      for (const auto& p : concept_entry.parents) {
        auto pit = index->concepts.find(p);
        if (pit != index->concepts.end() &&
            std::find(pit->second.children.begin(), pit->second.children.end(), code) == pit->second.children.end()) {
          pit->second.children.push_back(code);
        }
      }
    }
  }
  const CodeSystemIndex* result = index.get();
  code_systems_.emplace(std::move(k), std::move(index));
  return result;
}

const Terminology::Expansion* Terminology::expand(std::string_view url, int depth) {
  if (auto it = expansions_.find(url); it != expansions_.end()) return it->second.get();
  std::string k(url);
  auto exp = std::make_unique<Expansion>();
  Expansion* e = exp.get();
  expansions_.emplace(k, std::move(exp));  // placed first: a cycle sees an empty, unusable expansion
  if (depth > kMaxValueSetNesting) {
    e->error = "value sets nest deeper than " + std::to_string(kMaxValueSetNesting);
    return e;
  }
  const ResourceInfo* info = registry_.findCanonical(url, "ValueSet");
  const rapidjson::Value* vs = info ? registry_.json(*info) : nullptr;
  if (!vs) {
    e->error = "value set " + k + " is not available locally";
    return e;
  }
  auto add = [&](Expansion& target, std::string_view system, std::string_view code, std::string_view display) {
    if (target.codes.size() >= kMaxExpansion) return;
    target.codes.emplace(key(system, code), std::string(display));
    target.bare.emplace(std::string(code), Expansion::Bare{std::string(system), std::string(display)});
  };
  // Codes of one include/exclude entry.
  auto collect = [&](const rapidjson::Value& inc, Expansion& out) -> bool {
    std::string_view system = memberStr(inc, "system");
    const rapidjson::Value* concepts = memberArray(inc, "concept");
    const rapidjson::Value* filters = memberArray(inc, "filter");
    const rapidjson::Value* value_sets = memberArray(inc, "valueSet");
    Expansion part;
    bool have_part = false;
    if (!system.empty()) {
      have_part = true;
      const CodeSystemIndex* cs = codeSystem(system);
      if (concepts) {
        for (const auto& c : concepts->GetArray()) {
          std::string_view code = memberStr(c, "code");
          std::string_view display = memberStr(c, "display");
          if (display.empty() && cs) {
            auto it = cs->concepts.find(std::string(code));
            if (it != cs->concepts.end()) display = it->second.display;
          }
          add(part, system, code, display);
        }
      } else if (!cs || !cs->complete) {
        part.external_systems.insert(std::string(system));
      } else {
        std::vector<std::string> selected = cs->order;
        if (filters) {
          for (const auto& f : filters->GetArray()) {
            std::string_view property = memberStr(f, "property");
            std::string_view op = memberStr(f, "op");
            std::string value(memberStr(f, "value"));
            std::vector<std::string> kept;
            if (op == "is-a" || op == "descendent-of" || op == "is-not-a") {
              std::unordered_set<std::string> below;
              std::vector<std::string> todo{value};
              while (!todo.empty()) {
                std::string c = std::move(todo.back());
                todo.pop_back();
                auto it = cs->concepts.find(c);
                if (it == cs->concepts.end()) continue;
                for (const auto& child : it->second.children) if (below.insert(child).second) todo.push_back(child);
              }
              if (op == "is-a") below.insert(value);
              for (const auto& c : selected) {
                bool in = below.count(c) > 0;
                if (op == "is-not-a" ? !in : in) kept.push_back(c);
              }
            } else if (op == "=" || op == "in" || op == "regex" || op == "exists") {
              std::optional<std::regex> re;
              if (op == "regex") {
                try { re.emplace(value); } catch (const std::regex_error&) {
                  e->error = "invalid regex filter '" + value + "' in " + k;
                  return false;
                }
              }
              for (const auto& c : selected) {
                const auto& concept_entry = cs->concepts.at(c);
                std::string actual = property == "code" ? c : property == "display" ? concept_entry.display : "";
                bool has = property == "code" || property == "display";
                if (!has) {
                  auto pit = concept_entry.properties.find(std::string(property));
                  has = pit != concept_entry.properties.end();
                  if (has) actual = pit->second;
                }
                bool match = false;
                if (op == "=") match = has && actual == value;
                else if (op == "exists") match = has == (value != "false");
                else if (op == "regex") match = has && std::regex_match(actual, *re);
                else {  // in: comma-separated list
                  size_t start = 0;
                  while (start <= value.size() && !match) {
                    size_t comma = value.find(',', start);
                    std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                    match = has && actual == item;
                    if (comma == std::string::npos) break;
                    start = comma + 1;
                  }
                }
                if (match) kept.push_back(c);
              }
            } else {
              e->error = "filter op '" + std::string(op) + "' in " + k + " is not supported locally";
              return false;
            }
            selected = std::move(kept);
          }
        }
        for (const auto& c : selected) add(part, system, c, cs->concepts.at(c).display);
      }
    }
    if (value_sets) {
      for (const auto& v : value_sets->GetArray()) {
        const Expansion* nested = expand(str(v), depth + 1);
        if (!nested->usable) {
          e->error = nested->error;
          return false;
        }
        if (!have_part) {
          part = *nested;
          have_part = true;
        } else {  // intersection (R4 ValueSet.compose.include.valueSet)
          Expansion both;
          for (const auto& [ck, display] : part.codes) {
            if (nested->codes.count(ck)) {
              size_t bar = ck.find('|');
              add(both, std::string_view(ck).substr(0, bar), std::string_view(ck).substr(bar + 1), display);
            }
          }
          part = std::move(both);
        }
      }
    }
    for (auto& [ck, display] : part.codes) out.codes.emplace(ck, display);
    for (auto& [code, system2] : part.bare) out.bare.emplace(code, system2);
    for (auto& s : part.external_systems) out.external_systems.insert(s);
    return true;
  };

  const rapidjson::Value* compose = member(*vs, "compose");
  if (compose) {
    if (const rapidjson::Value* includes = memberArray(*compose, "include")) {
      for (const auto& inc : includes->GetArray()) if (!collect(inc, *e)) return e;
    }
    if (const rapidjson::Value* excludes = memberArray(*compose, "exclude")) {
      for (const auto& exc : excludes->GetArray()) {
        Expansion removed;
        if (!collect(exc, removed)) return e;
        for (const auto& [ck, display] : removed.codes) e->codes.erase(ck);
      }
      e->bare.clear();
      for (const auto& [ck, display] : e->codes) {
        size_t bar = ck.find('|');
        e->bare.emplace(ck.substr(bar + 1), Expansion::Bare{ck.substr(0, bar), display});
      }
    }
  } else if (const rapidjson::Value* expansion = member(*vs, "expansion")) {
    std::vector<const rapidjson::Value*> todo;
    if (const rapidjson::Value* cs = memberArray(*expansion, "contains")) for (const auto& c : cs->GetArray()) todo.push_back(&c);
    while (!todo.empty()) {
      const rapidjson::Value* c = todo.back();
      todo.pop_back();
      if (!memberStr(*c, "code").empty()) add(*e, memberStr(*c, "system"), memberStr(*c, "code"), memberStr(*c, "display"));
      if (const rapidjson::Value* cs = memberArray(*c, "contains")) for (const auto& n : cs->GetArray()) todo.push_back(&n);
    }
  } else {
    e->error = "value set " + k + " has neither compose nor expansion";
    return e;
  }
  e->usable = true;
  return e;
}

const Terminology::Expansion* Terminology::expandCached(std::string_view url) {
  // Heap blocks are 16-byte aligned: the bits above those, folded, pick the slot.
  const uintptr_t where = reinterpret_cast<uintptr_t>(url.data());
  RecentExpansion& slot = recent_[((where >> 4) ^ (where >> 12)) % std::size(recent_)];
  if (slot.data == url.data() && slot.size == url.size() && *slot.key == url) return slot.expansion;
  const Expansion* e = expand(url, 0);
  auto it = expansions_.find(url);  // expand() leaves every url it was asked about in expansions_
  if (it != expansions_.end()) slot = {url.data(), url.size(), &it->first, e};
  return e;
}

const Terminology::Expansion* Terminology::expansionFor(std::string_view url) {
  const uintptr_t where = reinterpret_cast<uintptr_t>(url.data());
  ThreadExpansion& slot = t_recent[((where >> 4) ^ (where >> 12)) % std::size(t_recent)];
  if (slot.owner == id_ && slot.data == url.data() && slot.size == url.size() && *slot.key == url) {
    return static_cast<const Expansion*>(slot.expansion);
  }
  std::lock_guard lock(mutex_);
  const Expansion* e = expandCached(url);
  auto it = expansions_.find(url);
  if (it != expansions_.end()) slot = {id_, url.data(), url.size(), &it->first, e};
  return e;
}

CodeCheck Terminology::checkValueSet(std::string_view value_set, std::string_view system, std::string_view code,
                                     std::string_view display) {
  CodeCheck result;
  const Expansion* e = expansionFor(value_set);  // read below without the mutex: it is final
  if (!e->usable) {
    result.detail = e->error;
    return result;
  }
  const std::string* found_display = nullptr;
  std::string_view found_system = system;
  if (system.empty()) {
    auto it = e->bare.find(code);
    if (it != e->bare.end()) {
      found_system = it->second.system;
      found_display = &it->second.display;
    }
  } else {
    t_key.assign(system).push_back('|');
    t_key.append(code);
    auto it = e->codes.find(t_key);
    if (it != e->codes.end()) found_display = &it->second;
  }
  if (found_display) {
    result.status = CodeStatus::Valid;
    if (!display.empty()) {
      std::string expected = *found_display;
      std::lock_guard lock(mutex_);  // code_systems_ grows lazily
      const CodeSystemIndex* cs = codeSystem(found_system);
      bool ok = expected.empty() || expected == display;
      if (cs) {
        auto cit = cs->concepts.find(code);
        if (cit != cs->concepts.end()) {
          if (expected.empty()) expected = cit->second.display;
          ok = ok || cit->second.display == display || cit->second.display.empty();
          for (const auto& d : cit->second.designations) ok = ok || d == display;
        }
      }
      result.expected_display = expected;
      result.display_mismatch = !ok && !expected.empty();
    }
    return result;
  }
  bool external = system.empty() ? !e->external_systems.empty() : e->external_systems.count(system) > 0;
  if (external) {
    const bool media_type = system.empty() ? e->external_systems.size() == 1 && e->external_systems.count(kMediaTypes)
                                           : system == kMediaTypes;
    if (media_type && !mediaTypeCharacters(code)) {
      result.status = CodeStatus::Invalid;
      result.detail = "'" + std::string(code) + "' is no media type (" + std::string(kMediaTypes) + ", RFC 6838)";
      return result;
    }
    result.status = CodeStatus::CannotCheck;
    result.detail = "code system " + (system.empty() ? *e->external_systems.begin() : std::string(system)) +
                    " is not available locally";
    return result;
  }
  result.status = CodeStatus::Invalid;
  result.detail = "not in value set " + std::string(value_set);
  return result;
}

CodeCheck Terminology::checkCodeSystem(std::string_view system, std::string_view code, std::string_view display) {
  std::lock_guard lock(mutex_);
  CodeCheck result;
  const CodeSystemIndex* cs = codeSystem(system);
  if (!cs) {
    result.detail = "code system " + std::string(system) + " is not available locally";
    return result;
  }
  auto it = cs->concepts.find(code);
  if (it == cs->concepts.end()) {
    if (!cs->complete) {
      result.detail = "code system " + std::string(system) + " is only partly available locally";
      return result;
    }
    result.status = CodeStatus::Invalid;
    result.detail = "unknown code '" + std::string(code) + "' in code system " + std::string(system);
    return result;
  }
  result.status = CodeStatus::Valid;
  result.expected_display = it->second.display;
  if (!display.empty() && !it->second.display.empty() && display != it->second.display) {
    bool ok = false;
    for (const auto& d : it->second.designations) ok = ok || d == display;
    result.display_mismatch = !ok;
  }
  return result;
}

tl::expected<bool, std::string> Terminology::subsumes(std::string_view system, std::string_view ancestor,
                                                      std::string_view descendant) {
  std::lock_guard lock(mutex_);
  const CodeSystemIndex* cs = codeSystem(system);
  if (!cs || (!cs->complete && cs->concepts.empty())) {  // absent, or content = not-present (SNOMED CT in R4 core)
    return tl::make_unexpected("code system " + std::string(system) + " is not available locally");
  }
  for (std::string_view code : {ancestor, descendant}) {
    if (cs->concepts.find(code) != cs->concepts.end()) continue;
    if (!cs->complete) {
      return tl::make_unexpected("code '" + std::string(code) + "' is not in the locally available part of code system " +
                                 std::string(system));
    }
    return tl::make_unexpected("unknown code '" + std::string(code) + "' in code system " + std::string(system));
  }
  if (ancestor == descendant) return true;
  // Upwards from the descendant along is-a links (bounded by the number of concepts: cycles end).
  std::unordered_set<std::string_view> seen{descendant};
  std::vector<std::string_view> todo{descendant};
  while (!todo.empty()) {
    auto it = cs->concepts.find(todo.back());
    todo.pop_back();
    if (it == cs->concepts.end()) continue;
    const auto& links = cs->nesting_is_a ? it->second.parents : it->second.subsumed_by;
    for (const std::string& up : links) {
      if (up == ancestor) return true;
      if (seen.insert(up).second) todo.push_back(up);
    }
  }
  if (!cs->complete) {
    return tl::make_unexpected("code system " + std::string(system) +
                               " is only partly available locally: cannot rule out that '" + std::string(ancestor) +
                               "' subsumes '" + std::string(descendant) + "'");
  }
  return false;
}

long Terminology::expansionSize(std::string_view value_set) {
  std::lock_guard lock(mutex_);
  const Expansion* e = expand(value_set, 0);
  return e->usable ? static_cast<long>(e->codes.size()) : -1;
}

}  // namespace medicus::profiles
