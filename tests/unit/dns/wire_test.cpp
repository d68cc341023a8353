// The query parser and the error responses, against packets built and parsed by ldns.
#include "agent/dns/wire.hpp"

#include <gtest/gtest.h>

#include "support/dns_util.hpp"

namespace elasticdns::agent::wire {
namespace {

using namespace elasticdns::testing;

TEST(AgentWire, ParsesAQuery) {
  auto pkt = makeQuery("Api.Cloud66.Local", LDNS_RR_TYPE_AAAA, {.id = 77});
  Query q;
  ASSERT_EQ(parseQuery(pkt, q), ParseStatus::kOk);
  EXPECT_EQ(q.id, 77);
  EXPECT_EQ(q.nameView(), "api.cloud66.local");
  EXPECT_EQ(q.qtype, kTypeAaaa);
  EXPECT_EQ(q.qclass, kClassIn);
  EXPECT_FALSE(q.has_edns);
  EXPECT_EQ(q.question_end, pkt.size());
  EXPECT_EQ(udpLimit(q), 512u);
}

TEST(AgentWire, ParsesEdns) {
  auto pkt = makeQuery("a.b", LDNS_RR_TYPE_A, {.edns = true, .udp_size = 4096});
  Query q;
  ASSERT_EQ(parseQuery(pkt, q), ParseStatus::kOk);
  EXPECT_TRUE(q.has_edns);
  EXPECT_EQ(q.edns_udp_size, 4096);
  EXPECT_EQ(udpLimit(q), kMaxUdpPayload) << "capped";
  auto small = makeQuery("a.b", LDNS_RR_TYPE_A, {.edns = true, .udp_size = 100});
  ASSERT_EQ(parseQuery(small, q), ParseStatus::kOk);
  EXPECT_EQ(udpLimit(q), 512u) << "at least 512";
}

TEST(AgentWire, RootName) {
  auto pkt = makeQuery(".", LDNS_RR_TYPE_NS);
  Query q;
  ASSERT_EQ(parseQuery(pkt, q), ParseStatus::kOk);
  EXPECT_EQ(q.nameView(), "");
}

TEST(AgentWire, RejectsMalformed) {
  auto good = makeQuery("api.cloud66.local", LDNS_RR_TYPE_A, {.edns = true, .udp_size = 1232});
  Query q;
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    ParseStatus want;
  };
  auto with = [&](auto f) {
    auto b = good;
    f(b);
    return b;
  };
  const Case cases[] = {
      {"empty", {}, ParseStatus::kDrop},
      {"shorter than a header", std::vector<uint8_t>(good.begin(), good.begin() + 11),
       ParseStatus::kDrop},
      {"a response", with([](auto& b) { b[2] |= 0x80; }), ParseStatus::kDrop},
      {"opcode UPDATE",
       with([](auto& b) { b[2] = static_cast<uint8_t>((b[2] & 0x87) | (5 << 3)); }),
       ParseStatus::kNotImp},
      {"two questions", with([](auto& b) { b[5] = 2; }), ParseStatus::kFormErr},
      {"no question", with([](auto& b) { b[5] = 0; }), ParseStatus::kFormErr},
      {"an answer record", with([](auto& b) { b[7] = 1; }), ParseStatus::kFormErr},
      {"truncated question", std::vector<uint8_t>(good.begin(), good.begin() + 20),
       ParseStatus::kFormErr},
      {"truncated OPT", std::vector<uint8_t>(good.begin(), good.end() - 3), ParseStatus::kFormErr},
      {"compressed qname", with([](auto& b) {
         b[12] = 0xC0;
         b[13] = 0x0C;
       }),
       ParseStatus::kFormErr},
      {"label longer than the packet", with([](auto& b) { b[12] = 63; }), ParseStatus::kFormErr},
      {"additional count beyond the data", with([](auto& b) { b[11] = 3; }), ParseStatus::kFormErr},
  };
  for (const auto& c : cases) EXPECT_EQ(parseQuery(c.bytes, q), c.want) << c.what;
}

TEST(AgentWire, NameTooLong) {
  std::vector<uint8_t> pkt = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 5; ++i) {  // 5 × 64 bytes > 255
    pkt.push_back(63);
    pkt.insert(pkt.end(), 63, 'a');
  }
  pkt.insert(pkt.end(), {0, 0, 1, 0, 1});
  Query q;
  EXPECT_EQ(parseQuery(pkt, q), ParseStatus::kFormErr);
}

TEST(AgentWire, DotInsideALabelCannotForgeAName) {
  // One label "api.cloud66" then "local": not the name api.cloud66.local.
  std::vector<uint8_t> pkt = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11};
  for (char c : std::string("api.cloud66")) pkt.push_back(static_cast<uint8_t>(c));
  pkt.push_back(5);
  for (char c : std::string("local")) pkt.push_back(static_cast<uint8_t>(c));
  pkt.insert(pkt.end(), {0, 0, 1, 0, 1});
  Query q;
  ASSERT_EQ(parseQuery(pkt, q), ParseStatus::kOk);
  EXPECT_NE(q.nameView(), "api.cloud66.local");
  EXPECT_EQ(q.nameView(), std::string("api\x01"
                                      "cloud66.local"));
}

TEST(AgentWire, ErrorResponsesParseWithLdns) {
  auto pkt = makeQuery("x.example", LDNS_RR_TYPE_A, {.id = 9, .edns = true, .udp_size = 1232});
  Query q;
  ASSERT_EQ(parseQuery(pkt, q), ParseStatus::kOk);
  std::vector<uint8_t> out(512);
  for (uint16_t rcode : {uint16_t{kRefused}, uint16_t{kServFail}, uint16_t{kFormErr}}) {
    size_t n = writeErrorResponse(q, pkt, rcode, out);
    auto r = fromWire(std::span<const uint8_t>(out.data(), n));
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), rcode);
    EXPECT_EQ(ldns_pkt_id(r.get()), 9);
    EXPECT_TRUE(ldns_pkt_qr(r.get()));
    EXPECT_TRUE(ldns_pkt_rd(r.get()));
    EXPECT_EQ(ldns_pkt_qdcount(r.get()), 1);
    EXPECT_TRUE(ldns_pkt_edns(r.get()));
  }
  size_t n = writeErrorResponse(q, pkt, kRcodeBadVers, out);
  auto r = fromWire(std::span<const uint8_t>(out.data(), n));
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(r.get()), 1) << "BADVERS = extended rcode 1";
  EXPECT_EQ(writeErrorResponse(q, pkt, kRefused, std::span<uint8_t>(out.data(), 5)), 0u);
}

}  // namespace
}  // namespace elasticdns::agent::wire
