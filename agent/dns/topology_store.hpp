#pragma once
// The current zone, swapped atomically when a snapshot (or a reloaded config) arrives.
//
// Readers never block and, in the steady state, touch no shared cache line that a writer or
// another reader writes: each reader keeps its own shared_ptr and only re-loads it when the
// version counter moved (one relaxed-then-acquire load per batch of queries).
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "agent/dns/zone.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::agent {

class TopologyStore {
 public:
  /// Build the zone of `topology` under `config` and publish it. On error nothing changes.
  Result<uint64_t> publish(std::shared_ptr<const model::Topology> topology,
                           const ZoneConfig& config) {
    std::lock_guard lock(writer_);
    auto zone = Zone::build(*topology, config);
    if (!zone) return zone.error();
    std::atomic_store_explicit(&zone_, zone.value(), std::memory_order_release);
    topology_ = std::move(topology);
    config_ = config;
    version_.fetch_add(1, std::memory_order_release);
    return topology_->index;
  }
  /// Re-build the current topology under a new config (SIGHUP).
  Result<uint64_t> reconfigure(const ZoneConfig& config) {
    std::shared_ptr<const model::Topology> t;
    {
      std::lock_guard lock(writer_);
      t = topology_;
    }
    if (!t) t = std::make_shared<const model::Topology>();
    return publish(std::move(t), config);
  }
  std::shared_ptr<const Zone> current() const {
    return std::atomic_load_explicit(&zone_, std::memory_order_acquire);
  }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  /// A reader's cached view: refresh() is cheap when nothing changed.
  class Reader {
   public:
    explicit Reader(const TopologyStore& store) : store_(store) {}
    const Zone* refresh() {
      uint64_t v = store_.version();
      if (v != seen_ || !zone_) {
        zone_ = store_.current();
        seen_ = v;
      }
      return zone_.get();
    }

   private:
    const TopologyStore& store_;
    std::shared_ptr<const Zone> zone_;
    uint64_t seen_ = ~uint64_t{0};
  };

 private:
  std::mutex writer_;  // publishers only; readers never take it
  std::shared_ptr<const Zone> zone_;
  std::shared_ptr<const model::Topology> topology_;
  ZoneConfig config_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace elasticdns::agent
