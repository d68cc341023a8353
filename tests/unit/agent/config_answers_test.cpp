// The agent config's keys for the answers' standards conformance: `nameserver` (the apex NS
// and its addresses, the default for unspecified listen addresses) and `upstream_failure_cache`
// (RFC 9520's 1 s to 5 minutes). Bad input names the key.
#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace elasticdns::agent {
namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;

std::vector<std::string> texts(const std::vector<ip::address>& v) {
  std::vector<std::string> out;
  for (const auto& a : v) out.push_back(a.to_string());
  return out;
}

using Strings = std::vector<std::string>;

TEST(AgentConfigAnswers, NameserverDefaultsToTheListenAddresses) {
  auto c = parseConfig("listen: [127.0.0.1:53, '[::1]:53', 127.0.0.1:5353, 0.0.0.0:53]");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->nameserver.name, "");
  EXPECT_EQ(texts(apexNsAddresses(c.value())), (Strings{"127.0.0.1", "::1"}));
  // Only unspecified addresses: the loopback address of their families.
  c = parseConfig("listen: [0.0.0.0:53, '[::]:53']");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(texts(apexNsAddresses(c.value())), (Strings{"127.0.0.1", "::1"}));
  c = parseConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(texts(apexNsAddresses(c.value())), Strings{"127.0.0.1"});
}

TEST(AgentConfigAnswers, NameserverAsConfigured) {
  auto c = parseConfig(
      "domain: cloud66.internal\n"
      "listen: [0.0.0.0:53]\n"
      "nameserver: {name: dns.cloud66.internal., addresses: [169.254.20.10, 'fd00::53']}\n");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->nameserver.name, "dns.cloud66.internal");
  EXPECT_EQ(texts(apexNsAddresses(c.value())), (Strings{"169.254.20.10", "fd00::53"}));
  c = parseConfig("nameserver: {name: ns1.example.net}");  // outside the zone: no addresses
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->nameserver.name, "ns1.example.net");
}

TEST(AgentConfigAnswers, UpstreamFailureCache) {
  auto c = parseConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->upstream_failure_cache.initial, 1s);
  EXPECT_EQ(c->upstream_failure_cache.max, 30s);
  c = parseConfig("upstream_failure_cache: {initial: 5s, max: 5m}");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->upstream_failure_cache.initial, 5s);
  EXPECT_EQ(c->upstream_failure_cache.max, 300s);
}

TEST(AgentConfigAnswers, BadInputNamesTheKey) {
  struct Case {
    const char* yaml;
    const char* field;
  } bad[] = {
      {"nameserver: ns", "nameserver"},
      {"nameserver: {name: 'not a name'}", "nameserver/name"},
      {"nameserver: {name: NS.Cloud66.Local}", "nameserver/name"},
      {"nameserver: {name: cloud66.local}", "nameserver/name"},
      {"nameserver: {addresses: [10.0.0.300]}", "nameserver/addresses/0"},
      {"nameserver: {addresses: [10.0.0.1, 0.0.0.0]}", "nameserver/addresses/1"},
      {"nameserver: {addresses: 10.0.0.1}", "nameserver/addresses"},
      {"nameserver: {name: ns.example.net, addresses: [10.0.0.1]}", "nameserver/addresses"},
      {"nameserver: {ttl: 5}", "nameserver/ttl"},
      {"upstream_failure_cache: 5s", "upstream_failure_cache"},
      {"upstream_failure_cache: {initial: 0s}", "upstream_failure_cache/initial"},
      {"upstream_failure_cache: {max: 301s}", "upstream_failure_cache/max"},
      {"upstream_failure_cache: {initial: 10s, max: 5s}", "upstream_failure_cache/max"},
      {"upstream_failure_cache: {initial: soon}", "upstream_failure_cache/initial"},
      {"upstream_failure_cache: {min: 1s}", "upstream_failure_cache/min"},
  };
  for (const auto& b : bad) {
    auto r = parseConfig(b.yaml);
    ASSERT_FALSE(r.ok()) << b.yaml;
    EXPECT_EQ(r.error().field, b.field) << b.yaml << ": " << r.error().message();
  }
}

}  // namespace
}  // namespace elasticdns::agent
