// The forwarder against scripted upstreams on loopback sockets: reply matching (wrong ID,
// wrong question), random IDs and source ports, timeouts and failover, SERVFAIL, TC → TCP,
// cache hits without network I/O; and resolv.conf parsing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "agent/upstream/forwarder.hpp"
#include "support/dns_util.hpp"
#include "support/forward_util.hpp"
#include "support/metrics_util.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;
using testing::makeQuery;
using testing::makeReply;

using testing::metric;

// A scripted upstream on 127.0.0.1: every UDP query gets the datagrams `udp_script` returns
// (none = silence); TCP queries get `tcp_script`'s reply.
class FakeUpstream {
 public:
  using Script = std::function<std::vector<std::vector<uint8_t>>(std::span<const uint8_t>)>;
  FakeUpstream(asio::io_context& io, Script udp_script, Script tcp_script = nullptr)
      : udp_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        acceptor_(io),
        udp_script_(std::move(udp_script)),
        tcp_script_(std::move(tcp_script)) {
    if (tcp_script_) {
      acceptor_.open(tcp::v4());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(tcp::endpoint(udp_.local_endpoint().address(), udp_.local_endpoint().port()));
      acceptor_.listen();
      accept();
    }
    receive();
  }
  udp::endpoint endpoint() const { return udp_.local_endpoint(); }
  std::vector<uint16_t> ids;
  std::vector<uint16_t> source_ports;
  int tcp_queries = 0;

 private:
  void receive() {
    udp_.async_receive_from(asio::buffer(buf_), from_,
                            [this](boost::system::error_code ec, size_t n) {
                              if (ec) return;
                              std::span<const uint8_t> q(buf_.data(), n);
                              ids.push_back(testing::idOf(q));
                              source_ports.push_back(from_.port());
                              for (auto& d : udp_script_(q)) udp_.send_to(asio::buffer(d), from_);
                              receive();
                            });
  }
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      ++tcp_queries;
      asio::read(s, asio::buffer(len_));
      std::vector<uint8_t> q(len_[0] << 8 | len_[1]);
      asio::read(s, asio::buffer(q));
      ids.push_back(testing::idOf(q));
      for (auto& d : tcp_script_(q)) {
        uint8_t l[2] = {uint8_t(d.size() >> 8), uint8_t(d.size())};
        asio::write(s, asio::buffer(l));
        asio::write(s, asio::buffer(d));
      }
      accept();
    });
  }
  udp::socket udp_;
  tcp::acceptor acceptor_;
  Script udp_script_, tcp_script_;
  std::array<uint8_t, 65535> buf_{};
  std::array<uint8_t, 2> len_{};
  udp::endpoint from_;
};

std::vector<uint8_t> answerFor(std::span<const uint8_t> q, const char* addr = "192.0.2.1") {
  auto pkt = testing::fromWire(q);
  char* name = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0)));
  auto r = makeReply(q, LDNS_RCODE_NOERROR, {std::string(name) + " 60 IN A " + addr});
  free(name);
  return r;
}

class ForwarderTest : public ::testing::Test {
 protected:
  // Forwards `q` and runs the io_context until `done` (at most 5 s).
  std::optional<std::vector<uint8_t>> forward(Forwarder& f, std::span<const uint8_t> q) {
    return elasticdns::testing::forwardAndWait(io_, f, q, 5s);
  }
  UpstreamConfig config(std::vector<udp::endpoint> servers) {
    UpstreamConfig c;
    c.servers = std::move(servers);
    c.timeout = 150ms;
    c.attempts = 2;
    return c;
  }
  asio::io_context io_;
  metrics::Registry reg_;
};

TEST_F(ForwarderTest, RepliesWithWrongIdOrQuestionAreIgnored) {
  FakeUpstream up(io_, [](std::span<const uint8_t> q) {
    auto good = answerFor(q);
    auto wrong_id = good;
    wrong_id[1] ^= 0x01;
    auto other = makeQuery("evil.example.test.", LDNS_RR_TYPE_A, {.id = testing::idOf(q)});
    auto wrong_question = answerFor(other, "203.0.113.66");
    auto wrong_type =
        makeReply(makeQuery("www.example.test.", LDNS_RR_TYPE_AAAA, {.id = testing::idOf(q)}),
                  LDNS_RCODE_NOERROR, {});
    return std::vector<std::vector<uint8_t>>{wrong_id, wrong_question, wrong_type, good};
  });
  Forwarder f(io_, config({up.endpoint()}), reg_);
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 0x4242});
  auto r = forward(f, q);
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->empty());
  EXPECT_EQ(testing::idOf(*r), 0x4242);
  auto pkt = testing::fromWire(*r);
  ASSERT_TRUE(pkt);
  char* a = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(pkt.get()), 0), 0));
  EXPECT_STREQ(a, "192.0.2.1");
  free(a);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failures_total{reason=\"mismatch\"}"), 3);
}

TEST_F(ForwarderTest, EachQueryUsesARandomIdAndSourcePort) {
  FakeUpstream up(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{answerFor(q)};
  });
  UpstreamConfig c = config({up.endpoint()});
  c.cache_entries = 0;
  Forwarder f(io_, c, reg_);
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 1});
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(forward(f, q));
  std::set<uint16_t> ids(up.ids.begin(), up.ids.end());
  std::set<uint16_t> ports(up.source_ports.begin(), up.source_ports.end());
  // Eight draws from 2^16 IDs (and from the ephemeral port range) colliding down to two
  // distinct values would be astronomically unlikely if they were random.
  EXPECT_GT(ids.size(), 2u);
  EXPECT_GT(ports.size(), 2u);
  EXPECT_EQ(up.ids.size(), 8u);  // no cache: every query went upstream
}

TEST_F(ForwarderTest, TimeoutFailsOverToTheNextServer) {
  FakeUpstream silent(io_, [](auto) { return std::vector<std::vector<uint8_t>>{}; });
  FakeUpstream good(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{answerFor(q)};
  });
  Forwarder f(io_, config({silent.endpoint(), good.endpoint()}), reg_);
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->empty());
  EXPECT_EQ(silent.ids.size(), 1u);
  EXPECT_EQ(good.ids.size(), 1u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failures_total{reason=\"timeout\"}"), 1);
  // The silent server lost its turn: the next query goes to the good one first.
  ASSERT_TRUE(forward(f, makeQuery("other.example.test.", LDNS_RR_TYPE_A)));
  EXPECT_EQ(silent.ids.size(), 1u);
}

TEST_F(ForwarderTest, AllAttemptsTimingOutGivesAnEmptyReply) {
  FakeUpstream silent(io_, [](auto) { return std::vector<std::vector<uint8_t>>{}; });
  Forwarder f(io_, config({silent.endpoint()}), reg_);
  auto start = std::chrono::steady_clock::now();
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(silent.ids.size(), 2u);  // attempts = 2
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_unanswered_total"), 1);
}

TEST_F(ForwarderTest, ServfailIsRetriedElsewhereAndNotCached) {
  FakeUpstream broken(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{makeReply(q, LDNS_RCODE_SERVFAIL, {})};
  });
  FakeUpstream good(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{answerFor(q)};
  });
  Forwarder f(io_, config({broken.endpoint(), good.endpoint()}), reg_);
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(testing::fromWire(*r).get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failures_total{reason=\"servfail\"}"), 1);

  Forwarder only_broken(io_, config({broken.endpoint()}), reg_);
  r = forward(only_broken, makeQuery("x.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  size_t before = broken.ids.size();
  ASSERT_TRUE(forward(only_broken, makeQuery("x.example.test.", LDNS_RR_TYPE_A)));
  EXPECT_GT(broken.ids.size(), before);  // not served from cache
}

TEST_F(ForwarderTest, TruncatedReplyIsRetriedOverTcp) {
  FakeUpstream up(
      io_,
      [](std::span<const uint8_t> q) {
        return std::vector<std::vector<uint8_t>>{makeReply(q, LDNS_RCODE_NOERROR, {}, {}, true)};
      },
      [](std::span<const uint8_t> q) { return std::vector<std::vector<uint8_t>>{answerFor(q)}; });
  Forwarder f(io_, config({up.endpoint()}), reg_);
  auto r = forward(f, makeQuery("big.example.test.", LDNS_RR_TYPE_A, {.id = 99}));
  ASSERT_TRUE(r);
  auto pkt = testing::fromWire(*r);
  ASSERT_TRUE(pkt);
  EXPECT_EQ(ldns_pkt_id(pkt.get()), 99);
  EXPECT_FALSE(ldns_pkt_tc(pkt.get()));
  EXPECT_EQ(ldns_pkt_ancount(pkt.get()), 1);
  EXPECT_EQ(up.tcp_queries, 1);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_queries_total{transport=\"tcp\"}"), 1);
}

TEST_F(ForwarderTest, CachedAnswerNeedsNoUpstream) {
  auto now = std::chrono::steady_clock::time_point{} + 100h;
  FakeUpstream up(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{answerFor(q)};
  });
  Forwarder f(io_, config({up.endpoint()}), reg_, [&] { return now; });
  ASSERT_TRUE(forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 1})));
  now += 20s;
  auto r = forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 2}));
  ASSERT_TRUE(r);
  EXPECT_EQ(testing::idOf(*r), 2);
  EXPECT_EQ(testing::ttls(*r, LDNS_SECTION_ANSWER), std::vector<uint32_t>{40});
  EXPECT_EQ(up.ids.size(), 1u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_cache_hits_total"), 1);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_cache_entries"), 1);
  now += 40s;  // expired: asks upstream again
  ASSERT_TRUE(forward(f, makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 3})));
  EXPECT_EQ(up.ids.size(), 2u);
}

TEST(ResolvConf, ReadsNameserversAndSkipsOwnAddresses) {
  auto path = std::filesystem::temp_directory_path() /
              ("upstream_resolv_" + std::to_string(getpid()) + ".conf");
  {
    std::ofstream out(path);
    out << "# comment\n"
           "search example.test\n"
           "nameserver 192.0.2.53\n"
           "nameserver   2001:db8::53 # trailing comment\n"
           "nameserver fe80::1%eth0\n"
           "nameserver not-an-address\n"
           "nameserver 169.254.53.53\n"
           "nameserver 192.0.2.53\n"
           "; nameserver 192.0.2.99\n"
           "options ndots:2\n";
  }
  auto servers = readResolvConf(path.string(), {asio::ip::make_address("169.254.53.53")});
  std::filesystem::remove(path);
  std::vector<udp::endpoint> want = {
      {asio::ip::make_address("192.0.2.53"), 53},
      {asio::ip::make_address("2001:db8::53"), 53},
      {asio::ip::make_address("fe80::1"), 53},
  };
  EXPECT_EQ(servers, want);
  EXPECT_TRUE(readResolvConf("/nonexistent/resolv.conf", {}).empty());
}

}  // namespace
}  // namespace elasticdns::agent
