#include "central/watch.hpp"

#include <iterator>
#include <vector>

namespace elasticdns::central {
namespace {

template <typename M, typename K>
void eraseEntry(M& m, const K& key, uint64_t id) {
  auto [b, e] = m.equal_range(key);
  for (auto it = b; it != e; ++it)
    if (it->second == id) {
      m.erase(it);
      return;
    }
}

}  // namespace

std::optional<uint64_t> WatchRegistry::add(uint64_t since, Clock::time_point deadline,
                                           Notify notify) {
  if (watchers_.size() >= max_) return std::nullopt;
  uint64_t id = next_id_++;
  watchers_.emplace(id, Watcher{since, deadline, std::move(notify)});
  by_deadline_.emplace(deadline, id);
  by_since_.emplace(since, id);
  return id;
}

bool WatchRegistry::remove(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return false;
  eraseEntry(by_deadline_, it->second.deadline, id);
  eraseEntry(by_since_, it->second.since, id);
  watchers_.erase(it);
  return true;
}

size_t WatchRegistry::notify(uint64_t index, const BodyFor& body) {
  // Take every due watcher out first, then call them: a callback may add or remove watchers.
  auto end = by_since_.lower_bound(index);
  std::vector<std::pair<uint64_t, Notify>> due;  // since, callback
  due.reserve(static_cast<size_t>(std::distance(by_since_.begin(), end)));
  for (auto it = by_since_.begin(); it != end; ++it) {
    auto w = watchers_.find(it->second);
    eraseEntry(by_deadline_, w->second.deadline, it->second);
    due.emplace_back(it->first, std::move(w->second.notify));
    watchers_.erase(w);
  }
  by_since_.erase(by_since_.begin(), end);
  std::optional<uint64_t> built_for;
  Body b;
  for (auto& [since, fn] : due) {
    if (built_for != since) {
      b = body(since);
      built_for = since;
    }
    fn(b);
  }
  return due.size();
}

size_t WatchRegistry::expire(Clock::time_point now, const BodyFor& body) {
  std::vector<uint64_t> due;
  for (auto it = by_deadline_.begin(); it != by_deadline_.end() && it->first <= now; ++it)
    due.push_back(it->second);
  std::map<uint64_t, Body> bodies;
  size_t n = 0;
  for (uint64_t id : due) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) continue;
    uint64_t since = it->second.since;
    Notify fn = std::move(it->second.notify);
    remove(id);
    auto [b, inserted] = bodies.try_emplace(since);
    if (inserted) b->second = body(since);
    fn(b->second);
    ++n;
  }
  return n;
}

std::optional<WatchRegistry::Clock::time_point> WatchRegistry::nextDeadline() const {
  if (by_deadline_.empty()) return std::nullopt;
  return by_deadline_.begin()->first;
}

}  // namespace elasticdns::central
