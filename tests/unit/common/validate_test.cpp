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
