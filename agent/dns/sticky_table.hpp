#pragma once
// Sticky pins, (caller, service) → member, shared by the DNS worker threads.
//
// Why shared and not per thread: SO_REUSEPORT spreads a caller's queries over the workers by
// source port, and a resolver uses a new source port per query, so per-thread tables would
// give one caller different pins. A ShardedTable (util/sharded_table.hpp): no allocation on the
// query path, and a flood of callers evicts the pin expiring first.
#include <cstdint>
#include <optional>

#include "agent/util/sharded_table.hpp"
#include "elasticdns/policy.hpp"

namespace elasticdns::agent {

class StickyTable {
 public:
  static constexpr size_t kCapacity = 65'536;  // pins

  /// The pin stored under `key` (a hash of caller and service), if any.
  std::optional<policy::Pin> find(uint64_t key) const noexcept {
    return table_.withSet(key, [key](Table::Set& set) -> std::optional<policy::Pin> {
      if (const Entry* e = Table::find(set, key)) return policy::Pin{e->member, e->expires};
      return std::nullopt;
    });
  }

  /// Store `pin` under `key`: replaces the same key, else a free or expired way, else the way
  /// expiring first.
  void store(uint64_t key, const policy::Pin& pin, policy::TimePoint now) noexcept {
    table_.withSet(key, [&](Table::Set& set) {
      Entry* victim = Table::find(set, key);
      if (victim == nullptr) {
        victim = &set[0];
        for (Entry& e : set) {
          if (!e.used || e.expires <= now) {
            victim = &e;
          } else if (victim->used && victim->expires > now && e.expires < victim->expires) {
            victim = &e;
          }
        }
      }
      *victim = Entry{key, pin.member, pin.expires, true};
    });
  }

 private:
  struct Entry {
    uint64_t key = 0;
    uint64_t member = 0;
    policy::TimePoint expires;
    bool used = false;
  };
  using Table = ShardedTable<Entry>;
  static_assert(Table::kCapacity == kCapacity);
  Table table_;
};

}  // namespace elasticdns::agent
