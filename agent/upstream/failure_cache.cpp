#include "agent/upstream/failure_cache.hpp"

#include <algorithm>

namespace elasticdns::agent {

FailureCache::FailureCache(std::chrono::seconds initial, std::chrono::seconds max,
                           size_t max_entries)
    : initial_(initial), max_(std::max(initial, max)), max_entries_(max_entries) {}

bool FailureCache::held(const std::string& key, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  return it != entries_.end() && now < it->second.until;
}

std::chrono::seconds FailureCache::fail(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && now < it->second.until + it->second.hold) {
    Entry& e = it->second;  // still failing: back off
    e.hold = std::min(e.hold * 2, max_);
    e.until = now + e.hold;
    return e.hold;
  }
  if (it == entries_.end() && entries_.size() >= max_entries_) {
    sweep(now);
    if (entries_.size() >= max_entries_) entries_.erase(entries_.begin());
  }
  entries_[key] = Entry{now + initial_, initial_};
  return initial_;
}

void FailureCache::succeed(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

size_t FailureCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void FailureCache::sweep(Clock::time_point now) {
  std::erase_if(entries_,
                [now](const auto& kv) { return now >= kv.second.until + kv.second.hold; });
}

}  // namespace elasticdns::agent
