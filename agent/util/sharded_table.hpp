#pragma once
// A fixed-capacity hash table that the DNS worker threads share: kShards shards, each on its own
// cache lines behind a SpinLock, each shard an array of kWays-way sets. Allocated once, so the
// query path never allocates; a full set evicts an entry chosen by the caller.
//
// Why sharded spinlocks: a critical section is a handful of loads and stores on one set; with a
// few workers and 64 shards two threads meet on a shard in ~1/64 of operations, and then wait
// tens of nanoseconds.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "agent/util/spin_lock.hpp"

namespace elasticdns::agent {

/// `Entry` has `uint64_t key` and `bool used` (false in a default-constructed Entry).
template <typename Entry>
class ShardedTable {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kSetsPerShard = 256;
  static constexpr size_t kWays = 4;
  static constexpr size_t kCapacity = kShards * kSetsPerShard * kWays;  // 65,536 entries
  using Set = std::array<Entry, kWays>;

  ShardedTable() : shards_(std::make_unique<Shard[]>(kShards)) {}

  /// Runs `fn(set)` with the set that holds `key` locked; returns what `fn` returns.
  template <typename Fn>
  auto withSet(uint64_t key, Fn&& fn) const noexcept {
    Shard& s = shards_[key % kShards];
    SpinLock lock(s.lock);
    return fn(s.sets[(key / kShards) % kSetsPerShard]);
  }

  /// The entry of `key` in `set`, or null.
  static Entry* find(Set& set, uint64_t key) noexcept {
    for (Entry& e : set)
      if (e.used && e.key == key) return &e;
    return nullptr;
  }

 private:
  struct alignas(64) Shard {
    std::atomic_flag lock = ATOMIC_FLAG_INIT;
    std::array<Set, kSetsPerShard> sets;
  };
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace elasticdns::agent
