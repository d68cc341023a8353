#pragma once
// The WireGuard configuration as ContainerNet computes and reads it, in the two spellings a
// device takes it: the cross-platform UAPI text protocol (wireguard-go's unix socket,
// https://www.wireguard.com/xplatform/) and `wg set` arguments (kernel WireGuard, which speaks
// generic netlink, not UAPI). One plan, rendered twice; no policy here.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/containernet/key.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

/// One peer as ContainerNet wants it: keys in base64, allowed IPs as "A.B.C.D/N", sorted.
struct PeerConfig {
  std::string public_key;
  std::string endpoint;  // "IP:PORT" / "[IPV6]:PORT"; empty = none
  std::vector<std::string> allowed_ips;
  bool operator==(const PeerConfig&) const = default;
};

/// The peer changes of one reconcile: remove these keys, then add or update these peers
/// (their allowed IPs replace the old ones).
struct PeerPlan {
  std::vector<std::string> remove;  // public keys
  std::vector<PeerConfig> set;
  bool empty() const { return remove.empty() && set.empty(); }
  bool operator==(const PeerPlan&) const = default;
};

/// What a device reports of one peer.
struct PeerState {
  PeerConfig config;
  int64_t last_handshake_sec = 0;  // Unix time; 0 = never
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  uint32_t persistent_keepalive = 0;
};

/// What a device reports (never its private key: only whether it has one).
struct DeviceState {
  bool has_private_key = false;
  std::string public_key;  // base64, derived by the device from its private key
  uint16_t listen_port = 0;
  std::vector<PeerState> peers;
};

/// Device-wide settings that go with a plan: a private key to set (rotation, first start) and
/// the port to listen on.
struct DeviceSettings {
  std::optional<WireGuardKey> private_key;
  std::optional<uint16_t> listen_port;
  uint32_t persistent_keepalive = 0;  // seconds, for every peer set; 0 = off
};

/// The `set=1` request (ending with the empty line). Keys in hex, as the protocol wants.
Result<std::string> renderUapiSet(const PeerPlan& plan, const DeviceSettings& settings);
/// Parses the answer to `get=1` (up to and including "errno=N"); an Error names the line, or
/// carries the device's errno when it is not 0.
Result<DeviceState> parseUapiGet(const std::string& text);
/// The "errno=N" answer to `set=1`: nothing, or the device's errno.
std::optional<Error> parseUapiSetAnswer(const std::string& text);

/// `wg set IFACE [private-key FILE] [listen-port N] peer K remove ... peer K endpoint E
/// allowed-ips A,B persistent-keepalive N` (argv[0] = `wg`).
std::vector<std::string> wgSetArguments(const std::string& wg, const std::string& interface,
                                        const PeerPlan& plan, const DeviceSettings& settings,
                                        const std::string& private_key_file);
/// Parses `wg show IFACE dump` (tab-separated; its first line, which holds the private key, is
/// read for the public key and the port only).
Result<DeviceState> parseWgDump(const std::string& text);

/// The UAPI socket of a userspace device: /var/run/wireguard/<interface>.sock.
std::string uapiSocketPath(const std::string& interface);
/// One request on the UAPI socket and its answer (up to the empty line), within `timeout`.
Result<std::string> uapiExchange(const std::string& socket_path, const std::string& request,
                                 std::chrono::milliseconds timeout);

}  // namespace elasticdns::agent
