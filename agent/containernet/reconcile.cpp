#include "agent/containernet/reconcile.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>

namespace elasticdns::agent {

Result<rtnl::Ipv4Prefix> gatewayOf(const std::string& subnet) {
  auto p = rtnl::parseIpv4Prefix(subnet);
  if (!p || subnet.find('/') == std::string::npos || p->prefix > 30)
    return Error{"subnet", "not an IPv4 subnet up to /30: '" + subnet + "'"};
  in_addr a{};
  inet_pton(AF_INET, p->address.c_str(), &a);
  uint32_t host = ntohl(a.s_addr);
  uint32_t mask = p->prefix == 0 ? 0 : ~uint32_t{0} << (32 - p->prefix);
  if ((host & ~mask) != 0) return Error{"subnet", "host bits set: '" + subnet + "'"};
  a.s_addr = htonl(host + 1);
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return rtnl::Ipv4Prefix{buf, p->prefix};
}

DesiredNet desiredNet(const model::Topology& topology, const std::string& self,
                      const std::string& own_public_key) {
  DesiredNet d;
  std::string own_subnet;
  if (auto it = topology.servers.find(self); it != topology.servers.end()) {
    own_subnet = it->second.subnet;
    if (!own_subnet.empty()) {
      auto g = gatewayOf(own_subnet);
      if (g)
        d.gateway = g.value();
      else
        d.skipped.push_back(self + ": " + g.error().reason);
    }
  }
  std::set<std::string> keys;
  std::set<std::string> subnets;
  if (!own_public_key.empty()) keys.insert(own_public_key);
  if (!own_subnet.empty()) subnets.insert(own_subnet);
  for (const auto& [name, server] : topology.servers) {  // by name: the first one wins
    if (name == self) continue;
    if (server.subnet.empty()) {
      d.skipped.push_back(name + ": no subnet");
      continue;
    }
    if (!server.wireguard) {
      d.skipped.push_back(name + ": no wireguard key published");
      continue;
    }
    auto route = rtnl::parseIpv4Prefix(server.subnet);
    if (!route || server.subnet.find('/') == std::string::npos) {
      d.skipped.push_back(name + ": bad subnet " + server.subnet);
      continue;
    }
    if (!keys.insert(server.wireguard->public_key).second) {
      d.skipped.push_back(name + ": public key already used by another server");
      continue;
    }
    if (!subnets.insert(server.subnet).second) {
      d.skipped.push_back(name + ": subnet already used by another server");
      continue;
    }
    d.peers.push_back({server.wireguard->public_key, server.wireguard->endpoint, {server.subnet}});
    d.routes.push_back(route.value());
  }
  std::sort(d.peers.begin(), d.peers.end(),
            [](const PeerConfig& a, const PeerConfig& b) { return a.public_key < b.public_key; });
  std::sort(d.routes.begin(), d.routes.end());
  return d;
}

NetPlan planNet(const CurrentNet& current, const DesiredNet& desired) {
  NetPlan plan;
  std::map<std::string, const PeerConfig*> have;
  for (const auto& p : current.peers) have[p.public_key] = &p;
  std::set<std::string> want;
  for (const auto& p : desired.peers) {
    want.insert(p.public_key);
    auto it = have.find(p.public_key);
    if (it == have.end() || !(*it->second == p)) plan.peers.set.push_back(p);
  }
  for (const auto& [key, p] : have)
    if (!want.count(key)) plan.peers.remove.push_back(key);
  std::set<rtnl::Ipv4Prefix> have_routes(current.routes.begin(), current.routes.end());
  std::set<rtnl::Ipv4Prefix> want_routes(desired.routes.begin(), desired.routes.end());
  for (const auto& r : want_routes)
    if (!have_routes.count(r)) plan.add_routes.push_back(r);
  for (const auto& r : have_routes)
    if (!want_routes.count(r)) plan.remove_routes.push_back(r);
  return plan;
}

}  // namespace elasticdns::agent
