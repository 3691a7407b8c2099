#include "mllp/intake_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace medicus::gateway::mllp {
namespace {

class Reader {
 public:
  Reader(std::string file, std::string base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  void error(const YAML::Node& at, std::string message) {
    ConfigError e{file_, 0, 0, std::move(message)};
    if (at.IsDefined() && at.Mark().line >= 0) {
      e.line = static_cast<uint32_t>(at.Mark().line + 1);
      e.column = static_cast<uint32_t>(at.Mark().column + 1);
    }
    errors_.push_back(std::move(e));
  }
  ConfigErrors& errors() { return errors_; }
  std::string resolve(const std::string& path) const {
    if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
  }

  // Checks that `node` is a mapping with only `known` keys.
  bool mapping(const YAML::Node& node, const std::string& what, std::initializer_list<const char*> known) {
    if (!node.IsMap()) {
      error(node, what + " must be a mapping (key: value lines)");
      return false;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string& key = it->first.Scalar();
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
        std::string list;
        for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        error(it->first, "unknown key '" + key + "' in " + what + "; known keys: " + list);
      }
    }
    return true;
  }
  std::optional<std::string> scalar(const YAML::Node& map, const char* key) {
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return std::nullopt;
    if (!n.IsScalar()) {
      error(n, std::string("'") + key + "' must be a single value");
      return std::nullopt;
    }
    return n.Scalar();
  }
  void duration(const YAML::Node& map, const char* key, Millis& out) {
    if (auto v = scalar(map, key)) {
      auto d = parseDuration(*v);
      if (!d || d->count() <= 0) error(map[key], std::string("'") + key + "' must be a duration such as 500ms, 30s or 10m");
      else out = *d;
    }
  }
  void bytes(const YAML::Node& map, const char* key, size_t& out) {
    if (auto v = scalar(map, key)) {
      auto b = parseByteSize(*v);
      if (!b || *b == 0) error(map[key], std::string("'") + key + "' must be a size such as 64KiB or 4MiB");
      else out = *b;
    }
  }
  template <class Int>
  void integer(const YAML::Node& map, const char* key, Int& out, long long min, long long max) {
    if (auto v = scalar(map, key)) {
      try {
        long long value = std::stoll(*v);
        if (value < min || value > max || std::to_string(value) != *v) throw std::out_of_range(*v);
        out = static_cast<Int>(value);
      } catch (const std::exception&) {
        error(map[key], std::string("'") + key + "' must be a whole number from " + std::to_string(min) + " to " +
                            std::to_string(max));
      }
    }
  }
  std::vector<std::string> list(const YAML::Node& map, const char* key) {
    std::vector<std::string> out;
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return out;
    if (!n.IsSequence()) {
      error(n, std::string("'") + key + "' must be a list such as [a, b]");
      return out;
    }
    for (const auto& item : n) out.push_back(item.Scalar());
    return out;
  }

  hl7v2::CharsetPolicy charset(const YAML::Node& node) {
    hl7v2::CharsetPolicy policy;
    if (!mapping(node, "charset", {"mode", "default"})) return policy;
    if (auto mode = scalar(node, "mode")) {
      if (*mode == "trust-msh18") policy.mode = hl7v2::CharsetPolicy::Mode::kTrustMsh18;
      else if (*mode == "force") policy.mode = hl7v2::CharsetPolicy::Mode::kForce;
      else error(node["mode"], "charset mode must be trust-msh18 (MSH-18, default when empty) or force");
    }
    if (auto name = scalar(node, "default")) {
      if (auto c = hl7v2::charsetFromMsh18(*name)) policy.default_charset = *c;
      else error(node["default"], "unknown charset '" + *name + "'; use ASCII, 8859/1, 8859/15 or UNICODE UTF-8");
    }
    return policy;
  }

 private:
  std::string file_;
  std::string base_dir_;
  ConfigErrors errors_;
};

MllpListenerConfig readListener(Reader& r, const YAML::Node& node, std::set<std::string>& names) {
  MllpListenerConfig l;
  if (!r.mapping(node, "an hl7v2 listener",
                 {"name", "address", "port", "route", "charset", "senders", "accepted_versions", "message_types",
                  "max_message_bytes", "read_timeout", "idle_timeout", "write_timeout", "tls"})) {
    return l;
  }
  if (auto name = r.scalar(node, "name")) l.policy.listener_name = *name;
  else r.error(node, "an hl7v2 listener needs 'name:'");
  if (!l.policy.listener_name.empty() && !names.insert(l.policy.listener_name).second) {
    r.error(node["name"], "listener name '" + l.policy.listener_name + "' is used twice");
  }
  if (auto a = r.scalar(node, "address")) l.address = *a;
  r.integer(node, "port", l.port, 0, 65535);
  if (auto route = r.scalar(node, "route")) l.policy.route = *route;
  if (node["charset"].IsDefined()) l.policy.charset = r.charset(node["charset"]);
  if (YAML::Node senders = node["senders"]; senders.IsDefined() && !senders.IsNull()) {
    if (!senders.IsSequence()) r.error(senders, "'senders' must be a list of { sender: \"APP|FACILITY\", charset: {...} }");
    else {
      for (const auto& s : senders) {
        if (!r.mapping(s, "a sender", {"sender", "charset"})) continue;
        SenderCharsetPolicy p;
        if (auto id = r.scalar(s, "sender")) p.sender = *id;
        else r.error(s, "a sender needs 'sender: \"MSH-3|MSH-4\"'");
        if (s["charset"].IsDefined()) p.charset = r.charset(s["charset"]);
        l.policy.senders.push_back(std::move(p));
      }
    }
  }
  if (node["accepted_versions"].IsDefined()) l.policy.accepted_versions = r.list(node, "accepted_versions");
  l.policy.accepted_message_types = r.list(node, "message_types");
  r.bytes(node, "max_message_bytes", l.max_message_bytes);
  r.duration(node, "read_timeout", l.read_timeout);
  r.duration(node, "idle_timeout", l.idle_timeout);
  r.duration(node, "write_timeout", l.write_timeout);
  if (YAML::Node tls = node["tls"]; tls.IsDefined() && !tls.IsNull()) {
    if (r.mapping(tls, "tls", {"certificate", "private_key", "self_signed_if_missing", "client_ca",
                               "require_client_certificate", "min_version"})) {
      ServerTlsConfig t;
      t.line = static_cast<uint32_t>(tls.Mark().line + 1);
      t.column = static_cast<uint32_t>(tls.Mark().column + 1);
      if (auto v = r.scalar(tls, "certificate")) t.certificate_file = r.resolve(*v);
      else r.error(tls, "tls needs 'certificate:' (PEM chain)");
      if (auto v = r.scalar(tls, "private_key")) t.private_key_file = r.resolve(*v);
      else r.error(tls, "tls needs 'private_key:' (PEM)");
      if (auto v = r.scalar(tls, "client_ca")) t.client_ca_file = r.resolve(*v);
      t.self_signed_if_missing = r.scalar(tls, "self_signed_if_missing").value_or("false") == "true";
      t.require_client_certificate = r.scalar(tls, "require_client_certificate").value_or("false") == "true";
      if (auto v = r.scalar(tls, "min_version")) t.min_version = *v;
      if (t.require_client_certificate && t.client_ca_file.empty()) {
        r.error(tls, "require_client_certificate needs 'client_ca:' (the CA bundle that signs client certificates)");
      }
      l.tls = std::move(t);
    }
  }
  return l;
}

DeliveryRouteConfig readRoute(Reader& r, const YAML::Node& node, const GatewayConfig* gateway) {
  DeliveryRouteConfig d;
  if (!r.mapping(node, "a delivery route",
                 {"name", "upstream", "maps", "max_attempts", "initial_backoff", "max_backoff", "batch_size",
                  "poll_interval"})) {
    return d;
  }
  if (auto v = r.scalar(node, "name")) d.name = *v;
  else r.error(node, "a delivery route needs 'name:'");
  if (auto v = r.scalar(node, "upstream")) d.upstream = *v;
  else r.error(node, "delivery route '" + d.name + "' needs 'upstream:' (a name from upstreams:)");
  if (gateway && !d.upstream.empty() && !gateway->findUpstream(d.upstream)) {
    r.error(node["upstream"], "delivery route '" + d.name + "' uses upstream '" + d.upstream +
                                  "', which is not defined under upstreams:");
  }
  if (auto v = r.scalar(node, "maps")) d.maps_dir = r.resolve(*v);
  r.integer(node, "max_attempts", d.retry.max_attempts, 1, 1000);
  r.duration(node, "initial_backoff", d.retry.initial_backoff);
  r.duration(node, "max_backoff", d.retry.max_backoff);
  r.integer(node, "batch_size", d.batch_size, 1, 10000);
  r.duration(node, "poll_interval", d.poll_interval);
  return d;
}

}  // namespace

tl::expected<std::optional<IntakeConfig>, ConfigErrors> loadIntakeConfigText(const std::string& yaml,
                                                                            const std::string& file_name,
                                                                            const std::string& base_dir,
                                                                            const GatewayConfig* gateway) {
  Reader r(file_name, base_dir);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return tl::unexpected(ConfigErrors{{file_name, static_cast<uint32_t>(e.mark.line + 1),
                                        static_cast<uint32_t>(e.mark.column + 1), "this is not valid YAML: " + e.msg}});
  }
  if (!root.IsMap() || !root["hl7v2"].IsDefined() || root["hl7v2"].IsNull()) return std::optional<IntakeConfig>();
  YAML::Node section = root["hl7v2"];
  IntakeConfig config;
  if (r.mapping(section, "hl7v2", {"store", "listeners", "delivery", "threads"})) {
    YAML::Node store = section["store"];
    if (store.IsDefined() && r.mapping(store, "hl7v2 store", {"file", "postgres"})) {
      if (auto f = r.scalar(store, "file")) config.store_file = r.resolve(*f);
      if (auto d = r.scalar(store, "postgres")) config.store_postgres_dsn = *d;
      if (!config.store_file.empty() && !config.store_postgres_dsn.empty()) {
        r.error(store, "the store is either 'file: ...' (SQLite) or 'postgres: \"<connection string>\"', not both");
      }
    }
    if (config.store_file.empty() && config.store_postgres_dsn.empty()) {
      r.error(section, "hl7v2 needs 'store: { file: medicus-data/messages.db }' or 'store: { postgres: \"host=... dbname=...\" }'");
    }
    r.integer(section, "threads", config.threads, 1, 64);
    std::set<std::string> names;
    if (YAML::Node ls = section["listeners"]; ls.IsDefined() && !ls.IsNull()) {
      if (!ls.IsSequence()) r.error(ls, "'listeners' must be a list of entries starting with '- name: ...'");
      else for (const auto& n : ls) config.listeners.push_back(readListener(r, n, names));
    }
    std::set<std::string> route_names;
    if (YAML::Node ds = section["delivery"]; ds.IsDefined() && !ds.IsNull()) {
      if (!ds.IsSequence()) r.error(ds, "'delivery' must be a list of routes starting with '- name: ...'");
      else {
        for (const auto& n : ds) {
          config.routes.push_back(readRoute(r, n, gateway));
          if (!route_names.insert(config.routes.back().name).second) r.error(n, "delivery route name used twice");
        }
      }
    }
    for (size_t i = 0; i < config.listeners.size(); ++i) {
      const auto& route = config.listeners[i].policy.route;
      if (!route.empty() && !route_names.count(route)) {
        r.error(section["listeners"][i]["route"], "listener '" + config.listeners[i].policy.listener_name +
                                                      "' delivers to route '" + route +
                                                      "', which is not defined under hl7v2: delivery:");
      }
    }
  }
  if (!r.errors().empty()) return tl::unexpected(std::move(r.errors()));
  return std::optional<IntakeConfig>(std::move(config));
}

tl::expected<std::optional<IntakeConfig>, ConfigErrors> loadIntakeConfig(const std::string& path,
                                                                        const GatewayConfig* gateway) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return tl::unexpected(ConfigErrors{{path, 0, 0, "cannot open the config file"}});
  std::stringstream text;
  text << in.rdbuf();
  return loadIntakeConfigText(text.str(), path, std::filesystem::absolute(path).parent_path().string(), gateway);
}

}  // namespace medicus::gateway::mllp
