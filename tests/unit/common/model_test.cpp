#include "elasticdns/model.hpp"

#include <gtest/gtest.h>

using namespace elasticdns::model;

TEST(Model, EnumsRoundTrip) {
  for (auto b : {DnsBehaviour::kVersioned, DnsBehaviour::kNonVersioned})
    EXPECT_EQ(parseDnsBehaviour(toString(b)), b);
  for (auto l : {LoadBalancing::kRoundRobin, LoadBalancing::kSticky, LoadBalancing::kClosest})
    EXPECT_EQ(parseLoadBalancing(toString(l)), l);
  EXPECT_FALSE(parseLoadBalancing("random"));
  EXPECT_FALSE(parseDnsBehaviour("Versioned"));
}

TEST(Model, LatestIsNewestGenerationWithARunningContainer) {
  Topology t;
  t.versions = {{"v1", 1}, {"v2", 2}, {"v3", 3}};
  t.containers["a"] = {"a", "api", "v1", "s1", "10.0.0.1", "", ContainerState::kRunning};
  t.containers["b"] = {"b", "api", "v2", "s1", "10.0.0.2", "", ContainerState::kRunning};
  t.containers["c"] = {"c", "api", "v3", "s1", "10.0.0.3", "", ContainerState::kDraining};
  t.containers["d"] = {"d", "web", "v1", "s1", "10.0.0.4", "", ContainerState::kRunning};
  t.recomputeDerived();
  EXPECT_EQ(t.latest_versions.at("api"), "v2");
  EXPECT_EQ(t.latest_versions.at("web"), "v1");
  t.containers.erase("d");
  t.recomputeDerived();
  EXPECT_EQ(t.latest_versions.count("web"), 0u);
  EXPECT_EQ(t.generationOf("v3"), 3u);
  EXPECT_EQ(t.generationOf("nope"), 0u);
}
