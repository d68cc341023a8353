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

// RFC 6891 7 and RFC 3225 3: an error reply to a query with a valid OPT carries an OPT, with
// the query's DO bit, and the question whenever it could be read, whatever the error.
TEST(AgentWire, ErrorRepliesKeepTheQuestionAndTheOptWithItsDoBit) {
  auto notify =
      makeQuery("x.example", LDNS_RR_TYPE_SOA, {.id = 3, .edns = true, .dnssec_ok = true});
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));  // opcode NOTIFY
  auto with_answer = makeQueryPkt("x.example", LDNS_RR_TYPE_A, {.edns = true, .dnssec_ok = true});
  ldns_pkt_push_rr(with_answer.get(), LDNS_SECTION_ANSWER, rr("x.example. 5 IN A 192.0.2.1"));
  auto formerr = toWire(with_answer.get());
  for (auto [packet, status] :
       {std::pair{notify, ParseStatus::kNotImp}, std::pair{formerr, ParseStatus::kFormErr}}) {
    Query q;
    ASSERT_EQ(parseQuery(packet, q), status);
    EXPECT_TRUE(q.has_edns);
    EXPECT_TRUE(q.edns_do);
    EXPECT_EQ(q.nameView(), "x.example");
    std::vector<uint8_t> out(512);
    const uint16_t rcode = status == ParseStatus::kNotImp ? kNotImp : kFormErr;
    size_t n = writeErrorResponse(q, packet, rcode, out);
    auto r = fromWire(std::span<const uint8_t>(out.data(), n));
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), rcode);
    EXPECT_EQ(ldns_pkt_qdcount(r.get()), 1);
    EXPECT_EQ(ldns_pkt_ancount(r.get()), 0);
    EXPECT_TRUE(ldns_pkt_edns(r.get()));
    EXPECT_TRUE(ldns_pkt_edns_do(r.get()));
  }
  // Without DO, the reply's OPT has none either.
  auto plain = makeQuery("x.example", LDNS_RR_TYPE_A, {.edns = true});
  Query q;
  ASSERT_EQ(parseQuery(plain, q), ParseStatus::kOk);
  std::vector<uint8_t> out(512);
  auto r =
      fromWire(std::span<const uint8_t>(out.data(), writeErrorResponse(q, plain, kRefused, out)));
  ASSERT_TRUE(r);
  EXPECT_TRUE(ldns_pkt_edns(r.get()));
  EXPECT_FALSE(ldns_pkt_edns_do(r.get()));
}

TEST(AgentWire, AnOptThatIsNotValidIsFormErrWithoutOpt) {
  const auto good = makeQuery("x.example", LDNS_RR_TYPE_A, {.edns = true});
  const size_t opt = good.size() - 11;  // the OPT record: root, type, class, ttl, rdlength 0
  ASSERT_EQ(good[opt + 2], kTypeOpt);

  auto not_root = good;  // owner "a." instead of the root
  not_root.insert(not_root.begin() + static_cast<long>(opt), {1, 'a'});
  auto two = good;  // a second OPT
  two.insert(two.end(), good.begin() + static_cast<long>(opt), good.end());
  two[11] = 2;          // arcount
  auto overrun = good;  // an option longer than the rdata
  overrun[opt + 10] = 4;
  overrun.insert(overrun.end(), {0, 10, 0, 9});
  for (const auto* packet : {&not_root, &two, &overrun}) {
    Query q;
    EXPECT_EQ(parseQuery(*packet, q), ParseStatus::kFormErr);
    EXPECT_FALSE(q.has_edns);
    EXPECT_EQ(q.nameView(), "x.example") << "the question is still echoed";
  }
  auto fine = good;  // an option that fits
  fine[opt + 10] = 6;
  fine.insert(fine.end(), {0, 10, 0, 2, 'h', 'i'});
  Query q;
  EXPECT_EQ(parseQuery(fine, q), ParseStatus::kOk);
  EXPECT_TRUE(q.has_edns);
}

TEST(AgentWire, AnUnreadableQuestionIsFormErrWithoutOne) {
  auto pkt = makeQuery("x.example", LDNS_RR_TYPE_A, {.edns = true});
  pkt.resize(kHeaderSize + 5);  // the name cut short
  Query q;
  EXPECT_EQ(parseQuery(pkt, q), ParseStatus::kFormErr);
  EXPECT_EQ(q.question_end, 0u);
  std::vector<uint8_t> out(512);
  size_t n = writeErrorResponse(q, pkt, kFormErr, out);
  ASSERT_EQ(n, kHeaderSize);
  EXPECT_EQ(out[5], 0) << "qdcount 0";
}

}  // namespace
}  // namespace elasticdns::agent::wire
