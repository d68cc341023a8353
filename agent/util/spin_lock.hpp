#pragma once
// A spinlock for critical sections of a few loads and stores in the tables the DNS workers
// share (StickyTable, RateLimiter): cheaper than a mutex when two threads rarely meet, and it
// never sleeps. Test-and-test-and-set: waiters spin on a plain load, not on the locked write.
#include <atomic>

namespace elasticdns::agent {

class SpinLock {
 public:
  explicit SpinLock(std::atomic_flag& f) : f_(f) {
    while (f_.test_and_set(std::memory_order_acquire)) {
      while (f_.test(std::memory_order_relaxed)) {
      }
    }
  }
  ~SpinLock() { f_.clear(std::memory_order_release); }
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

 private:
  std::atomic_flag& f_;
};

}  // namespace elasticdns::agent
