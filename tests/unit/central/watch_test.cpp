// WatchRegistry: notify() takes every due watcher out before calling any, builds each body once
// per `since`, and leaves the deadline index consistent for expire().
#include "central/watch.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace elasticdns::central {
namespace {

using Clock = WatchRegistry::Clock;
using Body = WatchRegistry::Body;

TEST(WatchRegistry, NotifyWakesTheWatchersBelowTheIndexWithOneBodyPerSince) {
  WatchRegistry reg(10);
  auto t0 = Clock::now();
  std::vector<std::pair<int, std::string>> got;  // watcher, body
  auto watcher = [&](int n) { return [&got, n](Body b) { got.emplace_back(n, *b); }; };
  ASSERT_TRUE(reg.add(5, t0 + std::chrono::seconds(1), watcher(1)));
  ASSERT_TRUE(reg.add(3, t0 + std::chrono::seconds(2), watcher(2)));
  ASSERT_TRUE(reg.add(5, t0 + std::chrono::seconds(3), watcher(3)));
  ASSERT_TRUE(reg.add(7, t0 + std::chrono::seconds(4), watcher(4)));
  std::map<uint64_t, int> built;
  auto body = [&](uint64_t since) {
    ++built[since];
    return std::make_shared<const std::string>("since " + std::to_string(since));
  };
  EXPECT_EQ(reg.notify(6, body), 3u);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{
                     {2, "since 3"}, {1, "since 5"}, {3, "since 5"}}));
  EXPECT_EQ(built, (std::map<uint64_t, int>{{3, 1}, {5, 1}}));
  EXPECT_EQ(reg.size(), 1u);
  // The woken watchers left the deadline index too: the next deadline is watcher 4's, and
  // expiring everything answers it alone.
  EXPECT_EQ(reg.nextDeadline(), t0 + std::chrono::seconds(4));
  got.clear();
  EXPECT_EQ(reg.expire(t0 + std::chrono::seconds(10), body), 1u);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{{4, "since 7"}}));
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_FALSE(reg.nextDeadline());
  EXPECT_EQ(reg.notify(100, body), 0u);
}

TEST(WatchRegistry, ACallbackMayAddAndRemoveWatchers) {
  WatchRegistry reg(10);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  std::vector<int> got;
  std::optional<uint64_t> second, added;
  auto body = [](uint64_t) { return std::make_shared<const std::string>("b"); };
  ASSERT_TRUE(reg.add(1, deadline, [&](Body) {
    got.push_back(1);
    // The second is due too, but removed before its turn: it is not called. The added one
    // waits for the next notify.
    EXPECT_TRUE(reg.remove(*second));
    added = reg.add(1, deadline, [&](Body) { got.push_back(3); });
  }));
  second = reg.add(1, deadline, [&](Body) { got.push_back(2); });
  ASSERT_TRUE(second);
  EXPECT_EQ(reg.notify(2, body), 1u);
  EXPECT_EQ(got, (std::vector<int>{1}));
  ASSERT_TRUE(added);
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg.notify(2, body), 1u);
  EXPECT_EQ(got, (std::vector<int>{1, 3}));
  EXPECT_EQ(reg.size(), 0u);
}

TEST(WatchRegistry, ACallbackMayRemoveItself) {
  WatchRegistry reg(10);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  auto body = [](uint64_t) { return std::make_shared<const std::string>("b"); };
  std::optional<uint64_t> self;
  int calls = 0;
  self = reg.add(1, deadline, [&](Body) {
    ++calls;
    EXPECT_TRUE(reg.remove(*self));
    EXPECT_FALSE(reg.remove(*self));
  });
  ASSERT_TRUE(self);
  EXPECT_EQ(reg.notify(2, body), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_FALSE(reg.nextDeadline());
}

TEST(WatchRegistry, FullAndRemove) {
  WatchRegistry reg(2);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  auto a = reg.add(1, deadline, [](Body) { FAIL() << "removed watcher notified"; });
  ASSERT_TRUE(a);
  ASSERT_TRUE(reg.add(1, deadline, [](Body) {}));
  EXPECT_FALSE(reg.add(1, deadline, [](Body) {}));
  EXPECT_TRUE(reg.remove(*a));
  EXPECT_FALSE(reg.remove(*a));
  EXPECT_EQ(reg.notify(2, [](uint64_t) { return std::make_shared<const std::string>(); }), 1u);
}

}  // namespace
}  // namespace elasticdns::central
