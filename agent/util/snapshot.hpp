#pragma once
// Shared state that the query path reads and a reload replaces: an immutable snapshot behind a
// version counter.
//
// Readers never lock and, in the steady state, touch no cache line that a writer or another
// reader writes: each reader keeps its own shared_ptr and re-loads it only when the version
// moved (one acquire load per refresh). Writers publish a complete, validated value; nobody
// ever changes a published one.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace elasticdns::agent {

template <typename T>
class Snapshot {
 public:
  explicit Snapshot(std::shared_ptr<const T> initial = nullptr) : current_(std::move(initial)) {}

  /// Replace the published value; readers see it at their next refresh().
  void publish(std::shared_ptr<const T> next) {
    std::lock_guard lock(mu_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }
  /// The published value (takes the writers' lock: not for the query path, see Reader).
  std::shared_ptr<const T> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  /// One reader's cached copy: refresh() costs one atomic load when nothing changed.
  class Reader {
   public:
    explicit Reader(const Snapshot& source) : source_(source) {}
    const T* refresh() {
      const uint64_t v = source_.version();
      if (v != seen_) {
        value_ = source_.current();
        seen_ = v;
      }
      return value_.get();
    }

   private:
    const Snapshot& source_;
    std::shared_ptr<const T> value_;
    uint64_t seen_ = ~uint64_t{0};
  };

 private:
  mutable std::mutex mu_;  // writers, and readers whose version moved
  std::shared_ptr<const T> current_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace elasticdns::agent
