// medicus-gateway: one executable, one subcommand per job.
#include <cstdio>
#include <exception>
#include <string_view>

#include "cli/command.h"

namespace medicus::gateway::cli {
int runConvert(const Args& args);
int runFhirpath(const Args& args);
int runServe(const Args& args);
int runCheckConfig(const Args& args);
int runReplay(const Args& args);
int runValidate(const Args& args);
}  // namespace medicus::gateway::cli

namespace {
using medicus::gateway::cli::Command;

// Every subcommand, listed once. Keep the summaries in step with README.md.
constexpr Command kCommands[] = {
    {"convert", "convert FHIR between JSON and XML (and HL7v2 to FHIR)", medicus::gateway::cli::runConvert},
    {"fhirpath", "evaluate a FHIRPath expression on a FHIR resource, print the result as typed JSON", medicus::gateway::cli::runFhirpath},
    {"serve", "run the FHIR gateway (HTTP/HTTPS listeners, routes, upstreams)", medicus::gateway::cli::runServe},
    {"validate", "validate FHIR resources against R4 core, meta.profile and given profiles (packages, snapshots, terminology)", medicus::gateway::cli::runValidate},
    {"replay", "put stored HL7v2 messages back into the delivery queue (dead letters, or one by id)", medicus::gateway::cli::runReplay},
    {"check-config", "check a gateway config file and print every error with file:line:column", medicus::gateway::cli::runCheckConfig},
};

void printUsage(std::FILE* out) {
  std::fprintf(out, "usage: medicus-gateway <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) {
    std::fprintf(out, "  %-14.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  }
  std::fprintf(out, "\n`medicus-gateway <command> --help` describes each command.\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    printUsage(stderr);
    return medicus::gateway::cli::kExitUsage;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    printUsage(stdout);
    return 0;
  }
  medicus::gateway::cli::Args args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (c.name == name) {
      try {
        return c.run(args);
      } catch (const std::exception& e) {
        // Last resort: commands report errors as values; anything reaching here is our bug.
        std::fprintf(stderr, "medicus-gateway %s: internal error: %s\n", argv[1], e.what());
        return 70;
      }
    }
  }
  std::fprintf(stderr, "medicus-gateway: unknown command '%s'\n\n", argv[1]);
  printUsage(stderr);
  return medicus::gateway::cli::kExitUsage;
}
