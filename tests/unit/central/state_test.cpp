// TopologyState over a store that gives one index per commit, as etcd does (a fake here: the
// real etcd is in integration.central.etcd): conflicts undo memory, commits share an index,
// generations follow the commits, other replicas' commits and deltas over shared indices.
#include <gtest/gtest.h>

#include "central/router.hpp"
#include "central/state.hpp"

namespace elasticdns::central {
namespace {

using protocol::ChangeOp;
using protocol::RecordKind;

// Commits get the next "revision" (skipping `gap` revisions written by others), unless
// `conflict` is set; keeps what was committed.
class SharedIndexStore final : public Store {
 public:
  Result<StoredState> load() override { return StoredState{}; }
  Result<uint64_t> commit(const std::vector<StoredChange>& changes, uint64_t base) override {
    if (conflict) return Error{kCommitConflict, "moved"};
    if (base != revision) return Error{"test", "base " + std::to_string(base)};
    revision += 1 + gap;
    commits.push_back(changes);
    return revision;
  }
  bool oneIndexPerCommit() const override { return true; }
  const char* name() const override { return "etcd"; }
  size_t maxChangesPerCommit() const override { return max_changes; }

  bool conflict = false;
  uint64_t revision = 0;
  uint64_t gap = 0;
  size_t max_changes = 100;
  std::vector<std::vector<StoredChange>> commits;
};

WriteItem putContainer(const std::string& id, const std::string& version) {
  model::Container c;
  c.id = id;
  c.service = "api";
  c.server = "h1";
  c.version = version;
  c.address = "10.0.0." + std::to_string(id.size());
  c.state = model::ContainerState::kRunning;
  return {ChangeOp::kPut, RecordKind::kContainer, id, protocol::Record{c}};
}

class SharedIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto owned = std::make_unique<SharedIndexStore>();
    store_ = owned.get();
    auto s = TopologyState::load(std::move(owned), 100);
    ASSERT_TRUE(s);
    state_ = std::move(s.value());
    model::Server h1;
    h1.name = "h1";
    h1.address = "10.0.0.1";
    model::Service api;
    api.name = "api";
    auto out =
        state_->apply({{{ChangeOp::kPut, RecordKind::kServer, "h1", protocol::Record{h1}},
                        {ChangeOp::kPut, RecordKind::kService, "api", protocol::Record{api}}}});
    ASSERT_FALSE(out[0].error);
  }

  SharedIndexStore* store_ = nullptr;
  std::unique_ptr<TopologyState> state_;
};

TEST_F(SharedIndexTest, ACommitsChangesShareItsIndex) {
  store_->gap = 3;  // revisions taken by keys that are not central's
  auto out = state_->apply({{putContainer("c1", "v1")}, {putContainer("c2", "v1")}});
  ASSERT_FALSE(out[0].error);
  EXPECT_EQ(out[0].index, 5u);
  EXPECT_EQ(out[1].index, 5u);
  EXPECT_EQ(out[0].changes, 2u);  // the version v1 and c1
  EXPECT_EQ(state_->index(), 5u);
  // Generation: (the index planned on + 1) << 16, then the place in the commit.
  EXPECT_EQ(state_->topology().versions.at("v1"), uint64_t{2} << 16);
  auto delta = state_->deltaBody(1);
  ASSERT_TRUE(delta);
  auto j = nlohmann::json::parse(*delta);
  ASSERT_EQ(j["changes"].size(), 3u);
  for (const auto& c : j["changes"]) EXPECT_EQ(c["index"], 5);
  // Deltas from any index between commits: from 4 (not a commit's) all of commit 5.
  EXPECT_EQ(nlohmann::json::parse(*state_->deltaBody(4))["changes"].size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(*state_->deltaBody(5))["changes"].size(), 0u);
  EXPECT_EQ(state_->deltaBody(6), nullptr);  // ahead of the index
}

TEST_F(SharedIndexTest, AConflictLeavesMemoryAsCommittedAndAsksForARetry) {
  auto before = state_->topology();
  store_->conflict = true;
  auto out = state_->apply({{putContainer("c1", "v1")}});
  ASSERT_TRUE(out[0].error);
  EXPECT_TRUE(out[0].retry);
  EXPECT_EQ(out[0].error->field, kCommitConflict);
  EXPECT_EQ(state_->topology(), before);
  EXPECT_EQ(state_->topology().latest_versions, before.latest_versions);
  // Planned again once the store takes it: the same changes, nothing left over.
  store_->conflict = false;
  out = state_->apply({{putContainer("c1", "v1")}});
  ASSERT_FALSE(out[0].error);
  EXPECT_EQ(out[0].changes, 2u);
  EXPECT_EQ(state_->topology().latest_versions.at("api"), "v1");
}

TEST_F(SharedIndexTest, AFullCommitLeavesTheRestForTheNext) {
  store_->max_changes = 3;
  auto out = state_->apply(
      {{putContainer("c1", "v1")}, {putContainer("c2", "v1")}, {putContainer("c3", "v1")}});
  ASSERT_FALSE(out[0].error);
  ASSERT_FALSE(out[1].error);  // v1, c1, c2: three changes
  ASSERT_TRUE(out[2].error);
  EXPECT_TRUE(out[2].retry);
  EXPECT_NE(out[2].error->field, kCommitConflict);
  EXPECT_FALSE(state_->topology().containers.count("c3"));
  // One write larger than a commit: 400.
  store_->max_changes = 1;
  out = state_->apply({{putContainer("c4", "v2")}});
  ASSERT_TRUE(out[0].error);
  EXPECT_EQ(out[0].status, 400);
  EXPECT_FALSE(out[0].retry);
}

TEST_F(SharedIndexTest, AnotherReplicasCommitIsAppliedOnceAndLogged) {
  std::vector<RemoteChange> changes = {
      {ChangeOp::kPut, RecordKind::kVersion, "v7", R"({"generation":458752,"name":"v7"})"},
      {ChangeOp::kPut, RecordKind::kContainer, "r1",
       R"({"id":"r1","service":"api","server":"h1","version":"v7","address":"10.0.0.9",)"
       R"("state":"running"})"}};
  EXPECT_FALSE(state_->applyRemote(7, changes));
  EXPECT_EQ(state_->index(), 7u);
  EXPECT_EQ(state_->topology().latest_versions.at("api"), "v7");
  // Its own commit coming back through the watch changes nothing.
  EXPECT_FALSE(state_->applyRemote(7, {{ChangeOp::kDelete, RecordKind::kContainer, "r1", ""}}));
  EXPECT_TRUE(state_->topology().containers.count("r1"));
  auto j = nlohmann::json::parse(*state_->deltaBody(1));
  EXPECT_EQ(j["changes"].size(), 2u);
  EXPECT_EQ(j["changes"][1]["value"]["id"], "r1");
  // A record that does not parse is skipped and named; the rest is applied.
  auto e = state_->applyRemote(8, {{ChangeOp::kPut, RecordKind::kContainer, "bad", "{"},
                                   {ChangeOp::kDelete, RecordKind::kContainer, "r1", ""}});
  ASSERT_TRUE(e);
  EXPECT_NE(e->field.find("bad"), std::string::npos);
  EXPECT_FALSE(state_->topology().containers.count("r1"));
  EXPECT_EQ(state_->index(), 8u);
}

// An agent ahead of this replica (it followed another one further on) is held until this
// replica passes its index, then gets a delta: never this replica's older full snapshot at
// once (the agent would go back in time). At the deadline, still behind, the full snapshot.
TEST_F(SharedIndexTest, ALongPollAheadOfThisReplicaWaitsForItInsteadOfAnOlderSnapshot) {
  metrics::Registry registry;
  WatchRegistry watchers(10);
  Router router(*state_, watchers, Tokens{"admin", "agent"}, registry,
                [](std::function<void()> fn) { fn(); });
  const uint64_t index = state_->index();
  auto remote = [&](uint64_t at, const std::string& id) {
    EXPECT_FALSE(state_->applyRemote(at, {{ChangeOp::kPut, RecordKind::kContainer, id,
                                           R"({"id":")" + id +
                                               R"(","service":"api","server":"h1","version":"v1",)"
                                               R"("address":"10.0.0.9","state":"running"})"}}));
    router.storeAdvanced();
  };
  std::optional<Response> answer;
  auto poll = [&](uint64_t since, const char* wait) {
    answer.reset();
    return router.handle({"GET",
                          "/v1/topology?index=" + std::to_string(since) + "&wait=" + wait,
                          "Bearer agent",
                          {},
                          {}},
                         [&](Response r) { answer = std::move(r); });
  };
  ASSERT_TRUE(poll(index + 2, "30s"));
  EXPECT_FALSE(answer);  // held, not answered with the snapshot at `index`
  remote(index + 2, "r1");
  EXPECT_FALSE(answer);  // at the agent's index: nothing new for it yet
  remote(index + 3, "r2");
  ASSERT_TRUE(answer);
  auto j = nlohmann::json::parse(*answer->body);
  EXPECT_EQ(j["kind"], "delta");
  EXPECT_EQ(j["since"], index + 2);
  EXPECT_EQ(j["index"], index + 3);
  ASSERT_EQ(j["changes"].size(), 1u);
  EXPECT_EQ(j["changes"][0]["value"]["id"], "r2");

  ASSERT_TRUE(poll(index + 10, "1s"));
  router.expireWatchers(WatchRegistry::Clock::now() + std::chrono::seconds(2));
  ASSERT_TRUE(answer);
  EXPECT_EQ(nlohmann::json::parse(*answer->body)["kind"], "full");
  // Without `wait` nothing is held: the answer is at once.
  poll(index + 10, "0s");
  ASSERT_TRUE(answer);
}

}  // namespace
}  // namespace elasticdns::central
