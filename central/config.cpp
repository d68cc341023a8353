#include "central/config.hpp"

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "central/apply.hpp"
#include "elasticdns/text.hpp"

namespace elasticdns::central {
namespace {

std::optional<uint64_t> parseCount(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The `containernet:` section over `base` (keys not given keep base's values).
Result<ContainerNetConfig> parseContainerNet(const nlohmann::json& j,
                                             std::optional<ContainerNetConfig> base) {
  if (!j.is_object()) return Error{"containernet", "must be a map {cluster_cidr, subnet_prefix}"};
  ContainerNetConfig c = base.value_or(ContainerNetConfig{});
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string field = "containernet/" + it.key();
    if (it.key() != "cluster_cidr" && it.key() != "subnet_prefix")
      return Error{field, "unknown key (cluster_cidr, subnet_prefix)"};
    if (!it->is_string()) return Error{field, "must be a single value"};
    std::string v = it->get<std::string>();
    if (it.key() == "cluster_cidr") {
      c.cluster_cidr = v;
    } else {
      auto n = parseCount(v);
      if (!n || *n > 32) return Error{field, "must be a prefix length, e.g. 24"};
      c.subnet_prefix = static_cast<int>(*n);
    }
  }
  if (c.cluster_cidr.empty()) return Error{"containernet/cluster_cidr", "is required"};
  auto ipam = Ipam::create(c.cluster_cidr, c.subnet_prefix);
  if (!ipam) return ipam.error();
  c.cluster_cidr = ipam->clusterCidr();
  return c;
}

// The `etcd: tls:` section over `base`: file names only (EtcdStore::open reads the files).
Result<TlsFiles> parseEtcdTls(const nlohmann::json& j, TlsFiles t) {
  if (!j.is_object()) return Error{"etcd/tls", "must be a map {ca_file, cert_file, key_file}"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string field = "etcd/tls/" + it.key();
    std::string* file = it.key() == "ca_file"     ? &t.ca_file
                        : it.key() == "cert_file" ? &t.cert_file
                        : it.key() == "key_file"  ? &t.key_file
                                                  : nullptr;
    if (!file) return Error{field, "unknown key (ca_file, cert_file, key_file)"};
    if (!it->is_string() || it->get<std::string>().empty())
      return Error{field, "must be a file's path"};
    *file = it->get<std::string>();
  }
  return t;
}

// The `etcd:` section over `base`.
Result<EtcdConfig> parseEtcd(const nlohmann::json& j, EtcdConfig c) {
  if (!j.is_object())
    return Error{"etcd",
                 "must be a map {endpoints, prefix, timeout, username, password_file, "
                 "max_txn_ops, tls}"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string field = "etcd/" + it.key();
    if (it.key() == "endpoints") {
      std::vector<std::string> list;
      if (it->is_string()) {  // a flag's comma-separated list
        std::string v = it->get<std::string>();
        size_t start = 0;
        while (start <= v.size()) {
          size_t comma = v.find(',', start);
          if (comma == std::string::npos) comma = v.size();
          list.push_back(v.substr(start, comma - start));
          start = comma + 1;
        }
      } else if (it->is_array()) {
        for (const auto& e : *it) {
          if (!e.is_string()) return Error{field, "must be a list of http(s)://HOST:PORT"};
          list.push_back(e.get<std::string>());
        }
      } else {
        return Error{field, "must be a list of http(s)://HOST:PORT"};
      }
      if (list.empty() || list.size() > 16) return Error{field, "must list 1..16 endpoints"};
      for (auto& e : list) {
        auto url = text::parseHttpUrl(e, text::UrlSchemes::kHttpOrHttps);
        if (!url || !url->base.empty())
          return Error{field, "'" + e + "' is not http://HOST:PORT or https://HOST:PORT"};
        e = url->text();
      }
      c.endpoints = std::move(list);
      continue;
    }
    if (it.key() == "tls") {
      auto t = parseEtcdTls(*it, c.tls);
      if (!t) return t.error();
      c.tls = t.value();
      continue;
    }
    if (!it->is_string()) return Error{field, "must be a single value"};
    std::string v = it->get<std::string>();
    if (it.key() == "prefix") {
      if (v.empty() || v.size() > 256 || v.front() != '/' || v.back() != '/')
        return Error{field, "must start and end with '/', e.g. /elasticdns/"};
      c.prefix = v;
    } else if (it.key() == "timeout") {
      auto d = text::parseDuration(v);
      if (!d || d.value().count() < 100 || d.value().count() > 60'000)
        return Error{field, "must be a duration of 100ms..60s"};
      c.timeout = d.value();
    } else if (it.key() == "username") {
      c.username = v;
    } else if (it.key() == "password_file") {
      c.password_file = v;
    } else if (it.key() == "max_txn_ops") {
      auto n = parseCount(v);
      if (!n || *n < 2 || *n > 1'000'000) return Error{field, "must be 2..1000000"};
      c.max_txn_ops = *n;
    } else {
      return Error{field,
                   "unknown key (endpoints, prefix, timeout, username, password_file, "
                   "max_txn_ops, tls)"};
    }
  }
  if (!c.username.empty() && c.password_file.empty())
    return Error{"etcd/password_file", "is required with a username"};
  if (auto e = checkEtcdTls(c)) return *e;
  return c;
}

}  // namespace

Result<Config> withContainerNetFlags(Config base, std::optional<std::string> cluster_cidr,
                                     std::optional<std::string> subnet_prefix) {
  if (!cluster_cidr && !subnet_prefix) return base;
  nlohmann::json section = nlohmann::json::object();
  if (cluster_cidr) section["cluster_cidr"] = *cluster_cidr;
  if (subnet_prefix) section["subnet_prefix"] = *subnet_prefix;
  auto c = parseContainerNet(section, base.containernet);
  if (!c) return c.error();
  base.containernet = c.value();
  return base;
}

Ipam ipamOf(const ContainerNetConfig& c) {
  auto ipam = Ipam::create(c.cluster_cidr, c.subnet_prefix);
  if (!ipam) std::abort();  // parseConfig accepted it
  return ipam.value();
}

Result<Config> parseConfig(std::string_view yaml, Config c) {
  auto doc = yamlToJson(yaml);
  if (!doc) return doc.error();
  const auto& j = doc.value();
  if (j.is_null()) return c;
  if (!j.is_object()) return Error{"", "the config is a map of keys"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "containernet") {
      auto cn = parseContainerNet(*it, c.containernet);
      if (!cn) return cn.error();
      c.containernet = cn.value();
      continue;
    }
    if (key == "etcd") {
      auto e = parseEtcd(*it, c.etcd);
      if (!e) return e.error();
      c.etcd = e.value();
      continue;
    }
    if (!it->is_string()) return Error{key, "must be a single value"};
    std::string v = it->get<std::string>();
    if (key == "store") {
      if (v == "sqlite")
        c.store = StoreKind::kSqlite;
      else if (v == "etcd")
        c.store = StoreKind::kEtcd;
      else
        return Error{key, "must be 'sqlite' or 'etcd'"};
    } else if (key == "listen") {
      if (!text::parseHostPort(v)) return Error{key, "must be ADDR:PORT or [V6ADDR]:PORT"};
      c.listen = v;
    } else if (key == "data_dir") {
      c.data_dir = v;
    } else if (key == "admin_token_file") {
      c.admin_token_file = v;
    } else if (key == "agent_token_file") {
      c.agent_token_file = v;
    } else if (key == "agent_tokens_file") {
      c.agent_tokens_file = v;
    } else if (key == "durability") {
      if (v == "full")
        c.durability = Durability::kFull;
      else if (v == "normal")
        c.durability = Durability::kNormal;
      else
        return Error{key, "must be 'full' or 'normal'"};
    } else if (key == "change_log_retention") {
      auto n = parseCount(v);
      if (!n || *n < 1 || *n > 10'000'000) return Error{key, "must be 1..10000000"};
      c.change_log_retention = *n;
    } else if (key == "max_connections") {
      auto n = parseCount(v);
      if (!n || *n < 1 || *n > 1'000'000) return Error{key, "must be 1..1000000"};
      c.max_connections = *n;
    } else if (key == "max_watchers") {
      auto n = parseCount(v);
      if (!n || *n > 1'000'000) return Error{key, "must be 0..1000000"};
      c.max_watchers = *n;
    } else if (key == "idle_timeout") {
      auto d = text::parseDuration(v);
      if (!d || d.value().count() < 100) return Error{key, "must be a duration of at least 100ms"};
      c.idle_timeout = d.value();
    } else if (key == "agent_report_ttl") {
      auto d = text::parseDuration(v);
      if (!d || d.value().count() < 100) return Error{key, "must be a duration of at least 100ms"};
      c.agent_report_ttl = d.value();
    } else if (key == "log_level") {
      if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error")
        return Error{key, "must be trace, debug, info, warn or error"};
      c.log_level = v;
    } else {
      return Error{key, "unknown key"};
    }
  }
  return c;
}

}  // namespace elasticdns::central
