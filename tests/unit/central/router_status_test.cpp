// The router's operator side: agent reports on long-polls, /v1/agents, /v1/status, /ui.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "central/router.hpp"

using namespace elasticdns;
using namespace elasticdns::central;
using nlohmann::json;

namespace {

constexpr const char* kAdmin = "Bearer admin";
constexpr const char* kAgent = "Bearer agent";
constexpr const char* kHost1Token = "Bearer host1-token-0123456789abcdef";
constexpr const char* kReport = "server=host1; index=0; version=0.1.0; ebpf_identity=on";

class RouterStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("central-router-status-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto store = SqliteStore::open(dir_.string(), Durability::kNormal, 100);
    ASSERT_TRUE(store) << store.error().message();
    auto state = TopologyState::load(std::move(store.value()), 100);
    ASSERT_TRUE(state) << state.error().message();
    state_ = std::move(state.value());
    auto servers = AgentTokens::parse("host1-token-0123456789abcdef host1\n");
    ASSERT_TRUE(servers);
    router_ = std::make_unique<Router>(
        *state_, watchers_, Tokens{"admin", "agent", std::move(servers.value())}, registry_,
        [](std::function<void()> fn) { fn(); }, RouterOptions{std::chrono::seconds(60)});
  }
  void TearDown() override {
    router_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  Response call(std::string method, std::string target, std::string auth = kAdmin,
                std::string report = {}) {
    std::optional<Response> out;
    router_->handle({std::move(method), std::move(target), std::move(auth), {}, std::move(report)},
                    [&](Response r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out ? *out : Response{};
  }
  static json body(const Response& r) { return r.body ? json::parse(*r.body) : json(); }

  std::filesystem::path dir_;
  std::unique_ptr<TopologyState> state_;
  metrics::Registry registry_;
  WatchRegistry watchers_{10};
  std::unique_ptr<Router> router_;
};

TEST_F(RouterStatusTest, AgentsNeedAReadToken) {
  EXPECT_EQ(call("GET", "/v1/agents", "").status, 401u);
  EXPECT_EQ(call("GET", "/v1/agents", "Bearer wrong").status, 401u);
  EXPECT_EQ(call("GET", "/v1/status", "").status, 401u);
  auto r = call("GET", "/v1/agents", kAgent);
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(body(r)["agents"], json::array());
}

TEST_F(RouterStatusTest, AReportOnTheLongPollIsListedUntilItsAgentHangsUp) {
  std::optional<Response> woken;
  auto id = router_->handle({"GET", "/v1/topology?index=0&wait=30s", kAgent, {}, kReport},
                            [&](Response r) { woken = std::move(r); });
  ASSERT_TRUE(id);
  auto agents = body(call("GET", "/v1/agents", kAgent))["agents"];
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["server"], "host1");
  EXPECT_EQ(agents[0]["polling"], true);
  EXPECT_EQ(agents[0]["seen"], true);
  EXPECT_EQ(agents[0]["ebpf_identity"], true);
  // A write bumps the index: the agent is behind until it polls again.
  ASSERT_EQ(call("PUT", "/v1/servers/host1", kAdmin).status, 400u);  // no body
  std::optional<Response> put;
  router_->handle({"PUT", "/v1/servers/host1", kAdmin, R"({"address":"192.0.2.1"})", {}},
                  [&](Response r) { put = std::move(r); });
  ASSERT_TRUE(woken);
  agents = body(call("GET", "/v1/agents", kAgent))["agents"];
  EXPECT_EQ(agents[0]["lag"], 1);
  EXPECT_EQ(agents[0]["polling"], false);
  auto metrics = *call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("elasticdns_central_agents{lag=\"1-9\"} 1"), std::string::npos) << metrics;
  // Polls again from index 1, then hangs up.
  id = router_->handle(
      {"GET", "/v1/topology?index=1&wait=30s", kAgent, {}, "server=host1; index=1; version=0.1.0"},
      [](Response) {});
  ASSERT_TRUE(id);
  EXPECT_EQ(body(call("GET", "/v1/agents", kAgent))["agents"][0]["lag"], 0);
  router_->cancelWatch(*id);
  agents = body(call("GET", "/v1/agents", kAgent))["agents"];
  EXPECT_EQ(agents[0]["polling"], false);
  EXPECT_EQ(agents[0]["seen"], true);  // within the TTL
}

TEST_F(RouterStatusTest, ABadReportIs400AndChangesNothing) {
  auto r = call("GET", "/v1/topology", kAgent, "server=host1; index=x; version=v1");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(body(r)["error"]["field"], "agent_report/index");
  EXPECT_EQ(body(call("GET", "/v1/agents", kAgent))["agents"], json::array());
  // A per-server token reports for its own server only.
  r = call("GET", "/v1/topology", kHost1Token, "server=host2; index=0; version=v1");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(body(call("GET", "/v1/agents", kAgent))["agents"], json::array());
  EXPECT_EQ(call("GET", "/v1/topology", kHost1Token, kReport).status, 200u);
  EXPECT_EQ(body(call("GET", "/v1/agents", kAgent))["agents"].size(), 1u);
}

TEST_F(RouterStatusTest, StatusLongPollWakesOnAgentNews) {
  auto first = body(call("GET", "/v1/status", kAgent));
  uint64_t generation = first["generation"];
  std::optional<Response> woken;
  auto id = router_->handle(
      {"GET", "/v1/status?generation=" + std::to_string(generation) + "&wait=30s", kAgent, {}, {}},
      [&](Response r) { woken = std::move(r); });
  ASSERT_TRUE(id);
  EXPECT_FALSE(woken);
  EXPECT_EQ(call("GET", "/v1/topology", kAgent, kReport).status, 200u);
  ASSERT_TRUE(woken);
  auto s = body(*woken);
  EXPECT_GT(s["generation"].get<uint64_t>(), generation);
  EXPECT_EQ(s["agents"][0]["server"], "host1");
  EXPECT_EQ(call("GET", "/v1/status?generation=x", kAgent).status, 400u);
  EXPECT_EQ(call("GET", "/v1/status?wait=1s", kAgent).status, 400u);
}

TEST_F(RouterStatusTest, ServesTheDashboardWithoutAToken) {
  auto r = call("GET", "/ui", "");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body->find("<script src=\"/ui/app.js\""), std::string::npos);
  EXPECT_EQ(r.body->find("<script>"), std::string::npos);  // no inline script (CSP)
  r = call("GET", "/ui/app.js", "");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(call("GET", "/ui/nothing", "").status, 404u);
  EXPECT_EQ(call("POST", "/ui/", "").status, 405u);
}

}  // namespace
