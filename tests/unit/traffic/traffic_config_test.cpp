// The `traffic:` config section: defaults, every key, and clear errors.
#include "agent/traffic/traffic_config.hpp"

#include <gtest/gtest.h>

#include "support/readme_util.hpp"

namespace elasticdns::agent {
namespace {

Result<TrafficConfig> parse(const std::string& yaml) {
  return parseTrafficConfig(YAML::Load(yaml));
}

TEST(TrafficConfig, OffByDefault) {
  auto c = parseTrafficConfig(YAML::Node());
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->enabled);
  EXPECT_EQ(c->http_file, "/etc/nginx/conf.d/elasticdns.conf");
  EXPECT_EQ(c->reload, NginxReload::kSystemctl);
  EXPECT_EQ(c->valid, std::chrono::seconds(5));
}

TEST(TrafficConfig, EveryKey) {
  auto c = parse(R"(
enabled: true
nginx: /usr/local/sbin/nginx
http_file: /etc/nginx/conf.d/x.conf
stream_file: /etc/nginx/x-stream.conf
test_includes: [/etc/nginx/modules-enabled/50-mod-stream.conf]
reload: signal
unit: openresty.service
pid_file: /run/x.pid
cert_dir: /etc/x/certs
resolver: 169.254.20.10
valid: 2s
retries: 5
connect_timeout: 250ms
work_dir: /var/lib/x
main_conf: ""
)");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->reload, NginxReload::kSignal);
  EXPECT_EQ(c->resolver, "169.254.20.10:53");
  EXPECT_EQ(c->valid, std::chrono::seconds(2));
  EXPECT_EQ(c->retries, 5u);
  EXPECT_EQ(c->connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c->test_includes.size(), 1u);
  EXPECT_EQ(c->work_dir, "/var/lib/x");
  EXPECT_EQ(c->main_conf, "");
}

TEST(TrafficConfig, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* field;
  } cases[] = {
      {"enabled: maybe", "traffic/enabled"},
      {"bogus: 1", "traffic/bogus"},
      {"reload: kill", "traffic/reload"},
      {"retries: 0", "traffic/retries"},
      {"retries: 101", "traffic/retries"},
      {"valid: 2h", "traffic/valid"},
      {"connect_timeout: 0ms", "traffic/connect_timeout"},
      {"http_file: relative.conf", "traffic/http_file"},
      {"stream_file: /etc/nginx/conf.d/elasticdns.conf", "traffic/stream_file"},
      {"resolver: not-an-address", "traffic/resolver"},
      {"test_includes: /x", "traffic/test_includes"},
      {"unit: a b", "traffic/unit"},
      {"main_conf: nginx.conf", "traffic/main_conf"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.error().field, c.field) << c.yaml << ": " << r.error().message();
  }
  auto r = parse("[1, 2]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "traffic");
}

// agent/README.md's traffic section: every example's `traffic` parses and is enabled.
TEST(TrafficConfig, ReadmeExamplesParse) {
  auto blocks = testing::readmeYamlBlocks("agent/README.md", "<!-- traffic -->", "<!-- ebpf -->");
  ASSERT_FALSE(blocks.empty()) << "agent/README.md's traffic section has YAML examples";
  for (const auto& b : blocks) {
    auto root = YAML::Load(b);
    ASSERT_TRUE(root["traffic"]) << b;
    auto c = parseTrafficConfig(root["traffic"]);
    ASSERT_TRUE(c.ok()) << c.error().message() << "\n" << b;
    EXPECT_TRUE(c->enabled);
  }
}

}  // namespace
}  // namespace elasticdns::agent
