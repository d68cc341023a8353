// ContainerNet's Docker network, pure parts: the POST /networks/create body, and the
// adopt / recreate / mismatch decision on a GET /networks/{name} answer.
#include "agent/containernet/docker_network.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/containernet/containernet_config.hpp"

namespace elasticdns::agent {
namespace {

using json = nlohmann::json;
using Verdict = DockerNetworkDecision::Verdict;

DockerNetworkSpec spec() {
  return {"containernet", "10.77.128.0/24", "10.77.128.1", "cn7", 1420};
}

// A network as Docker 20.10 answers GET /networks/{name} (trimmed to what is read).
json inspect(const std::string& subnet, const std::string& gateway, bool ours, int containers) {
  json j = {
      {"Name", "containernet"},
      {"Id", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
      {"Driver", "bridge"},
      {"IPAM",
       {{"Driver", "default"},
        {"Config", json::array({{{"Subnet", subnet}, {"Gateway", gateway}}})}}},
      {"Options",
       {{"com.docker.network.bridge.name", "cn7"}, {"com.docker.network.driver.mtu", "1420"}}},
      {"Labels", json::object()},
      {"Containers", json::object()}};
  if (ours) j["Labels"]["com.cloud66.elasticdns.containernet"] = "1";
  for (int i = 0; i < containers; ++i)
    j["Containers"]["c" + std::to_string(i)] = {{"Name", "x"}, {"IPv4Address", "10.0.0.2/24"}};
  return j;
}

TEST(DockerNetwork, CreateBody) {
  json body = dockerNetworkCreateBody(spec());
  EXPECT_EQ(body["Name"], "containernet");
  EXPECT_EQ(body["Driver"], "bridge");
  EXPECT_EQ(body["IPAM"]["Config"],
            json::parse(R"([{"Subnet":"10.77.128.0/24","Gateway":"10.77.128.1"}])"));
  EXPECT_EQ(body["Options"], json::parse(R"({"com.docker.network.bridge.name":"cn7",
                                             "com.docker.network.driver.mtu":"1420"})"));
  EXPECT_EQ(body["Labels"], json::parse(R"({"com.cloud66.elasticdns.containernet":"1"})"));
}

TEST(DockerNetwork, CreateBodyWithoutBridgeOrMtuLetsDockerChoose) {
  auto s = spec();
  s.bridge.clear();
  s.mtu = 0;
  EXPECT_EQ(dockerNetworkCreateBody(s)["Options"], json::object());
}

TEST(DockerNetwork, AdoptsMatchingSubnetAndGateway) {
  for (bool ours : {false, true}) {
    auto d = decideDockerNetwork(inspect("10.77.128.0/24", "10.77.128.1", ours, 3), spec());
    EXPECT_EQ(d.verdict, Verdict::kAdopt) << d.detail;
    EXPECT_EQ(d.bridge, "cn7");
    EXPECT_EQ(d.id.substr(0, 4), "0123");
    EXPECT_EQ(d.detail.find("MTU"), std::string::npos) << d.detail;
  }
}

TEST(DockerNetwork, AdoptNamesDockersBridgeAndAnotherMtu) {
  json j = inspect("10.77.128.0/24", "10.77.128.1", false, 0);
  j["Options"] = json::object();
  auto d = decideDockerNetwork(j, spec());
  EXPECT_EQ(d.verdict, Verdict::kAdopt);
  EXPECT_EQ(d.bridge, "br-0123456789ab");
  EXPECT_NE(d.detail.find("MTU option is unset, not 1420"), std::string::npos) << d.detail;
}

TEST(DockerNetwork, AdoptsTheSubnetWithDockersDefaultGateway) {
  auto d = decideDockerNetwork(inspect("10.77.128.0/24", "", false, 0), spec());
  EXPECT_EQ(d.verdict, Verdict::kAdopt) << d.detail;
  EXPECT_EQ(decideDockerNetwork(inspect("10.77.129.0/24", "", false, 0), spec()).verdict,
            Verdict::kMismatch);
}

TEST(DockerNetwork, AdoptNotesAnotherBridge) {
  json j = inspect("10.77.128.0/24", "10.77.128.1", false, 0);
  j["Options"]["com.docker.network.bridge.name"] = "docker9";
  auto d = decideDockerNetwork(j, spec());
  EXPECT_EQ(d.verdict, Verdict::kAdopt);
  EXPECT_EQ(d.bridge, "docker9");
  EXPECT_NE(d.detail.find("not containernet/bridge cn7"), std::string::npos) << d.detail;
}

TEST(DockerNetwork, OtherSubnetOrGatewayIsAMismatch) {
  for (auto [subnet, gateway] :
       {std::pair{"10.9.0.0/24", "10.9.0.1"}, std::pair{"10.77.128.0/24", "10.77.128.254"}}) {
    auto d = decideDockerNetwork(inspect(subnet, gateway, false, 0), spec());
    EXPECT_EQ(d.verdict, Verdict::kMismatch);
    // One line naming the network, what it has and what it should have.
    EXPECT_NE(d.detail.find("Docker network containernet"), std::string::npos) << d.detail;
    EXPECT_NE(d.detail.find(std::string("subnet ") + subnet + " gateway " + gateway),
              std::string::npos)
        << d.detail;
    EXPECT_NE(d.detail.find("needs driver bridge, subnet 10.77.128.0/24 gateway 10.77.128.1"),
              std::string::npos)
        << d.detail;
    EXPECT_EQ(d.detail.find('\n'), std::string::npos);
  }
}

TEST(DockerNetwork, OursWithoutContainersAndAStaleLeaseIsRecreated) {
  auto d = decideDockerNetwork(inspect("10.77.200.0/24", "10.77.200.1", true, 0), spec());
  EXPECT_EQ(d.verdict, Verdict::kRecreate) << d.detail;
  EXPECT_EQ(d.id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

TEST(DockerNetwork, NeverRecreatesOneWithContainersOrNotOurs) {
  auto with_containers =
      decideDockerNetwork(inspect("10.77.200.0/24", "10.77.200.1", true, 1), spec());
  EXPECT_EQ(with_containers.verdict, Verdict::kMismatch);
  EXPECT_NE(with_containers.detail.find("1 container(s)"), std::string::npos);
  EXPECT_EQ(decideDockerNetwork(inspect("10.77.200.0/24", "10.77.200.1", false, 0), spec()).verdict,
            Verdict::kMismatch);
}

TEST(DockerNetwork, OtherDriverOrNoIpamIsAMismatch) {
  json j = inspect("10.77.128.0/24", "10.77.128.1", true, 0);
  j["Driver"] = "macvlan";
  EXPECT_EQ(decideDockerNetwork(j, spec()).verdict, Verdict::kMismatch);
  json k = inspect("10.77.128.0/24", "10.77.128.1", false, 0);
  k["IPAM"]["Config"] = json::array();
  auto d = decideDockerNetwork(k, spec());
  EXPECT_EQ(d.verdict, Verdict::kMismatch);
  EXPECT_NE(d.detail.find("no IPAM config"), std::string::npos) << d.detail;
  EXPECT_EQ(decideDockerNetwork(json(), spec()).verdict, Verdict::kMismatch);
}

TEST(DockerNetwork, ConfigDefaultEmptyAndErrors) {
  auto d = parseContainerNetConfig(YAML::Load("enabled: true"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->docker_network, "containernet");
  auto off = parseContainerNetConfig(YAML::Load("docker_network: \"\""));
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->docker_network, "");
  auto named = parseContainerNetConfig(YAML::Load("docker_network: cn_net.1-a"));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->docker_network, "cn_net.1-a");
  for (const char* bad : {"docker_network: -x", "docker_network: a/b", "docker_network: [a]",
                          "docker_network: \"a b\""}) {
    auto e = parseContainerNetConfig(YAML::Load(bad));
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.error().field, "containernet/docker_network") << bad;
  }
}

}  // namespace
}  // namespace elasticdns::agent
