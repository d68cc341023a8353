#pragma once
// The DNS server: UDP and TCP listeners, one UDP reader thread per core and listen address.
//
// UDP: one SO_REUSEPORT socket per reader thread and listen address (the kernel spreads queries
// over them). Each reader blocks in recvmmsg (MSG_WAITFORONE) on its socket, answers the batch
// with one sendmmsg and reads again, as gdnsd does: two system calls per wake-up, no event loop
// (the batching lets the fastest authoritative servers reach ~97 % of the packet path's ceiling
// on this machine kind). Each reader's QueryHandler (query_handler.hpp) decides about every
// message; the server sends its reply or hands the query to the forwarder. TCP (RFC 7766) runs
// on one Boost.Asio thread with its own handler: async accept, length-prefixed messages answered
// in order (pipelining), idle timeout, a bounded number of connections.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "agent/dns/caller_identity.hpp"
#include "agent/dns/topology_store.hpp"
#include "agent/dns/wire.hpp"
#include "agent/util/cidr.hpp"
#include "agent/util/inherited_sockets.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

struct ServerOptions {
  std::vector<boost::asio::ip::udp::endpoint> listen;
  std::vector<Cidr> allow_networks;  // callers outside get REFUSED
  size_t threads = 2;                // UDP reader threads per listen address
  size_t max_tcp_connections = 256;
  std::chrono::seconds tcp_idle_timeout{10};  // RFC 7766 6.2.3 suggests seconds, not minutes
  /// Per caller, queries for names outside the zone (rate_limiter.hpp); 0 = no limit.
  double forward_per_second = 0;
  double forward_burst = 1;
  /// Sockets systemd passed in (socket activation) or a running agent handed over
  /// (handover.hpp). bind() takes those that match a listen address (UDP and TCP both)
  /// instead of binding; the rest stay here. Several UDP sockets for one address (one per
  /// worker of the previous agent) are shared out so that each is read by a worker. May be null.
  InheritedSockets* inherited = nullptr;
};

/// Hands a query for a name outside the zone to the forwarder: what wire::parseQuery() found in
/// it and its bytes. `done` gets the reply (empty on failure) exactly once, on any thread.
using ForwardFn = std::function<void(const wire::Query& query, std::span<const uint8_t> packet,
                                     std::function<void(std::span<const uint8_t> reply)> done)>;

class DnsServer {
 public:
  /// `forward` may be empty: names outside the zone then get REFUSED.
  DnsServer(ServerOptions options, TopologyStore& store, ForwardFn forward,
            metrics::Registry& metrics);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  /// Open and bind every socket (port 0: the kernel's choice, shared by UDP and TCP and by
  /// every worker). Errors name the address.
  std::optional<Error> bind();
  std::vector<boost::asio::ip::udp::endpoint> udpEndpoints() const;
  std::vector<boost::asio::ip::tcp::endpoint> tcpEndpoints() const;
  /// Start the reader and TCP threads, identifying callers with `identity` (which must outlive the
  /// server). The sockets are bound before (bind()), so the eBPF redirect can be pointed at
  /// them before the identity that depends on it exists.
  void start(CallerIdentity& identity);
  /// Stop reading new queries (UDP and TCP); forwarded queries still in flight are answered.
  void stopReceiving();
  /// Queries handed to the forwarder and not yet answered.
  size_t inFlight() const;
  /// Open TCP connections (a drain waits for them too).
  size_t tcpConnections() const;
  /// Queries answered so far (zone answers, errors and forwarded replies).
  uint64_t answeredQueries() const;
  /// Every bound socket (each reader's UDP socket, each TCP listener), for
  /// a handover. Still owned by the server. Call after bind(), before stopReceiving().
  std::vector<int> listeningSockets() const;
  /// Join the threads and close every socket. Call after stopReceiving().
  void join();

  /// Answers carry EDE 3 (Stale Answer) while set.
  void setStale(bool stale);
  /// Replace the allow list (SIGHUP).
  void setAllowNetworks(const std::vector<Cidr>& networks);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent
