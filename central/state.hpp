#pragma once
// Central's authoritative state: the in-memory topology that serves reads, the retained change
// log that serves deltas, and the durable store behind both. A write is validated by the
// caller (the router), turned into changes here, committed to the store in one transaction,
// and only then visible to readers and watchers.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "central/ipam.hpp"
#include "central/store.hpp"
#include "elasticdns/model.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

/// One record to put (already validated) or one key to delete.
///
/// A server put never sets `subnet` (central leases it, see TopologyState) and keeps the stored
/// `wireguard` when its own is absent. `wireguard_only` (op kPut, kind kServer): the write
/// sets only the existing server's `wireguard` to the record's (nullopt: removes it), and is
/// refused with 404 when the server does not exist.
struct WriteItem {
  protocol::ChangeOp op = protocol::ChangeOp::kPut;
  protocol::RecordKind kind = protocol::RecordKind::kServer;
  std::string key;
  std::optional<protocol::Record> record;  // put only
  bool wireguard_only = false;
};

/// What a write became: committed (status 200, `index` is the topology index that includes
/// it, unchanged when the write changed nothing), or refused (`status` 404/400/409/503,
/// `error`; 409: the cluster CIDR has no free subnet for a new server).
struct WriteOutcome {
  int status = 200;
  uint64_t index = 0;
  uint64_t changes = 0;  // how many changes the write produced
  std::optional<Error> error;
  /// Refused because another replica committed first (status 503): nothing was written; the
  /// write can be planned again once that commit is in memory.
  bool retry = false;
};

/// ContainerNet leases (with an Ipam): a server's lease is its record's `subnet`, so it is
/// stored, logged and snapshotted with the record, in the same transaction. A new server gets
/// the lowest free subnet above the one leased last (wrapping to the lowest free), so a
/// subnet just freed is not handed out again at once; a re-put keeps the lease; a delete frees
/// it. At load, every stored lease must be one of the Ipam's subnets and held by one server
/// (else load fails: the cluster CIDR or prefix changed under existing leases), and servers
/// without a lease get one, all in one transaction. Without an Ipam no lease is given and
/// stored ones are kept.
class TopologyState {
 public:
  /// Takes ownership of an opened store and loads it. `retention` bounds the change log.
  static Result<std::unique_ptr<TopologyState>> load(std::unique_ptr<Store> store,
                                                     uint64_t retention,
                                                     std::optional<Ipam> ipam = std::nullopt);

  const model::Topology& topology() const { return topology_; }
  uint64_t index() const { return topology_.index; }
  const std::optional<Ipam>& ipam() const { return ipam_; }
  /// Servers holding a subnet lease.
  size_t leases() const;
  /// Deltas are possible for any `since` from this index up to index().
  uint64_t deltaBase() const { return log_base_; }
  const Store& store() const { return *store_; }

  /// Applies a batch of writes (each a list of items applied all-or-nothing) in one store
  /// transaction (group commit). Returns one outcome per write, in order. Memory changes only
  /// after the commit succeeded; on a store error every write of the batch fails with 503.
  std::vector<WriteOutcome> apply(const std::vector<std::vector<WriteItem>>& writes);

  /// Applies one commit another replica made (seen by the store's watch) when `index` is past
  /// memory's; the change log and the index follow. Records that do not parse are skipped
  /// (the first one's error is returned); everything else is applied.
  std::optional<Error> applyRemote(uint64_t index, const std::vector<RemoteChange>& changes);
  /// Replaces memory with what the store holds now. The change log restarts there, so
  /// watchers behind it get a full snapshot. On error memory is unchanged.
  std::optional<Error> reload();

  /// GET /v1/topology body for a full snapshot (protocol::writeFullResponse), rendered once
  /// per index.
  std::shared_ptr<const std::string> fullBody();
  /// protocol::writeDeltaResponse body with the changes after `since`, or nullptr when the log
  /// no longer holds them all or `since` is ahead of the index.
  std::shared_ptr<const std::string> deltaBody(uint64_t since) const;

 private:
  TopologyState(std::unique_ptr<Store> store, uint64_t retention)
      : store_(std::move(store)), retention_(retention) {}
  // A change before it is committed: the typed record, serialized once when committed.
  struct PlannedChange {
    protocol::ChangeOp op = protocol::ChangeOp::kPut;
    protocol::RecordKind kind = protocol::RecordKind::kServer;
    std::string key;
    std::optional<protocol::Record> record;  // put of a record
    uint64_t generation = 0;                 // put of a version
    uint64_t index = 0;
  };
  // Computes the changes of one write against the current memory state.
  std::optional<Error> plan(const std::vector<WriteItem>& items, uint64_t& next_index,
                            std::vector<PlannedChange>& out, int& status);
  // A container's version, when new, is planned before the container that introduces it.
  // Leases planned by one write, not yet in memory: `last` the latest (or last_leased_);
  // `used` the held ones plus those planned, once a write plans more than one.
  struct LeasePlan {
    std::optional<uint32_t> last;
    size_t planned = 0;
    std::optional<std::set<uint32_t>> used;
  };
  // A server put: its lease and stored wireguard carried over, or a new lease.
  std::optional<Error> planServer(const WriteItem& item, model::Server& s, LeasePlan& leases,
                                  int& status) const;
  // Gives every server without a lease one (load with an Ipam).
  std::optional<Error> leaseUnleasedServers();
  std::optional<Error> planVersion(const model::Container& c, std::vector<PlannedChange>& planned,
                                   int& status) const;
  std::optional<Error> checkPortSharing(const std::vector<PlannedChange>& planned) const;
  void applyToMemory(const PlannedChange& c);
  // The change that puts memory back to what it is now, were `c` applied.
  PlannedChange inverseOf(const PlannedChange& c) const;
  void appendLog(uint64_t index, std::string change);
  // Keeps leased_ and last_leased_ in step with a server change about to reach memory.
  void updateLease(const PlannedChange& c);
  std::optional<Error> rebuildLeases();
  static std::vector<StoredChange> serialize(const std::vector<PlannedChange>& changes);
  // Counts a running container in (or out of) its service's per-version tally and updates
  // the service's latest version: O(log n) per change instead of a scan of the service.
  void countRunning(const model::Container& c, int delta);

  std::unique_ptr<Store> store_;
  uint64_t retention_;
  model::Topology topology_;
  struct VersionTally {
    std::string name;
    size_t running = 0;
  };
  // service → generation → running containers of that version.
  std::map<std::string, std::map<uint64_t, VersionTally>> running_;
  // Serialized changes with their indices, ascending (etcd: several share a commit's index),
  // holding every change after log_base_.
  std::deque<std::pair<uint64_t, std::string>> log_;
  uint64_t log_base_ = 0;
  uint64_t next_generation_ = 1;
  std::optional<Ipam> ipam_;
  std::set<uint32_t> leased_;            // subnet numbers held (with an Ipam)
  std::optional<uint32_t> last_leased_;  // where the next-fit search starts
  std::shared_ptr<const std::string> full_cache_;
  uint64_t full_cache_index_ = UINT64_MAX;
};

}  // namespace elasticdns::central
