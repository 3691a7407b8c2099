#include "e2e/test_upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace medicus::gateway::test {

std::string NodeFhirServer::unavailableReason() {
  if (std::string(MEDICUS_NODE).empty() || !std::filesystem::exists(MEDICUS_NODE)) return "node is not installed";
  if (!std::filesystem::exists(std::string(MEDICUS_E2E_DIR) + "/node_modules/@medplum/fhir-router")) {
    return "the e2e FHIR server is not installed; run scripts/e2e/install.sh (part of scripts/setup.sh)";
  }
  return {};
}

NodeFhirServer::NodeFhirServer(std::vector<std::string> extra_args) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  std::string script = std::string(MEDICUS_E2E_DIR) + "/fhir-server.mjs";
  std::vector<std::string> args = {MEDICUS_NODE, "--experimental-websocket", "--no-warnings", script, "--port", "0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  https_ = std::find(extra_args.begin(), extra_args.end(), "--tls-cert") != extra_args.end();
  pid_ = fork();
  if (pid_ == 0) {
    // Dies with the test process, even when the test crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (auto at = text.find("listening "); at != std::string::npos && text.find('\n', at) != std::string::npos) {
      port_ = std::atoi(text.c_str() + at + 10);
    }
  }
  close(out[0]);
  if (port_ == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    throw std::runtime_error("the e2e FHIR server did not start within 30 s: " + text);
  }
}

NodeFhirServer::~NodeFhirServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    usleep(20'000);
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

int runCommand(const std::string& command) { return std::system(command.c_str()); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/medicus-gateway-test-XXXXXX";
  path = mkdtemp(tmpl);
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

int unusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace medicus::gateway::test
