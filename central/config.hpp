#pragma once
// elasticdns-central's configuration: a YAML file (--config) overridden by flags.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "central/agent_reports.hpp"
#include "central/etcd_store.hpp"
#include "central/ipam.hpp"
#include "central/store.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::central {

constexpr size_t kMaxBodyBytes = 1 << 20;    // 1 MiB: a service.yml, a record
constexpr size_t kMaxHeaderBytes = 8 << 10;  // 8 KiB, as nginx's default buffer
constexpr size_t kDefaultMaxConnections =
    12'000;                                     // each watcher holds one; clamped to RLIMIT_NOFILE
constexpr size_t kDefaultMaxWatchers = 10'000;  // long-polls waiting at once
constexpr uint64_t kDefaultChangeRetention = 10'000;     // changes kept for deltas
constexpr std::chrono::seconds kDefaultIdleTimeout{60};  // to receive a whole request
constexpr std::chrono::seconds kMaxWait{300};            // cap on a long-poll's wait=

/// ContainerNet's subnet leases (the `containernet:` section; absent: off).
struct ContainerNetConfig {
  std::string cluster_cidr;  // canonical, e.g. "10.240.0.0/16"
  int subnet_prefix = kDefaultSubnetPrefix;
  bool operator==(const ContainerNetConfig&) const = default;
};

enum class StoreKind : uint8_t { kSqlite, kEtcd };

struct Config {
  std::string listen = "127.0.0.1:8080";  // text::parseHostPort
  StoreKind store = StoreKind::kSqlite;
  std::string data_dir;  // SQLite's directory
  EtcdConfig etcd;       // store: etcd
  std::string admin_token_file;
  std::string agent_token_file;
  std::string agent_tokens_file;  // per-server agent tokens (agent_tokens.hpp)
  Durability durability = Durability::kFull;
  uint64_t change_log_retention = kDefaultChangeRetention;
  size_t max_connections = kDefaultMaxConnections;
  size_t max_watchers = kDefaultMaxWatchers;
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
  std::string log_level = "info";
  std::chrono::milliseconds agent_report_ttl = kDefaultAgentReportTtl;  // agent_reports.hpp
  std::optional<ContainerNetConfig> containernet;                       // nullopt: ContainerNet off
};

/// The --containernet-cluster-cidr / --containernet-subnet-prefix flags over `base`: checked
/// together (as one `containernet:` section over base's), errors naming the key.
Result<Config> withContainerNetFlags(Config base, std::optional<std::string> cluster_cidr,
                                     std::optional<std::string> subnet_prefix);

/// The IPAM of a validated `containernet:` section.
Ipam ipamOf(const ContainerNetConfig& c);

/// Parses the YAML config; unknown keys and bad values are errors naming the key. Keys not
/// given keep the values already in `base`.
Result<Config> parseConfig(std::string_view yaml, Config base = {});

}  // namespace elasticdns::central
