// The agent's YAML config: every example in agent/README.md's configuration section parses; bad
// input is rejected with the key and the reason.
#include "agent/config.hpp"

#include <gtest/gtest.h>

#include "support/readme_util.hpp"

namespace elasticdns::agent {
namespace {

std::vector<std::string> readmeExamples() {
  return elasticdns::testing::readmeYamlBlocks("agent/README.md", "<!-- agent -->",
                                               "<!-- ebpf -->");
}

TEST(AgentConfig, ReadmeExamplesParse) {
  auto examples = readmeExamples();
  ASSERT_FALSE(examples.empty()) << "agent/README.md's configuration section has YAML examples";
  for (const auto& e : examples) {
    auto c = parseConfig(e);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message()) << "\n" << e;
  }
  auto full = parseConfig(examples.front());
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->listen.empty());
  EXPECT_FALSE(full->central_urls.empty());
  EXPECT_TRUE(full->bpf.enabled);
}

TEST(AgentConfig, Defaults) {
  auto c = parseConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->domain, "cloud66.local");
  EXPECT_EQ(c->ttl, std::chrono::seconds(5));
  EXPECT_EQ(c->negative_ttl, std::chrono::seconds(5));
  EXPECT_EQ(c->sticky_window, std::chrono::seconds(60));
  EXPECT_EQ(c->stale_after, std::chrono::seconds(60));
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].port(), 53);
  EXPECT_FALSE(c->bpf.enabled);
  EXPECT_EQ(c->forward_limit.per_second, 500u);
  EXPECT_EQ(c->forward_limit.burst, 1000u);
}

TEST(AgentConfig, ForwardLimit) {
  auto c = parseConfig("forward_limit: {per_second: 0, burst: 7}");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->forward_limit.per_second, 0u);
  EXPECT_EQ(c->forward_limit.burst, 7u);
  struct Case {
    const char* yaml;
    const char* field;
  } bad[] = {
      {"forward_limit: 5", "forward_limit"},
      {"forward_limit: {per_second: -1}", "forward_limit/per_second"},
      {"forward_limit: {per_second: 1.5}", "forward_limit/per_second"},
      {"forward_limit: {per_second: 1000001}", "forward_limit/per_second"},
      {"forward_limit: {burst: 0}", "forward_limit/burst"},
      {"forward_limit: {burst: 99999999999}", "forward_limit/burst"},
      {"forward_limit: {rate: 1}", "forward_limit/rate"},
  };
  for (const auto& b : bad) {
    auto r = parseConfig(b.yaml);
    ASSERT_FALSE(r.ok()) << b.yaml;
    EXPECT_EQ(r.error().field, b.field) << b.yaml << ": " << r.error().message();
  }
}

TEST(AgentConfig, Values) {
  auto c = parseConfig(R"(
domain: Example.Internal.
listen: ["127.0.0.1:0", "[::1]:5353"]
upstreams: ["127.0.0.53", "[::1]:5300"]
ttl: 500ms
sticky_window: 2m
allow_networks: [10.0.0.0/8, "fd00::/8"]
)");
  ASSERT_FALSE(c.ok()) << "uppercase domain rejected";
  c = parseConfig(R"(
domain: example.internal.
listen: ["127.0.0.1:0", "[::1]:5353"]
upstreams: ["127.0.0.53", "[::1]:5300"]
ttl: 500ms
sticky_window: 2m
allow_networks: [10.0.0.0/8, "fd00::/8"]
)");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->domain, "example.internal");
  EXPECT_EQ(c->listen[1].port(), 5353);
  EXPECT_EQ(c->upstreams[0].port(), 53);
  EXPECT_EQ(c->upstreams[1].port(), 5300);
  EXPECT_EQ(c->ttl, std::chrono::seconds(1));
  EXPECT_EQ(c->sticky_window, std::chrono::seconds(120));
  ASSERT_EQ(c->allow_networks.size(), 2u);
  auto a = boost::asio::ip::make_address("10.1.2.3");
  EXPECT_TRUE(c->allow_networks[0].contains(a));
  EXPECT_FALSE(c->allow_networks[0].contains(boost::asio::ip::make_address("11.1.2.3")));
  EXPECT_TRUE(c->allow_networks[0].contains(boost::asio::ip::make_address("::ffff:10.0.0.1")));
  EXPECT_TRUE(c->allow_networks[1].contains(boost::asio::ip::make_address("fd12::1")));
}

TEST(AgentConfig, BadInputNamesTheKey) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  const Case cases[] = {
      {"listen: [\"127.0.0.1\"]", "listen/0"},
      {"listen: [\"127.0.0.1:99999\"]", "listen/0"},
      {"listen: [\"nohost:53\"]", "listen/0"},
      {"listen: []", "listen"},
      {"ttl: five", "ttl"},
      {"ttl: 999999999h", "ttl"},
      {"negative_ttl: -1", "negative_ttl"},
      {"sticky_window: 0s", "sticky_window"},
      {"colour: blue", "colour"},
      {"central: {urls: [\"ftp://x\"]}", "central/urls/0"},
      {"central: {url: x}", "central/url"},
      {"allow_networks: [10.0.0.0/33]", "allow_networks/0"},
      {"upstreams: [\"1.2.3.4:0\"]", "upstreams/0"},
      {"metrics_listen: 127.0.0.1", "metrics_listen"},
      {"bpf: {enabled: true}", "bpf/cgroup"},
      {"bpf: {enabled: maybe}", "bpf/enabled"},
      {"bpf: {cgroup: x, container_id_pattern: \"(\"}", "bpf/container_id_pattern"},
      {"bpf: {cgroup: x, container_id_pattern: \"abc\"}", "bpf/container_id_pattern"},
      {"bpf: {pin_path: relative}", "bpf/pin_path"},
      {"bpf: {wat: 1}", "bpf/wat"},
      {"server_name: \"Bad Name\"", "server_name"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().field, c.field) << c.yaml << " → " << r.error().message();
    EXPECT_FALSE(r.error().reason.empty());
  }
  auto broken = parseConfig("listen: [");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().reason.find("YAML"), std::string::npos);
}

TEST(AgentConfig, BpfSection) {
  auto c = parseConfig(R"(
bpf:
  enabled: true
  cgroup: /sys/fs/cgroup/containers
  redirect: false
  exclude_cgroups: [system.slice]
  container_id_pattern: "docker-([0-9a-f]{64})\\.scope"
  pin_path: /sys/fs/bpf/test
)");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->bpf.enabled);
  EXPECT_FALSE(c->bpf.redirect);
  EXPECT_EQ(c->bpf.cgroup, "/sys/fs/cgroup/containers");
  EXPECT_EQ(c->bpf.exclude_cgroups, std::vector<std::string>{"system.slice"});
  EXPECT_EQ(c->bpf.pin_path, "/sys/fs/bpf/test");
}

TEST(AgentConfig, DefaultAllowNetworksIncludeLoopback) {
  auto nets = defaultAllowNetworks(
      {boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 53)});
  bool loop = false;
  for (const auto& n : nets) loop |= n.contains(boost::asio::ip::make_address("127.3.4.5"));
  EXPECT_TRUE(loop);
}

}  // namespace
}  // namespace elasticdns::agent
