#include "central/watch.hpp"

#include <iterator>
#include <utility>
#include <vector>

namespace elasticdns::central {

std::optional<uint64_t> WatchRegistry::add(uint64_t since, Clock::time_point deadline,
                                           Notify notify) {
  if (watchers_.size() >= max_) return std::nullopt;
  uint64_t id = next_id_++;
  watchers_.emplace(id, Watcher{since, deadline, std::move(notify),
                                by_deadline_.emplace(deadline, id), by_since_.emplace(since, id)});
  return id;
}

bool WatchRegistry::remove(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return false;
  by_deadline_.erase(it->second.at_deadline);
  by_since_.erase(it->second.at_since);
  watchers_.erase(it);
  return true;
}

size_t WatchRegistry::notify(uint64_t index, const BodyFor& body) {
  // The callbacks run first and the bookkeeping after, so that a fan-out's last response goes
  // out as early as it can. The due watchers are chosen first: a callback may add or remove
  // watchers (one it removes is skipped; one it adds waits for the next commit).
  auto end = by_since_.lower_bound(index);
  std::vector<uint64_t> due;
  due.reserve(static_cast<size_t>(std::distance(by_since_.begin(), end)));
  for (auto it = by_since_.begin(); it != end; ++it) due.push_back(it->second);
  std::optional<uint64_t> built_for;
  Body b;
  size_t n = 0;
  for (uint64_t id : due) {
    auto w = watchers_.find(id);
    if (w == watchers_.end() || !w->second.notify) continue;
    uint64_t since = w->second.since;
    Notify fn = std::exchange(w->second.notify, nullptr);  // a watcher is notified once
    if (built_for != since) {
      b = body(since);
      built_for = since;
    }
    fn(b);
    ++n;
  }
  for (uint64_t id : due) remove(id);
  return n;
}

size_t WatchRegistry::expire(Clock::time_point now, const BodyFor& body) {
  std::vector<uint64_t> due;
  for (auto it = by_deadline_.begin(); it != by_deadline_.end() && it->first <= now; ++it)
    due.push_back(it->second);
  std::map<uint64_t, Body> bodies;
  size_t n = 0;
  for (uint64_t id : due) {
    auto it = watchers_.find(id);
    if (it == watchers_.end() || !it->second.notify) continue;
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
