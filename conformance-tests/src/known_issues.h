#pragma once
// Lists of cases known to fail for reasons outside our code (broken upstream data, or a documented
// disagreement), one per line: "<case id><whitespace><reason>"; '#' starts a comment line.
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace medicus::conformance {

class KnownIssues {
 public:
  static KnownIssues load(const std::filesystem::path& file) {
    KnownIssues k;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto split = line.find_first_of(" \t");
      std::string id = line.substr(0, split);
      std::string reason = split == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", split));
      k.reasons_[id] = reason;
    }
    return k;
  }
  std::optional<std::string> reasonFor(const std::string& id) const {
    auto it = reasons_.find(id);
    if (it == reasons_.end()) return std::nullopt;
    return it->second;
  }
  size_t size() const { return reasons_.size(); }

 private:
  std::map<std::string, std::string> reasons_;
};

}  // namespace medicus::conformance
