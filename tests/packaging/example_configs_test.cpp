// The configs the package installs (agent/agent.example.yml, central/central.example.yml) and
// every YAML example of agent/README.md's operations section parse with the daemons' own parsers;
// the `docker:` section of the agent's config rejects bad input naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "central/config.hpp"
#include "support/readme_util.hpp"

namespace elasticdns {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> operationsExamples() {
  return elasticdns::testing::readmeYamlBlocks("agent/README.md", "<!-- operations -->");
}

TEST(PkgConfig, InstalledAgentConfigParses) {
  auto c =
      agent::parseConfig(readFile(std::string(ELASTICDNS_SOURCE_DIR) + "/agent/agent.example.yml"));
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].address().to_string(), "127.0.0.1");  // as in elasticdns-agent.socket
  EXPECT_EQ(c->listen[0].port(), 53);
  EXPECT_EQ(c->state_dir, "/var/lib/elasticdns");
  EXPECT_EQ(c->central_token_file, "/etc/elasticdns/agent.token");
  EXPECT_FALSE(c->docker.enabled);
  EXPECT_FALSE(c->bpf.enabled);
}

TEST(PkgConfig, InstalledCentralConfigParses) {
  auto c = central::parseConfig(
      readFile(std::string(ELASTICDNS_SOURCE_DIR) + "/central/central.example.yml"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->listen, "127.0.0.1:8080");
  EXPECT_TRUE(central::parseConfig("agent_tokens_file: /etc/elasticdns/agent-tokens"));
}

TEST(PkgConfig, ReadmeOperationsExamplesParse) {
  auto examples = operationsExamples();
  ASSERT_FALSE(examples.empty());
  for (const auto& e : examples) {
    auto c = agent::parseConfig(e);
    ASSERT_TRUE(c) << c.error().message() << "\n" << e;
    EXPECT_TRUE(c->docker.enabled);
    EXPECT_EQ(c->docker.socket, "/var/run/docker.sock");
    EXPECT_EQ(c->docker.networks, std::vector<std::string>{"appnet"});
  }
}

TEST(PkgConfig, DockerSectionRejectsBadInput) {
  const std::string base = "server_name: h1\ncentral: {urls: [http://127.0.0.1:8080]}\n";
  struct Case {
    std::string yaml, field;
  };
  for (const auto& [yaml, field] :
       std::vector<Case>{{base + "docker: {enabled: true, sockets: /x}", "docker/sockets"},
                         {base + "docker: {socket: relative.sock}", "docker/socket"},
                         {base + "docker: {enabled: maybe}", "docker/enabled"},
                         {base + "docker: {networks: appnet}", "docker/networks"},
                         {base + "docker: [1]", "docker"},
                         {"docker: {enabled: true}", "docker/enabled"},  // no server_name
                         {"server_name: h1\ndocker: {enabled: true}", "docker/enabled"}}) {
    auto c = agent::parseConfig(yaml);
    ASSERT_FALSE(c) << yaml;
    EXPECT_EQ(c.error().field, field) << yaml << " → " << c.error().message();
  }
  auto off = agent::parseConfig("docker: {enabled: false}");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->docker.enabled);
}

}  // namespace
}  // namespace elasticdns
