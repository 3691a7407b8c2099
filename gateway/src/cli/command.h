#pragma once
// A subcommand of medicus-gateway. Each lives in its own file (convert_command.cpp, ...) and is listed
// once in main.cpp. Exit codes: 0 success, 1 the input has errors, 2 usage or unusable input.
#include <string_view>
#include <vector>

namespace medicus::gateway::cli {

using Args = std::vector<std::string_view>;  // arguments after the subcommand name

struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `medicus-gateway --help`
  int (*run)(const Args& args);
};

inline constexpr int kExitOk = 0;
inline constexpr int kExitInputErrors = 1;
inline constexpr int kExitUsage = 2;

// Reads a file, or standard input for "-". False (with a message on stderr) when it cannot be read.
bool readInput(std::string_view path, std::string& out);

}  // namespace medicus::gateway::cli
