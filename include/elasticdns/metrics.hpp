#pragma once
// Prometheus text exposition (format 0.0.4) for both daemons. Metrics are registered at
// start-up (not on a hot path) and live as long as the Registry; updating one is a relaxed
// atomic add, with no lock and no allocation.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace elasticdns::metrics {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

/// Fixed upper bounds (in the metric's unit), cumulative on render.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void observe(double v) { observe(v, 1); }
  /// `n` observations of the same value (a batch of queries answered together).
  void observe(double v, uint64_t n) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    counts_[i].fetch_add(n, std::memory_order_relaxed);
    sum_micro_.fetch_add(static_cast<uint64_t>(v * 1e6) * n, std::memory_order_relaxed);
  }
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t countAt(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  double sum() const {
    return static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;
  std::atomic<uint64_t> sum_micro_{0};
};

class Registry {
 public:
  /// `labels` is the label set without braces, e.g. `type="A",rcode="NOERROR"`, or empty.
  Counter& counter(const std::string& name, const std::string& help,
                   const std::string& labels = {}) {
    std::lock_guard lock(mu_);
    auto& c = counters_.emplace_back();
    entries_.push_back(
        {name, help, labels, "counter", [&c] { return double(c.value()); }, nullptr});
    return c;
  }
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = {}) {
    std::lock_guard lock(mu_);
    auto& g = gauges_.emplace_back();
    entries_.push_back({name, help, labels, "gauge", [&g] { return g.value(); }, nullptr});
    return g;
  }
  /// A gauge computed when scraped (e.g. snapshot age).
  void callback(const std::string& name, const std::string& help, std::function<double()> fn,
                const std::string& type = "gauge", const std::string& labels = {}) {
    std::lock_guard lock(mu_);
    entries_.push_back({name, help, labels, type, std::move(fn), nullptr});
  }
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                       const std::string& labels = {}) {
    std::lock_guard lock(mu_);
    auto& h = histograms_.emplace_back(std::move(bounds));
    entries_.push_back({name, help, labels, "histogram", nullptr, &h});
    return h;
  }

  std::string render() const {
    std::lock_guard lock(mu_);
    std::string out;
    std::string last;
    for (const auto& e : entries_) {
      if (e.name != last) {
        out += "# HELP " + e.name + " " + e.help + "\n# TYPE " + e.name + " " + e.type + "\n";
        last = e.name;
      }
      if (e.hist) {
        uint64_t cum = 0;
        const auto& b = e.hist->bounds();
        std::string sep = e.labels.empty() ? "" : ",";
        for (size_t i = 0; i <= b.size(); ++i) {
          cum += e.hist->countAt(i);
          std::string le = i < b.size() ? num(b[i]) : "+Inf";
          out += e.name + "_bucket{" + e.labels + sep + "le=\"" + le + "\"} " +
                 std::to_string(cum) + "\n";
        }
        out += e.name + "_sum" + braces(e.labels) + " " + num(e.hist->sum()) + "\n";
        out += e.name + "_count" + braces(e.labels) + " " + std::to_string(cum) + "\n";
      } else {
        out += e.name + braces(e.labels) + " " + num(e.read()) + "\n";
      }
    }
    return out;
  }

 private:
  struct Entry {
    std::string name, help, labels, type;
    std::function<double()> read;
    const Histogram* hist;
  };
  static std::string braces(const std::string& l) { return l.empty() ? "" : "{" + l + "}"; }
  static std::string num(double v) {
    if (v == static_cast<double>(static_cast<int64_t>(v)))
      return std::to_string(static_cast<int64_t>(v));
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  mutable std::mutex mu_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::vector<Entry>
      entries_;  // registration order; same-name entries are kept adjacent by callers
};

}  // namespace elasticdns::metrics
