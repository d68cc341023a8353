// The forwarder against a REAL unbound (Debian's package) that stands for the internet: it
// serves a small local zone on a 127.53.x.y address and a port from the kernel, and never
// queries anything else (no forwarders, no root hints used: local-data only).
// Proves: answers forwarded and cached (served with unbound stopped), negative answers cached
// for their RFC 2308 TTL, a truncated UDP answer fetched over TCP, timeouts → empty reply and
// failover, a spoofed wrong-ID reply ignored.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>

#include "agent/upstream/forwarder.hpp"
#include "support/dns_util.hpp"
#include "support/forward_util.hpp"
#include "support/metrics_util.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;
using testing::makeQuery;

constexpr int kBigRrsetSize = 60;  // 60 A records ≈ 1 KB: more than 512 bytes (RFC 1035 4.2.1)

using testing::metric;

// A loopback address unique to this test process, so concurrent runs do not collide.
asio::ip::address uniqueLoopback(int offset) {
  unsigned pid = static_cast<unsigned>(getpid());
  return asio::ip::make_address_v4(
      asio::ip::address_v4::bytes_type{127, 53, static_cast<unsigned char>((pid >> 8) & 0xFF),
                                       static_cast<unsigned char>(1 + (pid + offset) % 253)});
}

// A port the kernel picked that is free for both UDP and TCP on `addr` (unbound needs both; it
// cannot report a port it chose itself).
uint16_t freePort(asio::io_context& io, const asio::ip::address& addr) {
  for (int i = 0; i < 20; ++i) {
    udp::socket u(io, udp::endpoint(addr, 0));
    uint16_t port = u.local_endpoint().port();
    boost::system::error_code ec;
    tcp::acceptor t(io);
    t.open(tcp::v4());
    t.bind(tcp::endpoint(addr, port), ec);
    if (!ec) return port;
  }
  throw std::runtime_error("no free port");
}

class Unbound {
 public:
  Unbound(asio::io_context& io, const fs::path& dir) : dir_(dir) {
    addr_ = uniqueLoopback(0);
    port_ = freePort(io, addr_);
    std::ofstream conf(dir_ / "unbound.conf");
    conf << "server:\n"
         << "  interface: " << addr_.to_string() << "@" << port_ << "\n"
         << "  port: " << port_ << "\n"
         << "  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n"
         << "  directory: \"" << dir_.string() << "\"\n  pidfile: \"\"\n"
         << "  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n"
         << "  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n"
         << "  module-config: \"iterator\"\n  num-threads: 1\n  so-reuseport: no\n"
         << "  do-ip6: no\n  outgoing-range: 16\n"
         << "  local-zone: \"example.test.\" static\n"
         << "  local-data: \"example.test. 300 IN SOA ns.example.test. h.example.test. 1 3600 "
            "600 86400 30\"\n"
         << "  local-data: \"www.example.test. 300 IN A 192.0.2.1\"\n";
    for (int i = 0; i < kBigRrsetSize; ++i)
      conf << "  local-data: \"big.example.test. 300 IN A 198.51.100." << i << "\"\n";
    conf << "remote-control:\n  control-enable: no\n";
    conf.close();
    start();
  }
  ~Unbound() { stop(); }

  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      auto log = (dir_ / "unbound.log").string();
      freopen(log.c_str(), "a", stdout);
      freopen(log.c_str(), "a", stderr);
      auto conf = (dir_ / "unbound.conf").string();
      execlp("unbound", "unbound", "-d", "-c", conf.c_str(), nullptr);
      _exit(127);
    }
    waitReady();
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  udp::endpoint endpoint() const { return {addr_, port_}; }

  // Polls with a real query until unbound answers (deadline 10 s).
  void waitReady() {
    asio::io_context io;
    udp::socket s(io, udp::endpoint(udp::v4(), 0));
    s.non_blocking(true);
    auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    std::array<uint8_t, 512> buf;
    while (std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      s.send_to(asio::buffer(q), endpoint(), 0, ec);
      std::this_thread::sleep_for(20ms);  // poll interval, not a readiness guess
      if (s.receive(asio::buffer(buf), 0, ec) > 0 && !ec) return;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("unbound exited; see " + (dir_ / "unbound.log").string());
      }
    }
    throw std::runtime_error("unbound did not answer within 10 s");
  }

 private:
  fs::path dir_;
  asio::ip::address addr_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

class UnboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (system("command -v unbound >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "unbound is not installed (scripts/install-deps.sh installs it)";
    char tmpl[] = "/tmp/elasticdns-upstream-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    unbound_ = std::make_unique<Unbound>(io_, dir_);
  }
  void TearDown() override {
    unbound_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::optional<std::vector<uint8_t>> forward(Forwarder& f, std::span<const uint8_t> q) {
    return elasticdns::testing::forwardAndWait(io_, f, q, 10s);
  }
  UpstreamConfig config(std::vector<udp::endpoint> servers) {
    UpstreamConfig c;
    c.servers = std::move(servers);
    c.timeout = 300ms;
    c.attempts = 2;
    return c;
  }
  static std::vector<std::string> answers(std::span<const uint8_t> reply) {
    std::vector<std::string> out;
    auto p = testing::fromWire(reply);
    if (!p) return out;
    for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(p.get())); ++i) {
      char* s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p.get()), i), 0));
      out.emplace_back(s);
      free(s);
    }
    return out;
  }

  asio::io_context io_;
  metrics::Registry reg_;
  fs::path dir_;
  std::unique_ptr<Unbound> unbound_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point{} + 100h;
};

TEST_F(UnboundTest, AnswerIsForwardedThenServedFromCacheWithUnboundStopped) {
  Forwarder f(io_, config({unbound_->endpoint()}), reg_, [this] { return now_; });
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 0x1111}));
  ASSERT_TRUE(r);
  EXPECT_EQ(testing::idOf(*r), 0x1111);
  EXPECT_EQ(answers(*r), std::vector<std::string>{"192.0.2.1"});

  unbound_->stop();
  now_ += 100s;
  r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 0x2222}));
  ASSERT_TRUE(r);
  EXPECT_EQ(testing::idOf(*r), 0x2222);
  EXPECT_EQ(answers(*r), std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(testing::ttls(*r, LDNS_SECTION_ANSWER), std::vector<uint32_t>{200});
  EXPECT_EQ(metric(reg_, "elasticdns_agent_cache_hits_total"), 1);
  // The upstream really is gone: an uncached name gets no answer.
  r = forward(f, makeQuery("other.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
}

TEST_F(UnboundTest, NegativeAnswerIsCachedForItsTtl) {
  Forwarder f(io_, config({unbound_->endpoint()}), reg_, [this] { return now_; });
  auto r = forward(f, makeQuery("nope.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  ASSERT_EQ(ldns_pkt_get_rcode(testing::fromWire(*r).get()), LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(testing::ttls(*r, LDNS_SECTION_AUTHORITY), std::vector<uint32_t>{30});

  unbound_->stop();
  now_ += 10s;
  r = forward(f, makeQuery("nope.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->empty());
  EXPECT_EQ(ldns_pkt_get_rcode(testing::fromWire(*r).get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(testing::ttls(*r, LDNS_SECTION_AUTHORITY), std::vector<uint32_t>{20});
  now_ += 20s;  // the negative TTL (SOA MINIMUM 30) has run out
  r = forward(f, makeQuery("nope.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
}

TEST_F(UnboundTest, TruncatedUdpAnswerIsFetchedOverTcp) {
  auto q = makeQuery("big.example.test.", LDNS_RR_TYPE_A, {.id = 0x3333});  // no EDNS: 512 B
  // Unbound itself truncates this answer over UDP, so TC → TCP is really exercised.
  {
    udp::socket s(io_, udp::endpoint(udp::v4(), 0));
    s.send_to(asio::buffer(q), unbound_->endpoint());
    std::array<uint8_t, 4096> buf;
    size_t n = s.receive(asio::buffer(buf));
    auto p = testing::fromWire(std::span(buf.data(), n));
    ASSERT_TRUE(p);
    ASSERT_TRUE(ldns_pkt_tc(p.get()));
  }
  Forwarder f(io_, config({unbound_->endpoint()}), reg_);
  auto r = forward(f, q);
  ASSERT_TRUE(r);
  EXPECT_EQ(testing::idOf(*r), 0x3333);
  EXPECT_EQ(answers(*r).size(), static_cast<size_t>(kBigRrsetSize));
  EXPECT_GT(r->size(), 512u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_queries_total{transport=\"tcp\"}"), 1);
}

TEST_F(UnboundTest, SilentServerTimesOutAndTheNextOneAnswers) {
  udp::socket silent(io_, udp::endpoint(uniqueLoopback(1), 0));  // bound, never read
  Forwarder only_silent(io_, config({silent.local_endpoint()}), reg_);
  auto start = std::chrono::steady_clock::now();
  auto r = forward(only_silent, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);  // 2 attempts × 300 ms
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failures_total{reason=\"timeout\"}"), 2);

  metrics::Registry reg2;
  Forwarder both(io_, config({silent.local_endpoint(), unbound_->endpoint()}), reg2);
  r = forward(both, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_EQ(answers(*r), std::vector<std::string>{"192.0.2.1"});
}

TEST_F(UnboundTest, SpoofedReplyWithWrongIdIsIgnored) {
  // A man-on-the-side between the forwarder and unbound: it answers every query at once with a
  // forged reply (wrong ID, attacker's address), then relays unbound's real reply.
  udp::socket proxy(io_, udp::endpoint(uniqueLoopback(2), 0));
  udp::socket to_unbound(io_, udp::endpoint(udp::v4(), 0));
  std::array<uint8_t, 4096> qbuf, rbuf;
  udp::endpoint client;
  int spoofed = 0;
  proxy.async_receive_from(asio::buffer(qbuf), client, [&](boost::system::error_code ec, size_t n) {
    if (ec) return;
    std::span<const uint8_t> q(qbuf.data(), n);
    auto forged_query = std::vector<uint8_t>(q.begin(), q.end());
    forged_query[0] ^= 0x5A;
    auto forged = testing::makeReply(forged_query, LDNS_RCODE_NOERROR,
                                     {"www.example.test. 86400 IN A 203.0.113.66"});
    proxy.send_to(asio::buffer(forged), client);
    ++spoofed;
    to_unbound.send_to(asio::buffer(q.data(), q.size()), unbound_->endpoint());
    to_unbound.async_receive(asio::buffer(rbuf), [&](boost::system::error_code ec, size_t n) {
      if (!ec) proxy.send_to(asio::buffer(rbuf.data(), n), client);
    });
  });
  Forwarder f(io_, config({proxy.local_endpoint()}), reg_);
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_EQ(spoofed, 1);
  EXPECT_EQ(answers(*r), std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failures_total{reason=\"mismatch\"}"), 1);
}

}  // namespace
}  // namespace elasticdns::agent
