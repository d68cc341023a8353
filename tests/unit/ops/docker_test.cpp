// Unit tests of Docker discovery's pure parts: reading `docker inspect` and event lines (the
// shapes below were captured from dockerd 20.10, Debian 12's docker.io) and the reconciliation
// plan. The whole loop against a real dockerd and a real central is tests/integration/.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/ops/docker.hpp"

namespace elasticdns::agent {
namespace {

using json = nlohmann::json;
using model::Container;
using model::ContainerState;

const std::string kId = "61095b6a1864537b819f95f0194f1b459750698e515f71cdc93d8c52f08cfef9";

json inspect(bool running = true) {
  json j = json::parse(R"({
    "Id": "61095b6a1864537b819f95f0194f1b459750698e515f71cdc93d8c52f08cfef9",
    "State": {"Status": "running", "Running": true, "Pid": 20248},
    "Config": {"Image": "edns-test:1",
               "Labels": {"elasticdns.service": "api", "elasticdns.version": "v2", "x": "y"}},
    "NetworkSettings": {"IPAddress": "10.213.0.2", "Networks": {
      "appnet": {"IPAddress": "10.214.0.2", "GlobalIPv6Address": ""},
      "bridge": {"IPAddress": "10.213.0.2", "GlobalIPv6Address": "fd00::2"}}}})");
  j.merge_patch(running ? json::object()
                        : json{{"State", {{"Status", "exited"}, {"Running", false}}},
                               {"NetworkSettings",
                                {{"Networks",
                                  {{"appnet", {{"IPAddress", ""}}},
                                   {"bridge", {{"IPAddress", ""}, {"GlobalIPv6Address", ""}}}}}}}});
  return j;
}

TEST(DockerObserve, RunningContainerTakesLabelsAndFirstNetworkByName) {
  auto r = observeContainer(inspect(), "host1", {});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r.value().has_value());
  const auto& o = *r.value();
  EXPECT_EQ(o.id, kId);
  EXPECT_TRUE(o.running);
  ASSERT_TRUE(o.record);
  EXPECT_EQ(o.record->service, "api");
  EXPECT_EQ(o.record->version, "v2");
  EXPECT_EQ(o.record->server, "host1");
  EXPECT_EQ(o.record->address, "10.214.0.2");  // "appnet" < "bridge"
  EXPECT_EQ(o.record->state, ContainerState::kRunning);
}

TEST(DockerObserve, NetworkPreferenceWins) {
  auto r = observeContainer(inspect(), "host1", {"missing", "bridge"});
  ASSERT_TRUE(r && r.value() && r.value()->record);
  EXPECT_EQ(r.value()->record->address, "10.213.0.2");
  EXPECT_EQ(r.value()->record->address6, "fd00::2");
}

TEST(DockerObserve, UnlabelledContainerIsNotOurs) {
  for (const char* drop : {"elasticdns.service", "elasticdns.version"}) {
    json j = inspect();
    j["Config"]["Labels"].erase(drop);
    auto r = observeContainer(j, "host1", {});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(r.value().has_value()) << drop;
  }
  json j = inspect();
  j["Config"]["Labels"] = nullptr;
  auto r = observeContainer(j, "host1", {});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r.value().has_value());
}

TEST(DockerObserve, BadLabelsAreRejectedNamingTheLabel) {
  json j = inspect();
  j["Config"]["Labels"]["elasticdns.service"] = "Not_A_Label";
  auto r = observeContainer(j, "host1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().field.find("elasticdns.service"), std::string::npos);
  j = inspect();
  j["Config"]["Labels"]["elasticdns.version"] = "v 2";
  r = observeContainer(j, "host1", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().field.find("elasticdns.version"), std::string::npos);
}

TEST(DockerObserve, RunningWithoutAddressIsAnError) {
  json j = inspect();
  j["NetworkSettings"]["Networks"] = {{"host", {{"IPAddress", ""}}}};
  EXPECT_FALSE(observeContainer(j, "host1", {}));
}

TEST(DockerObserve, StoppedContainerHasNoRecord) {
  auto r = observeContainer(inspect(false), "host1", {});
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r.value().has_value());
  EXPECT_FALSE(r.value()->running);
  EXPECT_FALSE(r.value()->record);
}

TEST(DockerObserve, MalformedInspectIsAnError) {
  EXPECT_FALSE(observeContainer(json::array(), "host1", {}));
  EXPECT_FALSE(observeContainer(json{{"Id", 5}}, "host1", {}));
  EXPECT_FALSE(observeContainer(json{{"Id", "bad id!"}}, "host1", {}));
}

TEST(DockerEvents, ParsesTheActionsThatMatter) {
  std::string line =
      R"({"status":"die","id":")" + kId + R"(","from":"edns-test:1","Type":"container",)" +
      R"("Action":"die","Actor":{"ID":")" + kId +
      R"(","Attributes":{"elasticdns.service":"api","exitCode":"137"}},"scope":"local",)" +
      R"("time":1795270703,"timeNano":1795270703000000000})";
  auto e = parseDockerEvent(line);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->action, DockerEvent::Action::kDie);
  EXPECT_EQ(e->id, kId);
  for (auto [action, want] : {std::pair{"start", DockerEvent::Action::kStart},
                              {"destroy", DockerEvent::Action::kDestroy},
                              {"kill", DockerEvent::Action::kOther}}) {
    auto r = parseDockerEvent(
        json{{"Type", "container"}, {"Action", action}, {"Actor", {{"ID", kId}}}}.dump());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->action, want) << action;
  }
  auto network = parseDockerEvent(R"({"Type":"network","Action":"connect","Actor":{"ID":"x"}})");
  ASSERT_TRUE(network);
  EXPECT_EQ(network->action, DockerEvent::Action::kOther);
}

TEST(DockerEvents, BadLinesAreErrors) {
  EXPECT_FALSE(parseDockerEvent("not json"));
  EXPECT_FALSE(parseDockerEvent("[1,2]"));
  EXPECT_FALSE(parseDockerEvent(R"({"Type":"container","Action":"start"})"));
  EXPECT_FALSE(parseDockerEvent(std::string(kMaxDockerEventLine + 1, ' ')));
}

Container record(std::string id, std::string address,
                 ContainerState state = ContainerState::kRunning) {
  Container c;
  c.id = std::move(id);
  c.service = "api";
  c.version = "v1";
  c.server = "host1";
  c.address = std::move(address);
  c.state = state;
  return c;
}

ObservedContainer running(const Container& c) {
  return {c.id, true, c};
}

TEST(DockerReconcile, PutsNewAndChangedDrainsStoppedRemovesGone) {
  Container same = record("a", "10.0.0.1");
  Container moved = record("b", "10.0.0.2");
  Container fresh = record("c", "10.0.0.3");
  Container stopped = record("d", "10.0.0.4");
  Container gone = record("e", "10.0.0.5");
  Container already_draining = record("f", "10.0.0.6", ContainerState::kDraining);
  Container moved_now = moved;
  moved_now.address = "10.0.0.22";
  std::vector<ObservedContainer> docker = {running(same),
                                           running(moved_now),
                                           running(fresh),
                                           {"d", false, std::nullopt},
                                           {"f", false, std::nullopt},
                                           {"g", false, std::nullopt}};
  std::map<std::string, Container> central = {
      {"a", same}, {"b", moved}, {"d", stopped}, {"e", gone}, {"f", already_draining}};
  Container drained = stopped;
  drained.state = ContainerState::kDraining;
  ReconcilePlan want{{moved_now, fresh, drained}, {"e"}};
  EXPECT_EQ(planReconcile(docker, central), want);
}

TEST(DockerReconcile, NothingToDoWhenInStep) {
  Container a = record("a", "10.0.0.1");
  EXPECT_EQ(planReconcile({running(a)}, {{"a", a}}), ReconcilePlan{});
  EXPECT_EQ(planReconcile({}, {}), ReconcilePlan{});
}

TEST(DockerReconcile, RestartedContainerIsPutRunningAgain) {
  Container a = record("a", "10.0.0.1");
  Container draining = record("a", "10.0.0.1", ContainerState::kDraining);
  EXPECT_EQ(planReconcile({running(a)}, {{"a", draining}}), (ReconcilePlan{{a}, {}}));
}

}  // namespace
}  // namespace elasticdns::agent
