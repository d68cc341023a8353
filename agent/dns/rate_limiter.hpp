#pragma once
// Per-caller rate limit of forwarded queries (the agent is not an open
// resolver). A token bucket per caller: `per_second` tokens a second, at most `burst` saved up;
// a forwarded query takes one, and a caller with none left gets REFUSED. Answers from the zone
// are never limited: they cost the agent a lookup and nobody else anything.
//
// A caller is its container id when the agent identified it, else its source address (a
// resolver uses a new port per query). Shared by the DNS workers like StickyTable, and for the
// same reasons a ShardedTable (util/sharded_table.hpp); a flood of callers evicts the bucket
// idle longest, which, if it comes back, starts again with a full bucket.
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/util/sharded_table.hpp"

namespace elasticdns::agent {

class RateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr size_t kCapacity = 65'536;  // callers

  /// per_second == 0: no limit (allow() is always true, and nothing is stored).
  RateLimiter(double per_second, double burst);

  /// Takes a token from `caller`'s bucket: false when it has none left.
  bool allow(uint64_t caller, TimePoint now) noexcept;

  bool enabled() const noexcept { return per_second_ > 0; }

  /// The key of a caller: its container id when known, else the address (not the port) of
  /// `from`.
  static uint64_t callerKey(std::string_view container_id, const sockaddr_storage& from) noexcept;

 private:
  struct Bucket {
    uint64_t key = 0;
    double tokens = 0;
    TimePoint last;
    bool used = false;
  };
  using Table = ShardedTable<Bucket>;
  static_assert(Table::kCapacity == kCapacity);
  bool take(Table::Set& set, uint64_t caller, TimePoint now) noexcept;

  double per_second_;
  double burst_;
  std::optional<Table> buckets_;  // only when enabled
};

}  // namespace elasticdns::agent
