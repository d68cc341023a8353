#pragma once
// ContainerNet's policy, pure: from the topology to the peers, routes and gateway address this
// host should have, and from what it has to the changes that get it there. No sockets.
#include <optional>
#include <string>
#include <vector>

#include "agent/containernet/rtnetlink.hpp"
#include "agent/containernet/uapi.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::agent {

/// Every peer gets this keepalive: a handshake at least every 2 minutes keeps
/// elasticdns_containernet_last_handshake_age_seconds a liveness signal, and keeps a NAT or
/// stateful firewall between hosts open for the peer that only answers.
constexpr uint32_t kPersistentKeepaliveSeconds = 25;

/// This host's end of the mesh as the topology wants it.
struct DesiredNet {
  std::vector<PeerConfig> peers;         // by public key
  std::vector<rtnl::Ipv4Prefix> routes;  // the other servers' subnets, sorted
  /// The first host address of this server's subnet with the subnet's prefix ("10.240.3.1/24");
  /// absent when the server has no subnet.
  std::optional<rtnl::Ipv4Prefix> gateway;
  /// Why a server got no peer (no subnet, no key yet, a key or subnet another server has too).
  std::vector<std::string> skipped;
  bool operator==(const DesiredNet&) const = default;
};

/// For every server other than `self` with a subnet and a wireguard identity: a peer
/// {public_key, endpoint, allowed_ips = {subnet}} and a route to the subnet. A public key that
/// is this host's own (`own_public_key`) or that an earlier server (by name) already has, and a
/// subnet that equals this host's, get no peer.
DesiredNet desiredNet(const model::Topology& topology, const std::string& self,
                      const std::string& own_public_key);

/// What the interface has now.
struct CurrentNet {
  std::vector<PeerConfig> peers;
  std::vector<rtnl::Ipv4Prefix> routes;  // ContainerNet's routes out of the interface
};

struct NetPlan {
  PeerPlan peers;
  std::vector<rtnl::Ipv4Prefix> add_routes;
  std::vector<rtnl::Ipv4Prefix> remove_routes;
  bool empty() const { return peers.empty() && add_routes.empty() && remove_routes.empty(); }
  bool operator==(const NetPlan&) const = default;
};

/// The changes from `current` to `desired`: peers whose key is not desired are removed (a
/// changed key is a removal and an addition), peers missing or with another endpoint or
/// allowed IPs are set; routes added and removed likewise.
NetPlan planNet(const CurrentNet& current, const DesiredNet& desired);

/// The first host address of an IPv4 subnet, with the subnet's prefix ("10.240.3.0/24" →
/// 10.240.3.1/24). An Error for anything but a network address with a prefix up to /30.
Result<rtnl::Ipv4Prefix> gatewayOf(const std::string& subnet);

}  // namespace elasticdns::agent
