#pragma once
// The agents' latest reports (the ElasticDNS-Agent header of their long-polls), in memory only:
// never in the store, lost on restart and rebuilt within one long-poll. Pure: the router passes
// the time. An agent is "seen" while it holds a long-poll or within `ttl` of its last request
// or answered long-poll; reports unseen for kForgetAfterTtls × ttl are dropped.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "central/status.hpp"
#include "elasticdns/agent_report.hpp"

namespace elasticdns::central {

constexpr std::chrono::seconds kDefaultAgentReportTtl{60};
constexpr size_t kMaxAgentReports = 100'000;  // 10x the default max_watchers
constexpr int kForgetAfterTtls = 60;

class AgentReports {
 public:
  using Clock = std::chrono::steady_clock;
  using WallClock = std::chrono::system_clock;

  explicit AgentReports(std::chrono::milliseconds ttl, size_t max = kMaxAgentReports)
      : ttl_(ttl), max_(max) {}

  /// Records a report received at `now`. At the limit, the report seen longest ago gives way.
  void update(report::AgentReport report, Clock::time_point now, WallClock::time_point wall);
  /// The agent of `server` now waits in long-poll `watch_id`.
  void holdsWatch(const std::string& server, uint64_t watch_id);
  /// Long-poll `watch_id` ended: answered (the agent was there until `now`), or its client hung
  /// up (the agent went away).
  void watchEnded(uint64_t watch_id, bool answered, Clock::time_point now,
                  WallClock::time_point wall);
  /// Every report, for the status; drops those unseen for kForgetAfterTtls × ttl first.
  std::vector<status::AgentView> views(Clock::time_point now);
  /// Bumped when something a reader of the status sees changed (a report's fields, an agent
  /// that appeared or hung up); not for a mere renewal.
  uint64_t generation() const { return generation_; }
  std::chrono::milliseconds ttl() const { return ttl_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    report::AgentReport report;
    Clock::time_point last_seen;
    WallClock::time_point last_seen_wall;
    std::optional<uint64_t> watch;
  };
  bool seen(const Entry& e, Clock::time_point now) const {
    return e.watch || now - e.last_seen <= ttl_;
  }
  void evictOldest();

  std::chrono::milliseconds ttl_;
  size_t max_;
  uint64_t generation_ = 0;
  std::map<std::string, Entry> entries_;                // by server
  std::unordered_map<uint64_t, std::string> by_watch_;  // long-poll id → server
};

}  // namespace elasticdns::central
