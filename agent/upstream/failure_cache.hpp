#pragma once
// The forwarder's cache of resolution failures (RFC 9520): a question for which every upstream
// timed out, failed (SERVFAIL) or refused is answered SERVFAIL at once, without asking upstream,
// until its hold expires. The first failure is held `initial`; a question that fails again
// within as long again after its hold ended is held twice as long, up to `max` (RFC 9520 3.2:
// at least 1 s, at most 5 minutes, with backoff for persistent failures). A usable reply forgets
// the question's failures.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace elasticdns::agent {

class FailureCache {
 public:
  using Clock = std::chrono::steady_clock;

  /// `initial` <= `max`, both at least 1 s. At most `max_entries` questions are remembered.
  FailureCache(std::chrono::seconds initial, std::chrono::seconds max, size_t max_entries);

  /// Whether `key` (AnswerCache::keyOf) is held at `now`: answer SERVFAIL, ask no upstream.
  bool held(const std::string& key, Clock::time_point now) const;
  /// A resolution failure of `key` at `now`. Returns how long it is held.
  std::chrono::seconds fail(const std::string& key, Clock::time_point now);
  /// A usable reply for `key`: its failures are forgotten.
  void succeed(const std::string& key);
  size_t size() const;

 private:
  struct Entry {
    Clock::time_point until;    // held until then
    std::chrono::seconds hold;  // the last hold, doubled by the next failure
  };
  /// Drops the entries whose failures are forgotten (hold ended more than a hold ago).
  void sweep(Clock::time_point now);

  const std::chrono::seconds initial_, max_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace elasticdns::agent
