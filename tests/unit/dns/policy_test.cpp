// Table-driven tests of the pure answer policy.
#include "elasticdns/policy.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace elasticdns::policy {
namespace {

using namespace std::chrono_literals;

struct VersionCase {
  const char* what;
  std::vector<uint64_t> generations;
  uint64_t caller;
  bool versioned;
  size_t want;
};

TEST(AgentPolicy, ChooseVersion) {
  const VersionCase cases[] = {
      {"own version", {1, 2, 3}, 2, true, 1},
      {"own version is the oldest", {1, 2, 3}, 1, true, 0},
      {"own version is the latest", {1, 2, 3}, 3, true, 2},
      {"own version gone: newest older", {1, 3, 5}, 4, true, 1},
      {"own version gone, several older", {1, 2, 5}, 4, true, 1},
      {"caller newer than all: newest older is the latest", {1, 2}, 9, true, 1},
      {"every version newer than the caller: latest", {4, 5}, 2, true, 1},
      {"unknown caller: latest", {1, 2, 3}, 0, true, 2},
      {"non-versioned: latest", {1, 2, 3}, 1, false, 2},
      {"single version", {7}, 3, true, 0},
  };
  for (const auto& c : cases)
    EXPECT_EQ(chooseVersion(c.generations, c.caller, c.versioned), c.want) << c.what;
}

TEST(AgentPolicy, ChooseClosest) {
  std::vector<uint32_t> servers = {3, 5, 9};
  EXPECT_EQ(chooseClosest(servers, 5), std::optional<size_t>(1));
  EXPECT_EQ(chooseClosest(servers, 3), std::optional<size_t>(0));
  EXPECT_EQ(chooseClosest(servers, 4), std::nullopt) << "none on the caller's server: all";
  EXPECT_EQ(chooseClosest({}, 4), std::nullopt);
}

TEST(AgentPolicy, StickyPinsAndKeeps) {
  TimePoint t0{};  // fake clock
  std::vector<uint64_t> members = {11, 22, 33};
  auto first = chooseSticky(std::nullopt, members, 4, t0, 60s, 5s);
  EXPECT_EQ(first.index, 1u) << "new pin: the member at rotation";
  EXPECT_EQ(first.pin.member, 22u);
  EXPECT_EQ(first.pin.expires, t0 + 60s);
  EXPECT_EQ(first.ttl, 5s);

  struct Case {
    const char* what;
    TimePoint now;
    std::vector<uint64_t> members;
    uint32_t rotation;
    size_t want_index;
    uint64_t want_member;
    std::chrono::seconds want_ttl;
  };
  const Case cases[] = {
      {"within the window: same member whatever the rotation",
       t0 + 10s,
       {11, 22, 33},
       0,
       1,
       22,
       5s},
      {"order changed: still the pinned member", t0 + 10s, {33, 22, 11}, 0, 1, 22, 5s},
      {"TTL capped by what is left of the window", t0 + 57s, {11, 22, 33}, 0, 1, 22, 3s},
      {"window over: a new pick", t0 + 60s, {11, 22, 33}, 2, 2, 33, 5s},
      {"pinned member gone: dropped at once", t0 + 10s, {11, 33}, 1, 1, 33, 5s},
  };
  for (const auto& c : cases) {
    auto r = chooseSticky(first.pin, c.members, c.rotation, c.now, 60s, 5s);
    EXPECT_EQ(r.index, c.want_index) << c.what;
    EXPECT_EQ(r.pin.member, c.want_member) << c.what;
    EXPECT_EQ(r.ttl, c.want_ttl) << c.what;
  }
  auto repinned = chooseSticky(first.pin, std::vector<uint64_t>{11, 33}, 1, t0 + 10s, 60s, 5s);
  EXPECT_EQ(repinned.pin.expires, t0 + 70s) << "a new pin gets a whole window";
}

}  // namespace
}  // namespace elasticdns::policy
