// http_load: a fixed-rate (open-loop) HTTP/1.1 load generator for the gateway benchmark, for the
// latency-at-a-given-load figures that wrk cannot give (wrk sends as fast as replies come back).
//
//   http_load --url http://127.0.0.1:PORT/path --rate R --seconds S [--connections C]
//             [--method POST --body FILE --header "Name: value"]...
//
// Request i is due at start + i/R. Each of the C keep-alive connections takes the next due request,
// waits until its due time and sends it; its latency is measured from the due time, not from the
// moment it was sent, so a slow reply that holds up later requests counts against all of them (no
// "coordinated omission", as in wrk2). Prints one line:
//   rate R/s sent N ok N errors N achieved A/s  p50 X ms  p90 X ms  p99 X ms  p99.9 X ms  max X ms
// Loopback only (127.0.0.0/8, localhost, ::1) and bounded: R*S requests, stopped S+10 s after start.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseAwaitable = asio::as_tuple(asio::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "80";
  std::string target = "/";
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;
  double rate = 1000;
  double seconds = 10;
  int connections = 16;
};

struct Run {
  explicit Run(const Options& o) : options(o) {}
  const Options& options;
  std::string request_bytes;  // serialised once; every request is the same
  Clock::time_point start;
  Clock::time_point hard_stop;
  std::chrono::nanoseconds interval;
  uint64_t total = 0;
  uint64_t next = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t connect_failures = 0;
  std::map<std::string, uint64_t> error_kinds;  // "502", "read: end of stream", ...
  std::vector<uint32_t> latencies_us;
  Clock::time_point last_reply;
};

asio::awaitable<void> connectionLoop(Run& run, tcp::resolver::results_type endpoints) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  tcp::socket socket(executor);
  beast::flat_buffer buffer;
  bool connected = false;
  while (run.next < run.total && Clock::now() < run.hard_stop) {
    if (!connected) {
      socket = tcp::socket(executor);
      auto [connect_error, ep] = co_await asio::async_connect(socket, endpoints, kUseAwaitable);
      if (connect_error) {
        ++run.connect_failures;
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(kUseAwaitable);
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      buffer.clear();
      connected = true;
    }
    uint64_t index = run.next++;
    Clock::time_point due = run.start + run.interval * index;
    if (Clock::now() < due) {
      timer.expires_at(due);
      co_await timer.async_wait(kUseAwaitable);
    }
    auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(run.request_bytes), kUseAwaitable);
    bool good = !write_error;
    bool keep_alive = false;
    std::string kind = write_error ? "write: " + write_error.message() : std::string();
    if (good) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 << 20);
      auto [read_error, read] = co_await http::async_read(socket, buffer, parser, kUseAwaitable);
      good = !read_error && parser.get().result_int() < 400;
      keep_alive = !read_error && parser.get().keep_alive();
      if (read_error) kind = "read: " + read_error.message();
      else if (!good) kind = std::to_string(parser.get().result_int());
    }
    auto done = Clock::now();
    run.last_reply = std::max(run.last_reply, done);
    if (good) {
      ++run.ok;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - due).count();
      run.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    } else {
      ++run.errors;
      ++run.error_kinds[kind];
    }
    if (!keep_alive) {
      boost::system::error_code ignored;
      socket.close(ignored);
      connected = false;
    }
  }
}

bool parseUrl(std::string_view url, Options& options) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) return false;
  url.remove_prefix(scheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  options.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.starts_with('[')) {  // [::1]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    options.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') options.port = std::string(authority.substr(close + 2));
  } else {
    size_t colon = authority.find(':');
    options.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) options.port = std::string(authority.substr(colon + 1));
  }
  return !options.host.empty();
}

double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "http_load: %s\nusage: http_load --url http://127.0.0.1:PORT/path --rate R --seconds S "
               "[--connections C] [--method M] [--body FILE] [--header 'Name: value']...\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  bool have_url = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--url" && (v = value())) {
      if (!parseUrl(v, options)) return usage("--url must look like http://127.0.0.1:PORT/path");
      have_url = true;
    } else if (arg == "--rate" && (v = value())) options.rate = std::atof(v);
    else if (arg == "--seconds" && (v = value())) options.seconds = std::atof(v);
    else if (arg == "--connections" && (v = value())) options.connections = std::atoi(v);
    else if (arg == "--method" && (v = value())) options.method = v;
    else if (arg == "--header" && (v = value())) options.headers.emplace_back(v);
    else if (arg == "--body" && (v = value())) {
      std::ifstream in(v, std::ios::binary);
      if (!in) return usage("cannot read the --body file");
      options.body.assign(std::istreambuf_iterator<char>(in), {});
    } else {
      return usage(("unknown or incomplete argument " + std::string(arg)).c_str());
    }
  }
  if (!have_url) return usage("--url is required");
  if (!(options.rate > 0 && options.rate <= 1e6)) return usage("--rate must be between 0 and 1000000 requests/s");
  if (!(options.seconds > 0 && options.seconds <= 600)) return usage("--seconds must be between 0 and 600");
  if (options.connections < 1 || options.connections > 4096) return usage("--connections must be between 1 and 4096");

  asio::io_context io(1);
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(options.host, options.port, ec);
  if (ec || endpoints.empty()) return usage(("cannot resolve " + options.host + ": " + ec.message()).c_str());
  for (const auto& e : endpoints) {
    if (!e.endpoint().address().is_loopback()) return usage("only loopback targets (127.0.0.0/8, ::1) are allowed");
  }

  std::ostringstream request;
  request << options.method << ' ' << options.target << " HTTP/1.1\r\nHost: " << options.host << ':' << options.port
          << "\r\nUser-Agent: medicus-http-load\r\n";
  for (const auto& h : options.headers) request << h << "\r\n";
  if (!options.body.empty() || options.method == "POST" || options.method == "PUT") {
    request << "Content-Length: " << options.body.size() << "\r\n";
  }
  request << "\r\n" << options.body;

  Run run(options);
  run.request_bytes = request.str();
  run.total = static_cast<uint64_t>(options.rate * options.seconds);
  run.interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / options.rate));
  run.latencies_us.reserve(run.total);
  run.start = Clock::now() + std::chrono::milliseconds(100);  // let the connections open first
  run.hard_stop = run.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds + 10));
  run.last_reply = run.start;
  for (int c = 0; c < options.connections; ++c) asio::co_spawn(io, connectionLoop(run, endpoints), asio::detached);
  // The hard stop also ends replies that never come.
  asio::steady_timer stopper(io, run.hard_stop);
  stopper.async_wait([&](const boost::system::error_code&) { io.stop(); });
  io.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(options.seconds + 11)));

  std::sort(run.latencies_us.begin(), run.latencies_us.end());
  uint64_t sent = run.ok + run.errors;
  double elapsed = std::chrono::duration<double>(run.last_reply - run.start).count();
  double achieved = elapsed > 0 ? static_cast<double>(run.ok) / elapsed : 0;
  std::printf(
      "rate %.0f/s sent %llu ok %llu errors %llu unsent %llu achieved %.0f/s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
      "p99.9 %.3f ms  max %.3f ms\n",
      options.rate, static_cast<unsigned long long>(sent), static_cast<unsigned long long>(run.ok),
      static_cast<unsigned long long>(run.errors), static_cast<unsigned long long>(run.total - std::min(run.total, sent)),
      achieved, percentile(run.latencies_us, 50), percentile(run.latencies_us, 90), percentile(run.latencies_us, 99),
      percentile(run.latencies_us, 99.9), run.latencies_us.empty() ? 0.0 : run.latencies_us.back() / 1000.0);
  for (const auto& [kind, count] : run.error_kinds) {
    std::fprintf(stderr, "http_load: %llu errors: %s\n", static_cast<unsigned long long>(count), kind.c_str());
  }
  return run.errors == 0 && sent == run.total ? 0 : 1;
}
