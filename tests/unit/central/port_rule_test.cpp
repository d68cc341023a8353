// Central refuses puts and applies that break the traffic port rule (validate::checkPortSharing):
// 400 naming both services and the port, nothing changed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "central/router.hpp"

using namespace elasticdns;
using namespace elasticdns::central;
using nlohmann::json;

namespace {

class PortRuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("central-port-rule-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto store = SqliteStore::open(dir_.string(), Durability::kNormal, 100);
    ASSERT_TRUE(store) << store.error().message();
    auto state = TopologyState::load(std::move(store.value()), 100);
    ASSERT_TRUE(state) << state.error().message();
    state_ = std::move(state.value());
    watchers_ = std::make_unique<WatchRegistry>(2);
    router_ = std::make_unique<Router>(*state_, *watchers_, Tokens{"admin", "agent"}, registry_,
                                       [](std::function<void()> fn) { fn(); });
  }
  void TearDown() override {
    router_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  Response call(std::string method, std::string target, std::string body) {
    std::optional<Response> out;
    router_->handle({std::move(method), std::move(target), "Bearer admin", std::move(body), {}},
                    [&](Response r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out ? *out : Response{};
  }
  static json body(const Response& r) { return r.body ? json::parse(*r.body) : json(); }

  std::filesystem::path dir_;
  std::unique_ptr<TopologyState> state_;
  metrics::Registry registry_;
  std::unique_ptr<WatchRegistry> watchers_;
  std::unique_ptr<Router> router_;
};

TEST_F(PortRuleTest, PutOfAConflictingServiceIsRefused) {
  ASSERT_EQ(call("PUT", "/v1/services/api", R"({"ports":["3000:80"]})").status, 200u);
  uint64_t index = state_->index();
  auto r = call("PUT", "/v1/services/web", R"({"ports":["3001:80"]})");
  EXPECT_EQ(r.status, 400u);
  std::string reason = body(r)["error"]["reason"];
  EXPECT_NE(reason.find("'api'"), std::string::npos) << reason;
  EXPECT_NE(reason.find("'web'"), std::string::npos) << reason;
  EXPECT_NE(reason.find("port 80"), std::string::npos) << reason;
  EXPECT_EQ(state_->index(), index);
  // With distinct matches on both, it is accepted.
  EXPECT_EQ(
      call("PUT", "/v1/services/api", R"({"ports":["3000:80"],"traffic_matches":["api.example"]})")
          .status,
      200u);
  EXPECT_EQ(
      call("PUT", "/v1/services/web", R"({"ports":["3001:80"],"traffic_matches":["web.example"]})")
          .status,
      200u);
  // The same match twice is not.
  r = call("PUT", "/v1/services/web", R"({"ports":["3001:80"],"traffic_matches":["API.example"]})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(body(r)["error"]["reason"],
            "http port 80: services 'api' and 'web' both match 'API.example'");
}

TEST_F(PortRuleTest, ApplyIsCheckedAsAWhole) {
  auto r = call("POST", "/v1/apply",
                "services:\n  api:\n    ports: ['3000:80']\n  web:\n    ports: ['3001:80']\n");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(body(r)["error"]["field"], "services/web/traffic_matches");
  EXPECT_EQ(state_->index(), 0u);
  r = call("POST", "/v1/apply",
           "services:\n  api:\n    ports: ['3000:80']\n    traffic_matches: [_]\n"
           "  web:\n    ports: ['3001:80']\n    traffic_matches: [web.example]\n");
  EXPECT_EQ(r.status, 200u);
  // Deleting a service frees its port.
  EXPECT_EQ(call("DELETE", "/v1/services/api", "").status, 200u);
  EXPECT_EQ(call("PUT", "/v1/services/other", R"({"ports":["3002:80"]})").status, 400u);
  EXPECT_EQ(call("DELETE", "/v1/services/web", "").status, 200u);
  EXPECT_EQ(call("PUT", "/v1/services/other", R"({"ports":["3002:80"]})").status, 200u);
}

}  // namespace
