#include "agent/traffic/traffic_config.hpp"

#include <set>

#include "elasticdns/text.hpp"

namespace elasticdns::agent {
namespace {

const std::set<std::string> kTrafficKeys = {
    "enabled", "nginx",   "http_file",       "stream_file", "test_includes",
    "reload",  "unit",    "pid_file",        "cert_dir",    "resolver",
    "valid",   "retries", "connect_timeout", "work_dir",    "main_conf"};

Error err(const std::string& key, const std::string& reason) {
  return Error{"traffic/" + key, reason};
}

Result<std::string> scalar(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return err(key, "must be a scalar");
  return n.Scalar();
}

Result<std::string> absolutePath(const YAML::Node& n, const std::string& key) {
  auto v = scalar(n, key);
  if (!v) return v;
  if (v->empty() || v->front() != '/') return err(key, "must be an absolute path");
  return v;
}

Result<std::chrono::milliseconds> duration(const YAML::Node& n, const std::string& key,
                                           std::chrono::milliseconds min,
                                           std::chrono::milliseconds max) {
  auto v = scalar(n, key);
  if (!v) return v.error();
  auto d = text::parseDuration(v.value());
  if (!d) return err(key, d.error().reason);
  if (d.value() < min || d.value() > max)
    return err(key, "out of range " + std::to_string(min.count()) + "ms.." +
                        std::to_string(max.count()) + "ms: " + v.value());
  return d.value();
}

std::optional<Error> parsePaths(const YAML::Node& n, TrafficConfig& t) {
  std::pair<const char*, std::string*> paths[] = {
      {"nginx", &t.nginx},       {"http_file", &t.http_file}, {"stream_file", &t.stream_file},
      {"pid_file", &t.pid_file}, {"cert_dir", &t.cert_dir},   {"work_dir", &t.work_dir}};
  for (auto& [key, out] : paths) {
    if (!n[key]) continue;
    auto v = absolutePath(n[key], key);
    if (!v) return v.error();
    *out = v.value();
  }
  if (t.http_file == t.stream_file) return err("stream_file", "must differ from http_file");
  if (n["main_conf"]) {
    auto v = scalar(n["main_conf"], "main_conf");
    if (!v) return v.error();
    if (!v->empty() && v->front() != '/')
      return err("main_conf", "must be an absolute path or \"\"");
    t.main_conf = v.value();
  }
  if (n["test_includes"]) {
    const auto& list = n["test_includes"];
    if (!list.IsSequence()) return err("test_includes", "must be a list of absolute paths");
    t.test_includes.clear();
    for (size_t i = 0; i < list.size(); ++i) {
      auto v = absolutePath(list[i], "test_includes/" + std::to_string(i));
      if (!v) return v.error();
      t.test_includes.push_back(v.value());
    }
  }
  return std::nullopt;
}

std::optional<Error> parseReload(const YAML::Node& n, TrafficConfig& t) {
  if (n["reload"]) {
    auto v = scalar(n["reload"], "reload");
    if (!v) return v.error();
    if (v.value() == "systemctl")
      t.reload = NginxReload::kSystemctl;
    else if (v.value() == "signal")
      t.reload = NginxReload::kSignal;
    else
      return err("reload", "must be 'systemctl' or 'signal'");
  }
  if (n["unit"]) {
    auto v = scalar(n["unit"], "unit");
    if (!v) return v.error();
    if (v->empty() || v->find_first_of(" \t\n/") != std::string::npos)
      return err("unit", "must be a systemd unit name");
    t.unit = v.value();
  }
  return std::nullopt;
}

std::optional<Error> parseProxy(const YAML::Node& n, TrafficConfig& t) {
  if (n["resolver"]) {
    auto v = scalar(n["resolver"], "resolver");
    if (!v) return v.error();
    if (!v->empty()) {
      auto hp = text::parseHostPort(v.value(), 53);
      if (!hp) return err("resolver", hp.error().reason);
      t.resolver = text::formatHostPort(hp->host, hp->port);
    }
  }
  if (n["valid"]) {
    auto d = duration(n["valid"], "valid", std::chrono::seconds(1), kMaxTrafficValid);
    if (!d) return d.error();
    t.valid = std::chrono::ceil<std::chrono::seconds>(d.value());
  }
  if (n["connect_timeout"]) {
    auto d = duration(n["connect_timeout"], "connect_timeout", std::chrono::milliseconds(1),
                      kMaxConnectTimeout);
    if (!d) return d.error();
    t.connect_timeout = d.value();
  }
  if (n["retries"]) {
    auto v = scalar(n["retries"], "retries");
    if (!v) return v.error();
    const std::string& s = v.value();
    if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(s) < 1 || std::stoul(s) > kMaxTrafficRetries)
      return err("retries", "must be a whole number 1.." + std::to_string(kMaxTrafficRetries));
    t.retries = static_cast<uint32_t>(std::stoul(s));
  }
  return std::nullopt;
}

}  // namespace

Result<TrafficConfig> parseTrafficConfig(const YAML::Node& n) {
  TrafficConfig t;
  if (n.IsNull()) return t;
  if (!n.IsMap()) return Error{"traffic", "must be a mapping"};
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return Error{"traffic", "keys must be strings"};
    if (!kTrafficKeys.count(kv.first.Scalar())) return err(kv.first.Scalar(), "unknown key");
  }
  if (n["enabled"]) {
    auto v = scalar(n["enabled"], "enabled");
    if (!v) return v.error();
    if (v.value() == "true" || v.value() == "yes")
      t.enabled = true;
    else if (v.value() == "false" || v.value() == "no")
      t.enabled = false;
    else
      return err("enabled", "must be true or false");
  }
  for (auto parse : {parsePaths, parseReload, parseProxy})
    if (auto e = parse(n, t)) return *e;
  return t;
}

}  // namespace elasticdns::agent
