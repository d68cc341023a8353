#include "elasticdns/validate.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace elasticdns;
using nlohmann::json;

TEST(Validate, Names) {
  EXPECT_TRUE(validate::isDnsLabel("api"));
  EXPECT_TRUE(validate::isDnsLabel("a-1"));
  EXPECT_FALSE(validate::isDnsLabel("-a"));
  EXPECT_FALSE(validate::isDnsLabel("a-"));
  EXPECT_FALSE(validate::isDnsLabel("API"));
  EXPECT_FALSE(validate::isDnsLabel(""));
  EXPECT_FALSE(validate::isDnsLabel(std::string(64, 'a')));
  EXPECT_TRUE(validate::isDnsName("host-1.dc.example"));
  EXPECT_FALSE(validate::isDnsName("host..x"));
  EXPECT_FALSE(validate::isDnsName("host."));
  EXPECT_TRUE(validate::isIpv4("10.1.2.3"));
  EXPECT_FALSE(validate::isIpv4("10.1.2.256"));
  EXPECT_FALSE(validate::isIpv4("fd00::1"));
  EXPECT_TRUE(validate::isIpv6("fd00::1"));
  EXPECT_TRUE(validate::isContainerId(std::string(64, 'f')));
  EXPECT_FALSE(validate::isContainerId("a/b"));
  EXPECT_TRUE(validate::isVersionName("1.2.3+build-7"));
  EXPECT_FALSE(validate::isVersionName("v 1"));
}

TEST(Validate, ContainerGoodAndKeyFromUrl) {
  auto c = validate::parseContainer(
      json{{"service", "api"}, {"version", "v1"}, {"server", "host1"}, {"address", "10.0.0.2"}},
      "abc123");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "abc123");
  EXPECT_EQ(c->state, model::ContainerState::kRunning);
}

TEST(Validate, ContainerErrorsNameTheField) {
  struct Case {
    json body;
    std::string field;
  } cases[] = {
      {{{"service", "api"}, {"version", "v1"}, {"server", "h"}, {"address", "300.0.0.1"}},
       "address"},
      {{{"service", "API"}, {"version", "v1"}, {"server", "h"}, {"address", "10.0.0.1"}},
       "service"},
      {{{"service", "api"}, {"server", "h"}, {"address", "10.0.0.1"}}, "version"},
      {{{"service", "api"}, {"version", "v1"}, {"server", "h"}}, "address"},
      {{{"service", "api"},
        {"version", "v1"},
        {"server", "h"},
        {"address", "10.0.0.1"},
        {"colour", "red"}},
       "colour"},
      {{{"service", "api"},
        {"version", "v1"},
        {"server", "h"},
        {"address", "10.0.0.1"},
        {"state", "sleeping"}},
       "state"},
      {{{"id", "other"},
        {"service", "api"},
        {"version", "v1"},
        {"server", "h"},
        {"address", "10.0.0.1"}},
       "id"},
  };
  for (const auto& tc : cases) {
    auto r = validate::parseContainer(tc.body, "abc");
    ASSERT_FALSE(r) << tc.body.dump();
    EXPECT_EQ(r.error().field, tc.field) << tc.body.dump() << " -> " << r.error().message();
  }
}

TEST(Validate, ServicePortsShortAndLongForm) {
  auto s = validate::parseService(
      json{{"dns_behaviour", "non-versioned"},
           {"load_balancing", "sticky"},
           {"ports", {"3000:80:443", json{{"container", 5000}, {"udp", 5000}}}}},
      "api");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->dns_behaviour, model::DnsBehaviour::kNonVersioned);
  EXPECT_EQ(s->load_balancing, model::LoadBalancing::kSticky);
  ASSERT_EQ(s->ports.size(), 2u);
  EXPECT_EQ(s->ports[0], (model::PortMapping{3000, 80, 443, 0, 0}));
  EXPECT_EQ(s->ports[1], (model::PortMapping{5000, 0, 0, 0, 5000}));
  auto bad = validate::parseService(json{{"ports", {"3000:99999"}}}, "api");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "ports/0");
  auto unknown = validate::parseService(json{{"load_balancing", "random"}}, "api");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().field, "load_balancing");
}

TEST(Validate, DatasourceGroupDefaultsAndAddresses) {
  auto d = validate::parseDatasource(json{{"addresses", {"10.0.0.5", "fd00::5"}}}, "mysql");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->group, "default");
  EXPECT_FALSE(d->primary);
  auto bad = validate::parseDatasource(json{{"addresses", {"nope"}}}, "mysql", "main");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "addresses/0");
  auto empty = validate::parseDatasource(json{{"addresses", json::array()}}, "mysql", "main");
  ASSERT_FALSE(empty);
}

// ContainerNet's server fields: a subnet leased by central, a wireguard published by the agent.
constexpr const char* kWgKey = "WjBMtu18bUMD7RfItn7YA/A/9INSW5D0ilB6d1bu0RQ=";  // wg pubkey

TEST(Validate, Ipv4Subnet) {
  for (const char* good : {"10.240.0.0/16", "10.240.3.0/24", "10.0.0.0/8", "10.240.0.4/30",
                           "192.168.255.0/24", "0.0.0.0/8"})
    EXPECT_TRUE(validate::isIpv4Subnet(good)) << good;
  for (const char* bad :
       {"", "10.240.0.0", "10.240.0.0/", "10.240.0.1/24", "10.240.3.0/16", "10.0.0.0/7",
        "10.0.0.0/31", "10.0.0.0/32", "10.0.0.0/100", "10.0.0.0/2a", "10.0.0.0/-8", "10.0.0.0/+8",
        "10.240.0.0/24 ", " 10.240.0.0/24", "10.240.0.256/24", "fd00::/64", "10.240.0.0/24/24",
        "10.240.0/24", "a.b.c.d/24"})
    EXPECT_FALSE(validate::isIpv4Subnet(bad)) << bad;
}

TEST(Validate, WireGuardKey) {
  EXPECT_TRUE(validate::isWireGuardKey(kWgKey));
  EXPECT_TRUE(validate::isWireGuardKey("0NT5E7zqHfMHqVjQN9Aq0oB2PMEEgx3D48B6+5m/Fgw="));
  EXPECT_TRUE(validate::isWireGuardKey(std::string(43, 'A') + "="));  // all-zero key, well formed
  std::string key = kWgKey;
  EXPECT_FALSE(validate::isWireGuardKey(""));
  EXPECT_FALSE(validate::isWireGuardKey(key.substr(0, 43)));         // no padding
  EXPECT_FALSE(validate::isWireGuardKey(key + "="));                 // 45 characters
  EXPECT_FALSE(validate::isWireGuardKey(key.substr(0, 42) + "=="));  // 31 bytes
  EXPECT_FALSE(validate::isWireGuardKey(key.substr(0, 42) + "R="));  // non-zero trailing bits
  EXPECT_FALSE(validate::isWireGuardKey("-" + key.substr(1)));       // base64url, not base64
  EXPECT_FALSE(validate::isWireGuardKey("_" + key.substr(1)));
  EXPECT_FALSE(validate::isWireGuardKey(" " + key.substr(1)));
  EXPECT_FALSE(validate::isWireGuardKey(key.substr(0, 20) + "=" + key.substr(21)));
  EXPECT_FALSE(
      validate::isWireGuardKey(std::string("WjBMtu18bUMD7RfItn7YA/A/9INSW5D0ilB6d1bu0RQ\0", 44)));
}

TEST(Validate, Endpoint) {
  for (const char* good :
       {"192.0.2.1:51820", "10.0.0.1:1", "10.0.0.1:65535", "[fd00::1]:51820", "[::1]:7"})
    EXPECT_TRUE(validate::isEndpoint(good)) << good;
  for (const char* bad :
       {"", "192.0.2.1", "192.0.2.1:", ":51820", "192.0.2.1:0", "192.0.2.1:65536",
        "192.0.2.1:051820", "192.0.2.1:0080", "192.0.2.1:123456", "192.0.2.1:51820 ",
        "192.0.2.1:-1", "192.0.2.1:+1", "host1:51820", "fd00::1:51820", "[fd00::1]",
        "[192.0.2.1]:51820", "[]:51820", "[fd00::1:51820", "300.0.2.1:51820"})
    EXPECT_FALSE(validate::isEndpoint(bad)) << bad;
}

TEST(Validate, WireGuardObject) {
  auto w = validate::parseWireGuard(json{{"public_key", kWgKey}, {"endpoint", "192.0.2.1:51820"}});
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->public_key, kWgKey);
  EXPECT_EQ(w->endpoint, "192.0.2.1:51820");
  struct Case {
    json body;
    std::string field;
  } cases[] = {
      {json::array(), ""},
      {"key", ""},
      {json{{"endpoint", "192.0.2.1:51820"}}, "public_key"},
      {json{{"public_key", kWgKey}}, "endpoint"},
      {json{{"public_key", "abc"}, {"endpoint", "192.0.2.1:51820"}}, "public_key"},
      {json{{"public_key", 7}, {"endpoint", "192.0.2.1:51820"}}, "public_key"},
      {json{{"public_key", kWgKey}, {"endpoint", "192.0.2.1"}}, "endpoint"},
      {json{{"public_key", kWgKey}, {"endpoint", 51820}}, "endpoint"},
      {json{{"public_key", kWgKey}, {"endpoint", "192.0.2.1:1"}, {"private_key", kWgKey}},
       "private_key"},
  };
  for (const auto& tc : cases) {
    auto r = validate::parseWireGuard(tc.body);
    ASSERT_FALSE(r) << tc.body.dump();
    EXPECT_EQ(r.error().field, tc.field) << tc.body.dump() << " -> " << r.error().message();
  }
}

TEST(Validate, ServerContainerNetFields) {
  auto s = validate::parseServer(
      json{{"address", "192.0.2.1"},
           {"subnet", "10.240.3.0/24"},
           {"wireguard", {{"public_key", kWgKey}, {"endpoint", "192.0.2.1:51820"}}}},
      "host1");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->subnet, "10.240.3.0/24");
  ASSERT_TRUE(s->wireguard);
  EXPECT_EQ(*s->wireguard, (model::WireGuardPeer{kWgKey, "192.0.2.1:51820"}));
  auto plain = validate::parseServer(json{{"address", "192.0.2.1"}}, "host1");
  ASSERT_TRUE(plain);
  EXPECT_TRUE(plain->subnet.empty());
  EXPECT_FALSE(plain->wireguard);
  struct Case {
    json body;
    std::string field;
  } cases[] = {
      {json{{"address", "192.0.2.1"}, {"subnet", "10.240.3.1/24"}}, "subnet"},
      {json{{"address", "192.0.2.1"}, {"subnet", 24}}, "subnet"},
      {json{{"address", "192.0.2.1"}, {"wireguard", "x"}}, "wireguard"},
      {json{{"address", "192.0.2.1"},
            {"wireguard", {{"public_key", "bad"}, {"endpoint", "192.0.2.1:1"}}}},
       "wireguard/public_key"},
      {json{{"address", "192.0.2.1"}, {"wireguard", {{"public_key", kWgKey}, {"endpoint", "x:1"}}}},
       "wireguard/endpoint"},
      {json{{"address", "192.0.2.1"}, {"wireguard", {{"public_key", kWgKey}}}},
       "wireguard/endpoint"},
  };
  for (const auto& tc : cases) {
    auto r = validate::parseServer(tc.body, "host1");
    ASSERT_FALSE(r) << tc.body.dump();
    EXPECT_EQ(r.error().field, tc.field) << tc.body.dump() << " -> " << r.error().message();
  }
}
