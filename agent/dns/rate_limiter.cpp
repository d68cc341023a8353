#include "agent/dns/rate_limiter.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "agent/util/spin_lock.hpp"

namespace elasticdns::agent {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;  // FNV-1a 64 (draft-eastlake-fnv)
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

}  // namespace

RateLimiter::RateLimiter(double per_second, double burst)
    : per_second_(per_second), burst_(std::max(burst, 1.0)) {
  if (enabled()) shards_ = std::make_unique<Shard[]>(kShards);
}

uint64_t RateLimiter::callerKey(std::string_view container_id,
                                const sockaddr_storage& from) noexcept {
  // The kind byte keeps a container id from ever meeting an address with the same bytes.
  if (!container_id.empty())
    return fnv(fnv(kFnvOffset, "c", 1), container_id.data(), container_id.size());
  if (from.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &from, sizeof sin);
    return fnv(fnv(kFnvOffset, "4", 1), &sin.sin_addr, sizeof sin.sin_addr);
  }
  if (from.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &from, sizeof sin6);
    return fnv(fnv(kFnvOffset, "6", 1), &sin6.sin6_addr, sizeof sin6.sin6_addr);
  }
  return kFnvOffset;
}

bool RateLimiter::allow(uint64_t caller, TimePoint now) noexcept {
  if (!enabled()) return true;
  Shard& s = shards_[caller % kShards];
  SpinLock lock(s.lock);
  Set& set = s.sets[(caller / kShards) % kSetsPerShard];
  Entry* entry = nullptr;
  Entry* victim = &set.ways[0];
  for (Entry& e : set.ways) {
    if (e.used && e.key == caller) {
      entry = &e;
      break;
    }
    if (!e.used || (victim->used && e.last < victim->last)) victim = &e;
  }
  if (!entry) {  // a new caller (or one evicted since) starts with a full bucket
    *victim = Entry{caller, burst_, now, true};
    entry = victim;
  } else if (now > entry->last) {
    double elapsed = std::chrono::duration<double>(now - entry->last).count();
    entry->tokens = std::min(burst_, entry->tokens + elapsed * per_second_);
    entry->last = now;
  }
  if (entry->tokens < 1) return false;
  entry->tokens -= 1;
  return true;
}

}  // namespace elasticdns::agent
