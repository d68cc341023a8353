#include "central/agent_reports.hpp"

#include <algorithm>

namespace elasticdns::central {

void AgentReports::update(report::AgentReport r, Clock::time_point now,
                          WallClock::time_point wall) {
  auto it = entries_.find(r.server);
  if (it == entries_.end()) {
    if (entries_.size() >= max_) evictOldest();
    it = entries_.emplace(r.server, Entry{}).first;
    ++generation_;
  } else {
    // The sync age changes with every request; everything else is news.
    report::AgentReport old = it->second.report;
    old.sync_age_ms = r.sync_age_ms;
    if (!(old == r) || !seen(it->second, now)) ++generation_;
  }
  Entry& e = it->second;
  e.report = std::move(r);
  e.last_seen = now;
  e.last_seen_wall = wall;
}

void AgentReports::holdsWatch(const std::string& server, uint64_t watch_id) {
  auto it = entries_.find(server);
  if (it == entries_.end()) return;
  if (it->second.watch) by_watch_.erase(*it->second.watch);
  it->second.watch = watch_id;
  by_watch_[watch_id] = server;
}

void AgentReports::watchEnded(uint64_t watch_id, bool answered, Clock::time_point now,
                              WallClock::time_point wall) {
  auto w = by_watch_.find(watch_id);
  if (w == by_watch_.end()) return;
  auto it = entries_.find(w->second);
  by_watch_.erase(w);
  if (it == entries_.end() || it->second.watch != watch_id) return;
  it->second.watch.reset();
  it->second.last_seen = now;
  it->second.last_seen_wall = wall;
  if (!answered) ++generation_;
}

std::vector<status::AgentView> AgentReports::views(Clock::time_point now) {
  const auto forget = ttl_ * kForgetAfterTtls;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.watch && now - it->second.last_seen > forget)
      it = entries_.erase(it);
    else
      ++it;
  }
  std::vector<status::AgentView> out;
  out.reserve(entries_.size());
  for (const auto& [server, e] : entries_) {
    status::AgentView v;
    v.report = e.report;
    v.seen = seen(e, now);
    v.polling = e.watch.has_value();
    v.last_seen_seconds = std::chrono::duration<double>(now - e.last_seen).count();
    v.last_seen_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(e.last_seen_wall.time_since_epoch())
            .count();
    out.push_back(std::move(v));
  }
  return out;
}

void AgentReports::evictOldest() {
  auto oldest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (!it->second.watch &&
        (oldest == entries_.end() || it->second.last_seen < oldest->second.last_seen))
      oldest = it;
  if (oldest == entries_.end()) oldest = entries_.begin();  // all polling: any will do
  if (oldest->second.watch) by_watch_.erase(*oldest->second.watch);
  entries_.erase(oldest);
  ++generation_;
}

}  // namespace elasticdns::central
