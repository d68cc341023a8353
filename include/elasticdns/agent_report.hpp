#pragma once
// What an agent tells central about itself with every long-poll of GET /v1/topology: one
// request header, `ElasticDNS-Agent: server=host1; index=42; version=0.1.0; sync_age_ms=12;
// ebpf_identity=on; ebpf_redirect=off[; peers=2/3][; traffic_generation=7]`. The agent formats
// it, central parses it (central/README.md, "Agent reports").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "elasticdns/result.hpp"

namespace elasticdns::report {

constexpr std::string_view kHeader = "ElasticDNS-Agent";
constexpr size_t kMaxReportBytes = 1024;  // well under central's 8 KiB header limit

struct AgentReport {
  std::string server;        // the agent's server_name (a DNS name)
  uint64_t index = 0;        // index of the snapshot it serves (0: none yet)
  std::string version;       // the agent's release, e.g. "0.1.0"
  uint64_t sync_age_ms = 0;  // since central last answered it (at the time of the request)
  bool ebpf_identity = false;
  bool ebpf_redirect = false;
  std::optional<uint32_t> peers_up, peers_total;  // ContainerNet, when it runs
  std::optional<uint64_t> traffic_generation;     // nginx config generation, when it runs
  bool operator==(const AgentReport&) const = default;
};

std::string format(const AgentReport& r);
/// Parses a header value. Every known key is checked; `server`, `index` and `version` are
/// required. Unknown keys are ignored (a newer agent still syncs with an older central);
/// malformed pairs, repeated keys and bad values are errors naming the key.
Result<AgentReport> parse(std::string_view text);

}  // namespace elasticdns::report
