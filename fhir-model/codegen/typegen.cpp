// Build-time generator: reads the R4 core StructureDefinitions (specialisations of kind primitive-type,
// complex-type and resource) from a FHIR package folder and writes a C++ file holding the compact type
// model as text, which type_model.cpp parses on first use.
//
// Line format (one per line, '|' separated):
//   T|name|kind(P,C,R,B)|abstract(0/1)|base|json(S,N,B)
//   E|name|path|min|max(* or n)|flags(c=choice,a=xmlAttr,m=modifier,s=summary)|type,type,...
// E lines follow the T line of the type that owns them, in definition order.
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Element {
  std::string name, path, max, flags;
  int min = 0;
  std::vector<std::string> types;
};
struct Type {
  std::string name, kind, base, json = "S";
  bool is_abstract = false;
  std::vector<Element> elements;
};

std::string lastSegment(const std::string& s, char sep) {
  auto pos = s.rfind(sep);
  return pos == std::string::npos ? s : s.substr(pos + 1);
}

std::string stripChoice(std::string s) {
  if (s.size() > 3 && s.compare(s.size() - 3, 3, "[x]") == 0) s.resize(s.size() - 3);
  return s;
}

// "Questionnaire.item.enableWhen[x]" -> "Questionnaire.item.enableWhen" (no [x] inside backbone names)
std::string normalisePath(const std::string& path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path.compare(i, 3, "[x]") == 0) { i += 3; continue; }
    out += path[i++];
  }
  return out;
}

// The FHIR type of an element type entry: the code, or for System.* codes the fhir-type extension.
std::string typeCode(const rapidjson::Value& type) {
  std::string code = type["code"].GetString();
  if (code.rfind("http://hl7.org/fhirpath/System.", 0) == 0) {
    if (type.HasMember("extension")) {
      for (const auto& ext : type["extension"].GetArray()) {
        if (std::string(ext["url"].GetString()) ==
                "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type" &&
            ext.HasMember("valueUrl")) {
          return ext["valueUrl"].GetString();
        }
      }
    }
    return "string";
  }
  return code;
}

std::string jsonKindOf(const rapidjson::Value& type) {
  std::string code = type["code"].GetString();
  if (code == "http://hl7.org/fhirpath/System.Boolean") return "B";
  if (code == "http://hl7.org/fhirpath/System.Integer" || code == "http://hl7.org/fhirpath/System.Decimal") return "N";
  return "S";
}

bool loadJson(const fs::path& file, rapidjson::Document& doc) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  doc.Parse(text.c_str(), text.size());
  return !doc.HasParseError() && doc.IsObject();
}

void convert(const rapidjson::Document& sd, std::map<std::string, Type>& types) {
  std::string kind = sd["kind"].GetString();
  std::string type_name = sd["type"].GetString();
  Type root;
  root.name = type_name;
  root.kind = kind == "primitive-type" ? "P" : kind == "complex-type" ? "C" : "R";
  root.is_abstract = sd.HasMember("abstract") && sd["abstract"].GetBool();
  root.base = sd.HasMember("baseDefinition") ? lastSegment(sd["baseDefinition"].GetString(), '/') : "";
  const auto& elements = sd["snapshot"]["element"];

  // Paths that have children in the snapshot are backbone types of their own.
  std::set<std::string> parents;
  for (const auto& e : elements.GetArray()) {
    std::string path = normalisePath(e["path"].GetString());
    auto dot = path.rfind('.');
    if (dot != std::string::npos) parents.insert(path.substr(0, dot));
  }

  std::map<std::string, Type*> owners;
  owners[type_name] = &root;
  std::vector<Type> backbones;
  backbones.reserve(parents.size());
  for (const auto& e : elements.GetArray()) {
    std::string raw_path = e["path"].GetString();
    std::string path = normalisePath(raw_path);
    auto dot = path.rfind('.');
    if (dot == std::string::npos) continue;  // the root element
    std::string owner_path = path.substr(0, dot);
    auto owner_it = owners.find(owner_path);
    if (owner_it == owners.end()) continue;
    Type* owner = owner_it->second;

    std::string name = stripChoice(lastSegment(raw_path, '.'));
    if (root.kind == "P" && owner == &root && name == "value") {
      if (e.HasMember("type") && e["type"].Size() > 0) root.json = jsonKindOf(e["type"][0]);
      continue;  // a primitive's value is the node's value, not a child element
    }
    Element el;
    el.name = name;
    el.path = raw_path;
    el.min = e.HasMember("min") ? e["min"].GetInt() : 0;
    el.max = e.HasMember("max") ? e["max"].GetString() : "1";
    if (raw_path.size() > 3 && raw_path.compare(raw_path.size() - 3, 3, "[x]") == 0) el.flags += 'c';
    if (e.HasMember("representation")) {
      for (const auto& r : e["representation"].GetArray()) {
        if (std::string(r.GetString()) == "xmlAttr") el.flags += 'a';
      }
    }
    if (e.HasMember("isModifier") && e["isModifier"].GetBool()) el.flags += 'm';
    if (e.HasMember("isSummary") && e["isSummary"].GetBool()) el.flags += 's';

    if (e.HasMember("contentReference")) {
      std::string ref = e["contentReference"].GetString();
      el.types.push_back(normalisePath(ref.substr(ref.find('#') + 1)));
    } else if (parents.count(path) && e.HasMember("type")) {
      // An element with children of its own: a backbone type named after its path.
      Type bb;
      bb.name = path;
      bb.kind = "B";
      bb.base = typeCode(e["type"][0]);  // BackboneElement or Element
      backbones.push_back(std::move(bb));
      owners[path] = &backbones.back();
      el.types.push_back(path);
    } else if (e.HasMember("type")) {
      for (const auto& t : e["type"].GetArray()) el.types.push_back(typeCode(t));
    }
    owner->elements.push_back(std::move(el));
  }
  types[root.name] = std::move(root);
  for (auto& bb : backbones) types[bb.name] = std::move(bb);
}

std::string escapeForLiteral(const std::string& line) {
  std::string out;
  for (char c : line) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fhir_typegen CORE_PACKAGE_DIR OUTPUT.cpp\n";
    return 2;
  }
  fs::path dir = argv[1];
  std::map<std::string, Type> types;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string file = entry.path().filename().string();
    if (file.rfind("StructureDefinition-", 0) != 0 || entry.path().extension() != ".json") continue;
    rapidjson::Document sd;
    if (!loadJson(entry.path(), sd)) {
      std::cerr << "fhir_typegen: cannot parse " << entry.path() << "\n";
      return 1;
    }
    if (!sd.HasMember("kind") || !sd.HasMember("snapshot") || !sd.HasMember("type")) continue;
    std::string kind = sd["kind"].GetString();
    if (kind != "primitive-type" && kind != "complex-type" && kind != "resource") continue;
    std::string derivation = sd.HasMember("derivation") ? sd["derivation"].GetString() : "specialization";
    if (derivation != "specialization") continue;
    convert(sd, types);
    ++count;
  }
  if (count < 150) {
    std::cerr << "fhir_typegen: only " << count << " type definitions found in " << dir << "\n";
    return 1;
  }
  // JSON representation by type (json.html#primitive): the numeric types derive from integer/decimal,
  // whose value elements alone name System.Integer/Decimal in the definitions.
  for (auto& [name, t] : types) {
    if (t.kind != "P") continue;
    for (const Type* b = &t; b != nullptr;) {
      if (b->name == "integer" || b->name == "decimal") t.json = "N";
      if (b->name == "boolean") t.json = "B";
      auto it = types.find(b->base);
      b = it == types.end() ? nullptr : &it->second;
    }
  }
  std::ostringstream out;
  out << "// Generated by fhir_typegen from " << dir.string() << " - do not edit.\n";
  out << "namespace medicus::fhir::generated {\nextern const char kTypeModelText[] =\n";
  for (const auto& [name, t] : types) {
    std::string line = "T|" + t.name + "|" + t.kind + "|" + (t.is_abstract ? "1" : "0") + "|" + t.base + "|" + t.json;
    out << "\"" << escapeForLiteral(line) << "\\n\"\n";
    for (const auto& e : t.elements) {
      std::string types_joined;
      for (size_t i = 0; i < e.types.size(); ++i) types_joined += (i ? "," : "") + e.types[i];
      line = "E|" + e.name + "|" + e.path + "|" + std::to_string(e.min) + "|" + e.max + "|" + e.flags + "|" + types_joined;
      out << "\"" << escapeForLiteral(line) << "\\n\"\n";
    }
  }
  out << ";\n}  // namespace medicus::fhir::generated\n";
  fs::create_directories(fs::path(argv[2]).parent_path());
  std::ofstream file(argv[2], std::ios::binary);
  file << out.str();
  return file ? 0 : 1;
}
