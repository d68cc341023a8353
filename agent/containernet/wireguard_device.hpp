#pragma once
// The WireGuard interface itself: kernel WireGuard (RTM_NEWLINK kind "wireguard", configured
// with `wg set`) or wireguard-go (a child process `wireguard-go -f IFACE`, configured over its
// UAPI socket). Both take the same PeerPlan and report the same DeviceState.
#include <sys/types.h>

#include <memory>
#include <string>

#include "agent/containernet/containernet_config.hpp"
#include "agent/containernet/uapi.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

class WireGuardDevice {
 public:
  virtual ~WireGuardDevice() = default;
  virtual bool kernel() const = 0;
  /// False once a wireguard-go child has exited (the interface went with it).
  virtual bool alive() = 0;
  virtual Result<DeviceState> read() = 0;
  /// `private_key_file` holds the key in settings.private_key (for `wg set`).
  virtual std::optional<Error> apply(const PeerPlan& plan, const DeviceSettings& settings,
                                     const std::string& private_key_file) = 0;
  /// Stops a wireguard-go this object started or adopted (SIGTERM, then SIGKILL after 2 s),
  /// which removes its interface; a kernel interface stays.
  virtual void stopProcess() = 0;
};

/// Opens the interface `config.interface`: adopts a wireguard-go already serving its UAPI
/// socket (a previous agent's, its PID from `pid_file`), else an existing kernel WireGuard link,
/// else creates one as `config.implementation` says (auto: kernel, else wireguard-go). The
/// Error says why neither worked.
Result<std::unique_ptr<WireGuardDevice>> openWireGuardDevice(const ContainerNetConfig& config,
                                                             const std::string& pid_file);

/// --detach: stops the wireguard-go of `pid_file` (if its PID still runs wireguard-go) and
/// deletes the interface (its routes and addresses go with it). Nothing to remove is no error.
std::optional<Error> removeWireGuardDevice(const ContainerNetConfig& config,
                                           const std::string& pid_file);

}  // namespace elasticdns::agent
