#pragma once
// A real upstream FHIR server for end-to-end tests: scripts/e2e/fhir-server.mjs (@medplum/fhir-router
// with its in-memory repository) started as a child process on 127.0.0.1 with port 0.
#include <string>
#include <vector>

namespace medicus::gateway::test {

class NodeFhirServer {
 public:
  // Empty when node or the npm packages are missing (then tests SKIP with this reason).
  static std::string unavailableReason();

  // Starts the server and waits (bounded) for its "listening <port>" line. Throws on failure.
  explicit NodeFhirServer(std::vector<std::string> extra_args = {});
  ~NodeFhirServer();
  NodeFhirServer(const NodeFhirServer&) = delete;
  NodeFhirServer& operator=(const NodeFhirServer&) = delete;

  int port() const { return port_; }
  // https:// when started with --tls-cert/--tls-key.
  std::string baseUrl() const {
    return std::string(https_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/fhir";
  }

 private:
  bool https_ = false;
  int pid_ = -1;
  int port_ = 0;
};

// Python's http.server (python3 -m http.server) serving `directory` on 127.0.0.1, port 0: a real HTTP
// server whose errors (404 for a missing file, 501 for POST) are HTML pages, as a proxy's often are.
class PythonHttpServer {
 public:
  explicit PythonHttpServer(const std::string& directory);
  ~PythonHttpServer();
  PythonHttpServer(const PythonHttpServer&) = delete;
  PythonHttpServer& operator=(const PythonHttpServer&) = delete;
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_) + "/fhir"; }

 private:
  int pid_ = -1;
  int port_ = 0;
  int stdout_ = -1;  // the read end of its stdout, open while it runs
};

// nginx (Debian's) on 127.0.0.1 as a reverse proxy to `upstream_port`, with `http_directives` added to its
// http block (e.g. gzip): a real proxy as platforms put before their FHIR services.
class NginxProxy {
 public:
  static bool available();
  NginxProxy(int upstream_port, const std::string& http_directives);
  ~NginxProxy();
  NginxProxy(const NginxProxy&) = delete;
  NginxProxy& operator=(const NginxProxy&) = delete;
  int port() const { return port_; }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_) + "/fhir"; }

 private:
  std::string dir_;
  int pid_ = -1;
  int port_ = 0;
};

// Runs a command line (through /bin/sh) and returns its exit status; for openssl.
int runCommand(const std::string& command);
// A fresh temporary directory, removed by the caller's TempDir.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
};
// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
int unusedPort();

}  // namespace medicus::gateway::test
