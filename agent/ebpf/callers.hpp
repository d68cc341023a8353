#pragma once
// Who is asking: peer socket -> cgroup id (what the egress program recorded) -> container id
// (from the cgroup path). The socket lookup reads the mmap'ed identity slots without a syscall
// and falls back to one bpf() lookup in the LRU map when the slot does not hold the peer.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/dns/caller_identity.hpp"
#include "elasticdns/bpf_abi.h"
#include "elasticdns/metrics.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// Default container id patterns (one capture group each), tried in order on the cgroup path
/// relative to the containers' parent cgroup.
inline constexpr const char* kDefaultContainerIdPatterns[] = {
    R"(docker-([0-9a-f]{64})\.scope(?=/|$))",          // docker, systemd cgroup driver
    R"((?:^|/)docker/([0-9a-f]{64})(?=/|$))",          // docker, cgroupfs driver
    R"(cri-containerd-([0-9a-f]{64})\.scope(?=/|$))",  // containerd / CRI (systemd driver)
    R"(libpod-([0-9a-f]{64})\.scope(?=/|$))",          // podman
    R"(crio-([0-9a-f]{64})\.scope(?=/|$))",            // CRI-O
};

/// The container id of a cgroup from its path relative to the containers' parent cgroup
/// (e.g. "system.slice/docker-<id>.scope"): the first pattern that matches; else the first
/// path component (one cgroup directory per container, named by the container id, as the
/// tests and the multi-host harness do); empty for the parent itself.
std::string containerIdFromCgroupPath(const std::vector<std::regex>& patterns,
                                      std::string_view relative_path);

/// Compiles `container_id_pattern` (empty = the defaults). Error: the regex is invalid or has
/// no capture group.
Result<std::vector<std::regex>> compileContainerIdPatterns(const std::string& pattern);

/// The identity key of a peer: IPv4 as v4-mapped IPv6, the port in network byte order.
edns_sock_key sockKeyOf(const Peer& peer) noexcept;

/// Reads the identity slots (a shared read-only mapping of EDNS_ID_SLOTS edns_id_slot) with the
/// seqlock protocol: the cgroup id when the slot holds exactly `key`, else nullopt.
std::optional<uint64_t> readIdentitySlot(const edns_id_slot* slots,
                                         const edns_sock_key& key) noexcept;

class CallerRegistry final : public CallerIdentity {
 public:
  struct Options {
    std::string cgroup_root;  ///< absolute path of the containers' parent cgroup
    std::vector<std::regex> patterns;
    /// Minimum time between two scans of the cgroup tree triggered by unknown cgroup ids.
    std::chrono::milliseconds rescan_interval{200};
  };

  /// `slots` (may be null) and `lru_fd` (may be -1) are owned by the caller and outlive this.
  CallerRegistry(Options options, const edns_id_slot* slots, int lru_fd,
                 metrics::Registry& metrics);
  ~CallerRegistry() override;

  std::string_view containerIdOf(const Peer& peer) noexcept override;

  /// The cgroup id that sent from `peer`, if recorded. Common case: no syscall.
  std::optional<uint64_t> cgroupOf(const Peer& peer) noexcept;
  /// The container id of a cgroup id; scans the cgroup tree (rate-limited) when it is unknown.
  std::string_view containerIdOfCgroup(uint64_t cgroup_id) noexcept;
  /// Scans the tree now and publishes the new table. Returns the number of cgroups found.
  size_t rescan();

 private:
  using Table = std::unordered_map<uint64_t, std::string_view>;
  std::string_view lookupSlow(uint64_t cgroup_id) noexcept;

  Options options_;
  const edns_id_slot* slots_;
  int lru_fd_;
  // Readers load the current table without a lock. Replaced tables are retired and freed only
  // after kRetireAfter, far longer than any lookup holds the pointer (sub-microsecond).
  std::atomic<const Table*> table_{nullptr};
  std::mutex slow_mu_;  // guards everything below; taken only for unknown cgroup ids
  std::unordered_set<std::string> interned_;  // container ids: stable storage for the views
  std::unique_ptr<const Table> current_;
  // (when it was replaced, table)
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::unique_ptr<const Table>>>
      retired_;
  std::chrono::steady_clock::time_point last_scan_{};
  metrics::Counter* slot_hits_;
  metrics::Counter* lru_hits_;
  metrics::Counter* misses_;
  metrics::Counter* unknown_cgroups_;
  metrics::Counter* rescans_;
};

}  // namespace elasticdns::agent
