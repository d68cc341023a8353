#pragma once
// The `containernet:` section of the agent's configuration (agent/README.md, "ContainerNet"):
// the WireGuard interface of this host's end of the mesh between the hosts' container subnets.
#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

#include "elasticdns/result.hpp"

namespace elasticdns::agent {

enum class WireGuardImplementation : uint8_t {
  kAuto,       // kernel WireGuard if the kernel has it, else wireguard-go
  kKernel,     // RTM_NEWLINK kind "wireguard"
  kUserspace,  // wireguard-go over TUN
};

struct ContainerNetConfig {
  bool enabled = false;
  std::string interface = "cn0";
  uint16_t listen_port = 51820;
  /// The private key (base64, mode 0600). Empty = <state_dir>/containernet.key
  /// (keyFileOf()).
  std::string key_file;
  /// "IP:PORT" / "[IPV6]:PORT" other hosts send to; empty = this server's address in the
  /// topology and listen_port.
  std::string endpoint;
  /// 0 = auto: the MTU of the interface holding this server's address minus the WireGuard
  /// overhead (80 over IPv6, 60 over IPv4).
  uint32_t mtu = 0;
  WireGuardImplementation implementation = WireGuardImplementation::kAuto;
  std::string wireguard_go = "wireguard-go";  // a path, or a name looked up in PATH
  /// The container bridge that gets the gateway (first host address) of this host's subnet;
  /// empty = none.
  std::string bridge;
  /// With Docker discovery on (`docker.enabled`): the Docker bridge network the agent creates
  /// (or adopts) with this host's subnet and gateway (docker_network.hpp); "" = none.
  std::string docker_network = "containernet";
  bool operator==(const ContainerNetConfig&) const = default;
};

constexpr size_t kMaxInterfaceName = 15;        // IFNAMSIZ - 1
constexpr uint32_t kMinContainerNetMtu = 1280;  // the IPv6 minimum link MTU (RFC 8200 5)
constexpr uint32_t kMaxContainerNetMtu = 9000;  // jumbo frames

/// Parse the `containernet` mapping. Errors name the key ("containernet/listen_port").
Result<ContainerNetConfig> parseContainerNetConfig(const YAML::Node& node);

/// The key file: `key_file`, else <state_dir>/containernet.key, else
/// /var/lib/elasticdns/containernet.key without a state_dir.
std::string keyFileOf(const ContainerNetConfig& config, const std::string& state_dir);

/// Where the running agent writes its PID for `--rotate-key`: containernet.pid in the key
/// file's directory.
std::string pidFileOf(const ContainerNetConfig& config, const std::string& state_dir);

}  // namespace elasticdns::agent
