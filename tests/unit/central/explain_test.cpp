// `elasticdnsctl explain`: central's topology through the agent's policy functions.
#include <gtest/gtest.h>

#include "central/explain.hpp"

using namespace elasticdns;
using namespace elasticdns::central;
using nlohmann::json;

namespace {

void add(model::Topology& t, const std::string& id, const std::string& service,
         const std::string& version, const std::string& server, const std::string& address) {
  if (!t.versions.count(version)) t.versions[version] = t.versions.size() + 1;
  t.containers[id] = {id, service, version, server, address, "", model::ContainerState::kRunning};
}

model::Topology topology() {
  model::Topology t;
  add(t, "api-1", "api", "v1", "host1", "10.0.0.1");
  add(t, "web-1", "web", "v1", "host1", "10.0.1.1");
  add(t, "api-2", "api", "v2", "host1", "10.0.0.2");
  add(t, "api-3", "api", "v2", "host2", "10.0.0.3");
  add(t, "web-2", "web", "v2", "host2", "10.0.1.2");
  add(t, "web-3", "web", "v3", "host2", "10.0.1.3");
  t.datasources["mysql/main"] = {"mysql", "main", true, {"10.9.0.1"}};
  t.datasources["mysql/default"] = {"mysql", "default", false, {"10.9.0.2"}};
  t.recomputeDerived();
  return t;
}

TEST(Explain, VersionedCallersGetTheirOwnOrTheNewestOlderVersion) {
  auto t = topology();
  auto e = explainAnswer(t, "api", "web-1");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e.value()["version"], "v1");
  EXPECT_EQ(e.value()["why"], "own version");
  EXPECT_EQ(e.value()["addresses"], json({"10.0.0.1"}));
  EXPECT_EQ(e.value()["caller"]["service"], "web");

  e = explainAnswer(t, "api.cloud66.local.", "web-2");  // the agents' domain is left off
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e.value()["version"], "v2");
  EXPECT_EQ(e.value()["addresses"], json({"10.0.0.2", "10.0.0.3"}));

  e = explainAnswer(t, "api", "web-3");
  EXPECT_EQ(e.value()["version"], "v2");
  EXPECT_EQ(e.value()["why"], "newest older version");

  e = explainAnswer(t, "api", "no-such-container");
  EXPECT_EQ(e.value()["version"], "v2");
  EXPECT_EQ(e.value()["why"], "latest (unknown caller)");
  EXPECT_EQ(e.value()["caller"]["known"], false);
  EXPECT_NE(renderExplanation(e.value()).find("not a container central knows"), std::string::npos);
}

TEST(Explain, ClosestAndNonVersioned) {
  auto t = topology();
  t.services["api"] = {
      "api", model::DnsBehaviour::kVersioned, model::LoadBalancing::kClosest, {}, {}};
  auto e = explainAnswer(t, "api", "web-2");
  EXPECT_EQ(e.value()["addresses"], json({"10.0.0.3"}));  // v2 on host2
  t.services["api"].dns_behaviour = model::DnsBehaviour::kNonVersioned;
  t.services["api"].load_balancing = model::LoadBalancing::kRoundRobin;
  e = explainAnswer(t, "api", "web-1");
  EXPECT_EQ(e.value()["version"], "v2");
  EXPECT_EQ(e.value()["why"], "latest (non-versioned)");
}

TEST(Explain, DatasourcesAndUnknownNames) {
  auto t = topology();
  auto e = explainAnswer(t, "mysql", "web-1");
  ASSERT_TRUE(e);
  EXPECT_EQ(e.value()["group"], "main");
  EXPECT_EQ(e.value()["addresses"], json({"10.9.0.1"}));
  e = explainAnswer(t, "default.mysql", "web-1");
  EXPECT_EQ(e.value()["addresses"], json({"10.9.0.2"}));
  e = explainAnswer(t, "nothing", "web-1");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().field, "name");
}

TEST(Explain, RendersLines) {
  auto e = explainAnswer(topology(), "api", "web-1");
  EXPECT_EQ(renderExplanation(e.value()),
            "caller:   web-1 (web v1 on host1)\n"
            "name:     api (service)\n"
            "policy:   versioned, load_balancing roundrobin\n"
            "choice:   version v1: own version\n"
            "answer:   10.0.0.1\n"
            "note:     roundrobin: all of these, rotated on every answer\n");
}

}  // namespace
