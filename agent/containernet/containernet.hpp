#pragma once
// ContainerNet at run time (agent/README.md, "ContainerNet"): this host's end of the WireGuard
// mesh between the hosts' container subnets, programmed from every topology snapshot.
// Everything runs on its own thread (rtnetlink, the UAPI socket, `wg` and wireguard-go are
// blocking calls): the DNS workers and the control loop never wait for it.
//   start     load or create the key, open the interface (kernel, else wireguard-go)
//   update    the desired peers, routes and gateway address (reconcile.hpp) applied as the
//             difference to what the interface has; the public key and endpoint published to
//             central (PUT /v1/servers/{name}/wireguard) until central's snapshot shows them
//   reloadKey the key file again (rotation): a new private key on the interface, published
//   stop      wireguard-go stopped (its interface goes with it) unless the agent handed over;
//             a kernel interface, its peers and routes stay
// When neither WireGuard works, one error line "containernet: disabled: ..." and
// elasticdns_containernet_up 0; DNS is not affected.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/containernet/containernet_config.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::agent {

struct ContainerNetOptions {
  ContainerNetConfig config;
  std::string state_dir;                  // key_file's default directory
  std::string server;                     // this host's server name in the topology
  std::vector<std::string> central_urls;  // "http://host:port", tried in order
  std::string token;                      // this server's agent token (never logged)
  /// Docker's API socket when Docker discovery is on, else "": config.docker_network is kept
  /// there (docker_network.hpp).
  std::string docker_socket;
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds retry_period{5'000};     // a failed reconcile is tried again after
  std::chrono::milliseconds stats_period{10'000};    // handshake and byte gauges refreshed
  std::chrono::milliseconds liveness_period{1'000};  // a dead device is noticed within it
};

/// The wireguard-go PID file: containernet-wireguard-go.pid next to the key file.
std::string wireguardGoPidFileOf(const ContainerNetConfig& config, const std::string& state_dir);

/// Counts in `metrics`: elasticdns_containernet_up, _peers, _reconciles_total,
/// _reconcile_errors_total, _last_handshake_age_seconds, _rx_bytes, _tx_bytes,
/// _publishes_total{result}.
class ContainerNet {
 public:
  ContainerNet(ContainerNetOptions options, metrics::Registry& metrics);
  ~ContainerNet();
  ContainerNet(const ContainerNet&) = delete;
  ContainerNet& operator=(const ContainerNet&) = delete;

  /// Starts the thread; the key and the interface are set up there.
  void start();
  /// Applies `topology` (the latest wins when several wait). Any thread.
  void update(std::shared_ptr<const model::Topology> topology);
  /// Reads the key file again; a different key is set on the interface and published. Any
  /// thread.
  void reloadKey();
  /// Stops the thread. `handed_over`: another agent adopted the interface, so its
  /// wireguard-go keeps running. Idempotent.
  void stop(bool handed_over);

  /// True while the interface is configured (elasticdns_containernet_up).
  bool up() const;
  /// True once ContainerNet gave up until a restart (bad key file, no WireGuard at all).
  bool disabled() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::thread thread_;
};

/// --detach: removes the interface (its routes and address go with it) and stops the
/// wireguard-go a stopped agent left running.
std::optional<Error> teardownContainerNet(const ContainerNetConfig& config,
                                          const std::string& state_dir);

/// --rotate-key: writes a new private key to the key file (atomically, 0600) and sends SIGUSR2
/// to the running agent (its PID from pidFileOf()). Returns a line for the operator.
Result<std::string> rotateContainerNetKey(const ContainerNetConfig& config,
                                          const std::string& state_dir);

}  // namespace elasticdns::agent
