// ContainerNet's subnet leases: the Ipam arithmetic, the `containernet:` config section, and
// the leases of a real central (Router → TopologyState → SQLite file): allocation order,
// exhaustion, re-puts, deletes, restarts, servers put before ContainerNet was on, settings
// changed under existing leases, and a randomized put/delete run checking that no subnet is
// ever held by two servers.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "central/config.hpp"
#include "containernet_fixture.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using testing::ContainerNetCentral;
using testing::kReader;

TEST(Ipam, CutsTheClusterCidrIntoSubnets) {
  auto ipam = Ipam::create("10.240.0.0/16", 24);
  ASSERT_TRUE(ipam) << ipam.error().message();
  EXPECT_EQ(ipam->size(), 256u);
  EXPECT_EQ(ipam->subnetAt(0), "10.240.0.0/24");
  EXPECT_EQ(ipam->subnetAt(3), "10.240.3.0/24");
  EXPECT_EQ(ipam->subnetAt(255), "10.240.255.0/24");
  EXPECT_EQ(ipam->indexOf("10.240.3.0/24"), 3u);
  for (const char* other : {"10.241.0.0/24", "10.240.3.0/25", "10.240.3.1/24", "10.240.0.0/16",
                            "10.240.3.0/024", "", "x"})
    EXPECT_FALSE(ipam->indexOf(other)) << other;
  auto small = Ipam::create("192.168.7.16/28", 30).value();
  EXPECT_EQ(small.size(), 4u);
  EXPECT_EQ(small.subnetAt(1), "192.168.7.20/30");
  EXPECT_EQ(small.indexOf("192.168.7.28/30"), 3u);
  EXPECT_EQ(Ipam::create("10.0.0.0/8", 30).value().size(), 1u << 22);
  EXPECT_EQ(Ipam::create("10.0.0.0/8", 30).value().subnetAt((1u << 22) - 1), "10.255.255.252/30");
}

TEST(Ipam, RejectsBadSettingsNamingTheKey) {
  for (const char* bad : {"10.240.0.1/16", "10.0.0.0/7", "10.240.0.0/29", "10.240.0.0", "x/16",
                          "10.240.0.0/016", "fd00::/64", ""})
    EXPECT_EQ(Ipam::create(bad, 30).error().field, "containernet/cluster_cidr") << bad;
  for (int bad : {16, 8, 0, 31, 32, -1})
    EXPECT_EQ(Ipam::create("10.240.0.0/16", bad).error().field, "containernet/subnet_prefix")
        << bad;
  EXPECT_TRUE(Ipam::create("10.240.0.0/16", 17));
}

TEST(Ipam, NextFitWrapsToTheLowestFree) {
  auto ipam = Ipam::create("10.240.0.0/28", 30).value();  // 4 subnets
  EXPECT_EQ(ipam.nextFree({}, std::nullopt), 0u);
  EXPECT_EQ(ipam.nextFree({0, 1}, 1u), 2u);
  EXPECT_EQ(ipam.nextFree({0, 2}, 2u), 3u);
  EXPECT_EQ(ipam.nextFree({0, 2, 3}, 3u), 1u);  // wraps
  EXPECT_EQ(ipam.nextFree({1, 2, 3}, 1u), 0u);  // wraps past a run
  EXPECT_EQ(ipam.nextFree({0, 1, 2}, 0u), 3u);
  EXPECT_FALSE(ipam.nextFree({0, 1, 2, 3}, 2u));
  EXPECT_FALSE(ipam.nextFree({0, 1, 2, 3}, std::nullopt));
}

TEST(ContainerNetConfig, ParsesTheSection) {
  auto c = parseConfig("containernet:\n  cluster_cidr: 10.240.0.0/16\n");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_TRUE(c->containernet);
  EXPECT_EQ(c->containernet->cluster_cidr, "10.240.0.0/16");
  EXPECT_EQ(c->containernet->subnet_prefix, 24);
  c = parseConfig("containernet: {cluster_cidr: 10.240.0.0/20, subnet_prefix: 26}\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containernet->subnet_prefix, 26);
  EXPECT_EQ(ipamOf(*c->containernet).size(), 64u);
  EXPECT_FALSE(parseConfig("listen: 127.0.0.1:1\n").value().containernet);  // off when absent
  // Keys not given keep the base's values (how the --containernet-* flags apply over a file).
  auto over = parseConfig("containernet: {subnet_prefix: 28}\n", c.value());
  ASSERT_TRUE(over) << over.error().message();
  EXPECT_EQ(over->containernet->cluster_cidr, "10.240.0.0/20");
  EXPECT_EQ(over->containernet->subnet_prefix, 28);
}

TEST(ContainerNetConfig, FlagsApplyTogetherOverTheFile) {
  auto c = withContainerNetFlags(Config{}, "10.240.0.0/28", "30");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containernet, (ContainerNetConfig{"10.240.0.0/28", 30}));
  EXPECT_FALSE(withContainerNetFlags(Config{}, std::nullopt, std::nullopt).value().containernet);
  auto file = parseConfig("containernet: {cluster_cidr: 10.240.0.0/16, subnet_prefix: 26}\n");
  c = withContainerNetFlags(file.value(), std::nullopt, "25");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containernet, (ContainerNetConfig{"10.240.0.0/16", 25}));
  c = withContainerNetFlags(file.value(), "10.250.0.0/20", std::nullopt);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->containernet, (ContainerNetConfig{"10.250.0.0/20", 26}));
  EXPECT_EQ(withContainerNetFlags(Config{}, "10.240.0.0/28", std::nullopt).error().field,
            "containernet/subnet_prefix");  // /24 by default: not longer than /28
  EXPECT_EQ(withContainerNetFlags(Config{}, std::nullopt, "24").error().field,
            "containernet/cluster_cidr");
  EXPECT_EQ(withContainerNetFlags(Config{}, "10.240.0.0/16", "x").error().field,
            "containernet/subnet_prefix");
}

TEST(ContainerNetConfig, RejectsBadValuesNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"containernet: {cluster_cidr: 10.240.0.0/16, size: 3}\n", "containernet/size"},
      {"containernet: {cluster_cidr: 10.240.0.1/16}\n", "containernet/cluster_cidr"},
      {"containernet: {cluster_cidr: 10.240.0.0/29}\n", "containernet/cluster_cidr"},
      {"containernet: {cluster_cidr: 10.0.0.0/7}\n", "containernet/cluster_cidr"},
      {"containernet: {cluster_cidr: [10.240.0.0/16]}\n", "containernet/cluster_cidr"},
      {"containernet: {subnet_prefix: 24}\n", "containernet/cluster_cidr"},
      {"containernet: {cluster_cidr: 10.240.0.0/16, subnet_prefix: 16}\n",
       "containernet/subnet_prefix"},
      {"containernet: {cluster_cidr: 10.240.0.0/16, subnet_prefix: 31}\n",
       "containernet/subnet_prefix"},
      {"containernet: {cluster_cidr: 10.240.0.0/16, subnet_prefix: x}\n",
       "containernet/subnet_prefix"},
      {"containernet: {cluster_cidr: 10.240.0.0/28}\n", "containernet/subnet_prefix"},
      {"containernet: on\n", "containernet"},
      {"containernet:\n", "containernet"},
  };
  for (const auto& [yaml, field] : cases) {
    auto c = parseConfig(yaml);
    ASSERT_FALSE(c) << yaml;
    EXPECT_EQ(c.error().field, field) << yaml << " -> " << c.error().message();
  }
}

// central.example.yml (the config the package installs) shows the section commented out:
// uncommented, it parses.
TEST(ContainerNetConfig, TheInstalledExampleSectionParsesUncommented) {
  std::ifstream in(std::string(ELASTICDNS_SOURCE_DIR) + "/central/central.example.yml");
  ASSERT_TRUE(in);
  std::string line, section;
  bool inside = false;
  while (std::getline(in, line)) {
    inside = inside || line == "#containernet:";
    if (inside && line.rfind("#", 0) == 0) section += line.substr(1) + "\n";
    if (inside && line.rfind("#", 0) != 0) break;
  }
  ASSERT_FALSE(section.empty()) << "no #containernet: section";
  auto c = parseConfig(section);
  ASSERT_TRUE(c) << c.error().message() << "\n" << section;
  ASSERT_TRUE(c->containernet);
  EXPECT_EQ(c->containernet->cluster_cidr, "10.240.0.0/16");
  EXPECT_EQ(c->containernet->subnet_prefix, 24);
}

class Leases : public ContainerNetCentral {
 protected:
  void SetUp() override { ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30))); }  // 4 subnets
};

TEST_F(Leases, NewServersGetTheLowestFreeSubnetInOrder) {
  for (const char* h : {"h1", "h2", "h3"}) ASSERT_EQ(putServer(h).status, 200u) << h;
  EXPECT_EQ(subnetOf("h1"), "10.240.0.0/30");
  EXPECT_EQ(subnetOf("h2"), "10.240.0.4/30");
  EXPECT_EQ(subnetOf("h3"), "10.240.0.8/30");
  // In the record every reader gets: the full snapshot and the delta.
  auto full = call("GET", "/v1/topology", {}, kReader);
  ASSERT_EQ(full.status, 200u);
  EXPECT_EQ(full.body["topology"]["servers"][1]["subnet"], "10.240.0.4/30");
  auto delta = call("GET", "/v1/topology?index=2", {}, kReader);
  ASSERT_EQ(delta.body["kind"], "delta");
  ASSERT_EQ(delta.body["changes"].size(), 1u);
  EXPECT_EQ(delta.body["changes"][0]["value"]["subnet"], "10.240.0.8/30");
}

TEST_F(Leases, ExhaustionIsRefusedNamingSubnetAndChangesNothing) {
  for (const char* h : {"h1", "h2", "h3", "h4"}) ASSERT_EQ(putServer(h).status, 200u) << h;
  uint64_t index = topology().index;
  auto r = putServer("h5");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.body["error"]["field"], "subnet");
  EXPECT_NE(r.body["error"]["reason"].get<std::string>().find("10.240.0.0/28"), std::string::npos);
  EXPECT_EQ(topology().index, index);
  EXPECT_FALSE(topology().servers.count("h5"));
  // The existing servers are still re-put (they hold their leases); still nothing for h5.
  EXPECT_EQ(putServer("h4", "192.0.2.4").status, 200u);
  EXPECT_EQ(subnetOf("h4"), "10.240.0.12/30");
  ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30)));
  EXPECT_EQ(topology().servers.size(), 4u);
  EXPECT_EQ(putServer("h5").status, 409u);
}

TEST_F(Leases, RePutKeepsTheLeaseAndABodySubnetMustEqualIt) {
  ASSERT_EQ(putServer("h1").status, 200u);
  ASSERT_EQ(putServer("h2").status, 200u);
  auto r = putServer("h2", "192.0.2.22");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body["changes"], 1);
  EXPECT_EQ(subnetOf("h2"), "10.240.0.4/30");
  EXPECT_EQ(topology().servers.at("h2").address, "192.0.2.22");
  // An identical put (with or without the subnet it holds) changes nothing.
  uint64_t index = topology().index;
  r = call("PUT", "/v1/servers/h2", R"({"address":"192.0.2.22","subnet":"10.240.0.4/30"})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body["changes"], 0);
  EXPECT_EQ(putServer("h2", "192.0.2.22").body["changes"], 0);
  EXPECT_EQ(topology().index, index);
  // Another subnet, on an existing or a new server: 400, nothing changed.
  for (auto [name, subnet] :
       {std::pair{"h2", "10.240.0.0/30"}, {"h2", "10.240.0.12/30"}, {"h3", "10.240.0.12/30"}}) {
    r = call("PUT", std::string("/v1/servers/") + name,
             json{{"address", "192.0.2.9"}, {"subnet", subnet}}.dump());
    EXPECT_EQ(r.status, 400u) << name << " " << subnet;
    EXPECT_EQ(r.body["error"]["field"], "subnet");
    EXPECT_EQ(r.body["error"]["reason"].get<std::string>().rfind("assigned by central", 0), 0u);
  }
  EXPECT_EQ(topology().index, index);
  EXPECT_FALSE(topology().servers.count("h3"));
  EXPECT_EQ(topology().servers.at("h2").address, "192.0.2.22");
}

TEST_F(Leases, DeleteFreesTheSubnetWhichComesBackOnlyAfterTheOthers) {
  for (const char* h : {"h1", "h2", "h3"}) ASSERT_EQ(putServer(h).status, 200u);
  ASSERT_EQ(call("DELETE", "/v1/servers/h2").status, 200u);
  ASSERT_EQ(putServer("h4").status, 200u);
  EXPECT_EQ(subnetOf("h4"), "10.240.0.12/30");  // above the last leased, not h2's
  ASSERT_EQ(putServer("h5").status, 200u);
  EXPECT_EQ(subnetOf("h5"), "10.240.0.4/30");  // wrapped: h2's, the only free one
  EXPECT_EQ(putServer("h6").status, 409u);
  // A server deleted and put again is a new server: a new lease.
  ASSERT_EQ(call("DELETE", "/v1/servers/h1").status, 200u);
  ASSERT_EQ(putServer("h1").status, 200u);
  EXPECT_EQ(subnetOf("h1"), "10.240.0.0/30");
}

TEST_F(Leases, ARestartKeepsEveryLease) {
  for (const char* h : {"h1", "h2", "h3"}) ASSERT_EQ(putServer(h).status, 200u);
  ASSERT_EQ(call("DELETE", "/v1/servers/h1").status, 200u);
  auto before = topology();
  ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30)));
  EXPECT_EQ(topology(), before);  // same records, same index: nothing re-leased at start
  // The next-fit search starts above the highest lease held.
  ASSERT_EQ(putServer("h4").status, 200u);
  EXPECT_EQ(subnetOf("h4"), "10.240.0.12/30");
  ASSERT_EQ(putServer("h5").status, 200u);
  EXPECT_EQ(subnetOf("h5"), "10.240.0.0/30");
}

TEST_F(Leases, ServersPutBeforeContainerNetGetLeasesAtStartInOneGo) {
  ASSERT_FALSE(reopen(std::nullopt));
  ASSERT_EQ(putServer("h1").status, 200u);
  ASSERT_EQ(putServer("h2").status, 200u);
  EXPECT_EQ(subnetOf("h1"), "");
  uint64_t index = topology().index;
  ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30)));
  EXPECT_EQ(subnetOf("h1"), "10.240.0.0/30");
  EXPECT_EQ(subnetOf("h2"), "10.240.0.4/30");
  EXPECT_EQ(topology().index, index + 2);
  // As changes agents get in their delta.
  auto delta = call("GET", "/v1/topology?index=" + std::to_string(index), {}, kReader);
  ASSERT_EQ(delta.body["kind"], "delta");
  EXPECT_EQ(delta.body["changes"].size(), 2u);
  ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30)));
  EXPECT_EQ(topology().index, index + 2);
  // More servers than subnets: central refuses to start, and the store is unchanged.
  ASSERT_FALSE(reopen(std::nullopt));
  for (const char* h : {"h3", "h4", "h5"}) ASSERT_EQ(putServer(h).status, 200u);
  index = topology().index;
  auto e = reopen(ipam("10.240.0.0/28", 30));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->field, "containernet");
  EXPECT_NE(e->reason.find("subnet"), std::string::npos) << e->message();
  ASSERT_FALSE(reopen(std::nullopt));
  EXPECT_EQ(topology().index, index);
  EXPECT_EQ(subnetOf("h3"), "");
}

// The start-time leases of one transaction skip each other, also when the search wraps onto
// the subnet leased last (freed since): 4 subnets, 3 held, 2 servers to lease → refused.
TEST_F(Leases, StartTimeLeasesNeverCollideWhenTheSearchWraps) {
  for (const char* h : {"h1", "h2", "h3", "h4"}) ASSERT_EQ(putServer(h).status, 200u);
  ASSERT_EQ(call("DELETE", "/v1/servers/h3").status, 200u);
  ASSERT_EQ(putServer("h5").status, 200u);
  EXPECT_EQ(subnetOf("h5"), "10.240.0.8/30");
  ASSERT_EQ(call("DELETE", "/v1/servers/h5").status, 200u);  // the last leased is free again
  ASSERT_FALSE(reopen(std::nullopt));
  ASSERT_EQ(putServer("h6").status, 200u);
  ASSERT_EQ(putServer("h7").status, 200u);
  uint64_t index = topology().index;
  auto e = reopen(ipam("10.240.0.0/28", 30));
  ASSERT_TRUE(e);
  EXPECT_NE(e->message().find("no free subnet"), std::string::npos) << e->message();
  ASSERT_FALSE(reopen(std::nullopt));
  EXPECT_EQ(topology().index, index);
  // With one of them gone, the other gets the free subnet.
  ASSERT_EQ(call("DELETE", "/v1/servers/h7").status, 200u);
  ASSERT_FALSE(reopen(ipam("10.240.0.0/28", 30)));
  EXPECT_EQ(subnetOf("h6"), "10.240.0.8/30");
}

TEST_F(Leases, SettingsChangedUnderLeasesRefuseToStart) {
  ASSERT_EQ(putServer("h1").status, 200u);
  ASSERT_EQ(putServer("h2").status, 200u);
  for (auto [cidr, prefix] :
       {std::pair{"10.241.0.0/28", 30}, {"10.240.0.0/24", 29}, {"10.240.0.16/28", 30}}) {
    auto e = reopen(ipam(cidr, prefix));
    ASSERT_TRUE(e) << cidr << " /" << prefix;
    EXPECT_EQ(e->field, "containernet");
    EXPECT_NE(e->reason.find("h1"), std::string::npos) << e->message();
  }
  // A wider cluster CIDR that still holds every lease is fine.
  ASSERT_FALSE(reopen(ipam("10.240.0.0/24", 30)));
  EXPECT_EQ(subnetOf("h1"), "10.240.0.0/30");
  ASSERT_EQ(putServer("h3").status, 200u);
  EXPECT_EQ(subnetOf("h3"), "10.240.0.8/30");
  // Off: the leases stay in the records, re-puts keep them, new servers get none.
  ASSERT_FALSE(reopen(std::nullopt));
  EXPECT_EQ(state_->leases(), 3u);
  ASSERT_EQ(putServer("h2", "192.0.2.2").status, 200u);
  EXPECT_EQ(subnetOf("h2"), "10.240.0.4/30");
  ASSERT_EQ(putServer("h4").status, 200u);
  EXPECT_EQ(subnetOf("h4"), "");
}

// Random puts, re-puts and deletes of 24 names over 16 subnets, with restarts: after every
// step no subnet is held twice, every server holds one of the cluster's subnets, a new server
// is refused only when all 16 are held, and a restart changes nothing.
TEST_F(Leases, RandomPutsAndDeletesNeverShareASubnet) {
  auto cluster = ipam("10.240.0.0/26", 30);
  ASSERT_FALSE(reopen(cluster));
  std::mt19937 rng(12345);
  std::map<std::string, std::string> expected;  // name → subnet, as the test saw them given
  size_t refused = 0, freed = 0;
  for (int step = 0; step < 1500; ++step) {
    std::string name = "h" + std::to_string(rng() % 24);
    bool existed = topology().servers.count(name) > 0;
    if (rng() % 3 == 0) {
      auto r = call("DELETE", "/v1/servers/" + name);
      ASSERT_EQ(r.status, existed ? 200u : 404u);
      if (existed) ++freed;
      expected.erase(name);
    } else {
      size_t held = topology().servers.size();
      auto r = putServer(name, "192.0.2." + std::to_string(rng() % 200 + 1));
      if (!existed && held == cluster.size()) {
        ASSERT_EQ(r.status, 409u) << step;
        ++refused;
        continue;
      }
      ASSERT_EQ(r.status, 200u) << step << " " << r.body.dump();
      if (existed) {
        ASSERT_EQ(subnetOf(name), expected[name]) << "re-put moved " << name;
      }
      expected[name] = subnetOf(name);
    }
    std::set<std::string> seen;
    for (const auto& [n, s] : topology().servers) {
      ASSERT_TRUE(cluster.indexOf(s.subnet)) << n << " holds " << s.subnet;
      ASSERT_TRUE(seen.insert(s.subnet).second) << s.subnet << " held twice at step " << step;
      ASSERT_EQ(expected[n], s.subnet);
    }
    if (step % 250 == 249) {
      auto before = topology();
      ASSERT_FALSE(reopen(cluster));
      ASSERT_EQ(topology(), before);
    }
  }
  EXPECT_GT(refused, 0u);  // the run did reach exhaustion
  EXPECT_GT(freed, 100u);
}

}  // namespace
}  // namespace elasticdns::central
