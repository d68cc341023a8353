#pragma once
// The topology that central owns and every agent mirrors (README.md, "Topology model").
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace elasticdns::model {

enum class DnsBehaviour : uint8_t { kVersioned, kNonVersioned };
enum class LoadBalancing : uint8_t { kRoundRobin, kSticky, kClosest };
enum class ContainerState : uint8_t { kRunning, kDraining };

std::string_view toString(DnsBehaviour v);
std::string_view toString(LoadBalancing v);
std::string_view toString(ContainerState v);
/// Parse the documented spellings ("versioned", "non-versioned"; "roundrobin", "sticky",
/// "closest"; "running", "draining"). nullopt for anything else.
std::optional<DnsBehaviour> parseDnsBehaviour(std::string_view s);
std::optional<LoadBalancing> parseLoadBalancing(std::string_view s);
std::optional<ContainerState> parseContainerState(std::string_view s);

/// One entry of a service's `ports` directive. `container` is the port the container listens
/// on; the others are the published ports (0 = not published). Short form "3000:80:443" is
/// container:http:https.
struct PortMapping {
  uint16_t container = 0;
  uint16_t http = 0;
  uint16_t https = 0;
  uint16_t tcp = 0;
  uint16_t udp = 0;
  bool operator==(const PortMapping&) const = default;
};

/// A server's ContainerNet WireGuard identity, published by its agent (README.md, ContainerNet).
struct WireGuardPeer {
  std::string public_key;  // base64 of 32 bytes (44 characters)
  std::string endpoint;    // "IPV4:PORT" or "[IPV6]:PORT", where other hosts send its UDP
  bool operator==(const WireGuardPeer&) const = default;
};

struct Server {
  std::string name;
  std::string address;  // IPv4 or IPv6 host address
  std::map<std::string, std::string> labels;
  /// ContainerNet: the container subnet central leased to this server ("10.240.3.0/24"); empty
  /// when ContainerNet is off at central. Assigned by central only.
  std::string subnet;
  /// ContainerNet: absent until the server's agent (or an admin) published it.
  std::optional<WireGuardPeer> wireguard;
  bool operator==(const Server&) const = default;
};

struct Service {
  std::string name;
  DnsBehaviour dns_behaviour = DnsBehaviour::kVersioned;
  LoadBalancing load_balancing = LoadBalancing::kRoundRobin;
  std::vector<PortMapping> ports;
  std::vector<std::string> traffic_matches;  // stored, not used for answers
  bool operator==(const Service&) const = default;
};

struct Container {
  std::string id;  // the runtime's full id (Docker: 64 hex)
  std::string service;
  std::string version;
  std::string server;
  std::string address;   // IPv4, may be empty
  std::string address6;  // IPv6, may be empty
  ContainerState state = ContainerState::kRunning;
  bool operator==(const Container&) const = default;
};

struct Datasource {
  std::string type;  // mysql, postgresql, redis, ...
  std::string group = "default";
  bool primary = false;
  std::vector<std::string> addresses;  // IPv4 and/or IPv6
  std::string key() const { return type + "/" + group; }
  bool operator==(const Datasource&) const = default;
};

/// A version name and its generation: the order in which central first saw it (1, 2, ...).
/// Generations are global across services, so a `web` version compares with an `api` one.
struct Version {
  std::string name;
  uint64_t generation = 0;
  bool operator==(const Version&) const = default;
};

struct Topology {
  uint64_t index = 0;                             // bumped by every change at central
  std::map<std::string, Server> servers;          // by name
  std::map<std::string, Service> services;        // by name
  std::map<std::string, Container> containers;    // by id
  std::map<std::string, Datasource> datasources;  // by "type/group"
  std::map<std::string, uint64_t> versions;       // version name → generation
  /// Derived (recomputeDerived): per service name, the newest version (highest generation)
  /// with a running container. Services with no running container are absent.
  std::map<std::string, std::string> latest_versions;

  /// Generation of a version name, 0 when unknown.
  uint64_t generationOf(std::string_view version) const;
  /// Recompute `latest_versions` from containers and versions.
  void recomputeDerived();
  bool operator==(const Topology&) const = default;
};

}  // namespace elasticdns::model
