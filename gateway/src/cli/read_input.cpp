#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "cli/command.h"

namespace medicus::gateway::cli {

bool readInput(std::string_view path, std::string& out) {
  if (path == "-") {
    out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) {
    std::fprintf(stderr, "cannot read %.*s: %s\n", static_cast<int>(path.size()), path.data(), std::strerror(errno));
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace medicus::gateway::cli
