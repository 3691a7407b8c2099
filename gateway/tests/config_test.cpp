#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "medicus/gateway/config.h"
#include "medicus/gateway/resource_validator.h"

using namespace medicus::gateway;

namespace {

auto load(const std::string& yaml) { return loadConfigText(yaml, "test.yaml", "/etc/medicus"); }

std::string allErrors(const ConfigErrors& errors) {
  std::string out;
  for (const auto& e : errors) out += formatConfigError(e) + "\n";
  return out;
}

const char* kMinimal = R"(listeners:
  - name: main
    protocol: http
    port: 0
upstreams:
  - name: fhir
    endpoints: [http://127.0.0.1:8103/fhir/]
routes:
  - name: all
    match: { path_prefix: /fhir, methods: [get, POST] }
    forward: { upstream: fhir }
)";

}  // namespace

TEST_CASE("a minimal config loads with defaults and normalised values") {
  auto config = load(kMinimal);
  REQUIRE(config);
  const GatewayConfig& c = **config;
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].protocol == ListenerProtocol::Http);
  CHECK(c.listeners[0].limits.max_body_bytes == (10u << 20));
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].endpoints[0].host == "127.0.0.1");
  CHECK(c.upstreams[0].endpoints[0].port == 8103);
  CHECK(c.upstreams[0].endpoints[0].base_path == "/fhir");
  CHECK(c.upstreams[0].endpoints[0].url() == "http://127.0.0.1:8103/fhir");
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].match.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(c.routes[0].upstream == "fhir");
}

TEST_CASE("unknown keys are errors with position and a did-you-mean hint") {
  std::string yaml = kMinimal;
  yaml.replace(yaml.find("    port: 0"), 11, "    prot: 0");
  auto config = load(yaml);
  REQUIRE_FALSE(config);
  REQUIRE(config.error().size() == 1);
  const ConfigError& e = config.error()[0];
  CHECK(e.file == "test.yaml");
  CHECK(e.line == 4);
  CHECK(e.column == 5);
  CHECK_THAT(e.message, Catch::Contains("unknown key 'prot'") && Catch::Contains("did you mean 'port'"));
}

TEST_CASE("all errors are collected / each with its line") {
  auto config = load(R"(listeners:
  - name: main
    protocol: htps
    port: 70000
upstreams:
  - name: fhir
    endpoints: [ftp://x]
    connect_timeout: soon
routes:
  - name: all
    match: { path_prefix: fhir, methods: [FETCH] }
    forward: { upstream: fihr }
)");
  REQUIRE_FALSE(config);
  std::string text = allErrors(config.error());
  CHECK_THAT(text, Catch::Contains("test.yaml:3:15: protocol must be http or https"));
  CHECK_THAT(text, Catch::Contains("test.yaml:4:11: 'port' must be a whole number from 0 to 65535"));
  CHECK_THAT(text, Catch::Contains("test.yaml:7:16: endpoint 'ftp://x' is not an http:// or https:// URL"));
  CHECK_THAT(text, Catch::Contains("test.yaml:8:22: 'connect_timeout' must be a positive duration"));
  CHECK_THAT(text, Catch::Contains("path_prefix must start with '/'"));
  CHECK_THAT(text, Catch::Contains("unknown HTTP method 'FETCH'"));
  CHECK_THAT(text, Catch::Contains("upstream 'fihr', which is not defined; did you mean 'fhir'? Known upstreams: fhir"));
}

TEST_CASE("https listeners need tls / mTLS needs a CA / relative paths resolve against the config folder") {
  auto missing = load(R"(listeners:
  - { name: secure, protocol: https, port: 0 }
upstreams: [{ name: u, endpoints: [http://127.0.0.1:1/] }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE_FALSE(missing);
  CHECK_THAT(allErrors(missing.error()), Catch::Contains("is https but has no 'tls:'"));

  auto mtls = load(R"(listeners:
  - name: secure
    protocol: https
    tls: { certificate: tls/a.crt, private_key: tls/a.key, require_client_certificate: true }
upstreams: [{ name: u, endpoints: [http://127.0.0.1:1/] }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE_FALSE(mtls);
  CHECK_THAT(allErrors(mtls.error()), Catch::Contains("require_client_certificate needs 'client_ca:'"));

  auto ok = load(R"(listeners:
  - name: secure
    protocol: https
    tls: { certificate: tls/a.crt, private_key: /abs/a.key, client_ca: ca.pem, require_client_certificate: true }
upstreams: [{ name: u, endpoints: [http://127.0.0.1:1/] }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE(ok);
  CHECK((*ok)->listeners[0].tls->certificate_file == "/etc/medicus/tls/a.crt");
  CHECK((*ok)->listeners[0].tls->private_key_file == "/abs/a.key");
}

TEST_CASE("upstream tls: verification and session reuse on by default, both can be turned off") {
  auto on = load(R"(listeners: [{ name: main, protocol: http }]
upstreams: [{ name: u, endpoints: [https://127.0.0.1:1/], tls: { ca: ca.pem } }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE(on);
  CHECK((*on)->upstreams[0].tls.verify);
  CHECK((*on)->upstreams[0].tls.session_reuse);
  CHECK((*on)->upstreams[0].tls.ca_file == "/etc/medicus/ca.pem");
  auto off = load(R"(listeners: [{ name: main, protocol: http }]
upstreams: [{ name: u, endpoints: [https://127.0.0.1:1/], tls: { verify: false, session_reuse: false } }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE(off);
  CHECK_FALSE((*off)->upstreams[0].tls.verify);
  CHECK_FALSE((*off)->upstreams[0].tls.session_reuse);
  auto wrong = load(R"(listeners: [{ name: main, protocol: http }]
upstreams: [{ name: u, endpoints: [https://127.0.0.1:1/], tls: { session_reuse: maybe } }]
routes: [{ name: r, forward: { upstream: u } }]
)");
  REQUIRE_FALSE(wrong);
  CHECK_THAT(allErrors(wrong.error()), Catch::Contains("session_reuse"));
}

TEST_CASE("upstream resolve_ttl: 30s by default, 0 for a lookup per connection, a bad value named") {
  auto upstream = [](const std::string& extra) {
    return load("listeners: [{ name: main, protocol: http }]\nupstreams: [{ name: u, endpoints: [http://fhir.internal:8080/]" +
                extra + " }]\nroutes: [{ name: r, forward: { upstream: u } }]\n");
  };
  auto plain = upstream("");
  REQUIRE(plain);
  CHECK((*plain)->upstreams[0].resolve_ttl == Millis(30'000));
  auto every = upstream(", resolve_ttl: 0s");
  REQUIRE(every);
  CHECK((*every)->upstreams[0].resolve_ttl == Millis(0));
  auto five = upstream(", resolve_ttl: 5m");
  REQUIRE(five);
  CHECK((*five)->upstreams[0].resolve_ttl == Millis(300'000));
  auto wrong = upstream(", resolve_ttl: soon");
  REQUIRE_FALSE(wrong);
  CHECK_THAT(allErrors(wrong.error()), Catch::Contains("test.yaml:2:"));
  CHECK_THAT(allErrors(wrong.error()), Catch::Contains("'resolve_ttl' must be a duration such as 0s, 30s or 5m (0: a lookup for every new connection)"));
  // Elsewhere 0 stays an error.
  auto zero_timeout = upstream(", connect_timeout: 0s");
  REQUIRE_FALSE(zero_timeout);
  CHECK_THAT(allErrors(zero_timeout.error()), Catch::Contains("'connect_timeout' must be a positive duration"));
}

TEST_CASE("stages are checked at load time") {
  std::string base = R"(listeners: [{ name: l, port: 0 }]
upstreams: [{ name: u, endpoints: [http://127.0.0.1:1/] }]
routes:
  - name: r
    stages:
)";
  SECTION("unknown stage names get a hint") {
    auto config = load(base + "      - validat: { mode: off }\n    forward: { upstream: u }\n");
    REQUIRE_FALSE(config);
    CHECK_THAT(allErrors(config.error()), Catch::Contains("test.yaml:6:9: unknown stage 'validat'; did you mean 'validate'? Known stages: "));
  }
  SECTION("unknown stage options are errors") {
    auto config = load(base + "      - validate: { mode: off, profile: [x] }\n    forward: { upstream: u }\n");
    REQUIRE_FALSE(config);
    CHECK_THAT(allErrors(config.error()), Catch::Contains("unknown key 'profile'") && Catch::Contains("did you mean 'profiles'"));
  }
  SECTION("validation without a wired validator is an honest config error") {
    if (resourceValidatorProvider()) return;  // a validator is linked in: nothing to check here
    auto config = load(base + "      - validate: { mode: enforce, profiles: [http://x/P] }\n    forward: { upstream: u }\n");
    REQUIRE_FALSE(config);
    CHECK_THAT(allErrors(config.error()), Catch::Contains("validation is not available in this build yet"));
  }
  SECTION("mode off and require-client load") {
    auto config = load(base + "      - validate: { mode: off }\n      - require-client: { clients: [kis] }\n    forward: { upstream: u }\n");
    REQUIRE(config);
    REQUIRE((*config)->routes[0].stages.size() == 2);
    CHECK((*config)->routes[0].stages[1].name == "require-client");
  }
}

TEST_CASE("durations and sizes") {
  CHECK(parseDuration("250ms") == Millis(250));
  CHECK(parseDuration("10s") == Millis(10'000));
  CHECK(parseDuration("2m") == Millis(120'000));
  CHECK(parseDuration("15") == Millis(15));
  CHECK_FALSE(parseDuration("10 s"));
  CHECK_FALSE(parseDuration("-1s"));
  CHECK(parseByteSize("16KiB") == 16384u);
  CHECK(parseByteSize("10MiB") == (10u << 20));
  CHECK_FALSE(parseByteSize("lots"));
}

TEST_CASE("broken YAML and missing files are reported with a position or the path") {
  auto broken = load("listeners: [ { name: x\n");
  REQUIRE_FALSE(broken);
  CHECK(broken.error()[0].line >= 1);
  CHECK_THAT(broken.error()[0].message, Catch::Contains("not valid YAML"));
  auto missing = loadConfig("/nonexistent/gateway.yaml");
  REQUIRE_FALSE(missing);
  CHECK_THAT(formatConfigError(missing.error()[0]), Catch::StartsWith("/nonexistent/gateway.yaml: cannot open"));
}

TEST_CASE("the shipped sample configs load") {
  for (const char* name : {"default.yaml", "gateway.yaml"}) {
    std::string path = std::string(MEDICUS_SOURCE_DIR) + "/gateway/config/" + name;
    if (!std::filesystem::exists(path)) continue;
    INFO(path);
    auto config = loadConfig(path);
    if (!config) FAIL(allErrors(config.error()));
  }
}

TEST_CASE("the hl7v2 section belongs to the MLLP intake and is not an unknown key") {
  std::string yaml = std::string(kMinimal) + "hl7v2:\n  listeners: []\n";
  REQUIRE(load(yaml));
  CHECK_FALSE(load(std::string(kMinimal) + "hl7: {}\n"));
}

TEST_CASE("a reload names the listener changes that wait for a restart") {
  auto config = [](const std::string& listeners) {
    auto loaded = load("listeners:\n" + listeners +
                       "upstreams:\n  - { name: fhir, endpoints: [http://fhir:8080/fhir] }\n"
                       "routes:\n  - { name: fhir, match: { path_prefix: /fhir }, forward: { upstream: fhir } }\n");
    REQUIRE(loaded);
    return *loaded;
  };
  const std::string main = "  - { name: main, protocol: http, address: 127.0.0.1, port: 8080 }\n";
  auto running = config(main);
  CHECK(listenerChangesNeedingRestart(*running, *config(main)).empty());
  CHECK(listenerChangesNeedingRestart(
            *running, *config("  - { name: main, protocol: http, address: 127.0.0.2, port: 8081, limits: { max_body_bytes: 1MiB } }\n")) ==
        std::vector<std::string>{"listener 'main': address, port"});
  // What the reload applies to a listener that stays is not a change that waits.
  CHECK(listenerChangesNeedingRestart(
            *running, *config("  - { name: main, protocol: http, address: 127.0.0.1, port: 8080, admin_endpoints: false, "
                              "limits: { max_body_bytes: 1MiB } }\n"))
            .empty());
  CHECK(listenerChangesNeedingRestart(*running, *config("  - { name: other, protocol: http, address: 127.0.0.1, port: 8080 }\n")) ==
        std::vector<std::string>{"listener 'other': added", "listener 'main': removed"});
  CHECK(listenerChangesNeedingRestart(*running, *config(main + "  - { name: admin, protocol: http, address: 127.0.0.1, port: 9090, "
                                                                "admin_endpoints: false }\n")) ==
        std::vector<std::string>{"listener 'admin': added"});
}
