// ContainerNet's policy, pure: the desired peers, routes and gateway from a topology, and the
// plan from what the interface has to that.
#include "agent/containernet/reconcile.hpp"

#include <gtest/gtest.h>

namespace elasticdns::agent {
namespace {

// Three distinct valid keys (base64 of 32 bytes).
const std::string kKeyA = "YAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyB = "YBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyC = "YCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kKeyD = "YDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

model::Server server(const std::string& name, const std::string& address, const std::string& subnet,
                     const std::string& key) {
  model::Server s;
  s.name = name;
  s.address = address;
  s.subnet = subnet;
  if (!key.empty()) s.wireguard = model::WireGuardPeer{key, address + ":51820"};
  return s;
}

model::Topology topologyOf(std::vector<model::Server> servers) {
  model::Topology t;
  for (auto& s : servers) t.servers[s.name] = std::move(s);
  return t;
}

rtnl::Ipv4Prefix prefix(const std::string& text) {
  return rtnl::parseIpv4Prefix(text).value();
}

TEST(DesiredNet, OnePeerAndRoutePerOtherServer) {
  auto t = topologyOf({server("h1", "192.0.2.1", "10.240.1.0/24", kKeyA),
                       server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB),
                       server("h3", "192.0.2.3", "10.240.3.0/24", kKeyC)});
  auto d = desiredNet(t, "h1", kKeyA);
  ASSERT_EQ(d.peers.size(), 2u);
  EXPECT_EQ(d.peers[0], (PeerConfig{kKeyB, "192.0.2.2:51820", {"10.240.2.0/24"}}));
  EXPECT_EQ(d.peers[1], (PeerConfig{kKeyC, "192.0.2.3:51820", {"10.240.3.0/24"}}));
  EXPECT_EQ(d.routes,
            (std::vector<rtnl::Ipv4Prefix>{prefix("10.240.2.0/24"), prefix("10.240.3.0/24")}));
  ASSERT_TRUE(d.gateway);
  EXPECT_EQ(d.gateway->toString(), "10.240.1.1/24");
  EXPECT_TRUE(d.skipped.empty());
}

TEST(DesiredNet, ServersWithoutSubnetOrKeyGetNoPeer) {
  auto t = topologyOf({server("h1", "192.0.2.1", "10.240.1.0/24", kKeyA),
                       server("h2", "192.0.2.2", "", kKeyB),
                       server("h3", "192.0.2.3", "10.240.3.0/24", ""),
                       server("h4", "192.0.2.4", "10.240.4.0/24", kKeyD)});
  auto d = desiredNet(t, "h1", kKeyA);
  ASSERT_EQ(d.peers.size(), 1u);
  EXPECT_EQ(d.peers[0].public_key, kKeyD);
  EXPECT_EQ(d.routes, (std::vector<rtnl::Ipv4Prefix>{prefix("10.240.4.0/24")}));
  EXPECT_EQ(d.skipped.size(), 2u);
}

TEST(DesiredNet, OwnServerWithoutSubnetHasNoGateway) {
  auto t = topologyOf(
      {server("h1", "192.0.2.1", "", kKeyA), server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB)});
  auto d = desiredNet(t, "h1", kKeyA);
  EXPECT_FALSE(d.gateway);
  EXPECT_EQ(d.peers.size(), 1u);
  // A server this agent does not find in the topology: peers all the same (h1 has no subnet),
  // no gateway.
  auto unknown = desiredNet(t, "h9", "");
  EXPECT_FALSE(unknown.gateway);
  EXPECT_EQ(unknown.peers.size(), 1u);
}

TEST(DesiredNet, DuplicateKeysAndSubnetsGetNoSecondPeer) {
  auto t = topologyOf({server("h1", "192.0.2.1", "10.240.1.0/24", kKeyA),
                       server("h2", "192.0.2.2", "10.240.2.0/24", kKeyA),  // h1's key
                       server("h3", "192.0.2.3", "10.240.3.0/24", kKeyC),
                       server("h4", "192.0.2.4", "10.240.3.0/24", kKeyD),    // h3's subnet
                       server("h5", "192.0.2.5", "10.240.5.0/24", kKeyC)});  // h3's key
  auto d = desiredNet(t, "h1", kKeyA);
  ASSERT_EQ(d.peers.size(), 1u);
  EXPECT_EQ(d.peers[0].public_key, kKeyC);
  EXPECT_EQ(d.peers[0].allowed_ips, std::vector<std::string>{"10.240.3.0/24"});
  EXPECT_EQ(d.skipped.size(), 3u);
}

TEST(GatewayOf, FirstHostWithThePrefix) {
  EXPECT_EQ(gatewayOf("10.240.3.0/24")->toString(), "10.240.3.1/24");
  EXPECT_EQ(gatewayOf("10.240.0.0/16")->toString(), "10.240.0.1/16");
  EXPECT_EQ(gatewayOf("10.0.0.252/30")->toString(), "10.0.0.253/30");
  EXPECT_FALSE(gatewayOf("10.240.3.1/24").ok());  // host bits
  EXPECT_FALSE(gatewayOf("10.240.3.0/31").ok());
  EXPECT_FALSE(gatewayOf("10.240.3.0").ok());
  EXPECT_FALSE(gatewayOf("fd00::/64").ok());
}

class PlanNet : public ::testing::Test {
 protected:
  DesiredNet desired(std::vector<model::Server> others) {
    others.push_back(server("h1", "192.0.2.1", "10.240.1.0/24", kKeyA));
    return desiredNet(topologyOf(std::move(others)), "h1", kKeyA);
  }
  // What the interface has after applying `plan` to `current` (the device's semantics).
  static CurrentNet applied(CurrentNet current, const NetPlan& plan) {
    std::erase_if(current.peers, [&](const PeerConfig& p) {
      for (const auto& k : plan.peers.remove)
        if (k == p.public_key) return true;
      for (const auto& s : plan.peers.set)
        if (s.public_key == p.public_key) return true;
      return false;
    });
    for (const auto& s : plan.peers.set) current.peers.push_back(s);
    std::erase_if(current.routes, [&](const rtnl::Ipv4Prefix& r) {
      return std::find(plan.remove_routes.begin(), plan.remove_routes.end(), r) !=
             plan.remove_routes.end();
    });
    for (const auto& r : plan.add_routes) current.routes.push_back(r);
    return current;
  }
};

TEST_F(PlanNet, FromNothingAddsEverything) {
  auto d = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB),
                    server("h3", "192.0.2.3", "10.240.3.0/24", kKeyC)});
  auto plan = planNet({}, d);
  EXPECT_EQ(plan.peers.set, d.peers);
  EXPECT_TRUE(plan.peers.remove.empty());
  EXPECT_EQ(plan.add_routes, d.routes);
  EXPECT_TRUE(plan.remove_routes.empty());
  // Applied, nothing is left to do.
  EXPECT_TRUE(planNet(applied({}, plan), d).empty());
}

TEST_F(PlanNet, AServerThatLeftIsRemoved) {
  auto before = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB),
                         server("h3", "192.0.2.3", "10.240.3.0/24", kKeyC)});
  CurrentNet current{before.peers, before.routes};
  auto after = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB)});
  auto plan = planNet(current, after);
  EXPECT_EQ(plan.peers.remove, std::vector<std::string>{kKeyC});
  EXPECT_TRUE(plan.peers.set.empty());
  EXPECT_TRUE(plan.add_routes.empty());
  EXPECT_EQ(plan.remove_routes, std::vector<rtnl::Ipv4Prefix>{prefix("10.240.3.0/24")});
  EXPECT_TRUE(planNet(applied(current, plan), after).empty());
}

TEST_F(PlanNet, AChangedKeyIsRemovalAndAddition) {
  auto before = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB)});
  CurrentNet current{before.peers, before.routes};
  auto after = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyD)});
  auto plan = planNet(current, after);
  EXPECT_EQ(plan.peers.remove, std::vector<std::string>{kKeyB});
  ASSERT_EQ(plan.peers.set.size(), 1u);
  EXPECT_EQ(plan.peers.set[0].public_key, kKeyD);
  EXPECT_TRUE(plan.add_routes.empty());  // the subnet did not change
  EXPECT_TRUE(plan.remove_routes.empty());
  EXPECT_TRUE(planNet(applied(current, plan), after).empty());
}

TEST_F(PlanNet, AChangedEndpointIsAnUpdate) {
  auto before = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB)});
  CurrentNet current{before.peers, before.routes};
  auto after = desired({server("h2", "198.51.100.2", "10.240.2.0/24", kKeyB)});
  auto plan = planNet(current, after);
  EXPECT_TRUE(plan.peers.remove.empty());
  ASSERT_EQ(plan.peers.set.size(), 1u);
  EXPECT_EQ(plan.peers.set[0].endpoint, "198.51.100.2:51820");
  EXPECT_TRUE(plan.add_routes.empty());
  EXPECT_TRUE(planNet(applied(current, plan), after).empty());
}

TEST_F(PlanNet, AServerThatLostItsSubnetOrKeyIsRemoved) {
  auto before = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB),
                         server("h3", "192.0.2.3", "10.240.3.0/24", kKeyC)});
  CurrentNet current{before.peers, before.routes};
  auto after = desired({server("h2", "192.0.2.2", "", kKeyB),  // central turned it off
                        server("h3", "192.0.2.3", "10.240.3.0/24", "")});
  auto plan = planNet(current, after);
  EXPECT_EQ(plan.peers.remove.size(), 2u);
  EXPECT_EQ(plan.remove_routes.size(), 2u);
  EXPECT_TRUE(plan.peers.set.empty());
}

TEST_F(PlanNet, UnknownPeersAndStaleRoutesOnTheInterfaceAreRemoved) {
  auto d = desired({server("h2", "192.0.2.2", "10.240.2.0/24", kKeyB)});
  CurrentNet current;
  current.peers = {PeerConfig{kKeyB, "192.0.2.2:51820", {"10.240.2.0/24", "10.9.0.0/16"}},
                   PeerConfig{kKeyD, "203.0.113.1:1", {"10.240.9.0/24"}}};
  current.routes = {prefix("10.240.2.0/24"), prefix("10.240.9.0/24")};
  auto plan = planNet(current, d);
  EXPECT_EQ(plan.peers.remove, std::vector<std::string>{kKeyD});
  ASSERT_EQ(plan.peers.set.size(), 1u);  // its allowed IPs are replaced
  EXPECT_EQ(plan.peers.set[0].allowed_ips, std::vector<std::string>{"10.240.2.0/24"});
  EXPECT_EQ(plan.remove_routes, std::vector<rtnl::Ipv4Prefix>{prefix("10.240.9.0/24")});
}

}  // namespace
}  // namespace elasticdns::agent
