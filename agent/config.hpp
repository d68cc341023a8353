#pragma once
// The agent's configuration file (YAML), agent/README.md "Configuration". Strict: unknown keys,
// wrong types and values out of range are errors naming the key.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "agent/containernet/containernet_config.hpp"
#include "agent/ebpf/bpf_config.hpp"
#include "agent/ops/docker_config.hpp"
#include "agent/traffic/traffic_config.hpp"
#include "agent/util/cidr.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

struct AgentConfig {
  std::string domain = "cloud66.local";
  std::vector<boost::asio::ip::udp::endpoint> listen;  // default 127.0.0.1:53
  std::string server_name;                             // this host in the topology
  std::vector<std::string> central_urls;
  std::string central_token_file;
  /// Empty = the nameservers of /etc/resolv.conf minus the agent's own addresses.
  std::vector<boost::asio::ip::udp::endpoint> upstreams;
  std::chrono::seconds ttl{5};
  std::chrono::seconds negative_ttl{5};
  std::chrono::seconds sticky_window{60};
  /// Past this age of the last contact with central, answers carry EDE 3 (Stale Answer).
  std::chrono::seconds stale_after{60};
  std::string state_dir;
  /// Empty = loopback plus the networks of the listen addresses (defaultAllowNetworks()).
  std::vector<Cidr> allow_networks;
  std::optional<boost::asio::ip::tcp::endpoint> metrics_listen;
  /// Forwarded queries (names outside the zone) per caller: a token bucket of `burst` queries
  /// refilled at `per_second`; beyond it, REFUSED. per_second 0 = no limit (rate_limiter.hpp).
  struct ForwardLimit {
    uint32_t per_second = 500;
    uint32_t burst = 1000;
  } forward_limit;
  BpfConfig bpf;
  DockerConfig docker;              // Docker discovery (ops/docker.hpp)
  TrafficConfig traffic;            // nginx from ports and traffic_matches (traffic/)
  ContainerNetConfig containernet;  // the WireGuard mesh between hosts (containernet/)
  /// The apex NS record naming the agent (agent/README.md "Answers"). `name`: absolute,
  /// lowercase, no trailing dot; empty = "ns.<domain>". `addresses`: the NS name's A/AAAA when it
  /// is in the zone; empty = apexNsAddresses()'s default.
  struct Nameserver {
    std::string name;
    std::vector<boost::asio::ip::address> addresses;
  } nameserver;
  /// Upstream failures (every upstream timed out, failed or refused) cached per question, RFC
  /// 9520: the first failure held `initial`, doubled while the question keeps failing, at most
  /// `max`.
  struct UpstreamFailureCache {
    std::chrono::seconds initial{1};
    std::chrono::seconds max{30};
  } upstream_failure_cache;
};

constexpr std::chrono::seconds kMaxTtl{86400};  // a day; a discovery answer beyond it is a typo
constexpr uint32_t kMaxForwardRate = 1000000;   // forward_limit: a million a second per caller

/// Parse the YAML text of a config. Errors: Error::field is the key ("listen/1", "ttl").
Result<AgentConfig> parseConfig(const std::string& yaml);
/// Read and parse a config file.
Result<AgentConfig> loadConfig(const std::string& path);
/// RFC 9520 3.2: a resolution failure is cached at least 1 s and at most 5 minutes.
constexpr std::chrono::seconds kMinFailureHold{1};
constexpr std::chrono::seconds kMaxFailureHold{300};

/// The addresses the NS name answers: `nameserver.addresses` if set, else the listen addresses
/// other than the unspecified ones (0.0.0.0, ::), in order, without duplicates. An agent that
/// listens only on unspecified addresses answers the loopback address of their families (the
/// one address that surely reaches it; set `nameserver.addresses` for others).
std::vector<boost::asio::ip::address> apexNsAddresses(const AgentConfig& config);

/// Loopback, plus the networks (from the interfaces) that contain the listen addresses; an
/// unspecified listen address (0.0.0.0, ::) brings every interface's network.
std::vector<Cidr> defaultAllowNetworks(const std::vector<boost::asio::ip::udp::endpoint>& listen);

}  // namespace elasticdns::agent
