#pragma once
// The current zone, swapped atomically when a snapshot (or a reloaded config) arrives: a
// Snapshot (util/snapshot.hpp), so readers never lock and re-load only when it changed.
#include <cstdint>
#include <memory>
#include <mutex>

#include "agent/dns/zone.hpp"
#include "agent/util/snapshot.hpp"
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
    topology_ = std::move(topology);
    config_ = config;
    zones_.publish(zone.value());
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
  std::shared_ptr<const Zone> current() const { return zones_.current(); }
  uint64_t version() const { return zones_.version(); }

  /// A reader's cached view: refresh() is cheap when nothing changed.
  class Reader : public Snapshot<Zone>::Reader {
   public:
    explicit Reader(const TopologyStore& store) : Snapshot<Zone>::Reader(store.zones_) {}
  };

 private:
  std::mutex writer_;  // publishers only; readers never take it
  Snapshot<Zone> zones_;
  std::shared_ptr<const model::Topology> topology_;
  ZoneConfig config_;
};

}  // namespace elasticdns::agent
