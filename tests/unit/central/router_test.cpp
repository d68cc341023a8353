// The router as a function: requests in, responses out, no sockets. Real SQLite underneath.
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

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("central-router-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    open();
  }
  void TearDown() override {
    router_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    router_.reset();
    state_.reset();
    auto store = SqliteStore::open(dir_.string(), Durability::kNormal, 100);
    ASSERT_TRUE(store) << store.error().message();
    auto state = TopologyState::load(std::move(store.value()), 100);
    ASSERT_TRUE(state) << state.error().message();
    state_ = std::move(state.value());
    registry_ = std::make_unique<metrics::Registry>();
    watchers_ = std::make_unique<WatchRegistry>(2);
    router_ = std::make_unique<Router>(*state_, *watchers_, Tokens{"admin", "agent"}, *registry_,
                                       [this](std::function<void()> fn) {
                                         if (defer_)
                                           posted_.push_back(std::move(fn));
                                         else
                                           fn();
                                       });
  }
  Response call(std::string method, std::string target, std::string body = {},
                std::string auth = kAdmin) {
    std::optional<Response> out;
    router_->handle({std::move(method), std::move(target), std::move(auth), std::move(body), {}},
                    [&](Response r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return out ? *out : Response{};
  }
  static json body(const Response& r) { return r.body ? json::parse(*r.body) : json(); }

  std::filesystem::path dir_;
  std::unique_ptr<TopologyState> state_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<WatchRegistry> watchers_;
  std::unique_ptr<Router> router_;
  bool defer_ = false;
  std::vector<std::function<void()>> posted_;
};

const char* kContainer =
    R"({"service":"api","version":"v1","server":"host1","address":"10.0.0.1"})";

TEST_F(RouterTest, PutThenReadBack) {
  auto r = call("PUT", "/v1/containers/c1", kContainer);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(body(r)["index"], 2);  // version first appearance, then the container
  r = call("GET", "/v1/topology", {}, kAgent);
  ASSERT_EQ(r.status, 200u);
  auto t = body(r);
  EXPECT_EQ(t["kind"], "full");
  EXPECT_EQ(t["topology"]["containers"][0]["id"], "c1");
  EXPECT_EQ(t["topology"]["latest_versions"]["api"], "v1");
}

TEST_F(RouterTest, AuthRules) {
  EXPECT_EQ(call("PUT", "/v1/containers/c1", kContainer, kAgent).status, 401u);
  EXPECT_EQ(call("PUT", "/v1/containers/c1", kContainer, "").status, 401u);
  EXPECT_EQ(call("PUT", "/v1/containers/c1", kContainer, "Bearer admin2").status, 401u);
  EXPECT_EQ(call("PUT", "/v1/containers/c1", kContainer, "Bearer ").status, 401u);
  EXPECT_EQ(call("PUT", "/v1/containers/c1", kContainer, "bearer admin").status, 401u);
  EXPECT_FALSE(call("GET", "/v1/topology", {}, "").body);  // no detail
  EXPECT_EQ(call("GET", "/v1/topology", {}, kAgent).status, 200u);
  EXPECT_EQ(call("GET", "/healthz", {}, "").status, 200u);
  EXPECT_EQ(state_->index(), 0u);
}

TEST_F(RouterTest, BadInputNamesTheFieldAndChangesNothing) {
  auto r = call("PUT", "/v1/containers/c1",
                R"({"service":"api","version":"v1","server":"host1","address":"10.0.0.300"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(body(r)["error"]["field"], "address");
  r = call("POST", "/v1/apply", "services:\n  api:\n    image: x\n    build: y\n");
  EXPECT_EQ(r.status, 400u);
  std::string reason = body(r)["error"]["reason"];
  EXPECT_NE(reason.find("api/image"), std::string::npos);
  EXPECT_NE(reason.find("api/build"), std::string::npos);
  EXPECT_EQ(state_->index(), 0u);
}

TEST_F(RouterTest, LongPollWakesWithDeltaAndExpiresEmpty) {
  call("PUT", "/v1/containers/c1", kContainer);
  std::optional<Response> woken;
  auto id = router_->handle({"GET", "/v1/topology?index=2&wait=30s", kAgent, {}, {}},
                            [&](Response r) { woken = std::move(r); });
  ASSERT_TRUE(id);
  EXPECT_FALSE(woken);
  call("DELETE", "/v1/containers/c1");
  ASSERT_TRUE(woken);
  auto d = body(*woken);
  EXPECT_EQ(d["kind"], "delta");
  EXPECT_EQ(d["since"], 2);
  EXPECT_EQ(d["changes"][0]["op"], "delete");
  // Deadline: the registry is pure, so the test moves time instead of sleeping.
  std::optional<Response> expired;
  id = router_->handle({"GET", "/v1/topology?index=3&wait=1s", kAgent, {}, {}},
                       [&](Response r) { expired = std::move(r); });
  ASSERT_TRUE(id);
  router_->expireWatchers(WatchRegistry::Clock::now());
  EXPECT_FALSE(expired);
  router_->expireWatchers(WatchRegistry::Clock::now() + std::chrono::seconds(2));
  ASSERT_TRUE(expired);
  EXPECT_EQ(body(*expired)["changes"].size(), 0u);
}

TEST_F(RouterTest, WriterIsAcknowledgedBeforeTheWatchersAreWoken) {
  // The acknowledgement waits for the commit only, not for the fan-out to the long-polls.
  std::vector<std::string> order;
  auto id =
      router_->handle({"GET", "/v1/topology?index=0&wait=30s", kAgent, {}, {}}, [&](Response r) {
        EXPECT_EQ(body(r)["kind"], "delta");
        order.push_back("watcher");
      });
  ASSERT_TRUE(id);
  router_->handle({"PUT", "/v1/servers/h1", kAdmin, R"({"address":"192.0.2.1"})", {}},
                  [&](Response r) {
                    EXPECT_EQ(r.status, 200u);
                    order.push_back("writer");
                  });
  EXPECT_EQ(order, (std::vector<std::string>{"writer", "watcher"}));
  EXPECT_NE(registry_->render().find("elasticdns_central_fanout_seconds_count 1"),
            std::string::npos);
}

TEST_F(RouterTest, WatcherLimit) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 2; ++i) {
    auto id =
        router_->handle({"GET", "/v1/topology?index=0&wait=30s", kAgent, {}, {}}, [](Response) {});
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  auto r = call("GET", "/v1/topology?index=0&wait=30s", {}, kAgent);
  EXPECT_EQ(r.status, 503u);
  router_->cancelWatch(ids[0]);
  EXPECT_TRUE(
      router_->handle({"GET", "/v1/topology?index=0&wait=30s", kAgent, {}, {}}, [](Response) {}));
}

TEST_F(RouterTest, GroupCommitAcknowledgesEveryWriteOfTheBatch) {
  defer_ = true;
  std::vector<Response> acks;
  for (int i = 0; i < 5; ++i)
    router_->handle(
        {"PUT", "/v1/servers/h" + std::to_string(i), kAdmin, R"({"address":"192.0.2.1"})", {}},
        [&](Response r) { acks.push_back(std::move(r)); });
  router_->handle({"DELETE", "/v1/servers/missing", kAdmin, {}, {}},
                  [&](Response r) { acks.push_back(std::move(r)); });
  EXPECT_TRUE(acks.empty());  // nothing acknowledged before the commit
  ASSERT_EQ(posted_.size(), 1u);
  posted_[0]();
  ASSERT_EQ(acks.size(), 6u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(body(acks[i])["index"], i + 1);
  EXPECT_EQ(acks[5].status, 404u);
  // Durable: a new state over the same database sees the same topology.
  auto before = state_->topology();
  open();
  EXPECT_EQ(state_->topology(), before);
}

TEST_F(RouterTest, DeltaThenFullAfterRetention) {
  for (int i = 0; i < 150; ++i)
    call("PUT", "/v1/servers/h", json{{"address", "192.0.2." + std::to_string(i % 250)}}.dump());
  EXPECT_EQ(state_->index(), 150u);
  EXPECT_EQ(body(call("GET", "/v1/topology?index=50", {}, kAgent))["kind"], "delta");
  EXPECT_EQ(body(call("GET", "/v1/topology?index=49", {}, kAgent))["kind"], "full");
  EXPECT_EQ(body(call("GET", "/v1/topology?index=151", {}, kAgent))["kind"], "full");
  open();  // the change log survives a restart
  auto d = body(call("GET", "/v1/topology?index=140", {}, kAgent));
  EXPECT_EQ(d["kind"], "delta");
  EXPECT_EQ(d["changes"].size(), 10u);
}

TEST_F(RouterTest, FullBodyMatchesProtocol) {
  call("PUT", "/v1/servers/host1", R"({"address":"192.0.2.1","labels":{"zone":"a"}})");
  call("PUT", "/v1/containers/c1", kContainer);
  call("PUT", "/v1/containers/c2",
       R"({"service":"api","version":"v2","server":"host1","address6":"fd00::2"})");
  call("PUT", "/v1/datasources/mysql/main", R"({"primary":true,"addresses":["10.0.1.1"]})");
  call("POST", "/v1/apply", "services:\n  api:\n    ports: [\"3000:80:443\"]\n");
  EXPECT_EQ(protocol::writeFullResponse(state_->topology()),
            protocol::fullResponse(state_->topology()).dump());
  auto parsed = protocol::parseResponse(body(call("GET", "/v1/topology", {}, kAgent)));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->topology, state_->topology());
  // A delta from 0 applied to an empty topology gives the same topology.
  auto delta = protocol::parseResponse(body(call("GET", "/v1/topology?index=0", {}, kAgent)));
  ASSERT_TRUE(delta);
  model::Topology t;
  ASSERT_FALSE(protocol::applyChanges(t, delta->changes, delta->index));
  EXPECT_EQ(t, state_->topology());
}

TEST_F(RouterTest, LatestVersionIsNewestRunning) {
  call("PUT", "/v1/containers/a", kContainer);
  call("PUT", "/v1/containers/b",
       R"({"service":"api","version":"v2","server":"host1","address":"10.0.0.2"})");
  EXPECT_EQ(state_->topology().latest_versions.at("api"), "v2");
  call(
      "PUT", "/v1/containers/b",
      R"({"service":"api","version":"v2","server":"host1","address":"10.0.0.2","state":"draining"})");
  EXPECT_EQ(state_->topology().latest_versions.at("api"), "v1");
  // Moving a container to another service updates both services.
  call("PUT", "/v1/containers/a",
       R"({"service":"web","version":"v1","server":"host1","address":"10.0.0.1"})");
  EXPECT_EQ(state_->topology().latest_versions.count("api"), 0u);
  EXPECT_EQ(state_->topology().latest_versions.at("web"), "v1");
  auto derived = state_->topology();
  derived.recomputeDerived();
  EXPECT_EQ(derived.latest_versions, state_->topology().latest_versions);
}

}  // namespace
