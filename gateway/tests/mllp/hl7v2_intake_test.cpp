// The HL7 v2 intake of `serve` built from a config file, and its SIGHUP reload: listener policies, maps
// and delivery routes change; a reload that fails keeps what runs and says why.
#include "mllp/hl7v2_intake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "mllp_test_support.h"

using namespace medicus::gateway;
using namespace medicus::gateway::mllp;
using namespace medicus::gateway::mllp::testing;
using namespace std::chrono_literals;

namespace {

int unusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The gateway part (an upstream nobody listens on, so deliveries fail and are counted as retries) and an
// hl7v2 section with one listener and one delivery route.
std::string configText(const TempDir& dir, int upstream_port, const std::string& charset, const std::string& maps,
                       const std::string& listener_extra = "") {
  return "listeners: [{ name: http, port: 0 }]\n"
         "upstreams: [{ name: fhir, endpoints: [http://127.0.0.1:" + std::to_string(upstream_port) +
         "/fhir], connect_timeout: 200ms }]\n"
         "routes: [{ name: r, forward: { upstream: fhir } }]\n"
         "hl7v2:\n"
         "  store: { file: " + (dir.path / "messages.db").string() + " }\n"
         "  listeners:\n"
         "    - name: mllp-a\n"
         "      port: 0\n"
         "      route: to-fhir\n"
         "      charset: { mode: force, default: " + charset + " }\n" + listener_extra +
         "  delivery:\n"
         "    - name: to-fhir\n"
         "      upstream: fhir\n" +
         (maps.empty() ? std::string() : "      maps: " + maps + "\n") +
         "      poll_interval: 50ms\n"
         "      initial_backoff: 30s\n";
}

std::shared_ptr<const GatewayConfig> gatewayConfig(const std::string& path) {
  auto config = loadConfig(path);
  if (!config) {
    std::string text;
    for (const auto& e : config.error()) text += formatConfigError(e) + "\n";
    FAIL(text);
  }
  return *config;
}

// MSA-1 of the ACK to `message` on a fresh connection.
std::string ackCode(uint16_t port, const std::string& message) {
  MllpTestClient client(port, 5s);
  REQUIRE(client.connected());
  REQUIRE(client.sendMessage(message));
  auto ack = client.receiveFrame();
  REQUIRE(ack);
  return msaCode(*ack);
}

std::string latin1(std::string text) {
  for (size_t at; (at = text.find("\xC3\xBC")) != std::string::npos;) text.replace(at, 2, "\xFC");
  return text;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

}  // namespace

TEST_CASE("hl7v2 reload: listener charset policy, maps and delivery routes change on reload", "[mllp][reload]") {
  TempDir dir;
  const int upstream_port = unusedPort();
  const std::string maps = std::string(MEDICUS_SOURCE_DIR) + "/mappers/maps";
  const std::string path = (dir.path / "gateway.yaml").string();
  std::ofstream(path) << configText(dir, upstream_port, "UNICODE UTF-8", "");
  std::mutex log_mutex;
  std::string log;
  auto sink = [&](std::string_view line) {
    std::lock_guard lock(log_mutex);
    log.append(line).append("\n");
  };
  auto logText = [&] {
    std::lock_guard lock(log_mutex);
    return log;
  };
  auto intake = Hl7v2Intake::start(path, gatewayConfig(path), sink);
  REQUIRE(intake);
  const uint16_t port = intake->port("mllp-a");
  const std::string attempts = "medicus_hl7v2_delivery_attempts_total{result=\"retry\",route=\"to-fhir\"}";

  // Forced UTF-8: Latin-1 bytes are a content error; an ASCII message is stored, but the route has no
  // maps, so nothing is delivered.
  CHECK(ackCode(port, latin1(adtMessage("R1"))) == "AE");
  CHECK(ackCode(port, adtMessage("R2", "4712")) == "AA");
  std::this_thread::sleep_for(300ms);
  CHECK(intake->metricsText().find(attempts) == std::string::npos);

  // Reload: Latin-1 forced and the shipped maps. The same bytes are now accepted, and the delivery
  // maps and posts the stored messages (the upstream is down: retries are counted).
  std::ofstream(path) << configText(dir, upstream_port, "8859/1", maps);
  REQUIRE(intake->reload(path, gatewayConfig(path)));
  CHECK(ackCode(port, latin1(adtMessage("R3", "4713"))) == "AA");
  CHECK(eventually([&] { return intake->metricsText().find(attempts) != std::string::npos; }, 5s));
  CHECK_THAT(logText(), Catch::Contains("hl7v2 reload: listener policies, maps and 1 delivery route(s) active"));

  // A map folder with an error: the reload is refused with the reason, the running policy stays.
  std::filesystem::create_directories(dir.path / "bad-maps");
  std::ofstream(dir.path / "bad-maps" / "adt.yaml") << "messages: [this is not closed\n";
  std::ofstream(path) << configText(dir, upstream_port, "UNICODE UTF-8", (dir.path / "bad-maps").string());
  CHECK_FALSE(intake->reload(path, gatewayConfig(path)));
  CHECK_THAT(logText(), Catch::Contains("hl7v2 reload failed; keeping the running listeners, maps and delivery routes") &&
                            Catch::Contains("delivery route to-fhir: maps in"));
  CHECK(ackCode(port, latin1(adtMessage("R4", "4714"))) == "AA");  // still 8859/1

  // A config error in the hl7v2 section: refused with file:line.
  std::ofstream(path) << configText(dir, upstream_port, "KOI8-R", maps);
  CHECK_FALSE(intake->reload(path, gatewayConfig(path)));
  CHECK_THAT(logText(), Catch::Contains("gateway.yaml:") && Catch::Contains("unknown charset 'KOI8-R'"));
  CHECK(ackCode(port, latin1(adtMessage("R5", "4715"))) == "AA");

  // What a reload cannot change is named: the listener's port and limits need a restart.
  std::ofstream(path) << configText(dir, upstream_port, "8859/1", maps, "      max_message_bytes: 1MiB\n");
  REQUIRE(intake->reload(path, gatewayConfig(path)));
  CHECK_THAT(logText(), Catch::Contains("mllp listener mllp-a: size limit and timeout changes take effect after a restart"));
  CHECK(intake->port("mllp-a") == port);
}
