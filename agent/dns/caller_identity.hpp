#pragma once
// "Who is asking": the seam between the DNS server and whatever identifies the sending
// container. The eBPF caller registry (agent/ebpf/callers.*) implements it by socket; without it
// the policy falls back to the caller's source address looked up in the topology.
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string_view>

namespace elasticdns::agent {

enum class Transport : uint8_t { kTcp = 6, kUdp = 17 };

/// The sender of a query as the agent's socket saw it.
struct Peer {
  sockaddr_storage addr{};  // sockaddr_in or sockaddr_in6 (possibly v4-mapped)
  Transport transport = Transport::kUdp;
};

class CallerIdentity {
 public:
  virtual ~CallerIdentity() = default;
  /// The container id (the runtime's full id) of the socket that sent from `peer`, or an empty
  /// view when it is not known (a host process, an unknown cgroup, BPF unavailable).
  /// The view stays valid for the life of the implementation. Called once per query on the
  /// query path: it must not block, lock, allocate or make a syscall in the common case.
  virtual std::string_view containerIdOf(const Peer& peer) noexcept = 0;
};

/// The identity used when BPF is off: knows no socket, so every caller falls back to address.
class NoCallerIdentity final : public CallerIdentity {
 public:
  std::string_view containerIdOf(const Peer&) noexcept override { return {}; }
};

/// An identity switched on while the server runs (eBPF attached once its cgroup appeared):
/// until set() it knows no socket. One atomic load per query.
class SwitchableCallerIdentity final : public CallerIdentity {
 public:
  std::string_view containerIdOf(const Peer& peer) noexcept override {
    CallerIdentity* target = target_.load(std::memory_order_acquire);
    return target ? target->containerIdOf(peer) : std::string_view{};
  }
  /// `target` must outlive every query that may still use it.
  void set(CallerIdentity* target) noexcept { target_.store(target, std::memory_order_release); }

 private:
  std::atomic<CallerIdentity*> target_{nullptr};
};

}  // namespace elasticdns::agent
