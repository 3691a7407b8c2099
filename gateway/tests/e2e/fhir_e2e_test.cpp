// End-to-end: the gateway in-process on 127.0.0.1:0 in front of a real FHIR server
// (scripts/e2e/fhir-server.mjs: @medplum/fhir-router + in-memory repository, JSON only) started by
// the test. Skips with a reason when node or the npm packages are missing.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "e2e/http_test_client.h"
#include "e2e/test_upstream.h"
#include "medicus/fhir/format.h"
#include "medicus/gateway/gateway_server.h"
#include "medicus/gateway/profile_validator_provider.h"

using namespace medicus::gateway;
using namespace medicus::gateway::test;

namespace {

#define REQUIRE_E2E_UPSTREAM()                                              \
  do {                                                                      \
    std::string reason = NodeFhirServer::unavailableReason();               \
    if (!reason.empty()) {                                                  \
      WARN("SKIPPED: " << reason);                                          \
      return;                                                               \
    }                                                                       \
  } while (0)

// For the tests that make certificates with the openssl command.
#define REQUIRE_OPENSSL_COMMAND()                                 \
  do {                                                            \
    if (std::string(MEDICUS_OPENSSL).empty()) {                   \
      WARN("SKIPPED: the openssl command is not installed");      \
      return;                                                     \
    }                                                             \
  } while (0)

using Headers = std::vector<std::pair<std::string, std::string>>;
const Headers kJson = {{"Content-Type", "application/fhir+json"}, {"Accept", "application/fhir+json"}};
const Headers kXml = {{"Content-Type", "application/fhir+xml"}, {"Accept", "application/fhir+xml"}};

// Sends `pieces` on one raw connection, `pause_ms` apart, then reads until the server closes it (10 s at
// most): for heads the HTTP client cannot send (malformed, or cut into timed pieces).
std::string rawExchange(int port, const std::vector<std::string>& pieces, int pause_ms = 0) {
  int fd = connectLoopback(port);
  if (fd < 0) return "connect failed";
  timeval receive_timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
  for (const std::string& piece : pieces) {
    if (&piece != &pieces.front()) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    ::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL);
  }
  std::string reply;
  char chunk[4096];
  for (ssize_t n; (n = ::recv(fd, chunk, sizeof chunk, 0)) > 0;) reply.append(chunk, static_cast<size_t>(n));
  ::close(fd);
  return reply;
}

std::string configYaml(const std::string& upstream_url, const std::string& listener_extra = "",
                       const std::string& upstream_extra = "", const std::string& extra_routes = "") {
  return "server: { workers: 2, access_log: off, drain_timeout: 5s }\n"
         "listeners:\n"
         "  - name: main\n"
         "    protocol: http\n"
         "    address: 127.0.0.1\n"
         "    port: 0\n" +
         listener_extra +
         "upstreams:\n"
         "  - name: fhir\n"
         "    endpoints: [" + upstream_url + "]\n"
         "    connect_timeout: 1s\n"
         "    response_timeout: 5s\n" +
         upstream_extra +
         "routes:\n" + extra_routes +
         "  - name: fhir\n"
         "    match: { path_prefix: /fhir, methods: [GET, POST, PUT, DELETE, PATCH] }\n"
         "    forward: { upstream: fhir }\n";
}

// The line /metrics has for `count` connections opened to upstream "fhir" with handshake `tls`.
std::string connectionsOpenedLine(const std::string& tls, int count) {
  return "medicus_gateway_upstream_connections_opened_total{tls=\"" + tls + "\",upstream=\"fhir\"} " +
         std::to_string(count) + "\n";
}

// Certificates made at test time with the openssl command (EC P-256, valid for two days), as files
// NAME.key and NAME.crt in dir.
struct TestCertificates {
  std::string dir;
  void run(const std::string& cmd) const { REQUIRE(runCommand(cmd + " >/dev/null 2>&1") == 0); }
  // A self-signed CA.
  void makeCa(const std::string& name, const std::string& cn) const {
    run(std::string(MEDICUS_OPENSSL) + " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=" + cn +
        " -keyout " + dir + "/" + name + ".key -out " + dir + "/" + name + ".crt");
  }
  // A certificate for subject CN=cn signed by the CA named ca; ext: openssl extension lines (none when empty).
  void issue(const std::string& name, const std::string& cn, const std::string& ca, const std::string& ext = "") const {
    const std::string base = dir + "/" + name;
    run(std::string(MEDICUS_OPENSSL) + " req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + cn + " -keyout " + base +
        ".key -out " + base + ".csr");
    std::string sign = std::string(MEDICUS_OPENSSL) + " x509 -req -in " + base + ".csr -CA " + dir + "/" + ca + ".crt -CAkey " + dir + "/" +
                       ca + ".key -CAcreateserial -days 2";
    if (!ext.empty()) {
      std::ofstream(base + ".ext") << ext;
      sign += " -extfile " + base + ".ext";
    }
    run(sign + " -out " + base + ".crt");
  }
};

std::shared_ptr<const GatewayConfig> mustLoad(const std::string& yaml, const std::string& base_dir = "/tmp") {
  auto config = loadConfigText(yaml, "e2e.yaml", base_dir);
  if (!config) {
    std::string text;
    for (const auto& e : config.error()) text += formatConfigError(e) + "\n";
    FAIL(text);
  }
  return *config;
}

struct RunningGateway {
  explicit RunningGateway(std::shared_ptr<const GatewayConfig> config, const std::string& listener = "main",
                          GatewayServer::LogSink log = {})
      : server(std::move(config), std::move(log)) {
    server.start();
    port = server.port(listener);
  }
  ~RunningGateway() {
    server.stop();
    server.wait();
  }
  GatewayServer server;
  int port = 0;
};

std::string idOf(const std::string& json) {
  auto parsed = medicus::fhir::parseJson(json);
  if (!parsed.document) return {};
  auto* id = parsed.document->root()->child("id");
  return id ? std::string(id->value()) : std::string();
}

const char* kPatientJson = R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"4711"}],
  "name":[{"family":"Mustermann","given":["Erika"]}],"gender":"female","birthDate":"1964-08-12"})";

const char* kPatientXml = R"(<Patient xmlns="http://hl7.org/fhir"><name><family value="Schmidt"/><given value="Hans"/></name><gender value="male"/></Patient>)";

}  // namespace

TEST_CASE("e2e: create / read / update / search / history and delete through the gateway (JSON)") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));
  const std::string gateway_base = "http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir";

  HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson);
  REQUIRE(created.ok);
  REQUIRE(created.status == 201);
  std::string id = idOf(created.body);
  REQUIRE_FALSE(id.empty());
  // Location names the gateway, never the upstream.
  CHECK_THAT(created.header("location"), Catch::StartsWith(gateway_base + "/Patient/" + id + "/_history/"));
  CHECK_THAT(created.header("content-type"), Catch::StartsWith("application/fhir+json"));

  HttpReply read = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id, {{"Accept", "application/fhir+json"}});
  REQUIRE(read.status == 200);
  CHECK_THAT(read.body, Catch::Contains("Mustermann"));
  CHECK_THAT(read.header("content-location"), Catch::StartsWith(gateway_base + "/Patient/" + id));
  CHECK_FALSE(read.header("etag").empty());

  std::string updated_body = std::string(kPatientJson);
  updated_body.insert(1, "\"id\":\"" + id + "\",");
  updated_body.replace(updated_body.find("Erika"), 5, "Erika Maria");
  HttpReply updated = httpRequest(gateway.port, "PUT", "/fhir/Patient/" + id, kJson, updated_body);
  REQUIRE(updated.status == 200);
  CHECK_THAT(updated.body, Catch::Contains("Erika Maria"));

  HttpReply search = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Mustermann", {{"Accept", "application/fhir+json"}});
  REQUIRE(search.status == 200);
  CHECK_THAT(search.body, Catch::Contains("\"searchset\""));
  CHECK_THAT(search.body, Catch::Contains("\"fullUrl\":\"" + gateway_base + "/Patient/" + id + "\""));
  CHECK_THAT(search.body, Catch::Contains(gateway_base + "/Patient?family=Mustermann"));
  CHECK(search.body.find(upstream.baseUrl()) == std::string::npos);

  HttpReply post_search = httpRequest(gateway.port, "POST", "/fhir/Patient/_search",
                                      {{"Content-Type", "application/x-www-form-urlencoded"}}, "family=Mustermann");
  REQUIRE(post_search.status == 200);
  CHECK_THAT(post_search.body, Catch::Contains(id));

  HttpReply history = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "/_history", {});
  REQUIRE(history.status == 200);
  CHECK_THAT(history.body, Catch::Contains("\"history\""));
  CHECK_THAT(history.body, Catch::Contains("Erika Maria"));

  HttpReply deleted = httpRequest(gateway.port, "DELETE", "/fhir/Patient/" + id, {});
  CHECK(deleted.status == 200);
  HttpReply gone = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id, {});
  CHECK((gone.status == 410 || gone.status == 404));  // R4 http.html#delete: either is allowed
  CHECK_THAT(gone.body, Catch::Contains("OperationOutcome"));
}

namespace {
std::string versionOf(const std::string& json) {
  auto parsed = medicus::fhir::parseJson(json);
  if (!parsed.document) return {};
  const auto* meta = parsed.document->root()->child("meta");
  const auto* version = meta ? meta->child("versionId") : nullptr;
  return version ? std::string(version->value()) : std::string();
}
}  // namespace

TEST_CASE("e2e: conditional create / update / patch / delete, JSON Patch and FHIRPath Patch, vread, history, operations") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream({"--warm-graphql"});
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));
  const std::string gateway_base = "http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir";
  const std::string identifier = "urn:oid:1.2.3|cond-4711";
  const std::string patient = R"({"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"cond-4711"}],)"
                              R"("name":[{"family":"Bedingt"}],"gender":"unknown"})";

  // Conditional create (If-None-Exist): the first creates, the second finds the match and creates nothing.
  Headers if_none_exist = kJson;
  if_none_exist.emplace_back("If-None-Exist", "identifier=" + identifier);
  HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", if_none_exist, patient);
  REQUIRE(created.ok);
  REQUIRE(created.status == 201);
  const std::string id = idOf(created.body);
  const std::string first_version = versionOf(created.body);
  REQUIRE_FALSE(id.empty());
  REQUIRE_FALSE(first_version.empty());
  HttpReply again = httpRequest(gateway.port, "POST", "/fhir/Patient", if_none_exist, patient);
  CHECK(again.status == 200);
  CHECK(idOf(again.body) == id);

  // Conditional update: PUT [type]?search updates the one match.
  std::string male = patient;
  male.replace(male.find("\"unknown\""), 9, "\"male\"");
  HttpReply updated = httpRequest(gateway.port, "PUT", "/fhir/Patient?identifier=" + identifier, kJson, male);
  REQUIRE(updated.status == 200);
  CHECK(idOf(updated.body) == id);
  CHECK_THAT(updated.body, Catch::Contains("\"gender\":\"male\""));
  CHECK_THAT(updated.header("content-location"), Catch::StartsWith(gateway_base + "/Patient/" + id + "/_history/"));

  // JSON Patch (application/json-patch+json passes through as it is).
  HttpReply json_patch = httpRequest(gateway.port, "PATCH", "/fhir/Patient/" + id,
                                     {{"Content-Type", "application/json-patch+json"}, {"Accept", "application/fhir+json"}},
                                     R"([{"op":"replace","path":"/gender","value":"female"}])");
  REQUIRE(json_patch.status == 200);
  CHECK_THAT(json_patch.body, Catch::Contains("\"gender\":\"female\""));

  // FHIRPath Patch: a Parameters resource; from an XML client it is converted for the JSON-only upstream.
  const char* fhirpath_patch_xml =
      R"(<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="operation"/>)"
      R"(<part><name value="type"/><valueCode value="replace"/></part>)"
      R"(<part><name value="path"/><valueString value="Patient.gender"/></part>)"
      R"(<part><name value="value"/><valueCode value="other"/></part></parameter></Parameters>)";
  HttpReply fhirpath_patch = httpRequest(gateway.port, "PATCH", "/fhir/Patient/" + id, kXml, fhirpath_patch_xml);
  REQUIRE(fhirpath_patch.status == 200);
  CHECK_THAT(fhirpath_patch.body, Catch::StartsWith("<Patient") && Catch::Contains("<gender value=\"other\"/>"));

  // Conditional patch: PATCH [type]?search.
  HttpReply conditional_patch = httpRequest(gateway.port, "PATCH", "/fhir/Patient?identifier=" + identifier,
                                            {{"Content-Type", "application/json-patch+json"}},
                                            R"([{"op":"add","path":"/birthDate","value":"1970-01-01"}])");
  CHECK(conditional_patch.status == 200);
  CHECK_THAT(conditional_patch.body, Catch::Contains("1970-01-01"));

  // vread: the first version is still there as it was.
  HttpReply vread = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "/_history/" + first_version,
                                {{"Accept", "application/fhir+json"}});
  REQUIRE(vread.status == 200);
  CHECK_THAT(vread.body, Catch::Contains("\"gender\":\"unknown\""));
  CHECK(versionOf(vread.body) == first_version);
  HttpReply vread_xml = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "/_history/" + first_version + "?_format=xml", {});
  CHECK_THAT(vread_xml.body, Catch::StartsWith("<Patient") && Catch::Contains(first_version));

  // history: every version (create, update, two patches, conditional patch), newest first, URLs of the gateway.
  HttpReply history = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "/_history", {{"Accept", "application/fhir+json"}});
  REQUIRE(history.status == 200);
  auto parsed_history = medicus::fhir::parseJson(history.body);
  REQUIRE(parsed_history.document);
  size_t versions = 0;
  for (const auto* entry : parsed_history.document->root()->children("entry")) versions += entry != nullptr;
  CHECK(versions == 5);
  CHECK(history.body.find(upstream.baseUrl()) == std::string::npos);
  CHECK_THAT(history.body, Catch::Contains("\"fullUrl\":\"" + gateway_base + "/Patient/" + id));
  // The whole-system history is forwarded too. fhir-router 5.2.13 has no history-system interaction: it
  // takes "_history" for a resource type to search and answers an empty searchset, which comes back as it is.
  HttpReply system_history = httpRequest(gateway.port, "GET", "/fhir/_history", {{"Accept", "application/fhir+xml"}});
  CHECK(system_history.status == 200);
  CHECK_THAT(system_history.body, Catch::StartsWith("<Bundle"));

  // An operation: POST [base]/$graphql (the upstream's GraphQL endpoint), forwarded with its JSON body.
  HttpReply graphql = httpRequest(gateway.port, "POST", "/fhir/$graphql", {{"Content-Type", "application/json"}},
                                  R"({"query":"{ PatientList(identifier: \"cond-4711\") { id gender birthDate } }"})");
  REQUIRE(graphql.status == 200);
  CHECK_THAT(graphql.body, Catch::Contains("\"PatientList\"") && Catch::Contains(id) && Catch::Contains("1970-01-01"));
  // An operation's body need not be a FHIR resource: application/graphql is forwarded, not refused with
  // 415 by the gateway (this upstream reads JSON only and says so itself).
  HttpReply graphql_text = httpRequest(gateway.port, "POST", "/fhir/$graphql", {{"Content-Type", "application/graphql"}},
                                       "{ PatientList { id } }");
  CHECK(graphql_text.status == 415);
  CHECK_THAT(graphql_text.body, Catch::Contains("this server reads JSON only"));
  CHECK(httpRequest(gateway.port, "POST", "/fhir/Patient/$validate", {{"Content-Type", "text/plain"}}, "x").status == 415);
  // An operation the upstream does not implement: its own OperationOutcome, status kept.
  HttpReply unknown_operation = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "/$everything", {});
  CHECK(unknown_operation.status == 404);
  CHECK_THAT(unknown_operation.body, Catch::Contains("OperationOutcome"));

  // Conditional delete: DELETE [type]?search.
  HttpReply deleted = httpRequest(gateway.port, "DELETE", "/fhir/Patient?identifier=" + identifier, {});
  CHECK(deleted.status == 200);
  HttpReply search = httpRequest(gateway.port, "GET", "/fhir/Patient?identifier=" + identifier, {{"Accept", "application/fhir+json"}});
  REQUIRE(search.status == 200);
  CHECK(search.body.find("\"entry\"") == std::string::npos);
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient/" + id, {}).status != 200);
}

TEST_CASE("e2e: an XML client works against the JSON-only upstream / both ways") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));

  HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", kXml, kPatientXml);
  REQUIRE(created.ok);
  REQUIRE(created.status == 201);
  CHECK_THAT(created.header("content-type"), Catch::StartsWith("application/fhir+xml"));
  auto parsed = medicus::fhir::parseXml(created.body);
  REQUIRE(parsed.ok());
  std::string id(parsed.document->root()->child("id")->value());
  CHECK_THAT(created.body, Catch::Contains("<family value=\"Schmidt\"/>"));

  // _format overrides Accept.
  HttpReply read = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id + "?_format=xml", {{"Accept", "application/fhir+json"}});
  REQUIRE(read.status == 200);
  CHECK_THAT(read.body, Catch::StartsWith("<Patient"));

  HttpReply json_read = httpRequest(gateway.port, "GET", "/fhir/Patient/" + id, {{"Accept", "application/fhir+json"}});
  CHECK_THAT(json_read.body, Catch::Contains("\"family\":\"Schmidt\""));

  HttpReply search = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Schmidt", {{"Accept", "application/fhir+xml"}});
  REQUIRE(search.status == 200);
  CHECK_THAT(search.body, Catch::StartsWith("<Bundle"));
  CHECK_THAT(search.body, Catch::Contains("<fullUrl value=\"http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir/Patient/" + id));

  // Errors follow the negotiated format too.
  HttpReply missing = httpRequest(gateway.port, "GET", "/fhir/Patient/does-not-exist", {{"Accept", "application/fhir+xml"}});
  CHECK(missing.status == 404);
  CHECK_THAT(missing.body, Catch::StartsWith("<OperationOutcome"));
}

TEST_CASE("e2e: batch and transaction Bundles") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));
  const std::string gateway_base = "http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir";

  const char* transaction = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient","name":[{"family":"Transaktion"}]},
     "request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Observation","status":"final","code":{"text":"Gewicht"},
      "subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},"request":{"method":"POST","url":"Observation"}}]})";
  HttpReply tx = httpRequest(gateway.port, "POST", "/fhir", kJson, transaction);
  REQUIRE(tx.ok);
  REQUIRE(tx.status == 200);
  CHECK_THAT(tx.body, Catch::Contains("transaction-response"));
  CHECK_THAT(tx.body, Catch::Contains("\"location\":\"" + gateway_base + "/Patient/"));
  CHECK(tx.body.find(upstream.baseUrl()) == std::string::npos);

  const char* batch = R"(<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>
    <entry><resource><Patient><name><family value="Stapel"/></name></Patient></resource>
      <request><method value="POST"/><url value="Patient"/></request></entry>
    <entry><request><method value="GET"/><url value="Patient?family=Transaktion"/></request></entry></Bundle>)";
  HttpReply b = httpRequest(gateway.port, "POST", "/fhir", kXml, batch);
  REQUIRE(b.status == 200);
  CHECK_THAT(b.body, Catch::StartsWith("<Bundle"));
  CHECK_THAT(b.body, Catch::Contains("batch-response"));
  CHECK_THAT(b.body, Catch::Contains("Transaktion"));
}

TEST_CASE("e2e: bad input gets the right status and an OperationOutcome") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(),
                                             "    limits: { max_body_bytes: 64KiB, max_header_bytes: 4KiB, header_timeout: 1s }\n")));

  HttpReply wrong_type = httpRequest(gateway.port, "POST", "/fhir/Patient", {{"Content-Type", "text/plain"}}, "hello");
  CHECK(wrong_type.status == 415);
  CHECK_THAT(wrong_type.body, Catch::Contains("OperationOutcome") && Catch::Contains("Content-Type"));

  HttpReply invalid = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, R"({"resourceType":"Patient",)");
  CHECK(invalid.status == 400);
  CHECK_THAT(invalid.body, Catch::Contains("OperationOutcome"));

  HttpReply unknown_element = httpRequest(gateway.port, "POST", "/fhir/Patient", {{"Content-Type", "application/fhir+xml"}},
                                          R"(<Patient xmlns="http://hl7.org/fhir"><nmae><family value="x"/></nmae></Patient>)");
  CHECK(unknown_element.status == 400);
  CHECK_THAT(unknown_element.body, Catch::Contains("nmae"));

  std::string big = R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)" +
                    std::string(100 * 1024, 'x') + "</div>\"}}";
  HttpReply too_big = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, big);
  CHECK(too_big.status == 413);
  CHECK_THAT(too_big.body, Catch::Contains("max_body_bytes"));

  HttpReply big_header = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"X-Padding", std::string(8000, 'a')}});
  CHECK(big_header.status == 431);
  CHECK_THAT(big_header.body, Catch::Contains("max_header_bytes"));
  // A client that sends a long head slowly: its request line and Accept arrive first, the limit later.
  std::string slow_reply = rawExchange(gateway.port,
                                       {"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nAccept: application/fhir+xml\r\n",
                                        "X-Padding: " + std::string(8000, 'a') + "\r\n\r\n"},
                                       100);
  CHECK_THAT(slow_reply, Catch::StartsWith("HTTP/1.1 431") && Catch::Contains("application/fhir+xml") &&
                             Catch::Contains("<OperationOutcome"));
  // A malformed head (a field line without a colon) is a 400, also in the format asked for before it.
  for (const auto& [head, xml] : {std::pair<std::string, bool>{"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nAccept: application/fhir+xml\r\n"
                                                                 "no colon here\r\n\r\n", true},
                                  {"GET /fhir/Patient?_format=xml HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", true},
                                  {"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", false}}) {
    INFO(head);
    std::string malformed = rawExchange(gateway.port, {head});
    CHECK_THAT(malformed, Catch::StartsWith("HTTP/1.1 400") && Catch::Contains("malformed HTTP request"));
    CHECK_THAT(malformed, Catch::Contains(xml ? "Content-Type: application/fhir+xml" : "Content-Type: application/fhir+json"));
    CHECK_THAT(malformed, Catch::Contains(xml ? "<OperationOutcome" : "\"resourceType\":\"OperationOutcome\""));
  }

  HttpReply not_acceptable = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"Accept", "text/html"}});
  CHECK(not_acceptable.status == 406);

  HttpReply no_route = httpRequest(gateway.port, "GET", "/other/Patient", {});
  CHECK(no_route.status == 404);
  CHECK_THAT(no_route.body, Catch::Contains("no route"));

  HttpReply method = httpRequest(gateway.port, "OPTIONS", "/fhir/Patient", {});
  CHECK(method.status == 405);

  // A client that sends one byte every 200 ms is cut off by header_timeout (1 s), not served forever.
  long closed_after = trickleUntilClosed(gateway.port, "GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n", 200);
  CHECK(closed_after > 500);
  CHECK(closed_after < 3000);
  // ... and the gateway still serves others.
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);

  std::string metrics = gateway.server.metricsText();
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_requests_total{method=\"POST\",route=\"fhir\",status=\"415\"} 1"));
  CHECK_THAT(metrics, Catch::Contains("status=\"413\""));
}

TEST_CASE("e2e: upstream down gives 502 / slow gives 504 / health checks take a dead endpoint out (503)") {
  REQUIRE_E2E_UPSTREAM();
  {
    RunningGateway down(mustLoad(configYaml("http://127.0.0.1:" + std::to_string(unusedPort()) + "/fhir")));
    HttpReply reply = httpRequest(down.port, "GET", "/fhir/Patient", {});
    CHECK(reply.status == 502);
    CHECK_THAT(reply.body, Catch::Contains("OperationOutcome") && Catch::Contains("cannot connect"));
    CHECK_THAT(down.server.metricsText(), Catch::Contains("medicus_gateway_upstream_errors_total{kind=\"connect\",upstream=\"fhir\"} 1"));
    // /metadata still answers: the gateway's own CapabilityStatement from its routes, in the client's format.
    HttpReply meta = httpRequest(down.port, "GET", "/fhir/metadata", {{"Accept", "application/fhir+json"}});
    CHECK(meta.status == 200);
    CHECK_THAT(meta.body, Catch::Contains("\"resourceType\":\"CapabilityStatement\"") &&
                              Catch::Contains("Built by the gateway from its routes") &&
                              Catch::Contains("{\"code\":\"patch\"}") && Catch::Contains("\"type\":\"Patient\""));
    CHECK_THAT(meta.body, Catch::Contains("\"url\":\"http://127.0.0.1:" + std::to_string(down.port) + "/fhir\""));
    HttpReply meta_xml = httpRequest(down.port, "GET", "/fhir/metadata?_format=xml", {});
    CHECK(meta_xml.status == 200);
    CHECK_THAT(meta_xml.body, Catch::StartsWith("<CapabilityStatement"));
  }
  {
    NodeFhirServer slow({"--delay-ms", "1500"});
    std::string yaml = configYaml(slow.baseUrl());
    yaml.replace(yaml.find("response_timeout: 5s"), 20, "response_timeout: 300ms");
    RunningGateway gateway(mustLoad(yaml));
    auto started = std::chrono::steady_clock::now();
    HttpReply reply = httpRequest(gateway.port, "GET", "/fhir/Patient", {});
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(reply.status == 504);
    CHECK(took < std::chrono::milliseconds(1400));
  }
  {
    RunningGateway checked(mustLoad(configYaml("http://127.0.0.1:" + std::to_string(unusedPort()) + "/fhir", "",
                                               "    health_check: { interval: 100ms, timeout: 100ms, unhealthy_after: 1 }\n")));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CHECK(httpRequest(checked.port, "GET", "/fhir/Patient", {}).status == 503);
    CHECK(httpRequest(checked.port, "GET", "/fhir/metadata", {}).status == 200);
    CHECK(httpRequest(checked.port, "GET", "/readyz", {}).status == 503);
    CHECK(httpRequest(checked.port, "GET", "/healthz", {}).status == 200);
    CHECK_THAT(checked.server.metricsText(), Catch::Contains("medicus_gateway_upstream_healthy{endpoint="));
  }
}

TEST_CASE("e2e: TLS and mutual TLS / the client certificate's identity selects routes") {
  REQUIRE_E2E_UPSTREAM();
  REQUIRE_OPENSSL_COMMAND();
  TempDir dir;
  const std::string d = dir.path;
  const TestCertificates certs{d};
  certs.makeCa("ca", "test-ca");
  certs.issue("server", "localhost", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  certs.issue("client", "kis.example", "ca");

  NodeFhirServer upstream;
  std::string yaml = configYaml(upstream.baseUrl(), "", "",
                                "  - name: kis-only\n"
                                "    match: { path_prefix: /kis, clients: [kis.example] }\n"
                                "    forward: { upstream: fhir }\n"
                                "  - name: secure\n"
                                "    match: { path_prefix: /secure }\n"
                                "    stages: [{ require-client: { clients: [kis.example] } }]\n"
                                "    forward: { upstream: fhir }\n");
  yaml.replace(yaml.find("listeners:\n"), 11,
               "listeners:\n"
               "  - name: tls\n"
               "    protocol: https\n"
               "    port: 0\n"
               "    tls: { certificate: server.crt, private_key: server.key }\n"
               "  - name: mtls\n"
               "    protocol: https\n"
               "    port: 0\n"
               "    tls: { certificate: server.crt, private_key: server.key, client_ca: ca.crt, require_client_certificate: true }\n");
  RunningGateway gateway(mustLoad(yaml, d), "tls");
  int mtls_port = gateway.server.port("mtls");

  TlsClientOptions tls{true, d + "/ca.crt", "", ""};
  HttpReply over_tls = httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", tls);
  REQUIRE(over_tls.ok);
  CHECK(over_tls.status == 200);
  // Without a client certificate: the identity route does not match.
  CHECK(httpRequest(gateway.port, "GET", "/kis/Patient", {}, "", tls).status == 404);

  // mTLS listener: no certificate, no handshake.
  HttpReply refused = httpRequest(mtls_port, "GET", "/fhir/Patient", {}, "", tls);
  CHECK_FALSE(refused.ok);
  TlsClientOptions with_cert{true, d + "/ca.crt", d + "/client.crt", d + "/client.key"};
  HttpReply created = httpRequest(mtls_port, "POST", "/kis/Patient", kJson, kPatientJson, with_cert);
  REQUIRE(created.ok);
  CHECK(created.status == 201);
  CHECK_THAT(created.header("location"), Catch::StartsWith("https://127.0.0.1:" + std::to_string(mtls_port) + "/kis/Patient/"));

  // The require-client stage answers 403 with an OperationOutcome; its outcomes are counted.
  HttpReply forbidden = httpRequest(gateway.port, "GET", "/secure/Patient", {}, "", tls);
  CHECK(forbidden.status == 403);
  CHECK_THAT(forbidden.body, Catch::Contains("needs a client certificate"));
  CHECK(httpRequest(mtls_port, "GET", "/secure/Patient", {}, "", with_cert).status == 200);
  std::string metrics = gateway.server.metricsText();
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_messages_total{outcome=\"respond\",stage=\"require-client\"} 1"));
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_messages_total{outcome=\"continue\",stage=\"require-client\"} 1"));
}

TEST_CASE("e2e: an HTTPS upstream with certificate verification / a certificate that does not verify gives 502") {
  REQUIRE_E2E_UPSTREAM();
  REQUIRE_OPENSSL_COMMAND();
  TempDir dir;
  const std::string d = dir.path;
  const TestCertificates certs{d};
  // The upstream's CA and its server certificate (for 127.0.0.1 and localhost), and an unrelated CA.
  for (const std::string ca : {"upstream-ca", "other-ca"}) certs.makeCa(ca, ca);
  certs.issue("upstream", "localhost", "upstream-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");

  NodeFhirServer upstream({"--tls-cert", d + "/upstream.crt", "--tls-key", d + "/upstream.key"});
  REQUIRE_THAT(upstream.baseUrl(), Catch::StartsWith("https://127.0.0.1:"));
  const std::string by_name = "https://localhost:" + std::to_string(upstream.port()) + "/fhir";
  // The upstream with `tls` (and further upstream lines).
  auto tlsYaml = [](const std::string& url, const std::string& tls, const std::string& upstream_extra = "") {
    return configYaml(url, "", upstream_extra + "    tls: { " + tls + " }\n");
  };
  auto withTls = [&](const std::string& url, const std::string& tls, const std::string& upstream_extra = "") {
    return mustLoad(tlsYaml(url, tls, upstream_extra), d);
  };
  {
    // Verified against the upstream's CA, by IP address and by host name.
    for (const std::string& url : {upstream.baseUrl(), by_name}) {
      RunningGateway gateway(withTls(url, "ca: upstream-ca.crt"));
      HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson);
      REQUIRE(created.ok);
      CHECK(created.status == 201);
      // Location names the gateway (plain HTTP here), not the https upstream.
      CHECK_THAT(created.header("location"),
                 Catch::StartsWith("http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir/Patient/"));
      HttpReply read = httpRequest(gateway.port, "GET", "/fhir/Patient/" + idOf(created.body), {{"Accept", "application/fhir+xml"}});
      CHECK(read.status == 200);
      CHECK_THAT(read.body, Catch::StartsWith("<Patient") && Catch::Contains("Mustermann"));
    }
  }
  {
    // A CA that did not sign the upstream's certificate: the handshake fails, 502 with an OperationOutcome.
    RunningGateway gateway(withTls(upstream.baseUrl(), "ca: other-ca.crt"));
    HttpReply refused = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"Accept", "application/fhir+json"}});
    CHECK(refused.status == 502);
    CHECK_THAT(refused.body, Catch::Contains("OperationOutcome") && Catch::Contains("TLS handshake") &&
                                 Catch::Contains("certificate verify failed"));
    HttpReply refused_xml = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"Accept", "application/fhir+xml"}});
    CHECK(refused_xml.status == 502);
    CHECK_THAT(refused_xml.body, Catch::StartsWith("<OperationOutcome"));
  }
  {
    // The right CA but another name than the certificate's: refused as well.
    RunningGateway gateway(withTls(upstream.baseUrl(), "ca: upstream-ca.crt, server_name: fhir.example.org"));
    HttpReply refused = httpRequest(gateway.port, "GET", "/fhir/Patient", {});
    CHECK(refused.status == 502);
    CHECK_THAT(refused.body, Catch::Contains("OperationOutcome") && Catch::Contains("TLS handshake"));
  }
  {
    // Without a pool every request opens a connection: the first one does a full handshake, the
    // next ones resume the session the upstream issued on the one before (node sends TLS 1.3 tickets).
    RunningGateway gateway(withTls(upstream.baseUrl(), "ca: upstream-ca.crt", "    max_idle_connections: 0\n"));
    for (int i = 0; i < 3; ++i) CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);
    std::string metrics = gateway.server.metricsText();
    CHECK_THAT(metrics, Catch::Contains(connectionsOpenedLine("full", 1)));
    CHECK_THAT(metrics, Catch::Contains(connectionsOpenedLine("resumed", 2)));
  }
  {
    // A reload with other TLS settings: the connection pooled under the old ones is not reused (one
    // worker, so the second request would find it). Here the new CA does not verify the upstream.
    auto oneWorker = [&](const std::string& tls) {
      std::string yaml = tlsYaml(upstream.baseUrl(), tls);
      yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");
      return mustLoad(yaml, d);
    };
    RunningGateway gateway(oneWorker("ca: upstream-ca.crt"));
    CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);
    gateway.server.reload(oneWorker("ca: other-ca.crt"));
    HttpReply refused = httpRequest(gateway.port, "GET", "/fhir/Patient", {});
    CHECK(refused.status == 502);
    CHECK_THAT(refused.body, Catch::Contains("certificate verify failed"));
    // And back: one new connection under the new settings (with a full handshake: each config
    // snapshot has its own sessions), then pooled and reused.
    gateway.server.reload(oneWorker("ca: upstream-ca.crt"));
    for (int i = 0; i < 2; ++i) CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);
    std::string metrics = gateway.server.metricsText();
    CHECK_THAT(metrics, Catch::Contains(connectionsOpenedLine("full", 2)));
    CHECK_THAT(metrics, !Catch::Contains("tls=\"resumed\""));
  }
  {
    // session_reuse: false: a full handshake every time.
    RunningGateway gateway(withTls(upstream.baseUrl(), "ca: upstream-ca.crt, session_reuse: false", "    max_idle_connections: 0\n"));
    for (int i = 0; i < 3; ++i) CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);
    std::string metrics = gateway.server.metricsText();
    CHECK_THAT(metrics, Catch::Contains(connectionsOpenedLine("full", 3)));
    CHECK_THAT(metrics, !Catch::Contains("tls=\"resumed\""));
  }
  {
    // verify: false (for test set-ups only) accepts any certificate.
    RunningGateway gateway(withTls(upstream.baseUrl(), "verify: false"));
    CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);
  }
}

TEST_CASE("e2e: reload under load keeps serving / a broken config keeps the old one") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  TempDir dir;
  std::string path = dir.path + "/gateway.yaml";
  std::ofstream(path) << configYaml(upstream.baseUrl());
  auto first = loadConfig(path);
  REQUIRE(first);
  RunningGateway gateway(*first);
  // Reload hooks (serve's HL7 v2 intake) run after each successful reload, with the new config.
  std::atomic<int> hooked{0};
  std::atomic<size_t> hooked_routes{0};
  gateway.server.addReloadHook([&](const std::string& hook_path, std::shared_ptr<const GatewayConfig> config) {
    CHECK(hook_path == path);
    hooked_routes = config->routes.size();
    ++hooked;
  });

  std::atomic<bool> running{true};
  std::atomic<int> ok{0}, failed{0};
  std::thread load([&] {
    for (int i = 0; i < 2000 && running; ++i) {
      HttpReply r = httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {});
      (r.ok && r.status == 200 ? ok : failed)++;
    }
  });
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(gateway.server.reloadFromFile(path));
  }
  // A config with an error is refused; the running config stays.
  std::ofstream(path) << configYaml(upstream.baseUrl()) + "  - name: broken\n    forward: { upstream: nowhere }\n";
  CHECK_FALSE(gateway.server.reloadFromFile(path));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  running = false;
  load.join();
  CHECK(failed == 0);
  CHECK(ok > 0);
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 200);

  // A valid new config with a new route takes effect.
  std::ofstream(path) << configYaml(upstream.baseUrl(), "", "",
                                    "  - name: alias\n    match: { path_prefix: /r4 }\n    forward: { upstream: fhir }\n");
  REQUIRE(gateway.server.reloadFromFile(path));
  CHECK(httpRequest(gateway.port, "GET", "/r4/Patient", {}).status == 200);
  CHECK(hooked == 6);  // not after the failed one
  CHECK(hooked_routes == 2);
  std::string metrics = gateway.server.metricsText();
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_config_reloads_total{result=\"success\"} 6"));
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_config_reloads_total{result=\"failure\"} 1"));
}

TEST_CASE("e2e: a reload applies a listener's renewed certificate, client CA, limits and admin endpoints to new connections; a request in flight keeps its own") {
  REQUIRE_E2E_UPSTREAM();
  REQUIRE_OPENSSL_COMMAND();
  TempDir dir;
  const std::string d = dir.path;
  const TestCertificates certs{d};
  certs.makeCa("old-ca", "old-ca");
  certs.makeCa("new-ca", "new-ca");
  const std::string san = "subjectAltName=IP:127.0.0.1\n";
  certs.issue("server", "localhost", "old-ca", san);
  certs.issue("old-client", "old.kis.example", "old-ca");
  certs.issue("new-client", "new.kis.example", "new-ca");

  NodeFhirServer upstream;
  NodeFhirServer slow({"--delay-ms", "800"});
  auto yaml = [&](const std::string& mtls_ca, const std::string& tls_extra) {
    std::string text = configYaml(upstream.baseUrl(), "", "",
                                  "  - name: slow\n    match: { path_prefix: /slow }\n    forward: { upstream: slow }\n");
    text.replace(text.find("listeners:\n"), 11,
                 "listeners:\n"
                 "  - name: tls\n"
                 "    protocol: https\n"
                 "    port: 0\n"
                 "    tls: { certificate: server.crt, private_key: server.key }\n" +
                     tls_extra +
                     "  - name: mtls\n"
                     "    protocol: https\n"
                     "    port: 0\n"
                     "    tls: { certificate: server.crt, private_key: server.key, client_ca: " +
                     mtls_ca + ", require_client_certificate: true }\n");
    text.replace(text.find("routes:\n"), 8,
                 "  - name: slow\n    endpoints: [" + slow.baseUrl() + "]\n    response_timeout: 5s\nroutes:\n");
    return text;
  };
  const std::string path = d + "/gateway.yaml";
  std::ofstream(path) << yaml("old-ca.crt", "");
  auto first = loadConfig(path);
  REQUIRE(first);
  std::mutex log_mutex;
  std::string log;
  RunningGateway gateway(*first, "tls", [&](std::string_view line) {
    std::lock_guard lock(log_mutex);
    log.append(line).append("\n");
  });
  const int mtls_port = gateway.server.port("mtls");
  const TlsClientOptions trusts_old{true, d + "/old-ca.crt", "", ""};
  const TlsClientOptions trusts_new{true, d + "/new-ca.crt", "", ""};
  const TlsClientOptions old_client{true, d + "/old-ca.crt", d + "/old-client.crt", d + "/old-client.key"};
  const TlsClientOptions new_client{true, d + "/new-ca.crt", d + "/new-client.crt", d + "/new-client.key"};
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_old).status == 200);
  CHECK_FALSE(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_new).ok);
  CHECK(httpRequest(mtls_port, "GET", "/fhir/Patient", {}, "", old_client).status == 200);
  CHECK(httpRequest(gateway.port, "GET", "/metrics", {}, "", trusts_old).status == 200);
  CHECK(httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson, trusts_old).status == 201);

  // A request on a connection made before the reload, still waiting for its upstream while it happens.
  HttpReply in_flight;
  std::thread before([&] { in_flight = httpRequest(gateway.port, "GET", "/slow/Patient?_count=1", {}, "", trusts_old); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The certificate renewed at the same path (by the other CA), the client CA swapped, a body limit
  // below the Patient's size, the admin endpoints off.
  certs.issue("server", "localhost", "new-ca", san);
  std::ofstream(path) << yaml("new-ca.crt", "    limits: { max_body_bytes: 64 }\n    admin_endpoints: false\n");
  REQUIRE(gateway.server.reloadFromFile(path));
  before.join();
  REQUIRE(in_flight.ok);
  CHECK(in_flight.status == 200);

  CHECK_FALSE(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_old).ok);
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_new).status == 200);
  CHECK_FALSE(httpRequest(mtls_port, "GET", "/fhir/Patient", {}, "", old_client).ok);
  CHECK(httpRequest(mtls_port, "GET", "/fhir/Patient", {}, "", new_client).status == 200);
  CHECK(httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson, trusts_new).status == 413);
  CHECK(httpRequest(gateway.port, "GET", "/metrics", {}, "", trusts_new).status == 404);
  // The other listener kept its own limits and admin endpoints.
  CHECK(httpRequest(mtls_port, "POST", "/fhir/Patient", kJson, kPatientJson, new_client).status == 201);
  CHECK(httpRequest(mtls_port, "GET", "/metrics", {}, "", new_client).status == 200);

  // A key that does not load fails the reload at its 'tls:' line; the certificate loaded before stays.
  std::ofstream(d + "/server.key") << "not a key\n";
  CHECK_FALSE(gateway.server.reloadFromFile(path));
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_new).status == 200);
  // Moving a listener waits for a restart, and says so.
  std::string moved = yaml("new-ca.crt", "");
  moved.replace(moved.find("port: 0\n"), 8, "port: 0\n    address: 127.0.0.2\n");
  std::ofstream(path) << moved;
  certs.issue("server", "localhost", "new-ca", san);
  REQUIRE(gateway.server.reloadFromFile(path));
  CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}, "", trusts_new).status == 200);
  std::lock_guard lock(log_mutex);
  CHECK_THAT(log, Catch::Contains("gateway.yaml:"));
  CHECK_THAT(log, Catch::Contains("server.key"));
  CHECK_THAT(log, Catch::Contains("reload: listener 'tls': address (takes effect only after a restart)"));
}

TEST_CASE("e2e: stop drains a request in flight") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer slow({"--delay-ms", "700"});
  auto gateway = std::make_unique<RunningGateway>(mustLoad(configYaml(slow.baseUrl())));
  int port = gateway->port;
  HttpReply in_flight;
  std::thread request([&] { in_flight = httpRequest(port, "GET", "/fhir/Patient", {}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  gateway->server.stop();
  request.join();
  CHECK(in_flight.ok);
  CHECK(in_flight.status == 200);
  CHECK(in_flight.header("connection") == "close");
  gateway.reset();
  CHECK_FALSE(httpRequest(port, "GET", "/fhir/Patient", {}).ok);
}

TEST_CASE("e2e: validate stage with the profile validator (enforce 422 / report header / transaction entries)") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  installProfileValidatorProvider();
  auto routeWith = [](const std::string& mode) {
    return "  - name: checked\n"
           "    match: { path_prefix: /fhir, methods: [POST, PUT] }\n"
           "    stages:\n"
           "      - validate: { mode: " + mode + ", profiles: [http://hl7.org/fhir/StructureDefinition/Patient] }\n"
           "    forward: { upstream: fhir }\n";
  };
  auto enforce = loadConfigText(configYaml(upstream.baseUrl(), "", "", routeWith("enforce")), "e2e.yaml", "/tmp");
  if (!enforce) {
    std::string text;
    for (const auto& e : enforce.error()) text += formatConfigError(e) + "\n";
    if (text.find("core") != std::string::npos || text.find("package") != std::string::npos) {
      WARN("SKIPPED: FHIR R4 core package not available: " << text);
      return;
    }
    FAIL(text);
  }
  const char* bad_patient = R"({"resourceType":"Patient","gender":"x"})";
  {
    RunningGateway gateway(*enforce);
    HttpReply rejected = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, bad_patient);
    REQUIRE(rejected.ok);
    CHECK(rejected.status == 422);
    CHECK_THAT(rejected.body, Catch::Contains("OperationOutcome") && Catch::Contains("Patient.gender"));

    HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson);
    CHECK(created.status == 201);

    const char* transaction = R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},
      {"resource":{"resourceType":"Patient","gender":"x"},"request":{"method":"POST","url":"Patient"}}]})";
    HttpReply tx = httpRequest(gateway.port, "POST", "/fhir", kJson, transaction);
    CHECK(tx.status == 422);
    CHECK_THAT(tx.body, Catch::Contains("entry[1]"));
    // The route's Patient profile applies to the Patient entries, not to the Bundle: valid entries pass.
    const char* valid_transaction = R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},
      {"resource":{"resourceType":"Observation","status":"final","code":{"text":"Gewicht"},"valueString":"72 kg"},
       "request":{"method":"POST","url":"Observation"}}]})";
    HttpReply valid_tx = httpRequest(gateway.port, "POST", "/fhir", kJson, valid_transaction);
    CHECK(valid_tx.status == 200);
    CHECK_THAT(valid_tx.body, Catch::Contains("transaction-response"));
    // A batch from an XML client: every entry validated too, the outcome in XML.
    const char* batch = R"(<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>
      <entry><resource><Patient><gender value="female"/></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry>
      <entry><resource><Observation><code><text value="Puls"/></code></Observation></resource><request><method value="POST"/><url value="Observation"/></request></entry>
      </Bundle>)";
    HttpReply bad_batch = httpRequest(gateway.port, "POST", "/fhir", kXml, batch);
    CHECK(bad_batch.status == 422);
    CHECK_THAT(bad_batch.body, Catch::StartsWith("<OperationOutcome") && Catch::Contains("Bundle.entry[1].resource") &&
                                   Catch::Contains("status"));

    // Validation outcomes by profile and rule.
    const std::string profile = "profile=\"http://hl7.org/fhir/StructureDefinition/Patient\"";
    std::string metrics = gateway.server.metricsText();
    CHECK_THAT(metrics, Catch::Contains("medicus_validation_resources_total{" + profile + ",result=\"failed\"} 3"));
    CHECK_THAT(metrics, Catch::Contains("medicus_validation_resources_total{" + profile + ",result=\"passed\"} 2"));
    CHECK_THAT(metrics, Catch::Contains("medicus_validation_issues_total{" + profile + ",rule=\"Patient.gender"));
    CHECK_THAT(metrics, Catch::Contains("severity=\"error\"}"));
  }
  {
    RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(), "", "", routeWith("report"))));
    HttpReply forwarded = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, bad_patient);
    REQUIRE(forwarded.ok);
    // Forwarded: whatever the upstream answers (its own checks may refuse gender "x"), never the gateway's 422.
    CHECK(forwarded.status != 422);
    CHECK(forwarded.status != 502);
    CHECK_THAT(forwarded.header("x-medicus-validation"), Catch::StartsWith("errors=") && Catch::Contains("; warnings="));
    CHECK_FALSE(Catch::StartsWith("errors=0;").match(forwarded.header("x-medicus-validation")));
  }
}

TEST_CASE("e2e: $validate is answered by the gateway with the route's profiles") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  installProfileValidatorProvider();
  std::string route = "  - name: checked\n"
                      "    match: { path_prefix: /fhir, methods: [POST] }\n"
                      "    stages:\n"
                      "      - validate: { mode: enforce }\n"
                      "    forward: { upstream: fhir }\n";
  auto config = loadConfigText(configYaml(upstream.baseUrl(), "", "", route), "e2e.yaml", "/tmp");
  if (!config) {
    WARN("SKIPPED: FHIR R4 core package not available");
    return;
  }
  RunningGateway gateway(*config);
  HttpReply bad = httpRequest(gateway.port, "POST", "/fhir/Patient/$validate", kJson, R"({"resourceType":"Patient","gender":"x"})");
  REQUIRE(bad.ok);
  CHECK(bad.status == 200);
  CHECK_THAT(bad.body, Catch::Contains("OperationOutcome") && Catch::Contains("Patient.gender"));

  HttpReply good = httpRequest(gateway.port, "POST", "/fhir/$validate", kJson,
                               std::string(R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":)") +
                                   kPatientJson + "}]}");
  CHECK(good.status == 200);
  CHECK_THAT(good.body, Catch::Contains("OperationOutcome"));
  CHECK_THAT(good.body, !Catch::Contains("\"error\""));

  HttpReply unknown_profile = httpRequest(gateway.port, "POST", "/fhir/Patient/$validate?profile=http://example.org/nope", kJson,
                                          kPatientJson);
  CHECK(unknown_profile.status == 200);
  CHECK_THAT(unknown_profile.body, Catch::Contains("http://example.org/nope"));

  HttpReply empty_parameters = httpRequest(gateway.port, "POST", "/fhir/$validate", kJson,
                                           R"({"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"create"}]})");
  CHECK(empty_parameters.status == 400);

  // From an XML client: the resource (bare or in Parameters) read as XML, the OperationOutcome written as XML.
  HttpReply bad_xml = httpRequest(gateway.port, "POST", "/fhir/Patient/$validate", kXml,
                                  R"(<Patient xmlns="http://hl7.org/fhir"><gender value="x"/></Patient>)");
  CHECK(bad_xml.status == 200);
  CHECK_THAT(bad_xml.header("content-type"), Catch::StartsWith("application/fhir+xml"));
  CHECK_THAT(bad_xml.body, Catch::StartsWith("<OperationOutcome") && Catch::Contains("Patient.gender") &&
                               Catch::Contains("<severity value=\"error\"/>"));
  HttpReply good_xml = httpRequest(gateway.port, "POST", "/fhir/$validate", kXml,
                                   std::string(R"(<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>)") +
                                       kPatientXml + "</resource></parameter></Parameters>");
  CHECK(good_xml.status == 200);
  CHECK_THAT(good_xml.body, Catch::StartsWith("<OperationOutcome") && !Catch::Contains("<severity value=\"error\"/>"));
}

TEST_CASE("e2e: /metadata is the upstream's CapabilityStatement narrowed to what the routes allow") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  std::string yaml = configYaml(upstream.baseUrl());
  // Only reads: the one route allows GET alone.
  auto at = yaml.find("methods: [GET, POST, PUT, DELETE, PATCH]");
  REQUIRE(at != std::string::npos);
  yaml.replace(at, std::string("methods: [GET, POST, PUT, DELETE, PATCH]").size(), "methods: [GET]");
  RunningGateway gateway(mustLoad(yaml));
  HttpReply direct = httpRequest(upstream.port(), "GET", "/fhir/metadata", kJson, "");
  if (direct.status != 200 || direct.body.find("\"create\"") == std::string::npos) {
    WARN("SKIPPED: the upstream publishes no CapabilityStatement with create interactions");
    return;
  }
  HttpReply meta = httpRequest(gateway.port, "GET", "/fhir/metadata", kJson, "");
  REQUIRE(meta.status == 200);
  CHECK_THAT(meta.body, Catch::Contains("CapabilityStatement") && Catch::Contains("\"read\""));
  CHECK_THAT(meta.body, !Catch::Contains("\"create\"") && !Catch::Contains("\"delete\"") && !Catch::Contains("\"update\""));
}

TEST_CASE("e2e: the access log has one JSON line per request, query names without values, written in batches") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  auto log_path = std::filesystem::temp_directory_path() / ("medicus-access-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(log_path);
  std::string yaml = configYaml(upstream.baseUrl());
  yaml.replace(yaml.find("access_log: off"), 15, "access_log: \"" + log_path.string() + "\"");
  {
    RunningGateway gateway(mustLoad(yaml));
    for (int i = 0; i < 3; ++i) {
      HttpReply found = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Geheim&_count=1", {{"Accept", "application/fhir+json"}});
      REQUIRE(found.status == 200);
    }
    HttpReply missing = httpRequest(gateway.port, "GET", "/nowhere", {});
    REQUIRE(missing.status == 404);
    // Bodies are never logged: a create, and a POST _search whose form carries the search values.
    REQUIRE(httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson).status == 201);
    REQUIRE(httpRequest(gateway.port, "POST", "/fhir/Patient/_search", {{"Content-Type", "application/x-www-form-urlencoded"}},
                        "family=Geheim").status == 200);
    // Batches are written at least every 200 ms while the server runs.
    std::string text;
    for (int tries = 0; tries < 50 && std::count(text.begin(), text.end(), '\n') < 6; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream in(log_path);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    CHECK(std::count(text.begin(), text.end(), '\n') == 6);
    // The writer thread took every batch (access_log_writer.h): none dropped.
    HttpReply metrics = httpRequest(gateway.port, "GET", "/metrics", {});
    CHECK_THAT(metrics.body, Catch::Contains("medicus_gateway_access_log_dropped_batches_total 0\n"));
  }
  std::ifstream in(log_path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::remove(log_path);
  CHECK(std::count(text.begin(), text.end(), '\n') == 7);  // and the /metrics request
  CHECK_THAT(text, Catch::Contains(R"("path":"/metrics","query_params":"","route":"-","status":200)"));
  CHECK_THAT(text, Catch::Contains(R"("method":"POST","path":"/fhir/Patient","query_params":"","route":"fhir","status":201)"));
  CHECK_THAT(text, !Catch::Contains("Mustermann") && !Catch::Contains("4711") && !Catch::Contains("1964"));
  CHECK_THAT(text, Catch::Contains(R"("method":"GET","path":"/fhir/Patient","query_params":"family,_count","route":"fhir","status":200,"upstream":"fhir","upstream_status":200)"));
  CHECK_THAT(text, Catch::Contains(R"("path":"/nowhere","query_params":"","route":"-","status":404)"));
  CHECK_THAT(text, !Catch::Contains("Geheim"));  // query values can be patient data
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    CHECK(text.substr(start, 9) == R"({"time":")");
    CHECK(text[end - 1] == '}');
    start = end + 1;
  }
}

TEST_CASE("e2e: pooled upstream connections the upstream closed while idle do not fail a request") {
  REQUIRE_E2E_UPSTREAM();
  // Closes idle keep-alive connections after 1 s; slow replies make the four requests overlap.
  NodeFhirServer upstream({"--keep-alive-ms", "1000", "--delay-ms", "300"});
  std::string yaml = configYaml(upstream.baseUrl());
  yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");  // one pool holds them all
  RunningGateway gateway(mustLoad(yaml));
  // Several requests at once leave several idle connections in the pool.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      HttpReply reply = httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {{"Accept", "application/fhir+json"}});
      if (reply.status == 200) ++ok;
    });
  }
  for (auto& c : clients) c.join();
  REQUIRE(ok == 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  HttpReply after = httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {{"Accept", "application/fhir+json"}});
  CHECK(after.status == 200);
  HttpReply again = httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {{"Accept", "application/fhir+json"}});
  CHECK(again.status == 200);
}

namespace {
// An OperationOutcome with at least one issue (severity, code), in JSON or XML, with this status.
void checkOutcome(const HttpReply& reply, unsigned status, bool xml) {
  INFO(reply.status << " " << reply.error << " " << reply.body.substr(0, 300));
  REQUIRE(reply.ok);
  CHECK(reply.status == status);
  CHECK_THAT(reply.header("content-type"), Catch::StartsWith(xml ? "application/fhir+xml" : "application/fhir+json"));
  auto parsed = xml ? medicus::fhir::parseXml(reply.body) : medicus::fhir::parseJson(reply.body);
  REQUIRE(parsed.document);
  CHECK(parsed.document->root()->name() == "OperationOutcome");
  const auto* issue = parsed.document->root()->child("issue");
  REQUIRE(issue);
  CHECK(issue->child("severity"));
  CHECK(issue->child("code"));
}
// A request is counted just after its reply is written, so a client may see the reply first: waits (at
// most 2 s) until the metrics text holds `line`, and returns the text.
std::string metricsWith(const GatewayServer& server, const std::string& line) {
  std::string text = server.metricsText();
  for (int i = 0; i < 100 && text.find(line) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = server.metricsText();
  }
  return text;
}
}  // namespace

TEST_CASE("e2e: an upstream host name is looked up once per resolve_ttl; addresses that do not connect are looked up again") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  // One worker (the cache is per worker thread), no pool: a new connection for every request.
  auto yaml = [](int port, const std::string& upstream_extra) {
    std::string text = configYaml("http://localhost:" + std::to_string(port) + "/fhir", "",
                                  "    max_idle_connections: 0\n" + upstream_extra);
    text.replace(text.find("workers: 2"), 10, "workers: 1");
    return text;
  };
  auto resolvedLine = [](int count) {
    return "medicus_gateway_upstream_resolutions_total{result=\"resolved\",upstream=\"fhir\"} " + std::to_string(count) + "\n";
  };
  {
    RunningGateway gateway(mustLoad(yaml(upstream.port(), "")));
    for (int i = 0; i < 3; ++i) {
      HttpReply reply = httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {});
      CHECK(reply.status == 200);
      // The upstream's own URLs (by the name the gateway used) are rewritten to the gateway's.
      CHECK_THAT(reply.body, !Catch::Contains("localhost:" + std::to_string(upstream.port())));
    }
    std::string metrics = gateway.server.metricsText();
    CHECK_THAT(metrics, Catch::Contains(resolvedLine(1)));
    CHECK_THAT(metrics, Catch::Contains(connectionsOpenedLine("none", 3)));
  }
  {
    RunningGateway gateway(mustLoad(yaml(upstream.port(), "    resolve_ttl: 0s\n")));
    for (int i = 0; i < 3; ++i) CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient?_count=1", {}).status == 200);
    CHECK_THAT(gateway.server.metricsText(), Catch::Contains(resolvedLine(3)));
  }
  {
    RunningGateway gateway(mustLoad(yaml(unusedPort(), "")));
    for (int i = 0; i < 2; ++i) CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient", {}).status == 502);
    CHECK_THAT(gateway.server.metricsText(), Catch::Contains(resolvedLine(2)));
  }
}

TEST_CASE("e2e: type-level history is forwarded; the upstream, which has none, answers with its OperationOutcome") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));
  REQUIRE(httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson).status == 201);
  // @medplum/fhir-router 5.2.13 routes no GET [type]/_history: it reads the id "_history" (404). The
  // gateway forwards the request as any other and relays the upstream's status and outcome.
  HttpReply direct = httpRequest(upstream.port(), "GET", "/fhir/Patient/_history", {});
  REQUIRE(direct.status == 404);
  HttpReply json = httpRequest(gateway.port, "GET", "/fhir/Patient/_history?_count=10", {{"Accept", "application/fhir+json"}});
  checkOutcome(json, direct.status, false);
  CHECK_THAT(json.body, Catch::Contains("Not found") && !Catch::Contains("no route"));
  HttpReply xml = httpRequest(gateway.port, "GET", "/fhir/Patient/_history", {{"Accept", "application/fhir+xml"}});
  checkOutcome(xml, direct.status, true);
  CHECK_THAT(xml.body, Catch::Contains("Not found"));
  // Counted under the route and the upstream: forwarded, not the gateway's own "no route" 404.
  const std::string forwarded_404 = "medicus_gateway_requests_total{method=\"GET\",route=\"fhir\",status=\"404\"} 2";
  std::string metrics = metricsWith(gateway.server, forwarded_404);
  CHECK_THAT(metrics, Catch::Contains(forwarded_404));
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_upstream_duration_seconds_count{upstream=\"fhir\"} 3"));
  // /metadata, the upstream's statement narrowed by the routes, does not claim history-type.
  HttpReply meta = httpRequest(gateway.port, "GET", "/fhir/metadata", {{"Accept", "application/fhir+json"}});
  REQUIRE(meta.status == 200);
  CHECK_THAT(meta.body, Catch::Contains("\"history-instance\"") && !Catch::Contains("\"history-type\""));
}

TEST_CASE("e2e: every error status is an OperationOutcome in the client's format (JSON and XML)") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  NodeFhirServer slow({"--delay-ms", "1500"});
  TempDir empty;
  PythonHttpServer html(empty.path);  // answers 404 and 501 with HTML pages
  const std::string dead = "http://127.0.0.1:" + std::to_string(unusedPort()) + "/fhir";
  RunningGateway gateway(mustLoad(configYaml(
      upstream.baseUrl(), "    limits: { max_body_bytes: 64KiB, max_header_bytes: 4KiB }\n",
      "  - name: html\n    endpoints: [" + html.baseUrl() + "]\n"
      "  - name: slow\n    endpoints: [" + slow.baseUrl() + "]\n    response_timeout: 300ms\n"
      "  - name: down\n    endpoints: [" + dead + "]\n"
      "  - name: dead\n    endpoints: [" + dead + "]\n    health_check: { interval: 100ms, timeout: 100ms, unhealthy_after: 1 }\n",
      "  - name: html\n    match: { path_prefix: /html }\n    forward: { upstream: html }\n"
      "  - name: slow\n    match: { path_prefix: /slow }\n    forward: { upstream: slow }\n"
      "  - name: down\n    match: { path_prefix: /down }\n    forward: { upstream: down }\n"
      "  - name: dead\n    match: { path_prefix: /dead }\n    forward: { upstream: dead }\n")));
  const int port = gateway.port;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the health check takes "dead" out
  std::string big = R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)" +
                    std::string(100 * 1024, 'x') + "</div>\"}}";
  for (bool xml : {false, true}) {
    INFO((xml ? "XML client" : "JSON client"));
    const std::string type = xml ? "application/fhir+xml" : "application/fhir+json";
    const Headers fhir = {{"Content-Type", type}, {"Accept", type}};
    const Headers accept = {{"Accept", type}};
    checkOutcome(httpRequest(port, "POST", "/fhir/Patient", fhir, xml ? "<Patient xmlns=\"http://hl7.org/fhir\">" : "{\"resourceType\":"),
                 400, xml);
    checkOutcome(httpRequest(port, "GET", "/nowhere/Patient", accept), 404, xml);
    HttpReply method = httpRequest(port, "OPTIONS", "/fhir/Patient", accept);
    checkOutcome(method, 405, xml);
    CHECK(method.header("allow") == "GET, POST, PUT, DELETE, PATCH");  // RFC 9110 15.5.6
    checkOutcome(httpRequest(port, "POST", "/fhir/Patient", {{"Content-Type", "text/plain"}, {"Accept", type}}, "hello"), 415, xml);
    // Larger than max_body_bytes: refused from the head alone, in the format it asks for.
    checkOutcome(httpRequest(port, "POST", "/fhir/Patient", fhir, big), 413, xml);
    // A head larger than max_header_bytes (4 KiB): the format from the lines received before the limit,
    // Accept or the request line's _format.
    checkOutcome(httpRequest(port, "GET", "/fhir/Patient", {{"Accept", type}, {"X-Padding", std::string(8000, 'a')}}), 431, xml);
    checkOutcome(httpRequest(port, "GET", std::string("/fhir/Patient?_format=") + (xml ? "xml" : "json"),
                             {{"Accept", xml ? "application/fhir+json" : "application/fhir+xml"}, {"X-Padding", std::string(8000, 'a')}}),
                 431, xml);
    checkOutcome(httpRequest(port, "GET", "/down/Patient", accept), 502, xml);
    checkOutcome(httpRequest(port, "GET", "/dead/Patient", accept), 503, xml);
    checkOutcome(httpRequest(port, "GET", "/slow/Patient", accept), 504, xml);
    // The upstream's own errors keep their status and come in the client's format (404, 400 here).
    checkOutcome(httpRequest(port, "GET", "/fhir/Patient/nobody", accept), 404, xml);
    checkOutcome(httpRequest(port, "GET", "/fhir/Patient?birthdate=not-a-date", accept), 400, xml);
    // An upstream whose errors are HTML pages: the status stays, the body becomes an OperationOutcome.
    HttpReply html_missing = httpRequest(port, "GET", "/html/Patient/1", accept);
    checkOutcome(html_missing, 404, xml);
    CHECK_THAT(html_missing.body, Catch::Contains("upstream 'html' answered 404 with a text/html") && !Catch::Contains("<html"));
    checkOutcome(httpRequest(port, "POST", "/html/Patient", fhir, xml ? kPatientXml : kPatientJson), 501, xml);
  }
  // An oversized head whose Accept comes after the limit: JSON, the default format (nothing beyond the
  // limit is read), as when it names no format at all.
  checkOutcome(httpRequest(port, "GET", "/fhir/Patient", {{"X-Padding", std::string(8000, 'a')}, {"Accept", "application/fhir+xml"}}),
               431, false);
  checkOutcome(httpRequest(port, "GET", "/fhir/Patient", {{"X-Padding", std::string(8000, 'a')}}), 431, false);
  // Many small fields, so the parser takes some before the limit and the Accept after them is among them.
  Headers many_fields = {{"Accept", "application/fhir+xml"}};
  for (int n = 0; n < 200; ++n) many_fields.emplace_back("X-Field-" + std::to_string(n), std::string(40, 'b'));
  checkOutcome(httpRequest(port, "GET", "/fhir/Patient", many_fields), 431, true);
  // Nothing the client accepts: JSON, the default format, with 406.
  checkOutcome(httpRequest(port, "GET", "/fhir/Patient", {{"Accept", "text/html"}}), 406, false);
  checkOutcome(httpRequest(port, "GET", "/fhir/Patient?_format=text/turtle", {}), 406, false);
}

TEST_CASE("e2e: slow clients (one byte a second, in the head or the body) are cut off; others are served meanwhile") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(), "    limits: { header_timeout: 2s, body_timeout: 2s }\n")));
  const int port = gateway.port;
  long head_closed = 0, body_closed = 0;
  std::thread slow_head([&] {
    head_closed = trickleUntilClosed(port, "GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n", 1000);
  });
  std::thread slow_body([&] {
    const std::string body(60, ' ');
    body_closed = trickleUntilClosed(port, body, 1000,
                                     "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                                     "Content-Length: 60\r\n\r\n{");
  });
  // While both trickle, other clients get their answers at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 5; ++i) {
    auto started = std::chrono::steady_clock::now();
    CHECK(httpRequest(port, "GET", "/fhir/Patient?_count=1", {}).status == 200);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1000));
  }
  slow_head.join();
  slow_body.join();
  // header_timeout counts from the connection's first byte wait, body_timeout from the end of the head.
  CHECK(head_closed > 1000);
  CHECK(head_closed < 4500);
  CHECK(body_closed > 1000);
  CHECK(body_closed < 4500);
  // Their connections are closed, not kept: only this request's own connection is open (the gauge is
  // lowered just after a close, so allow it a moment).
  const std::string one_open = "medicus_gateway_open_connections{listener=\"main\"} 1";
  std::string metrics;
  for (int i = 0; i < 50 && metrics.find(one_open) == std::string::npos; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = httpRequest(port, "GET", "/metrics", {}).body;
  }
  CHECK_THAT(metrics, Catch::Contains(one_open));
}

TEST_CASE("e2e: /metrics lists every family the issue names, /healthz and /readyz answer") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  TempDir dir;
  const std::string dead = "http://127.0.0.1:" + std::to_string(unusedPort()) + "/fhir";
  const std::string path = dir.path + "/gateway.yaml";
  std::ofstream(path) << configYaml(upstream.baseUrl(), "",
                                    "    health_check: { interval: 100ms, timeout: 500ms, unhealthy_after: 1 }\n"
                                    "  - name: down\n    endpoints: [" + dead + "]\n",
                                    "  - name: down\n    match: { path_prefix: /down }\n    forward: { upstream: down }\n");
  auto config = loadConfig(path);
  REQUIRE(config);
  RunningGateway gateway(*config);
  const int port = gateway.port;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a health check has run
  REQUIRE(httpRequest(port, "POST", "/fhir/Patient", kJson, kPatientJson).status == 201);
  REQUIRE(httpRequest(port, "GET", "/fhir/Patient?_count=1", {}).status == 200);
  REQUIRE(httpRequest(port, "GET", "/down/Patient", {}).status == 502);
  REQUIRE(gateway.server.reloadFromFile(path));
  CHECK(httpRequest(port, "GET", "/healthz", {}).status == 200);
  CHECK(httpRequest(port, "GET", "/readyz", {}).status == 200);
  metricsWith(gateway.server, "route=\"down\",status=\"502\"} 1");  // the last request counted

  HttpReply reply = httpRequest(port, "GET", "/metrics", {});
  REQUIRE(reply.status == 200);
  CHECK_THAT(reply.header("content-type"), Catch::StartsWith("text/plain"));
  const std::string& m = reply.body;
  // Requests by route, method and status; latency histograms by route.
  CHECK_THAT(m, Catch::Contains("medicus_gateway_requests_total{method=\"POST\",route=\"fhir\",status=\"201\"} 1"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_requests_total{method=\"GET\",route=\"fhir\",status=\"200\"} 1"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_requests_total{method=\"GET\",route=\"down\",status=\"502\"} 1"));
  CHECK_THAT(m, Catch::Contains("# TYPE medicus_gateway_request_duration_seconds histogram"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_request_duration_seconds_bucket{route=\"fhir\",le=\"+Inf\"} 2"));
  // Upstream latency, errors and health.
  CHECK_THAT(m, Catch::Contains("# TYPE medicus_gateway_upstream_duration_seconds histogram"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_upstream_duration_seconds_count{upstream=\"fhir\"} 2"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_upstream_errors_total{kind=\"connect\",upstream=\"down\"} 1"));
  // Connections opened (plain: tls="none"; one per worker thread at most, the rest pooled).
  CHECK_THAT(m, Catch::Contains(connectionsOpenedLine("none", 1)) ||
                    Catch::Contains(connectionsOpenedLine("none", 2)));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_upstream_healthy{endpoint=\"" + upstream.baseUrl() + "\",upstream=\"fhir\"} 1"));
  // Open connections (this one), reloads, build info. (Validation outcomes: the validate-stage test.)
  CHECK_THAT(m, Catch::Contains("medicus_gateway_open_connections{listener=\"main\"} 1"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_config_reloads_total{result=\"success\"} 1"));
  CHECK_THAT(m, Catch::Contains("medicus_gateway_build_info{version=\""));
}

TEST_CASE("e2e: an HTTPS client that stalls in the TLS handshake is cut off after header_timeout; others are served meanwhile") {
  REQUIRE_E2E_UPSTREAM();
  TempDir dir;
  NodeFhirServer upstream;
  std::string yaml = configYaml(upstream.baseUrl());
  yaml.replace(yaml.find("    protocol: http\n"), 19,
               "    protocol: https\n"
               "    tls: { certificate: server.crt, private_key: server.key, self_signed_if_missing: true }\n"
               "    limits: { header_timeout: 1s }\n");
  RunningGateway gateway(mustLoad(yaml, dir.path));
  const int port = gateway.port;
  // The start of a ClientHello whose record claims 512 bytes, one byte every 200 ms: OpenSSL waits for
  // the rest, which would take 10 s.
  std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  hello += std::string(40, 'A');
  long closed_after = -2;
  std::thread stalling([&] { closed_after = trickleUntilClosed(port, hello, 200); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  TlsClientOptions tls{true, "", "", ""};  // (no CA: not verified)
  for (int i = 0; i < 3; ++i) CHECK(httpRequest(port, "GET", "/fhir/Patient?_count=1", {}, "", tls).status == 200);
  stalling.join();
  CHECK(closed_after > 700);
  CHECK(closed_after < 3000);
}

TEST_CASE("e2e: listeners speak TLS 1.2 and 1.3 with AEAD suites only; min_version 1.3; the client identity is the SAN") {
  REQUIRE_E2E_UPSTREAM();
  REQUIRE_OPENSSL_COMMAND();
  TempDir dir;
  const std::string d = dir.path;
  const TestCertificates certs{d};
  // A CA, the server's certificate, and a client certificate whose SAN (not its CN) names the client.
  certs.makeCa("ca", "test-ca");
  certs.issue("server", "localhost", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  certs.issue("client", "other-cn", "ca", "subjectAltName=DNS:pacs.example\n");
  NodeFhirServer upstream;
  std::string yaml = configYaml(upstream.baseUrl(), "", "",
                                "  - name: pacs\n    match: { path_prefix: /pacs, clients: [pacs.example] }\n    forward: { upstream: fhir }\n");
  yaml.replace(yaml.find("listeners:\n"), 11,
               "listeners:\n"
               "  - name: tls\n    protocol: https\n    port: 0\n"
               "    tls: { certificate: server.crt, private_key: server.key, client_ca: ca.crt }\n"
               "  - name: tls13\n    protocol: https\n    port: 0\n"
               "    tls: { certificate: server.crt, private_key: server.key, min_version: \"1.3\" }\n");
  RunningGateway gateway(mustLoad(yaml, d), "tls");
  const int tls13_port = gateway.server.port("tls13");
  auto handshakes = [&](int port, const std::string& options) {
    return runCommand("echo | " + std::string(MEDICUS_OPENSSL) + " s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile " + d +
                      "/ca.crt -verify_return_error " + options + " >/dev/null 2>&1") == 0;
  };
  CHECK(handshakes(gateway.port, "-tls1_2"));
  CHECK(handshakes(gateway.port, "-tls1_3"));
  CHECK_FALSE(handshakes(gateway.port, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"));
  CHECK(handshakes(gateway.port, "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"));
  CHECK_FALSE(handshakes(gateway.port, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA"));  // CBC: not offered
  CHECK(handshakes(tls13_port, "-tls1_3"));
  CHECK_FALSE(handshakes(tls13_port, "-tls1_2"));

  // Client certificate optional on this listener: with it, its SAN DNS name is the identity routes match.
  TlsClientOptions anonymous{true, d + "/ca.crt", "", ""};
  TlsClientOptions pacs{true, d + "/ca.crt", d + "/client.crt", d + "/client.key"};
  CHECK(httpRequest(gateway.port, "GET", "/pacs/Patient", {}, "", anonymous).status == 404);
  HttpReply matched = httpRequest(gateway.port, "GET", "/pacs/Patient", {{"Accept", "application/fhir+json"}}, "", pacs);
  CHECK(matched.status == 200);
  CHECK_THAT(matched.body, Catch::Contains("\"searchset\""));
}

TEST_CASE("e2e: an upstream's endpoints take turns; a health check takes a dead one out of the turn") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer first;
  auto second = std::make_unique<NodeFhirServer>();
  // Each endpoint has its own in-memory store: a Patient made on the first only is found there only.
  REQUIRE(httpRequest(first.port(), "POST", "/fhir/Patient", kJson, kPatientJson).status == 201);
  RunningGateway gateway(mustLoad(configYaml(first.baseUrl() + ", " + second->baseUrl(), "",
                                             "    health_check: { interval: 100ms, timeout: 200ms, unhealthy_after: 1 }\n")));
  auto found = [&] {
    HttpReply r = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Mustermann", {{"Accept", "application/fhir+json"}});
    REQUIRE(r.status == 200);
    return r.body.find("\"entry\"") != std::string::npos;
  };
  int on_first = 0;
  for (int i = 0; i < 10; ++i) on_first += found();
  CHECK(on_first >= 3);  // both endpoints served (round robin over the healthy ones)
  CHECK(on_first <= 7);
  const std::string second_url = second->baseUrl();
  second.reset();  // the second endpoint goes away
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 6; ++i) CHECK(found());
  std::string metrics = gateway.server.metricsText();
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_upstream_healthy{endpoint=\"" + second_url + "\",upstream=\"fhir\"} 0"));
  CHECK_THAT(metrics, Catch::Contains("medicus_gateway_upstream_healthy{endpoint=\"" + first.baseUrl() + "\",upstream=\"fhir\"} 1"));
}

TEST_CASE("e2e: the reply format follows _format, then Accept, then the request body's Content-Type") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl())));
  const int port = gateway.port;
  // An XML body, a JSON reply asked for; a JSON body, an XML reply asked for.
  HttpReply xml_in = httpRequest(port, "POST", "/fhir/Patient", {{"Content-Type", "application/fhir+xml"}, {"Accept", "application/fhir+json"}},
                                 kPatientXml);
  REQUIRE(xml_in.status == 201);
  CHECK_THAT(xml_in.header("content-type"), Catch::StartsWith("application/fhir+json"));
  CHECK_THAT(xml_in.body, Catch::Contains("\"family\":\"Schmidt\""));
  const std::string id = idOf(xml_in.body);
  HttpReply json_in = httpRequest(port, "POST", "/fhir/Patient", {{"Content-Type", "application/fhir+json"}, {"Accept", "application/fhir+xml"}},
                                  kPatientJson);
  REQUIRE(json_in.status == 201);
  CHECK_THAT(json_in.body, Catch::StartsWith("<Patient") && Catch::Contains("<family value=\"Mustermann\"/>"));
  // No Accept: the reply comes in the body's format.
  HttpReply xml_only = httpRequest(port, "POST", "/fhir/Patient", {{"Content-Type", "application/fhir+xml"}}, kPatientXml);
  CHECK_THAT(xml_only.header("content-type"), Catch::StartsWith("application/fhir+xml"));
  // _format wins over Accept, as a short name or a media type; R4's older and generic types are understood.
  for (const std::string format : {"json", "application/fhir%2Bjson", "application/json"}) {
    INFO(format);
    HttpReply r = httpRequest(port, "GET", "/fhir/Patient/" + id + "?_format=" + format, {{"Accept", "application/fhir+xml"}});
    CHECK(r.status == 200);
    CHECK_THAT(r.header("content-type"), Catch::StartsWith("application/fhir+json"));
  }
  for (const std::string format : {"xml", "application/fhir%2Bxml", "application/xml", "text/xml"}) {
    INFO(format);
    HttpReply r = httpRequest(port, "GET", "/fhir/Patient/" + id + "?_format=" + format, {{"Accept", "application/fhir+json"}});
    CHECK(r.status == 200);
    CHECK_THAT(r.body, Catch::StartsWith("<Patient"));
  }
  // Accept with q-values and wildcards.
  HttpReply weighted = httpRequest(port, "GET", "/fhir/Patient/" + id, {{"Accept", "application/fhir+json;q=0.5, application/fhir+xml"}});
  CHECK_THAT(weighted.body, Catch::StartsWith("<Patient"));
  HttpReply any = httpRequest(port, "GET", "/fhir/Patient/" + id, {{"Accept", "*/*"}});
  CHECK_THAT(any.header("content-type"), Catch::StartsWith("application/fhir+json"));
}

namespace {
double openConnections(int port) {
  std::string metrics = httpRequest(port, "GET", "/metrics", {}).body;
  const std::string series = "medicus_gateway_open_connections{listener=\"main\"} ";
  size_t at = metrics.find(series);
  return at == std::string::npos ? -1 : std::atof(metrics.c_str() + at + series.size());
}
}  // namespace

TEST_CASE("e2e: a client that stops reading its reply is cut off after write_timeout") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(), "    limits: { max_body_bytes: 24MiB, write_timeout: 1s }\n")));
  const int port = gateway.port;
  // A 12 MB Patient: its reply cannot fit in the socket buffers of a client that does not read.
  std::string big = R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)" +
                    std::string(12 << 20, 'x') + "</div>\"}}";
  HttpReply created = httpRequest(port, "POST", "/fhir/Patient", kJson, big);
  REQUIRE(created.status == 201);
  const std::string id = idOf(created.body);
  REQUIRE_FALSE(id.empty());

  int fd = connectLoopback(port, 4096);  // a tiny receive window
  REQUIRE(fd >= 0);
  const std::string request = "GET /fhir/Patient/" + id + " HTTP/1.1\r\nHost: x\r\nAccept: application/fhir+json\r\n\r\n";
  REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  // While the reply is stuck, the connection is open (and others are served).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(openConnections(port) == 2);
  // write_timeout (1 s) after the write stalls, the gateway gives up on it and closes it.
  double open = 2;
  for (int i = 0; i < 60 && open != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    open = openConnections(port);
  }
  CHECK(open == 1);  // the /metrics request's own connection
  // The client sees an incomplete reply: far less than the 12 MB, then the end.
  fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t received = 0;
  char buf[65536];
  bool closed = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5); !closed && std::chrono::steady_clock::now() < until;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) received += static_cast<size_t>(n);
    else if (n == 0 || errno != EAGAIN) closed = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  close(fd);
  INFO("received " << received << " bytes");
  CHECK(closed);
  CHECK(received < big.size());
}

// A loopback listener that never accepts, with the accept queue given; closed at the end of its scope.
struct SilentListener {
  int fd = -1;
  sockaddr_in addr{};
  explicit SilentListener(int backlog) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, backlog) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~SilentListener() { close(fd); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
};

namespace {

// One GET (with `accept`) through a gateway whose upstream is `url` with connect_timeout 300ms: the
// reply, how long it took, and /metrics after it.
struct ShortConnectTimeoutGet {
  HttpReply reply;
  std::chrono::steady_clock::duration took{};
  std::string metrics;
};
ShortConnectTimeoutGet getWithShortConnectTimeout(const std::string& url, const std::string& accept) {
  std::string yaml = configYaml(url);
  yaml.replace(yaml.find("connect_timeout: 1s"), 19, "connect_timeout: 300ms");
  RunningGateway gateway(mustLoad(yaml));
  ShortConnectTimeoutGet got;
  auto started = std::chrono::steady_clock::now();
  got.reply = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"Accept", accept}});
  got.took = std::chrono::steady_clock::now() - started;
  got.metrics = gateway.server.metricsText();
  return got;
}

}  // namespace

TEST_CASE("e2e: an upstream that never completes the TCP handshake gives 504 after connect_timeout") {
  REQUIRE_E2E_UPSTREAM();
  // A listener that never accepts, its accept queue full: further SYNs are dropped, connects hang.
  const SilentListener silent(0);
  const sockaddr_in addr = silent.addr;
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const ShortConnectTimeoutGet got =
      getWithShortConnectTimeout("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/fhir", "application/fhir+xml");
  checkOutcome(got.reply, 504, true);
  CHECK(got.took < std::chrono::milliseconds(2000));
  CHECK_THAT(got.metrics, Catch::Contains("medicus_gateway_upstream_errors_total{kind=\"timeout\",upstream=\"fhir\"} 1"));
  for (int fd : fillers) close(fd);
}

TEST_CASE("e2e: an HTTPS upstream that never answers the TLS handshake gives 504 after connect_timeout") {
  REQUIRE_E2E_UPSTREAM();
  // A listener that never accepts: the kernel completes the TCP handshake into its queue, and the
  // gateway's ClientHello is never answered.
  const SilentListener silent(8);
  const ShortConnectTimeoutGet got =
      getWithShortConnectTimeout("https://127.0.0.1:" + std::to_string(ntohs(silent.addr.sin_port)) + "/fhir", "application/fhir+json");
  checkOutcome(got.reply, 504, false);
  CHECK_THAT(got.reply.body, Catch::Contains("TLS handshake"));
  CHECK(got.took >= std::chrono::milliseconds(250));
  CHECK(got.took < std::chrono::milliseconds(2000));
  CHECK_THAT(got.metrics, Catch::Contains("medicus_gateway_upstream_errors_total{kind=\"timeout\",upstream=\"fhir\"} 1"));
}

TEST_CASE("e2e: a route by resource type, with convert_format and rewrite_urls off, passes bodies and URLs as they are") {
  REQUIRE_E2E_UPSTREAM();
  NodeFhirServer upstream;
  RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(), "", "",
                                             "  - name: raw\n"
                                             "    match: { path_prefix: /raw, resource_types: [Patient] }\n"
                                             "    forward: { upstream: fhir, convert_format: false, rewrite_urls: false }\n")));
  const int port = gateway.port;
  HttpReply created = httpRequest(port, "POST", "/raw/Patient", kJson, kPatientJson);
  REQUIRE(created.status == 201);
  const std::string id = idOf(created.body);
  // Not rewritten: the upstream's own URLs reach the client.
  CHECK_THAT(created.header("location"), Catch::StartsWith(upstream.baseUrl() + "/Patient/" + id));
  HttpReply search = httpRequest(port, "GET", "/raw/Patient?family=Mustermann", {{"Accept", "application/fhir+json"}});
  REQUIRE(search.status == 200);
  CHECK_THAT(search.body, Catch::Contains("\"fullUrl\":\"" + upstream.baseUrl() + "/Patient/" + id + "\""));
  // Not converted: an XML body reaches the JSON-only upstream as XML (its 415), and its JSON comes back as JSON.
  HttpReply xml_create = httpRequest(port, "POST", "/raw/Patient", kXml, kPatientXml);
  CHECK(xml_create.status == 415);
  CHECK_THAT(xml_create.body, Catch::Contains("this server reads JSON only"));
  HttpReply read = httpRequest(port, "GET", "/raw/Patient/" + id, {{"Accept", "application/fhir+xml"}});
  CHECK(read.status == 200);
  CHECK_THAT(read.header("content-type"), Catch::StartsWith("application/fhir+json"));
  CHECK_THAT(read.body, Catch::StartsWith("{"));
  // The same through the converting route, for contrast.
  HttpReply converted = httpRequest(port, "GET", "/fhir/Patient/" + id, {{"Accept", "application/fhir+xml"}});
  CHECK_THAT(converted.body, Catch::StartsWith("<Patient"));
  // Other resource types, and requests without one, have no route under /raw.
  HttpReply observation = httpRequest(port, "GET", "/raw/Observation", {});
  CHECK(observation.status == 404);
  CHECK_THAT(observation.body, Catch::Contains("no route"));
  CHECK(httpRequest(port, "GET", "/raw/metadata", {}).status == 404);
}

TEST_CASE("e2e: the gateway's client certificate towards an upstream that requires one") {
  REQUIRE_E2E_UPSTREAM();
  REQUIRE_OPENSSL_COMMAND();
  TempDir dir;
  const std::string d = dir.path;
  const TestCertificates certs{d};
  // One CA signs the upstream's server certificate and the gateway's client certificate.
  certs.makeCa("ca", "platform-ca");
  certs.issue("upstream", "upstream", "ca", "subjectAltName=IP:127.0.0.1\n");
  certs.issue("gateway", "gateway", "ca", "extendedKeyUsage=clientAuth\n");
  NodeFhirServer upstream({"--tls-cert", d + "/upstream.crt", "--tls-key", d + "/upstream.key", "--tls-client-ca", d + "/ca.crt"});
  {
    RunningGateway gateway(mustLoad(
        configYaml(upstream.baseUrl(), "", "    tls: { ca: ca.crt, certificate: gateway.crt, private_key: gateway.key }\n"), d));
    HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", kJson, kPatientJson);
    CHECK(created.status == 201);
    CHECK(httpRequest(gateway.port, "GET", "/fhir/Patient/" + idOf(created.body), {}).status == 200);
  }
  {
    // Without it the upstream refuses the connection: 502 with an OperationOutcome.
    RunningGateway gateway(mustLoad(configYaml(upstream.baseUrl(), "", "    tls: { ca: ca.crt }\n"), d));
    HttpReply refused = httpRequest(gateway.port, "GET", "/fhir/Patient", {{"Accept", "application/fhir+json"}});
    checkOutcome(refused, 502, false);
  }
}

TEST_CASE("e2e: a client that accepts gzip gets converted and rewritten replies from an upstream behind a compressing proxy") {
  REQUIRE_E2E_UPSTREAM();
  if (!NginxProxy::available()) {
    WARN("SKIPPED: nginx is not installed");
    return;
  }
  NodeFhirServer upstream;
  NginxProxy proxy(upstream.port(), "gzip on; gzip_types application/fhir+json; gzip_proxied any; gzip_min_length 0;");
  // The proxy compresses for whoever asks: the set-up means something.
  HttpReply direct = httpRequest(proxy.port(), "GET", "/fhir/Patient", {{"Accept-Encoding", "gzip"}});
  REQUIRE(direct.status == 200);
  REQUIRE(direct.header("content-encoding") == "gzip");

  RunningGateway gateway(mustLoad(configYaml(proxy.baseUrl())));
  const std::string gateway_base = "http://127.0.0.1:" + std::to_string(gateway.port) + "/fhir";
  const Headers gzip_json = {{"Content-Type", "application/fhir+json"}, {"Accept", "application/fhir+json"}, {"Accept-Encoding", "gzip"}};
  HttpReply created = httpRequest(gateway.port, "POST", "/fhir/Patient", gzip_json, kPatientJson);
  REQUIRE(created.status == 201);
  const std::string id = idOf(created.body);
  REQUIRE_FALSE(id.empty());

  // An XML client: the upstream's JSON is read and converted, not refused as "not readable FHIR".
  HttpReply xml = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Mustermann",
                              {{"Accept", "application/fhir+xml"}, {"Accept-Encoding", "gzip, deflate"}});
  CHECK(xml.status == 200);
  CHECK(xml.header("content-encoding").empty());
  CHECK_THAT(xml.body, Catch::StartsWith("<Bundle") && Catch::Contains("<fullUrl value=\"" + gateway_base + "/Patient/" + id + "\"/>"));
  // A JSON client: its Bundle's links name the gateway, not the proxy.
  HttpReply json = httpRequest(gateway.port, "GET", "/fhir/Patient?family=Mustermann", {{"Accept-Encoding", "gzip"}});
  CHECK(json.status == 200);
  CHECK_THAT(json.body, Catch::Contains("\"fullUrl\":\"" + gateway_base + "/Patient/" + id + "\"") &&
                            !Catch::Contains(proxy.baseUrl()));
}
