#include "elasticdns/policy.hpp"

#include <algorithm>

namespace elasticdns::policy {

size_t chooseVersion(std::span<const uint64_t> generations, uint64_t caller_generation,
                     bool versioned) noexcept {
  const size_t latest = generations.size() - 1;
  if (!versioned || caller_generation == 0) return latest;
  // First generation > caller's: the one before it is the caller's own or the newest older.
  auto it = std::upper_bound(generations.begin(), generations.end(), caller_generation);
  if (it == generations.begin()) return latest;  // every version is newer than the caller's
  return static_cast<size_t>(it - generations.begin()) - 1;
}

std::optional<size_t> chooseClosest(std::span<const uint32_t> servers,
                                    uint32_t caller_server) noexcept {
  for (size_t i = 0; i < servers.size(); ++i)
    if (servers[i] == caller_server) return i;
  return std::nullopt;
}

StickyChoice chooseSticky(const std::optional<Pin>& pin, std::span<const uint64_t> members,
                          uint32_t rotation, TimePoint now, std::chrono::seconds window,
                          std::chrono::seconds ttl) noexcept {
  StickyChoice c;
  bool kept = false;
  if (pin && pin->expires > now) {
    for (size_t i = 0; i < members.size(); ++i) {
      if (members[i] == pin->member) {
        c.index = i;
        c.pin = *pin;
        kept = true;
        break;
      }
    }
  }
  if (!kept) {
    c.index = rotation % members.size();
    c.pin = Pin{members[c.index], now + window};
  }
  auto left = std::chrono::duration_cast<std::chrono::seconds>(c.pin.expires - now);
  c.ttl = std::min(ttl, left);
  if (c.ttl.count() < 0) c.ttl = std::chrono::seconds(0);
  return c;
}

}  // namespace elasticdns::policy
