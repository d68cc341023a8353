// The cache of resolution failures (RFC 9520) with a fake clock: the first hold, the backoff up
// to the maximum, forgetting (after a quiet while, or an answer), the bound on entries.
#include "agent/upstream/failure_cache.hpp"

#include <gtest/gtest.h>

namespace elasticdns::agent {
namespace {

using namespace std::chrono_literals;
using Clock = FailureCache::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1000h;

TEST(FailureCache, HoldsTheFirstFailureForTheInitialHold) {
  FailureCache c(1s, 30s, 100);
  EXPECT_FALSE(c.held("q", t0));
  EXPECT_EQ(c.fail("q", t0), 1s);
  EXPECT_TRUE(c.held("q", t0));
  EXPECT_TRUE(c.held("q", t0 + 999ms));
  EXPECT_FALSE(c.held("q", t0 + 1s));
  EXPECT_FALSE(c.held("other", t0));
}

TEST(FailureCache, PersistentFailuresBackOffUpToTheMaximum) {
  FailureCache c(1s, 5s, 100);
  auto t = t0;
  EXPECT_EQ(c.fail("q", t), 1s);
  t += 1s;
  EXPECT_EQ(c.fail("q", t), 2s);
  t += 2s;
  EXPECT_EQ(c.fail("q", t), 4s);
  EXPECT_TRUE(c.held("q", t + 3999ms));
  t += 4s;
  EXPECT_EQ(c.fail("q", t), 5s);
  t += 5s;
  EXPECT_EQ(c.fail("q", t), 5s);
}

TEST(FailureCache, AQuietWhileOrAnAnswerForgetsTheFailures) {
  FailureCache c(1s, 30s, 100);
  EXPECT_EQ(c.fail("q", t0), 1s);
  EXPECT_EQ(c.fail("q", t0 + 1s), 2s);  // held until t0 + 3 s
  // No failure within as long again after the hold ended (t0 + 5 s): starting over.
  EXPECT_EQ(c.fail("q", t0 + 5s), 1s);
  c.succeed("q");
  EXPECT_FALSE(c.held("q", t0 + 5s));
  EXPECT_EQ(c.fail("q", t0 + 5s + 500ms), 1s);
}

TEST(FailureCache, KeepsAtMostMaxEntries) {
  FailureCache c(1s, 30s, 2);
  c.fail("a", t0);
  c.fail("b", t0);
  c.fail("c", t0);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.held("c", t0));
  // Entries whose failures are forgotten go first.
  c.fail("d", t0 + 10s);
  c.fail("e", t0 + 10s);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.held("d", t0 + 10s));
  EXPECT_TRUE(c.held("e", t0 + 10s));
}

}  // namespace
}  // namespace elasticdns::agent
