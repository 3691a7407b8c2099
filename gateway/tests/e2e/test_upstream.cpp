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
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace medicus::gateway::test {

std::string NodeFhirServer::unavailableReason() {
  if (std::string(MEDICUS_NODE).empty() || !std::filesystem::exists(MEDICUS_NODE)) return "node is not installed";
  if (!std::filesystem::exists(std::string(MEDICUS_E2E_DIR) + "/node_modules/@medplum/fhir-router")) {
    return "the e2e FHIR server is not installed; run scripts/e2e/install.sh (part of scripts/setup.sh)";
  }
  return {};
}

namespace {

// Starts `args` (argv[0] a path, or a name looked up in PATH) with its stdout on a pipe, and waits (at most
// 30 s) for `marker` followed by the port it listens on. Returns the port; throws when none came.
// `stdout_kept`: the child's stderr goes to /dev/null and the pipe stays open (its fd there), for a child
// that still writes to stdout after the port (python's print ends the line in a second write, and a
// closed pipe would end it by SIGPIPE).
int spawnListening(std::vector<std::string> args, const std::string& marker, int& pid, int* stdout_kept = nullptr) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid = fork();
  if (pid == 0) {
    // Dies with the test process, even when the test crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    if (stdout_kept) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, STDERR_FILENO);
    }
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  int port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (port == 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (auto at = text.find(marker); at != std::string::npos && text.find_first_not_of("0123456789", at + marker.size()) != std::string::npos) {
      port = std::atoi(text.c_str() + at + marker.size());
    }
  }
  if (stdout_kept && port != 0) {
    *stdout_kept = out[0];
  } else {
    close(out[0]);
  }
  if (port == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
    throw std::runtime_error(args[0] + " did not start within 30 s: " + text);
  }
  return port;
}

void stopChild(int pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(20'000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace

NodeFhirServer::NodeFhirServer(std::vector<std::string> extra_args) {
  std::string script = std::string(MEDICUS_E2E_DIR) + "/fhir-server.mjs";
  std::vector<std::string> args = {MEDICUS_NODE, "--experimental-websocket", "--no-warnings", script, "--port", "0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  https_ = std::find(extra_args.begin(), extra_args.end(), "--tls-cert") != extra_args.end();
  port_ = spawnListening(std::move(args), "listening ", pid_);
}

PythonHttpServer::PythonHttpServer(const std::string& directory) {
  // -u: its "Serving HTTP on 127.0.0.1 port N" line is not held in a pipe buffer.
  port_ = spawnListening({MEDICUS_SYSTEM_PYTHON3, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, "0"},
                         " port ", pid_, &stdout_);  // (its stderr is a line per request)
}

bool NginxProxy::available() {
  std::string nginx = MEDICUS_NGINX;
  return !nginx.empty() && std::filesystem::exists(nginx);
}

NginxProxy::NginxProxy(int upstream_port, const std::string& http_directives) {
  char pattern[] = "/tmp/medicus-gateway-nginx-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  port_ = unusedPort();
  const std::string d = dir_;
  std::ofstream(d + "/nginx.conf")
      << "daemon off; pid " << d << "/nginx.pid; error_log " << d << "/error.log; worker_processes 1;\n"
      << "events {}\n"
      << "http { access_log off; client_body_temp_path " << d << "; proxy_temp_path " << d << "; fastcgi_temp_path " << d
      << "; uwsgi_temp_path " << d << "; scgi_temp_path " << d << ";\n"
      << http_directives << "\n"
      << "  server { listen 127.0.0.1:" << port_ << "; location / { proxy_pass http://127.0.0.1:" << upstream_port
      << "; proxy_set_header Host $http_host; } } }\n";  // (the upstream's URLs then name the proxy)
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    std::string nginx = MEDICUS_NGINX, prefix = d, conf = d + "/nginx.conf";
    char* argv[] = {nginx.data(), const_cast<char*>("-p"), prefix.data(), const_cast<char*>("-c"), conf.data(), nullptr};
    execv(argv[0], argv);
    _exit(127);
  }
  // nginx says nothing when it is ready: wait (at most 10 s) until it accepts a connection.
  for (int i = 0; i < 200; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(fd);
    if (up) return;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
    usleep(50'000);
  }
  stopChild(pid_);
  pid_ = -1;
  std::ifstream log(d + "/error.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir_);
  throw std::runtime_error("nginx did not start: " + text);
}

NginxProxy::~NginxProxy() {
  stopChild(pid_);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

PythonHttpServer::~PythonHttpServer() {
  stopChild(pid_);
  if (stdout_ >= 0) close(stdout_);
}

NodeFhirServer::~NodeFhirServer() { stopChild(pid_); }

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
