// The hl7v2: config section, read from the same YAML users write.
#include "mllp/intake_config.h"

#include <catch2/catch.hpp>

using namespace medicus::gateway;
using namespace medicus::gateway::mllp;

TEST_CASE("hl7v2 section: listeners, charset policies, delivery routes", "[config]") {
  const std::string yaml = R"(
hl7v2:
  store: { file: data/messages.db }
  listeners:
    - name: mllp-main
      port: 2575
      route: to-fhir
      charset: { mode: force, default: 8859/1 }
      senders:
        - { sender: "RIS|RAD", charset: { mode: trust-msh18, default: UNICODE UTF-8 } }
      accepted_versions: ["2.5"]
      max_message_bytes: 64KiB
      read_timeout: 5s
  delivery:
    - name: to-fhir
      upstream: fhir
      max_attempts: 4
      initial_backoff: 250ms
)";
  GatewayConfig gateway;
  gateway.upstreams.push_back(UpstreamConfig{.name = "fhir"});
  auto config = loadIntakeConfigText(yaml, "gw.yaml", "/etc/medicus", &gateway);
  REQUIRE(config);
  REQUIRE(config->has_value());
  const IntakeConfig& c = **config;
  CHECK(c.store_file == "/etc/medicus/data/messages.db");
  REQUIRE(c.listeners.size() == 1);
  const auto& l = c.listeners[0];
  CHECK(l.policy.listener_name == "mllp-main");
  CHECK(l.port == 2575);
  CHECK(l.policy.charset.mode == medicus::hl7v2::CharsetPolicy::Mode::kForce);
  CHECK(l.policy.charset.default_charset == medicus::hl7v2::Charset::kLatin1);
  REQUIRE(l.policy.senders.size() == 1);
  CHECK(l.policy.senders[0].charset.default_charset == medicus::hl7v2::Charset::kUtf8);
  CHECK(l.policy.accepted_versions == std::vector<std::string>{"2.5"});
  CHECK(l.max_message_bytes == 64 * 1024);
  CHECK(l.read_timeout == std::chrono::milliseconds(5000));
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].retry.max_attempts == 4);
  CHECK(c.routes[0].retry.initial_backoff == std::chrono::milliseconds(250));
}

TEST_CASE("hl7v2 section errors name file, line and what to write", "[config]") {
  const std::string yaml = R"(hl7v2:
  store: { file: m.db }
  listeners:
    - name: a
      route: nowhere
      charset: { mode: guess }
      colour: blue
  delivery:
    - name: r
      upstream: missing
)";
  GatewayConfig gateway;
  auto config = loadIntakeConfigText(yaml, "gw.yaml", "/", &gateway);
  REQUIRE_FALSE(config);
  std::string all;
  for (const auto& e : config.error()) all += formatConfigError(e) + "\n";
  CHECK(all.find("gw.yaml:5:14: listener 'a' delivers to route 'nowhere'") != std::string::npos);
  CHECK(all.find("gw.yaml:6:24: charset mode must be trust-msh18") != std::string::npos);
  CHECK(all.find("gw.yaml:7:7: unknown key 'colour'") != std::string::npos);
  CHECK(all.find("gw.yaml:10:17: delivery route 'r' uses upstream 'missing'") != std::string::npos);
}

TEST_CASE("a config without hl7v2 has no intake", "[config]") {
  auto config = loadIntakeConfigText("listeners: []\n", "gw.yaml", "/", nullptr);
  REQUIRE(config);
  CHECK_FALSE(config->has_value());
}

TEST_CASE("hl7v2 store: a SQLite file or a PostgreSQL connection string, not both", "[config]") {
  GatewayConfig gateway;
  auto pg = loadIntakeConfigText("hl7v2:\n  store: { postgres: \"host=127.0.0.1 dbname=medicus\" }\n", "gw.yaml", "/etc", &gateway);
  REQUIRE(pg);
  REQUIRE(pg->has_value());
  CHECK((*pg)->store_postgres_dsn == "host=127.0.0.1 dbname=medicus");
  CHECK((*pg)->store_file.empty());

  auto both = loadIntakeConfigText("hl7v2:\n  store: { file: m.db, postgres: \"host=x\" }\n", "gw.yaml", "/etc", &gateway);
  REQUIRE_FALSE(both);
  CHECK(formatConfigError(both.error().front()).find("gw.yaml:2:") == 0);

  auto none = loadIntakeConfigText("hl7v2:\n  store: {}\n", "gw.yaml", "/etc", &gateway);
  REQUIRE_FALSE(none);
}

TEST_CASE("an unreachable PostgreSQL store is a clear error", "[config]") {
  IntakeConfig config;
  config.store_postgres_dsn = "host=127.0.0.1 port=1 connect_timeout=2 dbname=none";
  auto store = openIntakeStore(config, true);
  REQUIRE_FALSE(store);
  CHECK(store.error().message.find("postgres") != std::string::npos);
}
