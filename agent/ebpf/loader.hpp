#pragma once
// The eBPF loader: loads bpf/elasticdns.bpf.c (skeleton), attaches it to the containers' parent
// cgroup, pins links and state maps under BpfConfig::pin_path so that a restarted agent swaps
// its programs in place (bpf_link_update) with no moment where DNS is not redirected, and owns
// the caller registry that reads what the egress program records.
#include <sys/types.h>

#include <atomic>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/dns/caller_identity.hpp"
#include "agent/ebpf/bpf_config.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// Where the redirect programs send the containers' port-53 traffic: the agent's DNS listener.
/// At least one address; `port` in host byte order.
struct RedirectTarget {
  std::optional<boost::asio::ip::address_v4> v4;
  std::optional<boost::asio::ip::address_v6> v6;
  uint16_t port = 0;
};

/// The redirect target for the agent's bound DNS endpoints: the port of the first endpoint, and
/// the first specific IPv4 and IPv6 address bound to that port (0.0.0.0 and :: cannot be a
/// destination; the programs know one port, so list the addresses with the same port).
RedirectTarget redirectTargetOf(const std::vector<boost::asio::ip::udp::endpoint>& bound);

class CallerRegistry;

/// One running attachment. RAII: destruction releases this process's handles but does NOT
/// detach: the pinned links keep redirect and identity working while the agent restarts.
/// detachBpf() is the way to remove everything.
class BpfRuntime {
 public:
  /// Loads, reuses the pinned maps when their ABI version matches, attaches or swaps in place,
  /// and registers `elasticdns_bpf_*` metrics in `metrics` (which must outlive scrapes only;
  /// the metric callbacks hold their own map handle). Errors say what failed and why (kernel,
  /// privileges, config); the caller then runs with NoCallerIdentity.
  static Result<std::unique_ptr<BpfRuntime>> start(const BpfConfig& config,
                                                   const RedirectTarget& target,
                                                   metrics::Registry& metrics);
  ~BpfRuntime();
  BpfRuntime(const BpfRuntime&) = delete;
  BpfRuntime& operator=(const BpfRuntime&) = delete;

  /// Socket-based caller identity; lives as long as this runtime.
  CallerIdentity& identity();
  CallerRegistry& callers();
  /// Sum over CPUs of counter `reason` (an `enum edns_counter` value).
  uint64_t counter(unsigned reason) const;
  /// Absolute path of the containers' parent cgroup the programs are attached to.
  const std::string& cgroupPath() const;
  /// True when the pinned maps of a previous agent were reused.
  bool reusedPinnedMaps() const;

 private:
  struct Impl;
  explicit BpfRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Detaches every program pinned under `config.pin_path` and removes every pin and the
/// directory. Returns the error text, or empty on success (also when nothing was pinned).
std::string detachBpf(const BpfConfig& config);

/// The resolved path of `config.cgroup` when the cgroup v2 hierarchy is mounted but that
/// cgroup does not exist (yet); nullopt otherwise (it exists, or attaching fails for another
/// reason that BpfRuntime::start reports).
std::optional<std::string> missingBpfCgroup(const BpfConfig& config);

/// The mount point of the cgroup v2 hierarchy from a mounts table (/proc/mounts format):
/// `/sys/fs/cgroup` on pure v2 hosts, `/sys/fs/cgroup/unified` on hybrid ones.
Result<std::string> findCgroup2Mount(const std::string& mounts_file = "/proc/mounts");

/// Absolute path of a configured cgroup: absolute paths inside the cgroup2 mount are kept,
/// anything else is taken relative to the mount.
std::string resolveCgroupPath(const std::string& mount, const std::string& configured);

/// The cgroup v2 id (inode of the directory) of an absolute cgroup path.
Result<uint64_t> cgroupIdOf(const std::string& path);

}  // namespace elasticdns::agent
