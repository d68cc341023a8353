#include "agent/dns/rate_limiter.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

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
  if (enabled()) buckets_.emplace();
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
  return buckets_->withSet(caller, [&](Table::Set& set) { return take(set, caller, now); });
}

bool RateLimiter::take(Table::Set& set, uint64_t caller, TimePoint now) noexcept {
  Bucket* bucket = Table::find(set, caller);
  if (bucket == nullptr) {  // a new caller (or one evicted since) starts with a full bucket
    Bucket* victim = &set[0];
    for (Bucket& b : set)
      if (!b.used || (victim->used && b.last < victim->last)) victim = &b;
    *victim = Bucket{caller, burst_, now, true};
    bucket = victim;
  } else if (now > bucket->last) {
    double elapsed = std::chrono::duration<double>(now - bucket->last).count();
    bucket->tokens = std::min(burst_, bucket->tokens + elapsed * per_second_);
    bucket->last = now;
  }
  if (bucket->tokens < 1) return false;
  bucket->tokens -= 1;
  return true;
}

}  // namespace elasticdns::agent
