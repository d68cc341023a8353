// The forwarder's answer cache with a fake clock: TTL ageing, expiry, negative caching (RFC
// 2308), the LRU bound, EDNS/DO separation, and malformed replies.
#include <gtest/gtest.h>

#include "agent/upstream/answer_cache.hpp"
#include "support/dns_util.hpp"

namespace elasticdns::agent {
namespace {

using namespace std::chrono_literals;
using testing::makeQuery;
using testing::makeReply;
using testing::ttls;
using Clock = AnswerCache::Clock;

constexpr const char* kSoa =
    "example.test. 3600 IN SOA ns.example.test. h.example.test. 1 3600 600 86400 60";

// The question and the cache key of a query, as the forwarder takes them from the parser.
wire::Question question(std::span<const uint8_t> q) {
  wire::Query parsed;
  EXPECT_EQ(wire::parseQuery(q, parsed), wire::ParseStatus::kOk);
  return wire::questionOf(parsed, q);
}
std::string key(std::span<const uint8_t> q) {
  wire::Query parsed;
  EXPECT_EQ(wire::parseQuery(q, parsed), wire::ParseStatus::kOk);
  return AnswerCache::keyOf(wire::questionOf(parsed, q), parsed.has_edns, parsed.edns_do);
}

class CacheTest : public ::testing::Test {
 protected:
  AnswerCache cache_{100, 3600s, 300s};
  Clock::time_point t0_ = Clock::time_point{} + 1000h;
};

TEST_F(CacheTest, PositiveAnswerAgesAndExpires) {
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 1});
  auto r = makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 300 IN A 192.0.2.1"});
  ASSERT_TRUE(cache_.insert(key(q), r, t0_));

  auto q2 = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.id = 0xBEEF});
  auto hit = cache_.lookup(key(q2), q2, question(q2), t0_ + 30s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(testing::idOf(*hit), 0xBEEF);
  EXPECT_EQ(ttls(*hit, LDNS_SECTION_ANSWER), std::vector<uint32_t>{270});

  hit = cache_.lookup(key(q2), q2, question(q2), t0_ + 299s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(ttls(*hit, LDNS_SECTION_ANSWER), std::vector<uint32_t>{1});
  EXPECT_FALSE(cache_.lookup(key(q2), q2, question(q2), t0_ + 300s));
  EXPECT_EQ(cache_.size(), 0u);  // the expired entry was dropped
}

TEST_F(CacheTest, LifetimeIsTheSmallestAnswerTtlAndNoTtlOutlivesIt) {
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  auto r = makeReply(
      q, LDNS_RCODE_NOERROR,
      {"www.example.test. 600 IN CNAME web.example.test.", "web.example.test. 100 IN A 192.0.2.1"});
  ASSERT_TRUE(cache_.insert(key(q), r, t0_));
  auto hit = cache_.lookup(key(q), q, question(q), t0_ + 10s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(ttls(*hit, LDNS_SECTION_ANSWER), (std::vector<uint32_t>{90, 90}));
  EXPECT_FALSE(cache_.lookup(key(q), q, question(q), t0_ + 100s));
}

TEST_F(CacheTest, MaxTtlCapsTheLifetime) {
  AnswerCache small(10, 60s, 30s);
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  auto r = makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 86400 IN A 192.0.2.1"});
  ASSERT_TRUE(small.insert(key(q), r, t0_));
  auto hit = small.lookup(key(q), q, question(q), t0_ + 1s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(ttls(*hit, LDNS_SECTION_ANSWER), std::vector<uint32_t>{59});
  EXPECT_FALSE(small.lookup(key(q), q, question(q), t0_ + 60s));
}

TEST_F(CacheTest, NxdomainIsCachedForTheSoaMinimum) {
  auto q = makeQuery("nope.example.test.", LDNS_RR_TYPE_A);
  auto r = makeReply(q, LDNS_RCODE_NXDOMAIN, {}, {kSoa});
  ASSERT_TRUE(cache_.insert(key(q), r, t0_));
  auto hit = cache_.lookup(key(q), q, question(q), t0_ + 10s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(ldns_pkt_get_rcode(testing::fromWire(*hit).get()), LDNS_RCODE_NXDOMAIN);
  // RFC 2308 5: min(SOA TTL 3600, MINIMUM 60) = 60, aged by 10 s.
  EXPECT_EQ(ttls(*hit, LDNS_SECTION_AUTHORITY), std::vector<uint32_t>{50});
  EXPECT_FALSE(cache_.lookup(key(q), q, question(q), t0_ + 60s));
}

TEST_F(CacheTest, NxdomainAfterACnameLivesNoLongerThanTheCname) {
  auto q = makeQuery("alias.example.test.", LDNS_RR_TYPE_A);
  auto r = makeReply(q, LDNS_RCODE_NXDOMAIN, {"alias.example.test. 10 IN CNAME gone.example.test."},
                     {kSoa});
  ASSERT_TRUE(cache_.insert(key(q), r, t0_));
  EXPECT_TRUE(cache_.lookup(key(q), q, question(q), t0_ + 9s));
  EXPECT_FALSE(cache_.lookup(key(q), q, question(q), t0_ + 10s));
}

TEST_F(CacheTest, NegativeTtlIsCapped) {
  AnswerCache capped(10, 3600s, 20s);
  auto q = makeQuery("nope.example.test.", LDNS_RR_TYPE_A);
  auto r = makeReply(q, LDNS_RCODE_NXDOMAIN, {}, {kSoa});
  ASSERT_TRUE(capped.insert(key(q), r, t0_));
  EXPECT_TRUE(capped.lookup(key(q), q, question(q), t0_ + 19s));
  EXPECT_FALSE(capped.lookup(key(q), q, question(q), t0_ + 20s));
}

TEST_F(CacheTest, NodataIsCachedWithItsSoa) {
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_AAAA);
  auto r = makeReply(q, LDNS_RCODE_NOERROR, {}, {kSoa});
  ASSERT_TRUE(cache_.insert(key(q), r, t0_));
  EXPECT_TRUE(cache_.lookup(key(q), q, question(q), t0_ + 59s));
  EXPECT_FALSE(cache_.lookup(key(q), q, question(q), t0_ + 60s));
}

TEST_F(CacheTest, UncacheableRepliesAreNotStored) {
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  EXPECT_FALSE(cache_.insert(key(q), makeReply(q, LDNS_RCODE_SERVFAIL, {}), t0_));
  EXPECT_FALSE(cache_.insert(key(q), makeReply(q, LDNS_RCODE_REFUSED, {}), t0_));
  EXPECT_FALSE(cache_.insert(key(q), makeReply(q, LDNS_RCODE_NXDOMAIN, {}), t0_));  // no SOA
  EXPECT_FALSE(cache_.insert(
      key(q), makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 0 IN A 192.0.2.1"}), t0_));
  EXPECT_FALSE(cache_.insert(
      key(q), makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 60 IN A 192.0.2.1"}, {}, true),
      t0_));
  EXPECT_FALSE(cache_.insert(key(q), q, t0_));  // a query (QR clear) is not a reply
  EXPECT_EQ(cache_.size(), 0u);
}

TEST_F(CacheTest, LeastRecentlyUsedIsEvictedAtTheBound) {
  AnswerCache lru(2, 3600s, 300s);
  auto qa = makeQuery("a.example.test.", LDNS_RR_TYPE_A);
  auto qb = makeQuery("b.example.test.", LDNS_RR_TYPE_A);
  auto qc = makeQuery("c.example.test.", LDNS_RR_TYPE_A);
  auto ka = key(qa), kb = key(qb), kc = key(qc);
  ASSERT_TRUE(lru.insert(
      ka, makeReply(qa, LDNS_RCODE_NOERROR, {"a.example.test. 60 IN A 192.0.2.1"}), t0_));
  ASSERT_TRUE(lru.insert(
      kb, makeReply(qb, LDNS_RCODE_NOERROR, {"b.example.test. 60 IN A 192.0.2.2"}), t0_));
  ASSERT_TRUE(lru.lookup(ka, qa, question(qa), t0_));  // a is now the most recently used
  ASSERT_TRUE(lru.insert(
      kc, makeReply(qc, LDNS_RCODE_NOERROR, {"c.example.test. 60 IN A 192.0.2.3"}), t0_));
  EXPECT_EQ(lru.size(), 2u);
  EXPECT_TRUE(lru.lookup(ka, qa, question(qa), t0_));
  EXPECT_FALSE(lru.lookup(kb, qb, question(qb), t0_));
  EXPECT_TRUE(lru.lookup(kc, qc, question(qc), t0_));
}

TEST_F(CacheTest, EdnsAndDnssecOkAreSeparateEntries) {
  auto plain = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  auto edns = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.edns = true});
  auto dnssec = makeQuery("www.example.test.", LDNS_RR_TYPE_A, {.edns = true, .dnssec_ok = true});
  EXPECT_NE(key(plain), key(edns));
  EXPECT_NE(key(edns), key(dnssec));
  EXPECT_NE(key(plain), key(dnssec));

  auto r = makeReply(dnssec, LDNS_RCODE_NOERROR, {"www.example.test. 60 IN A 192.0.2.1"});
  ASSERT_TRUE(cache_.insert(key(dnssec), r, t0_));
  EXPECT_FALSE(cache_.lookup(key(plain), plain, question(plain), t0_));
  EXPECT_FALSE(cache_.lookup(key(edns), edns, question(edns), t0_));
  auto hit = cache_.lookup(key(dnssec), dnssec, question(dnssec), t0_ + 5s);
  ASSERT_TRUE(hit);
  // The OPT record's TTL field carries the DO bit, not a TTL: ageing leaves it alone.
  EXPECT_TRUE(ldns_pkt_edns_do(testing::fromWire(*hit).get()));
}

TEST_F(CacheTest, KeyIgnoresCaseAndHitEchoesTheClientsSpelling) {
  auto lower = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  auto mixed = makeQuery("WwW.ExAmple.TEST.", LDNS_RR_TYPE_A, {.id = 7});
  EXPECT_EQ(key(lower), key(mixed));
  ASSERT_TRUE(cache_.insert(
      key(lower), makeReply(lower, LDNS_RCODE_NOERROR, {"www.example.test. 60 IN A 192.0.2.1"}),
      t0_));
  auto hit = cache_.lookup(key(mixed), mixed, question(mixed), t0_);
  ASSERT_TRUE(hit);
  auto q = wire::parseQuestion(*hit);
  ASSERT_TRUE(q);
  EXPECT_TRUE(std::equal(hit->begin() + wire::kHeaderSize, hit->begin() + q->end,
                         mixed.begin() + wire::kHeaderSize));
}

TEST(DnsWire, MalformedMessagesAreRejected) {
  auto q = makeQuery("www.example.test.", LDNS_RR_TYPE_A);
  // Truncated anywhere in the question.
  for (size_t n = 0; n < q.size(); ++n)
    EXPECT_FALSE(wire::parseQuestion(std::span(q.data(), n))) << "prefix of " << n << " bytes";
  // A compression pointer to itself, and one pointing forwards.
  std::vector<uint8_t> loop = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1};
  EXPECT_FALSE(wire::parseQuestion(loop));
  std::vector<uint8_t> fwd = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0, 0, 1, 0, 1};
  EXPECT_FALSE(wire::parseQuestion(fwd));
  // An answer whose rdata runs past the end.
  auto r = makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 60 IN A 192.0.2.1"});
  r.resize(r.size() - 1);
  EXPECT_FALSE(cacheLifetime(r, 3600s, 300s));
  // A count that promises more records than there are.
  auto r2 = makeReply(q, LDNS_RCODE_NOERROR, {"www.example.test. 60 IN A 192.0.2.1"});
  r2[7] = 2;
  EXPECT_FALSE(cacheLifetime(r2, 3600s, 300s));
}

}  // namespace
}  // namespace elasticdns::agent
