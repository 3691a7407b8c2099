#include "gateway_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <mutex>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

namespace medicus::gateway {

namespace {
std::string str(std::string_view s) { return std::string(s); }
// Sub-millisecond to tens of seconds: a proxy's added latency lives at the low end.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                 0.1,    0.25,  0.5,    1,     2.5,   5,     10, 30};

// Family::Add hashes the whole label map, takes the family's mutex and, for a histogram, builds a
// throw-away Histogram (bucket vectors and all) on every call, even when the series exists: on the
// request path that was several allocations and two shared locks per metric. The handles Add returns
// stay valid for the family's lifetime (series are never removed), so each thread keeps its own map
// from "instance, family, label values" to the handle in its own shard (below) and calls Add only for a
// series it has not seen yet: a counted request is then a hash lookup and an atomic add on a cache
// line no other thread writes. Instance ids are never reused, so a destroyed GatewayMetrics' entries
// (tests make several servers) can never be found again.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>()(key); }
};
using HandleMap = std::unordered_map<std::string, void*, KeyHash, std::equal_to<>>;

std::atomic<uint64_t> next_instance_id{1};

// Builds the lookup key in a per-thread scratch string: id, family tag, then the label values, each
// ended by a byte that cannot occur in them.
class CacheKey {
 public:
  CacheKey(uint64_t instance, char family) {
    key_.clear();
    key_.append(reinterpret_cast<const char*>(&instance), sizeof instance);
    key_ += family;
  }
  CacheKey& operator<<(std::string_view value) {
    key_ += value;
    key_ += '\x1f';
    return *this;
  }
  CacheKey& operator<<(unsigned number) {
    char digits[10];
    size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + number % 10);
      number /= 10;
    } while (number && n < sizeof digits);
    while (n) key_ += digits[--n];
    key_ += '\x1f';
    return *this;
  }
  std::string_view view() const { return key_; }

 private:
  static thread_local std::string key_;
};
thread_local std::string CacheKey::key_;

template <class T, class MakeSeries>
T& cachedSeries(const CacheKey& key, MakeSeries&& make) {
  static thread_local HandleMap handles;
  if (auto it = handles.find(key.view()); it != handles.end()) return *static_cast<T*>(it->second);
  T& series = make();
  handles.emplace(std::string(key.view()), &series);
  return series;
}

// Name and help of a family; the request path's families are registered once per shard with the same.
struct FamilySpec {
  const char* name;
  const char* help;
};
template <class Builder>
auto& registerFamily(Builder builder, const FamilySpec& spec, prometheus::Registry& registry) {
  return builder.Name(spec.name).Help(spec.help).Register(registry);
}

// The families counted on every request. Each worker thread counts into its own copy of them (a
// shard), and /metrics sums the shards: with one shared series per family, every request's
// increments were atomic read-modify-writes on cache lines that both cores kept taking from each
// other (about 0.3 us per proxied request on two cores).
struct RequestPathFamilies {
  explicit RequestPathFamilies(prometheus::Registry& registry)
      : requests(registerFamily(prometheus::BuildCounter(),
                                {"medicus_gateway_requests_total", "HTTP requests by route, method and status"}, registry)),
        latency(registerFamily(prometheus::BuildHistogram(),
                               {"medicus_gateway_request_duration_seconds", "Time from request head to reply written, by route"},
                               registry)),
        upstream_latency(registerFamily(prometheus::BuildHistogram(),
                                        {"medicus_gateway_upstream_duration_seconds", "Upstream exchange time by upstream"},
                                        registry)),
        upstream_errors(registerFamily(prometheus::BuildCounter(),
                                       {"medicus_gateway_upstream_errors_total", "Failed upstream exchanges by upstream and kind"},
                                       registry)),
        upstream_connections(registerFamily(
            prometheus::BuildCounter(),
            {"medicus_gateway_upstream_connections_opened_total",
             "Upstream connections opened for requests (not health checks), by upstream and TLS handshake (none, full, resumed)"},
            registry)),
        upstream_resolutions(registerFamily(
            prometheus::BuildCounter(),
            {"medicus_gateway_upstream_resolutions_total",
             "Host name lookups for new upstream connections (not health checks), by upstream and result (resolved; "
             "failed; stale: failed, and the last addresses were used); within resolve_ttl the kept addresses are "
             "used without one"},
            registry)),
        stages(registerFamily(prometheus::BuildCounter(),
                              {"medicus_gateway_messages_total", "Messages through each pipeline stage by outcome"}, registry)),
        validations(registerFamily(prometheus::BuildCounter(),
                                   {"medicus_validation_resources_total", "Resources validated, by profile and result"}, registry)),
        validation_issues(registerFamily(prometheus::BuildCounter(),
                                         {"medicus_validation_issues_total", "Validation issues by profile, rule and severity"},
                                         registry)) {}
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& latency;
  prometheus::Family<prometheus::Histogram>& upstream_latency;
  prometheus::Family<prometheus::Counter>& upstream_errors;
  prometheus::Family<prometheus::Counter>& upstream_connections;
  prometheus::Family<prometheus::Counter>& upstream_resolutions;
  prometheus::Family<prometheus::Counter>& stages;
  prometheus::Family<prometheus::Counter>& validations;
  prometheus::Family<prometheus::Counter>& validation_issues;
};

struct Shard {
  prometheus::Registry registry;
  RequestPathFamilies families{registry};
};

// Sums the series of equal family and labels across shards: counters by value, histograms by count,
// sum and bucket (every shard's histograms have the same bounds).
std::vector<prometheus::MetricFamily> sumShards(const std::vector<std::vector<prometheus::MetricFamily>>& shards) {
  std::vector<prometheus::MetricFamily> sums;
  std::map<std::string, size_t, std::less<>> family_index;
  std::vector<std::map<std::vector<prometheus::ClientMetric::Label>, size_t>> metric_index;
  for (const auto& families : shards) {
    for (const auto& family : families) {
      auto [where, added] = family_index.try_emplace(family.name, sums.size());
      if (added) {
        sums.push_back(prometheus::MetricFamily{family.name, family.help, family.type, {}});
        metric_index.emplace_back();
      }
      prometheus::MetricFamily& sum = sums[where->second];
      auto& index = metric_index[where->second];
      for (const auto& metric : family.metric) {
        auto [slot, is_new] = index.try_emplace(metric.label, sum.metric.size());
        if (is_new) {
          sum.metric.push_back(metric);
          continue;
        }
        prometheus::ClientMetric& total = sum.metric[slot->second];
        total.counter.value += metric.counter.value;
        total.histogram.sample_count += metric.histogram.sample_count;
        total.histogram.sample_sum += metric.histogram.sample_sum;
        for (size_t i = 0; i < total.histogram.bucket.size() && i < metric.histogram.bucket.size(); ++i) {
          total.histogram.bucket[i].cumulative_count += metric.histogram.bucket[i].cumulative_count;
        }
      }
    }
  }
  return sums;
}
}  // namespace

struct GatewayMetrics::Impl {
  const uint64_t id = next_instance_id++;
  // Families that change rarely (health, reloads, connections, build info): shared series.
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Gauge>& upstream_health = prometheus::BuildGauge()
                                                               .Name("medicus_gateway_upstream_healthy")
                                                               .Help("1 when the endpoint passed its last health checks")
                                                               .Register(*registry);
  prometheus::Family<prometheus::Counter>& reloads = prometheus::BuildCounter()
                                                         .Name("medicus_gateway_config_reloads_total")
                                                         .Help("Config reloads by result")
                                                         .Register(*registry);
  prometheus::Family<prometheus::Gauge>& connections = prometheus::BuildGauge()
                                                           .Name("medicus_gateway_open_connections")
                                                           .Help("Open client connections by listener")
                                                           .Register(*registry);
  prometheus::Family<prometheus::Gauge>& build_info = prometheus::BuildGauge()
                                                          .Name("medicus_gateway_build_info")
                                                          .Help("Build information (value 1)")
                                                          .Register(*registry);
  std::mutex validation_series_mutex;
  std::set<std::tuple<std::string, std::string, std::string>, std::less<>> validation_series;

  // One shard per thread that has counted; kept until the instance goes, so no count is lost when a
  // thread ends.
  mutable std::mutex shards_mutex;
  std::vector<std::unique_ptr<Shard>> shards;

  // Called only when a thread meets a series it has not cached (cachedSeries), so not per request.
  RequestPathFamilies& mine() {
    static thread_local std::unordered_map<uint64_t, Shard*> shard_by_instance;
    Shard*& shard = shard_by_instance[id];
    if (!shard) {
      std::lock_guard lock(shards_mutex);
      shard = shards.emplace_back(std::make_unique<Shard>()).get();
    }
    return shard->families;
  }

  std::vector<prometheus::MetricFamily> summedShards() const {
    std::vector<std::vector<prometheus::MetricFamily>> collected;
    {
      std::lock_guard lock(shards_mutex);
      for (const auto& shard : shards) collected.push_back(shard->registry.Collect());
    }
    return sumShards(collected);
  }

  double summedValue(std::string_view family_name, const prometheus::Labels& labels) const {
    std::vector<prometheus::ClientMetric::Label> wanted;
    for (const auto& [name, value] : labels) wanted.push_back({name, value});  // Labels is ordered by name, as are a series'
    for (const auto& family : summedShards()) {
      if (family.name != family_name) continue;
      for (const auto& metric : family.metric) {
        if (metric.label == wanted) return metric.counter.value;
      }
    }
    return 0;
  }
};

GatewayMetrics::GatewayMetrics() : impl_(std::make_unique<Impl>()) {
#ifdef MEDICUS_VERSION
  impl_->build_info.Add({{"version", MEDICUS_VERSION}}).Set(1);
#else
  impl_->build_info.Add({{"version", "unknown"}}).Set(1);
#endif
}
GatewayMetrics::~GatewayMetrics() = default;

void GatewayMetrics::countRequest(std::string_view route, std::string_view method, unsigned status, double seconds) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'r') << route << method << status, [&]() -> auto& {
    return impl_->mine().requests.Add({{"route", str(route)}, {"method", str(method)}, {"status", std::to_string(status)}});
  }).Increment();
  cachedSeries<prometheus::Histogram>(CacheKey(impl_->id, 'l') << route, [&]() -> auto& {
    return impl_->mine().latency.Add({{"route", str(route)}}, kLatencyBuckets);
  }).Observe(seconds);
}
void GatewayMetrics::countUpstream(std::string_view upstream, double seconds) {
  cachedSeries<prometheus::Histogram>(CacheKey(impl_->id, 'u') << upstream, [&]() -> auto& {
    return impl_->mine().upstream_latency.Add({{"upstream", str(upstream)}}, kLatencyBuckets);
  }).Observe(seconds);
}
void GatewayMetrics::countUpstreamError(std::string_view upstream, std::string_view kind) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'e') << upstream << kind, [&]() -> auto& {
    return impl_->mine().upstream_errors.Add({{"upstream", str(upstream)}, {"kind", str(kind)}});
  }).Increment();
}
void GatewayMetrics::countUpstreamConnection(std::string_view upstream, std::string_view tls) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'o') << upstream << tls, [&]() -> auto& {
    return impl_->mine().upstream_connections.Add({{"upstream", str(upstream)}, {"tls", str(tls)}});
  }).Increment();
}
void GatewayMetrics::countUpstreamResolution(std::string_view upstream, std::string_view result) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'n') << upstream << result, [&]() -> auto& {
    return impl_->mine().upstream_resolutions.Add({{"upstream", str(upstream)}, {"result", str(result)}});
  }).Increment();
}
void GatewayMetrics::setUpstreamHealth(std::string_view upstream, std::string_view endpoint, bool healthy) {
  impl_->upstream_health.Add({{"upstream", str(upstream)}, {"endpoint", str(endpoint)}}).Set(healthy ? 1 : 0);
}
void GatewayMetrics::countStage(std::string_view stage, std::string_view outcome) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 's') << stage << outcome, [&]() -> auto& {
    return impl_->mine().stages.Add({{"stage", str(stage)}, {"outcome", str(outcome)}});
  }).Increment();
}
void GatewayMetrics::countValidation(const ValidationRecord& record) {
  cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'v') << record.profile << (record.passed ? "passed" : "failed"),
                                    [&]() -> auto& {
                                      return impl_->mine().validations.Add(
                                          {{"profile", record.profile}, {"result", record.passed ? "passed" : "failed"}});
                                    })
      .Increment();
  for (const auto& [rule_id, severity] : record.issues) {
    // The series an issue counts under is fixed once decided (the set of admitted rules only grows,
    // and once it is full no rule is admitted), so the per-thread cache may keep it.
    std::string_view severity_text = fhir::toString(severity);
    cachedSeries<prometheus::Counter>(CacheKey(impl_->id, 'i') << record.profile << rule_id << severity_text, [&]() -> auto& {
      std::lock_guard lock(impl_->validation_series_mutex);
      std::tuple<std::string, std::string, std::string> key{record.profile, rule_id.empty() ? "_none" : rule_id,
                                                            std::string(severity_text)};
      if (!impl_->validation_series.count(key)) {
        if (impl_->validation_series.size() >= kMaxValidationRules) std::get<1>(key) = "_other";
        impl_->validation_series.insert(key);  // "_other" series count too, one per (profile, severity)
      }
      return impl_->mine().validation_issues.Add({{"profile", std::get<0>(key)}, {"rule", std::get<1>(key)}, {"severity", std::get<2>(key)}});
    }).Increment();
  }
}

void GatewayMetrics::countReload(bool ok) { impl_->reloads.Add({{"result", ok ? "success" : "failure"}}).Increment(); }
void GatewayMetrics::connectionOpened(std::string_view listener) {
  cachedSeries<prometheus::Gauge>(CacheKey(impl_->id, 'c') << listener, [&]() -> auto& {
    return impl_->connections.Add({{"listener", str(listener)}});
  }).Increment();
}
void GatewayMetrics::connectionClosed(std::string_view listener) {
  cachedSeries<prometheus::Gauge>(CacheKey(impl_->id, 'c') << listener, [&]() -> auto& {
    return impl_->connections.Add({{"listener", str(listener)}});
  }).Decrement();
}

double GatewayMetrics::stageCount(std::string_view stage, std::string_view outcome) const {
  return impl_->summedValue("medicus_gateway_messages_total", {{"stage", str(stage)}, {"outcome", str(outcome)}});
}
double GatewayMetrics::requestCount(std::string_view route, std::string_view method, unsigned status) const {
  return impl_->summedValue("medicus_gateway_requests_total",
                            {{"route", str(route)}, {"method", str(method)}, {"status", std::to_string(status)}});
}

double GatewayMetrics::validationIssueCount(std::string_view profile, std::string_view rule, std::string_view severity) const {
  return impl_->summedValue("medicus_validation_issues_total",
                            {{"profile", str(profile)}, {"rule", str(rule)}, {"severity", str(severity)}});
}

std::string GatewayMetrics::renderText() const {
  std::ostringstream out;
  std::vector<prometheus::MetricFamily> families = impl_->summedShards();
  for (auto& family : impl_->registry->Collect()) families.push_back(std::move(family));
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace medicus::gateway
