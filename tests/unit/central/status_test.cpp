// The status document and its tables (golden text), and the agents' reports in memory.
#include <gtest/gtest.h>

#include "central/agent_reports.hpp"
#include "central/status.hpp"

using namespace elasticdns;
using namespace elasticdns::central;
using nlohmann::json;

namespace {

void add(model::Topology& t, const std::string& id, const std::string& service,
         const std::string& version, const std::string& server, const std::string& address,
         model::ContainerState state = model::ContainerState::kRunning) {
  if (!t.versions.count(version)) t.versions[version] = t.versions.size() + 1;
  t.containers[id] = {id, service, version, server, address, "", state};
}

// A rolling deploy: api v1 → v2 half way, web v1 → v2, a mysql pair.
model::Topology rollingDeploy() {
  model::Topology t;
  t.index = 20;
  t.servers["host1"] = {"host1", "192.0.2.1", {}, {}, std::nullopt};
  t.servers["host2"] = {"host2", "192.0.2.2", {}, {}, std::nullopt};
  t.servers["host3"] = {"host3", "192.0.2.3", {}, {}, std::nullopt};
  t.services["api"] = {
      "api", model::DnsBehaviour::kVersioned, model::LoadBalancing::kRoundRobin, {}, {}};
  add(t, "api-1", "api", "v1", "host1", "10.0.0.1");
  add(t, "api-2", "api", "v1", "host2", "10.0.0.2");
  add(t, "web-1", "web", "v1", "host1", "10.0.1.1");
  add(t, "api-3", "api", "v2", "host1", "10.0.0.3");
  add(t, "api-4", "api", "v2", "host2", "10.0.0.4");
  add(t, "api-5", "api", "v2", "host2", "10.0.0.5", model::ContainerState::kDraining);
  add(t, "web-2", "web", "v2", "host2", "10.0.1.2");
  add(t, "cache-1", "cache", "v2", "host1", "10.0.2.1");
  t.datasources["mysql/main"] = {"mysql", "main", true, {"10.9.0.1"}};
  t.datasources["mysql/spare"] = {"mysql", "spare", false, {"10.9.0.2", "10.9.0.3"}};
  t.recomputeDerived();
  return t;
}

status::AgentView agent(const std::string& server, uint64_t index, bool seen, bool polling,
                        double ago) {
  status::AgentView a;
  a.report.server = server;
  a.report.index = index;
  a.report.version = "0.1.0";
  a.report.ebpf_identity = server == "host1";
  a.report.ebpf_redirect = server == "host1";
  if (server == "host2") {
    a.report.peers_up = 1;
    a.report.peers_total = 2;
    a.report.traffic_generation = 4;
  }
  a.seen = seen;
  a.polling = polling;
  a.last_seen_seconds = ago;
  a.last_seen_unix_ms = 1'800'000'000'000;
  return a;
}

TEST(Status, ComputesVersionsPerServerAndTheDeployVerdict) {
  auto t = rollingDeploy();
  json s =
      status::compute(t, {agent("host1", 20, true, true, 0.5), agent("host2", 19, true, false, 3)});
  EXPECT_EQ(s["index"], 20);
  ASSERT_EQ(s["services"].size(), 3u);
  const json& api = s["services"][0];
  EXPECT_EQ(api["name"], "api");
  EXPECT_EQ(api["latest"], "v2");
  EXPECT_EQ(api["versions"][1]["running"], 2);
  EXPECT_EQ(api["versions"][1]["draining"], 1);
  EXPECT_EQ(api["rollout"]["rolling"], true);
  EXPECT_EQ(api["rollout"]["complete"], false);
  EXPECT_EQ(api["rollout"]["verdict"],
            "api: v1 2 running → v2 2 running, 1 draining; web v1 callers → api v1; "
            "1 agent behind");
  // cache runs one version, but an agent is behind: not complete.
  EXPECT_EQ(s["services"][0 + 1]["name"], "cache");
  EXPECT_EQ(s["services"][1]["rollout"]["complete"], false);
  EXPECT_EQ(s["agents_behind"], 1);
  ASSERT_EQ(s["agents"].size(), 3u);  // host3 never reported
  EXPECT_EQ(s["agents"][1]["lag"], 1);
  EXPECT_EQ(s["agents"][2]["server"], "host3");
  EXPECT_TRUE(s["agents"][2]["index"].is_null());
  EXPECT_EQ(s["deploys"].size(), 2u);  // api and web

  json caught_up = status::compute(t, {agent("host1", 20, true, true, 0)});
  EXPECT_EQ(caught_up["services"][1]["rollout"]["complete"], true);
  // An agent that is not seen does not hold a rollout back.
  json stopped =
      status::compute(t, {agent("host1", 20, true, true, 0), agent("host2", 3, false, false, 90)});
  EXPECT_EQ(stopped["agents_behind"], 0);
  EXPECT_EQ(stopped["services"][1]["rollout"]["complete"], true);
}

TEST(Status, NonVersionedServicesSendEveryCallerToTheLatest) {
  auto t = rollingDeploy();
  t.services["api"].dns_behaviour = model::DnsBehaviour::kNonVersioned;
  json s = status::compute(t, {});
  EXPECT_EQ(s["services"][0]["rollout"]["verdict"], "api: v1 2 running → v2 2 running, 1 draining");
}

TEST(Status, TablesGolden) {
  auto t = rollingDeploy();
  json s = status::compute(
      t, {agent("host1", 20, true, true, 0.5), agent("host2", 19, false, false, 75)});
  const char* kGolden =
      "SERVICE   VERSION   LATEST   SERVER   RUNNING   DRAINING\n"
      "api       v1                 host1    1         0\n"
      "api       v1                 host2    1         0\n"
      "api       v2        *        host1    1         0\n"
      "api       v2        *        host2    1         1\n"
      "cache     v2        *        host1    1         0\n"
      "web       v1                 host1    1         0\n"
      "web       v2        *        host2    1         0\n"
      "\n"
      "DATASOURCE   GROUP   PRIMARY   ANSWERS TYPE   ADDRESSES\n"
      "mysql        main    yes       *              10.9.0.1\n"
      "mysql        spare   no                       10.9.0.2,10.9.0.3\n"
      "\n"
      "AGENT   INDEX   LAG   LAST SEEN            VERSION   EBPF                PEERS   TRAFFIC\n"
      "host1   20      0     now                  0.1.0     identity+redirect   -       -\n"
      "host2   19      1     75s ago (not seen)   0.1.0     off                 1/2     4\n"
      "host3   -       -     never                -         -                   -       -\n"
      "\n"
      "DEPLOY\n"
      "api: v1 2 running → v2 2 running, 1 draining; web v1 callers → api v1\n"
      "web: v1 1 running → v2 1 running; api v1 callers → web v1\n";
  EXPECT_EQ(status::renderTables(s, false), kGolden);
  std::string coloured = status::renderTables(s, true);
  EXPECT_NE(coloured.find("\x1b[31mhost2\x1b[0m"), std::string::npos);  // not seen: red
  EXPECT_NE(coloured.find("\x1b[32m*\x1b[0m"), std::string::npos);      // latest: green
  EXPECT_EQ(status::renderTables(status::compute(model::Topology{}, {}), false),
            "no services, datasources or agents yet (index 0)\n");
}

TEST(Status, LagBuckets) {
  EXPECT_STREQ(status::lagBucket(agent("h", 20, true, true, 0), 20), "0");
  EXPECT_STREQ(status::lagBucket(agent("h", 19, true, true, 0), 20), "1-9");
  EXPECT_STREQ(status::lagBucket(agent("h", 10, true, true, 0), 20), "10-99");
  EXPECT_STREQ(status::lagBucket(agent("h", 1, true, true, 0), 200), "100+");
  EXPECT_STREQ(status::lagBucket(agent("h", 20, false, false, 99), 20), "not_seen");
}

TEST(AgentReports, SeenWhilePollingOrWithinTheTtl) {
  using namespace std::chrono_literals;
  AgentReports reports(10s);
  const auto t0 = AgentReports::Clock::time_point() + 1000s;
  const auto wall = AgentReports::WallClock::now();
  report::AgentReport r;
  r.server = "host1";
  r.index = 5;
  r.version = "0.1.0";
  reports.update(r, t0, wall);
  EXPECT_EQ(reports.generation(), 1u);
  reports.holdsWatch("host1", 7);
  auto v = reports.views(t0 + 60s);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].seen);  // holds a long-poll
  EXPECT_TRUE(v[0].polling);
  // Answered at +30 s: seen until +40 s.
  reports.watchEnded(7, true, t0 + 30s, wall);
  EXPECT_EQ(reports.generation(), 1u);  // a renewal is no news
  EXPECT_TRUE(reports.views(t0 + 40s)[0].seen);
  EXPECT_FALSE(reports.views(t0 + 41s)[0].seen);
  // The same report again: no news; a new index: news.
  r.sync_age_ms = 99;
  reports.update(r, t0 + 39s, wall);
  EXPECT_EQ(reports.generation(), 1u);
  r.index = 6;
  reports.update(r, t0 + 42s, wall);
  EXPECT_EQ(reports.generation(), 2u);
  // A hang-up is news; a watch id that is not an agent's is ignored.
  reports.holdsWatch("host1", 8);
  reports.watchEnded(99, false, t0 + 43s, wall);
  EXPECT_EQ(reports.generation(), 2u);
  reports.watchEnded(8, false, t0 + 43s, wall);
  EXPECT_EQ(reports.generation(), 3u);
  // Forgotten after kForgetAfterTtls × ttl.
  EXPECT_EQ(reports.views(t0 + 43s + 10s * kForgetAfterTtls).size(), 1u);
  EXPECT_EQ(reports.views(t0 + 44s + 10s * kForgetAfterTtls).size(), 0u);
}

TEST(AgentReports, BoundedByDroppingTheOldest) {
  using namespace std::chrono_literals;
  AgentReports reports(10s, 2);
  const auto t0 = AgentReports::Clock::time_point() + 1000s;
  report::AgentReport r;
  r.version = "1";
  for (int i = 0; i < 3; ++i) {
    r.server = "h" + std::to_string(i);
    reports.update(r, t0 + std::chrono::seconds(i), AgentReports::WallClock::now());
  }
  auto v = reports.views(t0 + 3s);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].report.server, "h1");
  EXPECT_EQ(v[1].report.server, "h2");
}

}  // namespace
