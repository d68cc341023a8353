#pragma once
// The decision for one DNS message, without sockets: (bytes, peer, now) → reply | forward |
// drop. Parse, allow list (REFUSED), FORMERR/NOTIMP/BADVERS, the caller's identity, the zone's
// answer (with EDE 3 while stale, TC over UDP), else the forward limit (REFUSED) and a hand-off
// to the forwarder. The server (server.hpp) owns the sockets and calls one handler per worker.
//
// On the query path: no allocation, no exception, no syscall, and no lock but the shared
// tables' shard spinlocks; the counters are per worker (no shared cache line written per query).
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "agent/dns/caller_identity.hpp"
#include "agent/dns/rate_limiter.hpp"
#include "agent/dns/sticky_table.hpp"
#include "agent/dns/topology_store.hpp"
#include "agent/dns/wire.hpp"
#include "agent/dns/zone.hpp"
#include "agent/util/cidr.hpp"
#include "agent/util/log_limit.hpp"
#include "agent/util/snapshot.hpp"
#include "elasticdns/metrics.hpp"

namespace elasticdns::agent {

/// The query types and rcodes the metrics count separately (the last index is "other").
constexpr std::array<uint16_t, 6> kCountedTypes = {wire::kTypeA,   wire::kTypeAaaa, wire::kTypeSrv,
                                                   wire::kTypeSoa, wire::kTypeTxt,  wire::kTypeAny};
constexpr std::array<const char*, 7> kTypeNames = {"A",   "AAAA", "SRV",  "SOA",
                                                   "TXT", "ANY",  "other"};
constexpr std::array<const char*, 7> kRcodeNames = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                    "NOTIMP",  "REFUSED", "other"};
constexpr size_t kCountedTypeSlots = kTypeNames.size();
constexpr size_t kCountedRcodeSlots = kRcodeNames.size();
size_t typeIndex(uint16_t type);
size_t rcodeIndex(uint16_t rcode);

/// One worker's counters: written by that worker only, read by the scraper.
struct alignas(64) QueryStats {
  std::atomic<uint64_t> queries[kCountedTypeSlots][kCountedRcodeSlots] = {};
  std::atomic<uint64_t> callers_known{0}, callers_unknown{0}, forwarded{0}, dropped{0},
      truncated{0}, forward_limited{0};
  metrics::Histogram* latency = nullptr;
  /// A relaxed load and store, not an atomic read-modify-write: there is one writer.
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

/// The networks whose queries are answered, as (network, mask) pairs of 128-bit keys (IPv4 as
/// v4-mapped IPv6).
struct AllowList {
  std::vector<std::pair<Zone::AddrKey, Zone::AddrKey>> nets;
  bool allows(const Zone::AddrKey& k) const {
    for (const auto& [n, m] : nets)
      if ((k.hi & m.hi) == n.hi && (k.lo & m.lo) == n.lo) return true;
    return false;
  }
  static std::shared_ptr<const AllowList> from(const std::vector<Cidr>& cidrs);
};

/// What to do with one message.
struct QueryDecision {
  enum class Action : uint8_t { kDrop, kReply, kForward };
  Action action = Action::kDrop;
  size_t length = 0;  // kReply: the reply's bytes in `out`
  size_t limit = 0;   // kForward: the size the forwarded reply may have
};

/// The state every worker's handler shares.
struct QueryHandlerShared {
  QueryHandlerShared(TopologyStore& store, double forward_per_second, double forward_burst,
                     const std::vector<Cidr>& allow_networks)
      : store(store),
        forward_limit(forward_per_second, forward_burst),
        allow(AllowList::from(allow_networks)) {}

  TopologyStore& store;
  CallerIdentity* identity = nullptr;  // set before the first query; outlives the handlers
  StickyTable sticky;
  RateLimiter forward_limit;
  Snapshot<AllowList> allow;
  std::atomic<bool> stale{false};       // answers carry EDE 3 (Stale Answer)
  std::atomic<bool> forwarding{false};  // names outside the zone are forwarded, else REFUSED
  LogLimit refused_log, formerr_log, limited_log;
};

class QueryHandler {
 public:
  using Clock = std::chrono::steady_clock;

  /// `rotation_seed` starts this handler's answer rotation (distinct per worker).
  QueryHandler(QueryHandlerShared& shared, uint32_t rotation_seed);

  /// Re-read the published zone and allow list if they changed (once per batch of queries).
  void refresh();

  /// Decide about `packet` from `peer` at `now` (the sticky window's clock). A reply is written
  /// to `out` (at least kMaxUdpPayload bytes, kMaxMessageSize for TCP). `query` receives what
  /// parsing found: on kForward, what the forwarder and relayReply() take.
  QueryDecision handle(std::span<const uint8_t> packet, const Peer& peer, Clock::time_point now,
                       std::span<uint8_t> out, wire::Query& query) noexcept;

  const QueryStats& stats() const { return stats_; }
  QueryStats& stats() { return stats_; }

 private:
  size_t refuse(const wire::Query& q, std::span<const uint8_t> packet, std::span<uint8_t> out);
  QueryDecision forwardOrRefuse(const wire::Query& q, std::span<const uint8_t> packet,
                                const Peer& peer, std::string_view container_id,
                                Clock::time_point now, size_t limit, std::span<uint8_t> out);
  void count(const wire::Query& q, uint16_t rcode) {
    QueryStats::add(stats_.queries[typeIndex(q.qtype)][rcodeIndex(rcode)]);
  }

  QueryHandlerShared& shared_;
  TopologyStore::Reader zone_reader_;
  Snapshot<AllowList>::Reader allow_reader_;
  const Zone* zone_ = nullptr;
  const AllowList* allow_ = nullptr;
  uint32_t rotation_;
  QueryStats stats_;
};

/// Forwarded queries by type and the rcode sent back; written by the forwarder's thread.
struct ForwardedStats {
  std::atomic<uint64_t> queries[kCountedTypeSlots][kCountedRcodeSlots] = {};
  metrics::Counter* servfail = nullptr;  // no upstream answered (set before any query)
};

/// The reply to send for a forwarded query (`query` parsed from `packet`; `limit` from its
/// QueryDecision): SERVFAIL when the forwarder failed (empty `reply`), a TC answer when the
/// upstream's reply exceeds `limit`. Returns 0 when `reply` can be sent as it is. Counts it.
size_t relayReply(const wire::Query& query, std::span<const uint8_t> packet, size_t limit,
                  std::span<const uint8_t> reply, std::span<uint8_t> out,
                  ForwardedStats& stats) noexcept;

}  // namespace elasticdns::agent
