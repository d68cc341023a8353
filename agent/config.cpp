#include "agent/config.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "agent/util/whole_number.hpp"
#include "elasticdns/text.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::agent {
namespace {

namespace ip = boost::asio::ip;
constexpr uint16_t kDnsPort = 53;  // RFC 1035 4.2
constexpr size_t kMaxListen = 16;
constexpr size_t kMaxListEntries = 256;

Error err(const std::string& key, const std::string& reason) {
  return Error{key, reason};
}

Result<std::string> scalar(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return err(key, "must be a scalar");
  return n.Scalar();
}

Result<bool> boolean(const YAML::Node& n, const std::string& key) {
  auto s = scalar(n, key);
  if (!s) return s.error();
  if (s.value() == "true" || s.value() == "yes") return true;
  if (s.value() == "false" || s.value() == "no") return false;
  return err(key, "must be true or false");
}

Result<std::vector<std::string>> stringList(const YAML::Node& n, const std::string& key) {
  if (n.IsNull()) return std::vector<std::string>{};
  if (!n.IsSequence()) return err(key, "must be a list");
  if (n.size() > kMaxListEntries) return err(key, "too many entries");
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) {
    auto s = scalar(n[i], key + "/" + std::to_string(i));
    if (!s) return s.error();
    out.push_back(s.value());
  }
  return out;
}

/// A duration (text::parseDuration), rounded up to whole seconds, at most `max`.
Result<std::chrono::seconds> duration(const YAML::Node& n, const std::string& key,
                                      std::chrono::seconds max) {
  auto s = scalar(n, key);
  if (!s) return s.error();
  auto d = text::parseDuration(s.value());
  if (!d) return err(key, d.error().reason);
  auto secs = std::chrono::ceil<std::chrono::seconds>(d.value());
  if (secs > max) return err(key, "more than " + std::to_string(max.count()) + "s");
  return secs;
}

/// text::parseHostPort as an address and port; the address alone when `default_port` is set.
Result<std::pair<ip::address, uint16_t>> endpoint(const std::string& value, const std::string& key,
                                                  std::optional<uint16_t> default_port) {
  auto hp = text::parseHostPort(value, default_port);
  if (!hp) return err(key, hp.error().reason);
  boost::system::error_code ec;
  auto address = ip::make_address(hp->host, ec);  // a zone names an interface that must exist
  if (ec) return err(key, "not an address of this host: '" + hp->host + "'");
  return std::pair{address, hp->port};
}

const std::set<std::string> kTopKeys = {"domain",       "listen",         "server_name",
                                        "central",      "upstreams",      "ttl",
                                        "negative_ttl", "sticky_window",  "stale_after",
                                        "state_dir",    "allow_networks", "metrics_listen",
                                        "bpf",          "docker",         "forward_limit",
                                        "traffic",      "nameserver",     "upstream_failure_cache",
                                        "containernet"};
const std::set<std::string> kForwardLimitKeys = {"per_second", "burst"};
const std::set<std::string> kNameserverKeys = {"name", "addresses"};
const std::set<std::string> kFailureCacheKeys = {"initial", "max"};
const std::set<std::string> kCentralKeys = {"urls", "token_file"};
const std::set<std::string> kBpfKeys = {
    "enabled", "cgroup", "redirect", "exclude_cgroups", "container_id_pattern", "pin_path"};

std::optional<Error> unknownKeys(const YAML::Node& map, const std::set<std::string>& known,
                                 const std::string& prefix) {
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return err(prefix, "keys must be strings");
    if (!known.count(kv.first.Scalar())) return err(prefix + kv.first.Scalar(), "unknown key");
  }
  return std::nullopt;
}

const std::set<std::string> kDockerKeys = {"enabled", "socket", "networks"};

// A whole number from `min` to `max`.
Result<uint32_t> count(const YAML::Node& n, const std::string& key, uint32_t min, uint32_t max) {
  auto v = scalar(n, key);
  if (!v) return v.error();
  return parseWholeNumber(v.value(), key, min, max);
}

// forward_limit: {per_second, burst}.
std::optional<Error> parseForwardLimit(const YAML::Node& n, AgentConfig::ForwardLimit& out) {
  if (!n.IsMap()) return err("forward_limit", "must be a mapping");
  if (auto e = unknownKeys(n, kForwardLimitKeys, "forward_limit/")) return e;
  if (n["per_second"]) {
    auto v = count(n["per_second"], "forward_limit/per_second", 0, kMaxForwardRate);
    if (!v) return v.error();
    out.per_second = v.value();
  }
  if (n["burst"]) {
    auto v = count(n["burst"], "forward_limit/burst", 1, kMaxForwardRate);
    if (!v) return v.error();
    out.burst = v.value();
  }
  return std::nullopt;
}

// docker: {enabled, socket, networks} (docker_config.hpp). Discovery registers containers
// under server_name, so it needs one.
Result<DockerConfig> parseDocker(const YAML::Node& n) {
  DockerConfig d;
  if (n.IsNull()) return d;
  if (!n.IsMap()) return err("docker", "must be a mapping");
  if (auto e = unknownKeys(n, kDockerKeys, "docker/")) return *e;
  if (n["enabled"]) {
    auto v = boolean(n["enabled"], "docker/enabled");
    if (!v) return v.error();
    d.enabled = v.value();
  }
  if (n["socket"]) {
    auto v = scalar(n["socket"], "docker/socket");
    if (!v) return v.error();
    if (v->empty() || v->front() != '/') return err("docker/socket", "must be an absolute path");
    d.socket = v.value();
  }
  if (n["networks"]) {
    auto v = stringList(n["networks"], "docker/networks");
    if (!v) return v.error();
    d.networks = v.value();
  }
  return d;
}

Result<BpfConfig> parseBpf(const YAML::Node& n) {
  BpfConfig b;
  if (n.IsNull()) return b;
  if (!n.IsMap()) return err("bpf", "must be a mapping");
  if (auto e = unknownKeys(n, kBpfKeys, "bpf/")) return *e;
  if (n["enabled"]) {
    auto v = boolean(n["enabled"], "bpf/enabled");
    if (!v) return v.error();
    b.enabled = v.value();
  }
  if (n["redirect"]) {
    auto v = boolean(n["redirect"], "bpf/redirect");
    if (!v) return v.error();
    b.redirect = v.value();
  }
  for (const char* k : {"cgroup", "container_id_pattern", "pin_path"}) {
    if (!n[k]) continue;
    auto v = scalar(n[k], std::string("bpf/") + k);
    if (!v) return v.error();
    std::string key = k;
    if (key == "cgroup") b.cgroup = v.value();
    if (key == "pin_path") b.pin_path = v.value();
    if (key == "container_id_pattern" && !v.value().empty()) {
      try {
        std::regex re(v.value(), std::regex::ECMAScript);
        if (re.mark_count() != 1)
          return err("bpf/container_id_pattern", "needs exactly one capture group");
      } catch (const std::regex_error& e) {
        return err("bpf/container_id_pattern", std::string("bad regex: ") + e.what());
      }
      b.container_id_pattern = v.value();
    }
  }
  if (n["exclude_cgroups"]) {
    auto v = stringList(n["exclude_cgroups"], "bpf/exclude_cgroups");
    if (!v) return v.error();
    b.exclude_cgroups = v.value();
  }
  if (b.enabled && b.cgroup.empty()) return err("bpf/cgroup", "required when bpf is enabled");
  if (b.pin_path.empty() || b.pin_path[0] != '/')
    return err("bpf/pin_path", "must be an absolute path");
  return b;
}

// Each key (or group of keys) of the top-level mapping, in the order they are checked: a config
// with several mistakes reports the first of them.

std::optional<Error> parseDomain(const YAML::Node& root, AgentConfig& c) {
  if (!root["domain"]) return std::nullopt;
  auto v = scalar(root["domain"], "domain");
  if (!v) return v.error();
  std::string d = v.value();
  if (!d.empty() && d.back() == '.') d.pop_back();
  if (!validate::isDnsName(d) || d.size() > 200)
    return err("domain", "not a lowercase DNS name (at most 200 chars): '" + v.value() + "'");
  c.domain = d;
  return std::nullopt;
}

std::optional<Error> parseListen(const YAML::Node& root, AgentConfig& c) {
  if (!root["listen"]) {
    c.listen.emplace_back(ip::make_address("127.0.0.1"), kDnsPort);
    return std::nullopt;
  }
  auto v = stringList(root["listen"], "listen");
  if (!v) return v.error();
  if (v->empty()) return err("listen", "must not be empty");
  if (v->size() > kMaxListen) return err("listen", "at most 16 addresses");
  for (size_t i = 0; i < v->size(); ++i) {
    auto e = endpoint(v.value()[i], "listen/" + std::to_string(i), std::nullopt);
    if (!e) return e.error();
    c.listen.emplace_back(e->first, e->second);
  }
  return std::nullopt;
}

std::optional<Error> parseServerName(const YAML::Node& root, AgentConfig& c) {
  if (!root["server_name"]) return std::nullopt;
  auto v = scalar(root["server_name"], "server_name");
  if (!v) return v.error();
  if (!validate::isDnsName(v.value()))
    return err("server_name", "not a DNS name: '" + v.value() + "'");
  c.server_name = v.value();
  return std::nullopt;
}

std::optional<Error> parseCentral(const YAML::Node& root, AgentConfig& c) {
  if (!root["central"]) return std::nullopt;
  const YAML::Node& n = root["central"];
  if (!n.IsMap()) return err("central", "must be a mapping");
  if (auto e = unknownKeys(n, kCentralKeys, "central/")) return *e;
  if (n["urls"]) {
    auto v = stringList(n["urls"], "central/urls");
    if (!v) return v.error();
    for (size_t i = 0; i < v->size(); ++i) {
      auto url = text::parseHttpUrl(v.value()[i]);
      if (!url) return err("central/urls/" + std::to_string(i), url.error().reason);
    }
    c.central_urls = v.value();
  }
  if (n["token_file"]) {
    auto v = scalar(n["token_file"], "central/token_file");
    if (!v) return v.error();
    c.central_token_file = v.value();
  }
  return std::nullopt;
}

std::optional<Error> parseUpstreams(const YAML::Node& root, AgentConfig& c) {
  if (!root["upstreams"]) return std::nullopt;
  auto v = stringList(root["upstreams"], "upstreams");
  if (!v) return v.error();
  for (size_t i = 0; i < v->size(); ++i) {
    auto e = endpoint(v.value()[i], "upstreams/" + std::to_string(i), kDnsPort);
    if (!e) return e.error();
    if (e->second == 0) return err("upstreams/" + std::to_string(i), "port 0");
    c.upstreams.emplace_back(e->first, e->second);
  }
  return std::nullopt;
}

std::optional<Error> parseDurations(const YAML::Node& root, AgentConfig& c) {
  struct D {
    const char* key;
    std::chrono::seconds* out;
    std::chrono::seconds max;
  };
  for (const D& d : {D{"ttl", &c.ttl, kMaxTtl}, D{"negative_ttl", &c.negative_ttl, kMaxTtl},
                     D{"sticky_window", &c.sticky_window, kMaxTtl},
                     D{"stale_after", &c.stale_after, std::chrono::seconds(365 * 86400)}}) {
    if (!root[d.key]) continue;
    auto v = duration(root[d.key], d.key, d.max);
    if (!v) return v.error();
    *d.out = v.value();
  }
  if (c.sticky_window.count() == 0) return err("sticky_window", "must be at least 1s");
  return std::nullopt;
}

std::optional<Error> parseStateDir(const YAML::Node& root, AgentConfig& c) {
  if (!root["state_dir"]) return std::nullopt;
  auto v = scalar(root["state_dir"], "state_dir");
  if (!v) return v.error();
  c.state_dir = v.value();
  return std::nullopt;
}

std::optional<Error> parseAllowNetworks(const YAML::Node& root, AgentConfig& c) {
  if (!root["allow_networks"]) return std::nullopt;
  auto v = stringList(root["allow_networks"], "allow_networks");
  if (!v) return v.error();
  for (size_t i = 0; i < v->size(); ++i) {
    auto cidr = parseCidr(v.value()[i]);
    if (!cidr) return err("allow_networks/" + std::to_string(i), cidr.error().reason);
    c.allow_networks.push_back(cidr.value());
  }
  return std::nullopt;
}

std::optional<Error> parseMetricsListen(const YAML::Node& root, AgentConfig& c) {
  if (!root["metrics_listen"]) return std::nullopt;
  auto v = scalar(root["metrics_listen"], "metrics_listen");
  if (!v) return v.error();
  auto e = endpoint(v.value(), "metrics_listen", std::nullopt);
  if (!e) return e.error();
  c.metrics_listen = ip::tcp::endpoint(e->first, e->second);
  return std::nullopt;
}

std::optional<Error> parseSubsystems(const YAML::Node& root, AgentConfig& c) {
  if (root["forward_limit"]) {
    if (auto e = parseForwardLimit(root["forward_limit"], c.forward_limit)) return *e;
  }
  if (root["bpf"]) {
    auto b = parseBpf(root["bpf"]);
    if (!b) return b.error();
    c.bpf = b.value();
  }
  if (root["docker"]) {
    auto d = parseDocker(root["docker"]);
    if (!d) return d.error();
    c.docker = d.value();
    if (c.docker.enabled && c.server_name.empty())
      return err("docker/enabled", "Docker discovery needs server_name");
    if (c.docker.enabled && c.central_urls.empty())
      return err("docker/enabled", "Docker discovery needs central/urls");
  }
  if (root["traffic"]) {
    auto t = parseTrafficConfig(root["traffic"]);
    if (!t) return t.error();
    c.traffic = t.value();
  }
  if (root["containernet"]) {
    auto n = parseContainerNetConfig(root["containernet"]);
    if (!n) return n.error();
    c.containernet = n.value();
    if (c.containernet.enabled && c.server_name.empty())
      return err("containernet/enabled", "ContainerNet needs server_name");
  }
  return std::nullopt;
}

// nameserver: {name, addresses}. The name is checked against the domain, parsed before it.
std::optional<Error> parseNameserver(const YAML::Node& root, AgentConfig& c) {
  if (!root["nameserver"]) return std::nullopt;
  const YAML::Node& n = root["nameserver"];
  if (!n.IsMap()) return err("nameserver", "must be a mapping");
  if (auto e = unknownKeys(n, kNameserverKeys, "nameserver/")) return *e;
  if (n["name"]) {
    auto v = scalar(n["name"], "nameserver/name");
    if (!v) return v.error();
    std::string name = v.value();
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (!validate::isDnsName(name) || name.size() > 253)
      return err("nameserver/name", "not a lowercase DNS name: '" + v.value() + "'");
    if (name == c.domain) return err("nameserver/name", "must not be the domain itself");
    c.nameserver.name = name;
  }
  if (n["addresses"]) {
    auto v = stringList(n["addresses"], "nameserver/addresses");
    if (!v) return v.error();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string key = "nameserver/addresses/" + std::to_string(i);
      boost::system::error_code ec;
      auto a = ip::make_address(v.value()[i], ec);
      if (ec) return err(key, "not an IP address: '" + v.value()[i] + "'");
      if (a.is_unspecified()) return err(key, "an unspecified address is no address of a host");
      c.nameserver.addresses.push_back(a);
    }
  }
  const std::string name = c.nameserver.name.empty() ? "ns." + c.domain : c.nameserver.name;
  if (!c.nameserver.addresses.empty() && !name.ends_with("." + c.domain))
    return err("nameserver/addresses",
               "only a name inside the domain has addresses here; '" + name + "' is outside");
  return std::nullopt;
}

// upstream_failure_cache: {initial, max}, each within RFC 9520's 1 s to 5 minutes.
std::optional<Error> parseUpstreamFailureCache(const YAML::Node& root, AgentConfig& c) {
  if (!root["upstream_failure_cache"]) return std::nullopt;
  const YAML::Node& n = root["upstream_failure_cache"];
  if (!n.IsMap()) return err("upstream_failure_cache", "must be a mapping");
  if (auto e = unknownKeys(n, kFailureCacheKeys, "upstream_failure_cache/")) return *e;
  auto& f = c.upstream_failure_cache;
  for (auto [key, out] : {std::pair{"initial", &f.initial}, std::pair{"max", &f.max}}) {
    if (!n[key]) continue;
    const std::string k = std::string("upstream_failure_cache/") + key;
    auto v = duration(n[key], k, kMaxFailureHold);
    if (!v) return v.error();
    if (v.value() < kMinFailureHold) return err(k, "less than 1s (RFC 9520 3.2)");
    *out = v.value();
  }
  if (f.max < f.initial) return err("upstream_failure_cache/max", "less than initial");
  return std::nullopt;
}

Result<AgentConfig> parseNode(const YAML::Node& root) {
  AgentConfig c;
  if (root.IsNull()) {
    c.listen.emplace_back(ip::make_address("127.0.0.1"), kDnsPort);
    return c;
  }
  if (!root.IsMap()) return err("", "the config must be a YAML mapping");
  if (auto e = unknownKeys(root, kTopKeys, "")) return *e;
  using Section = std::optional<Error> (*)(const YAML::Node&, AgentConfig&);
  for (Section parse : {parseDomain, parseListen, parseServerName, parseCentral, parseUpstreams,
                        parseDurations, parseStateDir, parseAllowNetworks, parseMetricsListen,
                        parseSubsystems, parseNameserver, parseUpstreamFailureCache})
    if (auto e = parse(root, c)) return *e;
  return c;
}

}  // namespace

Result<AgentConfig> parseConfig(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Error{"", "not valid YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
  try {
    return parseNode(root);
  } catch (const YAML::Exception& e) {
    return Error{"", "bad config: " + e.msg};
  }
}

Result<AgentConfig> loadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path, "cannot read the config file"};
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = parseConfig(ss.str());
  if (!c)
    return Error{path + (c.error().field.empty() ? "" : ": " + c.error().field), c.error().reason};
  return c;
}

std::vector<Cidr> defaultAllowNetworks(const std::vector<ip::udp::endpoint>& listen) {
  std::vector<Cidr> out = {Cidr{ip::make_address("127.0.0.0"), 8},
                           Cidr{ip::make_address("::1"), 128}};
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    ip::address addr, mask;
    if (fam == AF_INET) {
      ip::address_v4::bytes_type a, m;
      std::memcpy(a.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      std::memcpy(m.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr, 4);
      addr = ip::address_v4(a);
      mask = ip::address_v4(m);
    } else {
      ip::address_v6::bytes_type a, m;
      std::memcpy(a.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      std::memcpy(m.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_netmask)->sin6_addr, 16);
      addr = ip::address_v6(a);
      mask = ip::address_v6(m);
    }
    auto prefixOf = [](const auto& mask_bytes) {
      unsigned bits = 0;
      for (uint8_t b : mask_bytes) bits += static_cast<unsigned>(std::popcount(b));
      return bits;
    };
    Cidr net{addr,
             mask.is_v4() ? prefixOf(mask.to_v4().to_bytes()) : prefixOf(mask.to_v6().to_bytes())};
    for (const auto& l : listen) {
      if (l.address().is_unspecified() || net.contains(l.address())) {
        out.push_back(net);
        break;
      }
    }
  }
  freeifaddrs(ifs);
  return out;
}

std::vector<ip::address> apexNsAddresses(const AgentConfig& config) {
  if (!config.nameserver.addresses.empty()) return config.nameserver.addresses;
  std::vector<ip::address> out, loopback;
  auto add = [](std::vector<ip::address>& v, const ip::address& a) {
    if (std::find(v.begin(), v.end(), a) == v.end()) v.push_back(a);
  };
  for (const auto& l : config.listen) {
    const ip::address a = l.address();
    if (!a.is_unspecified())
      add(out, a);
    else
      add(loopback, a.is_v4() ? ip::address(ip::address_v4::loopback())
                              : ip::address(ip::address_v6::loopback()));
  }
  return out.empty() ? loopback : out;
}

}  // namespace elasticdns::agent
