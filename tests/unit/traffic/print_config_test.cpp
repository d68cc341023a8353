// --print-traffic-config's input and output: central's answer or a bare snapshot, validated.
#include "agent/traffic/print_config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "elasticdns/protocol.hpp"
#include "support/temp_dir.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

model::Topology sample() {
  auto t = testing::sampleTopology(4, 2);
  model::Service s;
  s.name = "api";
  s.ports.push_back({3000, 80, 0, 0, 0});
  t.services["api"] = s;
  return t;
}

TEST(PrintTrafficConfig, ReadsCentralsAnswerAndTheSnapshotFile) {
  testing::TempDir dir;
  auto full = dir.path() / "full.json";
  auto bare = dir.path() / "bare.json";
  std::ofstream(full) << protocol::writeFullResponse(sample());
  std::ofstream(bare) << protocol::toJson(sample()).dump();
  for (const auto& p : {full, bare}) {
    auto t = loadTopologyFile(p.string());
    ASSERT_TRUE(t.ok()) << p << ": " << t.error().message();
    EXPECT_EQ(t->index, 4u);
    EXPECT_EQ(t->services.at("api").ports.size(), 1u);
  }
  TrafficSettings s;
  s.domain = "cloud66.local";
  s.resolver = "127.0.0.1:53";
  s.work_dir = dir.path();
  auto text = printableTrafficConfig(s, loadTopologyFile(full.string()).value());
  EXPECT_NE(
      text.find("# ---- /etc/nginx/conf.d/elasticdns.conf (inside http {}), topology index 4"),
      std::string::npos);
  EXPECT_NE(text.find("set $elasticdns_upstream \"api.cloud66.local\";"), std::string::npos);
}

TEST(PrintTrafficConfig, BadFilesSayWhat) {
  testing::TempDir dir;
  auto p = dir.path() / "t.json";
  EXPECT_EQ(loadTopologyFile(p.string()).error().reason, "cannot read");
  std::ofstream(p) << "[1]";
  EXPECT_EQ(loadTopologyFile(p.string()).error().reason, "not a JSON object");
  std::ofstream(p, std::ios::trunc) << R"({"kind":"delta","index":5,"since":4,"changes":[]})";
  auto r = loadTopologyFile(p.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().reason.find("a delta"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace elasticdns::agent
