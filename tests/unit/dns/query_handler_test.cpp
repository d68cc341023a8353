// The decision for one query without sockets: zone answers, forwarding, drops, REFUSED (allow
// list, forward limit), FORMERR, NOTIMP, TC over UDP, EDE 3 while stale, and the caller counters.
#include "agent/dns/query_handler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "support/dns_util.hpp"
#include "support/topology_util.hpp"

namespace elasticdns::agent {
namespace {

using namespace std::chrono_literals;
using namespace elasticdns::testing;
using Action = QueryDecision::Action;

constexpr uint16_t kKnownPort = 1111;  // FakeIdentity knows the socket sending from this port

/// Knows one container: the one that sends from kKnownPort.
class FakeIdentity final : public CallerIdentity {
 public:
  std::string_view containerIdOf(const Peer& peer) noexcept override {
    sockaddr_in sin;
    std::memcpy(&sin, &peer.addr, sizeof sin);
    return ntohs(sin.sin_port) == kKnownPort ? "client-1" : "";
  }
};

model::Topology topology() {
  model::Topology t;
  t.index = 7;
  t.versions = {{"v1", 1}, {"v2", 2}};
  auto add = [&](std::string id, std::string service, std::string version, std::string address) {
    t.containers[id] = container(id, service, version, "host1", address);
  };
  add("client-1", "client", "v1", "127.0.2.1");
  add("api-1", "api", "v1", "10.0.1.1");
  add("api-2", "api", "v2", "10.0.2.1");
  for (int i = 0; i < 60; ++i)
    add("big-" + std::to_string(i), "big", "v1", "10.1.0." + std::to_string(i + 1));
  t.recomputeDerived();
  return t;
}

class QueryHandlerTest : public ::testing::Test {
 protected:
  QueryHandlerTest() {
    ZoneConfig cfg;
    cfg.server_name = "host1";
    store_.publish(std::make_shared<const model::Topology>(topology()), cfg).value();
    shared_.identity = &identity_;
    shared_.forwarding = true;
    handler_.refresh();
  }

  QueryDecision handle(const std::vector<uint8_t>& packet, const sockaddr_storage& from,
                       Transport transport = Transport::kUdp) {
    Peer peer;
    peer.addr = from;
    peer.transport = transport;
    return handler_.handle(packet, peer, now_, out_, query_);
  }
  Pkt reply(const QueryDecision& d) {
    EXPECT_EQ(d.action, Action::kReply);
    return fromWire(std::span<const uint8_t>(out_.data(), d.length));
  }

  TopologyStore store_;
  FakeIdentity identity_;
  // Allowed: 127.0.0.0/8 only. Forward limit: 1 a second, burst 2.
  QueryHandlerShared shared_{store_, 1, 2, {parseCidr("127.0.0.0/8").value()}};
  QueryHandler handler_{shared_, 0};
  std::vector<uint8_t> out_ = std::vector<uint8_t>(wire::kMaxMessageSize);
  wire::Query query_;
  QueryHandler::Clock::time_point now_ = QueryHandler::Clock::time_point{} + 1000h;
  sockaddr_storage unknown_ = v4("127.0.0.9", 5353);
  sockaddr_storage known_ = v4("127.0.2.1", kKnownPort);
};

TEST_F(QueryHandlerTest, AnswersFromTheZone) {
  auto d = handle(makeQuery("api.cloud66.local", LDNS_RR_TYPE_A), unknown_);
  auto p = reply(d);
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_FALSE(answers(p.get()).empty());
  EXPECT_EQ(handler_.stats().queries[typeIndex(wire::kTypeA)][wire::kNoError].load(), 1u);
}

TEST_F(QueryHandlerTest, IdentifiedAndUnknownCallersAreCounted) {
  // A versioned service: the answer depends on who asks.
  reply(handle(makeQuery("api.cloud66.local", LDNS_RR_TYPE_A), known_));
  EXPECT_EQ(handler_.stats().callers_known.load(), 1u);
  EXPECT_EQ(handler_.stats().callers_unknown.load(), 0u);
  reply(handle(makeQuery("api.cloud66.local", LDNS_RR_TYPE_A), unknown_));
  EXPECT_EQ(handler_.stats().callers_known.load(), 1u);
  EXPECT_EQ(handler_.stats().callers_unknown.load(), 1u);
}

TEST_F(QueryHandlerTest, NamesOutsideTheZoneAreForwardedWithTheParsedQuery) {
  auto packet = makeQuery("www.example.test", LDNS_RR_TYPE_AAAA, {.edns = true, .udp_size = 1232});
  auto d = handle(packet, unknown_);
  EXPECT_EQ(d.action, Action::kForward);
  EXPECT_EQ(d.limit, wire::kMaxUdpPayload);
  EXPECT_EQ(query_.nameView(), "www.example.test");
  EXPECT_EQ(query_.qtype, wire::kTypeAaaa);
  EXPECT_TRUE(query_.has_edns);
  EXPECT_EQ(handler_.stats().forwarded.load(), 1u);
  EXPECT_EQ(handle(packet, unknown_, Transport::kTcp).limit, wire::kMaxMessageSize);
}

TEST_F(QueryHandlerTest, WithoutForwardingOutsideNamesAreRefused) {
  shared_.forwarding = false;
  auto p = reply(handle(makeQuery("www.example.test", LDNS_RR_TYPE_A), unknown_));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
}

TEST_F(QueryHandlerTest, ResponsesAndShortPacketsAreDropped) {
  auto response = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A);
  response[2] |= 0x80;  // QR
  EXPECT_EQ(handle(response, unknown_).action, Action::kDrop);
  EXPECT_EQ(handle(std::vector<uint8_t>{1, 2, 3, 4, 5}, unknown_).action, Action::kDrop);
  EXPECT_EQ(handler_.stats().dropped.load(), 2u);
}

TEST_F(QueryHandlerTest, CallersOutsideTheAllowListAreRefused) {
  auto p = reply(handle(makeQuery("api.cloud66.local", LDNS_RR_TYPE_A), v4("192.0.2.1")));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
  EXPECT_TRUE(answers(p.get()).empty());
}

TEST_F(QueryHandlerTest, CallersOverTheForwardLimitAreRefused) {
  auto packet = makeQuery("www.example.test", LDNS_RR_TYPE_A);
  EXPECT_EQ(handle(packet, unknown_).action, Action::kForward);
  EXPECT_EQ(handle(packet, unknown_).action, Action::kForward);  // the burst of 2
  auto p = reply(handle(packet, unknown_));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
  EXPECT_EQ(handler_.stats().forward_limited.load(), 1u);
  // Another caller has its own bucket.
  EXPECT_EQ(handle(packet, known_).action, Action::kForward);
}

TEST_F(QueryHandlerTest, MalformedQueriesGetFormErrAndOtherOpcodesNotImp) {
  auto two_questions = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A);
  two_questions[5] = 2;  // qdcount
  auto p = reply(handle(two_questions, unknown_));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_FORMERR);

  auto notify = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A);
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));  // opcode NOTIFY
  auto d = handle(notify, unknown_);
  ASSERT_EQ(d.action, Action::kReply);
  ASSERT_GE(d.length, wire::kHeaderSize);
  EXPECT_EQ(out_[3] & 0x0F, wire::kNotImp);
}

TEST_F(QueryHandlerTest, LargeAnswersAreTruncatedOverUdpOnly) {
  auto packet = makeQuery("big.cloud66.local", LDNS_RR_TYPE_A);
  auto d = handle(packet, unknown_);
  auto p = reply(d);
  ASSERT_TRUE(p);
  EXPECT_LE(d.length, wire::kMinUdpPayload);
  EXPECT_TRUE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(handler_.stats().truncated.load(), 1u);
  p = reply(handle(packet, unknown_, Transport::kTcp));
  ASSERT_TRUE(p);
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(answers(p.get()).size(), 60u);
}

TEST_F(QueryHandlerTest, StaleAnswersCarryEde3) {
  const std::vector<uint8_t> ede3 = {0, wire::kEdnsOptionEde, 0, 2, 0, wire::kEdeStaleAnswer};
  auto packet = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A, {.edns = true, .udp_size = 1232});
  auto d = handle(packet, unknown_);
  ASSERT_EQ(d.action, Action::kReply);
  EXPECT_EQ(std::search(out_.begin(), out_.begin() + d.length, ede3.begin(), ede3.end()),
            out_.begin() + d.length);
  shared_.stale = true;
  d = handle(packet, unknown_);
  ASSERT_EQ(d.action, Action::kReply);
  EXPECT_NE(std::search(out_.begin(), out_.begin() + d.length, ede3.begin(), ede3.end()),
            out_.begin() + d.length);
}

// Every error reply to a query with a valid OPT: the question, an OPT with the query's DO bit.
TEST_F(QueryHandlerTest, ErrorRepliesCarryTheQuestionAndAnOptWithTheDoBit) {
  const QueryOptions edns_do{.edns = true, .dnssec_ok = true};
  auto notimp = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A, edns_do);
  notimp[2] = static_cast<uint8_t>((notimp[2] & 0x87) | (2 << 3));  // opcode STATUS
  auto with_answer = makeQueryPkt("api.cloud66.local", LDNS_RR_TYPE_A, edns_do);
  ldns_pkt_push_rr(with_answer.get(), LDNS_SECTION_ANSWER, rr("api.cloud66.local. 5 IN A 1.2.3.4"));
  auto badvers = makeQueryPkt("api.cloud66.local", LDNS_RR_TYPE_A, edns_do);
  ldns_pkt_set_edns_version(badvers.get(), 1);
  struct Case {
    std::vector<uint8_t> packet;
    sockaddr_storage from;
    int rcode;  // extended
  };
  for (const auto& c : {Case{notimp, unknown_, LDNS_RCODE_NOTIMPL},
                        Case{toWire(with_answer.get()), unknown_, LDNS_RCODE_FORMERR},
                        Case{makeQuery("api.cloud66.local", LDNS_RR_TYPE_A, edns_do),
                             v4("192.0.2.7"), LDNS_RCODE_REFUSED},
                        Case{makeQuery("x.cloud66.local", LDNS_RR_TYPE_AXFR, edns_do), unknown_,
                             LDNS_RCODE_NOTIMPL},
                        Case{toWire(badvers.get()), unknown_, 16}}) {
    auto p = reply(handle(c.packet, c.from));
    ASSERT_TRUE(p) << c.rcode;
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()) | (ldns_pkt_edns_extended_rcode(p.get()) << 4), c.rcode);
    EXPECT_EQ(ldns_pkt_qdcount(p.get()), 1) << c.rcode;
    EXPECT_TRUE(ldns_pkt_edns(p.get())) << c.rcode;
    EXPECT_TRUE(ldns_pkt_edns_do(p.get())) << c.rcode;
    EXPECT_EQ(ldns_pkt_edns_version(p.get()), 0) << c.rcode;
  }
}

}  // namespace
}  // namespace elasticdns::agent
