#include "elasticdns/validate.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

namespace elasticdns::validate {
namespace {

using nlohmann::json;

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool isAlnum(char c) {
  return isLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

Error err(std::string field, std::string reason) {
  return Error{std::move(field), std::move(reason)};
}

// Rejects fields outside `allowed`; returns the first unknown one.
std::optional<Error> checkKeys(const json& j, std::initializer_list<std::string_view> allowed,
                               std::string_view where) {
  if (!j.is_object()) return err(std::string(where), "must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (auto a : allowed) known = known || it.key() == a;
    if (!known) {
      std::string f = where.empty() ? it.key() : std::string(where) + "/" + it.key();
      return err(f, "unknown field");
    }
  }
  return std::nullopt;
}

std::optional<Error> getString(const json& j, const char* name, std::string& out, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return err(name, "is required");
    return std::nullopt;
  }
  if (!it->is_string()) return err(name, "must be a string");
  out = it->get<std::string>();
  return std::nullopt;
}

// Fills `field` from the URL key, or checks that body and URL agree.
std::optional<Error> keyed(std::string& field, std::string_view key, const char* name) {
  if (key.empty()) return std::nullopt;
  if (field.empty()) {
    field = std::string(key);
    return std::nullopt;
  }
  if (field != key) return err(name, "does not match the name in the URL");
  return std::nullopt;
}

std::optional<uint16_t> portNumber(const json& j) {
  if (j.is_number_unsigned() || j.is_number_integer()) {
    auto v = j.get<int64_t>();
    if (v >= 1 && v <= 65535) return static_cast<uint16_t>(v);
    return std::nullopt;
  }
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s.empty() || s.size() > 5) return std::nullopt;
    uint32_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v >= 1 && v <= 65535) return static_cast<uint16_t>(v);
  }
  return std::nullopt;
}

}  // namespace

bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelLength) return false;
  if (!isLowerAlnum(s.front()) || !isLowerAlnum(s.back())) return false;
  for (char c : s)
    if (!isLowerAlnum(c) && c != '-') return false;
  return true;
}

bool isDnsName(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (!isDnsLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool isIpv4(std::string_view s) {
  if (s.empty() || s.size() > 15) return false;
  char buf[16] = {};
  s.copy(buf, s.size());
  in_addr a;
  return inet_pton(AF_INET, buf, &a) == 1;
}

bool isIpv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  char buf[46] = {};
  s.copy(buf, s.size());
  in6_addr a;
  return inet_pton(AF_INET6, buf, &a) == 1;
}

bool isIpv4Subnet(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos || !isIpv4(s.substr(0, slash))) return false;
  std::string_view len = s.substr(slash + 1);
  if (len.empty() || len.size() > 2 || !std::all_of(len.begin(), len.end(), isDigit)) return false;
  int prefix = std::stoi(std::string(len));
  if (prefix < 8 || prefix > 30) return false;
  char buf[16] = {};
  s.substr(0, slash).copy(buf, slash);
  in_addr a;
  inet_pton(AF_INET, buf, &a);
  uint32_t host = ntohl(a.s_addr) & (0xffffffffu >> prefix);
  return host == 0;
}

bool isWireGuardKey(std::string_view s) {
  if (s.size() != 44 || s[43] != '=') return false;
  for (size_t i = 0; i < 43; ++i) {
    char c = s[i];
    if (!isAlnum(c) && c != '+' && c != '/') return false;
  }
  // The last character before '=' carries 2 bits of the key and 4 zero bits.
  static constexpr std::string_view kLast = "AEIMQUYcgkosw048";
  return kLast.find(s[42]) != std::string_view::npos;
}

bool isEndpoint(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= s.size() || s.size() - colon - 1 > 5)
    return false;
  std::string_view port = s.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), isDigit) || port.front() == '0') return false;
  if (int p = std::stoi(std::string(port)); p < 1 || p > 65535) return false;
  std::string_view host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return isIpv6(host.substr(1, host.size() - 2));
  return isIpv4(host);
}

bool isContainerId(std::string_view s) {
  if (s.empty() || s.size() > kMaxIdLength || !isAlnum(s.front())) return false;
  for (char c : s)
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

bool isVersionName(std::string_view s) {
  if (s.empty() || s.size() > kMaxVersionLength || !isAlnum(s.front())) return false;
  for (char c : s)
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-' && c != '+') return false;
  return true;
}

Result<model::Server> parseServer(const json& j, std::string_view key) {
  if (auto e = checkKeys(j, {"name", "address", "labels", "subnet", "wireguard"}, "")) return *e;
  model::Server s;
  if (auto e = getString(j, "name", s.name, key.empty())) return *e;
  if (auto e = keyed(s.name, key, "name")) return *e;
  if (!isDnsName(s.name)) return err("name", "must be a lowercase DNS name (a-z, 0-9, '-', '.')");
  if (auto e = getString(j, "address", s.address, true)) return *e;
  if (!isIpv4(s.address) && !isIpv6(s.address))
    return err("address", "must be an IPv4 or IPv6 address");
  if (auto it = j.find("labels"); it != j.end()) {
    if (!it->is_object()) return err("labels", "must be an object of strings");
    if (it->size() > kMaxLabels) return err("labels", "too many labels (max 64)");
    for (auto l = it->begin(); l != it->end(); ++l) {
      if (!isDnsName(l.key())) return err("labels/" + l.key(), "key must be a DNS name");
      if (!l->is_string()) return err("labels/" + l.key(), "must be a string");
      const auto& v = l->get_ref<const std::string&>();
      if (v.size() > kMaxLabelValueLength) return err("labels/" + l.key(), "longer than 255");
      s.labels[l.key()] = v;
    }
  }
  if (auto e = getString(j, "subnet", s.subnet, false)) return *e;
  if (!s.subnet.empty() && !isIpv4Subnet(s.subnet))
    return err("subnet", "must be an IPv4 network A.B.C.D/N (N 8..30, no host bits)");
  if (auto it = j.find("wireguard"); it != j.end()) {
    auto wg = parseWireGuard(*it);
    if (!wg)
      return Error{wg.error().field.empty() ? "wireguard" : "wireguard/" + wg.error().field,
                   wg.error().reason};
    s.wireguard = std::move(wg.value());
  }
  return s;
}

Result<model::WireGuardPeer> parseWireGuard(const json& j) {
  if (!j.is_object()) return err("", "must be an object {public_key, endpoint}");
  if (auto e = checkKeys(j, {"public_key", "endpoint"}, "")) return *e;
  model::WireGuardPeer w;
  if (auto e = getString(j, "public_key", w.public_key, true)) return *e;
  if (!isWireGuardKey(w.public_key))
    return err("public_key", "must be a WireGuard public key (base64 of 32 bytes)");
  if (auto e = getString(j, "endpoint", w.endpoint, true)) return *e;
  if (!isEndpoint(w.endpoint)) return err("endpoint", "must be IPV4:PORT or [IPV6]:PORT");
  return w;
}

Result<model::PortMapping> parsePort(const json& j) {
  model::PortMapping p;
  if (j.is_string() || j.is_number()) {
    std::string s = j.is_string() ? j.get<std::string>() : j.dump();
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t colon = s.find(':', start);
      parts.push_back(s.substr(start, colon == std::string::npos ? s.npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (parts.size() > 3) return err("", "short form is container[:http[:https]]");
    uint16_t* slots[] = {&p.container, &p.http, &p.https};
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0 && parts[i].empty()) continue;  // "3000::443"
      auto v = portNumber(json(parts[i]));
      if (!v) return err("", "'" + parts[i] + "' is not a port number (1-65535)");
      *slots[i] = *v;
    }
    return p;
  }
  if (auto e = checkKeys(j, {"container", "http", "https", "tcp", "udp"}, "")) return *e;
  std::pair<const char*, uint16_t*> fields[] = {{"container", &p.container},
                                                {"http", &p.http},
                                                {"https", &p.https},
                                                {"tcp", &p.tcp},
                                                {"udp", &p.udp}};
  for (auto& [name, slot] : fields) {
    auto it = j.find(name);
    if (it == j.end()) continue;
    auto v = portNumber(*it);
    if (!v) return err(name, "must be a port number (1-65535)");
    *slot = *v;
  }
  if (p.container == 0) return err("container", "is required");
  return p;
}

Result<model::Service> parseService(const json& j, std::string_view key) {
  if (auto e =
          checkKeys(j, {"name", "dns_behaviour", "load_balancing", "ports", "traffic_matches"}, ""))
    return *e;
  model::Service s;
  if (auto e = getString(j, "name", s.name, key.empty())) return *e;
  if (auto e = keyed(s.name, key, "name")) return *e;
  if (!isDnsLabel(s.name)) return err("name", "must be a lowercase DNS label (a-z, 0-9, '-')");
  std::string v;
  if (j.contains("dns_behaviour")) {
    if (auto e = getString(j, "dns_behaviour", v, true)) return *e;
    auto b = model::parseDnsBehaviour(v);
    if (!b) return err("dns_behaviour", "must be 'versioned' or 'non-versioned'");
    s.dns_behaviour = *b;
  }
  if (j.contains("load_balancing")) {
    if (auto e = getString(j, "load_balancing", v, true)) return *e;
    auto b = model::parseLoadBalancing(v);
    if (!b) return err("load_balancing", "must be 'roundrobin', 'sticky' or 'closest'");
    s.load_balancing = *b;
  }
  if (auto it = j.find("ports"); it != j.end()) {
    if (!it->is_array()) return err("ports", "must be a list");
    if (it->size() > kMaxPorts) return err("ports", "too many entries (max 32)");
    for (size_t i = 0; i < it->size(); ++i) {
      auto p = parsePort((*it)[i]);
      if (!p) {
        std::string f = "ports/" + std::to_string(i);
        if (!p.error().field.empty()) f += "/" + p.error().field;
        return err(f, p.error().reason);
      }
      s.ports.push_back(p.value());
    }
  }
  if (auto it = j.find("traffic_matches"); it != j.end()) {
    if (!it->is_array()) return err("traffic_matches", "must be a list of strings");
    if (it->size() > kMaxTrafficMatches) return err("traffic_matches", "too many (max 64)");
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& m = (*it)[i];
      if (!m.is_string() || m.get_ref<const std::string&>().empty() ||
          m.get_ref<const std::string&>().size() > kMaxNameLength)
        return err("traffic_matches/" + std::to_string(i), "must be a name of 1-253 chars");
      s.traffic_matches.push_back(m.get<std::string>());
    }
  }
  return s;
}

Result<model::Container> parseContainer(const json& j, std::string_view key) {
  if (auto e =
          checkKeys(j, {"id", "service", "version", "server", "address", "address6", "state"}, ""))
    return *e;
  model::Container c;
  if (auto e = getString(j, "id", c.id, key.empty())) return *e;
  if (auto e = keyed(c.id, key, "id")) return *e;
  if (!isContainerId(c.id)) return err("id", "must be 1-128 of [A-Za-z0-9_.-]");
  if (auto e = getString(j, "service", c.service, true)) return *e;
  if (!isDnsLabel(c.service)) return err("service", "must be a lowercase DNS label");
  if (auto e = getString(j, "version", c.version, true)) return *e;
  if (!isVersionName(c.version)) return err("version", "must be 1-64 of [A-Za-z0-9_.+-]");
  if (auto e = getString(j, "server", c.server, true)) return *e;
  if (!isDnsName(c.server)) return err("server", "must be a lowercase DNS name");
  if (auto e = getString(j, "address", c.address, false)) return *e;
  if (auto e = getString(j, "address6", c.address6, false)) return *e;
  if (!c.address.empty() && !isIpv4(c.address)) return err("address", "must be an IPv4 address");
  if (!c.address6.empty() && !isIpv6(c.address6)) return err("address6", "must be an IPv6 address");
  if (c.address.empty() && c.address6.empty())
    return err("address", "a container needs address or address6");
  std::string state;
  if (auto e = getString(j, "state", state, false)) return *e;
  if (!state.empty()) {
    auto s = model::parseContainerState(state);
    if (!s) return err("state", "must be 'running' or 'draining'");
    c.state = *s;
  }
  return c;
}

Result<model::Datasource> parseDatasource(const json& j, std::string_view type,
                                          std::string_view group) {
  if (auto e = checkKeys(j, {"type", "group", "primary", "addresses"}, "")) return *e;
  model::Datasource d;
  d.group.clear();
  if (auto e = getString(j, "type", d.type, type.empty())) return *e;
  if (auto e = keyed(d.type, type, "type")) return *e;
  if (auto e = getString(j, "group", d.group, false)) return *e;
  if (auto e = keyed(d.group, group, "group")) return *e;
  if (d.group.empty()) d.group = "default";
  if (!isDnsLabel(d.type)) return err("type", "must be a lowercase DNS label");
  if (!isDnsLabel(d.group)) return err("group", "must be a lowercase DNS label");
  if (auto it = j.find("primary"); it != j.end()) {
    if (!it->is_boolean()) return err("primary", "must be true or false");
    d.primary = it->get<bool>();
  }
  auto it = j.find("addresses");
  if (it == j.end()) return err("addresses", "is required");
  if (!it->is_array() || it->empty()) return err("addresses", "must be a non-empty list");
  if (it->size() > kMaxDatasourceAddresses) return err("addresses", "too many (max 64)");
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& a = (*it)[i];
    if (!a.is_string() ||
        (!isIpv4(a.get_ref<const std::string&>()) && !isIpv6(a.get_ref<const std::string&>())))
      return err("addresses/" + std::to_string(i), "must be an IPv4 or IPv6 address");
    d.addresses.push_back(a.get<std::string>());
  }
  return d;
}

std::optional<Error> checkTopology(const model::Topology& t) {
  if (t.servers.size() > kMaxServers) return err("servers", "too many");
  if (t.services.size() > kMaxServices) return err("services", "too many");
  if (t.containers.size() > kMaxContainers) return err("containers", "too many");
  if (t.datasources.size() > kMaxDatasources) return err("datasources", "too many");
  if (t.versions.size() > kMaxVersions) return err("versions", "too many");
  std::set<uint64_t> generations;
  for (const auto& [name, g] : t.versions) {
    if (!isVersionName(name)) return err("versions/" + name, "bad version name");
    if (g == 0 || !generations.insert(g).second)
      return err("versions/" + name, "generation must be unique and non-zero");
  }
  for (const auto& [id, c] : t.containers) {
    if (id != c.id) return err("containers/" + id, "key does not match id");
    if (!t.versions.count(c.version))
      return err("containers/" + id + "/version", "version has no generation");
  }
  for (const auto& [key, d] : t.datasources)
    if (key != d.key()) return err("datasources/" + key, "key does not match type/group");
  return std::nullopt;
}

namespace {

// One service's claim on an external port.
struct PortClaim {
  const char* kind;  // "http", "https", "tcp", "udp"
  const model::Service* service;
};

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<Error> checkClaim(const PortClaim& a, const PortClaim& b, uint16_t port) {
  std::string where = "services/" + b.service->name;
  std::string what = std::string(b.kind) + " port " + std::to_string(port);
  if (a.service == b.service) return err(where + "/ports", what + " is published twice");
  std::string both = "services '" + a.service->name + "' and '" + b.service->name + "'";
  if (std::string_view(a.kind) != b.kind)
    return err(where + "/ports",
               what + ": " + both + " publish it as " + a.kind + " and " + b.kind);
  if (std::string_view(a.kind) == "tcp" || std::string_view(a.kind) == "udp")
    return err(where + "/ports", what + " is published by both " + both);
  if (a.service->traffic_matches.empty() || b.service->traffic_matches.empty())
    return err(where + "/traffic_matches",
               what + " is published by both " + both + ": each needs distinct traffic_matches");
  std::set<std::string> theirs;
  for (const auto& m : a.service->traffic_matches) theirs.insert(lowered(m));
  for (const auto& m : b.service->traffic_matches)
    if (theirs.count(lowered(m)))
      return err(where + "/traffic_matches", what + ": " + both + " both match '" + m + "'");
  return std::nullopt;
}

}  // namespace

std::optional<Error> checkPortSharing(const std::map<std::string, model::Service>& services,
                                      const std::set<std::string>* touched) {
  // {udp?, port} → the claims so far, in service-name order.
  std::map<std::pair<bool, uint16_t>, std::vector<PortClaim>> claims;
  for (const auto& [name, s] : services) {
    for (const auto& p : s.ports) {
      std::pair<const char*, uint16_t> published[] = {
          {"http", p.http}, {"https", p.https}, {"tcp", p.tcp}, {"udp", p.udp}};
      for (const auto& [kind, port] : published) {
        if (port == 0) continue;
        PortClaim claim{kind, &s};
        auto& list = claims[{std::string_view(kind) == "udp", port}];
        for (const auto& other : list) {
          if (touched && !touched->count(other.service->name) && !touched->count(name)) continue;
          if (auto e = checkClaim(other, claim, port)) return e;
        }
        list.push_back(claim);
      }
    }
  }
  return std::nullopt;
}

}  // namespace elasticdns::validate
