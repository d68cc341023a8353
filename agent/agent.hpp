#pragma once
// The agent process's lifetimes in one object. Start: take the sockets systemd or a running
// agent passes in, bind the rest, then the metrics endpoint, eBPF, sync with central and Docker
// discovery. Serve: serve-stale timer, SIGHUP reload, systemd watchdog, handover listener.
// Stop (SIGTERM, SIGINT, a new agent took the sockets over, or stop()): stop reading, let
// forwarded queries and open TCP connections finish (bounded), return 0.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/config.hpp"
#include "agent/containernet/containernet.hpp"
#include "agent/dns/caller_identity.hpp"
#include "agent/dns/server.hpp"
#include "agent/dns/topology_store.hpp"
#include "agent/ebpf/loader.hpp"
#include "agent/ops/docker.hpp"
#include "agent/ops/handover.hpp"
#include "agent/ops/metrics_http.hpp"
#include "agent/sync/sync_client.hpp"
#include "agent/traffic/nginx_controller.hpp"
#include "agent/upstream/forwarder.hpp"
#include "elasticdns/metrics.hpp"

namespace elasticdns::agent {

/// The traffic part's settings: the config's, with the resolver defaulting to the first of
/// `dns_endpoints` (the bound DNS addresses; 0.0.0.0 and :: become loopback) and the work
/// directory to <state_dir>/traffic.
TrafficSettings trafficSettingsOf(const AgentConfig& config,
                                  const std::vector<boost::asio::ip::udp::endpoint>& dns_endpoints);

class Agent {
 public:
  /// `config_path` is where `config` was read from: SIGHUP reads it again.
  Agent(AgentConfig config, std::string config_path);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// start(), then serve(): the process's exit code.
  int run();
  /// Adopts or binds the sockets and starts every part; prints "listening on" lines on stdout
  /// and tells systemd the agent is ready. An exit code when the agent cannot start (2: bad
  /// config, the message is on stderr); nullopt when it serves.
  std::optional<int> start();
  /// Runs the control loop on the calling thread until a drain ends; then joins the DNS
  /// workers. Returns 0. Call after start() succeeded.
  int serve();
  /// Drains as SIGTERM does. Safe from any thread once start() succeeded.
  void stop();
  /// The bound DNS endpoints (port 0 in the config: the kernel's choice). After start().
  std::vector<boost::asio::ip::udp::endpoint> udpEndpoints() const;

 private:
  std::optional<int> readTokenFile();
  void makeForwarder();
  void takeInheritedSockets();
  std::optional<int> bindServer();
  std::optional<int> startMetrics(std::optional<int> inherited_fd);
  void startBpf();
  void attachBpf();
  void waitForBpfCgroup();
  void startSync();
  void startDocker();
  void startTraffic();
  void startContainerNet();
  void waitForRotation();
  void announce();
  void checkStale();
  void waitForHangup();
  void reload();
  void startWatchdog(std::chrono::microseconds interval);
  void waitForTermination();
  void finishTakeover();
  void listenForHandover();
  void drain();
  void waitForDrain();

  AgentConfig config_;
  const std::string config_path_;
  metrics::Registry registry_;
  TopologyStore store_;
  // All outlive server_: it identifies callers with one of them (late_identity_ when eBPF
  // waits for bpf.cgroup to appear, and then forwards to bpf_).
  NoCallerIdentity no_identity_;
  std::unique_ptr<BpfRuntime> bpf_;
  SwitchableCallerIdentity late_identity_;
  std::string bpf_waiting_for_;  // the missing bpf.cgroup, while eBPF waits for it

  boost::asio::io_context control_;  // signals, timers, forwarder, sync, metrics endpoint
  std::string token_;
  std::unique_ptr<Forwarder> forwarder_;
  std::atomic<bool> have_upstreams_{false};

  InheritedSockets inherited_;
  bool socket_activated_ = false;
  std::string handover_path_;
  handover::TakeResult takeover_;

  std::unique_ptr<DnsServer> server_;
  std::unique_ptr<MetricsHttp> metrics_http_;
  std::unique_ptr<SyncClient> sync_;
  std::unique_ptr<DockerDiscovery> docker_;
  std::unique_ptr<NginxController> traffic_;    // only with traffic.enabled
  std::unique_ptr<ContainerNet> containernet_;  // only with containernet.enabled

  std::chrono::steady_clock::time_point started_;
  boost::asio::steady_timer stale_timer_;
  boost::asio::signal_set hangup_;
  boost::asio::signal_set rotate_;  // SIGUSR2: ContainerNet reads its key file again
  boost::asio::steady_timer watchdog_;
  boost::asio::signal_set termination_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer bpf_retry_;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::unique_ptr<handover::Listener> handover_listener_;
  bool draining_ = false;
  uint32_t handed_to_ = 0;
};

}  // namespace elasticdns::agent
