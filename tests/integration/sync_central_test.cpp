// SyncClient against the REAL elasticdns-central binary on loopback: initial full snapshot, a
// write delivered by long-poll (well before the poll's wait runs out), central killed → the old
// snapshot stays and lastContact stops advancing, a restarted client with central down starts
// from disk, and failover from a dead URL to a live one.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "agent/sync/sync_client.hpp"
#include "support/metrics_util.hpp"

#ifndef ELASTICDNS_CENTRAL_BIN
#error "ELASTICDNS_CENTRAL_BIN must name the elasticdns-central executable"
#endif

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kAdminToken = "admin-token-for-test";
constexpr const char* kAgentToken = "agent-token-for-test";

using testing::metric;

// The real central, started on 127.0.0.1:0; its port is read from its first stdout line.
class Central {
 public:
  explicit Central(const fs::path& dir) {
    fs::create_directories(dir / "data");
    std::ofstream(dir / "admin.token") << kAdminToken << "\n";
    std::ofstream(dir / "agent.token") << kAgentToken << "\n";
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::string data = (dir / "data").string(), admin = (dir / "admin.token").string(),
                  agent = (dir / "agent.token").string();
      execl(ELASTICDNS_CENTRAL_BIN, "elasticdns-central", "--listen", "127.0.0.1:0", "--data-dir",
            data.c_str(), "--admin-token-file", admin.c_str(), "--agent-token-file", agent.c_str(),
            "--log-level", "warn", nullptr);
      _exit(127);
    }
    close(out[1]);
    std::string line;
    auto deadline = Clock::now() + 10s;
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{out[0], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    constexpr std::string_view kPrefix = "listening on 127.0.0.1:";
    if (line.rfind(kPrefix, 0) != 0) {
      kill();
      throw std::runtime_error("central did not start: '" + line + "'");
    }
    port_ = static_cast<uint16_t>(std::stoi(line.substr(kPrefix.size())));
  }
  ~Central() { kill(); }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }

  // PUT /v1/containers/{id} with the admin token; returns the HTTP status.
  unsigned putContainer(const std::string& id, const std::string& address) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req(http::verb::put, "/v1/containers/" + id, 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, std::string("Bearer ") + kAdminToken);
    req.set(http::field::content_type, "application/json");
    req.body() =
        R"({"service":"api","version":"v1","server":"host1","address":")" + address + R"("})";
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    return res.result_int();
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A SyncClient on its own io thread, recording what it publishes.
class Agent {
 public:
  Agent(SyncConfig config)
      : sync_(io_, std::move(config), reg_, [this](auto t) {
          std::lock_guard lock(mu_);
          published_.push_back(t);
        }) {}
  ~Agent() {
    sync_.stop();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  void start() {
    sync_.start();
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  // The last published snapshot, once `pred` holds for it (deadline 10 s), else null.
  std::shared_ptr<const model::Topology> waitFor(
      const std::function<bool(const model::Topology&)>& pred) {
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mu_);
        if (!published_.empty() && pred(*published_.back())) return published_.back();
      }
      std::this_thread::sleep_for(5ms);  // poll interval
    }
    return nullptr;
  }
  size_t publishedCount() {
    std::lock_guard lock(mu_);
    return published_.size();
  }
  SyncClient& sync() { return sync_; }
  metrics::Registry& registry() { return reg_; }

 private:
  asio::io_context io_;
  metrics::Registry reg_;
  std::mutex mu_;
  std::vector<std::shared_ptr<const model::Topology>> published_;
  SyncClient sync_;
  std::thread thread_;
};

class CentralSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/elasticdns-sync-central-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  SyncConfig config(std::vector<std::string> urls) {
    SyncConfig c;
    c.urls = std::move(urls);
    c.token = kAgentToken;
    c.state_dir = dir_ / "agent-state";
    c.wait = 30s;  // a write must arrive long before this runs out
    c.backoff_min = 50ms;
    c.backoff_max = 200ms;
    return c;
  }
  fs::path dir_;
};

TEST_F(CentralSyncTest, FollowsCentralAndKeepsServingWhenItDies) {
  auto central = std::make_unique<Central>(dir_ / "central");
  ASSERT_EQ(central->putContainer("c1", "10.0.0.1"), 200u);

  uint64_t index_before_write = 0;
  {
    Agent agent(config({central->url()}));
    agent.start();
    auto first = agent.waitFor([](const model::Topology& t) { return t.containers.count("c1"); });
    ASSERT_TRUE(first) << "no initial snapshot";
    index_before_write = first->index;

    auto t0 = Clock::now();
    ASSERT_EQ(central->putContainer("c2", "10.0.0.2"), 200u);
    auto second = agent.waitFor([](const model::Topology& t) { return t.containers.count("c2"); });
    ASSERT_TRUE(second) << "the write did not arrive";
    auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_LT(latency, 5s) << "arrived by the poll's timeout, not by long-poll";
    EXPECT_GT(second->index, index_before_write);
    EXPECT_EQ(second->containers.at("c2").address, "10.0.0.2");
    std::printf("write → agent snapshot via long-poll: %lld ms\n",
                static_cast<long long>(latency.count()));

    // Central dies: the last snapshot stays, lastContact stops advancing.
    central->kill();
    auto deadline = Clock::now() + 10s;
    while (metric(agent.registry(), "elasticdns_agent_sync_failures_total{reason=\"network\"}") <
               2 &&
           Clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    ASSERT_GE(metric(agent.registry(), "elasticdns_agent_sync_failures_total{reason=\"network\"}"),
              2);
    auto contact = agent.sync().lastContact();
    size_t published = agent.publishedCount();
    std::this_thread::sleep_for(500ms);  // a window in which nothing may change
    EXPECT_EQ(agent.sync().lastContact(), contact);
    EXPECT_EQ(agent.publishedCount(), published);
    EXPECT_EQ(agent.sync().index(), second->index);
    EXPECT_GT(metric(agent.registry(), "elasticdns_agent_snapshot_age_seconds"), 0.4);
  }

  // A restarted agent with central down starts from the snapshot it persisted.
  Agent restarted(config({central->url()}));
  restarted.start();
  auto from_disk = restarted.waitFor([](const model::Topology&) { return true; });
  ASSERT_TRUE(from_disk);
  EXPECT_EQ(from_disk->containers.size(), 2u);
  EXPECT_EQ(restarted.sync().lastContact(), Clock::time_point{});
}

TEST_F(CentralSyncTest, FailsOverFromADeadUrlToALiveCentral) {
  Central central(dir_ / "central");
  ASSERT_EQ(central.putContainer("c1", "10.0.0.1"), 200u);
  std::string dead;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }  // closed: connections to it are refused
  Agent agent(config({dead, central.url()}));
  agent.start();
  ASSERT_TRUE(agent.waitFor([](const model::Topology& t) { return t.containers.count("c1"); }));
  EXPECT_GE(metric(agent.registry(), "elasticdns_agent_sync_failures_total{reason=\"network\"}"),
            1);
  EXPECT_GT(agent.sync().lastContact(), Clock::time_point{});
}

}  // namespace
}  // namespace elasticdns::agent
