#pragma once
// Sticky pins, (caller, service) → member, shared by the DNS worker threads.
//
// Why shared and not per thread: SO_REUSEPORT spreads a caller's queries over the workers by
// source port, and a resolver uses a new source port per query, so per-thread tables would
// give one caller different pins. Why sharded spinlocks: a critical section is a handful of
// loads and stores on one 4-way set; with 2 workers and 64 shards two threads meet on a shard
// in ~1/64 of queries, and then wait tens of nanoseconds. Fixed capacity, allocated once: no
// allocation on the query path, and a flood of callers evicts the pin expiring first.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "agent/dns/policy.hpp"
#include "agent/util/spin_lock.hpp"

namespace elasticdns::agent {

class StickyTable {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kSetsPerShard = 256;
  static constexpr size_t kWays = 4;
  static constexpr size_t kCapacity = kShards * kSetsPerShard * kWays;  // 65,536 pins

  StickyTable() : shards_(std::make_unique<Shard[]>(kShards)) {}

  /// The pin stored under `key` (a hash of caller and service), if any.
  std::optional<policy::Pin> find(uint64_t key) const noexcept {
    Shard& s = shards_[key % kShards];
    Lock lock(s.lock);
    const Set& set = s.sets[(key / kShards) % kSetsPerShard];
    for (const Entry& e : set.ways)
      if (e.used && e.key == key) return policy::Pin{e.member, e.expires};
    return std::nullopt;
  }

  /// Store `pin` under `key`: replaces the same key, else a free or expired way, else the way
  /// expiring first.
  void store(uint64_t key, const policy::Pin& pin, policy::TimePoint now) noexcept {
    Shard& s = shards_[key % kShards];
    Lock lock(s.lock);
    Set& set = s.sets[(key / kShards) % kSetsPerShard];
    Entry* victim = &set.ways[0];
    for (Entry& e : set.ways) {
      if (e.used && e.key == key) {
        victim = &e;
        break;
      }
      if (!e.used || e.expires <= now) {
        victim = &e;
      } else if (victim->used && victim->expires > now && e.expires < victim->expires) {
        victim = &e;
      }
    }
    *victim = Entry{key, pin.member, pin.expires, true};
  }

 private:
  struct Entry {
    uint64_t key = 0;
    uint64_t member = 0;
    policy::TimePoint expires;
    bool used = false;
  };
  struct Set {
    std::array<Entry, kWays> ways;
  };
  struct alignas(64) Shard {
    mutable std::atomic_flag lock = ATOMIC_FLAG_INIT;
    std::array<Set, kSetsPerShard> sets;
  };
  using Lock = SpinLock;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace elasticdns::agent
