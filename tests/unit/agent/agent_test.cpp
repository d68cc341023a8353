// The Agent as a whole, in process: no central, no eBPF, DNS on 127.0.0.1 port 0. It starts
// from the snapshot persisted in state_dir, answers over UDP, and drains on stop().
#include "agent/agent.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <thread>

#include "agent/sync/snapshot_file.hpp"
#include "support/dns_util.hpp"
#include "support/temp_dir.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

using namespace std::chrono_literals;
using namespace elasticdns::testing;

model::Topology persistedTopology() {
  model::Topology t;
  t.index = 7;
  t.versions["v1"] = 1;
  model::Service flat;
  flat.name = "flat";
  flat.dns_behaviour = model::DnsBehaviour::kNonVersioned;
  t.services["flat"] = flat;
  t.containers["flat-1"] = container("flat-1", "flat", "v1", "host1", "10.5.0.3");
  t.recomputeDerived();
  return t;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(saveSnapshot(dir_.path(), persistedTopology())); }

  /// The agent's config: `extra` YAML lines appended. Upstreams name a closed loopback port,
  /// so that the host's resolv.conf plays no part.
  AgentConfig config(const std::string& extra = "",
                     const std::string& listen = "[\"127.0.0.1:0\"]") {
    std::filesystem::path path = dir_.path() / "agent.yml";
    std::ofstream(path) << "listen: " << listen << "\n"
                        << "server_name: host1\n"
                        << "upstreams: [\"127.0.0.1:1\"]\n"
                        << "state_dir: " << dir_.path().string() << "\n"
                        << extra;
    config_path_ = path.string();
    auto c = loadConfig(config_path_);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message());
    return c.ok() ? c.value() : AgentConfig{};
  }

  /// Starts `agent` and serves it on another thread; the future holds serve()'s exit code.
  static std::future<int> startServing(Agent& agent) {
    if (agent.start() != std::nullopt) {
      ADD_FAILURE() << "the agent did not start";
      return std::async(std::launch::deferred, [] { return -1; });
    }
    return std::async(std::launch::async, [&agent] { return agent.serve(); });
  }
  /// Stops `agent` and waits (bounded) for serve() to return 0.
  static void stopAndWait(Agent& agent, std::future<int>& served) {
    agent.stop();
    ASSERT_EQ(served.wait_for(10s), std::future_status::ready) << "the drain did not end";
    EXPECT_EQ(served.get(), 0);
  }

  elasticdns::testing::TempDir dir_;
  std::string config_path_;
};

/// Sends `query` to `to` over UDP and returns the reply (null after a second without one).
Pkt ask(const boost::asio::ip::udp::endpoint& to, const std::vector<uint8_t>& query) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::sendto(fd, query.data(), query.size(), 0, to.data(), to.size());
  uint8_t reply[1232];
  ssize_t n = ::recv(fd, reply, sizeof reply, 0);
  ::close(fd);
  return n > 0 ? fromWire({reply, static_cast<size_t>(n)}) : nullptr;
}

TEST_F(AgentTest, AnswersFromThePersistedSnapshotThenDrainsOnStop) {
  Agent agent(config(), config_path_);
  auto served = startServing(agent);
  auto endpoints = agent.udpEndpoints();
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_NE(endpoints[0].port(), 0);

  auto known = ask(endpoints[0], makeQuery("flat.cloud66.local", LDNS_RR_TYPE_A));
  ASSERT_TRUE(known);
  EXPECT_EQ(ldns_pkt_get_rcode(known.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(answers(known.get()), std::vector<std::string>{"10.5.0.3"});
  auto unknown = ask(endpoints[0], makeQuery("nothing.cloud66.local", LDNS_RR_TYPE_A));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(ldns_pkt_get_rcode(unknown.get()), LDNS_RCODE_NXDOMAIN);

  stopAndWait(agent, served);
}

/// Sends `query` to `to` over TCP (RFC 7766 framing) and returns the reply (null on failure).
Pkt askTcp(const boost::asio::ip::udp::endpoint& to, const std::vector<uint8_t>& query) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  Pkt reply;
  if (::connect(fd, to.data(), static_cast<socklen_t>(to.size())) == 0) {
    std::vector<uint8_t> framed = {static_cast<uint8_t>(query.size() >> 8),
                                   static_cast<uint8_t>(query.size() & 0xFF)};
    framed.insert(framed.end(), query.begin(), query.end());
    uint8_t buf[2 + 65535];
    size_t got = 0;
    if (::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(framed.size())) {
      for (ssize_t n; (n = ::recv(fd, buf + got, sizeof buf - got, 0)) > 0;) {
        got += static_cast<size_t>(n);
        if (got >= 2 && got >= 2 + size_t((buf[0] << 8) | buf[1])) break;
      }
    }
    if (got >= 2 && got == 2 + size_t((buf[0] << 8) | buf[1])) reply = fromWire({buf + 2, got - 2});
  }
  ::close(fd);
  return reply;
}

// Every UDP reader thread (one per core per listen address) answers, TCP answers beside them,
// and a stop ends the readers blocked in recvmmsg at once (woken by a signal, not left to sleep).
TEST_F(AgentTest, AnswersOnEveryAddressOverUdpAndTcpAndStopsPromptly) {
  Agent agent(config("", "[\"127.0.0.1:0\", \"127.0.0.2:0\"]"), config_path_);
  auto served = startServing(agent);
  auto endpoints = agent.udpEndpoints();
  ASSERT_EQ(endpoints.size(), 2u);
  for (const auto& ep : endpoints) {
    // Several queries, from new sockets: SO_REUSEPORT spreads them over the readers.
    for (int i = 0; i < 8; ++i) {
      auto udp = ask(ep, makeQuery("flat.cloud66.local", LDNS_RR_TYPE_A));
      ASSERT_TRUE(udp) << ep;
      EXPECT_EQ(answers(udp.get()), std::vector<std::string>{"10.5.0.3"});
    }
    auto tcp = askTcp(ep, makeQuery("flat.cloud66.local", LDNS_RR_TYPE_A));
    ASSERT_TRUE(tcp) << ep;
    EXPECT_EQ(answers(tcp.get()), std::vector<std::string>{"10.5.0.3"});
  }
  std::this_thread::sleep_for(300ms);  // every reader is blocked in recvmmsg now
  auto t0 = std::chrono::steady_clock::now();
  agent.stop();
  ASSERT_EQ(served.wait_for(10s), std::future_status::ready) << "the drain did not end";
  EXPECT_EQ(served.get(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(AgentTest, RefusesCallersOutsideAllowNetworks) {
  Agent agent(config("allow_networks: [\"192.0.2.0/24\"]\n"), config_path_);
  auto served = startServing(agent);
  auto endpoints = agent.udpEndpoints();
  ASSERT_EQ(endpoints.size(), 1u);

  auto refused = ask(endpoints[0], makeQuery("flat.cloud66.local", LDNS_RR_TYPE_A));
  ASSERT_TRUE(refused);
  EXPECT_EQ(ldns_pkt_get_rcode(refused.get()), LDNS_RCODE_REFUSED);

  stopAndWait(agent, served);
}

TEST_F(AgentTest, AnUnreadableTokenFileIsABadConfig) {
  Agent agent(config("central:\n  urls: [\"http://127.0.0.1:1\"]\n  token_file: " +
                     (dir_.path() / "missing-token").string() + "\n"),
              config_path_);
  EXPECT_EQ(agent.start(), 2);
}

}  // namespace
}  // namespace elasticdns::agent
