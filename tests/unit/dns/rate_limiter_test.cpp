// RateLimiter: a token bucket per caller, with a moved clock (no sleeps).
#include "agent/dns/rate_limiter.hpp"

#include <gtest/gtest.h>

#include "support/dns_util.hpp"

using namespace elasticdns::agent;
using elasticdns::testing::v4;
using std::chrono::milliseconds;

namespace {

int allowedOf(RateLimiter& l, uint64_t caller, RateLimiter::TimePoint t, int tries) {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += l.allow(caller, t) ? 1 : 0;
  return n;
}

}  // namespace

TEST(RateLimiter, BurstThenRefillAtTheRate) {
  RateLimiter l(10, 5);  // 10 a second, 5 saved up
  RateLimiter::TimePoint t0{};
  EXPECT_EQ(allowedOf(l, 1, t0, 20), 5);                        // the burst, then nothing
  EXPECT_EQ(allowedOf(l, 1, t0 + milliseconds(100), 5), 1);     // 0.1 s: one token
  EXPECT_EQ(allowedOf(l, 1, t0 + milliseconds(350), 5), 2);     // 0.25 s more: 2.5 tokens
  EXPECT_EQ(allowedOf(l, 1, t0 + milliseconds(10000), 50), 5);  // capped at the burst
}

TEST(RateLimiter, CallersAreIndependent) {
  RateLimiter l(1, 3);
  RateLimiter::TimePoint t0{};
  EXPECT_EQ(allowedOf(l, 1, t0, 10), 3);
  EXPECT_EQ(allowedOf(l, 2, t0, 10), 3);  // another caller still has its whole burst
  EXPECT_FALSE(l.allow(1, t0));
}

TEST(RateLimiter, ZeroRateMeansNoLimit) {
  RateLimiter l(0, 1);
  EXPECT_FALSE(l.enabled());
  EXPECT_EQ(allowedOf(l, 1, RateLimiter::TimePoint{}, 100000), 100000);
}

TEST(RateLimiter, ClockGoingBackNeitherAddsNorCrashes) {
  RateLimiter l(10, 2);
  RateLimiter::TimePoint t0 = RateLimiter::TimePoint{} + milliseconds(1000);
  EXPECT_EQ(allowedOf(l, 7, t0, 5), 2);
  EXPECT_EQ(allowedOf(l, 7, t0 - milliseconds(500), 5), 0);
}

TEST(RateLimiter, AFloodOfCallersEvictsTheIdleAndStaysBounded) {
  RateLimiter l(1, 1);
  RateLimiter::TimePoint t0{};
  // Far more callers than the table holds: each new one gets its burst (the table evicts the
  // bucket idle longest) and nothing grows.
  for (uint64_t c = 0; c < 4 * RateLimiter::kCapacity; ++c) ASSERT_TRUE(l.allow(c, t0));
  // A caller that keeps sending right after its first query is still limited.
  EXPECT_FALSE(l.allow(4 * RateLimiter::kCapacity - 1, t0));
}

TEST(RateLimiter, CallerKeyIsTheContainerElseTheAddressWithoutPort) {
  auto a = v4("10.0.0.1", 1000), a_other_port = v4("10.0.0.1", 2000), b = v4("10.0.0.2", 1000);
  EXPECT_EQ(RateLimiter::callerKey("", a), RateLimiter::callerKey("", a_other_port));
  EXPECT_NE(RateLimiter::callerKey("", a), RateLimiter::callerKey("", b));
  // Identified callers: by container, whatever their address (host-network containers share
  // one address).
  EXPECT_EQ(RateLimiter::callerKey("web-1", a), RateLimiter::callerKey("web-1", b));
  EXPECT_NE(RateLimiter::callerKey("web-1", a), RateLimiter::callerKey("web-2", a));
  EXPECT_NE(RateLimiter::callerKey("web-1", a), RateLimiter::callerKey("", a));
}
