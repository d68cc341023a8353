#pragma once
// Inherited sockets: the DNS sockets that systemd passes to the agent (ops/systemd.hpp), or
// that a running agent hands over (ops/handover.hpp). systemd keeps them open across
// `systemctl restart elasticdns-agent`, a handing-over agent keeps serving them until the new
// one is ready: queries that arrive while the agent restarts wait in their queues instead of
// being refused. The DNS server (dns/server.hpp) adopts those that match its listen addresses.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace elasticdns::agent {

/// One socket passed by systemd or a previous agent: a bound UDP socket or a listening TCP
/// socket.
struct InheritedSocket {
  int fd = -1;
  bool stream = false;  // SOCK_STREAM (TCP) or SOCK_DGRAM (UDP)
  std::string address;  // numeric, as in the config: "127.0.0.1", "::1"
  uint16_t port = 0;
};

/// The sockets this process inherited (LISTEN_FDS/LISTEN_PID), once: the environment
/// variables are unset so that children do not see them. Sockets of another kind (unix,
/// not bound to an IP address) are closed and reported in `ignored`.
struct InheritedSockets {
  std::vector<InheritedSocket> sockets;
  std::vector<std::string> ignored;  // why each ignored descriptor was left out

  /// Takes ownership of `fd`: kept when it is a bound UDP or a listening TCP socket on an IP
  /// address, else closed and reported in `ignored` (`origin` names who passed it).
  void add(int fd, const std::string& origin);

  /// Takes (removes and returns) the descriptor bound to exactly this address and port, or
  /// nullopt. The caller owns the returned descriptor.
  std::optional<int> take(bool stream, const std::string& address, uint16_t port);
  /// Takes every descriptor bound to exactly this address and port (a handing-over agent
  /// passes one UDP socket per worker: the port's SO_REUSEPORT group). The caller owns them.
  std::vector<int> takeAll(bool stream, const std::string& address, uint16_t port);
};

}  // namespace elasticdns::agent
