// Config loading: yaml-cpp tree -> GatewayConfig, collecting every error with file:line:column.
#include "medicus/gateway/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace medicus::gateway {
namespace {

// Edit distance, for "did you mean" hints on unknown keys.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// "did you mean 'x'? Known keys: a, b" (`kind`: what the known names are: keys, stages, upstreams).
std::string didYouMean(std::string_view key, const std::vector<std::string>& known, std::string_view kind = "keys") {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const auto& candidate : known) {
    size_t d = editDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  std::string text;
  if (!best.empty()) text = "did you mean '" + best + "'? ";
  text += "Known " + std::string(kind) + ": ";
  for (size_t i = 0; i < known.size(); ++i) text += (i ? ", " : "") + known[i];
  return text;
}

class Loader {
 public:
  Loader(std::string file, std::string base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  void error(const YAML::Node& at, std::string message) {
    ConfigError e{file_, 0, 0, std::move(message)};
    if (at.IsDefined()) {
      YAML::Mark mark = at.Mark();
      if (mark.line >= 0) {
        e.line = static_cast<uint32_t>(mark.line + 1);
        e.column = static_cast<uint32_t>(mark.column + 1);
      }
    }
    errors_.push_back(std::move(e));
  }
  void errorAt(uint32_t line, uint32_t column, std::string message) {
    errors_.push_back({file_, line, column, std::move(message)});
  }

  ConfigErrors& errors() { return errors_; }
  const std::string& file() const { return file_; }
  const std::string& baseDir() const { return base_dir_; }

  std::string resolvePath(const std::string& path) const {
    if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
  }

 private:
  std::string file_;
  std::string base_dir_;
  ConfigErrors errors_;
};

// A mapping being read: every key read is remembered; finish() reports the others as unknown.
class MapReader {
 public:
  MapReader(Loader& loader, YAML::Node node, std::string what) : loader_(loader), node_(node), what_(std::move(what)) {
    if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
      loader_.error(node_, what_ + " must be a mapping (key: value lines)");
      valid_ = false;
    }
  }

  bool valid() const { return valid_; }
  const YAML::Node& node() const { return node_; }

  YAML::Node get(const std::string& key) {
    known_.push_back(key);
    if (!valid_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (it->first.Scalar() == key) return it->second;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }
  bool has(const std::string& key) {
    YAML::Node n = get(key);
    return n.IsDefined() && !n.IsNull();
  }

  std::optional<std::string> string(const std::string& key, bool required = false) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) {
      if (required) loader_.error(node_, what_ + " needs '" + key + ":'");
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      loader_.error(n, "'" + key + "' must be a single value (text), not a list or mapping");
      return std::nullopt;
    }
    return n.Scalar();
  }
  void string(const std::string& key, std::string& out, bool required = false) {
    if (auto v = string(key, required)) out = *v;
  }
  void path(const std::string& key, std::string& out, bool required = false) {
    if (auto v = string(key, required)) out = loader_.resolvePath(*v);
  }
  void boolean(const std::string& key, bool& out) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      out = n.Scalar() == "true";
      return;
    }
    loader_.error(n, "'" + key + "' must be true or false");
  }
  template <class Int>
  void integer(const std::string& key, Int& out, Int min, Int max) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    long long value = 0;
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size() || value < static_cast<long long>(min) ||
        value > static_cast<long long>(max)) {
      loader_.error(n, "'" + key + "' must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max));
      return;
    }
    out = static_cast<Int>(value);
  }
  // zero_means: what 0 does where 0 is allowed (named in the error); empty: a positive duration only.
  void duration(const std::string& key, Millis& out, const std::string& zero_means = "") {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    auto d = n.IsScalar() ? parseDuration(n.Scalar()) : std::nullopt;
    if (!d || d->count() < 0 || (d->count() == 0 && zero_means.empty())) {
      loader_.error(n, zero_means.empty() ? "'" + key + "' must be a positive duration such as 500ms, 10s or 2m"
                                          : "'" + key + "' must be a duration such as 0s, 30s or 5m (0: " + zero_means + ")");
      return;
    }
    out = *d;
  }
  void byteSize(const std::string& key, size_t& out) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    auto b = n.IsScalar() ? parseByteSize(n.Scalar()) : std::nullopt;
    if (!b || *b == 0) {
      loader_.error(n, "'" + key + "' must be a positive size such as 16KiB, 10MiB or 1048576");
      return;
    }
    out = *b;
  }
  std::vector<std::string> stringList(const std::string& key) {
    YAML::Node n = get(key);
    std::vector<std::string> out;
    if (!n.IsDefined() || n.IsNull()) return out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
      return out;
    }
    if (!n.IsSequence()) {
      loader_.error(n, "'" + key + "' must be a list such as [a, b]");
      return out;
    }
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        loader_.error(item, "each entry of '" + key + "' must be a single value");
        continue;
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  void finish() {
    if (!valid_ || !node_.IsMap()) return;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string& key = it->first.Scalar();
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        loader_.error(it->first, "unknown key '" + key + "' in " + what_ + "; " + didYouMean(key, known_));
      }
    }
  }

 private:
  Loader& loader_;
  YAML::Node node_;
  std::string what_;
  std::vector<std::string> known_;
  bool valid_ = true;
};

// StageOptions over a YAML mapping.
class YamlStageOptions final : public StageOptions {
 public:
  YamlStageOptions(Loader& loader, YAML::Node stage_node, YAML::Node options, const std::string& stage_name)
      : loader_(loader), stage_node_(stage_node), reader_(loader, options, "the options of stage '" + stage_name + "'") {}

  std::optional<std::string> getString(std::string_view key) override { return reader_.string(std::string(key)); }
  std::optional<std::vector<std::string>> getStringList(std::string_view key) override {
    if (!reader_.has(std::string(key))) return std::nullopt;
    return reader_.stringList(std::string(key));
  }
  std::optional<bool> getBool(std::string_view key) override {
    if (!reader_.has(std::string(key))) return std::nullopt;
    bool value = false;
    size_t before = loader_.errors().size();
    reader_.boolean(std::string(key), value);
    if (loader_.errors().size() != before) return std::nullopt;
    return value;
  }
  void error(std::string_view key, std::string message) override {
    YAML::Node at = reader_.get(std::string(key));
    loader_.error(at.IsDefined() ? at : stage_node_, std::move(message));
  }
  const std::string& baseDir() const override { return loader_.baseDir(); }
  void finish() { reader_.finish(); }

 private:
  Loader& loader_;
  YAML::Node stage_node_;
  MapReader reader_;
};

}  // namespace

std::optional<UpstreamEndpoint> parseEndpoint(std::string_view url) {
  UpstreamEndpoint e;
  if (url.rfind("https://", 0) == 0) {
    e.https = true;
    url.remove_prefix(8);
  } else if (url.rfind("http://", 0) == 0) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.base_path = std::string(path);
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    e.port = static_cast<uint16_t>(value);
    authority = authority.substr(0, colon);
  } else {
    e.port = e.https ? 443 : 80;
  }
  if (authority.empty()) return std::nullopt;
  e.host = std::string(authority);
  return e;
}

namespace {

const std::set<std::string, std::less<>> kHttpMethods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

void readLimits(Loader& loader, YAML::Node node, ListenerLimits& limits) {
  MapReader r(loader, node, "limits");
  r.byteSize("max_header_bytes", limits.max_header_bytes);
  r.byteSize("max_body_bytes", limits.max_body_bytes);
  r.duration("header_timeout", limits.header_timeout);
  r.duration("body_timeout", limits.body_timeout);
  r.duration("write_timeout", limits.write_timeout);
  r.duration("idle_timeout", limits.idle_timeout);
  r.finish();
}

ListenerConfig readListener(Loader& loader, const YAML::Node& node, std::set<std::string>& names) {
  ListenerConfig l;
  MapReader r(loader, node, "a listener");
  r.string("name", l.name, true);
  if (!l.name.empty() && !names.insert(l.name).second) {
    loader.error(r.get("name"), "listener name '" + l.name + "' is used twice; give each listener its own name");
  }
  if (auto protocol = r.string("protocol")) {
    if (*protocol == "http") l.protocol = ListenerProtocol::Http;
    else if (*protocol == "https") l.protocol = ListenerProtocol::Https;
    else if (*protocol == "mllp") l.protocol = ListenerProtocol::Mllp;
    else loader.error(r.get("protocol"), "protocol must be http or https (mllp is reserved for HL7v2 listeners)");
  }
  r.string("address", l.address);
  r.integer<uint16_t>("port", l.port, 0, 65535);
  YAML::Node tls = r.get("tls");
  if (tls.IsDefined() && !tls.IsNull()) {
    ServerTlsConfig t;
    t.line = static_cast<uint32_t>(tls.Mark().line + 1);
    t.column = static_cast<uint32_t>(tls.Mark().column + 1);
    MapReader tr(loader, tls, "tls");
    tr.path("certificate", t.certificate_file, true);
    tr.path("private_key", t.private_key_file, true);
    tr.boolean("self_signed_if_missing", t.self_signed_if_missing);
    tr.path("client_ca", t.client_ca_file);
    tr.boolean("require_client_certificate", t.require_client_certificate);
    if (auto v = tr.string("min_version")) {
      if (*v != "1.2" && *v != "1.3") loader.error(tr.get("min_version"), "min_version must be \"1.2\" or \"1.3\"");
      else t.min_version = *v;
    }
    if (t.require_client_certificate && t.client_ca_file.empty()) {
      loader.error(tr.get("require_client_certificate"),
                   "require_client_certificate needs 'client_ca:' (the CA bundle that signs client certificates)");
    }
    tr.finish();
    l.tls = std::move(t);
  }
  if (l.protocol == ListenerProtocol::Https && !l.tls) {
    loader.error(r.node(), "listener '" + l.name + "' is https but has no 'tls:' (certificate, private_key)");
  }
  if (l.protocol == ListenerProtocol::Http && l.tls) {
    loader.error(r.get("tls"), "listener '" + l.name + "' has 'tls:' but protocol http; write 'protocol: https'");
  }
  readLimits(loader, r.get("limits"), l.limits);
  r.boolean("admin_endpoints", l.admin_endpoints);
  r.finish();
  return l;
}

UpstreamConfig readUpstream(Loader& loader, const YAML::Node& node, std::set<std::string>& names) {
  UpstreamConfig u;
  MapReader r(loader, node, "an upstream");
  r.string("name", u.name, true);
  if (!u.name.empty() && !names.insert(u.name).second) {
    loader.error(r.get("name"), "upstream name '" + u.name + "' is used twice");
  }
  YAML::Node endpoints = r.get("endpoints");
  for (const auto& url : r.stringList("endpoints")) {
    if (auto e = parseEndpoint(url)) {
      u.endpoints.push_back(std::move(*e));
    } else {
      loader.error(endpoints, "endpoint '" + url + "' is not an http:// or https:// URL such as http://fhir:8080/fhir");
    }
  }
  if (u.endpoints.empty() && endpoints.IsDefined()) loader.error(endpoints, "an upstream needs at least one endpoint");
  if (!endpoints.IsDefined()) loader.error(node, "upstream '" + u.name + "' needs 'endpoints: [http://host:port/base]'");
  if (auto f = r.string("format")) {
    if (*f == "json") u.format = WireFormat::Json;
    else if (*f == "xml") u.format = WireFormat::Xml;
    else loader.error(r.get("format"), "format must be json or xml (what the upstream reads and writes)");
  }
  YAML::Node tls = r.get("tls");
  if (tls.IsDefined() && !tls.IsNull()) {
    u.tls.line = static_cast<uint32_t>(tls.Mark().line + 1);
    u.tls.column = static_cast<uint32_t>(tls.Mark().column + 1);
    MapReader tr(loader, tls, "upstream tls");
    tr.boolean("verify", u.tls.verify);
    tr.path("ca", u.tls.ca_file);
    tr.path("certificate", u.tls.certificate_file);
    tr.path("private_key", u.tls.private_key_file);
    tr.string("server_name", u.tls.server_name);
    tr.boolean("session_reuse", u.tls.session_reuse);
    tr.finish();
  }
  r.integer<size_t>("max_idle_connections", u.max_idle_connections, 0, 10000);
  r.duration("connect_timeout", u.connect_timeout);
  r.duration("resolve_ttl", u.resolve_ttl, "a lookup for every new connection");
  r.duration("response_timeout", u.response_timeout);
  r.byteSize("max_response_bytes", u.max_response_bytes);
  YAML::Node health = r.get("health_check");
  if (health.IsDefined() && !health.IsNull()) {
    MapReader hr(loader, health, "health_check");
    u.health_check.enabled = true;
    hr.boolean("enabled", u.health_check.enabled);
    hr.string("path", u.health_check.path);
    hr.duration("interval", u.health_check.interval);
    hr.duration("timeout", u.health_check.timeout);
    hr.integer<uint32_t>("unhealthy_after", u.health_check.unhealthy_after, 1, 100);
    hr.finish();
  }
  r.finish();
  return u;
}

StageChain readStages(Loader& loader, const YAML::Node& node) {
  StageChain chain;
  if (!node.IsDefined() || node.IsNull()) return chain;
  if (!node.IsSequence()) {
    loader.error(node, "'stages' must be a list such as\n  stages:\n    - validate: { mode: enforce }");
    return chain;
  }
  const StageRegistry& registry = stageRegistry();
  for (const auto& item : node) {
    std::string name;
    YAML::Node options;
    if (item.IsScalar()) {
      name = item.Scalar();
    } else if (item.IsMap() && item.size() == 1) {
      name = item.begin()->first.Scalar();
      options = item.begin()->second;
    } else {
      loader.error(item, "each stage is one line 'name: { options }', e.g. '- validate: { mode: off }'");
      continue;
    }
    const StageFactory* factory = registry.find(name);
    if (!factory) {
      loader.error(item, "unknown stage '" + name + "'; " + didYouMean(name, registry.names(), "stages"));
      continue;
    }
    YamlStageOptions stage_options(loader, item, options, name);
    size_t before = loader.errors().size();
    std::shared_ptr<const Stage> stage;
    try {
      stage = factory->create(stage_options);
    } catch (const std::exception& e) {
      stage_options.error("", "stage '" + name + "' could not be set up: " + e.what());
    }
    stage_options.finish();
    if (stage && loader.errors().size() == before) chain.push_back({name, std::move(stage)});
  }
  return chain;
}

RouteConfig readRoute(Loader& loader, const YAML::Node& node, std::set<std::string>& names) {
  RouteConfig route;
  MapReader r(loader, node, "a route");
  r.string("name", route.name, true);
  if (!route.name.empty() && !names.insert(route.name).second) {
    loader.error(r.get("name"), "route name '" + route.name + "' is used twice");
  }
  YAML::Node match = r.get("match");
  if (match.IsDefined() && !match.IsNull()) {
    MapReader mr(loader, match, "match");
    mr.string("path_prefix", route.match.path_prefix);
    if (route.match.path_prefix.empty() || route.match.path_prefix[0] != '/') {
      loader.error(mr.get("path_prefix"), "path_prefix must start with '/', e.g. /fhir");
    }
    while (route.match.path_prefix.size() > 1 && route.match.path_prefix.back() == '/') route.match.path_prefix.pop_back();
    route.match.methods = mr.stringList("methods");
    for (auto& m : route.match.methods) {
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
      if (!kHttpMethods.count(m)) {
        loader.error(mr.get("methods"), "unknown HTTP method '" + m + "'; use GET, HEAD, POST, PUT, PATCH, DELETE");
      }
    }
    route.match.resource_types = mr.stringList("resource_types");
    route.match.clients = mr.stringList("clients");
    mr.finish();
  }
  route.stages = readStages(loader, r.get("stages"));
  YAML::Node forward = r.get("forward");
  if (forward.IsDefined() && !forward.IsNull()) {
    MapReader fr(loader, forward, "forward");
    fr.string("upstream", route.upstream, true);
    fr.boolean("convert_format", route.convert_format);
    fr.boolean("rewrite_urls", route.rewrite_urls);
    fr.finish();
  } else {
    loader.error(node, "route '" + route.name + "' needs 'forward: { upstream: NAME }'");
  }
  r.finish();
  return route;
}

}  // namespace

std::string formatConfigError(const ConfigError& error) {
  std::string out = error.file;
  if (error.line) out += ":" + std::to_string(error.line) + ":" + std::to_string(error.column);
  out += ": " + error.message;
  return out;
}

std::string UpstreamEndpoint::url() const {
  std::string out;
  out.reserve(16 + host.size() + base_path.size());
  out += https ? "https://" : "http://";
  out += host;
  out += ':';
  out += std::to_string(port);
  out += base_path;
  return out;
}

std::vector<std::string> listenerChangesNeedingRestart(const GatewayConfig& running, const GatewayConfig& reloaded) {
  auto http = [](const GatewayConfig& config) {
    std::vector<const ListenerConfig*> listeners;
    for (const auto& l : config.listeners) {
      if (l.protocol != ListenerProtocol::Mllp) listeners.push_back(&l);
    }
    return listeners;
  };
  auto find = [](const std::vector<const ListenerConfig*>& listeners, const std::string& name) -> const ListenerConfig* {
    for (const auto* l : listeners) {
      if (l->name == name) return l;
    }
    return nullptr;
  };
  std::vector<std::string> changes;
  const auto before = http(running), after = http(reloaded);
  for (const auto* now : after) {
    const ListenerConfig* was = find(before, now->name);
    if (!was) {
      changes.push_back("listener '" + now->name + "': added");
      continue;
    }
    std::string what;
    auto differs = [&what](bool same, const char* name) {
      if (!same) what += (what.empty() ? "" : ", ") + std::string(name);
    };
    differs(was->protocol == now->protocol, "protocol");
    differs(was->address == now->address, "address");
    differs(was->port == now->port, "port");
    if (!what.empty()) changes.push_back("listener '" + now->name + "': " + what);
  }
  for (const auto* was : before) {
    if (!find(after, was->name)) changes.push_back("listener '" + was->name + "': removed");
  }
  return changes;
}

const UpstreamConfig* GatewayConfig::findUpstream(std::string_view name) const {
  for (const auto& u : upstreams) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

std::optional<Millis> parseDuration(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || value < 0) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  if (unit.empty() || unit == "ms") return Millis(value);
  if (unit == "s") return Millis(value * 1000);
  if (unit == "m") return Millis(value * 60'000);
  return std::nullopt;
}

std::optional<size_t> parseByteSize(std::string_view text) {
  unsigned long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc()) return std::nullopt;
  std::string_view unit(end, text.data() + text.size() - end);
  if (unit.empty() || unit == "B") return value;
  if (unit == "KiB" || unit == "KB" || unit == "k") return value << 10;
  if (unit == "MiB" || unit == "MB" || unit == "M") return value << 20;
  if (unit == "GiB" || unit == "GB" || unit == "G") return value << 30;
  return std::nullopt;
}

tl::expected<std::shared_ptr<const GatewayConfig>, ConfigErrors> loadConfigText(const std::string& yaml,
                                                                                const std::string& file_name,
                                                                                const std::string& base_dir) {
  Loader loader(file_name, base_dir);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    loader.errorAt(static_cast<uint32_t>(e.mark.line + 1), static_cast<uint32_t>(e.mark.column + 1),
                   "this is not valid YAML: " + e.msg);
    return tl::unexpected(std::move(loader.errors()));
  }
  auto config = std::make_shared<GatewayConfig>();
  config->source_file = file_name;
  MapReader top(loader, root, "the config file");
  if (!root.IsMap()) {
    if (!top.valid()) return tl::unexpected(std::move(loader.errors()));
    loader.errorAt(1, 1, "the config is empty; it needs listeners:, upstreams: and routes:");
    return tl::unexpected(std::move(loader.errors()));
  }

  YAML::Node server = top.get("server");
  if (server.IsDefined() && !server.IsNull()) {
    MapReader sr(loader, server, "server");
    sr.integer<uint32_t>("workers", config->server.workers, 0, 256);
    sr.string("access_log", config->server.access_log);
    if (config->server.access_log != "stderr" && config->server.access_log != "stdout" &&
        config->server.access_log != "off") {
      config->server.access_log = loader.resolvePath(config->server.access_log);
    }
    sr.duration("drain_timeout", config->server.drain_timeout);
    sr.finish();
  }

  auto readList = [&](const char* key, auto&& readOne) {
    YAML::Node list = top.get(key);
    if (!list.IsDefined() || list.IsNull()) {
      loader.errorAt(1, 1, std::string("the config needs a '") + key + ":' list");
      return;
    }
    if (!list.IsSequence()) {
      loader.error(list, std::string("'") + key + "' must be a list of entries starting with '- name: ...'");
      return;
    }
    for (const auto& item : list) readOne(item);
  };
  std::set<std::string> listener_names, upstream_names, route_names;
  readList("listeners", [&](const YAML::Node& n) { config->listeners.push_back(readListener(loader, n, listener_names)); });
  readList("upstreams", [&](const YAML::Node& n) { config->upstreams.push_back(readUpstream(loader, n, upstream_names)); });
  readList("routes", [&](const YAML::Node& n) {
    RouteConfig route = readRoute(loader, n, route_names);
    if (!route.upstream.empty() && !upstream_names.count(route.upstream)) {
      std::vector<std::string> known(upstream_names.begin(), upstream_names.end());
      loader.error(n["forward"]["upstream"], "route '" + route.name + "' forwards to upstream '" + route.upstream +
                                                 "', which is not defined; " + didYouMean(route.upstream, known, "upstreams"));
    }
    config->routes.push_back(std::move(route));
  });
  // The HL7 v2 intake (MLLP listeners, store, delivery; issue 6) reads its own `hl7v2:` section
  // from the same file and checks it itself.
  top.get("hl7v2");
  top.finish();
  if (!loader.errors().empty()) return tl::unexpected(std::move(loader.errors()));
  return std::shared_ptr<const GatewayConfig>(std::move(config));
}

tl::expected<std::shared_ptr<const GatewayConfig>, ConfigErrors> loadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return tl::unexpected(ConfigErrors{{path, 0, 0, "cannot open the config file (check the path and permissions)"}});
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string base_dir = std::filesystem::absolute(path).parent_path().string();
  return loadConfigText(text.str(), path, base_dir);
}

}  // namespace medicus::gateway
