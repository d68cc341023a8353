#pragma once
// ContainerNet's Docker network (agent/README.md, "ContainerNet"): with Docker discovery on, a
// Docker bridge network (`containernet.docker_network`, default "containernet") with this
// host's leased subnet and its gateway, so `docker run --network containernet` gives containers
// ContainerNet addresses. Created through the Docker Engine API on the docker socket when
// absent, adopted when its subnet and gateway match, left alone (one error line) when they do
// not. Runs on ContainerNet's io_context; it never blocks DNS.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json_fwd.hpp>

namespace elasticdns::agent {

/// The label on a network the agent created: only such a network, when it has no containers
/// and a stale subnet (the lease changed), is removed and created again.
constexpr std::string_view kContainerNetNetworkLabel = "com.cloud66.elasticdns.containernet";

/// The Docker network ContainerNet wants.
struct DockerNetworkSpec {
  std::string name;     // containernet.docker_network
  std::string subnet;   // this server's lease, "10.77.128.0/24"
  std::string gateway;  // its first host address, "10.77.128.1"
  std::string bridge;   // containernet.bridge; empty = Docker names it (br-<id>)
  uint32_t mtu = 0;     // the ContainerNet MTU; 0 = not set (Docker's default)
  bool operator==(const DockerNetworkSpec&) const = default;
};

/// The body of POST /networks/create: driver bridge, IPAM {Subnet, Gateway}, the bridge name
/// and MTU driver options, and the label.
nlohmann::json dockerNetworkCreateBody(const DockerNetworkSpec& want);

/// What to do with the network GET /networks/{name} returned.
struct DockerNetworkDecision {
  enum class Verdict : uint8_t {
    kAdopt,     // bridge driver and an IPAM config with the wanted subnet and gateway (or
                // no gateway: Docker's default is the first host, the same address)
    kRecreate,  // ours (the label), no containers, other subnet: remove, then create
    kMismatch,  // anything else: left alone; `detail` says what it has and what it should have
  };
  Verdict verdict = Verdict::kMismatch;
  std::string id;      // the network's Id
  std::string bridge;  // the Linux bridge it uses: its bridge.name option, else br-<id 12>
  std::string detail;  // for the log
};
DockerNetworkDecision decideDockerNetwork(const nlohmann::json& inspect,
                                          const DockerNetworkSpec& want);

/// Keeps the Docker network as wanted, on `io`. ensure() with the current spec after every
/// reconcile; it checks again every `recheck` (a network removed meanwhile is created again)
/// and retries Docker errors with backoff. Every call on `io`'s thread.
class DockerNetworkKeeper {
 public:
  struct Options {
    std::string socket;  // Docker's API socket
    std::chrono::milliseconds backoff_min{500};
    std::chrono::milliseconds backoff_max{30'000};
    std::chrono::milliseconds request_timeout{10'000};
    std::chrono::milliseconds recheck{60'000};
    /// Runs (on `io`) when the network was created or adopted for a new spec: the bridge
    /// exists now.
    std::function<void()> on_kept;
  };
  DockerNetworkKeeper(boost::asio::io_context& io, Options options);
  ~DockerNetworkKeeper();
  DockerNetworkKeeper(const DockerNetworkKeeper&) = delete;
  DockerNetworkKeeper& operator=(const DockerNetworkKeeper&) = delete;

  /// Wants `spec`; a no-op when it is what is already being kept.
  void ensure(const DockerNetworkSpec& spec);
  /// Cancels the exchange in flight and the timer.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent
