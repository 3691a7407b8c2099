// medicus-gateway replay [--config FILE] (--dead-letters | --id N): puts stored HL7 v2 messages back
// into the delivery queue. Safe while the gateway runs (SQLite WAL; in-flight deliveries are left alone).
#include <charconv>
#include <cstdio>
#include <string>

#include "cli/command.h"
#include "medicus/gateway/config.h"

#ifdef MEDICUS_HAVE_HL7V2_INTAKE
#include "medicus/gateway/store/sqlite_message_store.h"
#include "mllp/intake_config.h"
#include "mllp/mllp_message_handler.h"
#endif

namespace medicus::gateway::cli {

int runReplay(const Args& args) {
  constexpr const char* kUsage =
      "usage: medicus-gateway replay [--config FILE.yaml] (--dead-letters | --id N)\n\n"
      "Puts stored HL7 v2 messages back into the delivery queue of the store named in the config's\n"
      "hl7v2: store: section: every dead letter, or one message (dead or delivered) by id. Attempts start\n"
      "again from zero. The running gateway picks them up at its next poll.\n";
  std::string config_path = "gateway.yaml";
  bool dead_letters = false;
  long long id = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = std::string(args[++i]);
    } else if (args[i] == "--dead-letters") {
      dead_letters = true;
    } else if (args[i] == "--id" && i + 1 < args.size()) {
      std::string_view v = args[++i];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
      if (ec != std::errc() || end != v.data() + v.size() || id <= 0) {
        std::fprintf(stderr, "replay: --id needs a message id (a positive number), not '%.*s'\n",
                     static_cast<int>(v.size()), v.data());
        return kExitUsage;
      }
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::printf("%s", kUsage);
      return kExitOk;
    } else {
      std::fprintf(stderr, "replay: unknown argument '%.*s'\n\n%s", static_cast<int>(args[i].size()), args[i].data(),
                   kUsage);
      return kExitUsage;
    }
  }
  if (dead_letters == (id > 0)) {
    std::fprintf(stderr, "replay: give exactly one of --dead-letters or --id N\n\n%s", kUsage);
    return kExitUsage;
  }
#ifdef MEDICUS_HAVE_HL7V2_INTAKE
  auto gateway = loadConfig(config_path);
  if (!gateway) {
    for (const auto& e : gateway.error()) std::fprintf(stderr, "%s\n", formatConfigError(e).c_str());
    return kExitUsage;
  }
  auto intake = mllp::loadIntakeConfig(config_path, gateway->get());
  if (!intake) {
    for (const auto& e : intake.error()) std::fprintf(stderr, "%s\n", formatConfigError(e).c_str());
    return kExitUsage;
  }
  if (!*intake) {
    std::fprintf(stderr, "replay: %s has no hl7v2: section, so there is no message store\n", config_path.c_str());
    return kExitUsage;
  }
  auto opened = mllp::openIntakeStore(**intake, /*recover_in_flight=*/false);
  if (!opened) {
    std::fprintf(stderr, "replay: %s\n", opened.error().message.c_str());
    return kExitUsage;
  }
  auto& message_store = **opened;
  auto now = mllp::unixNowMillis();
  if (dead_letters) {
    auto n = message_store.requeueDeadLetters(now);
    if (!n) {
      std::fprintf(stderr, "replay: %s\n", n.error().message.c_str());
      return kExitInputErrors;
    }
    std::printf("replay: %llu dead letter(s) queued again\n", static_cast<unsigned long long>(*n));
    return kExitOk;
  }
  auto done = message_store.requeue(id, now);
  if (!done) {
    std::fprintf(stderr, "replay: %s\n", done.error().message.c_str());
    return kExitInputErrors;
  }
  std::printf("replay: message %lld queued again\n", id);
  return kExitOk;
#else
  std::fprintf(stderr, "replay: this build has no HL7 v2 intake (gateway_mllp was not built)\n");
  return kExitUsage;
#endif
}

}  // namespace medicus::gateway::cli
