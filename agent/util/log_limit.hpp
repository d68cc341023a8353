#pragma once
// Rate limiting for log lines that network input can trigger (STYLE 11): at most one line per
// cause per interval; the metrics count every occurrence.
#include <atomic>
#include <chrono>

namespace elasticdns::agent {

class LogLimit {
 public:
  explicit LogLimit(std::chrono::seconds interval = std::chrono::seconds(10))
      : interval_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval)) {}
  /// True when a line may be logged now. Safe from any thread.
  bool allow() {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_.load(std::memory_order_relaxed);
    if (last != 0 && now - last < interval_.count()) return false;
    return last_.compare_exchange_strong(last, now, std::memory_order_relaxed);
  }

 private:
  const std::chrono::steady_clock::duration interval_;
  std::atomic<std::chrono::steady_clock::rep> last_{0};
};

}  // namespace elasticdns::agent
