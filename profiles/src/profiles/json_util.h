#pragma once
// Small helpers over RapidJSON values of definitions. Definitions are parsed with numbers kept as
// strings so decimals keep their exact text ("1.50") and compare like FHIR primitive values.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace medicus::profiles {

inline constexpr unsigned kJsonParseFlags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;

inline std::string_view str(const rapidjson::Value& v) {
  return v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view();
}
inline const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}
inline std::string_view memberStr(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* v = member(object, name);
  return v ? str(*v) : std::string_view();
}
inline const rapidjson::Value* memberArray(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* v = member(object, name);
  return v && v->IsArray() ? v : nullptr;
}
// Numbers arrive as strings (kParseNumbersAsStringsFlag); accept both.
inline bool memberUInt(const rapidjson::Value& object, const char* name, uint32_t& out) {
  const rapidjson::Value* v = member(object, name);
  if (!v) return false;
  if (v->IsUint()) { out = v->GetUint(); return true; }
  if (v->IsString()) {
    char* end = nullptr;
    unsigned long n = std::strtoul(v->GetString(), &end, 10);
    if (end == v->GetString()) return false;
    out = static_cast<uint32_t>(n);
    return true;
  }
  return false;
}
inline bool memberBool(const rapidjson::Value& object, const char* name, bool fallback = false) {
  const rapidjson::Value* v = member(object, name);
  return v && v->IsBool() ? v->GetBool() : fallback;
}

}  // namespace medicus::profiles
