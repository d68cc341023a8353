#include "elasticdns/protocol.hpp"

#include <gtest/gtest.h>

using namespace elasticdns;
using nlohmann::json;

namespace {
model::Topology sample() {
  model::Topology t;
  t.index = 7;
  t.servers["host1"] = {"host1", "192.0.2.1", {{"zone", "a"}}, {}, {}};
  t.services["api"] = {"api",
                       model::DnsBehaviour::kVersioned,
                       model::LoadBalancing::kSticky,
                       {{3000, 80, 443, 0, 0}},
                       {}};
  t.versions = {{"v1", 1}, {"v2", 2}};
  t.containers["c1"] = {
      "c1", "api", "v1", "host1", "10.0.0.1", "", model::ContainerState::kRunning};
  t.containers["c2"] = {
      "c2", "api", "v2", "host1", "10.0.0.2", "fd00::2", model::ContainerState::kRunning};
  t.datasources["mysql/main"] = {"mysql", "main", true, {"10.0.1.1"}};
  t.recomputeDerived();
  return t;
}
}  // namespace

TEST(Protocol, FullRoundTrip) {
  auto t = sample();
  auto r = protocol::parseResponse(protocol::fullResponse(t));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->topology, t);
  EXPECT_EQ(r->topology.latest_versions.at("api"), "v2");
}

TEST(Protocol, DeltaAppliesInOrder) {
  auto t = sample();
  std::vector<protocol::Change> changes = {
      {8, protocol::ChangeOp::kPut, protocol::RecordKind::kVersion, "v3", json{{"generation", 3}}},
      {9, protocol::ChangeOp::kPut, protocol::RecordKind::kContainer, "c3",
       json{{"service", "api"}, {"version", "v3"}, {"server", "host1"}, {"address", "10.0.0.3"}}},
      {10, protocol::ChangeOp::kDelete, protocol::RecordKind::kContainer, "c1", {}},
  };
  auto wire = protocol::deltaResponse(10, 7, changes);
  auto r = protocol::parseResponse(wire);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_FALSE(r->full);
  ASSERT_FALSE(protocol::applyChanges(t, r->changes, r->index));
  EXPECT_EQ(t.index, 10u);
  EXPECT_EQ(t.containers.count("c1"), 0u);
  EXPECT_EQ(t.latest_versions.at("api"), "v3");
}

TEST(Protocol, BadDeltaChangesNothing) {
  auto t = sample();
  auto before = t;
  std::vector<protocol::Change> changes = {
      {8, protocol::ChangeOp::kDelete, protocol::RecordKind::kContainer, "c1", {}},
      {9, protocol::ChangeOp::kPut, protocol::RecordKind::kContainer, "c4",
       json{{"service", "api"}, {"version", "v9"}, {"server", "host1"}, {"address", "10.0.0.4"}}},
  };
  auto e = protocol::applyChanges(t, changes, 9);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->field, "containers/c4/version");
  EXPECT_EQ(t, before);
}

TEST(Protocol, RejectsMalformedSnapshots) {
  auto good = protocol::toJson(sample());
  std::vector<json> bad;
  {
    auto j = good;
    j["containers"][0]["address"] = "10.0.0.999";
    bad.push_back(j);
  }
  {
    auto j = good;
    j.erase("index");
    bad.push_back(j);
  }
  {
    auto j = good;
    j["versions"][1]["generation"] = 1;  // duplicate generation
    bad.push_back(j);
  }
  {
    auto j = good;
    j["containers"].push_back(j["containers"][0]);  // duplicate id
    bad.push_back(j);
  }
  bad.push_back(json::array());
  for (const auto& j : bad) EXPECT_FALSE(protocol::parseTopology(j)) << j.dump();
  EXPECT_TRUE(protocol::parseTopology(good));
}
