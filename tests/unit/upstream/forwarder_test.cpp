// The forwarder against scripted upstreams on loopback sockets: reply matching (wrong ID,
// wrong question), random IDs and source ports, timeouts and failover, SERVFAIL, TC → TCP,
// cache hits without network I/O, failures held (RFC 9520), one upstream query per question in
// flight; and resolv.conf parsing.
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
using testing::answers;
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

TEST_F(ForwarderTest, ServfailIsRetriedElsewhereAndNotCachedAsAnAnswer) {
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

  // Every upstream failed: the failure is held for a moment (below), never cached as an answer.
  auto now = std::chrono::steady_clock::now();
  Forwarder only_broken(io_, config({broken.endpoint()}), reg_, [&] { return now; });
  r = forward(only_broken, makeQuery("x.example.test.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  now += 1s;  // the hold (1 s) is over
  size_t before = broken.ids.size();
  ASSERT_TRUE(forward(only_broken, makeQuery("x.example.test.", LDNS_RR_TYPE_A)));
  EXPECT_GT(broken.ids.size(), before);
}

// RFC 9520: a question every upstream failed is answered SERVFAIL without asking upstream
// while it is held; the hold doubles while the question keeps failing; other questions and an
// answer that comes back are not affected.
TEST_F(ForwarderTest, FailedQuestionIsHeldWithBackoff) {
  bool up_again = false;
  FakeUpstream flaky(io_, [&](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{up_again ? answerFor(q)
                                                      : makeReply(q, LDNS_RCODE_SERVFAIL, {})};
  });
  auto c = config({flaky.endpoint()});
  c.failure_hold = 1s;
  c.failure_hold_max = 3s;
  auto now = std::chrono::steady_clock::now();
  Forwarder f(io_, c, reg_, [&] { return now; });
  auto ask = [&](const char* name) {
    auto r = forward(f, makeQuery(name, LDNS_RR_TYPE_A));
    EXPECT_TRUE(r);
    return r && !r->empty();
  };
  const auto hits = "elasticdns_agent_upstream_failure_cache_hits_total";
  EXPECT_FALSE(ask("x.example.test."));
  const size_t asked = flaky.ids.size();
  EXPECT_EQ(asked, 2u);  // attempts = 2, both SERVFAIL
  now += 999ms;
  EXPECT_FALSE(ask("x.example.test."));
  EXPECT_EQ(flaky.ids.size(), asked);  // held: upstream not asked
  EXPECT_EQ(metric(reg_, hits), 1);
  EXPECT_FALSE(ask("y.example.test."));  // another question is asked upstream
  EXPECT_EQ(flaky.ids.size(), asked + 2);

  now += 1ms;  // 1 s: asked again, fails again: held 2 s
  EXPECT_FALSE(ask("x.example.test."));
  EXPECT_EQ(flaky.ids.size(), asked + 4);
  now += 1999ms;
  EXPECT_FALSE(ask("x.example.test."));
  EXPECT_EQ(flaky.ids.size(), asked + 4);
  now += 1ms;  // fails again: held 3 s (max), not 4
  EXPECT_FALSE(ask("x.example.test."));
  now += 2999ms;
  EXPECT_FALSE(ask("x.example.test."));
  EXPECT_EQ(flaky.ids.size(), asked + 6);
  EXPECT_EQ(metric(reg_, hits), 3);

  up_again = true;
  now += 1ms;
  EXPECT_TRUE(ask("x.example.test."));  // held no more; the answer forgets the failures
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_failure_cache_entries"), 1);  // y's
}

// A burst of queries for one question: one upstream query, every client its own reply.
TEST_F(ForwarderTest, QueriesForAQuestionInFlightWaitForItsReply) {
  FakeUpstream up(io_, [](std::span<const uint8_t> q) {
    return std::vector<std::vector<uint8_t>>{answerFor(q)};
  });
  Forwarder f(io_, config({up.endpoint()}), reg_);
  std::vector<std::vector<uint8_t>> queries, replies;
  const char* spellings[] = {"www.example.test.", "WWW.example.test.", "www.EXAMPLE.test."};
  for (uint16_t i = 0; i < 3; ++i)
    queries.push_back(makeQuery(spellings[i], LDNS_RR_TYPE_A, {.id = uint16_t(100 + i)}));
  std::vector<wire::Query> parsed(3);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(wire::parseQuery(queries[i], parsed[i]), wire::ParseStatus::kOk);
    f.forward(parsed[i], queries[i], [&](std::span<const uint8_t> r) {
      replies.emplace_back(r.begin(), r.end());
      if (replies.size() == 3) io_.stop();
    });
  }
  io_.run_for(5s);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(up.ids.size(), 1u);
  EXPECT_EQ(metric(reg_, "elasticdns_agent_upstream_joined_total"), 2);
  std::set<uint16_t> ids;
  for (const auto& r : replies) {
    auto p = testing::fromWire(r);
    ASSERT_TRUE(p);
    EXPECT_EQ(answers(p.get()).size(), 1u);
    ids.insert(ldns_pkt_id(p.get()));
    // The question as the client spelled it.
    size_t i = ldns_pkt_id(p.get()) - 100;
    ASSERT_LT(i, queries.size());
    EXPECT_TRUE(std::equal(r.begin() + 12, r.begin() + 12 + 18, queries[i].begin() + 12));
  }
  EXPECT_EQ(ids, (std::set<uint16_t>{100, 101, 102}));
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
