// The `containernet:` config section: defaults, every key, errors naming containernet/<key>,
// and agent/README.md's ContainerNet examples.
#include "agent/containernet/containernet_config.hpp"

#include <gtest/gtest.h>

#include "agent/config.hpp"
#include "support/readme_util.hpp"

namespace elasticdns::agent {
namespace {

Result<ContainerNetConfig> parse(const std::string& yaml) {
  return parseContainerNetConfig(YAML::Load(yaml));
}

TEST(ContainerNetConfig, OffByDefault) {
  auto c = parseContainerNetConfig(YAML::Node());
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->enabled);
  EXPECT_EQ(c->interface, "cn0");
  EXPECT_EQ(c->listen_port, 51820);
  EXPECT_EQ(c->mtu, 0u);
  EXPECT_EQ(c->implementation, WireGuardImplementation::kAuto);
  EXPECT_EQ(c->wireguard_go, "wireguard-go");
  EXPECT_EQ(keyFileOf(c.value(), "/var/lib/x"), "/var/lib/x/containernet.key");
  EXPECT_EQ(keyFileOf(c.value(), ""), "/var/lib/elasticdns/containernet.key");
  EXPECT_EQ(pidFileOf(c.value(), "/var/lib/x"), "/var/lib/x/containernet.pid");
}

TEST(ContainerNetConfig, EveryKey) {
  auto c = parse(R"(
enabled: true
interface: wg-cluster
listen_port: 51000
key_file: /etc/elasticdns/cn.key
endpoint: "[2001:db8::7]:51000"
mtu: 1380
implementation: userspace
wireguard_go: /usr/local/bin/wireguard-go
bridge: cn-br0
)");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->interface, "wg-cluster");
  EXPECT_EQ(c->listen_port, 51000);
  EXPECT_EQ(keyFileOf(c.value(), "/var/lib/x"), "/etc/elasticdns/cn.key");
  EXPECT_EQ(pidFileOf(c.value(), "/var/lib/x"), "/etc/elasticdns/containernet.pid");
  EXPECT_EQ(c->endpoint, "[2001:db8::7]:51000");
  EXPECT_EQ(c->mtu, 1380u);
  EXPECT_EQ(c->implementation, WireGuardImplementation::kUserspace);
  EXPECT_EQ(c->wireguard_go, "/usr/local/bin/wireguard-go");
  EXPECT_EQ(c->bridge, "cn-br0");
  EXPECT_EQ(parse("mtu: auto")->mtu, 0u);
  EXPECT_EQ(parse("implementation: kernel")->implementation, WireGuardImplementation::kKernel);
}

TEST(ContainerNetConfig, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  for (const Case& c : {
           Case{"colour: blue", "containernet/colour"},
           Case{"enabled: maybe", "containernet/enabled"},
           Case{"interface: a-name-longer-than-15", "containernet/interface"},
           Case{"interface: \"\"", "containernet/interface"},
           Case{"interface: a/b", "containernet/interface"},
           Case{"listen_port: 0", "containernet/listen_port"},
           Case{"listen_port: 65536", "containernet/listen_port"},
           Case{"listen_port: x", "containernet/listen_port"},
           Case{"key_file: relative.key", "containernet/key_file"},
           Case{"endpoint: host.example:51820", "containernet/endpoint"},
           Case{"endpoint: 10.0.0.1", "containernet/endpoint"},
           Case{"mtu: 1279", "containernet/mtu"},
           Case{"mtu: 9001", "containernet/mtu"},
           Case{"mtu: big", "containernet/mtu"},
           Case{"implementation: ebpf", "containernet/implementation"},
           Case{"wireguard_go: \"\"", "containernet/wireguard_go"},
           Case{"bridge: cn0", "containernet/bridge"},
           Case{"bridge: [a]", "containernet/bridge"},
       }) {
    auto r = parse(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().field, c.field) << c.yaml << ": " << r.error().message();
  }
  auto r = parseContainerNetConfig(YAML::Load("[1, 2]"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "containernet");
}

TEST(ContainerNetConfig, InTheAgentConfig) {
  auto c = parseConfig("server_name: host1\ncontainernet:\n  enabled: true\n  mtu: 1400\n");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->containernet.enabled);
  EXPECT_EQ(c->containernet.mtu, 1400u);
  auto bad = parseConfig("server_name: host1\ncontainernet:\n  listen_port: 99999\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().field, "containernet/listen_port");
  auto nameless = parseConfig("containernet:\n  enabled: true\n");
  ASSERT_FALSE(nameless.ok());
  EXPECT_EQ(nameless.error().field, "containernet/enabled");
}

// agent/README.md's ContainerNet section: every example parses as an agent config, enabled.
TEST(ContainerNetConfig, ReadmeExamplesParse) {
  auto blocks =
      testing::readmeYamlBlocks("agent/README.md", "<!-- containernet -->", "<!-- traffic -->");
  ASSERT_FALSE(blocks.empty()) << "agent/README.md's ContainerNet section has YAML examples";
  for (const auto& yaml : blocks) {
    auto c = parseConfig(yaml);
    ASSERT_TRUE(c.ok()) << yaml << "\n" << c.error().message();
    EXPECT_TRUE(c->containernet.enabled) << yaml;
  }
}

}  // namespace
}  // namespace elasticdns::agent
