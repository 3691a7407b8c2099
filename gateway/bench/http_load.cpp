// http_load: a fixed-rate (open-loop) HTTP/1.1 load generator for the gateway benchmark, for the
// latency-at-a-given-load figures that wrk cannot give (wrk sends as fast as replies come back).
//
//   http_load --url http[s]://127.0.0.1:PORT/path [--url ...] --rate R --seconds S [--connections C]
//             [--window W] [--method POST --body FILE --header "Name: value"]...
//
// Request i is due at start + i/R. Each of the C keep-alive connections takes the next due request,
// waits until its due time and sends it; its latency is measured from the due time, not from the
// moment it was sent, so a slow reply that holds up later requests counts against all of them (no
// "coordinated omission", as in wrk2).
//
// With several --url, the targets take turns in windows of W seconds (default 0.2): window w's
// requests go to target w mod K, each target over its own C connections, at the same rate R. The
// comparison (direct to an upstream vs through a proxy in front of it) is then made under the same
// conditions: a stall of the shared upstream (a garbage collection) or of this VM (CPU steal) falls
// on every target alike, instead of on whichever target ran its whole measurement at that moment.
// Prints one line per target (the URL first when there are several):
//   rate R/s sent N ok N errors N unsent N achieved A/s  p50 X ms  p90 X ms  p99 X ms  p99.9 X ms  max X ms
// https:// targets: TLS 1.2+ (OpenSSL's default suites), the server certificate not verified (a
// benchmark's self-signed one), one handshake per connection before its first request is due.
// Loopback only (127.0.0.0/8, localhost, ::1) and bounded: R*S requests, stopped S+10 s after start.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
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
#include <optional>
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

struct Target {
  std::string url;
  bool tls = false;
  std::string host = "127.0.0.1";
  std::string port = "80";
  std::string path = "/";
};

struct Options {
  std::vector<Target> targets;
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;
  double rate = 1000;
  double seconds = 10;
  double window = 0.2;
  int connections = 16;
};

// The schedule shared by all targets: R requests/s from `start`, in windows that the targets take in turn.
struct Schedule {
  Clock::time_point start;
  Clock::time_point hard_stop;
  std::chrono::nanoseconds interval;
  uint64_t total = 0;       // requests due in all, over every target
  uint64_t per_window = 1;  // consecutive requests of one window
  uint64_t targets = 1;
  // The global index of target t's n-th request: its windows are t, t + K, t + 2K, ...
  uint64_t globalIndex(uint64_t t, uint64_t n) const {
    return ((n / per_window) * targets + t) * per_window + n % per_window;
  }
};

// One target's requests and results.
struct Run {
  Run(const Schedule& s, uint64_t i, asio::ssl::context* tls_context) : schedule(s), index(i), tls(tls_context) {
    while (schedule.globalIndex(index, due) < schedule.total) ++due;  // (once: a closed form needs care at the end)
  }
  const Schedule& schedule;
  uint64_t index;           // this target's place in the turns
  asio::ssl::context* tls;  // for an https:// target, else null
  uint64_t due = 0;         // requests due to this target in all
  std::string request_bytes;  // serialised once; every request is the same
  uint64_t next = 0;        // this target's next request (its own count, see Schedule::globalIndex)
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t connect_failures = 0;
  std::map<std::string, uint64_t> error_kinds;  // "502", "read: end of stream", ...
  std::vector<uint32_t> latencies_us;
  Clock::time_point first_due;
  Clock::time_point last_reply;
};

// One request and its reply: whether it succeeded (a reply below 400), whether the connection stays
// open, and what failed.
struct Exchange {
  bool good = false;
  bool keep_alive = false;
  std::string kind;
};

template <class Stream>
asio::awaitable<Exchange> exchange(Stream& stream, beast::flat_buffer& buffer, const std::string& request) {
  Exchange result;
  auto [write_error, written] = co_await asio::async_write(stream, asio::buffer(request), kUseAwaitable);
  if (write_error) {
    result.kind = "write: " + write_error.message();
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kUseAwaitable);
  result.good = !read_error && parser.get().result_int() < 400;
  result.keep_alive = !read_error && parser.get().keep_alive();
  if (read_error) result.kind = "read: " + read_error.message();
  else if (!result.good) result.kind = std::to_string(parser.get().result_int());
  co_return result;
}

asio::awaitable<void> connectionLoop(Run& run, tcp::resolver::results_type endpoints) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  std::optional<tcp::socket> plain;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  bool connected = false;
  const Schedule& schedule = run.schedule;
  while (run.next < run.due && Clock::now() < schedule.hard_stop) {
    if (!connected) {
      plain.reset();
      tls.reset();
      tcp::socket* socket = run.tls ? &tls.emplace(executor, *run.tls).next_layer() : &plain.emplace(executor);
      auto [connect_error, ep] = co_await asio::async_connect(*socket, endpoints, kUseAwaitable);
      boost::system::error_code handshake_error;
      if (!connect_error) {
        socket->set_option(tcp::no_delay(true));
        if (tls) std::tie(handshake_error) = co_await tls->async_handshake(asio::ssl::stream_base::client, kUseAwaitable);
      }
      if (connect_error || handshake_error) {
        ++run.connect_failures;
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(kUseAwaitable);
        continue;
      }
      buffer.clear();
      connected = true;
    }
    uint64_t index = schedule.globalIndex(run.index, run.next++);
    Clock::time_point due = schedule.start + schedule.interval * index;
    ++run.sent;
    if (Clock::now() < due) {
      timer.expires_at(due);
      co_await timer.async_wait(kUseAwaitable);
    }
    // (No co_await inside ?: — g++ 12 destroys the temporaries of both arms.)
    Exchange result;
    if (tls) {
      result = co_await exchange(*tls, buffer, run.request_bytes);
    } else {
      result = co_await exchange(*plain, buffer, run.request_bytes);
    }
    auto done = Clock::now();
    run.last_reply = std::max(run.last_reply, done);
    if (result.good) {
      ++run.ok;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - due).count();
      run.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    } else {
      ++run.errors;
      ++run.error_kinds[result.kind];
    }
    if (!result.keep_alive) connected = false;  // (the next connect replaces the stream)
  }
}

bool parseUrl(std::string_view url, Target& target) {
  target.url = std::string(url);
  if (url.starts_with("https://")) {
    target.tls = true;
    target.port = "443";
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return false;
  }
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  target.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.starts_with('[')) {  // [::1]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    target.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') target.port = std::string(authority.substr(close + 2));
  } else {
    size_t colon = authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) target.port = std::string(authority.substr(colon + 1));
  }
  return !target.host.empty();
}

double percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "http_load: %s\nusage: http_load --url http[s]://127.0.0.1:PORT/path [--url ...] --rate R --seconds S "
               "[--connections C] [--window W] [--method M] [--body FILE] [--header 'Name: value']...\n",
               why);
  return 2;
}

void printResult(const Run& run, const Options& options, const Target* label) {
  std::vector<uint32_t> sorted = run.latencies_us;
  std::sort(sorted.begin(), sorted.end());
  // Several targets take turns: leave out the other targets' windows between this one's first and last.
  const Schedule& schedule = run.schedule;
  uint64_t due = run.due;
  uint64_t own_windows = due == 0 ? 0 : (due - 1) / schedule.per_window + 1;
  auto others = schedule.interval * static_cast<int64_t>(schedule.per_window * (schedule.targets - 1) *
                                                          (own_windows == 0 ? 0 : own_windows - 1));
  double busy = std::chrono::duration<double>(run.last_reply - run.first_due - others).count();
  double achieved = busy > 0 ? static_cast<double>(run.ok) / busy : 0;
  if (label) std::printf("%s ", label->url.c_str());
  std::printf(
      "rate %.0f/s sent %llu ok %llu errors %llu unsent %llu achieved %.0f/s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
      "p99.9 %.3f ms  max %.3f ms\n",
      options.rate, static_cast<unsigned long long>(run.sent), static_cast<unsigned long long>(run.ok),
      static_cast<unsigned long long>(run.errors), static_cast<unsigned long long>(due - std::min(due, run.sent)),
      achieved, percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99), percentile(sorted, 99.9),
      sorted.empty() ? 0.0 : sorted.back() / 1000.0);
  for (const auto& [kind, count] : run.error_kinds) {
    std::fprintf(stderr, "http_load: %s%s%llu errors: %s\n", label ? label->url.c_str() : "", label ? ": " : "",
                 static_cast<unsigned long long>(count), kind.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--url" && (v = value())) {
      Target target;
      if (!parseUrl(v, target)) return usage("--url must look like http://127.0.0.1:PORT/path or https://...");
      options.targets.push_back(std::move(target));
    } else if (arg == "--rate" && (v = value())) options.rate = std::atof(v);
    else if (arg == "--seconds" && (v = value())) options.seconds = std::atof(v);
    else if (arg == "--window" && (v = value())) options.window = std::atof(v);
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
  if (options.targets.empty()) return usage("--url is required");
  if (options.targets.size() > 16) return usage("at most 16 --url targets");
  if (!(options.rate > 0 && options.rate <= 1e6)) return usage("--rate must be between 0 and 1000000 requests/s");
  if (!(options.seconds > 0 && options.seconds <= 600)) return usage("--seconds must be between 0 and 600");
  if (!(options.window >= 0.001 && options.window <= options.seconds)) return usage("--window must be between 0.001 s and --seconds");
  if (options.connections < 1 || options.connections > 4096) return usage("--connections must be between 1 and 4096");

  asio::io_context io(1);
  tcp::resolver resolver(io);
  std::vector<tcp::resolver::results_type> endpoints;
  for (const auto& target : options.targets) {
    boost::system::error_code ec;
    auto resolved = resolver.resolve(target.host, target.port, ec);
    if (ec || resolved.empty()) return usage(("cannot resolve " + target.host + ": " + ec.message()).c_str());
    for (const auto& e : resolved) {
      if (!e.endpoint().address().is_loopback()) return usage("only loopback targets (127.0.0.0/8, ::1) are allowed");
    }
    endpoints.push_back(resolved);
  }

  Schedule schedule;
  schedule.targets = options.targets.size();
  schedule.total = static_cast<uint64_t>(options.rate * options.seconds);
  schedule.per_window =
      options.targets.size() == 1 ? schedule.total + 1 : std::max<uint64_t>(1, static_cast<uint64_t>(options.rate * options.window));
  schedule.interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / options.rate));
  schedule.start = Clock::now() + std::chrono::milliseconds(100);  // let the connections open first
  schedule.hard_stop =
      schedule.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds + 10));

  // One client context for the https:// targets; loopback benchmark servers have self-signed certificates.
  asio::ssl::context tls_context(asio::ssl::context::tls_client);
  tls_context.set_verify_mode(asio::ssl::verify_none);
  std::vector<std::unique_ptr<Run>> runs;
  for (size_t t = 0; t < options.targets.size(); ++t) {
    const Target& target = options.targets[t];
    auto run = std::make_unique<Run>(schedule, t, target.tls ? &tls_context : nullptr);
    std::ostringstream request;
    request << options.method << ' ' << target.path << " HTTP/1.1\r\nHost: " << target.host << ':' << target.port
            << "\r\nUser-Agent: medicus-http-load\r\n";
    for (const auto& h : options.headers) request << h << "\r\n";
    if (!options.body.empty() || options.method == "POST" || options.method == "PUT") {
      request << "Content-Length: " << options.body.size() << "\r\n";
    }
    request << "\r\n" << options.body;
    run->request_bytes = request.str();
    run->latencies_us.reserve(run->due);
    run->first_due = schedule.start + schedule.interval * schedule.globalIndex(t, 0);
    run->last_reply = run->first_due;
    for (int c = 0; c < options.connections; ++c) asio::co_spawn(io, connectionLoop(*run, endpoints[t]), asio::detached);
    runs.push_back(std::move(run));
  }
  // The hard stop also ends replies that never come.
  asio::steady_timer stopper(io, schedule.hard_stop);
  stopper.async_wait([&](const boost::system::error_code&) { io.stop(); });
  io.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(options.seconds + 11)));

  bool all_good = true;
  for (size_t t = 0; t < runs.size(); ++t) {
    printResult(*runs[t], options, runs.size() > 1 ? &options.targets[t] : nullptr);
    all_good = all_good && runs[t]->errors == 0 && runs[t]->sent == runs[t]->due;
  }
  return all_good ? 0 : 1;
}
