#pragma once
// Long-poll watchers of GET /v1/topology?index=N&wait=D: each waits until the index passes its
// N or its deadline. The registry is bounded and pure (no sockets, no timers): the HTTP server
// arms one timer for nextDeadline() and calls expire(); commits call notify().
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace elasticdns::central {

class WatchRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  using Body = std::shared_ptr<const std::string>;
  /// Called once with the response body for the watcher's `since`.
  using Notify = std::function<void(Body)>;
  /// Builds the body for watchers waiting since `since` (called once per distinct value).
  using BodyFor = std::function<Body(uint64_t since)>;

  explicit WatchRegistry(size_t max_watchers) : max_(max_watchers) {}

  /// Registers a watcher; nullopt when the registry is full.
  std::optional<uint64_t> add(uint64_t since, Clock::time_point deadline, Notify notify);
  /// Drops a watcher without notifying it (its client went away). False if already gone.
  bool remove(uint64_t id);
  /// Notifies and drops every watcher whose `since` is below `index`. Returns how many. A
  /// callback may add watchers (they wait for the next call) and remove them (a due one it
  /// removes is not notified).
  size_t notify(uint64_t index, const BodyFor& body);
  /// Notifies and drops every watcher whose deadline is at or before `now`.
  size_t expire(Clock::time_point now, const BodyFor& body);
  std::optional<Clock::time_point> nextDeadline() const;
  size_t size() const { return watchers_.size(); }
  size_t capacity() const { return max_; }

 private:
  using ByDeadline = std::multimap<Clock::time_point, uint64_t>;  // deadline → id
  using BySince = std::multimap<uint64_t, uint64_t>;              // since → id
  struct Watcher {
    uint64_t since;
    Clock::time_point deadline;
    Notify notify;
    // Its entries in the indexes: removal erases them without a search (many watchers share
    // one `since`).
    ByDeadline::iterator at_deadline;
    BySince::iterator at_since;
  };
  size_t max_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Watcher> watchers_;  // by id
  ByDeadline by_deadline_;
  BySince by_since_;
};

}  // namespace elasticdns::central
