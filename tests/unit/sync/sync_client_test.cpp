// Sync: response handling without I/O (delta since mismatch → full, bad snapshot rejected and the
// old one kept), atomic persistence, and SyncClient over real HTTP against a scripted Beast
// server on loopback (long-poll, token, failover, 401, start from disk, corrupt file, stop).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "elasticdns/http_client.hpp"
#include "agent/sync/snapshot_file.hpp"
#include "agent/sync/sync_client.hpp"
#include "elasticdns/protocol.hpp"
#include "support/metrics_util.hpp"
#include "support/temp_dir.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace std::chrono_literals;

using testing::metric;
using testing::TempDir;

model::Container container(int i) {
  return testing::sampleContainer(i);
}

model::Topology topology(uint64_t index, int containers) {
  return testing::sampleTopology(index, containers);
}

std::string fullBody(const model::Topology& t) {
  return protocol::fullResponse(t).dump();
}

std::string deltaAdding(uint64_t since, int container_number) {
  protocol::Change c;
  c.index = since + 1;
  c.op = protocol::ChangeOp::kPut;
  c.kind = protocol::RecordKind::kContainer;
  c.key = container(container_number).id;
  c.value = protocol::toJson(container(container_number));
  return protocol::deltaResponse(since + 1, since, {c}).dump();
}

std::string badFull(uint64_t index) {
  auto j = protocol::fullResponse(topology(index, 1));
  j["topology"]["containers"][0]["address"] = "999.1.2.3";
  return j.dump();
}

// ---- response handling, no I/O -------------------------------------------------------------

TEST(SyncStep, FullSnapshotIsPublishedOnceThenUnchanged) {
  auto step = applyTopologyResponse(nullptr, fullBody(topology(3, 2)));
  ASSERT_EQ(step.outcome, SyncOutcome::kPublished) << step.error;
  EXPECT_TRUE(step.full);  // counted in elasticdns_agent_sync_answers_total{kind="full"}
  EXPECT_EQ(step.topology->index, 3u);
  EXPECT_EQ(step.topology->containers.size(), 2u);
  EXPECT_EQ(applyTopologyResponse(step.topology, fullBody(topology(3, 2))).outcome,
            SyncOutcome::kUnchanged);
}

TEST(SyncStep, DeltaIsAppliedToACopy) {
  auto current = std::make_shared<const model::Topology>(topology(5, 1));
  auto step = applyTopologyResponse(current, deltaAdding(5, 2));
  ASSERT_EQ(step.outcome, SyncOutcome::kPublished) << step.error;
  EXPECT_FALSE(step.full);  // counted in elasticdns_agent_sync_answers_total{kind="delta"}
  EXPECT_EQ(step.topology->index, 6u);
  EXPECT_EQ(step.topology->containers.size(), 2u);
  EXPECT_EQ(current->containers.size(), 1u);  // the published snapshot is immutable
  EXPECT_EQ(current->index, 5u);
}

TEST(SyncStep, DeltaFromAnotherIndexAsksForAFullSnapshot) {
  auto current = std::make_shared<const model::Topology>(topology(5, 1));
  EXPECT_EQ(applyTopologyResponse(current, deltaAdding(3, 2)).outcome, SyncOutcome::kNeedFull);
  EXPECT_EQ(applyTopologyResponse(nullptr, deltaAdding(5, 2)).outcome, SyncOutcome::kNeedFull);
}

TEST(SyncStep, EmptyDeltaAtOurIndexIsUnchanged) {
  auto current = std::make_shared<const model::Topology>(topology(5, 1));
  auto body = protocol::deltaResponse(5, 5, {}).dump();
  EXPECT_EQ(applyTopologyResponse(current, body).outcome, SyncOutcome::kUnchanged);
}

TEST(SyncStep, InvalidInputIsRejected) {
  auto current = std::make_shared<const model::Topology>(topology(5, 1));
  for (std::string body : {badFull(6), std::string("{\"kind\":\"full\""), std::string("[]"),
                           std::string("{\"kind\":\"delta\",\"index\":6,\"since\":5}")}) {
    auto step = applyTopologyResponse(current, body);
    EXPECT_EQ(step.outcome, SyncOutcome::kRejected) << body;
    EXPECT_FALSE(step.error.empty());
    EXPECT_FALSE(step.topology);
  }
  // A delta whose change is invalid: the whole delta is rejected.
  auto j = nlohmann::json::parse(deltaAdding(5, 2));
  j["changes"][0]["value"]["version"] = "unknown-version";
  EXPECT_EQ(applyTopologyResponse(current, j.dump()).outcome, SyncOutcome::kRejected);
  EXPECT_EQ(current->index, 5u);
}

// ---- SyncClient over real HTTP -------------------------------------------------------------

// A scripted central: `script` answers a request target with a reply, or nullopt to hold the
// request (a long-poll) until release().
class FakeCentral {
 public:
  struct Reply {
    Reply(unsigned s = 200, std::string b = {}, std::string st = {})
        : status(s), body(std::move(b)), stale(std::move(st)) {}
    unsigned status;
    std::string body;
    std::string stale;  // the ElasticDNS-Stale header, when not empty
  };
  using Script = std::function<std::optional<Reply>(const std::string& target)>;

  FakeCentral(asio::io_context& io, Script script)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        script_(std::move(script)) {
    accept();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  // Answers every held request.
  void release(const Reply& r) {
    auto held = std::move(held_);
    held_.clear();
    for (auto& s : held) s->respond(r);
  }
  std::vector<std::string> targets, authorizations, reports;

 private:
  struct Session : std::enable_shared_from_this<Session> {
    explicit Session(tcp::socket s) : stream(std::move(s)) {}
    void respond(const Reply& r) {
      auto res = std::make_shared<http::response<http::string_body>>(http::status(r.status), 11);
      res->body() = r.body;
      res->set(http::field::content_type, "application/json");
      if (!r.stale.empty()) res->set("ElasticDNS-Stale", r.stale);
      res->prepare_payload();
      http::async_write(stream, *res, [self = shared_from_this(), res](beast::error_code, size_t) {
        beast::error_code ec;
        self->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      });
    }
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(s));
      http::async_read(
          session->stream, session->buffer, session->req,
          [this, session](beast::error_code ec, size_t) {
            if (ec) return;
            std::string target(session->req.target());
            targets.push_back(target);
            authorizations.emplace_back(session->req[http::field::authorization]);
            reports.emplace_back(
                session->req[beast::string_view(report::kHeader.data(), report::kHeader.size())]);
            if (auto r = script_(target))
              session->respond(*r);
            else
              held_.push_back(session);
          });
      accept();
    });
  }

  tcp::acceptor acceptor_;
  Script script_;
  std::vector<std::shared_ptr<Session>> held_;
};

bool runUntil(asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(10ms);
  }
  return true;
}

class SyncClientTest : public ::testing::Test {
 protected:
  SyncConfig config(std::vector<std::string> urls) {
    SyncConfig c;
    c.urls = std::move(urls);
    c.token = "agent-secret";
    c.state_dir = dir_.path();
    c.wait = 1s;
    c.backoff_min = 10ms;
    c.backoff_max = 50ms;
    return c;
  }
  SyncClient::OnSnapshot record() {
    return [this](std::shared_ptr<const model::Topology> t) { published_.push_back(t); };
  }
  asio::io_context io_;
  metrics::Registry reg_;
  TempDir dir_;
  std::vector<std::shared_ptr<const model::Topology>> published_;
};

TEST_F(SyncClientTest, StartsFromDiskThenFollowsCentralByLongPoll) {
  ASSERT_FALSE(saveSnapshot(dir_.path(), topology(5, 1)));
  FakeCentral central(io_, [](const std::string& target) -> std::optional<FakeCentral::Reply> {
    if (target == "/v1/topology?index=5&wait=1s") return FakeCentral::Reply{200, deltaAdding(5, 2)};
    return std::nullopt;  // hold the next long-poll
  });
  SyncClient sync(io_, config({central.url()}), reg_, record());
  sync.start();
  ASSERT_EQ(published_.size(), 1u);  // the persisted snapshot, before start() returned
  EXPECT_EQ(published_[0]->index, 5u);
  EXPECT_EQ(sync.lastContact(), std::chrono::steady_clock::time_point{});

  ASSERT_TRUE(runUntil(io_, [&] { return published_.size() == 2; }));
  EXPECT_EQ(published_[1]->index, 6u);
  EXPECT_EQ(published_[1]->containers.size(), 2u);
  EXPECT_EQ(sync.index(), 6u);
  EXPECT_GT(sync.lastContact(), std::chrono::steady_clock::time_point{});
  EXPECT_EQ(central.authorizations.at(0), "Bearer agent-secret");
  ASSERT_TRUE(runUntil(io_, [&] { return central.targets.size() == 2; }));
  EXPECT_EQ(central.targets[1], "/v1/topology?index=6&wait=1s");
  EXPECT_EQ(loadSnapshot(dir_.path())->index, 6u);  // persisted
  EXPECT_EQ(metric(reg_, "elasticdns_agent_snapshot_index"), 6);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_sync_answers_total{kind=\"delta\"}"), 1);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_sync_answers_total{kind=\"full\"}"), 0);
  sync.stop();
  central.release({200, protocol::deltaResponse(6, 6, {}).dump()});
}

TEST_F(SyncClientTest, EveryPollCarriesTheAgentsReport) {
  FakeCentral central(io_, [](const std::string& target) -> std::optional<FakeCentral::Reply> {
    if (target == "/v1/topology")
      return FakeCentral::Reply{200, protocol::fullResponse(topology(3, 1)).dump()};
    return std::nullopt;
  });
  auto c = config({central.url()});
  c.report = [] {
    report::AgentReport r;
    r.server = "host1";
    r.version = "0.1.0";
    r.ebpf_identity = true;
    return r;
  };
  SyncClient sync(io_, c, reg_, record());
  sync.start();
  ASSERT_TRUE(runUntil(io_, [&] { return central.reports.size() == 2; }));
  auto first = report::parse(central.reports[0]);
  ASSERT_TRUE(first) << central.reports[0];
  EXPECT_EQ(first->index, 0u);  // nothing served yet
  EXPECT_TRUE(first->ebpf_identity);
  auto second = report::parse(central.reports[1]);
  ASSERT_TRUE(second) << central.reports[1];
  EXPECT_EQ(second->server, "host1");
  EXPECT_EQ(second->index, 3u);  // the snapshot it now serves
  EXPECT_LT(second->sync_age_ms, 5'000u);
  sync.stop();
  central.release({200, protocol::deltaResponse(3, 3, {}).dump()});
}

TEST(SyncReport, FillsTheIndexAndTheAgeOfTheLastContact) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::time_point() + 100s;
  report::AgentReport base;
  base.server = "h";
  auto r = reportFor(base, 7, Clock::time_point(), start, start + 2500ms);
  EXPECT_EQ(r.index, 7u);
  EXPECT_EQ(r.sync_age_ms, 2500u);  // never answered: since start
  r = reportFor(base, 7, start + 2s, start, start + 2500ms);
  EXPECT_EQ(r.sync_age_ms, 500u);
}

TEST_F(SyncClientTest, DeltaSinceAnotherIndexFetchesAFullSnapshot) {
  ASSERT_FALSE(saveSnapshot(dir_.path(), topology(5, 1)));
  FakeCentral central(io_, [](const std::string& target) -> std::optional<FakeCentral::Reply> {
    if (target == "/v1/topology?index=5&wait=1s") return FakeCentral::Reply{200, deltaAdding(3, 2)};
    if (target == "/v1/topology") return FakeCentral::Reply{200, fullBody(topology(9, 4))};
    return std::nullopt;
  });
  SyncClient sync(io_, config({central.url()}), reg_, record());
  sync.start();
  ASSERT_TRUE(runUntil(io_, [&] { return published_.size() == 2; }));
  EXPECT_EQ(published_[1]->index, 9u);
  EXPECT_EQ(published_[1]->containers.size(), 4u);
  EXPECT_EQ(central.targets.at(1), "/v1/topology");
  sync.stop();
  central.release({503, ""});
}

TEST_F(SyncClientTest, BadSnapshotIsRejectedAndTheOldOneStays) {
  ASSERT_FALSE(saveSnapshot(dir_.path(), topology(5, 1)));
  int bad_sent = 0;
  FakeCentral central(io_, [&](const std::string&) -> std::optional<FakeCentral::Reply> {
    if (bad_sent++ < 2) return FakeCentral::Reply{200, badFull(6)};
    return std::nullopt;
  });
  SyncClient sync(io_, config({central.url()}), reg_, record());
  sync.start();
  ASSERT_TRUE(runUntil(io_, [&] { return central.targets.size() == 3; }));
  EXPECT_EQ(published_.size(), 1u);
  EXPECT_EQ(sync.index(), 5u);
  EXPECT_EQ(loadSnapshot(dir_.path())->index, 5u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_sync_rejected_snapshots_total"), 2);
  EXPECT_EQ(sync.lastContact(), std::chrono::steady_clock::time_point{});
  // After a rejection the client asks for a full snapshot, and accepts a good one.
  EXPECT_EQ(central.targets[2], "/v1/topology");
  central.release({200, fullBody(topology(7, 2))});
  ASSERT_TRUE(runUntil(io_, [&] { return published_.size() == 2; }));
  EXPECT_EQ(sync.index(), 7u);
  sync.stop();
  central.release({503, ""});
}

// Two central replicas both without their etcd quorum (an election after a partition): the
// one behind answers an older snapshot marked stale. The agent keeps its newer one (it would
// go back in time) and follows the next replica.
TEST_F(SyncClientTest, AStaleAnswerBehindOurIndexIsNotPublished) {
  ASSERT_FALSE(saveSnapshot(dir_.path(), topology(5, 1)));
  FakeCentral behind(io_, [](const std::string&) -> std::optional<FakeCentral::Reply> {
    return FakeCentral::Reply{200, fullBody(topology(3, 2)), "2.5"};
  });
  FakeCentral ahead(io_, [](const std::string&) { return std::optional<FakeCentral::Reply>(); });
  SyncClient sync(io_, config({behind.url(), ahead.url()}), reg_, record());
  sync.start();
  ASSERT_TRUE(runUntil(io_, [&] { return ahead.targets.size() == 1; }));
  EXPECT_EQ(ahead.targets[0], "/v1/topology?index=5&wait=1s");
  ASSERT_EQ(published_.size(), 1u);  // the persisted snapshot only
  EXPECT_EQ(sync.index(), 5u);
  EXPECT_EQ(loadSnapshot(dir_.path())->index, 5u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_sync_stale_answers_total"), 1);
  sync.stop();
  ahead.release({503, ""});
}

TEST_F(SyncClientTest, FailsOverFromADeadUrlToALiveOne) {
  std::string dead;
  {
    tcp::acceptor a(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }  // closed: connections are refused
  FakeCentral central(io_, [](const std::string& target) -> std::optional<FakeCentral::Reply> {
    if (target == "/v1/topology") return FakeCentral::Reply{200, fullBody(topology(2, 1))};
    return std::nullopt;
  });
  auto c = config({dead, central.url()});
  c.state_dir.clear();
  SyncClient sync(io_, c, reg_, record());
  sync.start();
  EXPECT_TRUE(published_.empty());
  ASSERT_TRUE(runUntil(io_, [&] { return published_.size() == 1; }));
  EXPECT_EQ(published_[0]->index, 2u);
  EXPECT_GE(metric(reg_, "elasticdns_agent_sync_failures_total{reason=\"network\"}"), 1);
  EXPECT_FALSE(fs::exists(dir_.path() / kSnapshotFileName));  // persistence off
  sync.stop();
  central.release({503, ""});
}

TEST_F(SyncClientTest, UnauthorizedIsAFailureAndPublishesNothing) {
  FakeCentral central(io_, [](const std::string&) -> std::optional<FakeCentral::Reply> {
    return FakeCentral::Reply{401, ""};
  });
  SyncClient sync(io_, config({central.url()}), reg_, record());
  sync.start();
  // Wait for the client to have counted its failures, not for central to have seen the
  // requests: the third 401 may still be on its way back when central records the third request.
  const std::string auth_failures = "elasticdns_agent_sync_failures_total{reason=\"auth\"}";
  ASSERT_TRUE(runUntil(io_, [&] { return metric(reg_, auth_failures) >= 3; }));
  EXPECT_GE(central.targets.size(), 3u);
  EXPECT_TRUE(published_.empty());
  EXPECT_GE(metric(reg_, auth_failures), 3);
  EXPECT_EQ(sync.lastContact(), std::chrono::steady_clock::time_point{});
  sync.stop();
}

TEST_F(SyncClientTest, CorruptPersistedSnapshotIsIgnored) {
  std::ofstream(dir_.path() / kSnapshotFileName) << "not json at all";
  SyncConfig c = config({"http://127.0.0.1:1"});
  SyncClient sync(io_, c, reg_, record());
  sync.start();
  EXPECT_TRUE(published_.empty());
  EXPECT_EQ(sync.index(), 0u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_sync_rejected_snapshots_total"), 1);
  sync.stop();
}

TEST_F(SyncClientTest, NoSnapshotIsPublishedAfterStop) {
  FakeCentral central(
      io_, [](const std::string&) -> std::optional<FakeCentral::Reply> { return std::nullopt; });
  SyncClient sync(io_, config({central.url()}), reg_, record());
  sync.start();
  ASSERT_TRUE(runUntil(io_, [&] { return central.targets.size() == 1; }));
  sync.stop();
  central.release({200, fullBody(topology(3, 1))});
  runUntil(
      io_, [] { return false; }, 200ms);
  EXPECT_TRUE(published_.empty());
}

}  // namespace
}  // namespace elasticdns::agent
